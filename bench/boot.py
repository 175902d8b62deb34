#!/usr/bin/env python3
"""Boot timings and memory, termvisor against QEMU -M microvm, side by side.

(a) process start to the first byte a minimal PVH guest prints (engine overhead);
(b) process start to the kernel's "Linux version" line, given a bzImage and given
    the same kernel's vmlinux;
(c) the engine's resident memory beyond guest RAM, with that guest halted;
(d) with --login DIR instead: process start to the login prompt of the VM that
    `termvisor create --template debian-minimal` made (DIR: its data directory,
    kernel, initrd and disk.qcow2), termvisor against QEMU -M microvm,pcie=on and
    -M q35, each boot on a fresh copy of the disk.
Runs alternate between the machines; medians are printed as Markdown.

usage: bench/boot.py --termvisor PATH --guest first-byte.elf [--bzimage F --vmlinux F]
                     [--runs N] [--linux-runs N]
       bench/boot.py --termvisor PATH --login DIR [--login-runs N] [--cmdline C]
                     [--memory MIB] [--cpus N]
"""
import argparse
import os
import re
import select
import shutil
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


class GuestFailed(Exception):
    pass


def wait_output(p, t0, pattern, timeout, failure=None):
    """Seconds from t0 until pattern (bytes regex) appears on p's stdout;
    GuestFailed when the failure pattern appears first."""
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
        if failure:
            m = re.search(failure, buf)
            if m:
                raise GuestFailed(m.group(0).decode(errors="replace").strip())
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


def time_to_login(argv, timeout):
    """(seconds to the login prompt, None) or (None, why not): the template's
    initramfs says `initramfs: cannot mount` when it finds no disk."""
    t0 = time.monotonic()
    p = start(argv)
    try:
        return wait_output(p, t0, rb"login: ", timeout, rb"initramfs: cannot mount[^\r\n]*"), None
    except (TimeoutError, EOFError, GuestFailed) as e:
        sys.stderr.write("# %s: %s\n" % (os.path.basename(argv[0]), e))
        return None, "%s (after %.1f s)" % (e, time.monotonic() - t0)
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


def login_main(a, log):
    """(d): the debian-minimal VM to its login prompt on three machines."""
    kernel, initrd = os.path.join(a.login, "kernel"), os.path.join(a.login, "initrd")
    disk = os.path.join(a.login, "disk.qcow2")
    for f in (kernel, initrd, disk):
        if not os.path.isfile(f):
            sys.exit("bench/boot.py: %s is missing (the VM's data directory, --login)" % f)
    scratch = os.path.join(a.scratch, "disk.qcow2")
    mem, cpus = str(a.memory), str(a.cpus)
    # The same devices on every machine: termvisor gives each VM virtio-blk,
    # virtio-console (hvc0, where the template starts a second getty) and
    # virtio-rng on PCI; QEMU gets them as PCI devices too. Its hvc0 goes to
    # a null chardev, as nothing watches termvisor's either.
    qdev = ["-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
            "-chardev", "stdio,id=c,signal=off", "-serial", "chardev:c",
            "-m", mem, "-smp", cpus, "-kernel", kernel, "-initrd", initrd,
            "-append", a.cmdline,
            "-drive", "file=%s,if=none,id=d0,format=qcow2" % scratch,
            "-device", "virtio-blk-pci,drive=d0", "-device", "virtio-rng-pci",
            "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=hv",
            "-chardev", "null,id=hv"]
    machines = [
        ("termvisor run", [a.termvisor, "run", "--cpus", cpus, "--memory", mem + "M",
                           "--kernel", kernel, "--initrd", initrd, "--append", a.cmdline,
                           "--disk", scratch + ",format=qcow2"]),
        ("qemu -M microvm,pcie=on", ["qemu-system-x86_64", "-enable-kvm",
                                     "-M", "microvm,pcie=on"] + qdev),
        ("qemu -M q35", ["qemu-system-x86_64", "-enable-kvm", "-M", "q35"] + qdev),
    ]

    def boot(argv, why=False):
        shutil.copyfile(disk, scratch)  # every boot starts from the image as made
        try:
            t, reason = time_to_login(argv, a.timeout)
            return (t, reason) if why else t
        finally:
            os.unlink(scratch)

    # Plain microvm, once: its devices are on virtio-mmio, whose driver is a
    # module (virtio_mmio.ko) that the template's initramfs does not load.
    plain = boot(["qemu-system-x86_64", "-enable-kvm", "-M", "microvm"] +
                 [x.replace("-pci", "-device") if x.startswith("virtio-") else x
                  for x in qdev], why=True)

    # One boot each first, not counted: termvisor extracts the kernel's vmlinux
    # into its cache there, and every file is in the page cache afterwards.
    first = [boot(argv) for _, argv in machines]
    log.write("# first boots (not counted): %s\n" % fmt(first))
    times = [[] for _ in machines]
    for r in range(a.login_runs):
        # Alternating, and each round begins with the next machine.
        for i in range(len(machines)):
            k = (r + i) % len(machines)
            times[k].append(boot(machines[k][1]))
    for (name, _), xs in zip(machines, times):
        log.write("# login %s: %s\n" % (name, fmt(xs)))
    tv = med(times[0])
    out = ["| (d) process start to the login prompt, debian-minimal template (%s vCPU, "
           "%s MiB, `%s`), %d alternating runs | median | range | machine / termvisor |"
           % (cpus, mem, a.cmdline, a.login_runs),
           "|---|---|---|---|"]
    for (name, _), xs in zip(machines, times):
        ok = [x for x in xs if x is not None]
        missed = len(xs) - len(ok)
        rng = "%.2f-%.2f s" % (min(ok), max(ok)) if ok else "-"
        if missed:
            rng += " (%d of %d without a login)" % (missed, len(xs))
        ratio = "" if xs is times[0] else "**%.2fx**" % (med(xs) / tv)
        out.append("| %s | %.2f s | %s | %s |" % (name, med(xs), rng, ratio))
    out.append("")
    out.append("Each run, in seconds (round by round): %s." % "; ".join(
        "%s %s" % (name, ", ".join("-" if x is None else "%.2f" % x for x in xs))
        for (name, _), xs in zip(machines, times)))
    out.append("Not counted: a first boot on each (its files not yet in the page cache; "
               "termvisor also extracts the vmlinux into its cache): %s." % ", ".join(
                   "%s %s" % (n, "-" if x is None else "%.2f s" % x)
                   for (n, _), x in zip(machines, first)))
    out.append("")
    out.append("Plain `qemu -M microvm` (the same devices on virtio-mmio), one boot: %s." %
               ("login after %.2f s" % plain[0] if plain[0] is not None
                else "no login: %s" % plain[1]))
    print("\n".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--termvisor", required=True)
    ap.add_argument("--guest")
    ap.add_argument("--login", metavar="DIR")
    ap.add_argument("--login-runs", type=int, default=5)
    ap.add_argument("--cmdline", default="console=ttyS0 root=/dev/vda rw quiet")
    ap.add_argument("--memory", type=int, default=256, help="MiB")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=180, help="seconds a boot may take")
    ap.add_argument("--scratch", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--bzimage")
    ap.add_argument("--vmlinux")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--linux-runs", type=int, default=3)
    a = ap.parse_args()
    log = sys.stderr
    if a.login:
        return login_main(a, log)
    if not a.guest:
        ap.error("--guest is needed (or --login)")
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
