#!/usr/bin/env python3
"""Drives the demo guest's shell through a pseudo-terminal and checks every command.

usage: demo-shell.py --kernel FILE [--disk FILE] [--cpus N] [--cmdline S] -- COMMAND...

COMMAND starts a machine whose serial console is on its stdin/stdout (termvisor run,
or a QEMU command line); {kernel}, {disk}, {cpus} and {cmdline} in it are replaced with
the options' values.  Prints TAP lines; exits 0 when everything passed, 1 otherwise.
"""
import argparse
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = b"demo$ "


class Console:
    """A child process on a pty, with expect-like helpers that see the text with the
    ANSI colour and cursor sequences removed."""

    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.raw = b""
        self.text = b""
        self.mark = 0
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self._reap(1.0)
            raise EOFError("the machine exited (status %s)" % self.status)
        self.raw += data
        self.text = ANSI.sub(b"", self.raw.replace(b"\r", b""))
        return True

    def expect(self, pattern, timeout=10.0):
        """Waits for a regex (bytes) in the output after the last match; returns it."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.text, self.mark)
            if m:
                self.mark = m.end()
                return m
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %r within %.1fs; output ends with %r"
                                   % (pattern, timeout, self.text[-300:]))
            self._read(min(left, 0.5))

    def cpu_seconds(self):
        """CPU time the machine's process (all its threads) has used."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def send(self, data):
        os.write(self.fd, data)

    def command(self, line, timeout=10.0):
        """Sends a line and returns what it printed before the next prompt."""
        self.send(line.encode() + b"\r")
        start = self.mark
        self.expect(re.escape(PROMPT), timeout)
        out = self.text[start:self.mark - len(PROMPT)]
        return out.split(b"\n", 1)[1] if b"\n" in out else out

    def _reap(self, timeout):
        end = time.monotonic() + timeout
        while self.status is None and time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
            time.sleep(0.02)
        return self.status

    def wait_exit(self, timeout):
        end = time.monotonic() + timeout
        while self.status is None and time.monotonic() < end:
            try:
                self._read(0.1)
            except EOFError:
                break
            self._reap(0)
        return self._reap(max(0.0, end - time.monotonic()))

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(2.0)


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = False

    def check(self, ok, what, detail=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, what))
        if not ok:
            self.failed = True
            if detail is not None:
                print("# " + repr(detail)[:600])
        return ok


