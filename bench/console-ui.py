#!/usr/bin/env python3
"""The whole interface (`termvisor` with no arguments) on a terminal of a fixed
size, with real VMs (the demo guest on /dev/kvm), for bench/console.sh:
  (c) idle: VMS demo VMs running at their prompts, the interface showing the
      list and the first VM's console; its CPU over IDLE seconds (from
      /proc/PID/stat), and the bytes it wrote to its terminal meanwhile;
  (a) flood: the first VM's guest runs `stress console` (typed into the
      interface's focused console) until MB megabytes have come out (or
      CAP seconds have passed); a tmux server shows the same output at the
      same time in a pane of the console pane's size (`termvisor console
      --read-only` in it, a client attached): the CPU of the interface, of
      tmux's server, of the VM process and of that console client, each
      apart;
  (b) key to screen: the guest runs `stress echo` (the flood, and each key
      typed shown on its top row); KEYS keys, A to Z in turn, are written to
      the interface's terminal, each timed until its letter comes back on
      that terminal (what a user sees); then, the interface ended, the same
      through the peer: a tmux client on a pty of the pane's size showing
      `termvisor console` of the VM, its keys and echoes timed the same way.
The guests' shell and the panes are on hvc0 (the virtio console: the demo guest
sends it 4 KiB a trip to the host) unless CONSOLE_UI_CONSOLE=ttyS0 puts them on
the 8250 UART (a trip per byte: about 1 kB/s in the nested test machine, too
slow there for a flood of megabytes).
With CONSOLE_UI_STANDIN=1 the VMs are stand-in VM processes (bench/standin:
the VM process's control socket, screen and pacing, a generator in place of
the guest, which runs `stress console` and `stress echo` as the demo guest
does): the same figures on a host without /dev/kvm, for the host's side of
the path only (no guest, no vCPU, no virtio).
usage: console-ui.py BUILDDIR [MB] [KEYS] [IDLE] [VMS] [CAP] [ROWS] [COLS]
Needs /dev/kvm (or CONSOLE_UI_STANDIN=1), tmux and script; prints one line per
figure."""
import fcntl
import os
import pty
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

build = os.path.abspath(sys.argv[1])
args = [float(a) for a in sys.argv[2:]]
mb, nkeys, idle_s, nvms, cap_s, rows, cols = (args + [10, 300, 60, 4, 600, 24, 80][len(args):])[:7]
nkeys, nvms, rows, cols = int(nkeys), int(nvms), int(rows), int(cols)
tv = os.path.join(build, "termvisor")
standin = os.environ.get("CONSOLE_UI_STANDIN") == "1"
# The stand-in's flood, bytes a second (a real guest's is bounded by its
# vCPU and the virtio console: 0.6-1 MB/s in the nested test machine).
rate = int(os.environ.get("CONSOLE_UI_RATE", "4000000"))
kernel = os.path.join(build, "share/demo/demo.elf")
hz = os.sysconf("SC_CLK_TCK")
home = tempfile.mkdtemp(prefix="tv-console-ui.")
env = dict(os.environ, TERMVISOR_HOME=home, TERM="xterm-256color", FAKE_RATE=str(rate))
env.pop("NO_COLOR", None)
names = ["vm%d" % (i + 1) for i in range(nvms)]
console = os.environ.get("CONSOLE_UI_CONSOLE", "hvc0")
if console not in ("hvc0", "ttyS0"):
    sys.exit("console-ui: CONSOLE_UI_CONSOLE=%s: expected hvc0 or ttyS0" % console)
cmdline = "console=ttyS0" + (" console=hvc0" if console == "hvc0" else "")
# tmux keeps as many lines of scrollback as the interface's console pane
# (CONSOLE_SCROLLBACK in ui/view-console.c), and no status line: its pane is
# the size of the console pane.
tmux_conf = os.path.join(home, "tmux.conf")
with open(tmux_conf, "w") as f:
    f.write("set -g history-limit 5000\nset -g status off\n")
tmux = ["tmux", "-L", "tvbench-ui-%d" % os.getpid(), "-f", tmux_conf]


def say(*a):
    print(*a, flush=True)


def ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def vm_pid(name):
    with open(os.path.join(home, "run", name + ".pid")) as f:
        return int(f.read().split()[0])


def log_has(name, text):
    try:
        with open(os.path.join(home, "data", name, "vm.log"), "rb") as f:
            return text.encode() in f.read()
    except FileNotFoundError:
        return False


def tail_has(path, text, span=262144):
    """Whether text is in the last span bytes of a file (a console's copy:
    vm.log keeps only the first 8 MiB of a run's output)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - span))
            return text.encode() in f.read()
    except FileNotFoundError:
        return False


def has_since(path, text, start, span=1 << 20):
    """Whether text is in the span bytes of a file from offset start (what
    a command printed first, however much it printed after)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return text.encode() in f.read(span)
    except FileNotFoundError:
        return False


