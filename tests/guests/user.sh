#!/bin/sh
# Ring 3: a 100 M-iteration loop and 16 MiB of memory writes at CPL 3, whose
# result must match the same computation done here.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
command -v python3 >/dev/null || t_skip_all "python3 is needed to check the result"
out=$(timeout 60 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/user.elf" --memory 64M </dev/null)
rc=$?
echo "$out" | sed 's/^/# /'
# x <- a*x + c, 100 M times from 1: composed by squaring the affine map.
want=$(python3 -c '
M = (1 << 64) - 1
a, c, n, x = 6364136223846793005, 1442695040888963407, 100000000, 1
ra, rc = 1, 0
while n:
    if n & 1:
        ra, rc = (a * ra) & M, (a * rc + c) & M
    a, c = (a * a) & M, (a * c + c) & M
    n >>= 1
print("%x" % ((ra * x + rc) & M))')
t_check "exit status 0" [ "$rc" -eq 0 ]
t_check "result $want computed at CPL 3" grep -q "user: result $want from cpl 3, 0 memory errors" <<EOT
$out
EOT
t_done
