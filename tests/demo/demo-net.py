#!/usr/bin/env python3
"""Drives the demo guest's `net` command on one or more machines and checks what it
prints.  Each machine is a command line (one shell word list, split here) whose serial
console is on its stdin/stdout: termvisor run, or QEMU.  Prints TAP lines; exits 0 when
everything passed, 1 otherwise.

usage: demo-net.py user --machine CMD --tcp-port P --udp-port P --recv-port P
           (a user-mode network with DHCP at 10.0.2.2, host TCP port P forwarded to
           the guest's port 7, host UDP port P to guest port 9 and --recv-port to 5555)
       demo-net.py lab --a CMD --b CMD --c CMD [--idle-ping]
           (a and b on one lab network, c on another; --idle-ping: a answers pings
           at its prompt, where the device interrupts on receive)
       demo-net.py tap --machine CMD --host-ip A.B.C.D
           (a tap device whose host end has address A.B.C.D/24: the guest takes
           A.B.C.(D+1) and pings the host)
"""
import argparse
import importlib.util
import os
import re
import shlex
import socket
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("demo_shell", os.path.join(here, "demo-shell.py"))
demo_shell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_shell)
Console, Tap, PROMPT = demo_shell.Console, demo_shell.Tap, demo_shell.PROMPT

BOOT_S = 60     # nested machines emulate much of the guest
CMD_S = 30


def boot(cmd):
    con = Console(shlex.split(cmd))
    con.expect(re.escape(PROMPT), BOOT_S)
    return con


def start(con, line):
    """Types a command and waits for the guest to have taken the line."""
    con.send(line.encode() + b"\r")
    con.expect(re.escape(line.encode()), CMD_S)