def wait_until(what, cond, timeout, fatal=True):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            if not fatal:
                say("console-ui: no %s after %d s (going on)" % (what, timeout))
                return False
            try:
                with open(os.path.join(home, "data", names[0], "vm.log"), "rb") as f:
                    say("console-ui: the end of %s's vm.log: %r" % (names[0], f.read()[-400:]))
            except OSError as e:
                say("console-ui: %s" % e)
            sys.exit("console-ui: no %s after %d s" % (what, timeout))
        time.sleep(0.1)
    return True


class Terminal:
    """A program (the interface unless told) on a pty of rows x cols; a
    thread reads everything it writes, as a terminal would, and notes when
    an awaited byte comes."""

    def __init__(self, argv=None, size=None):
        argv = argv or [tv]
        trows, tcols = size or (rows, cols)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", trows, tcols, 0, 0))
            os.execvpe(argv[0], argv, env)
        self.lock = threading.Lock()
        self.total = 0
        self.want = None
        self.seen_at = None
        self.got = threading.Event()
        self.tail = b""
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            t = time.monotonic()
            with self.lock:
                self.total += len(data)
                self.tail = (self.tail + data)[-4096:]
                if self.want is not None and self.want in data:
                    self.want = None
                    self.seen_at = t
                    self.got.set()

    def type(self, s, pause=0.05):
        for ch in s:
            os.write(self.fd, ch.encode())
            time.sleep(pause)

    def key_latency(self, ch, timeout=2.0):
        """Writes ch, returns the seconds until ch comes back (None: not seen)."""
        with self.lock:
            self.want = ch.encode()
            self.seen_at = None
            self.got.clear()
        t0 = time.monotonic()
        os.write(self.fd, ch.encode())
        if not self.got.wait(timeout):
            with self.lock:
                self.want = None
            return None
        return self.seen_at - t0


def pct(v, p):
    v = sorted(v)
    i = max(1, int(len(v) * p / 100 + 0.5))
    return v[min(i, len(v)) - 1]