def run_checks(con, tap, has_disk, ncpus, cmdline, ndisks):
    t0 = time.monotonic()
    con.expect(re.escape(PROMPT), 30)
    boot = time.monotonic() - t0
    print("# boot to prompt: %.3f s" % boot)
    tap.check(b"termvisor demo OS" in con.text, "banner shown")

    # At its prompt the guest halts (and stops its tick): the machine's process must
    # use next to no CPU (a spinning guest measured 0.33 s a second here, where CPL 0
    # runs emulated; a whole core elsewhere).
    time.sleep(0.5)
    used = con.cpu_seconds()
    time.sleep(1.0)
    used = con.cpu_seconds() - used
    tap.check(used < 0.1, "an idle guest lets the host sleep (%.2f s of CPU in 1 s)" % used)

    out = con.command("help")
    tap.check(all(c in out for c in (b"info", b"uptime", b"count", b"note", b"cpus",
                                      b"net", b"reboot", b"poweroff")),
              "help lists every command", out)

    out = con.command("info")
    m = re.search(rb"vCPUs:\s+(\d+)", out)
    tap.check(m is not None and int(m.group(1)) == ncpus, "info counts %d vCPUs" % ncpus, out)
    m = re.search(rb"memory:\s+(\d+) MiB", out)
    tap.check(m is not None and int(m.group(1)) > 0, "info shows the memory", out)
    ndisk = out.count(b"disk:    virtio-blk at PCI")
    if has_disk:
        tap.check(out.count(b"), MSI-X") == ndisks,
                  "the disks signal completions by MSI-X (no polling)", out)
    tap.check(ndisk == (ndisks if has_disk else 0), "info shows the %d disk(s)" % ndisks
              if has_disk else "info says there is no disk", out)
    if cmdline:
        tap.check(b"cmdline: " + cmdline.encode() + b"\n" in out,
                  "info shows the command line", out)

    # Two readings 0.6 s apart: the guest's interval must lie between the host's
    # shortest and longest view of it (each reading happens while its command runs).
    h0 = time.monotonic()
    out1 = con.command("uptime")
    h1 = time.monotonic()
    time.sleep(0.6)
    h2 = time.monotonic()
    out2 = con.command("uptime")
    h3 = time.monotonic()
    t = [re.search(rb"up (\d+):(\d+):(\d+)\.(\d+)", o) for o in (out1, out2)]
    if tap.check(all(t), "uptime prints a time", (out1, out2)):
        s = [int(x[1]) * 3600 + int(x[2]) * 60 + int(x[3]) + int(x[4]) / 100 for x in t]
        lo, hi = h2 - h1 - 0.02, h3 - h0 + 0.02  # readings are rounded to 10 ms
        tap.check(lo <= s[1] - s[0] <= hi, "uptime advances with real time "
                  "(%.2f s; the host saw %.2f to %.2f s)" % (s[1] - s[0], lo, hi))

    # Line editing: type a wrong word, fix it with backspace and the arrows.
    con.send(b"uptimx\x7fe")            # backspace
    con.send(b"\x1b[D\x1b[D\x1b[D\x1b[3~") # left x3, delete the 'i': "uptme"
    con.send(b"i\x1b[C\x1b[C\x1b[C\r")  # put it back, right x3, enter
    m = con.expect(rb"(unknown command|up \d+:\d+:\d+)", 5)
    con.expect(re.escape(PROMPT), 5)
    tap.check(m.group(1).startswith(b"up "), "backspace, delete and arrows edit the line",
              m.group(0))
    con.send(b"garbage\x15help\r")       # Ctrl-U kills the line
    m = con.expect(rb"(unknown command|commands:)", 5)
    tap.check(m.group(1) == b"commands:", "Ctrl-U clears the line")
    con.expect(re.escape(PROMPT), 5)
    con.send(b"info\x03")                 # Ctrl-C abandons it
    con.expect(rb"\^C\n" + re.escape(PROMPT), 5)
    # History now holds help, info, uptime, help (the Ctrl-C'd line is not kept).
    con.send(b"\x1b[A\x1b[A\r")
    m = con.expect(rb"(commands:|up \d+:|vCPUs:)", 5)
    tap.check(m.group(1).startswith(b"up "), "up arrow walks back through the history")
    con.expect(re.escape(PROMPT), 5)
    con.send(b"\x1b[A\x1b[A\x1b[A\x1b[B\r")
    m = con.expect(rb"(commands:|up \d+:|vCPUs:)", 5)
    tap.check(m.group(1) == b"commands:", "down arrow walks forward again")
    con.expect(re.escape(PROMPT), 5)

    con.send(b"upt\t\r")                 # Tab completes the command name
    m = con.expect(rb"(unknown command|up \d+:\d+:\d+)", 5)
    con.expect(re.escape(PROMPT), 5)
    tap.check(m.group(1).startswith(b"up "), "Tab completes a command", m.group(0))

    out = con.command("date")
    m = re.search(rb"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)", out)
    if tap.check(m is not None, "date reads the RTC", out):
        guest = time.mktime(tuple(int(x) for x in m.groups()) + (0, 0, -1))
        host = time.mktime(time.gmtime())
        tap.check(abs(guest - host) < 120, "the RTC shows the host's UTC time", out)

    out = con.command("nosuchthing")
    tap.check(b"unknown command" in out, "an unknown command is reported", out)

    con.send(b"count\r")
    con.expect(rb"count: \d+", 5)
    raw_from = con.raw.rfind(b"counting")
    time.sleep(0.5)
    con.send(b"q")
    m = con.expect(rb"stopped at (\d+)", 5)
    con.expect(re.escape(PROMPT), 5)
    tap.check(int(m.group(1)) >= 2, "count runs until a key is pressed", m.group(0))
    raw = con.raw[raw_from:con.raw.rfind(b"stopped at")]
    updates = raw[raw.find(b"count: "):raw.rfind(b"count: ")]
    tap.check(raw.count(b"\r\x1b[1;33mcount: ") >= 3 and b"\n" not in updates,
              "count rewrites one line in place", raw[:300])

    if has_disk:
        out = con.command("note get")
        tap.check(b"no note stored" in out, "note get on a blank disk", out)
        out = con.command("note set hello from the demo")
        tap.check(b"note saved" in out, "note set writes the disk", out)
        out = con.command("note get")
        tap.check(b"note: hello from the demo" in out, "note get reads it back", out)
    else:
        out = con.command("note get")
        tap.check(b"no disk" in out, "note says clearly that there is no disk", out)

    out = con.command("cpus", 30)
    rings = re.findall(rb"cpu \d+\s+apic \d+\s+ring (\d)", out)
    tap.check(len(rings) == ncpus and all(r == b"3" for r in rings),
              "cpus runs CPL 3 work on all %d vCPUs" % ncpus, out)
    tap.check(b"all %d vCPUs finished" % ncpus in out, "cpus reports every vCPU", out)
    out = con.command("cpus", 30)
    tap.check(b"all %d vCPUs finished" % ncpus in out, "cpus works a second time", out)
    return boot


