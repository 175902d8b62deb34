#!/bin/sh
# A VM's two consoles stay apart: ttyS0 (the UART) on the terminal of
# `termvisor run NAME`, hvc0 for a client attached to it through the control
# socket. The virtio test guest reads a line from the UART, opens hvc0, writes
# to it and reads a line from it; it echoes both and checks that nothing typed
# for hvc0 reached the UART. Here nothing of hvc0 may show on the ttyS0
# terminal either.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
t_home
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-hvc.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$D"; t_cleanup' EXIT
mkfifo "$D/in"
"$TV" create hvc --kernel "$G" --memory 64M --cmdline "noblk hvcecho" >/dev/null ||
	t_fail "create the VM"
# The test guest ends through the debug-exit port, which a definition asks for.
echo 'debug_exit = true;' >>"$TERMVISOR_HOME/vms/hvc.conf"

timeout 90 "$TV" run hvc <"$D/in" >"$D/out" 2>&1 &
pid=$!
exec 3>"$D/in"
# Types once the guest says it is ready; the polling covers slow hosts.
wait_for() {
	i=0
	while ! grep -q "$1" "$D/out"; do
		i=$((i + 1))
		[ $i -le 600 ] && kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
}
wait_for "type a line for ttyS0" && printf 'typed at ttyS0\r' >&3
# hvc0 through the control socket: attach to console 2 (hvc0), wait for the
# guest's prompt there, type a line, read the echo.
python3 - "$TERMVISOR_HOME/run/hvc.sock" >"$D/hvc" 2>&1 <<'PY'
import socket, struct, sys, time
f = lambda t, p=b"": struct.pack(">IHH", len(p), t, 0) + p
s = None
for _ in range(300):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError:
        s = None; time.sleep(0.1)
if s is None:
    sys.exit("no control socket")
s.sendall(f(1, struct.pack(">I", 1)) + f(7, bytes([0, 2, 0, 24, 0, 80])))
seen, typed, buf = b"", False, b""
deadline = time.time() + 60
s.settimeout(0.5)
while time.time() < deadline and b"hvc0: got" not in seen:
    try:
        data = s.recv(65536)
    except socket.timeout:
        data = b""
    if data == b"" and s.gettimeout() is None:
        break
    buf += data
    while len(buf) >= 8:
        n, t, _ = struct.unpack(">IHH", buf[:8])
        if len(buf) < 8 + n:
            break
        if t == 0x8005:
            seen += buf[8:8 + n]
        buf = buf[8 + n:]
    if not typed and b"hvc0: ready for input" in seen:
        s.sendall(f(8, b"typed at hvc0\r")); typed = True
sys.stdout.write(seen.decode(errors="replace"))
PY
wait "$pid"
rc=$?
pid=
exec 3>&-
sed 's/^/# ttyS0: /' "$D/out"
sed 's/^/# hvc0:  /' "$D/hvc"
t_check "guest finished with exit status 0" [ "$rc" -eq 0 ]
t_check "typing on the ttyS0 terminal reaches the UART" grep -q "ttyS0 got 'typed at ttyS0'" "$D/out"
t_check "the hvc0 client sees the guest's hvc0 output" grep -q "hvc0: ready for input" "$D/hvc"
t_check "typing from the hvc0 client reaches hvc0" grep -q "hvc0: got 'typed at hvc0'" "$D/hvc"
t_check "nothing of hvc0 shows on the ttyS0 terminal" sh -c "! grep -q 'hvc0:' '$D/out'"
t_check "every guest check passed (nothing typed for hvc0 reached the UART)" \
	grep -q "^virtio: ok" "$D/out"
t_done
