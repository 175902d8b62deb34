#!/bin/sh
# A triple fault ends the run with status 3 and a register dump that shows
# the faulting instruction.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(timeout 30 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/triple.elf" --memory 32M </dev/null 2>"$err")
rc=$?
sed 's/^/# /' "$err"
t_check "exit status 3" [ "$rc" -eq 3 ]
t_check "the guest ran up to the fault" grep -q "triple guest: faulting now" <<EOT
$out
EOT
t_check "reported as a triple fault" grep -q "guest triple fault" "$err"
if grep -q "registers: lost (the host's KVM reset the vCPU" "$err"; then
	# KVM on AMD reinitializes a vCPU on shutdown: the fault's state is gone
	# there, and the report says so instead of dumping the reset state.
	t_check "registers said to be lost only on an AMD host" \
		grep -q -m1 "vendor_id.*AuthenticAMD" /proc/cpuinfo
	t_check "no reset-state dump passed off as the fault" sh -c "! grep -q 'rip 000000000000fff0' '$err'"
else
	t_check "register dump with the guest's rax" grep -q "rax 0000000000007e57" "$err"
	t_check "the faulting instruction (ud2) is shown" grep -q "code at rip: 0f 0b" "$err"
fi
t_done
