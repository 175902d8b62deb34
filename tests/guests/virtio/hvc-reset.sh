#!/bin/sh
# A guest reset while the host is still taking in console output must not
# hang the VM process: the virtio test guest hands hvc0 1 MiB in one buffer
# (far more than the VM process's output pipe holds) and resets the machine
# through the i8042 at once. The run ends with the reset (status 5 with
# --on-reboot exit), and by default the guest boots again.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
t_home
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
d=$(mktemp -d)
trap '"$TV" stop flood --force >/dev/null 2>&1; rm -rf "$d"; t_cleanup' EXIT
timeout 60 "$TV" run --kernel "$G" --memory 64M --append "noblk hvcreset" --on-reboot exit \
	</dev/null >"$d/out" 2>&1
rc=$?
head -c 2000 "$d/out" | sed 's/^/# /'
t_check "the reset ends the run (status 5, not a hang)" [ "$rc" -eq 5 ]
t_check "the guest got to hand over its buffer" grep -q "1 MiB for hvc0, then a reset" "$d/out"
t_run_until "$d/out2" "1 MiB for hvc0" 2 60 "$TV" run --kernel "$G" --memory 64M \
	--append "noblk hvcreset"
echo "# $T_COUNT boots"
t_check "restarting after each such reset: the guest boots again" [ "$T_COUNT" -ge 2 ]
t_check "and SIGTERM still ends the run (status 143)" [ "$T_RC" -eq 143 ]

# The same in the background, where the VM process also feeds the log and
# the console screens.
"$TV" create flood --kernel "$G" --memory 64M --cmdline "noblk hvcreset" >/dev/null ||
	t_fail "create the VM"
t_check "start" "$TV" start flood
boots=0
for _ in $(seq 1 300); do
	boots=$(grep -c "the guest reset the machine; booting again" \
		"$TERMVISOR_HOME/data/flood/vm.log" 2>/dev/null)
	[ "${boots:-0}" -ge 3 ] && break
	sleep 0.1
done
echo "# background: ${boots:-0} resets followed"
t_check "in the background the guest boots again after each such reset" [ "${boots:-0}" -ge 3 ]
t_check "and the VM still answers: stop --force ends it" "$TV" stop flood --force
t_done