def main():
    for tool in ("tmux", "script"):
        if not shutil.which(tool):
            sys.exit("console-ui: needs %s" % tool)
    os.makedirs(os.path.join(home, "vms"))
    for n in names:
        with open(os.path.join(home, "vms", n + ".conf"), "w") as f:
            f.write('cpus = 1;\nmemory = "64M";\nkernel = "%s";\ncmdline = "%s";\n' % (kernel, cmdline))
        if standin:
            subprocess.Popen([os.path.join(build, "bench/standin"), n], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.run([tv, "start", n], env=env, check=True, stdout=subprocess.DEVNULL)
    for n in names:
        wait_until(n + "'s prompt", lambda: log_has(n, "demo\x1b[0m$ "), 120)
    if standin:
        say("%d stand-in VM processes (bench/standin: no guest, floods at %.1f MB/s) at their prompts;"
            " the interface at %dx%d, TERM %s" % (nvms, rate / 1e6, cols, rows, env["TERM"]))
    else:
        say("%d demo VMs (1 vCPU, 64 MiB, the shell on %s) at their prompts; the interface at %dx%d, TERM %s"
            % (nvms, console, cols, rows, env["TERM"]))
    term = Terminal()
    # The interface attaches the first VM's console pane: its size is the VM's.
    size = [None]

    def pane_size():
        out = subprocess.run([tv, "status", names[0]], env=env, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("console:") and "1 attached" in line:
                size[0] = line.split()[1].rstrip(",")
                return True
        return False

    wait_until("console pane attached", pane_size, 60)
    pcols, prows = (int(x) for x in size[0].split("x"))

    # (c) idle.
    time.sleep(10)  # start-up drawn, the panes attached
    pids = [vm_pid(n) for n in names]
    b0, u0, v0, t0 = term.total, ticks(term.pid), [ticks(p) for p in pids], time.monotonic()
    time.sleep(idle_s)
    b1, u1, v1, t1 = term.total, ticks(term.pid), [ticks(p) for p in pids], time.monotonic()
    el = t1 - t0
    say("(c) idle %.0f s, %d VMs running: interface %.2f s CPU (%.3f%% of a CPU), %d bytes to its terminal;"
        " VM processes %s s" % (el, nvms, (u1 - u0) / hz, (u1 - u0) / hz / el * 100, b1 - b0,
                                " ".join("%.2f" % ((b - a) / hz) for a, b in zip(v0, v1))))

    # (a) flood, the interface and tmux side by side.
    tmp = os.path.join(home, "tmux")
    os.makedirs(tmp)
    seen = os.path.join(tmp, "seen")
    subprocess.run(tmux + ["new-session", "-d", "-x", str(pcols), "-y", str(prows), "-s", "c",
                           "%s console %s --read-only | tee %s; sleep 600" % (tv, names[0], seen)],
                   env=env, check=True)
    client = subprocess.Popen(["script", "-qfc", "stty rows %d cols %d; %s attach -t c"
                               % (prows, pcols, " ".join(tmux)), "/dev/null"],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_until("tmux client", lambda: subprocess.run(tmux + ["list-clients"], capture_output=True,
                                                     text=True).stdout.strip() != "", 30)
    tmux_pid = int(subprocess.run(tmux + ["display", "-p", "#{pid}"], capture_output=True,
                                  text=True).stdout)
    wait_until("replay in tmux", lambda: os.path.exists(seen) and os.path.getsize(seen) > 0, 30)
    time.sleep(2)
    pane_pid = subprocess.run(tmux + ["display", "-p", "-t", "c", "#{pane_pid}"], capture_output=True,
                              text=True).stdout.strip()
    cpid = None
    for kid in subprocess.run(["pgrep", "-P", pane_pid], capture_output=True, text=True).stdout.split():
        with open("/proc/%s/cmdline" % kid, "rb") as f:
            if b"\0console\0" in f.read():
                cpid = int(kid)
    if cpid is None:
        sys.exit("console-ui: no console client in the tmux pane")
    term.type("\r")  # Enter: keys go to the selected (first) VM's console
    time.sleep(1)
    s0 = os.path.getsize(seen)
    procs = {"interface": term.pid, "tmux server": tmux_pid, "VM process": pids[0],
             "console client (tmux side)": cpid}
    # What the two console clients receive from the VM process during the
    # flood (their recv() results, from the syscall tracepoint): a client
    # that falls behind skips output and gets the lines it missed instead,
    # so this shows whether both sides' CPU covers the same output.
    recv_out = os.path.join(tmp, "recv.data")
    recv = None
    if shutil.which("perf"):
        recv = subprocess.Popen(["perf", "record", "-q", "-e", "syscalls:sys_exit_recvfrom", "-o", recv_out,
                                 "-p", "%d,%d" % (term.pid, cpid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    perf = []
    if os.environ.get("CONSOLE_UI_PERF"):  # a profile of each during the flood
        for k in ("interface", "VM process", "tmux server"):
            out = os.path.join(tmp, "perf-%s.data" % k.replace(" ", "-"))
            perf.append((k, out, subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499",
                                                   "-g", "-o", out, "-p", str(procs[k])],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for k in ("interface", "tmux server", "VM process"):
            out = os.path.join(tmp, "stat-%s.txt" % k.replace(" ", "-"))
            perf.append((k, out, subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e",
                                                   "raw_syscalls:sys_enter,page-faults,context-switches",
                                                   "-p", str(procs[k])],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    if recv is not None or perf:
        time.sleep(3)  # perf attached before the CPU counts start
    c0 = {k: ticks(p) for k, p in procs.items()}
    w0 = term.total
    t0 = time.monotonic()
    term.type("stress console\r")
    want = mb * 1e6
    wait_until("stress console", lambda: has_since(seen, "stress console on", s0), 60)
    while os.path.getsize(seen) - s0 < want and time.monotonic() - t0 < cap_s:
        time.sleep(0.2)
    t_stop = time.monotonic()
    term.type("x")  # any key stops it
    ended = wait_until("the end of the flood", lambda: tail_has(seen, "stress: stopped after"), 60, False)
    time.sleep(3)  # what the sockets, the ptys and tmux still hold
    c1 = {k: ticks(p) if os.path.exists("/proc/%d" % p) else None for k, p in procs.items()}
    w1 = term.total
    got = {}  # pid: bytes received, over the same span as the CPU counts
    if recv is not None:
        recv.send_signal(2)
        recv.wait()
        for line in subprocess.run(["perf", "script", "-i", recv_out], capture_output=True,
                                   text=True).stdout.splitlines():
            f = line.split()
            if len(f) > 2 and "sys_exit_recvfrom" in line and f[-1].startswith("0x"):
                n = int(f[-1], 16)
                if n < 1 << 63:  # not an error (EAGAIN)
                    got[int(f[1])] = got.get(int(f[1]), 0) + n
    for k, out, pr in perf:
        pr.send_signal(2)
        pr.wait()
        if out.endswith(".txt"):  # perf stat: counts
            with open(out) as f:
                counts = ["%s %s" % (l.split(",")[2], l.split(",")[0]) for l in f
                          if l.count(",") >= 2 and l[0].isdigit()]
            say("(a) counts of the %s: %s" % (k, ", ".join(counts)))
            continue
        rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso,sym",
                              "-g", "none", "--percent-limit", "1.5"], capture_output=True, text=True).stdout
        say("(a) profile of the %s:\n%s" % (k, "\n".join(l for l in rep.splitlines() if l and l[0] != "#")))
        rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso",
                              "-g", "none", "--percent-limit", "0.5"], capture_output=True, text=True).stdout
        say("(a) by program and library, the %s: %s" % (
            k, ", ".join(" ".join(l.split()[::-1]) for l in rep.splitlines() if l.strip() and l[0] != "#")))
    el = t_stop - t0
    nbytes = os.path.getsize(seen) - s0
    say("(a) flood: %.2f MB of `stress console` in %.1f s (%.0f kB/s), pane %dx%d; the interface wrote"
        " %.2f MB to its terminal" % (nbytes / 1e6, el, nbytes / el / 1e3, pcols, prows, (w1 - w0) / 1e6))
    for k in procs:
        if c1[k] is None:
            say("(a)   %s: ended before the end of the flood" % k)
            continue
        cpu = (c1[k] - c0[k]) / hz
        # The interface shows what it received; tmux what its console client
        # received (and wrote to tmux's pane).
        shown = got.get(procs["console client (tmux side)"] if k == "tmux server" else procs[k])
        rx = (", shown %.2f MB (received from the VM process), %.3f s per MB shown"
              % (shown / 1e6, cpu / (shown / 1e6))) if shown and k in ("interface", "tmux server") else ""
        say("(a)   %s: %.2f s CPU, %.3f s per MB%s" % (k, cpu, cpu / (nbytes / 1e6), rx))
    subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)
    client.wait()
    if not ended:
        sys.exit("console-ui: the guest did not stop its flood; (b) not measured")

    # (b) key to screen while flooding; a console client copies the output
    # to a file, to see the guest's messages.
    watch = os.path.join(tmp, "watch")
    with open(watch, "wb") as out:
        watcher = subprocess.Popen([tv, "console", names[0], "--read-only"], env=env,
                                   stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL)
    wait_until("the watcher's replay", lambda: os.path.getsize(watch) > 0, 30)
    w0 = os.path.getsize(watch)
    term.type("stress echo\r")
    wait_until("stress echo", lambda: has_since(watch, "stress echo on", w0), 60)
    time.sleep(2)
    keys_timed(term, "", watch, w0)
    os.kill(term.pid, 15)
    os.waitpid(term.pid, 0)

    # (b) the same through the peer: tmux showing `termvisor console` of the
    # VM in a pane of the console pane's size, its client on a pty read as
    # the interface's was (the interface ended first, not to share the CPUs).
    subprocess.run(tmux + ["new-session", "-d", "-x", str(pcols), "-y", str(prows), "-s", "e",
                           "%s console %s" % (tv, names[0])], env=env, check=True)
    peer = Terminal(tmux + ["attach", "-t", "e"], (prows, pcols))
    time.sleep(3)  # attached, the replay drawn
    w0 = os.path.getsize(watch)
    peer.type("stress echo\r")
    wait_until("stress echo (tmux)", lambda: has_since(watch, "stress echo on", w0), 60)
    time.sleep(2)
    keys_timed(peer, " through tmux showing `termvisor console` (the peer)", watch, w0)
    watcher.kill()
    subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)


def keys_timed(t, label, watch, since):
    """(b): nkeys keys written to terminal t while the guest runs `stress
    echo`, each timed until its letter comes back; then Ctrl-C, and the
    guest's end of it awaited in watch (the watcher's copy of the console;
    since: its size before this round's `stress echo`)."""
    lat, lost = [], 0
    rng = random.Random(18)
    for i in range(nkeys):
        d = t.key_latency(chr(ord("A") + i % 26))
        if d is None:
            lost += 1
        else:
            lat.append(d * 1e3)
        time.sleep(rng.uniform(0.02, 0.05))
    t.type("\x03")
    if lat:
        say("(b) key to screen while flooding%s: %d keys, median %.2f ms, p99 %.2f ms, max %.2f ms, %d not seen in 2 s"
            % (label, len(lat), pct(lat, 50), pct(lat, 99), max(lat), lost))
    else:
        say("(b) key to screen%s: no key came back (%d sent)" % (label, nkeys))
    wait_until("the end of stress echo",
               lambda: tail_has(watch, "keys echoed", min(os.path.getsize(watch) - since, 262144)), 60)


try:
    main()
finally:
    for n in names:
        subprocess.run([tv, "stop", n, "--force"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    subprocess.run(tmux + ["kill-server"], stderr=subprocess.DEVNULL)
    shutil.rmtree(home, ignore_errors=True)
