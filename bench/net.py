#!/usr/bin/env python3
"""Network throughput and memory, termvisor against QEMU, side by side.

The guest is the VM `termvisor create --template debian-minimal` made (DIR: its
data directory: kernel, initrd, disk.qcow2); every machine boots a copy of its
disk, root logs in on ttyS0 and busybox's nc moves the data.

(a) TCP through a port forward on the user network, host to guest and guest to
    host: termvisor's user network against QEMU's (-netdev user,hostfwd=...),
    virtio-net on PCI on both. The host's side is here: it sends (or receives)
    the bytes and times from the first byte to the guest's EOF (host to guest:
    the guest's nc closes once it has read everything) or to the last byte
    (guest to host, with the count checked).
(b) TCP guest to guest: two termvisor VMs on a lab network (through its
    switch process) against two QEMU guests joined by -netdev dgram over UNIX
    sockets (the same framing, one datagram a frame, without a switch),
    two more QEMU guests on termvisor's switch (its share apart from the
    engine's), and two QEMU guests each on its own -netdev user, the sender
    reaching the receiver through the gateway and the receiver's hostfwd
    (QEMU's user-mode network, what two unprivileged QEMU guests have). Timed in the sending guest, from before its dd starts to after
    its nc ends.
(c) Memory: the termvisor VM process at the guest's shell without a NIC and
    with one on the user network (after DHCP).
Runs alternate between the engines. Prints Markdown on stdout, each run on stderr.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot import smaps_beyond_ram  # noqa: E402

GUEST_PORT = 5001
MIB = 1 << 20


class GuestError(Exception):
    pass


class Guest:
    """A VM with its serial console on a pipe: the console is kept in memory
    and in NAME.console in the scratch directory."""

    def __init__(self, name, argv, scratch):
        self.name = name
        self.argv = argv
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self.n = 0
        self.dead = False
        self.logf = open(os.path.join(scratch, name + ".console"), "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.p.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.logf.write(chunk)
                self.logf.flush()
                self.cond.notify_all()

    def tail(self, lines=15):
        with self.cond:
            text = bytes(self.buf[-4000:]).decode(errors="replace").replace("\r", "")
        return "\n".join("#   " + x for x in text.splitlines()[-lines:])

    def fail(self, what):
        status = self.p.poll()
        raise GuestError("%s: %s (%s); its console's last lines:\n%s" % (
            self.name, what, "running" if status is None else "exited with status %d" % status,
            self.tail()))

    def wait(self, pattern, timeout, start=0):
        """The match of pattern (a bytes regex) in the console from offset start."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern, re.S)
        with self.cond:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return m
                left = end - time.monotonic()
                if left <= 0:
                    self.fail("no %r within %d s" % (pattern.decode(), timeout))
                if self.eof:
                    self.p.wait()
                    self.fail("ended before %r" % pattern.decode())
                self.cond.wait(min(left, 1.0))

    def send(self, text):
        try:
            self.p.stdin.write(text.encode())
            self.p.stdin.flush()
        except (BrokenPipeError, ValueError):
            self.fail("cannot take input")

    def run(self, cmd, timeout=120):
        """Runs cmd in the guest's shell: its output, found between two markers
        that the echoed command line (quoted apart) cannot match."""
        self.n += 1
        with self.cond:
            start = len(self.buf)
        self.send('echo "=beg""in%d="; %s; echo "=do""ne%d="\n' % (self.n, cmd, self.n))
        m = self.wait(rb"=begin%d=\r?\n(.*?)=done%d=" % (self.n, self.n), timeout, start)
        return m.group(1).decode(errors="replace").replace("\r", "").strip()

    def login(self, timeout):
        self.wait(rb"login: ", timeout)
        self.send("root\n")
        # Typed before the shell is there, a line would be lost at login.
        self.wait(rb"root@[^ ]*# ", 120)
        self.run("dmesg -n 1")  # kernel messages would land among the markers

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.reader.join(5)
        self.logf.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, timeout):
    end = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError as e:
            if time.monotonic() > end:
                raise GuestError("cannot connect to the forward on 127.0.0.1:%d: %s" % (port, e))
            time.sleep(0.2)


