#!/usr/bin/env bash
# How a background VM ends: the guest powers off on the power button (a clean
# stop), a guest that ignores the button is forced off after the timeout, a
# guest reset boots it again, and a guest crash (triple fault) reads as
# crashed with the reason, the registers and the console's last lines in the log.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
guests=$top_builddir/tests/guests
[ -f "$demo" ] && [ -f "$guests/serial.elf" ] || t_skip_all "the demo or test guests are not built"
t_home
trap 'for v in demo deaf looper crasher; do "$TV" stop $v --force >/dev/null 2>&1; done; t_cleanup' EXIT
mkdir -p "$TERMVISOR_HOME/vms"
def() { printf 'memory = "32M";\nkernel = "%s";\ncmdline = "console=ttyS0";\n' "$2" \
	>"$TERMVISOR_HOME/vms/$1.conf"; }
log() { cat "$TERMVISOR_HOME/data/$1/vm.log"; }
def demo "$demo"
def deaf "$guests/serial.elf"
def looper "$guests/reboot.elf"
def crasher "$guests/triple.elf"

"$TV" start demo >/dev/null
sleep 0.5
t_check "stop presses the power button and the demo guest powers off" "$TV" stop demo --timeout 10
t_check "its log says the guest powered off" grep -q "VM ended: the guest powered off" <<<"$(log demo)"
t_check "and it reads as stopped, not crashed" grep -q "^demo .* stopped " <<<"$("$TV" list)"

"$TV" start deaf >/dev/null
# The serial guest echoes what it reads: make it print a control sequence
# with 40 parameters, which crashes libvterm 0.1.4 unguarded.
python3 - "$TERMVISOR_HOME/run/deaf.sock" <<'PY'
import socket, struct, sys, time
f = lambda t, p=b"": struct.pack(">IHH", len(p), t, 0) + p
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(f(1, struct.pack(">I", 1)) + f(7, bytes([0, 0, 0, 24, 0, 80])))
time.sleep(0.3)
s.sendall(f(8, b"\x1b[" + b";" * 40 + b"m\n"))
time.sleep(0.5)
PY
t_check "a guest printing a sequence that crashes libvterm does not take its VM process down" \
	grep -q "state: *running" <<<"$("$TV" status deaf)"
# What the guest prints reaches everyone through one guard, the log too: the
# sequence arrives there with 15 of its 40 separators.
t_check "the guest did print it, guarded in the log as everywhere" \
	grep -q 'echo (polled): .\[;\{15\}M' <<<"$(log deaf)"
start=$(date +%s%N)
t_check "a guest that ignores the button is stopped all the same" "$TV" stop deaf --timeout 1
took=$((($(date +%s%N) - start) / 1000000))
t_check "after the timeout (1 s), took $took ms" test "$took" -ge 900 -a "$took" -lt 5000
t_check "its log says it was forced" grep -q "did not stop in time; forcing off" <<<"$(log deaf)"
t_check "a forced stop is not a crash" grep -q "^deaf .* stopped " <<<"$("$TV" list)"

"$TV" start looper >/dev/null
sleep 1
t_check "a guest reset boots it again in the same VM process" \
	test "$(grep -c "booting again" <<<"$(log looper)")" -ge 2
t_check "and it still runs" grep -q "^looper .* running " <<<"$("$TV" list)"
"$TV" stop looper --force >/dev/null

"$TV" start crasher >/dev/null 2>&1
for _ in $(seq 50); do "$TV" list | grep -q "^crasher .* running " || break; sleep 0.1; done
listing=$("$TV" list)
t_check "a guest that triple-faults reads as crashed" grep -q "^crasher .* crashed " <<<"$listing"
t_check "with the reason under it" grep -q "triple" <<<"$listing"
# The dump, or on AMD's KVM (which resets the vCPU at the fault) the note
# that the registers are lost.
t_check "the register dump is in its log" \
	grep -qE "rip [0-9a-f]{16}|registers: lost" <<<"$(log crasher)"
t_check "and the guest's last console lines" grep -q "triple guest: faulting now" <<<"$(log crasher)"
t_check "it can be started again" "$TV" start crasher
t_done
