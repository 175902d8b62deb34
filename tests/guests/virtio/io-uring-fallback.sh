#!/bin/sh
# Where io_uring is refused (here by a seccomp filter, as container runtimes
# do), virtio-blk disks move their data with I/O threads: the virtio test
# guest's whole-disk write/flush/read check still passes and the image stays
# clean; a disk that asked for io_uring by name says so on stderr, a disk
# on the default does not.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
[ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is needed to check the image"
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
DENY=$top_builddir/tests/guests/virtio/deny-io-uring
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-nouring.XXXXXX")
trap 'rm -rf "$D"' EXIT
"$DENY" true || t_skip_all "cannot install a seccomp filter here"

for aio in ",aio=io_uring" ""; do
	rm -f "$D/disk.qcow2"
	"$QEMU_IMG" create -q -f qcow2 "$D/disk.qcow2" 4M
	timeout 120 "$DENY" "$TV" run --debug-exit --kernel "$G" --memory 64M \
		--disk "$D/disk.qcow2$aio" --append "nozero" </dev/null >"$D/out" 2>"$D/err"
	rc=$?
	sed 's/^/# /' "$D/out" "$D/err"
	what=${aio#,}
	[ -n "$what" ] || what="default aio"
	t_check "$what: guest finished with exit status 0" [ "$rc" -eq 0 ]
	t_check "$what: whole disk written, flushed, read back" \
		grep -q "524288 words checked, 0 bad" "$D/out"
	t_check "$what: every guest check passed" grep -q "^virtio: ok" "$D/out"
	"$QEMU_IMG" check -q "$D/disk.qcow2"
	t_check "$what: qemu-img check: the image is clean" [ $? -eq 0 ]
	if [ -n "$aio" ]; then
		t_check "$what: the fallback is noted on stderr" \
			grep -q "io_uring unavailable (.*); using I/O threads" "$D/err"
	else
		t_check "$what: no note when io_uring was not asked for by name" \
			sh -c '! grep -q io_uring "$1"' sh "$D/err"
	fi
done
t_done
