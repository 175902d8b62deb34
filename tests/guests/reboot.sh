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
out=$(timeout --preserve-status -s TERM 1 "$TV" run --debug-exit --kernel "$G" --memory 32M </dev/null 2>/dev/null)
rc=$?
boots=$(echo "$out" | grep -c 'reboot guest: booted')
echo "# $boots boots in 1 s"
t_check "restart: the guest booted again after each reset" [ "$boots" -ge 3 ]
t_check "restart: SIGTERM stops it with status 143" [ "$rc" -eq 143 ]
t_check "restart: never fell through the reset" [ "$(echo "$out" | grep -c 'still running')" -eq 0 ]
t_done
