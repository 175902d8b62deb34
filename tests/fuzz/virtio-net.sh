#!/usr/bin/env bash
# Builds virtio-net's queue fuzz target with clang's libFuzzer (or, without
# clang, as a plain program) and runs it for a bounded time on seeds holding
# a transmit chain (header and frame), a checksum request, receive buffers
# with and without mergeable buffers, and a looping chain. TV_FUZZ_TIME sets
# the seconds.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzznet.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S/vm/dev/virtio-net-queue.c" "$S/vm/dev/virtio-queue.c" "$S/vm/mem.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir")
LIBS=()

mkdir "$D/corpus"
# Seeds: programming (size 8, flags, desc 0, avail 0x1000, used 0x2000, frame
# length), then memory with the chains.
python3 - "$D/corpus" <<'PY' || t_skip_all "python3 needed to write the seeds"
import struct, sys
d = sys.argv[1]
def seed(name, flags, descs, heads, flen=0, data=()):
    ram = bytearray(0x8000)
    for i, (a, l, f, n) in enumerate(descs):
        ram[16 * i:16 * i + 16] = struct.pack("<QIHH", a, l, f, n)
    struct.pack_into("<HH", ram, 0x1000, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, 0x1004 + 2 * i, h)
    for addr, b in data:
        ram[addr:addr + len(b)] = b
    hdr = bytes([3, flags, 0, 0x1000 >> 7 & 0xff, 0, 0x2000 >> 7 & 0xff, 0, flen // 8])
    open(f"{d}/{name}", "wb").write(hdr + bytes(ram))
plain = bytes(12)
csum = struct.pack("<BBHHHHH", 1, 0, 0, 0, 34, 6, 0)
seed("tx", 0, [(0x3000, 12, 1, 1), (0x3100, 60, 0, 0)], [0], data=[(0x3000, plain)])
seed("tx-csum", 16, [(0x3000, 12, 1, 1), (0x3100, 75, 0, 0)], [0], data=[(0x3000, csum)])
seed("rx", 4, [(0x3000, 1600, 2, 0)], [0], flen=1512)
seed("rx-mrg", 12 | 1, [(0x3000, 600, 2, 0), (0x3800, 600, 2, 0), (0x4000, 600, 2, 0)],
     [0, 1, 2], flen=1512)
seed("loop", 0, [(0x3000, 12, 1, 1), (0x3100, 60, 1, 0)], [0])
PY

fuzz_run virtio-net 32776 "virtio-net's queues: no crash, hang or access outside guest RAM" -rss_limit_mb=1024
t_done
