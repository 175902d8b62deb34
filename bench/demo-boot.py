#!/usr/bin/env python3
"""Time from starting a machine to the demo guest's shell prompt, termvisor against
QEMU (microvm, the fastest-starting QEMU machine), several runs each; prints medians
and the ratio as a Markdown table for bench/RESULTS.md.  Also the first run: the
interface started with no VM defined (it makes the demo VM, boots it and shows its
console) until the prompt is on the screen, through tmux.

usage: bench/demo-boot.py [--runs N] [--termvisor PATH] [--demo PATH]
(defaults: build/termvisor and build/share/demo/demo.elf)
"""
import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    "demo_shell", os.path.join(top, "tests", "demo", "demo-shell.py"))
demo_shell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_shell)


def time_to_prompt(argv):
    t0 = time.monotonic()
    con = demo_shell.Console(argv)
    try:
        con.expect(re.escape(demo_shell.PROMPT), 30)
        return time.monotonic() - t0
    finally:
        con.kill()


def first_run_to_prompt(tv):
    """The interface in a fresh TERMVISOR_HOME inside tmux, until 'demo$' shows."""
    with tempfile.TemporaryDirectory() as home:
        sock = os.path.join(home, "tmux.sock")
        tmux = ["tmux", "-S", sock]
        env = dict(os.environ, TERMVISOR_HOME=home)
        t0 = time.monotonic()
        subprocess.run(tmux + ["new-session", "-d", "-s", "ui", "-x", "100", "-y", "30",
                               "env TERMVISOR_HOME='%s' '%s'; sleep 30" % (home, tv)],
                       check=True)
        try:
            while time.monotonic() - t0 < 30:
                screen = subprocess.run(tmux + ["capture-pane", "-t", "ui", "-p"],
                                        capture_output=True, text=True).stdout
                if "demo$" in screen:
                    return time.monotonic() - t0
                time.sleep(0.005)
            raise TimeoutError("no demo prompt on the interface's screen in 30 s")
        finally:
            subprocess.run([tv, "stop", "demo", "--force"], env=env, capture_output=True)
            subprocess.run(tmux + ["kill-server"], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--termvisor", default=os.path.join(top, "build", "termvisor"))
    ap.add_argument("--demo", default=os.path.join(top, "build", "share", "demo", "demo.elf"))
    a = ap.parse_args()
    machines = {
        "termvisor run": [a.termvisor, "run", "--kernel", a.demo, "--cpus", "2",
                          "--memory", "64M"],
        "qemu -M microvm": ["qemu-system-x86_64", "-enable-kvm", "-M", "microvm",
                            "-kernel", a.demo, "-smp", "2", "-m", "64", "-display", "none",
                            "-chardev", "stdio,id=c,signal=off", "-serial", "chardev:c",
                            "-monitor", "none"],
    }
    medians = {}
    for name, argv in machines.items():
        if not shutil.which(argv[0]):
            print("# %s: %s not found, skipped" % (name, argv[0]), file=sys.stderr)
            continue
        times = []
        for _ in range(a.runs):
            try:
                times.append(time_to_prompt(argv))
            except (TimeoutError, EOFError) as e:
                print("# %s: %s" % (name, e), file=sys.stderr)
                break
        if times:
            medians[name] = statistics.median(times)
            print("# %s: %s" % (name, " ".join("%.3f" % t for t in times)), file=sys.stderr)
    if shutil.which("tmux") and os.path.exists(a.termvisor):
        times = []
        for _ in range(a.runs):
            try:
                times.append(first_run_to_prompt(a.termvisor))
            except (TimeoutError, subprocess.CalledProcessError) as e:
                print("# first run: %s" % e, file=sys.stderr)
                break
        if times:
            medians["termvisor, first run (interface)"] = statistics.median(times)
            print("# first run: %s" % " ".join("%.3f" % t for t in times), file=sys.stderr)
    print("| machine | demo guest, start to shell prompt (median of %d) |" % a.runs)
    print("|---|---|")
    for name, m in medians.items():
        print("| %s | %.0f ms |" % (name, m * 1000))
    if "termvisor run" in medians and "qemu -M microvm" in medians:
        t, q = medians["termvisor run"], medians["qemu -M microvm"]
        print("\ntermvisor/QEMU ratio: %.2f" % (t / q))
    return 0 if medians else 1


if __name__ == "__main__":
    sys.exit(main())
