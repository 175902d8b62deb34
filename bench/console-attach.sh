#!/usr/bin/env bash
# Console attach latency and VM process memory (see console-attach.py).
# usage: bench/console-attach.sh [BUILDDIR] [RUNS]
# Starts the demo guest as a background VM in a private home, fills its
# console with a screen and some scrollback, measures, and stops it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
runs=${2:-30}
tv=$build/termvisor
demo=$build/share/demo/demo.elf
[ -x "$tv" ] && [ -f "$demo" ] || { echo "build first: $tv, $demo" >&2; exit 1; }
TERMVISOR_HOME=$(mktemp -d "${TMPDIR:-/tmp}/tv-bench.XXXXXX")
export TERMVISOR_HOME
trap '"$tv" stop bench --force >/dev/null 2>&1; rm -rf "$TERMVISOR_HOME"' EXIT
mkdir -p "$TERMVISOR_HOME/vms"
printf 'memory = "64M";\nkernel = "%s";\ncmdline = "console=ttyS0";\n' "$demo" \
	>"$TERMVISOR_HOME/vms/bench.conf"
"$tv" start bench >/dev/null
# A full history: the help text until the 1000-line scrollback is full,
# through the control socket.
python3 - "$TERMVISOR_HOME/run/bench.sock" <<'PY'
import socket, struct, sys, time
f = lambda t, p=b"": struct.pack(">IHH", len(p), t, 0) + p
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(f(1, struct.pack(">I", 1)) + f(7, bytes([0, 0, 0, 24, 0, 80])))
time.sleep(1.5)
for _ in range(70):
    s.sendall(f(8, b"help\r")); time.sleep(0.05)
# Until the guest has worked through its input and is quiet.
s.settimeout(1.0)
try:
    while s.recv(65536):
        pass
except socket.timeout:
    pass
s.close()
PY
echo "termvisor $("$tv" --version | cut -d' ' -f2), $(date -u +%Y-%m-%d), $(nproc) CPUs"
python3 "$top/bench/console-attach.py" "$tv" bench "$runs"
