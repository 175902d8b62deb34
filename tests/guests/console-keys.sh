#!/bin/sh
# `termvisor run` on a terminal: typed lines reach the guest, Ctrl-a h lists
# the console keys, Ctrl-a x quits with status 0.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
command -v python3 >/dev/null || t_skip_all "python3 is needed to drive a pseudo-terminal"
python3 - "$TV" "$top_builddir/tests/guests/serial.elf" <<'PY'
import os, pty, select, sys, time
tv, guest = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tv, [tv, "run", "--kernel", guest, "--memory", "32M"])
out = b""
def wait_for(pat, t=20):
    global out
    end = time.time() + t
    while pat not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return False
    return pat in out
n = 0
def check(what, ok):
    global n
    n += 1
    print(("ok %d - %s" if ok else "not ok %d - %s") % (n, what))
    return ok
failed = False
failed |= not check("guest prompt", wait_for(b"memmap:"))
os.write(fd, b"typed\r")
failed |= not check("typed line reaches the guest", wait_for(b"echo (polled): TYPED"))
os.write(fd, b"\x01h")
failed |= not check("Ctrl-a h lists the keys", wait_for(b"Ctrl-a x   quit"))
os.write(fd, b"\x01x")
wait_for(b"\x00never", 2)
_, st = os.waitpid(pid, 0)
failed |= not check("Ctrl-a x quits with status 0", os.waitstatus_to_exitcode(st) == 0)
for line in out.decode(errors="replace").splitlines():
    print("# " + line)
print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
