#!/usr/bin/env python3
"""How fast a running VM's console comes up on a new terminal, and what the VM
process costs beyond its guest's RAM.

usage: console-attach.py TERMVISOR VMNAME [RUNS]

With TERMVISOR_HOME pointing at a home where VMNAME runs (bench/console-attach.sh
sets one up), measures:
  protocol: connect + hello + attach until the whole screen replay has arrived,
            straight on the control socket (what the interface's console pane pays);
  command:  `termvisor console NAME` on a pseudo-terminal, from exec until the
            guest's prompt is on the terminal (what a user typing it waits);
  peer:     `tmux attach` to a session showing the same text, on a pseudo-terminal
            until the text is on it (the tool users compare with);
  memory:   the VM process's resident memory (smaps), minus the guest RAM mapping.
Prints one line per figure (median and 95th percentile of RUNS).
"""
import os
import pty
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time


def frame(t, p=b""):
    return struct.pack(">IHH", len(p), t, 0) + p


def attach_once(path):
    """Seconds from connect to the end of the replay (its final cursor sequence)."""
    dt, n, _ = attach_replay(path)
    return dt, n


def attach_replay(path):
    """attach_once, with the replay's bytes."""
    t0 = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(frame(1, struct.pack(">I", 1)) + frame(7, bytes([1, 0, 0, 24, 0, 80])))
    buf = b""
    console = b""
    while True:
        data = s.recv(65536)
        if not data:
            s.close()
            raise OSError("the VM process hung up before its replay ended")
        buf += data
        while len(buf) >= 8:
            n, t, _ = struct.unpack(">IHH", buf[:8])
            if len(buf) < 8 + n:
                break
            if t == 0x8005:
                console += buf[8:8 + n]
            buf = buf[8 + n:]
        # The replay ends by placing the cursor and setting its visibility.
        if b"\x1b[?25h" in console or b"\x1b[?25l" in console:
            break
    dt = time.perf_counter() - t0
    s.close()
    return dt, len(console), console


def pty_until(argv, needle, env=None, timeout=5.0):
    """Seconds from exec of argv on a pty until needle shows in its output."""
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        if env:
            os.environ.update(env)
        os.execvp(argv[0], argv)
    out = b""
    dt = None
    while time.perf_counter() - t0 < timeout:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
            if needle in out:
                dt = time.perf_counter() - t0
                break
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(fd)
    return dt


def rss_beyond_guest(pid, guest_kib):
    """Resident KiB of pid, and of it what is not the guest RAM mapping."""
    total = 0
    guest = 0
    size = 0
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            fields = line.split()
            if fields[0] == "Size:":
                size = int(fields[1])
            elif fields[0] == "Rss:":
                rss = int(fields[1])
                total += rss
                # The guest RAM is one anonymous mapping of exactly its size
                # (or the low part plus the part above 4 GiB).
                if size == guest_kib:
                    guest += rss
    return total, total - guest


def summary(name, xs, unit="ms", scale=1000.0):
    xs = sorted(x * scale for x in xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    print("%-9s median %.2f %s, p95 %.2f %s, %d runs" % (name, statistics.median(xs), unit,
                                                        p95, unit, len(xs)))
    return statistics.median(xs)


def main():
    tv, name = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    home = os.environ["TERMVISOR_HOME"]
    path = os.path.join(home, "run", name + ".sock")

    times = []
    nbytes = 0
    for _ in range(runs):
        dt, nbytes = attach_once(path)
        times.append(dt)
    summary("protocol", times)
    print("          (replay of %d bytes: scrollback and screen)" % nbytes)

    # Until the end of the replay: the cursor placed, its visibility set.
    times = [pty_until([tv, "console", name], b"\x1b[?25") for _ in range(runs)]
    times = [t for t in times if t is not None]
    if times:
        summary("command", times)

    tmux = shutil.which("tmux")
    if tmux:
        sock = tempfile.mktemp(prefix="tv-bench-tmux.")
        subprocess.run([tmux, "-S", sock, "new-session", "-d", "-x", "80", "-y", "24",
                        "seq 1000 | sed 's/^/demo line /'; sleep 600"], check=True)
        time.sleep(0.5)
        times = [pty_until([tmux, "-S", sock, "attach"], b"demo line 1000",
                           env={"TERM": "xterm"}) for _ in range(runs)]
        subprocess.run([tmux, "-S", sock, "kill-server"])
        times = [t for t in times if t is not None]
        if times:
            summary("peer", times)

    st = subprocess.run([tv, "status", name, "--json"], capture_output=True, text=True).stdout
    pid = int(st.split('"pid": ')[1].split(",")[0])
    mem = int(st.split('"memory": ')[1].split(",")[0])
    total, beyond = rss_beyond_guest(pid, mem // 1024)
    print("memory    resident %.2f MiB, beyond guest RAM %.2f MiB (guest RAM %d MiB)"
          % (total / 1024, beyond / 1024, mem >> 20))


if __name__ == "__main__":
    main()
