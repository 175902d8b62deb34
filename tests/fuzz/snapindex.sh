#!/usr/bin/env bash
# Builds the snapshot index and journal fuzz target with clang's libFuzzer (or,
# without clang, as a plain program) and runs it for a bounded time on seeds
# written here from termvisor-snapshot(5): an index, a journal left in a
# .tmp-ID directory, a rename's journal. TV_FUZZ_TIME sets the seconds
# (default 5). The engine's library comes from the build tree.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzidx.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
B=$top_builddir
[ -f "$B/libtvvm.a" ] && [ -f "$B/libtvcommon.a" ] || t_skip_all "the engine's libraries are not built"
SRCS=("$S/src/core/snapstore.c" "$S/src/core/paths.c" "$S/src/core/fsutil.c" "$S/common/util.c"
	"$S/common/err.c" "$B/libtvvm.a" "$B/libtvcommon.a")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$B")
LIBS=(-lz -llzma -llz4 -lzstd -lpthread -lm)
grep -q '^URING_LIBS = -luring' "$B/Makefile" && LIBS+=(-luring)

mkdir "$D/corpus"
# The first byte: 1 = append the right checksum, 2 = a .tmp journal, 4 = a rename's.
printf '\001termvisor-snapshots 1\nnext 0000000000000003\nhere 0000000000000002\npending-restore -\nsnapshot id=0000000000000001 parent=- created=1 memory=no automatic=no tag=a description=x%%20y\nsnapshot id=0000000000000002 parent=0000000000000001 created=2 memory=yes automatic=yes tag=b\n' >"$D/corpus/index"
printf '\000termvisor-snapshots 1\nnext 0000000000000001\nhere -\npending-restore -\nchecksum 00000000\n' >"$D/corpus/badsum"
printf '\002termvisor-snapshot-journal 1\ntag a\ndisk /x/disk.qcow2\n' >"$D/corpus/tmpjournal"
printf '\004termvisor-snapshot-journal 1\ntag a\nnew b\ndisk /x/disk.qcow2\ndisk /y/d2.qcow2\n' >"$D/corpus/rename"

fuzz_run snapindex 8192 "the snapshot index and journals: no crash, leak or hang" -rss_limit_mb=1024
t_done
