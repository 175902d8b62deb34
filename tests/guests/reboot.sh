#!/bin/sh
# Guest reset through the i8042: --on-reboot exit ends with status 5;
# the default restarts the guest (it boots again and again until stopped).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/reboot.elf
err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(timeout 30 "$TV" run --debug-exit --kernel "$G" --memory 32M --on-reboot exit </dev/null 2>"$err")
rc=$?
t_check "--on-reboot exit: status 5" [ "$rc" -eq 5 ]
t_check "--on-reboot exit: booted once" [ "$(echo "$out" | grep -c 'reboot guest: booted')" -eq 1 ]
t_check "--on-reboot exit: the reset is reported" grep -q "reset through the i8042" "$err"
# By default the guest boots again after each reset: three boots (within
# 60 s; a second on a host with KVM), then SIGTERM.
t_run_until "$err" 'reboot guest: booted' 3 60 "$TV" run --debug-exit --kernel "$G" --memory 32M
echo "# $T_COUNT boots"
t_check "restart: the guest booted again after each reset" [ "$T_COUNT" -ge 3 ]
t_check "restart: SIGTERM stops it with status 143" [ "$T_RC" -eq 143 ]
t_check "restart: never fell through the reset" [ "$(grep -c 'still running' "$err")" -eq 0 ]
t_done
