#!/usr/bin/env python3
"""Many short transfers from guests of both engines, counting the guests that
fault or hang: the A/B behind issue 19's open question (two termvisor guests
triple-faulted at the start of a transfer from the guest in a run of bench/net.sh
inside tests/kvm-in-qemu.sh's multi-threaded machine; QEMU's guests in the same
run did not). Not a benchmark: it counts outcomes, not MB/s.

The guest is the VM of bench/net.sh (NET_PREPARE=1 bench/net.sh BUILD: the
debian-minimal template, 1 vCPU, 256 MiB), each machine on a copy of its disk.
Parts (--parts, a comma list):
  user  a termvisor guest and a QEMU guest (-M q35, the same virtio devices),
        each on its engine's user-mode network; they take turns sending BURST
        KiB to a host socket through the gateway 10.0.2.2 (a new TCP connection
        each: busybox's dd | nc), the path of the faults in bench/net.sh.
  lab   two termvisor guests on a lab network (termvisor's switch) and two QEMU
        guests joined by -netdev dgram; each pair's first guest sends BURST KiB
        to the second (nc there), the pairs taking turns.
Both engines' guests run at the same time, as in bench/net.sh. A guest that
ends (termvisor run's status 3 is its triple fault; QEMU runs with -no-reboot,
so a reset it did not ask for, a triple fault among them, ends it), or whose
shell stops answering, is counted with its console's last lines and booted
again on a fresh disk. --tv-append adds kernel parameters for the termvisor
guests alone (nopv, no-kvmapf: the CPUID lead, see bench/RESULTS.md); --qemu-cpu
gives QEMU a -cpu (host: KVM's whole supported CPUID, as termvisor gives).

With --trace (root, tracefs) the machine's own KVM records its exits, the
exceptions it injects and its async page faults into a ring; at each fault
the ring is saved to the output directory, whatever the engine said, and the
number of shutdown exits (the host KVM's view of a triple fault) per
process name is counted over the whole run.

Prints one line per event and a summary; exits 0 whatever the counts. In the
multi-threaded nested machine, from the build directory (the VM made first with
NET_PREPARE=1 bench/net.sh build):
  KVM_IN_QEMU_THREADS=multi KVM_IN_QEMU_TIMEOUT=1900 KVM_IN_QEMU_COMMAND='python3
    ../bench/net-faults.py --termvisor ./termvisor --vm bench/debian-minimal/data/deb
    --trace --out nf --scratch /tmp' tests/kvm-in-qemu.sh build
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from net import Guest, GuestError, free_port  # noqa: E402

TRACE = "/sys/kernel/tracing"
PORT = 5001


def log(msg):
    sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


class Sink:
    """A host socket that takes connections one after another and counts what
    each brought."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.got = []
        self.cond = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            n = 0
            with c:
                c.settimeout(30)
                try:
                    while True:
                        d = c.recv(1 << 20)
                        if not d:
                            break
                        n += len(d)
                except OSError:
                    pass
            with self.cond:
                self.got.append(n)
                self.cond.notify_all()

    def wait(self, count, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.got) < count and time.monotonic() < end:
                self.cond.wait(0.5)
            return self.got[count - 1] if len(self.got) >= count else None


def trace_on():
    """The machine's KVM traced (bench/nested-kvm-trace.sh): a ring of its
    exits, injected exceptions and async page faults, and one of its shutdown
    exits (SVM's 0x7f: the host's view of a triple fault) for the whole run."""
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nested-kvm-trace.sh")
    return subprocess.call([helper, "start"]) == 0


def shutdowns():
    """The shutdown exits the host KVM saw since trace_on, by thread name."""
    by = {}
    with open(TRACE + "/instances/shutdowns/trace", errors="replace") as f:
        for x in f:
            m = re.match(r"\s*(.+?)-\d+\s+\[", x)
            if m and "kvm_exit" in x:
                by[m.group(1)] = by.get(m.group(1), 0) + 1
    return by


