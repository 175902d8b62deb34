#!/usr/bin/env python3
"""Boot timings and memory, termvisor against QEMU -M microvm, side by side.

(a) process start to the first byte a minimal PVH guest prints (engine overhead);
(b) process start to the kernel's "Linux version" line, given a bzImage and given
    the same kernel's vmlinux;
(c) the engine's resident memory beyond guest RAM, with that guest halted.
Runs alternate between the two machines; medians are printed as Markdown.

usage: bench/boot.py --termvisor PATH --guest first-byte.elf [--bzimage F --vmlinux F]
                     [--runs N] [--linux-runs N]
"""
import argparse
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time

QEMU = ["qemu-system-x86_64", "-enable-kvm", "-M", "microvm", "-display", "none",
        "-nodefaults", "-no-user-config", "-chardev", "stdio,id=c,signal=off",
        "-serial", "chardev:c", "-monitor", "none"]
APPEND = "console=ttyS0 earlyprintk=ttyS0"


def start(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()


def wait_output(p, t0, pattern, timeout):
    """Seconds from t0 until pattern (bytes regex) appears on p's stdout."""
    buf = b""
    fd = p.stdout.fileno()
    while True:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            raise TimeoutError("no %r within %d s" % (pattern, timeout))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError("exited (status %s) before %r" % (p.wait(), pattern))
        buf = buf[-4096:] + chunk
        if re.search(pattern, buf):
            return time.monotonic() - t0


def time_to(argv, pattern, timeout):
    """Seconds to pattern, or None (reported) when it never came."""
    t0 = time.monotonic()
    p = start(argv)
    try:
        return wait_output(p, t0, pattern, timeout)
    except (TimeoutError, EOFError) as e:
        sys.stderr.write("# %s: %s\n" % (os.path.basename(argv[0]), e))
        return None
    finally:
        stop(p)


def smaps_beyond_ram(pid, ram_bytes):
    """(resident KiB in all, resident KiB of the guest RAM mapping, private KiB
    beyond it, Pss KiB beyond it). Guest RAM is the largest run of adjacent
    anonymous mappings at least ram_bytes long (an engine may advise parts of
    it differently, which splits it into several mappings)."""
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
            if m:
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16),
                       "perms": m.group(3), "anon": m.group(4) == "0" and not m.group(5)}
                maps.append(cur)
            elif cur is not None and ":" in line:
                k, v = line.split(":", 1)
                v = v.strip().split()
                if v and v[0].isdigit():
                    cur[k] = int(v[0])
    runs, run = [], []
    for m in maps:
        if run and m["anon"] and run[-1]["anon"] and run[-1]["end"] == m["start"] \
                and run[-1]["perms"] == m["perms"]:
            run.append(m)
        else:
            run = [m]
            runs.append(run)
    big = [r for r in runs if r[-1]["end"] - r[0]["start"] >= ram_bytes and r[0]["anon"]]
    ram = max(big, key=lambda r: r[-1]["end"] - r[0]["start"], default=[])
    ram_ids = set(id(m) for m in ram)
    rest = [m for m in maps if id(m) not in ram_ids]
    total = sum(m.get("Rss", 0) for m in maps)
    ram_rss = sum(m.get("Rss", 0) for m in ram)
    private = sum(m.get("Private_Clean", 0) + m.get("Private_Dirty", 0) for m in rest)
    pss = sum(m.get("Pss", 0) for m in rest)
    return total, ram_rss, private, pss


def memory(argv, ram_bytes):
    t0 = time.monotonic()
    p = start(argv)
    try:
        wait_output(p, t0, rb"X", 30)
        time.sleep(0.5)  # let start-up work settle
        return smaps_beyond_ram(p.pid, ram_bytes)
    finally:
        stop(p)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def fmt(xs):
    return " ".join("-" if x is None else "%.4f" % x for x in xs)


