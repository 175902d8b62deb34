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
import re
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
# Seconds to wait for all the prompts (MANY_TIMEOUT).
TIMEOUT = int(os.environ.get("MANY_TIMEOUT", "600"))
# The guest colours its prompt: "demo" and "$" have a colour change between
# them, in its output and in the console's replay alike, so they are matched
# with the escape sequences taken out.
PROMPT = b"demo$"
CSI = re.compile(rb"\x1b\[[0-9;?]*[@-~]")


def has_prompt(data):
    return PROMPT in CSI.sub(b"", data)


def wait_prompts(socks, t0, timeout):
    """Attaches read-only to each VM's console (socks: name -> socket path) and
    reads it until PROMPT shows, one connection per VM kept open (polling the
    replay would load the machine being measured). Returns name -> seconds
    from t0 to its prompt, and name -> the console bytes of those without."""
    import select
    import socket
    import struct
    conns, seen, up = {}, {}, {}
    while len(up) < len(socks) and time.perf_counter() < t0 + timeout:
        for name, path in socks.items():
            if name in up or name in conns:
                continue
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                s.sendall(console_attach.frame(1, struct.pack(">I", 1)) +
                          console_attach.frame(7, bytes([1, 0, 0, 24, 0, 80])))
            except OSError:
                s.close()
                continue
            conns[name] = [s, b""]
            seen[name] = b""
        if not conns:
            time.sleep(0.1)
            continue
        ready, _, _ = select.select([c[0] for c in conns.values()], [], [], 0.2)
        for name in [n for n, c in conns.items() if c[0] in ready]:
            c = conns[name]
            try:
                data = c[0].recv(65536)
            except OSError:
                data = b""
            if not data:
                c[0].close()
                del conns[name]
                continue
            c[1] += data
            while len(c[1]) >= 8:
                n, t, _ = struct.unpack(">IHH", c[1][:8])
                if len(c[1]) < 8 + n:
                    break
                if t == 0x8005:
                    seen[name] = (seen[name] + c[1][8:8 + n])[-4096:]
                c[1] = c[1][8 + n:]
            if has_prompt(seen[name]):
                up[name] = time.perf_counter() - t0
                c[0].close()
                del conns[name]
    for c in conns.values():
        c[0].close()
    return up, {n: seen.get(n, b"") for n in socks if n not in up}


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
    up, missing = wait_prompts({n: os.path.join(home, "run", n + ".sock") for n in names},
                               t0, TIMEOUT)
    all_up = max(up.values()) if up else None
    if missing:
        for name, console in sorted(missing.items()):
            st = subprocess.run([tv, "status", name], env=env, capture_output=True)
            print("# %s: no prompt; status: %s; console ends: %r"
                  % (name, (st.stdout + st.stderr).decode(errors="replace").strip(),
                     console[-300:]), file=sys.stderr)
        raise RuntimeError("termvisor: no prompt from %d of %d VMs in %d s"
                           % (len(missing), n, TIMEOUT))
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
    deadline = t0 + TIMEOUT
    try:
        while waiting and time.perf_counter() < deadline:
            for i in sorted(waiting):
                try:
                    with open(logs[i], "rb") as f:
                        if has_prompt(f.read()):
                            waiting.discard(i)
                except FileNotFoundError:
                    pass
                if procs[i].poll() is not None:
                    raise RuntimeError("qemu %d ended with status %d" % (i, procs[i].returncode))
            time.sleep(0.05)
        all_up = time.perf_counter() - t0
        if waiting:
            raise RuntimeError("qemu: no prompt from %d guests in %d s" % (len(waiting), TIMEOUT))
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