def hvc_checks(con, tap):
    """The shell on the virtio console: info names it; the flood of `stress console`
    (sent in full 4 KiB buffers) comes out whole and stops on a key."""
    out = con.command("info")
    tap.check(b"console: hvc0 (virtio-console" in out, "info says the console is hvc0", out)
    con.send(b"stress console\r")
    con.expect(rb"stress: line \d+", 10)
    time.sleep(1.0)
    con.send(b"x")
    m = con.expect(rb"stopped after \d+\.\d+ s: (\d+) lines", 30)
    con.expect(re.escape(PROMPT), 10)
    last = re.findall(rb"stress: line (\d+),", con.raw[-4096:])
    tap.check(int(m.group(1)) > 0 and last and int(last[-1]) == int(m.group(1)),
              "a flood on hvc0 comes out whole (%s lines) and stops on a key" % m.group(1).decode(),
              con.raw[-300:])


def note_on_disk(image, qemu_img):
    """Sector 0 of a disk image, read on the host side."""
    raw = image + ".raw"
    try:
        subprocess.run([qemu_img, "convert", "-O", "raw", image, raw], check=True)
        with open(raw, "rb") as f:
            return f.read(512)
    except (OSError, subprocess.CalledProcessError):
        return b""
    finally:
        if os.path.exists(raw):
            os.unlink(raw)


def power_button(con, tap, monitor):
    try:
        con.expect(re.escape(PROMPT), 30)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(monitor)
            s.sendall(b"system_powerdown\n")
            con.expect(rb"power button pressed", 5)
        tap.check(con.wait_exit(10) == 0, "the power button powers the guest off")
    except (TimeoutError, EOFError, OSError) as e:
        tap.check(False, "the power button session went as planned", str(e))
    finally:
        con.kill()
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


def foreign_disk(con, tap, image):
    with open(image, "rb") as f:
        before = f.read()
    try:
        con.expect(re.escape(PROMPT), 30)
        out = con.command("note set this must not land")
        tap.check(b"not overwriting it" in out, "note set refuses a disk holding other data",
                  out)
        con.send(b"poweroff\r")
        con.wait_exit(10)
    except (TimeoutError, EOFError) as e:
        tap.check(False, "the foreign disk session went as planned", str(e))
    finally:
        con.kill()
    with open(image, "rb") as f:
        tap.check(f.read() == before, "and the disk is unchanged")
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--disk", help="the disk that keeps the notes")
    ap.add_argument("--extra-disk", action="append", default=[],
                    help="another disk the machine has ({disk2}, {disk3}...)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--cmdline", help="the kernel command line the machine was given")
    ap.add_argument("--reboot-exits", action="store_true",
                    help="the machine exits on a guest reset (else it boots again)")
    ap.add_argument("--qemu-monitor", metavar="SOCKET",
                    help="only check that the power button (QEMU's system_powerdown on "
                    "this monitor socket) powers the guest off")
    ap.add_argument("--foreign-disk", action="store_true",
                    help="only check that note set leaves a disk whose sector 0 holds "
                    "other data (--disk, a raw image) alone")
    ap.add_argument("--hvc", action="store_true",
                    help="the shell is on hvc0 (console=hvc0): also check that info says "
                    "so and that a console flood there stops on a key")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    extra = {"disk%d" % (i + 2): d for i, d in enumerate(a.extra_disk)}
    argv = [x.format(kernel=a.kernel, disk=a.disk or "", cpus=a.cpus, cmdline=a.cmdline,
                     **extra) for x in a.cmd if x != "--"]
    tap = Tap()

    con = Console(argv)
    if a.qemu_monitor:
        return power_button(con, tap, a.qemu_monitor)
    if a.foreign_disk:
        return foreign_disk(con, tap, a.disk)
    try:
        run_checks(con, tap, a.disk is not None, a.cpus, a.cmdline, 1 + len(a.extra_disk))
        if a.hvc:
            hvc_checks(con, tap)
        con.send(b"reboot\r")
        con.expect(rb"rebooting", 5)
        if a.reboot_exits:
            tap.check(con.wait_exit(10) is not None, "reboot resets the machine")
        else:
            con.expect(re.escape(PROMPT), 30)
            tap.check(con.text.count(b"termvisor demo OS") >= 2, "reboot boots again")
            if a.disk:
                out = con.command("note get")
                tap.check(b"note: hello from the demo" in out, "the note survives a reboot",
                          out)
            con.send(b"poweroff\r")
            st = con.wait_exit(10)
            tap.check(st == 0, "poweroff ends the machine with status 0", st)
    except (TimeoutError, EOFError) as e:
        tap.check(False, "the session went as planned", str(e))
    finally:
        con.kill()
    if a.disk and os.environ.get("QEMU_IMG"):
        tap.check(note_on_disk(a.disk, os.environ["QEMU_IMG"]).startswith(
            b"TVNOTE01\x13\0\0\0hello from the demo"), "the note is in the image's sector 0")
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
