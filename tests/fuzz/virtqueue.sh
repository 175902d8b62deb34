#!/usr/bin/env bash
# Builds the virtqueue fuzz target with clang's libFuzzer (or, without clang,
# as a plain program) and runs it for a bounded time on seeds holding valid
# direct, indirect and event-index queues. TV_FUZZ_TIME sets the seconds.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzvq.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S/vm/dev/virtio-queue.c" "$S/vm/mem.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir")
LIBS=()

mkdir "$D/corpus"
# Seeds: programming bytes (size 8, flags, desc 0, avail 0x1000, used 0x2000),
# then memory with a 2-descriptor chain, and the same through an indirect table.
python3 - "$D/corpus" <<'PY' || t_skip_all "python3 needed to write the seeds"
import struct, sys
d = sys.argv[1]
def seed(name, flags, descs, avail_heads, indirect=None):
    ram = bytearray(0x4000)
    for i, (a, l, f, n) in enumerate(descs):
        ram[16 * i:16 * i + 16] = struct.pack("<QIHH", a, l, f, n)
    struct.pack_into("<HH", ram, 0x1000, 0, len(avail_heads))
    for i, h in enumerate(avail_heads):
        struct.pack_into("<H", ram, 0x1004 + 2 * i, h)
    for i, (a, l, f, n) in enumerate(indirect or []):
        ram[0x3000 + 16 * i:0x3000 + 16 * i + 16] = struct.pack("<QIHH", a, l, f, n)
    hdr = bytes([3, flags, 0, 0x1000 >> 6 & 0xff, 0, 0x2000 >> 6 & 0xff, 0, 0])
    open(f"{d}/{name}", "wb").write(hdr + bytes(ram))
seed("direct", 0, [(0x2800, 16, 1, 1), (0x2900, 513, 2, 0)], [0])
seed("evidx", 3, [(0x2800, 16, 1, 1), (0x2900, 513, 2, 0), (0x2a00, 8, 2, 0)], [0, 2])
seed("indirect", 2, [(0x3000, 48, 4, 0)], [0],
     [(0x2800, 16, 1, 1), (0x2900, 4096, 3, 2), (0x2a00, 1, 2, 0)])
seed("loop", 0, [(0x2800, 16, 1, 1), (0x2900, 16, 1, 0)], [0])
PY

fuzz_run virtqueue 24576 "the virtqueue: no crash, hang or access outside guest RAM" -rss_limit_mb=1024
t_done