def trace_save(path):
    """Copies the ring to path (tracing stops meanwhile); the shutdown exits in it."""
    with open(TRACE + "/tracing_on", "w") as f:
        f.write("0")
    shutil.copyfile(TRACE + "/trace", path)
    with open(TRACE + "/trace", "w") as f:
        f.write("")
    with open(TRACE + "/tracing_on", "w") as f:
        f.write("1")
    with open(path, errors="replace") as f:
        return [x.rstrip() for x in f if re.search(r"reason (shutdown|SHUTDOWN|0x7f)\b", x)]


def stress(period, stop):
    """The machine's memory moved under the guests: khugepaged scanning hard
    and a compaction every period seconds, so the host KVM's mappings of guest
    RAM are invalidated and rebuilt while the guests run (what a busy host
    does now and then; khugepaged was busy when a machine locked up in
    bench/net.sh's run)."""
    k = "/sys/kernel/mm/transparent_hugepage/khugepaged/"
    for f, v in (("scan_sleep_millisecs", "100"), ("alloc_sleep_millisecs", "100"),
                 ("pages_to_scan", "8192")):
        try:
            with open(k + f, "w") as fh:
                fh.write(v)
        except OSError as e:
            log("stress: %s: %s" % (f, e))
    n = 0
    while not stop.wait(period):
        try:
            with open("/proc/sys/vm/compact_memory", "w") as fh:
                fh.write("1")
            n += 1
        except OSError as e:
            log("stress: compact_memory: %s" % e)
            return
    log("stress: %d compactions" % n)