class Stalled(Exception):
    """A transfer that stopped moving: counted as such, the guest made ready
    for the next one."""


STALL = 30  # seconds without a byte moving: a transfer is stalled
STALL_NOTE = ("A run marked stalled moved no byte for %d s (or did not end): it was "
              "stopped there and the median is of the others; the log on stderr "
              "has the guest's TCP state after it, or says that its shell no longer "
              "answered (then its later runs are marked stalled too)." % STALL)


def stalled(g, what):
    """Stops what the guest's shell runs (Ctrl-C), logs its TCP state and
    raises Stalled(what)."""
    g.send("\x03")
    time.sleep(1)
    g.send("\n")
    try:
        # Whether frames still come and go: eth0's packet counts 3 s apart.
        state = g.run("grep '^Tcp:' /proc/net/snmp; cat /proc/net/tcp | tail -n +2; "
                      "c=/sys/class/net/eth0/statistics; echo rx/tx packets $(cat $c/rx_packets "
                      "$c/tx_packets); sleep 3; echo 3 s later $(cat $c/rx_packets $c/tx_packets)", 60)
        sys.stderr.write("# %s: %s; its TCP counters, sockets and eth0 now:\n%s\n"
                         % (g.name, what, "\n".join("#   " + x for x in state.splitlines())))
    except GuestError as e:
        # A guest whose shell is gone takes no further runs.
        g.dead = True
        sys.stderr.write("# %s: %s; its shell does not answer: %s\n" % (g.name, what, e))
    raise Stalled(what)


def host_to_guest(g, port, nbytes, timeout):
    """MB/s: the host sends nbytes through the forward to the guest's nc."""
    g.run("nc -l -p %d </dev/null >/dev/null & sleep 1" % GUEST_PORT)
    block = bytes(64 << 10)
    s = connect(port, 30)
    left = nbytes
    err = None
    try:
        s.settimeout(STALL)
        t0 = time.monotonic()
        while left > 0:
            s.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
            if time.monotonic() - t0 > timeout:
                raise socket.timeout("over %d s" % timeout)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):  # the guest's nc sends nothing; EOF when it ends
            pass
        t = time.monotonic() - t0
    except OSError as e:
        err = e
    finally:
        s.close()  # a stalled guest nc gets its reset
    if err is not None:
        stalled(g, "host to guest: %s after %d of %d bytes sent" % (
            err if str(err) else type(err).__name__, nbytes - left, nbytes))
    out = g.run("wait; echo waited", 60)
    if not out.endswith("waited"):
        g.fail("its nc did not end: %r" % out)
    return nbytes / t / 1e6


