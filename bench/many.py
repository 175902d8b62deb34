#!/usr/bin/env python3
"""Many small VMs at once: N demo guests of 64 MiB started together, termvisor
against QEMU -M microvm starting the same guest N times, side by side.

usage: many.py TERMVISOR DEMO_ELF [N]

Measures, for each engine:
  start:   from the first start to every guest's prompt on its console
           (termvisor: `termvisor start` of each VM in turn, then each VM's
           console read over its control socket; QEMU: N processes, each
           guest's serial output in a file);
  memory:  each VM process's resident memory beyond its guest RAM mapping
           (smaps), median and total;
and for termvisor with all N running: `termvisor list` (median of 5), an
attach to each VM's console (the replay, slowest of N), and the stop of all.
"""
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("console_attach",
                                              os.path.join(here, "console-attach.py"))
console_attach = importlib.util.module_from_spec(spec)
spec.loader.exec_module(console_attach)

GUEST_MIB = 64
PROMPT = b"demo$"


def replay_has(path, needle):
    """Whether the console replay of the VM behind socket path holds needle."""
    try:
        _, _, console = console_attach.attach_replay(path)
    except OSError:
        return False
    return needle in console


def run(argv, env):
    """argv's output; its error output in the exception when it fails."""
    p = subprocess.run(argv, env=env, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("%s: status %d: %s" % (" ".join(argv[1:]), p.returncode,
                                                 p.stderr.decode(errors="replace").strip()))
    return p.stdout


def run_termvisor(tv, demo, n, home):
    env = dict(os.environ, TERMVISOR_HOME=home)
    names = ["many%02d" % i for i in range(n)]
    # No network card: the same machine as the QEMU command below.
    for name in names:
        run([tv, "create", name, "--kernel", demo, "--memory", "%dM" % GUEST_MIB,
             "--net", "none"], env)
    t0 = time.perf_counter()
    for name in names:
        run([tv, "start", name], env)
    started = time.perf_counter() - t0
    waiting = set(names)
    deadline = t0 + 600
    while waiting and time.perf_counter() < deadline:
        for name in sorted(waiting):
            if replay_has(os.path.join(home, "run", name + ".sock"), PROMPT):
                waiting.discard(name)
        time.sleep(0.05)
    all_up = time.perf_counter() - t0
    if waiting:
        raise RuntimeError("termvisor: no prompt from %s in 600 s" % " ".join(sorted(waiting)))
    lists = []
    for _ in range(5):
        t = time.perf_counter()
        out = run([tv, "list"], env)
        lists.append(time.perf_counter() - t)
    running = out.decode().count("running")
    attach = max(console_attach.attach_once(os.path.join(home, "run", name + ".sock"))[0]
                 for name in names)
    beyond = []
    for name in names:
        st = json.loads(run([tv, "status", name, "--json"], env))
        beyond.append(console_attach.rss_beyond_guest(st["pid"], GUEST_MIB * 1024)[1])
    t = time.perf_counter()
    for name in names:
        run([tv, "stop", name], env)
    stop = time.perf_counter() - t
    return {"started": started, "all_up": all_up, "list": statistics.median(lists),
            "running": running, "attach": attach, "beyond": beyond, "stop": stop}


def run_qemu(demo, n, work):
    procs, logs = [], []
    t0 = time.perf_counter()
    for i in range(n):
        log = os.path.join(work, "qemu%02d.log" % i)
        logs.append(log)
        procs.append(subprocess.Popen(
            ["qemu-system-x86_64", "-enable-kvm", "-M", "microvm", "-kernel", demo,
             "-m", str(GUEST_MIB), "-smp", "1", "-display", "none", "-monitor", "none",
             "-serial", "file:" + log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    waiting = set(range(n))
    deadline = t0 + 600
    try:
        while waiting and time.perf_counter() < deadline:
            for i in sorted(waiting):
                try:
                    with open(logs[i], "rb") as f:
                        if PROMPT in f.read():
                            waiting.discard(i)
                except FileNotFoundError:
                    pass
                if procs[i].poll() is not None:
                    raise RuntimeError("qemu %d ended with status %d" % (i, procs[i].returncode))
            time.sleep(0.05)
        all_up = time.perf_counter() - t0
        if waiting:
            raise RuntimeError("qemu: no prompt from %d guests in 600 s" % len(waiting))
        beyond = [console_attach.rss_beyond_guest(p.pid, GUEST_MIB * 1024)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return {"all_up": all_up, "beyond": beyond}


def main():
    tv, demo = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    with tempfile.TemporaryDirectory(prefix="tv-many.") as work:
        t = run_termvisor(tv, demo, n, os.path.join(work, "home"))
        q = run_qemu(demo, n, work) if shutil.which("qemu-system-x86_64") else None
    mib = lambda kib: kib / 1024.0
    print("%d demo guests of %d MiB, started together" % (n, GUEST_MIB))
    print("termvisor: all %d prompts %.2f s after the first start (the %d starts took %.2f s)"
          % (n, t["all_up"], n, t["started"]))
    print("termvisor: memory beyond guest RAM per VM: median %.1f MiB, total %.1f MiB"
          % (mib(statistics.median(t["beyond"])), mib(sum(t["beyond"]))))
    print("termvisor: with %d running (%d listed running): list %.0f ms, slowest attach %.1f ms,"
          " stop of all %.2f s" % (n, t["running"], t["list"] * 1000, t["attach"] * 1000, t["stop"]))
    if q:
        print("qemu microvm: all %d prompts %.2f s after the first start" % (n, q["all_up"]))
        print("qemu microvm: memory beyond guest RAM per VM: median %.1f MiB, total %.1f MiB"
              % (mib(statistics.median(q["beyond"])), mib(sum(q["beyond"]))))
        print("ratios (qemu / termvisor): start %.2fx, memory beyond guest RAM %.2fx"
              % (q["all_up"] / t["all_up"],
                 statistics.median(q["beyond"]) / statistics.median(t["beyond"])))


if __name__ == "__main__":
    main()
