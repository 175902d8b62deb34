#!/usr/bin/env bash
# Builds the snapshot state file fuzz target with clang's libFuzzer (or,
# without clang, as a plain program) and runs it for a bounded time on seeds
# written here by a second implementation of the format (termvisor-snapshot(5),
# STATE FILE), so the seeds also check that the page describes what the
# parser reads. TV_FUZZ_TIME sets the seconds (default 5).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzsnap.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S/vm/snapstate.c" "$S/common/util.c" "$S/common/err.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir")
LIBS=(-lz)

mkdir "$D/corpus"
python3 - "$D/corpus" <<'PY' || t_skip_all "python3 needed to write the seeds"
import struct, sys, zlib
d = sys.argv[1]
# Payload sizes of the fixed parts: struct kvm_* on x86-64 (<linux/kvm.h>).
VCPU = [(1, 4), (2, 144), (3, 312), (4, None), (5, 392), (6, 128), (7, 1024), (8, 8),
        (9, None), (10, 64)]
def part(t, i, payload):
    h = struct.pack("<III", t, i, len(payload))
    return h + struct.pack("<I", zlib.crc32(payload, zlib.crc32(h))) + payload
def state(cpus, devices, nmsrs=3, xsave=4096, version=2):
    body = b""
    for c in range(cpus):
        for t, n in VCPU:
            if t == 4:
                p = bytes(xsave)
            elif t == 9:
                p = struct.pack("<II", nmsrs, 0) + b"".join(
                    struct.pack("<IIQ", 0x10 + k, 0, k) for k in range(nmsrs))
            else:
                p = bytes(n)
            body += part(t, c, p)
    body += part(16, 0, bytes(112)) + part(17, 0, bytes(48))
    for chip in range(3):
        body += part(18, chip, struct.pack("<I", chip) + bytes(516))
    if version >= 2:
        body += part(19, 0, struct.pack("<IIIIIIII", 0, 0, 0, 0xd, 0x756e6547, 0x6c65746e,
                                        0x49656e69, 0) + bytes(8))
    for i, (name, st) in enumerate(devices):
        body += part(32, i, struct.pack("<HHI", len(name), 0, len(st)) + name + st)
    body += part(255, 0, b"")
    nparts = cpus * 10 + 5 + (version >= 2) + len(devices) + 1
    h = b"TVSTATE\0" + struct.pack("<IIIIQIIQQI", version, 64, cpus, len(devices), 64 << 20, 0,
                                    nparts, 1, 2, 0)
    return h + struct.pack("<I", zlib.crc32(h)) + body
seeds = {
    "one": state(1, [(b"serial0", b"x" * 40), (b"debug-exit", b"")]),
    "two": state(2, [(b"rtc", bytes(144))], nmsrs=0, xsave=4160),
    "nodev": state(1, []),
    "version1": state(1, [(b"serial0", b"x" * 40)], version=1),
}
for k, v in seeds.items():
    open(f"{d}/{k}", "wb").write(v)
PY

fuzz_run snapstate 32768 "the state file parser: no crash, hang, leak or huge allocation" \
	-rss_limit_mb=1024 -malloc_limit_mb=256
# The seeds, written from the format's description alone, are state files.
${CC:-cc} "${CFLAGS[@]}" -DFUZZ_STANDALONE -o "$D/info" -x c - "${SRCS[@]}" "${LIBS[@]}" <<'C' ||
#include <stdio.h>
#include "vm/snapshot.h"
int main(int argc, char **argv)
{
	struct vm_snapshot_info in;
	struct tv_err err;
	if (vm_snapshot_read_info(argv[1], &in, &err) < 0) {
		printf("%s\n", err.msg);
		return 1;
	}
	printf("cpus %u devices %u memory %llu\n", in.cpus, in.ndevices, (unsigned long long)in.memory);
	return 0;
}
C
	{ t_fail "the read_info helper builds"; t_done; }
for s in one two nodev version1; do
	mkdir "$D/$s.d" && cp "$D/corpus/$s" "$D/$s.d/state"
	out=$("$D/info" "$D/$s.d")
	echo "# $s: $out"
	t_check "seed $s, written from the format's description, parses" \
		grep -q "^cpus" <<<"$out"
done
t_done