def guest_to_host(g, nbytes, timeout):
    """MB/s: the guest's nc sends nbytes to a host socket through the gateway."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(60)
    port = ls.getsockname()[1]
    got = {"n": 0, "first": None, "last": None}

    def receive():
        try:
            c, _ = ls.accept()
        except OSError as e:
            got["error"] = "no connection: %s" % e
            return
        with c:
            c.settimeout(STALL)
            try:
                while True:
                    d = c.recv(1 << 20)
                    if not d:
                        break
                    got["last"] = time.monotonic()
                    if got["first"] is None:
                        got["first"] = got["last"]
                    got["n"] += len(d)
            except OSError as e:  # a stall: closing gives the guest's nc a reset
                got["error"] = "%s with nothing for %d s" % (e if str(e) else type(e).__name__, STALL)
            got["eof"] = time.monotonic()

    th = threading.Thread(target=receive, daemon=True)
    th.start()
    try:
        out = g.run("dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc -w 5 10.0.2.2 %d; echo nc=$?"
                    % (nbytes >> 16, port), timeout)
    except GuestError as e:
        out = None
        why = str(e).splitlines()[0]
    th.join(STALL + 5)
    ls.close()
    if out is None or "error" in got or got["n"] != nbytes:
        stalled(g, "guest to host: the host got %d of %d bytes (%s; the guest's nc: %s)" % (
            got["n"], nbytes, got.get("error", "no error"), out if out is not None else why))
    # From the first byte to the last: the guest's nc may linger (-w) before it
    # closes; that wait is not the network's.
    if got["eof"] - got["last"] > 1:
        sys.stderr.write("# %s: EOF %.2f s after the last byte\n" % (g.name, got["eof"] - got["last"]))
    return nbytes / (got["last"] - got["first"]) / 1e6


def guest_to_guest(src, dst, dst_addr, nbytes, timeout, port=GUEST_PORT):
    """MB/s: src's nc sends nbytes to dst's (listening on GUEST_PORT; src
    connects to dst_addr:port), timed in src by its uptime."""
    dst.run("nc -l -p %d </dev/null >/dev/null & sleep 1" % GUEST_PORT)
    try:
        out = src.run("a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=64k count=%d 2>/dev/null"
                      " | nc -w 5 %s %d; r=$?; b=$(cut -d' ' -f1 /proc/uptime); echo $a $b $r"
                      % (nbytes >> 16, dst_addr, port), timeout)
    except GuestError as e:
        try:
            stalled(src, "guest to guest: %s" % str(e).splitlines()[0])
        finally:
            dst.send("\x03")
            dst.run("wait; echo waited", 60)
    try:
        done = dst.run("wait; echo waited", 60)
    except GuestError as e:
        stalled(dst, "guest to guest: the receiver's nc did not end after the sender's "
                "(%r): %s" % (out, str(e).splitlines()[0]))
    f = out.split()
    if len(f) != 3 or f[2] != "0" or not done.endswith("waited"):
        raise Stalled("guest to guest: the sender said %r, the receiver %r" % (out, done))
    return nbytes / (float(f[1]) - float(f[0])) / 1e6


DEADLINE = None  # time.monotonic() after which no further run starts (--deadline)


def attempt(name, fn, *args):
    """fn's MB/s, or None when it stalled (logged), its guest no longer
    answers (then it takes no further runs), or the run's time is up."""
    if any(isinstance(x, Guest) and x.dead for x in args):
        sys.stderr.write("# %s: not run, its guest no longer answers\n" % name)
        return None
    if DEADLINE is not None and time.monotonic() > DEADLINE:
        sys.stderr.write("# %s: not run, the run's time (--deadline) is up\n" % name)
        return None
    try:
        return fn(*args)
    except Stalled as e:
        sys.stderr.write("# %s stalled: %s\n" % (name, e))
        return None
    except GuestError as e:
        for x in args:
            if isinstance(x, Guest):
                x.dead = True
        sys.stderr.write("# %s failed, its guests take no further runs: %s\n" % (name, e))
        return None


