#!/usr/bin/env python3
"""Machine snapshots, termvisor against QEMU's savevm/loadvm, side by side.

The demo guest (1 vCPU, a 16 MiB qcow2 disk) runs on both engines in turn, driven
through its shell; its `dirty` command gives RAM new contents. QEMU runs it with KVM
on the PC machine (qboot, as tests/demo/qemu.sh), its disk on virtio-blk-pci, and is
driven over QMP (human-monitor-command: savevm, loadvm). termvisor runs it as a
background VM (`termvisor start`), its console on the control socket, and is driven
by `termvisor snapshot take|rollback`.

(a) rollback of a running VM, for each RAM size: the guest writes all the RAM it may
    (`dirty 100%`), a snapshot is taken, the guest writes 10% more, and the VM is
    rolled back: timed from the request to the reply (loadvm's QMP reply; the
    rollback command's exit) and to the guest answering a line typed after it.
    Then the guest writes all its RAM once more (its own time, in ms): what a lazy
    restore leaves for later.
(b) pause of a snapshot taken after a parent, 1 GiB guest: 1%, 10%, 100% of its
    writable RAM given new contents since the previous snapshot (QEMU: the time
    savevm takes, the guest stopped throughout; termvisor: the pause its reply
    reports, and the command's time).
(c) disk space of ten snapshots of a 1 GiB guest (all its RAM written first) that
    writes 10 MiB between them: QEMU's qcow2 with ten internal snapshots against
    termvisor's snapshots directory plus its qcow2 (du: blocks allocated).

usage: bench/snapshot.py --termvisor PATH --demo demo.elf --work DIR
          [--sizes 256,1024,4096] [--runs N] [--parts a,b,c] [--engines qemu,termvisor]
Prints Markdown tables on stdout, progress on stderr.
"""
import argparse
import importlib.util
import json
import os
import re
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "demo_shell", os.path.join(top, "tests", "demo", "demo-shell.py"))
demo_shell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_shell)
Console = demo_shell.Console
PROMPT = demo_shell.PROMPT

T0 = time.monotonic()


