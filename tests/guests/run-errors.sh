#!/bin/sh
# `termvisor run` on bad input: one clear line naming what is wrong, and a
# non-zero status, for each case.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/serial.elf
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

# expect DESCRIPTION STATUS PATTERN -- ARGS...
expect() {
	what=$1 want=$2 pat=$3
	shift 4
	# A case the engine fails to refuse boots the guest, which waits for
	# input: the timeout makes that a failure (124), not a hang.
	timeout 60 "$TV" run "$@" </dev/null >/dev/null 2>"$d/err"
	rc=$?
	sed 's/^/# /' "$d/err"
	# Usage errors (status 2) add the usage line after the message.
	lines=1
	[ "$want" -eq 2 ] && lines=2
	if [ "$rc" -eq "$want" ] && [ "$(wc -l <"$d/err")" -eq $lines ] &&
		head -n 1 "$d/err" | grep -q -- "$pat"; then
		t_ok "$what"
	else
		t_fail "$what (status $rc)"
	fi
}

expect "missing kernel file" 1 "kernel $d/nope: No such file" -- --kernel "$d/nope"
printf 'just text\n' >"$d/text"
expect "a file that is not a kernel" 1 "kernel $d/text: not a kernel" -- --kernel "$d/text"
: >"$d/empty"
expect "an empty file" 1 "kernel $d/empty: empty file" -- --kernel "$d/empty"
head -c 1000 "$G" >"$d/trunc.elf"
expect "a truncated ELF" 1 "kernel $d/trunc.elf: truncated" -- --kernel "$d/trunc.elf"
# A bzImage header whose setup claims more than the file holds.
python3 - "$d/trunc-bz" <<'PY' 2>/dev/null || cp "$d/text" "$d/trunc-bz"
import struct, sys
b = bytearray(0x1000)
b[0x1f1] = 4
struct.pack_into("<I", b, 0x1f4, 0x10000)
b[0x1fe:0x200] = b"\x55\xaa"
b[0x202:0x206] = b"HdrS"
struct.pack_into("<H", b, 0x206, 0x20f)
b[0x211] = 1
open(sys.argv[1], "wb").write(b)
PY
expect "a truncated bzImage" 1 "kernel $d/trunc-bz: truncated" -- --kernel "$d/trunc-bz"
expect "a directory" 1 "kernel $d: not a regular file" -- --kernel "$d"
expect "an initrd that is missing" 1 "initrd $d/nope: No such file" -- --kernel "$G" --initrd "$d/nope"
expect "more memory than the host has" 1 "memory 900G: the host has only .* GiB" -- --kernel "$G" --memory 900G
expect "memory too small" 1 "memory 1M: expected at least 2M" -- --kernel "$G" --memory 1M
# The same guest with its segment moved to 1 GiB, beyond 64M of RAM.
python3 - "$G" "$d/high.elf" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
phoff = struct.unpack_from("<Q", b, 32)[0]
struct.pack_into("<Q", b, phoff + 24, 0x40000000)
open(sys.argv[2], "wb").write(b)
PY
expect "a kernel that does not fit in memory" 1 "lies outside guest RAM (64M)" -- --kernel "$d/high.elf" --memory 64M
# PVH: Linux keeps 2048 bytes of command line, its NUL included (x86's
# COMMAND_LINE_SIZE), and would cut a longer one off without a word.
long=$(printf '%02047d' 0)
expect "a command line longer than a PVH kernel takes" 1 \
	"command line: 2048 bytes, this kernel takes at most 2047" -- --kernel "$G" --append "${long}1"
out=$(timeout 30 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/timer.elf" \
	--memory 32M --append "$long" </dev/null 2>&1)
rc=$?
t_check "a command line of 2047 bytes still boots a PVH kernel (status $rc)" [ "$rc" -eq 0 ]
expect "too many vCPUs" 2 "cpus 65: expected a number from 1 to 64" -- --kernel "$G" --cpus 65
expect "a bad size" 2 "memory 12Q: expected a size" -- --kernel "$G" --memory 12Q
expect "a disk serial longer than GET_ID's 20 bytes" 2 \
	"serial '123456789012345678901': expected 1 to 20 printable characters" -- \
	--kernel "$G" --disk "$d/x.img,format=raw,serial=123456789012345678901"
expect "a bad --on-reboot" 2 "on-reboot sometimes" -- --kernel "$G" --on-reboot sometimes
# A host without /dev/kvm: an empty /dev in a private mount namespace.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null &&
	unshare -m true 2>/dev/null; then
	unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" run --kernel "$1"' "$TV" "$G" \
		</dev/null >/dev/null 2>"$d/err"
	rc=$?
	sed 's/^/# /' "$d/err"
	t_check "no /dev/kvm: one line saying KVM is not available" \
		sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$d/err') -eq 1 ] && grep -q '/dev/kvm: not found: KVM is not available' '$d/err'"
fi
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && [ -z "$(stat -c %a /dev/kvm | grep '6$')" ]; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$TV" run --kernel "$G" </dev/null \
		>/dev/null 2>"$d/err"
	rc=$?
	sed 's/^/# /' "$d/err"
	t_check "no permission on /dev/kvm names the kvm group" \
		sh -c "[ $rc -eq 1 ] && grep -q 'kvm group' '$d/err'"
fi
t_done
