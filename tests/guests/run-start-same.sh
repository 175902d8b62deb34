#!/bin/sh
# `termvisor run NAME` and `termvisor start NAME` build the guest the same
# machine from one definition (src/core/machine.c): the ACPI and SMP test
# guests print the same tables, vCPUs, interrupt routing and command line
# whether the VM runs on this terminal or in the background.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
t_home
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

# The guest's own lines in a VM's log: the process's notes start with
# "[termvisor", and the PM timer's rate differs from run to run.
guest_lines() {
	grep -v '^\[termvisor \|^$\|^timer ticks per second' "$1" | tr -d '\r'
}


for g in acpi smp; do
	"$TV" create "$g" --kernel "$top_builddir/tests/guests/$g.elf" --cpus 2 --memory 32M \
		--cmdline "tv.same=$g" >/dev/null || t_fail "create $g"
	# The test guests end through the debug-exit port.
	echo 'debug_exit = true;' >>"$TERMVISOR_HOME/vms/$g.conf"
	timeout 60 "$TV" run "$g" </dev/null >"$d/$g.run" 2>&1
	t_check "$g: run NAME ends with status 0" [ $? -eq 0 ]
	t_check "$g: start NAME starts it in the background" "$TV" start "$g"
	t_check "$g: the background VM ends by itself" t_wait_stopped "$g"
	guest_lines "$d/$g.run" >"$d/$g.a"
	guest_lines "$TERMVISOR_HOME/data/$g/vm.log" >"$d/$g.b"
	sed 's/^/# run:   /' "$d/$g.a" | head -n 20
	t_check "$g: the guest printed something" test -s "$d/$g.a"
	t_check "$g: the guest saw the same machine under run and start" cmp "$d/$g.a" "$d/$g.b"
	diff "$d/$g.a" "$d/$g.b" | sed 's/^/# /'
done
t_check "acpi: both runs listed 2 vCPUs in the MADT" grep -q '^cpus 2$' "$d/acpi.b"
t_check "smp: both runs brought up 2 vCPUs" grep -q 'smp: 2 of 2 cpus up' "$d/smp.b"
t_done
