#!/bin/sh
# virtio over PCI end to end: the virtio test guest drives a qcow2 disk, a
# read-only disk, the console and the entropy device through its own
# virtio-pci driver (MSI-X, and INTx for the rng); then the image must pass
# qemu-img check and hold exactly the pattern the guest wrote, with the
# discarded and zeroed ranges reading as zeros.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
[ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is needed to check the image"
command -v python3 >/dev/null || t_skip_all "python3 is needed to build the expected image"
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-virtio.XXXXXX")
trap 'rm -rf "$D"' EXIT

"$QEMU_IMG" create -q -f qcow2 "$D/disk.qcow2" 4M
"$QEMU_IMG" create -q -f qcow2 "$D/ro.qcow2" 1M
python3 -c 'import sys; sys.stdout.buffer.write(b"\x5a" * 65536 + b"\0" * (1048576 - 65536))' >"$D/ro.raw"
"$QEMU_IMG" convert -n -f raw -O qcow2 "$D/ro.raw" "$D/ro.qcow2"
cp "$D/ro.qcow2" "$D/ro.orig"

# The read-only disk has a serial of 20 characters, the most GET_ID holds.
out=$(timeout 120 "$TV" run --debug-exit --kernel "$G" --memory 64M --cpus 2 --disk "$D/disk.qcow2" \
	--disk "$D/ro.qcow2,format=qcow2,readonly,serial=ro-serial-0123456789" \
	--append "ecam intx pcicfg" </dev/null 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
has() { printf '%s\n' "$out" | grep -q "$1"; }
t_check "guest finished with exit status 0" [ "$rc" -eq 0 ]
t_check "every guest check passed" has "^virtio: ok"
t_check "ECAM and type-1 configuration access agree" has "ECAM matches type-1"
t_check "two virtio-blk, the console and the rng enumerated" \
	has "4 devices"
t_check "one queue per vCPU (2)" has "8192 sectors, 2 queues"
t_check "each device's PCI_CFG window reads and writes 1, 2 and 4 bytes, checked bounds" \
	has "pci_cfg window: 4 of 4 devices ok"
t_check "whole disk written, flushed, read back: no bad word" has "524288 words checked, 0 bad"
t_check "GET_ID gives a disk without a serial tvdisk0, not the image's name" has "id 'tvdisk0'"
t_check "GET_ID gives the serial set with --disk ...,serial= (20 characters)" \
	has "id 'ro-serial-0123456789'"
t_check "no image file name in what GET_ID gives" sh -c "! printf '%s\n' \"\$1\" | grep \"id '\" | grep -q qcow2" - "$out"
t_check "read-only disk: reads, refuses writes" has "read-only checks done"
t_check "discard with the unmap flag: unsupported, data intact" \
	has "discard with unmap refused, data intact"
# hvc0 is a console of its own: its output is not on this ttyS0 terminal (the
# hvc tests read it where it goes).
t_check "hvc0 output stays off the ttyS0 terminal" sh -c '! printf "%s
" "$0" | grep -q "hvc0: hello"' "$out"
t_check "entropy read" has "virtio-rng: 128 bytes"

"$QEMU_IMG" check -q "$D/disk.qcow2"
t_check "qemu-img check: the image is clean" [ $? -eq 0 ]
# What the disk must hold: the pattern of pass 1, zeros over the discarded
# sectors [128, 256) and the zeroed sectors [1000, 1100).
python3 - "$D/expect.raw" <<'PY'
import array, sys
M = (1 << 64) - 1
K = 0x9E3779B97F4A7C15
words = 4 * 1024 * 1024 // 8
a = array.array("Q", (((w >> 6) << 32 | (w & 63) << 8 | 1) * K & M for w in range(words)))
for lo, hi in ((128, 256), (1000, 1100)):
    for w in range(lo * 64, hi * 64):
        a[w] = 0
open(sys.argv[1], "wb").write(a.tobytes())
PY
t_check "disk contents equal the expected pattern" \
	"$QEMU_IMG" compare -q -f raw -F qcow2 "$D/expect.raw" "$D/disk.qcow2"
t_check "read-only disk unchanged" cmp -s "$D/ro.qcow2" "$D/ro.orig"

# Hostile programming: a looping chain, buffers outside RAM or of 4 GiB, a
# nested indirect table, rings in the PCI hole. Each must set
# DEVICE_NEEDS_RESET (with a configuration interrupt), and after a reset the
# device must work again; the engine must keep running throughout. Then Bus
# Master Enable cleared with a request posted: nothing may happen until it
# is set again.
out=$(timeout 60 "$TV" run --debug-exit --kernel "$G" --memory 64M --append "hostile noblk" </dev/null 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
t_check "hostile guest: exit status 0" [ "$rc" -eq 0 ]
t_check "hostile guest: every bad queue broke the device, reset revived it" \
	has "hostile programming survived"
t_check "Bus Master Enable off: no request taken, no memory touched, no MSI; on: it completes" \
	has "bus master checks done"
t_done