def note(msg):
    sys.stderr.write("# [%6.1f s] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Failed(Exception):
    pass


def shell(con, line, timeout):
    """Runs a demo shell command; returns its output (text)."""
    return con.command(line, timeout).decode(errors="replace")


def dirty(con, what, timeout):
    """`dirty WHAT`; returns (MiB written, the guest's own ms)."""
    out = shell(con, "dirty " + what, timeout)
    m = re.search(r"dirtied (\d+) (MiB|KiB) \(\d+ pages.*? in (\d+) ms", out)
    if not m:
        raise Failed("dirty %s: unexpected answer %r" % (what, out[-300:]))
    mib = int(m.group(1)) / (1 if m.group(2) == "MiB" else 1024)
    return mib, int(m.group(3))


_answers = [0]


def answer(con, timeout):
    """Types a line the guest has never seen and waits for its reply: the guest runs
    and takes keys. Returns the time it came."""
    _answers[0] += 1
    token = "zq%d" % _answers[0]
    con.send(token.encode() + b"\r")
    con.expect(re.escape(token.encode()) + rb": unknown command", timeout)
    con.expect(re.escape(PROMPT), timeout)
    return time.monotonic()


def du_bytes(*paths):
    """Blocks allocated (du), and apparent size, over the paths."""
    out = subprocess.run(["du", "-s", "-B1", "--"] + list(paths), capture_output=True,
                         text=True).stdout
    alloc = sum(int(l.split()[0]) for l in out.splitlines() if l.strip())
    out = subprocess.run(["du", "-s", "-B1", "--apparent-size", "--"] + list(paths),
                         capture_output=True, text=True).stdout
    apparent = sum(int(l.split()[0]) for l in out.splitlines() if l.strip())
    return alloc, apparent


class Qemu:
    name = "QEMU"

    def __init__(self, a, mib, work):
        self.work = work
        self.disk = os.path.join(work, "qemu.qcow2")
        self.qmp_path = os.path.join(work, "qmp.sock")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", self.disk, "16M"], check=True)
        argv = ["qemu-system-x86_64", "-accel", a.qemu_accel, "-M", "pc", "-bios", a.qboot,
                "-smp", "1", "-m", "%dM" % mib, "-nodefaults", "-no-user-config",
                "-display", "none", "-chardev", "stdio,id=con,signal=off",
                "-serial", "chardev:con", "-kernel", a.demo,
                "-drive", "if=none,id=d0,file=%s,format=qcow2" % self.disk,
                "-device", "virtio-blk-pci,disable-legacy=on,drive=d0",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.con = Console(argv)
        self.con.expect(re.escape(PROMPT), 120)
        self.qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.qmp.connect(self.qmp_path)
        self.qbuf = b""
        self._qmp_msg(30)  # the greeting
        self._qmp({"execute": "qmp_capabilities"}, 30)

    def _qmp_msg(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.qbuf:
            left = end - time.monotonic()
            if left <= 0:
                raise Failed("QMP: no answer within %d s" % timeout)
            r, _, _ = select.select([self.qmp], [], [], left)
            if r:
                data = self.qmp.recv(65536)
                if not data:
                    raise Failed("QMP: QEMU closed the monitor")
                self.qbuf += data
        line, self.qbuf = self.qbuf.split(b"\n", 1)
        return json.loads(line)

    def _qmp(self, cmd, timeout):
        self.qmp.sendall(json.dumps(cmd).encode() + b"\n")
        while True:
            m = self._qmp_msg(timeout)
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise Failed("QMP %s: %s" % (cmd.get("execute"), m["error"]))

    def hmp(self, line, timeout):
        out = self._qmp({"execute": "human-monitor-command",
                         "arguments": {"command-line": line}}, timeout)
        if out.strip():  # savevm and loadvm say nothing when they succeed
            raise Failed("QEMU %s: %s" % (line, out.strip()))

    def take(self, tag, timeout):
        """(seconds of the request, guest pause in seconds or None, bytes written or None)."""
        t0 = time.monotonic()
        self.hmp("savevm " + tag, timeout)
        dt = time.monotonic() - t0
        return dt, dt, None  # savevm stops the guest from start to end

    def rollback(self, tag, timeout):
        """(seconds to the reply, seconds until the guest answers, pause or None)."""
        t0 = time.monotonic()
        self.hmp("loadvm " + tag, timeout)
        t1 = time.monotonic()
        t2 = answer(self.con, timeout)
        return t1 - t0, t2 - t0, None

    def space(self):
        return du_bytes(self.disk)

    def stop(self):
        try:
            self._qmp({"execute": "quit"}, 10)
        except (Failed, OSError):
            pass
        self.con.wait_exit(10)
        self.con.kill()
        self.qmp.close()


def frame(t, p=b""):
    return struct.pack(">IHH", len(p), t, 0) + p


class ProtoConsole(Console):
    """The demo shell on a termvisor VM's console, through its control socket:
    CONSOLE frames in, INPUT frames out (the same expect/command as on a pty)."""

    def __init__(self, path, timeout=30):
        self.pid = None
        self.status = None
        self.raw = b""
        self.text = b""
        self.mark = 0
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        # HELLO (version 1), ATTACH read-write to the serial console, 24x80.
        self.sock.sendall(frame(0x0001, struct.pack(">I", 1)) +
                          frame(0x0007, struct.pack(">BBHH", 0, 0, 24, 80)))
        end = time.monotonic() + timeout
        while b"\x1b[?25" not in self.raw:  # the replay ends with the cursor's state
            if time.monotonic() > end:
                raise Failed("no console replay from %s within %d s" % (path, timeout))
            self._read(0.5)
        self.mark = len(self.text)

    def _read(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the VM process closed the console")
        self.buf += data
        got = False
        while len(self.buf) >= 8:
            n, t, _ = struct.unpack(">IHH", self.buf[:8])
            if len(self.buf) < 8 + n:
                break
            if t == 0x8005:
                self.raw += self.buf[8:8 + n]
                got = True
            elif t == 0x8001:  # ERROR
                raise Failed("the VM process refused a console request: %r" % self.buf[8:8 + n])
            self.buf = self.buf[8 + n:]
        if got:
            self.text = demo_shell.ANSI.sub(b"", self.raw.replace(b"\r", b""))
        return True

    def send(self, data):
        self.sock.sendall(frame(0x0008, data))

    def kill(self):
        self.sock.close()


class Termvisor:
    name = "termvisor"
    vm = "snapbench"

    def __init__(self, a, mib, work):
        self.tv = a.termvisor
        self.con = None
        self.env = dict(os.environ, TERMVISOR_HOME=os.path.join(work, "home"))
        self.home = self.env["TERMVISOR_HOME"]
        self.cli("create", self.vm, "--kernel", a.demo, "--memory", "%dM" % mib,
                 "--disk", "16M", "--cpus", "1")
        self.cli("start", self.vm, timeout=120)
        self.data = os.path.join(self.home, "data", self.vm)
        self.sock = os.path.join(self.home, "run", self.vm + ".sock")
        t0 = time.monotonic()
        self.attach(300)
        note("termvisor, %d MiB: the demo's prompt %.1f s after `start` returned" %
             (mib, time.monotonic() - t0))

    def attach(self, wait=120):
        self.con = ProtoConsole(self.sock)
        # The shell's prompt first (in the replay, or once the guest has booted),
        # then a line answered: what comes after is the answer to what is typed next.
        # The replay draws the screen without its rows' trailing blanks, so a
        # prompt printed before the attach comes as "demo$" with no space after.
        end = time.monotonic() + wait
        while PROMPT.rstrip() not in self.con.text:
            if time.monotonic() > end:
                raise Failed("no demo prompt on the console within %d s" % wait)
            self.con._read(0.5)
        answer(self.con, 60)

    def cli(self, *args, timeout=600):
        t0 = time.monotonic()
        p = subprocess.Popen([self.tv] + list(args), env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        # The attached console keeps being read meanwhile, as a user's console
        # client does: the VM process may write to it while it works.
        con = getattr(self, "con", None)
        while p.poll() is None:
            if time.monotonic() - t0 > timeout:
                self.diagnose(hung=True)
                p.kill()
                p.wait()
                raise Failed("termvisor %s: no answer within %d s" % (" ".join(args), timeout))
            if con is not None:
                try:
                    con._read(0.02)
                except (EOFError, OSError):
                    con = None
            else:
                time.sleep(0.02)
        dt = time.monotonic() - t0
        out = p.stdout.read()
        p.stdout.close()
        if p.returncode:
            self.diagnose()
            raise Failed("termvisor %s: exit status %d: %s" % (" ".join(args), p.returncode,
                                                             out.strip()))
        return dt, out

    def diagnose(self, hung=False):
        """The end of the VM's log and, when it hangs, where its threads are."""
        log = os.path.join(self.home, "data", self.vm, "vm.log")
        try:
            with open(log, errors="replace") as f:
                for line in f.read().splitlines()[-15:]:
                    note("vm.log: " + line)
        except OSError:
            pass
        pidf = os.path.join(self.home, "run", self.vm + ".pid")
        if hung and shutil.which("gdb") and os.path.exists(pidf):
            pid = open(pidf).readline().strip()
            try:
                bt = subprocess.run(["gdb", "-p", pid, "-batch", "-ex", "thread apply all bt"],
                                    capture_output=True, text=True, timeout=90).stdout
            except subprocess.TimeoutExpired:
                bt = "# gdb gave no backtrace within 90 s"
            for line in [l for l in bt.splitlines() if l.startswith(("#", "Thread"))][:60]:
                note("gdb: " + line)

    @staticmethod
    def figures(out):
        """The guest pause (seconds) and memory written (bytes) the command printed,
        e.g. "12.3 MiB of memory written, guest paused 4.1 ms"."""
        pause = written = None
        m = re.search(r"guest paused ([\d.]+) (ns|us|µs|ms|s)\b", out)
        if m:
            pause = float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3,
                                         "s": 1.0}[m.group(2)]
        m = re.search(r"([\d.]+) (bytes|KiB|MiB|GiB|TiB) of memory written", out)
        if m:
            written = float(m.group(1)) * {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20,
                                           "GiB": 1 << 30, "TiB": 1 << 40}[m.group(2)]
        return pause, written

    def take(self, tag, timeout):
        dt, out = self.cli("snapshot", "take", self.vm, tag, timeout=timeout)
        pause, written = self.figures(out)
        if pause is None:
            note("termvisor snapshot take printed no pause: %r" % out.strip())
        return dt, pause, written

    def rollback(self, tag, timeout, discard=True):
        t0 = time.monotonic()
        _, out = self.cli("snapshot", "rollback", self.vm, tag,
                          *(["--discard"] if discard else []), timeout=timeout)
        t1 = time.monotonic()
        try:
            t2 = answer(self.con, timeout)
        except (EOFError, OSError):
            # The console may be dropped by a rollback: attach again, as a user would.
            note("the console was closed by the rollback; attaching again")
            self.attach()
            t2 = answer(self.con, timeout)
        m = re.search(r"to snapshot '[^']*' in ([\d.]+) ms", out)
        self.engine_total = float(m.group(1)) / 1e3 if m else None
        return t1 - t0, t2 - t0, self.figures(out)[0]

    def space(self):
        paths = [os.path.join(self.data, "disk.qcow2")]
        snaps = os.path.join(self.data, "snapshots")
        if os.path.isdir(snaps):
            paths.append(snaps)
        return du_bytes(*paths)

    def stop(self):
        try:
            if self.con is not None:
                self.con.kill()
            self.con = None  # closed: cli() must not read it any more
            self.cli("stop", self.vm, "--force", timeout=60)
            self.cli("delete", self.vm, "--yes", timeout=60)
        except (Failed, OSError) as e:
            note("stopping termvisor's VM: %s" % e)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ms(x):
    return "-" if x is None else ("%.0f ms" % (x * 1e3) if x >= 0.1 else "%.1f ms" % (x * 1e3))


def rng(xs):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    return " (%s-%s)" % (ms(min(xs)).replace(" ms", ""), ms(max(xs)))


def mib(b):
    return "-" if b is None else ("%.1f MiB" % (b / 2**20) if b < 2**30 else
                                  "%.2f GiB" % (b / 2**30))


def fits(work, need_ram, need_disk):
    """Whether the machine has the memory and the work directory the room: on a
    tmpfs both come out of RAM."""
    with open("/proc/meminfo") as f:
        avail = int(re.search(r"MemAvailable:\s+(\d+) kB", f.read()).group(1)) << 10
    st = os.statvfs(work)
    room = st.f_bavail * st.f_frsize
    tmpfs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True,
                           text=True).stdout.strip() == "tmpfs"
    if tmpfs:
        ok = avail >= need_ram + need_disk and room >= need_disk
    else:
        ok = avail >= need_ram and room >= need_disk
    if not ok:
        note("needs %s of RAM and %s in %s (%s): %s available, %s free there" %
             (mib(need_ram), mib(need_disk), work, "tmpfs" if tmpfs else "disk",
              mib(avail), mib(room)))
    return ok


def fresh(work, sub):
    d = os.path.join(work, sub)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def memory_note():
    """The machine's free memory, for the log: a VM that does not come up is first
    a question of what was left for it."""
    with open("/proc/meminfo") as f:
        info = f.read()
    kib = {k: int(re.search(r"^%s:\s+(\d+) kB" % k, info, re.M).group(1))
           for k in ("MemFree", "MemAvailable", "Shmem")}
    return "memory free %s, available %s, in tmpfs/shmem %s" % (
        mib(kib["MemFree"] << 10), mib(kib["MemAvailable"] << 10), mib(kib["Shmem"] << 10))


def boot(E, a, size, d, what):
    """The engine's VM with the demo at its prompt, or None (said why)."""
    note("%s %s, %d MiB: boot; %s" % (what, E.name, size, memory_note()))
    vm = None
    try:
        vm = E.__new__(E)
        vm.__init__(a, size, d)
        return vm
    except (Failed, TimeoutError, EOFError, OSError, subprocess.SubprocessError) as e:
        note("%s %s: the VM did not come up: %s" % (what, E.name, e))
        # Whatever came up goes: a VM left running would hold its RAM through
        # the rest of the run.
        if isinstance(vm, Termvisor) and getattr(vm, "home", None):
            if getattr(vm, "sock", None):  # started (a failed command said why already)
                vm.diagnose(hung=True)
            vm.stop()
        elif getattr(vm, "con", None) is not None:
            vm.con.kill()
        shutil.rmtree(d, ignore_errors=True)
        return None


def part_a(a, engines, out):
    res = {}  # (engine, size) -> dict
    # termvisor's side first, every size, then QEMU's: after QEMU's 4 GiB guest
    # and its 4 GiB savevm in the tmpfs, termvisor's 4 GiB VM did not reach its
    # prompt in the nested machine, where alone it does. Each engine then starts
    # from the same machine as in a run of its own (QEMU's loadvm reads its
    # qcow2 whatever ran before it).
    order = sorted(engines, key=lambda E: E is not Termvisor)
    for E in order:
        for size in a.sizes:
            if not fits(a.work, (size << 20) * 1.1 + (256 << 20), (size << 20) * 1.1):
                note("(a) %s, %d MiB left out: not enough memory or room" % (E.name, size))
                continue
            d = fresh(a.work, "a")
            r = res[(E.name, size)] = {"reply": [], "answer": [], "pause": []}
            vm = boot(E, a, size, d, "(a)")
            if vm is None:
                r["error"] = "the VM did not come up"
                continue
            try:
                r["fill"] = dirty(vm.con, "100%", a.timeout)
                note("(a) %s, %d MiB: wrote %d MiB in %d ms (guest)" % ((E.name, size) + r["fill"]))
                r["take"] = vm.take("base", a.timeout)
                note("(a) %s: first snapshot %s (pause %s)" % (E.name, ms(r["take"][0]),
                                                               ms(r["take"][1])))
                for i in range(a.runs):
                    dirty(vm.con, "10%", a.timeout)
                    reply, ans, pause = vm.rollback("base", a.timeout)
                    r["reply"].append(reply)
                    r["answer"].append(ans)
                    r["pause"].append(pause)
                    r.setdefault("engine", []).append(getattr(vm, "engine_total", None))
                    note("(a) %s, %d MiB: rollback %d: reply %s, guest answers %s" %
                         (E.name, size, i + 1, ms(reply), ms(ans)))
                r["refill"] = dirty(vm.con, "100%", a.timeout)
                note("(a) %s: after the rollback, writing all RAM took %d ms (guest)" %
                     (E.name, r["refill"][1]))
            except (Failed, TimeoutError, EOFError, OSError) as e:
                note("(a) %s, %d MiB: %s" % (E.name, size, e))
                if isinstance(e, TimeoutError) and hasattr(vm, "diagnose"):
                    vm.diagnose(hung=True)
                r["error"] = str(e)
            finally:
                vm.stop()
                shutil.rmtree(d, ignore_errors=True)
    names = [E.name for E in engines]
    out.append("| (a) rollback of a running VM, median of %d | RAM | %s |" % (
        a.runs, " | ".join(
            "%s: request to %s | %s: to the guest answering" %
            (n, "loadvm's reply" if n == "QEMU" else "the command's exit", n) for n in names)) +
        (" QEMU / termvisor (guest answering) |" if len(names) == 2 else ""))
    out.append("|---|---|" + "---|" * (2 * len(names) + (len(names) == 2)))
    for size in a.sizes:
        cells = []
        meds = []
        for n in names:
            r = res.get((n, size))
            if not r or r.get("error") and not r["answer"]:
                why = "not run (memory)" if not r else "failed: " + r["error"][:80]
                cells += [why, "-"]
                meds.append(None)
                continue
            cells += [ms(med(r["reply"])) + rng(r["reply"]), ms(med(r["answer"])) + rng(r["answer"])]
            meds.append(med(r["answer"]))
        ratio = ""
        if len(names) == 2:
            ratio = " **%.1fx** |" % (meds[0] / meds[1]) if all(meds) else " - |"
        out.append("| | %d MiB | %s |%s" % (size, " | ".join(cells), ratio))
    out.append("")
    out.append("| same runs | RAM | " + " | ".join(names) + " |")
    out.append("|---|---|" + "---|" * len(names))
    for size in a.sizes:
        rows = {"first snapshot of the full guest (request to reply)": [],
                "rollback as the VM process timed it (its reply)": [],
                "guest paused by the rollback (its reply)": [],
                "the guest writes all its RAM, before the snapshot (guest's ms)": [],
                "the guest writes all its RAM again after the last rollback (guest's ms)": []}
        for n in names:
            r = res.get((n, size), {})
            rows["first snapshot of the full guest (request to reply)"].append(
                ms(r["take"][0]) if "take" in r else "-")
            rows["rollback as the VM process timed it (its reply)"].append(
                ms(med(r.get("engine", []))) if med(r.get("engine", [])) is not None
                else "-")
            rows["guest paused by the rollback (its reply)"].append(
                ms(med(r.get("pause", []))) if med(r.get("pause", [])) is not None
                else ("whole loadvm" if n == "QEMU" and r.get("reply") else "-"))
            rows["the guest writes all its RAM, before the snapshot (guest's ms)"].append(
                "%d MiB in %d ms" % r["fill"] if "fill" in r else "-")
            rows["the guest writes all its RAM again after the last rollback (guest's ms)"].append(
                "%d MiB in %d ms" % r["refill"] if "refill" in r else "-")
        for k, v in rows.items():
            out.append("| %s | %d MiB | %s |" % (k, size, " | ".join(v)))
    out.append("")


def part_b(a, engines, out):
    size = a.guest_mib
    pcts = (1, 10, 100)
    res = {}
    if not fits(a.work, (size << 20) * 1.1 + (256 << 20), (size << 20) * (2 + a.runs) * 1.1):
        note("(b) left out: not enough memory or room")
        return
    for E in engines:
        d = fresh(a.work, "b")
        vm = boot(E, a, size, d, "(b)")
        if vm is None:
            continue
        try:
            dirty(vm.con, "100%", a.timeout)
            vm.take("p0", a.timeout)
            n = 0
            for pct in pcts:
                for i in range(a.runs):
                    dirty(vm.con, "%d%%" % pct, a.timeout)
                    n += 1
                    dt, pause, written = vm.take("c%d" % n, a.timeout)
                    res.setdefault((E.name, pct), []).append((dt, pause, written))
                    note("(b) %s: %d%% dirtied: request %s, pause %s, written %s" %
                         (E.name, pct, ms(dt), ms(pause), mib(written)))
        except (Failed, TimeoutError, EOFError, OSError) as e:
            note("(b) %s: %s" % (E.name, e))
        finally:
            vm.stop()
            shutil.rmtree(d, ignore_errors=True)
    out.append("| (b) snapshot after a parent, %d MiB guest, median of %d | QEMU savevm "
               "(guest stopped throughout) | termvisor take: guest paused | termvisor take: "
               "command | termvisor: memory written |" % (size, a.runs))
    out.append("|---|---|---|---|---|")
    for pct in pcts:
        q = res.get(("QEMU", pct), [])
        t = res.get(("termvisor", pct), [])
        out.append("| %d%% of the writable RAM written since the parent | %s | %s | %s | %s |" % (
            pct, ms(med([x[0] for x in q])) + rng([x[0] for x in q]),
            ms(med([x[1] for x in t])) + rng([x[1] for x in t]),
            ms(med([x[0] for x in t])) + rng([x[0] for x in t]),
            mib(med([x[2] for x in t]))))
    out.append("")


def part_c(a, engines, out):
    size, n, step = a.guest_mib, 10, "10M"
    res = {}
    for E in engines:
        # QEMU keeps a full copy of the RAM in each internal snapshot.
        need = (size << 20) * (n + 1) * 1.05 if E.name == "QEMU" else (size << 20) * 2
        if not fits(a.work, (size << 20) * 1.1 + (256 << 20), need):
            note("(c) %s left out: not enough memory or room" % E.name)
            continue
        d = fresh(a.work, "c")
        vm = boot(E, a, size, d, "(c)")
        if vm is None:
            continue
        sizes = []
        try:
            dirty(vm.con, "100%", a.timeout)
            for i in range(n):
                dirty(vm.con, step, a.timeout)
                vm.take("s%d" % (i + 1), a.timeout)
                sizes.append(vm.space())
                note("(c) %s: %d snapshots: %s allocated" % (E.name, i + 1, mib(sizes[-1][0])))
            res[E.name] = sizes
        except (Failed, TimeoutError, EOFError, OSError) as e:
            note("(c) %s: %s" % (E.name, e))
            res[E.name] = sizes
        finally:
            vm.stop()
            shutil.rmtree(d, ignore_errors=True)
    out.append("| (c) ten snapshots of a %d MiB guest (all RAM written first) that writes "
               "10 MiB between them | QEMU: qcow2 with internal snapshots | termvisor: "
               "snapshots directory + qcow2 |" % size)
    out.append("|---|---|---|")
    for k, label in ((0, "after the first snapshot"), (n - 1, "after the tenth")):
        cells = []
        for name in ("QEMU", "termvisor"):
            s = res.get(name, [])
            cells.append("%s (apparent %s)" % (mib(s[k][0]), mib(s[k][1])) if len(s) > k else "-")
        out.append("| %s, du | %s |" % (label, " | ".join(cells)))
    out.append("| for scale: ten full copies of the RAM | %s | |" % mib(n * (size << 20)))
    out.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--termvisor", required=True)
    ap.add_argument("--demo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sizes", default="256,1024,4096", help="MiB, for (a)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--guest-mib", type=int, default=1024, help="RAM for (b) and (c)")
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--engines", default="qemu,termvisor")
    ap.add_argument("--qemu-accel", default="kvm")
    ap.add_argument("--qboot", default="/usr/share/qemu/qboot.rom")
    ap.add_argument("--timeout", type=int, default=600, help="seconds for one step")
    a = ap.parse_args()
    a.sizes = [int(x) for x in a.sizes.split(",") if x]
    a.left_out = None
    known = {"qemu": Qemu, "termvisor": Termvisor}
    engines = []
    for e in a.engines.split(","):
        if e not in known:
            ap.error("--engines: %s is neither qemu nor termvisor" % e)
        engines.append(known[e])
    if Termvisor in engines:
        h = subprocess.run([a.termvisor, "snapshot", "--help"], capture_output=True, text=True)
        if h.returncode != 0 or "rollback" not in h.stdout + h.stderr:
            a.left_out = ("termvisor's side not measured: this termvisor has no "
                          "`snapshot take|rollback` yet")
            note(a.left_out)
            engines.remove(Termvisor)
    if not engines:
        sys.exit("bench/snapshot.py: no engine to measure")
    os.makedirs(a.work, exist_ok=True)
    # Each part's table follows a line "@@ part P" (bench/snapshot.sh files each
    # under a heading of its own).
    for p, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if p in a.parts.split(","):
            out = ["@@ part %s" % p]
            fn(a, engines, out)
            if a.left_out:
                out += [a.left_out + ".", ""]
            print("\n".join(out))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
