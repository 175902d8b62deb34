#!/bin/sh
# The kernel cache serves every way a VM starts: a bzImage VM started twice
# with `termvisor start` has its vmlinux extracted once, and the second start
# takes it from the cache; `run NAME` and `run --kernel` use the same entry.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
t_home
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 "$top_srcdir/tests/guests/mkbzimage.py" "$top_builddir/tests/guests/acpi.elf" \
	"$d/acpi.bzImage" || t_skip_all "python3 is needed to make the bzImage"
cache=$TERMVISOR_HOME/cache

entries() { ls "$cache" 2>/dev/null | grep -c '^vmlinux-[0-9a-f]*$'; }
inode() { stat -c %i "$cache"/vmlinux-* 2>/dev/null | head -n 1; }

"$TV" create bz --kernel "$d/acpi.bzImage" --memory 32M >/dev/null || t_fail "create"
t_check "first start" "$TV" start bz
t_check "the guest ends by itself" t_wait_stopped bz
t_check "the guest ran from the extracted kernel" grep -q '^tables ok' "$TERMVISOR_HOME/data/bz/vm.log"
t_check "start extracted the vmlinux into the cache (1 entry)" [ "$(entries)" -eq 1 ]
first=$(inode)
t_check "second start" "$TV" start bz
t_check "the guest ends again" t_wait_stopped bz
t_check "the second start took the cached vmlinux (still 1 entry, same file)" \
	[ "$(entries)" -eq 1 -a "$(inode)" = "$first" ]
out=$(timeout 60 "$TV" run bz </dev/null 2>&1)
t_check "run NAME boots it too" grep -q '^tables ok' <<EOT
$out
EOT
out=$(timeout 60 "$TV" run --kernel "$d/acpi.bzImage" --memory 32M </dev/null 2>&1)
t_check "run --kernel boots it too" grep -q '^tables ok' <<EOT
$out
EOT
t_check "and neither extracted it again" [ "$(entries)" -eq 1 -a "$(inode)" = "$first" ]
t_done