def host_tcp_echo(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


def host_udp_echo(port, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for _ in range(5):  # the forward may drop the first while the guest learns ARP
            s.sendto(data, ("127.0.0.1", port))
            try:
                return s.recvfrom(2048)[0]
            except socket.timeout:
                continue
    return b""


def user(a, tap):
    con = boot(a.machine)
    try:
        out = con.command("net mac", CMD_S)
        tap.check(re.search(rb"net: mac 52:54:00(:[0-9a-f]{2}){3}", out) is not None,
                  "net mac shows the NIC's address", out)
        out = con.command("net dhcp", CMD_S)
        tap.check(b"net: lease 10.0.2.15 gw 10.0.2.2" in out,
                  "net dhcp gets a lease and the gateway", out)
        out = con.command("net ping 10.0.2.2", CMD_S)
        tap.check(b"net: reply from 10.0.2.2" in out, "the gateway answers a ping", out)

        start(con, "net tcp-echo 7")
        con.expect(rb"net: echo on 7", CMD_S)
        data = b"hello over tcp, through the port forward\n" * 20
        got = host_tcp_echo(a.tcp_port, data)
        tap.check(got == data, "a host connection to the forward gets its data echoed",
                  got[:200])
        got = host_tcp_echo(a.tcp_port, b"again\n")
        tap.check(got == b"again\n", "a second connection is served after the first closed",
                  got)
        con.send(b"q")
        out = con.expect(rb"net: echo stopped \((\d+) bytes echoed\)\n", CMD_S)
        tap.check(int(out.group(1)) == len(data) + 6, "the guest counts what it echoed",
                  out.group(0))
        con.expect(re.escape(PROMPT), CMD_S)

        start(con, "net udp-echo 9")
        con.expect(rb"net: echo on 9", CMD_S)
        got = host_udp_echo(a.udp_port, b"hello over udp")
        tap.check(got == b"hello over udp", "a host datagram to the forward is echoed", got)
        con.send(b"q")
        con.expect(re.escape(PROMPT), CMD_S)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(CMD_S)
            port = s.getsockname()[1]
            out = con.command("net send 10.0.2.2 %d from the guest" % port, CMD_S)
            try:
                got = s.recvfrom(2048)[0]
            except socket.timeout:
                got = b""
            tap.check(got == b"from the guest", "net send reaches a host socket", (out, got))

        start(con, "net recv 5555 %d" % CMD_S)
        con.expect(rb"net: waiting on 5555", CMD_S)
        # The guest echoes the line before it listens: a datagram sent at
        # once may come before the port is open and be dropped, as on any
        # host. Sent again until the guest says what it got (it takes one).
        m = None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(int(CMD_S / 0.3) + 1):
                s.sendto(b"to the guest", ("127.0.0.1", a.recv_port))
                try:
                    m = con.expect(rb"net: (got .* from \S+|nothing)\n", 0.3)
                    break
                except TimeoutError:
                    pass
        if m is None:
            m = con.expect(rb"net: (got .* from \S+|nothing)\n", CMD_S)
        tap.check(m.group(1).startswith(b"got to the guest from 10.0.2."),
                  "net recv prints a host datagram", m.group(0))
        con.expect(re.escape(PROMPT), CMD_S)

        out = con.command("net stats", CMD_S)
        m = re.search(rb"net: frames in (\d+) out (\d+)", out)
        tap.check(m is not None and int(m.group(1)) > 0 and int(m.group(2)) > 0,
                  "net stats counts frames both ways", out)
        con.send(b"poweroff\r")
        tap.check(con.wait_exit(20) == 0, "the guest powers off")
    finally:
        con.kill()


def lab(a, tap):
    machines = []
    try:
        for cmd in (a.a, a.b, a.c):
            machines.append(boot(cmd))
        ma, mb, mc = machines
        for con, ip in ((ma, "192.168.50.1"), (mb, "192.168.50.2"), (mc, "192.168.50.3")):
            out = con.command("net ip %s/24" % ip, CMD_S)
            tap.check(b"net: address %s/24" % ip.encode() in out, "net ip sets " + ip, out)
        if a.idle_ping:
            out = mb.command("net ping 192.168.50.1", CMD_S)
            tap.check(b"net: reply from 192.168.50.1" in out,
                      "a guest at its prompt answers a ping on the lab network", out)
        out = mc.command("net recv 4000 0", CMD_S)
        tap.check(b"usage: net recv PORT [SECONDS]" in out, "net recv refuses a wait of 0 s", out)
        # b to a, unicast. The listener waits as long as the steps after it
        # may take on a loaded machine (it ends when the datagram comes); c,
        # alone on lab2, must not have had a frame (its counters).
        start(ma, "net recv 4000 %d" % CMD_S)
        ma.expect(rb"net: waiting on 4000", CMD_S)  # listening: b may send
        out = mb.command("net send 192.168.50.1 4000 hello-a", CMD_S)
        m = ma.expect(rb"net: (got \S+ from \S+|nothing)\n", CMD_S)
        tap.check(m.group(1) == b"got hello-a from 192.168.50.2",
                  "a datagram from b reaches a on lab1", (out, m.group(0)))
        ma.expect(re.escape(PROMPT), CMD_S)
        out = mc.command("net stats", CMD_S)
        tap.check(re.search(rb"net: frames in 0 ", out) is not None,
                  "c on lab2 sees nothing of it", out)
        # a broadcast floods lab1, and stays there
        start(mb, "net recv 4001 %d" % CMD_S)
        mb.expect(rb"net: waiting on 4001", CMD_S)  # a broadcast needs no ARP: not before
        ma.command("net send 192.168.50.255 4001 to-all", CMD_S)
        m = mb.expect(rb"net: (got \S+ from \S+|nothing)\n", CMD_S)
        tap.check(m.group(1) == b"got to-all from 192.168.50.1",
                  "a broadcast from a reaches b", m.group(0))
        mb.expect(re.escape(PROMPT), CMD_S)
        out = mc.command("net stats", CMD_S)
        tap.check(re.search(rb"net: frames in 0 ", out) is not None,
                  "c on lab2 does not see the broadcast", out)
        # pings both ways while the other serves
        start(ma, "net udp-echo 4002")
        ma.expect(rb"net: echo on 4002", CMD_S)
        out = mb.command("net ping 192.168.50.1", CMD_S)
        tap.check(b"net: reply from 192.168.50.1" in out, "b pings a", out)
        out = mc.command("net ping 192.168.50.1", CMD_S)
        tap.check(b"net: no reply" in out, "c cannot ping a from lab2", out)
        ma.send(b"q")
        ma.expect(re.escape(PROMPT), CMD_S)
        out = mc.command("net stats", CMD_S)
        tap.check(re.search(rb"net: frames in 0 ", out) is not None,
                  "c received no frame at all", out)
        for con in (ma, mb, mc):
            con.send(b"poweroff\r")
        tap.check(all(con.wait_exit(20) == 0 for con in (ma, mb, mc)),
                  "the guests power off")
    finally:
        for con in machines:
            con.kill()


def tap_net(a, tap):
    """The guest's frames leave through the tap and the host kernel's reply
    comes back through it."""
    host = a.host_ip.split(".")
    guest = ".".join(host[:3] + [str(int(host[3]) + 1)])
    con = boot(a.machine)
    try:
        out = con.command("net ip %s/24" % guest, CMD_S)
        tap.check(b"net: address %s/24" % guest.encode() in out, "net ip sets " + guest, out)
        out = con.command("net ping " + a.host_ip, CMD_S)
        tap.check(b"net: reply from " + a.host_ip.encode() in out,
                  "the host answers the guest's ping through the tap device", out)
        con.send(b"poweroff\r")
        tap.check(con.wait_exit(20) == 0, "the guest powers off")
    finally:
        con.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=("user", "lab", "tap"))
    ap.add_argument("--host-ip")
    ap.add_argument("--machine")
    ap.add_argument("--tcp-port", type=int)
    ap.add_argument("--udp-port", type=int)
    ap.add_argument("--recv-port", type=int)
    ap.add_argument("--a")
    ap.add_argument("--b")
    ap.add_argument("--c")
    ap.add_argument("--idle-ping", action="store_true")
    a = ap.parse_args()
    tap = Tap()
    try:
        {"user": user, "lab": lab, "tap": tap_net}[a.scenario](a, tap)
    except (TimeoutError, EOFError) as e:
        tap.check(False, "the session went as planned", str(e))
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
