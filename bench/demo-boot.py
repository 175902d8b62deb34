#!/usr/bin/env python3
"""Time from starting a machine to the demo guest's shell prompt, termvisor against
QEMU (microvm, the fastest-starting QEMU machine), several runs each; prints medians
and the ratio as a Markdown table for bench/RESULTS.md.

usage: bench/demo-boot.py [--runs N] [--termvisor PATH] [--demo PATH]
(defaults: build/termvisor and build/share/demo/demo.elf)
"""
import argparse
import importlib.util
import os
import re
import shutil
import statistics
import sys
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
    print("| machine | demo guest, start to shell prompt (median of %d) |" % a.runs)
    print("|---|---|")
    for name, m in medians.items():
        print("| %s | %.0f ms |" % (name, m * 1000))
    if len(medians) == 2:
        t, q = medians["termvisor run"], medians["qemu -M microvm"]
        print("\ntermvisor/QEMU ratio: %.2f" % (t / q))
    return 0 if medians else 1


if __name__ == "__main__":
    sys.exit(main())
