#!/usr/bin/env bash
# The demo guest on the user network (its `net` command, share/demo): DHCP
# hands it 10.0.2.15 with the gateway 10.0.2.2, the gateway answers its ping,
# and a host-side client reaches the guest's TCP and UDP echo services through
# forwards on 127.0.0.1 and gets its data back.
. "$top_srcdir/tests/lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
grep -q 'net: lease' "$demo" || t_skip_all "the demo guest has no net command yet"
command -v python3 >/dev/null || t_skip_all "python3 is missing"
t_home
# Two host ports free a moment ago. (No process substitution: the nested
# machine's chroot has no /dev/fd.)
ports=$(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
read -r tport uport <<<"$ports"

python3 - "$TV" "$demo" "$tport" "$uport" <<'PY'
import os, pty, re, select, socket, sys, time
tv, demo, tport, uport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
n = 0
failed = False
def check(ok, what, detail=""):
    global n, failed
    n += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
    if not ok:
        failed = True
        print("# " + repr(detail)[-400:])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(tv, [tv, "run", "--kernel", demo, "--memory", "64M",
                   "--net", "user,forward=tcp::%d:7,forward=udp::%d:7" % (tport, uport),
                   "--append", "console=ttyS0"])
text = b""
def expect(pattern, timeout):
    global text
    end = time.monotonic() + timeout
    while True:
        m = re.search(pattern, ANSI.sub(b"", text.replace(b"\r", b"")))
        if m:
            return m
        if time.monotonic() > end:
            return None
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                text += os.read(fd, 65536)
            except OSError:
                return None
def command(line, pattern, timeout=20):
    global text
    text = b""
    os.write(fd, line.encode() + b"\r")
    return expect(pattern, timeout)
try:
    check(expect(rb"demo\$ ", 60) is not None, "the demo guest reaches its prompt", text)
    # (to the end of the line: an address read while it arrives is cut short)
    m = command("net dhcp", rb"net: (lease \S+ gw \S+|dhcp failed)\n")
    got = m.group(0).decode().strip() if m else None
    check(got == "net: lease 10.0.2.15 gw 10.0.2.2", "DHCP: lease 10.0.2.15 gw 10.0.2.2 (got %s)" % got, text)
    m = command("net ping 10.0.2.2", rb"net: (reply from \S+|no reply)\n")
    got = m.group(0).decode().strip() if m else None
    check(got == "net: reply from 10.0.2.2", "the gateway answers a ping (got %s)" % got, text)
    for proto, port in (("tcp", tport), ("udp", uport)):
        os.write(fd, ("net %s-echo 7\r" % proto).encode())
        time.sleep(1)
        data = b"echo through the %s forward\n" % proto.encode()
        back = b""
        try:
            if proto == "tcp":
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(data)
                s.settimeout(10)
                while len(back) < len(data):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    back += chunk
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(3)
                for _ in range(3):  # the first datagram may wait for ARP
                    s.sendto(data, ("127.0.0.1", port))
                    try:
                        back = s.recv(4096)
                        break
                    except socket.timeout:
                        pass
            s.close()
        except OSError as e:
            back = repr(e).encode()
        check(back == data, "the guest's %s echo answers through the forward on 127.0.0.1:%d" % (proto, port), back)
        os.write(fd, b"q")  # a key ends the echo service
        expect(rb"demo\$ ", 10)
finally:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