class Run:
    def __init__(self, a):
        self.a = a
        self.scratch = a.scratch
        self.counts = {}  # part/engine -> {bursts, ok, fault, hang, short, boots}
        self.part = ""
        self.events = []
        self.nfault = 0
        self.kernel, self.initrd, self.disk = (os.path.join(a.vm, f)
                                               for f in ("kernel", "initrd", "disk.qcow2"))

    def count(self, engine, what):
        c = self.counts.setdefault(self.part + "/" + engine, {
            "bursts": 0, "ok": 0, "fault": 0, "hang": 0, "short": 0, "boots": 0})
        c[what] += 1

    def copy(self, name):
        path = os.path.join(self.scratch, name + ".qcow2")
        shutil.copyfile(self.disk, path)
        return path

    def argv(self, engine, name, net):
        a = self.a
        if engine == "termvisor":
            argv = [a.termvisor, "run", "--cpus", "1", "--memory", "%dM" % a.memory, "--kernel",
                    self.kernel, "--initrd", self.initrd, "--append",
                    (a.cmdline + " " + a.tv_append).strip(),
                    "--disk", self.copy(name) + ",format=qcow2", "--net", net]
            return argv
        argv = ["qemu-system-x86_64", "-accel", a.qemu_accel, "-M", "q35", "-nodefaults",
                "-no-user-config", "-no-reboot", "-display", "none", "-monitor", "none",
                "-serial", "stdio", "-m", str(a.memory), "-smp", "1", "-kernel", self.kernel,
                "-initrd", self.initrd, "-append", a.cmdline,
                "-drive", "file=%s,if=none,id=d0,format=qcow2" % self.copy(name),
                "-device", "virtio-blk-pci,drive=d0", "-device", "virtio-rng-pci",
                "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=hv",
                "-chardev", "null,id=hv", "-netdev", net[0],
                "-device", "virtio-net-pci,netdev=n0,mac=%s,disable-legacy=on,romfile=" % net[1]]
        if a.qemu_cpu:
            argv[3:3] = ["-cpu", a.qemu_cpu]
        return argv

    def boot(self, engine, name, net, first):
        self.count(engine, "boots")
        g = Guest(name, self.argv(engine, name, net), self.scratch)
        g.engine = engine
        t0 = time.monotonic()
        try:
            g.login(self.a.boot_timeout)
        except GuestError as e:
            # A guest that ends or hangs before its shell counts too.
            self.count(engine, "fault" if g.p.poll() is not None else "hang")
            log("%s (%s): did not reach its shell: %s" % (name, engine, e))
            g.stop()
            raise
        log("%s (%s) at its shell after %.1f s" % (name, engine, time.monotonic() - t0))
        if first:
            # What each engine's guest runs with: its PV features and CPU flags.
            info = g.run("dmesg | grep -iE 'kvm|hypervisor|clocksource|async' | head -30; "
                         "grep -m1 '^flags' /proc/cpuinfo", 60)
            for x in info.splitlines():
                log("  %s: %s" % (name, x))
        return g

    def ended(self, g, what):
        """Counts a guest that faulted or hung; its console and the host KVM's
        ring go to the output."""
        self.nfault += 1
        st = g.p.poll()
        if st is None:
            kind = "hang"
        else:
            kind = "fault"
        tail = g.tail(25)
        with g.cond:
            whole = bytes(g.buf).decode(errors="replace")
        said = re.findall(r"termvisor run: .*|vCPU \d+.*|qemu-system-x86_64: .*", whole)
        log("%s (%s): %s: %s (%s)" % (g.name, g.engine, kind.upper(), what,
                                     "running" if st is None else "exited %d" % st))
        for x in said[-6:]:
            log("  said: %s" % x)
        sys.stdout.write(tail + "\n")
        if self.a.trace:
            path = os.path.join(self.a.out, "trace-%d-%s.txt" % (self.nfault, g.name))
            shut = trace_save(path)
            log("  host KVM ring saved to %s; its shutdown exits: %d" % (path, len(shut)))
            for x in shut[-4:]:
                log("    %s" % x)
        self.count(g.engine, kind)
        self.events.append((self.part, g.name, kind, what))
        g.stop()

    def g2h(self, g, sink, kib):
        """One burst from g to the sink: False when g faulted or hung."""
        n = len(sink.got) + 1
        self.count(g.engine, "bursts")
        try:
            out = g.run("dd if=/dev/zero bs=1k count=%d 2>/dev/null | nc -w 1 10.0.2.2 %d; "
                        "echo nc=$?" % (kib, sink.port), self.a.burst_timeout)
        except GuestError as e:
            self.ended(g, "burst %d: %s" % (n, str(e).splitlines()[0]))
            return False
        got = sink.wait(n, 30)
        if got != kib * 1024:
            log("%s: burst %d: the host got %s of %d bytes (%s)" % (g.name, n, got, kib * 1024, out))
            self.count(g.engine, "short")
            return True
        self.count(g.engine, "ok")
        return True

    def h2g(self, g, port, kib):
        """One burst from the host through the forward to g's nc: False when
        g faulted or hung."""
        self.count(g.engine, "bursts")
        try:
            g.run("nc -l -p %d </dev/null >/dev/null & sleep 0.5" % PORT, 60)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(bytes(kib * 1024))
            out = g.run("wait; echo waited", self.a.burst_timeout)
        except (GuestError, OSError) as e:
            if g.p.poll() is None and isinstance(e, OSError):
                g.send("\x03")
                try:
                    g.run("true", 30)
                    log("%s: h2g burst: %s; its shell answers" % (g.name, e))
                    self.count(g.engine, "short")
                    return True
                except GuestError:
                    pass
            self.ended(g, "h2g burst: %s" % str(e).splitlines()[0])
            return False
        self.count(g.engine, "ok" if out.endswith("waited") else "short")
        return True

    def g2g(self, src, dst, addr, kib, n):
        self.count(src.engine, "bursts")
        try:
            dst.run("nc -l -p %d </dev/null >/dev/null & sleep 0.5" % PORT, 60)
        except GuestError as e:
            self.ended(dst, "burst %d, its nc -l: %s" % (n, str(e).splitlines()[0]))
            return False
        try:
            out = src.run("dd if=/dev/zero bs=1k count=%d 2>/dev/null | nc -w 1 %s %d; echo nc=$?"
                          % (kib, addr, PORT), self.a.burst_timeout)
        except GuestError as e:
            self.ended(src, "burst %d: %s" % (n, str(e).splitlines()[0]))
            return False
        try:
            done = dst.run("wait; echo waited", 60)
        except GuestError as e:
            self.ended(dst, "burst %d, receiving: %s" % (n, str(e).splitlines()[0]))
            return False
        if not out.endswith("nc=0") or not done.endswith("waited"):
            log("%s -> %s: burst %d: %r %r" % (src.name, dst.name, n, out, done))
            self.count(src.engine, "short")
        else:
            self.count(src.engine, "ok")
        return True

    def turns(self, end, ready, burst):
        """Bursts taking turns between the engines (the first one first in odd
        rounds) until end or --bursts rounds: ready(engine) boots what the
        engine lacks (GuestError: it could not, counted by boot), burst(engine,
        n) sends one."""
        n = 0
        while time.monotonic() < end and n < self.a.bursts:
            n += 1
            for engine in (self.a.engines if n % 2 else self.a.engines[::-1]):
                if time.monotonic() >= end:
                    break
                try:
                    ready(engine)
                except GuestError as e:
                    log("%s: booting again failed: %s" % (engine, str(e).splitlines()[0]))
                    continue
                burst(engine, n)
            if n % 10 == 0:
                log("%s: %d bursts each; so far %s" % (self.part, n, self.counts))

    def lease(self, g):
        for _ in range(30):
            if g.run("ifconfig eth0 | sed -n 's/.*inet addr:\\([0-9.]*\\).*/\\1/p'") == "10.0.2.15":
                return
            time.sleep(1)
        g.fail("no DHCP lease (10.0.2.15) on eth0 within 30 s")

    def user(self, end):
        a = self.a
        sink = Sink()
        fwd = {"termvisor": free_port(), "qemu": free_port()}
        nets = {"termvisor": "user,forward=tcp::%d:%d" % (fwd["termvisor"], PORT),
                "qemu": ("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d" % (fwd["qemu"], PORT),
                         "52:54:00:12:34:56")}
        guests, boots = {}, {}

        def up(engine):
            boots[engine] = boots.get(engine, 0) + 1
            name = "%s-user%d" % ("tv" if engine == "termvisor" else "qemu", boots[engine])
            g = self.boot(engine, name, nets[engine], boots[engine] == 1)
            try:
                self.lease(g)
            except GuestError:
                g.stop()
                raise
            guests[engine] = g

        def ready(engine):
            if engine not in guests:
                up(engine)

        def burst(engine, n):
            g = guests[engine]
            if a.h2g and not self.h2g(g, fwd[engine], a.kib):
                del guests[engine]
            elif not self.g2h(g, sink, a.kib):
                del guests[engine]

        self.turns(end, ready, burst)
        for g in guests.values():
            g.stop()

    def lab(self, end):
        a = self.a
        switch = subprocess.Popen([a.termvisor, "lab-switch", "--linger", "0", "faultlab"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        sock = os.path.join(os.environ["TERMVISOR_HOME"], "run", "lab", "faultlab.sock")
        for _ in range(300):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        sw = os.path.join(self.scratch, "q%d.sock")
        nets = {"termvisor": ["lab,name=faultlab,mac=52:54:00:00:77:01",
                              "lab,name=faultlab,mac=52:54:00:00:77:02"],
                "qemu": [("dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                          "remote.path=%s" % (sw % 1, sw % 2), "52:54:00:00:78:01"),
                         ("dgram,id=n0,local.type=unix,local.path=%s,remote.type=unix,"
                          "remote.path=%s" % (sw % 2, sw % 1), "52:54:00:00:78:02")]}
        base = {"termvisor": "192.168.77.", "qemu": "192.168.78."}
        pairs, boots = {}, {}

        def up(engine):
            boots[engine] = boots.get(engine, 0) + 1
            pair = []
            for k in range(2):
                if engine == "qemu" and os.path.exists(sw % (k + 1)):
                    os.unlink(sw % (k + 1))  # a QEMU pair booted again binds them anew
            try:
                for k in range(2):
                    name = "%s-lab%d%s" % ("tv" if engine == "termvisor" else "qemu", k + 1,
                                           "" if boots[engine] == 1 else "-%d" % boots[engine])
                    pair.append(self.boot(engine, name, nets[engine][k], False))
            except GuestError:
                for g in pair:
                    g.stop()
                raise
            for k, g in enumerate(pair):
                g.run("kill $(cat /tmp/udhcpc.pid) 2>/dev/null; ifconfig eth0 %s%d netmask "
                      "255.255.255.0 up" % (base[engine], k + 1))
            if pair[0].run("ping -c 1 -W 10 %s2 >/dev/null && echo reply || echo none"
                           % base[engine], 60) != "reply":
                for g in pair:
                    g.stop()
                raise GuestError("%s: no ping reply in the pair" % engine)
            pairs[engine] = pair

        def ready(engine):
            if engine not in pairs:
                up(engine)

        def burst(engine, n):
            g1, g2 = pairs[engine]
            if not self.g2g(g1, g2, base[engine] + "2", a.kib, n):
                for g in pairs.pop(engine):
                    g.stop()

        self.turns(end, ready, burst)
        for pair in pairs.values():
            for g in pair:
                g.stop()
        switch.terminate()
        switch.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--termvisor", required=True)
    ap.add_argument("--vm", required=True, metavar="DIR", help="kernel, initrd, disk.qcow2")
    ap.add_argument("--cmdline", default="console=ttyS0 root=/dev/vda rw quiet")
    ap.add_argument("--tv-append", default="", help="more kernel parameters, termvisor's guests")
    ap.add_argument("--qemu-cpu", default="", help="QEMU's -cpu (default: its own)")
    ap.add_argument("--engines", default="termvisor,qemu")
    ap.add_argument("--qemu-accel", default="kvm", help="tcg: try the script on a host without KVM")
    ap.add_argument("--memory", type=int, default=256)
    ap.add_argument("--parts", default="user,lab")
    ap.add_argument("--bursts", type=int, default=100, help="bursts per engine and part")
    ap.add_argument("--kib", type=int, default=512, help="KiB a burst")
    ap.add_argument("--seconds", type=int, default=900, help="per part")
    ap.add_argument("--boot-timeout", type=int, default=300)
    ap.add_argument("--burst-timeout", type=int, default=90)
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--stress", type=float, default=0, metavar="S",
                    help="root: khugepaged scanning hard, a compaction every S seconds")
    ap.add_argument("--h2g", action="store_true",
                    help="user part: each burst from the host to the guest first")
    ap.add_argument("--out", required=True, help="directory for the saved rings")
    ap.add_argument("--scratch", required=True)
    a = ap.parse_args()
    a.engines = a.engines.split(",")
    os.makedirs(a.out, exist_ok=True)
    os.environ.setdefault("TERMVISOR_HOME", os.path.join(a.scratch, "home"))
    os.makedirs(os.environ["TERMVISOR_HOME"], exist_ok=True)
    if a.trace and not trace_on():
        log("no tracefs: the host KVM's ring is not kept")
        a.trace = False
    r = Run(a)
    stop = threading.Event()
    if a.stress > 0:
        threading.Thread(target=stress, args=(a.stress, stop), daemon=True).start()
    log("start: %s; termvisor guests' extra parameters %r, QEMU -cpu %r" % (
        a.parts, a.tv_append, a.qemu_cpu or "(default)"))
    for part in a.parts.split(","):
        end = time.monotonic() + a.seconds
        r.part = part
        try:
            getattr(r, part)(end)
        except GuestError as e:
            log("%s: ended early: %s" % (part, e))
        log("%s done: %s" % (part, r.counts))
    if a.trace:
        shut = trace_save(os.path.join(a.out, "trace-end.txt"))
        log("host KVM shutdown exits in the last ring: %d; over the whole run, by thread: %s"
            % (len(shut), shutdowns()))
    stop.set()
    time.sleep(0.5)
    log("summary: %s" % r.counts)
    for e in r.events:
        log("event: %s %s %s: %s" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