def series(name, fn, runs, log):
    xs = []
    for _ in range(runs):
        xs.append(fn())
    log.write("# %s: %s\n" % (name, fmt(xs)))
    log.flush()
    return xs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--termvisor", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--bzimage")
    ap.add_argument("--vmlinux")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--linux-runs", type=int, default=3)
    a = ap.parse_args()
    log = sys.stderr
    tv = [a.termvisor, "run", "--memory", "64M", "--kernel", a.guest]
    qm = QEMU + ["-m", "64", "-kernel", a.guest]

    # (a) first byte, alternating.
    ta, qa = [], []
    for _ in range(a.runs):
        ta.append(time_to(tv, rb"X", 30))
        qa.append(time_to(qm, rb"X", 30))
    log.write("# first byte termvisor: %s\n# first byte qemu: %s\n" % (fmt(ta), fmt(qa)))

    # (c) memory with the guest halted.
    tm = memory(tv, 64 << 20)
    qmm = memory(qm, 64 << 20)

    out = []
    out.append("| (a) minimal PVH guest, process start to first byte | median of %d |"
               % a.runs)
    out.append("|---|---|")
    out.append("| termvisor run | %.1f ms (min %.1f) |" % (med(ta) * 1e3, min(x for x in ta if x) * 1e3))
    out.append("| qemu -M microvm | %.1f ms (min %.1f) |" % (med(qa) * 1e3, min(x for x in qa if x) * 1e3))
    out.append("| termvisor / QEMU | **%.3f** (target <= 0.1) |" % (med(ta) / med(qa)))
    out.append("")

    if a.bzimage and a.vmlinux:
        lv = rb"Linux version"
        t_bz = lambda: time_to([a.termvisor, "run", "--cpus", "2", "--memory", "512M",
                                "--kernel", a.bzimage, "--append", APPEND], lv, 600)
        q_bz = lambda: time_to(QEMU + ["-smp", "2", "-m", "512", "-kernel", a.bzimage,
                                       "-append", APPEND], lv, 600)
        t_vm = lambda: time_to([a.termvisor, "run", "--cpus", "2", "--memory", "512M",
                                "--kernel", a.vmlinux, "--append", APPEND], lv, 600)
        q_vm = lambda: time_to(QEMU + ["-smp", "2", "-m", "512", "-kernel", a.vmlinux,
                                       "-append", APPEND], lv, 600)
        # The first bzImage boot extracts and caches the vmlinux; the rest reuse it.
        cold = series("bzImage termvisor, cold cache", t_bz, 1, log)
        tb, qb, tvv, qv = [], [], [], []
        for _ in range(a.linux_runs):
            tb.append(t_bz())
            qb.append(q_bz())
            tvv.append(t_vm())
            qv.append(q_vm())
        for name, xs in (("bzImage termvisor", tb), ("bzImage qemu", qb),
                         ("vmlinux termvisor", tvv), ("vmlinux qemu", qv)):
            log.write("# %s: %s\n" % (name, fmt(xs)))
        out.append("| (b) process start to `Linux version` (2 vCPUs, 512 MiB), median of %d "
                   "| termvisor | qemu -M microvm | QEMU / termvisor |" % a.linux_runs)
        out.append("|---|---|---|---|")
        out.append("| bzImage (termvisor: vmlinux extracted on the host, cached) | %.2f s "
                   "(first boot, extracting: %.2f s) | %.2f s | **%.1fx** (target >= 5x) |"
                   % (med(tb), med(cold), med(qb), med(qb) / med(tb)))
        out.append("| vmlinux (PVH on both) | %.2f s | %.2f s | **%.2fx** (target >= 1) |"
                   % (med(tvv), med(qv), med(qv) / med(tvv)))
        out.append("")

    out.append("| (c) resident memory, 64 MiB guest halted after its first byte | "
               "termvisor | qemu -M microvm |")
    out.append("|---|---|---|")
    out.append("| resident in all (VmRSS) | %.2f MiB | %.2f MiB |"
               % (tm[0] / 1024, qmm[0] / 1024))
    out.append("| of which the guest RAM mapping | %.2f MiB | %.2f MiB |"
               % (tm[1] / 1024, qmm[1] / 1024))
    out.append("| resident beyond guest RAM (shared libraries included) | **%.2f MiB** "
               "(target < 3) | %.2f MiB |" % ((tm[0] - tm[1]) / 1024, (qmm[0] - qmm[1]) / 1024))
    out.append("| proportional share (Pss) beyond guest RAM | %.2f MiB | %.2f MiB |"
               % (tm[3] / 1024, qmm[3] / 1024))
    out.append("| private memory beyond guest RAM | %.2f MiB | %.2f MiB |"
               % (tm[2] / 1024, qmm[2] / 1024))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