def med(xs):
    """The median of the runs that did not stall."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def mbs(x):
    return "stalled" if x is None else "%.1f" % x


def runs_of(xs):
    return ", ".join(mbs(x) for x in xs)


def ratio_of(xs, ys):
    """The ratio of two runs' medians, "-" where either has none."""
    x, y = med(xs), med(ys)
    return "-" if x != x or y != y or not y else "%.2f" % (x / y)


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--termvisor", required=True)
    ap.add_argument("--vm", required=True, metavar="DIR", help="kernel, initrd, disk.qcow2")
    ap.add_argument("--cmdline", default="console=ttyS0 root=/dev/vda rw quiet")
    ap.add_argument("--memory", type=int, default=256, help="MiB")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--mib", type=int, default=64, help="MiB a transfer (a)")
    ap.add_argument("--lab-mib", type=int, default=64, help="MiB a transfer (b)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--boot-timeout", type=int, default=300)
    ap.add_argument("--timeout", type=int, default=180, help="seconds a transfer may take")
    ap.add_argument("--deadline", type=int, help="seconds after which no further run starts; "
                    "the figures so far are written")
    ap.add_argument("--parts", default="user,lab,memory")
    ap.add_argument("--scratch", required=True)
    if "TERMVISOR_HOME" not in os.environ:
        sys.exit("bench/net.py: TERMVISOR_HOME is not set (bench/net.sh sets it)")
    ap.add_argument("--results", metavar="FILE", help="put the figures into FILE (Markdown)")
    ap.add_argument("--nested", action="store_true", help="taken inside tests/kvm-in-qemu.sh")
    a = ap.parse_args()
    started, load_before = time.monotonic(), loadavg()
    global DEADLINE
    if a.deadline is not None:
        DEADLINE = started + a.deadline
    parts = set(a.parts.split(","))
    if not parts <= {"user", "lab", "memory"} or not parts:
        ap.error("--parts %s: expected a list of user, lab and memory" % a.parts)
    kernel, initrd, disk = (os.path.join(a.vm, f) for f in ("kernel", "initrd", "disk.qcow2"))
    for f in (kernel, initrd, disk):
        if not os.path.isfile(f):
            sys.exit("bench/net.py: %s is missing (the VM's data directory, --vm)" % f)
    # An ended run (timeout's SIGTERM) still stops its VMs below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    mem, cpus = str(a.memory), str(a.cpus)
    log = sys.stderr
    guests = []
    helpers = []

    def copy(name):
        path = os.path.join(a.scratch, name + ".qcow2")
        shutil.copyfile(disk, path)
        return path

    def tv(name, *net):
        argv = [a.termvisor, "run", "--cpus", cpus, "--memory", mem + "M", "--kernel", kernel,
                "--initrd", initrd, "--append", a.cmdline, "--disk", copy(name) + ",format=qcow2"]
        for n in net:
            argv += ["--net", n]
        guests.append(Guest(name, argv, a.scratch))
        return guests[-1]

    def qemu(name, netdev, mac):
        # The devices termvisor gives a VM, on PCI: virtio-blk, -rng, -console
        # (its hvc0 to nothing) and virtio-net, modern only, no option ROM.
        argv = ["qemu-system-x86_64", "-accel", "kvm", "-M", "q35", "-nodefaults",
                "-no-user-config", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-m", mem, "-smp", cpus, "-kernel", kernel, "-initrd", initrd,
                "-append", a.cmdline,
                "-drive", "file=%s,if=none,id=d0,format=qcow2" % copy(name),
                "-device", "virtio-blk-pci,drive=d0", "-device", "virtio-rng-pci",
                "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=hv",
                "-chardev", "null,id=hv", "-netdev", netdev,
                "-device", "virtio-net-pci,netdev=n0,mac=%s,disable-legacy=on,romfile=" % mac]
        guests.append(Guest(name, argv, a.scratch))
        return guests[-1]

    def up(gs):
        t0 = time.monotonic()
        for g in gs:
            g.login(a.boot_timeout)
        log.write("# %s at their shells after %.1f s\n" % (", ".join(g.name for g in gs),
                                                           time.monotonic() - t0))

    def lease(g):
        for _ in range(30):
            out = g.run("ifconfig eth0 | sed -n 's/.*inet addr:\\([0-9.]*\\).*/\\1/p'")
            if out == "10.0.2.15":
                return
            time.sleep(1)
        g.fail("no DHCP lease (10.0.2.15) on eth0 within 30 s")

    def stop_all():
        while guests:
            guests.pop().stop()

    out = []
    failed = None
    nbytes, lab_bytes = a.mib * MIB, a.lab_mib * MIB
    try:
        if "user" in parts or "memory" in parts:
            tport, qport = free_port(), free_port()
            machines = [
                ("termvisor, user network", tv("tv-user", "user,forward=tcp::%d:%d" % (tport, GUEST_PORT)), tport),
                ("QEMU -M q35, -netdev user", qemu("qemu-user", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d"
                                                   % (qport, GUEST_PORT), "52:54:00:12:34:56"), qport)]
            bare = tv("tv-none") if "memory" in parts else None
            up([m[1] for m in machines] + ([bare] if bare else []))
            for _, g, _ in machines:
                lease(g)
            if bare:
                nics = bare.run("ls /sys/class/net | tr '\\n' ' '")
                if "eth0" in nics.split():
                    bare.fail("a network card without --net (%s)" % nics)
                time.sleep(2)  # both idle at their shells
                rows = []
                for g in (bare, machines[0][1]):
                    total, ram, private, pss = smaps_beyond_ram(g.p.pid, a.memory * MIB)
                    rows.append((vm_rss_kib(g.p.pid), total - ram, pss, private))
                    log.write("# memory %s: VmRSS %d KiB, beyond guest RAM %d KiB, Pss beyond %d KiB, "
                              "private beyond %d KiB\n" % ((g.name,) + rows[-1]))
                guests.remove(bare)
                bare.stop()
                out.append("| (c) the termvisor VM process at the guest's shell (%s MiB guest) | "
                           "no NIC | one NIC, user network, after DHCP | difference |" % mem)
                out.append("|---|---|---|---|")
                for i, what in enumerate(("VmRSS, guest RAM included",
                                          "resident beyond the guest RAM mapping",
                                          "Pss beyond guest RAM", "private beyond guest RAM")):
                    d = rows[1][i] - rows[0][i]
                    out.append("| %s | %.2f MiB | %.2f MiB | %s%.2f MiB%s |" % (
                        what, rows[0][i] / 1024, rows[1][i] / 1024, "**" if i == 1 else "",
                        d / 1024, "** (target < 2)" if i == 1 else ""))
                out.append("")
            if "user" in parts:
                # A short transfer each way first, not counted: the paths work.
                for _, g, port in machines:
                    attempt(g.name + " h2g, not counted", host_to_guest, g, port, 4 * MIB, a.timeout)
                    attempt(g.name + " g2h, not counted", guest_to_host, g, 4 * MIB, a.timeout)
                res = {(d, i): [] for d in ("h2g", "g2h") for i in range(2)}
                for r in range(a.runs):
                    for d in ("h2g", "g2h"):
                        for k in range(2):
                            i = (r + k) % 2
                            _, g, port = machines[i]
                            what = "%s %s run %d" % (g.name, d, r + 1)
                            x = (attempt(what, host_to_guest, g, port, nbytes, a.timeout) if d == "h2g"
                                 else attempt(what, guest_to_host, g, nbytes, a.timeout))
                            res[(d, i)].append(x)
                            log.write("# %s: %s MB/s\n" % (what, mbs(x)))
                out.append("| (a) TCP through a port forward, %d MiB a run, %d alternating runs, "
                           "MB/s (10^6 bytes/s) | termvisor | QEMU -netdev user | termvisor / QEMU |"
                           % (a.mib, a.runs))
                out.append("|---|---|---|---|")
                for d, what in (("h2g", "host to guest (host socket -> forward -> guest nc)"),
                                ("g2h", "guest to host (guest nc -> 10.0.2.2 -> host socket)")):
                    t, q = res[(d, 0)], res[(d, 1)]
                    out.append("| %s | %s (%s) | %s (%s) | **%.2f** |" % (
                        what, mbs(med(t)), runs_of(t), mbs(med(q)), runs_of(q), med(t) / med(q)))
                if any(x is None for xs in res.values() for x in xs):
                    out.append("")
                    out.append(STALL_NOTE)
                out.append("")
            stop_all()

        if "lab" in parts:
            # The lab network's switch, started here (not by the first VM, which
            # would leave it lingering) and stopped with the VMs.
            sock = os.path.join(os.environ["TERMVISOR_HOME"], "run", "lab", "benchlab.sock")
            switch_log = os.path.join(a.scratch, "switch.log")
            with open(switch_log, "wb") as f:
                switch = subprocess.Popen([a.termvisor, "lab-switch", "--linger", "0", "benchlab"],
                                          stdin=subprocess.DEVNULL, stdout=f,
                                          stderr=subprocess.STDOUT, start_new_session=True)
            helpers.append(switch)
            for _ in range(300):
                if os.path.exists(sock) or switch.poll() is not None:
                    break
                time.sleep(0.1)
            if not os.path.exists(sock):
                raise GuestError("termvisor lab-switch benchlab made no %s (status %s)"
                                 % (sock, switch.poll()))
            sw = os.path.join(a.scratch, "q%d.sock")
            pairs = [
                ("termvisor, lab network (switch process)",
                 tv("tv-lab1", "lab,name=benchlab,mac=52:54:00:00:77:01"),
                 tv("tv-lab2", "lab,name=benchlab,mac=52:54:00:00:77:02")),
                ("QEMU, -netdev dgram (UNIX sockets, point to point)",
                 qemu("qemu-lab1", "dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                      "remote.path=%s" % (sw % 1, sw % 2), "52:54:00:00:78:01"),
                 qemu("qemu-lab2", "dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                      "remote.path=%s" % (sw % 2, sw % 1), "52:54:00:00:78:02")),
                # QEMU guests on termvisor's switch (termvisor-net(7) says how):
                # the switch's share of the cost, apart from the engine's.
                ("QEMU, -netdev dgram on termvisor's lab switch",
                 qemu("qemu-sw1", "dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                      "remote.path=%s" % (sw % 3, sock), "52:54:00:00:79:01"),
                 qemu("qemu-sw2", "dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                      "remote.path=%s" % (sw % 4, sock), "52:54:00:00:79:02"))]
            # Guest to guest on QEMU's user-mode network (the peer for
            # all three figures): each guest has its own -netdev user, the
            # sender connects to the gateway's port, which the host's loopback
            # carries to the receiver's hostfwd.
            uport = free_port()
            pairs.append(("QEMU, -netdev user, guest to guest through a host port forward",
                          qemu("qemu-ug1", "user,id=n0", "52:54:00:00:7a:01"),
                          qemu("qemu-ug2", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d"
                               % (uport, GUEST_PORT), "52:54:00:00:7a:02")))
            user_pair = len(pairs) - 1
            up([g for p in pairs for g in p[1:]])
            # Addresses of their own per pair: the termvisor pair and the QEMU
            # pair on the switch share one network, where the same two
            # addresses twice made ARP send each pair's segments to the other
            # (the runs stalled).
            peer = ["192.168.77.%d" % (10 * k + 2) for k in range(len(pairs))]
            ports = [GUEST_PORT] * len(pairs)
            peer[user_pair], ports[user_pair] = "10.0.2.2", uport
            for k, (_, g1, g2) in enumerate(pairs):
                if k == user_pair:  # addresses from QEMU's DHCP; no ping through slirp
                    lease(g1)
                    lease(g2)
                    attempt(g1.name + " g2g, not counted", guest_to_guest, g1, g2, peer[k],
                            4 * MIB, a.timeout, ports[k])
                    continue
                for g, ip in ((g1, "192.168.77.%d" % (10 * k + 1)), (g2, peer[k])):
                    # No DHCP server on these networks: the template's client
                    # is stopped, the address is static.
                    g.run("kill $(cat /tmp/udhcpc.pid) 2>/dev/null; "
                          "ifconfig eth0 %s netmask 255.255.255.0 up" % ip)
                ping = g1.run("ping -c 1 -W 10 %s >/dev/null && echo reply || echo none" % peer[k], 60)
                if ping != "reply":  # this pair takes no runs; the others go on
                    log.write("# %s: no ping reply from %s (%s)\n" % (g1.name, peer[k], ping))
                    g1.dead = True
                    continue
                attempt(g1.name + " g2g, not counted", guest_to_guest, g1, g2, peer[k],
                        4 * MIB, a.timeout)
            res = [[] for _ in pairs]
            for r in range(a.runs):
                for k in range(len(pairs)):
                    i = (r + k) % len(pairs)
                    _, g1, g2 = pairs[i]
                    what = "%s -> %s run %d" % (g1.name, g2.name, r + 1)
                    x = attempt(what, guest_to_guest, g1, g2, peer[i], lab_bytes, a.timeout,
                                ports[i])
                    res[i].append(x)
                    log.write("# %s: %s MB/s\n" % (what, mbs(x)))
            out.append("| (b) TCP guest to guest, %d MiB a run, %d alternating runs, MB/s "
                       "(sender's clock) | median | runs | termvisor / QEMU |" % (a.lab_mib, a.runs))
            out.append("|---|---|---|---|")
            for i, (what, _, _) in enumerate(pairs):
                if i == 0:
                    ratio = "**%s** (against the next row)" % ratio_of(res[0], res[1])
                elif i == user_pair:
                    ratio = "**%s** (termvisor's pair against this one)" % ratio_of(res[0], res[i])
                elif i == 1:
                    ratio = ""
                else:
                    ratio = "%s (these QEMU guests / the pair above)" % ratio_of(res[i], res[1])
                out.append("| %s | %s | %s | %s |" % (what, mbs(med(res[i])), runs_of(res[i]), ratio))
            if any(x is None for xs in res for x in xs):
                out.append("")
                out.append(STALL_NOTE)
            stop_all()
            switch.terminate()
            switch.wait()
            with open(switch_log) as f:
                said = f.read().strip().splitlines()
            out.append("The switch at its end (all the runs above, both pairs on it): %s"
                       % (said[-1] if said else "nothing"))
            out.append("")
    except GuestError as e:
        # The figures taken so far are still shown (and written), marked.
        sys.stderr.write("bench/net.py: %s\n" % e)
        failed = str(e).splitlines()[0]
    finally:
        stop_all()
        for h in helpers:
            h.terminate()
            h.wait()
    if failed is not None:
        out.append("The run ended early, before the parts missing above: %s" % failed)
    table = "\n".join(out).rstrip("\n")
    print(table)
    if a.results and out:
        put_section(a, table, load_before, time.monotonic() - started)
    return 0 if failed is None else 1


def put_section(a, table, load_before, seconds):
    """Puts the figures into the results file, between <!-- TAG begin/end -->
    (in place of the last ones, or at the end)."""
    tag = "termvisor-net-nested" if a.nested else "termvisor-net"
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    if a.nested:
        head = ["## Network inside tests/kvm-in-qemu.sh (KVM on an emulated CPU)", "",
                "Measured %s by `bench/net.sh` with NET_NESTED=1 (%.0f s): on the KVM (kvm-amd)"
                % (day, seconds),
                "of a QEMU machine whose CPU is emulated (TCG with SVM), %d CPU%s there,"
                % (os.cpu_count(), "" if os.cpu_count() == 1 else "s"),
                "kernel %s; every instruction is translated, the host's own"
                % os.uname().release,
                "included. %s." % qemu]
    else:
        head = ["## Network (bench/net.sh)", "",
                "Measured %s by `bench/net.sh` on %d CPUs (%s), %s, in %.0f s."
                % (day, os.cpu_count(), os.uname().release, qemu, seconds)]
    head += ["The guest: the VM `termvisor create --template debian-minimal` made (%d vCPU, "
             "%d MiB," % (a.cpus, a.memory),
             "`%s`), each machine booting a copy of its disk; QEMU is -M q35 with KVM and"
             % a.cmdline,
             "the same virtio devices on PCI (blk, rng, console; virtio-net modern only, no",
             "option ROM). busybox's nc sends or receives in the guest; the host's side is",
             "bench/net.py. Runs alternate between the engines; load average %s at the start,"
             % load_before,
             "%s at the end." % loadavg(), ""]
    section = "<!-- %s begin -->\n%s\n%s\n<!-- %s end -->" % (tag, "\n".join(head), table, tag)
    with open(a.results) as f:
        text = f.read()
    span = re.compile(r"<!-- %s begin -->.*?<!-- %s end -->" % (tag, tag), re.S)
    if span.search(text):
        text = span.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(a.results, "w") as f:
        f.write(text)
    sys.stderr.write("bench/net.py: figures in %s (%s)\n" % (a.results, tag))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
