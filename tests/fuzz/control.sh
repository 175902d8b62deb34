#!/usr/bin/env bash
# Builds the control socket fuzz target with clang's libFuzzer (or, without
# clang, as a plain program) and runs it for a bounded time on seeds holding
# a well-behaved session and some bad ones. TV_FUZZ_TIME sets the seconds.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuzz/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzctl.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S/src/vmm/control.c" "$S/src/core/protocol.c" "$S/src/vmm/console-buf.c" "$S/src/vmm/vtguard.c" "$S/src/vmm/vtscreen.c"
	"$S/src/vmm/verbs.c" "$S/vm/net/net.c"
	"$S/common/util.c" "$S/common/err.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir")
LIBS=(-lvterm -lz)

mkdir "$D/corpus"
# Seeds: two split bytes, the client's frames, then the guest's output.
python3 - "$D/corpus" <<'PY' || t_skip_all "python3 needed to write the seeds"
import struct, sys
d = sys.argv[1]
f = lambda t, p=b"": struct.pack(">IHH", len(p), t, 0) + p
def seed(name, client, guest):
    open(f"{d}/{name}", "wb").write(struct.pack(">H", len(client)) + client + guest)
hello = f(1, struct.pack(">I", 1))
seed("session", hello + f(2) + f(3) + f(4) + f(7, bytes([0, 0, 0, 24, 0, 80])) +
     f(8, b"ls\r") + f(9, struct.pack(">HH", 30, 100)) + f(10) + f(5, b"\0\0\0\1"),
     b"\x1b[1;31mboot\x1b[m ok\r\n" * 30 + b"\x1b[?1049h\x1b[10;10Hfull screen")
seed("readonly", hello + f(7, bytes([1, 0, 0, 5, 0, 10])) + f(8, b"x"), "é€😀\t\x08\r\n".encode() * 20)
seed("snapshots", hello + f(0x20, b"tag=s1\ndescription=x\n") + f(0x21, b"tag=s1\ndiscard=1\n") +
     f(0x22, b"tag=") + f(0x23, b"tag=s1\nnew=s2\n") + f(0x20, b"\n\n=\0tag"), b"")
seed("huge", hello + struct.pack(">IHH", 0xffffffff, 2, 0), b"")
seed("garbage", bytes(range(256)), bytes(range(256)))
PY

fuzz_run control 65536 "the control socket and console: no crash or hang"
t_done
