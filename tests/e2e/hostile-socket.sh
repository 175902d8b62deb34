#!/usr/bin/env bash
# A running VM's control socket under hostile input: garbage, truncated frames,
# huge lengths, requests out of order, a flood of connections, and a
# connection from another user. Each is refused; the VM runs on and still
# answers its owner.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
command -v python3 >/dev/null || t_skip_all "python3 is not installed"
t_home
trap '"$TV" stop lab --force >/dev/null 2>&1; t_cleanup' EXIT
mkdir -p "$TERMVISOR_HOME/vms"
printf 'memory = "64M";\nkernel = "%s";\ncmdline = "console=ttyS0";\n' "$demo" \
	>"$TERMVISOR_HOME/vms/lab.conf"
"$TV" start lab >/dev/null || exit 1
sockpath=$TERMVISOR_HOME/run/lab.sock
pid=$("$TV" status lab --json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')

# speak SCRIPT: Python with `s` connected to the socket and helpers to send
# raw bytes and read one reply frame.
speak() {
	python3 - "$sockpath" "$1" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(sys.argv[1])
def frame(t, p=b""):
    return struct.pack(">IHH", len(p), t, 0) + p
def reply():
    h = b""
    while len(h) < 8:
        c = s.recv(8 - len(h))
        if not c:
            return None, None
        h += c
    n, t, _ = struct.unpack(">IHH", h)
    p = b""
    while len(p) < n:
        p += s.recv(n - len(p))
    return t, p
def code():
    t, p = reply()
    return struct.unpack(">I", p[:4])[0] if t == 0x8001 else ("type %s" % t)
def hello():
    s.sendall(frame(1, struct.pack(">I", 1)))
    assert reply()[0] == 0x8002
exec(sys.argv[2])
EOF
}
alive() { # the VM still runs and answers its owner
	kill -0 "$pid" && "$TV" status lab | grep -q "state: *running"
}

t_check "random garbage gets an error reply" \
	speak 'import os; s.sendall(os.urandom(4096)); c = code(); assert c in (1, 2, 5), c' 
t_check "the VM survives garbage" alive
t_check "a huge length is refused as too big, then the connection closes" \
	speak 'hello(); s.sendall(struct.pack(">IHH", 0xffffffff, 2, 0)); assert code() == 2; assert reply() == (None, None)'
t_check "a length just over 64 KiB is refused too" \
	speak 'hello(); s.sendall(struct.pack(">IHH", 65537, 8, 0)); assert code() == 2'
t_check "a frame cut short, then a hang-up, is harmless" \
	speak 'hello(); s.sendall(frame(5, b"\0\0\0\1")[:10])'
t_check "the VM survives truncated frames" alive
t_check "requests before hello are refused" \
	speak 's.sendall(frame(6)); assert code() == 5'
t_check "the VM was not forced off by a request before hello" alive
t_check "a wrong version is refused" \
	speak 's.sendall(frame(1, struct.pack(">I", 7))); assert code() == 4'
t_check "a stop with a short payload is refused as malformed" \
	speak 'hello(); s.sendall(frame(5, b"\1")); assert code() == 1'
t_check "the VM was not stopped by it" alive
t_check "unknown requests are refused and the connection stays usable" \
	speak 'hello(); s.sendall(frame(0x1234, b"x" * 100)); assert code() == 3; s.sendall(frame(2)); assert reply()[0] == 0x8003'
t_check "input before attach is refused" \
	speak 'hello(); s.sendall(frame(8, b"poweroff\r")); assert code() == 8'
t_check "a read-only client cannot type" \
	speak 'hello(); s.sendall(frame(7, bytes([1, 0, 0, 24, 0, 80]))); assert reply()[0] == 0x8004
s.sendall(frame(8, b"poweroff\r"))
while True:
    t, p = reply()
    if t == 0x8001:
        assert struct.unpack(">I", p[:4])[0] == 7
        break'
sleep 0.5
t_check "the VM was not powered off by the read-only client" alive
t_check "a flood of connections is capped, the owner still gets in after" \
	speak 'import time
cs = []
for i in range(40):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(3)
    for _ in range(300):
        try:
            c.connect(sys.argv[1]); break
        except (BlockingIOError, socket.timeout):
            time.sleep(0.01)
    cs.append(c)
busy = 0
for c in cs:
    c.settimeout(0.2)  # the accepted ones hear nothing
    try:
        h = c.recv(8)
        if len(h) == 8 and struct.unpack(">IHH", h)[1] == 0x8001:
            busy += struct.unpack(">I", c.recv(4))[0] == 11
    except socket.timeout:
        pass
    c.close()
assert busy >= 20, busy'
t_check "the VM survives the flood" alive

# Another user. The runtime directory (0700) keeps them out to begin with.
as_nobody() { (cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"); }
py=/usr/bin/python3
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && as_nobody "$py" -c pass 2>/dev/null; then
	out=$(as_nobody "$py" -c 'import socket,sys
try:
    socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print("connected")
except PermissionError:
    print("refused")' "$sockpath" 2>&1)
	t_check "another user cannot even reach the socket" grep -qx refused <<<"$out"
	# With the permissions loosened by mistake, the VM process still refuses
	# them after checking the peer's credentials.
	chmod 711 "$TERMVISOR_HOME" "$TERMVISOR_HOME/run"
	chmod 666 "$sockpath"
	out=$(as_nobody "$py" - "$sockpath" <<'EOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(sys.argv[1])
try:
    # hello, then force-off: refused before either is read
    s.sendall(struct.pack(">IHHI", 4, 1, 0, 1) + struct.pack(">IHH", 0, 6, 0))
except OSError:
    pass
data = b""
while True:
    try:
        c = s.recv(4096)
    except OSError:
        break
    if not c:
        break
    data += c
print(repr(data))
EOF
)
	chmod 700 "$TERMVISOR_HOME" "$TERMVISOR_HOME/run"
	chmod 600 "$sockpath"
	t_check "another user's connection is refused by the VM process" \
		grep -q "permission denied" <<<"$out"
	t_check "and their force-off never happened" alive
else
	echo "# the other-user checks need root, a nobody user and $py it can run"
fi
t_done
