#!/bin/sh
# `termvisor run NAME`: a defined VM's settings (kernel, cpus, memory, disks,
# debug_exit), which command-line options override.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
t_home
G=$top_builddir/tests/guests/smp.elf
"$TV" create lab --kernel "$G" --cpus 2 --memory 64M --disk 16M >/dev/null ||
	t_fail "create a definition"
# The test guest ends through the debug-exit port, which a definition asks for.
echo 'debug_exit = true;' >>"$TERMVISOR_HOME/vms/lab.conf"
out=$(timeout 30 "$TV" run lab </dev/null)
rc=$?
echo "$out" | sed 's/^/# /'
t_check "runs the definition: status 0" [ "$rc" -eq 0 ]
t_check "with the definition's 2 vCPUs" grep -q "smp: 2 of 2 cpus up" <<EOT
$out
EOT
out=$(timeout 30 "$TV" run lab --cpus 3 </dev/null)
t_check "--cpus overrides the definition" grep -q "smp: 3 of 3 cpus up" <<EOT
$out
EOT
err=$("$TV" run nosuch </dev/null 2>&1 >/dev/null)
rc=$?
echo "# $err"
t_check "an unknown VM: status 1" [ "$rc" -eq 1 ]
t_check "an unknown VM: the message names it" grep -q "no VM named 'nosuch'" <<EOT
$err
EOT
t_done
