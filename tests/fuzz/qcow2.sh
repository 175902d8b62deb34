#!/usr/bin/env bash
# Builds the qcow2 fuzz target with clang's libFuzzer (or, without clang, as a
# plain program) and runs it for a bounded time on seed images made by
# qemu-img plus hand-broken headers. TV_FUZZ_TIME sets the seconds (default 5),
# TV_FUZZ_SEED the seed (default 1, so CI runs repeat; set another to explore).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzz.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S"/vm/block/*.c "$S/common/util.c" "$S/common/err.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir" -pthread)
LIBS=(-lz -lzstd -pthread)
grep -q "^URING_LIBS = -luring" "$top_builddir/Makefile" && LIBS+=(-luring) # vm/block/uring.c

mkdir "$D/corpus"
if [ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ]; then
	i=0
	for o in compat=0.10,cluster_size=512 cluster_size=512 cluster_size=1k,refcount_bits=1 \
		cluster_size=512,refcount_bits=64 cluster_size=512,compression_type=zstd; do
		"$QEMU_IMG" create -q -f qcow2 -o "$o" "$D/s$i.qcow2" 1M
		${QEMU_IO:-false} -c "write -P 0x11 0 3k" -c "write -z 8k 2k" "$D/s$i.qcow2" \
			>/dev/null 2>&1
		"$QEMU_IMG" snapshot -c a "$D/s$i.qcow2" 2>/dev/null
		cp "$D/s$i.qcow2" "$D/corpus/"
		i=$((i + 1))
	done
	"$QEMU_IMG" create -q -f qcow2 -o cluster_size=512 -b s0.qcow2 -F qcow2 "$D/corpus/b.qcow2"
	python3 -c "import random, sys; random.seed(1); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(8192)))" | cat - <(yes abc | head -c 8k) >"$D/r.raw"
	"$QEMU_IMG" convert -c -O qcow2 -o cluster_size=512 "$D/r.raw" "$D/corpus/c.qcow2"
fi
# Hostile headers by hand: giant size, L1 past the end, bad cluster bits.
printf 'QFI\373\000\000\000\003' >"$D/corpus/h1"
head -c 504 /dev/zero >>"$D/corpus/h1"
printf 'QFI\373\000\000\000\003\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\020\177\377\377\377\377\377\377\377' >"$D/corpus/h2"
python3 -c "import random, sys; random.seed(2); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(1000)))" >>"$D/corpus/h2"

fuzz_run qcow2 65536 "the qcow2 opener: no crash, hang, leak or huge allocation" \
	-rss_limit_mb=1024 -malloc_limit_mb=256
t_done
