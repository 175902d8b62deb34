#!/usr/bin/env bash
# Builds the device-model fuzz target (every device of the machine, created
# without KVM, driven by port and MMIO accesses as a guest would) and runs it
# for a bounded time: see tests/fuzz/lib.sh for the knobs.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzdev.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S"/vm/dev/*.c "$S/vm/mem.c" "$S"/vm/block/*.c "$S/common/util.c" "$S/common/err.c"
	"$S/vm/net/net.c" "$S/vm/net/backend.c" "$S/vm/net/user.c" "$S/vm/net/lab.c"
	"$S/vm/net/tap.c" "$S/vm/net/rxhold.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir" -pthread)
LIBS=(-luring -lz -lzstd -pthread $(pkg-config --libs slirp))

mkdir "$D/corpus"
# Seeds: random accesses to the claimed ranges; and a guest that turns on
# every PCI function's I/O, memory and bus mastering (0xCF8/0xCFC), sizes
# and reads its BARs, then pokes the devices' registers.
python3 - "$D/corpus" <<'PY' || t_skip_all "python3 needed to write the seeds"
import random, struct, sys
d = sys.argv[1]
op = lambda o, sel, off, val: struct.pack("<BBHIQ", o, 0, sel, off, val)
RAW, W, MMIO, SZ4 = 32, 1, 2, 8
random.seed(3)
ops = b"".join(op(random.choice([0, 1, 2, 3]) | random.choice([0, 4, 8, 12]),
                  random.randrange(64), random.randrange(1 << 16), random.getrandbits(64))
               for _ in range(200))
open(f"{d}/random", "wb").write(struct.pack("<H", 64) + bytes(64) + ops)
pci = b""
for dev in range(8):
    cfg = lambda reg: 0x80000000 | dev << 11 | reg
    pci += op(RAW | W | SZ4, 0, 0xCF8, cfg(0x04)) + op(RAW | W | 4, 0, 0xCFC, 0x7)
    for bar in range(6):
        pci += op(RAW | W | SZ4, 0, 0xCF8, cfg(0x10 + 4 * bar)) + op(RAW | SZ4, 0, 0xCFC, 0)
pci += b"".join(op(MMIO | random.choice([1, 0, 17]) | random.choice([0, 4, 8]),
                   random.randrange(16), random.randrange(1 << 14), random.getrandbits(32))
                for _ in range(300))
open(f"{d}/pci", "wb").write(struct.pack("<H", 4096) + bytes(random.getrandbits(8) for _ in range(4096)) + pci)
PY

fuzz_run devices 65536 "the device models: no crash, hang, leak or access outside guest RAM, and each device's state saves and restores unchanged"
t_done
