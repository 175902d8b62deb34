#!/usr/bin/env bash
# A guest cannot starve its VM's control: while the demo guest floods its
# console, spins on both vCPUs and hammers the RTC's and the UART's ports at
# once (`stress all`), `status` answers, a `console` attach shows the output,
# `pause` takes effect (the output stops), `resume` lets it go on and `stop`
# ends the VM, each within a second, timed through the real command line. The
# times are printed as comments.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
watch_pid= typer=
cleanup() {
	for p in $watch_pid $typer; do kill "$p" 2>/dev/null; done
	"$TV" stop flood --force >/dev/null 2>&1
	t_cleanup
}
trap cleanup EXIT
LIMIT_MS=1000
data=$TERMVISOR_HOME/data/flood
out=$TERMVISOR_HOME/watch.out

# Microseconds now, without a process (the nested machine is slow to fork).
now() { T=${EPOCHREALTIME/./}; }
# timed NAME COMMAND...: runs it, keeping its status in RC and its time in
# milliseconds in MS, and prints the time.
timed() {
	local what=$1 t0
	shift
	now
	t0=$T
	"$@" >"$TERMVISOR_HOME/timed.out" 2>&1
	RC=$?
	now
	MS=$(((T - t0) / 1000))
	echo "# $what: $MS ms"
}
# A FIFO nobody writes to: `read -t` on it sleeps without a process.
mkfifo "$TERMVISOR_HOME/tick"
exec 5<>"$TERMVISOR_HOME/tick"
nap() { read -r -t "$1" -u 5 _ || :; }
# wait_until SECONDS COMMAND...: polls COMMAND; MS is the time it took.
wait_until() {
	local limit=$(($1 * 1000000)) t0
	shift
	now
	t0=$T
	while ! "$@"; do
		now
		[ $((T - t0)) -lt $limit ] || return 1
		nap 0.02
	done
	now
	MS=$(((T - t0) / 1000))
}
# has FILE REGEX: whether the file holds a match, read without a process so
# that polling costs little of the machine being measured.
has() {
	local c
	IFS= read -r -d '' c <"$1"
	[[ $c =~ $2 ]]
}
size() { # SZ: the bytes in FILE, read the same way
	local LC_ALL=C c
	IFS= read -r -d '' c <"$1"
	SZ=${#c}
}
grows() { size "$out" && [ "$SZ" -gt "$1" ]; }

t_demo_vm flood "$demo" || exit 1
sed -i 's/^cpus = 1;/cpus = 2;/' "$TERMVISOR_HOME/vms/flood.conf"
t_check "the VM starts in the background" "$TV" start flood
t_check "the demo guest reaches its prompt" wait_until 60 has "$data/vm.log" 'demo.*\$'

# Console clients read their input from FIFOs the test holds open (no
# terminal needed). The same commands with the guest idle at its prompt
# first, for comparison.
timed "status, idle guest" "$TV" status flood
timed "pause, idle guest" "$TV" pause flood
timed "resume, idle guest" "$TV" resume flood
t_check "pause and resume with the guest idle" grep -q '^state: *running' <<<"$("$TV" status flood)"
mkfifo "$TERMVISOR_HOME/keys" "$TERMVISOR_HOME/none"
exec 3<>"$TERMVISOR_HOME/keys" 4<>"$TERMVISOR_HOME/none"
"$TV" console flood --read-only <&4 >"$out.idle" 2>&1 &
idle_pid=$!
wait_until 10 has "$out.idle" 'demo.*\$' && echo "# console attach, idle guest: the prompt after $MS ms"
kill $idle_pid

"$TV" console flood <&3 >/dev/null 2>&1 &
typer=$!
printf 'stress all\r' >&3
t_check "stress all starts on 2 vCPUs" wait_until 30 has "$data/vm.log" 'stress all on 2 vCPUs'
t_check "the guest floods its console" wait_until 10 has "$data/vm.log" 'stress: line'
sleep 1 # the flood is under way

# Where the machine's CPU time goes under the flood: the VM process's threads
# (main: its control loop) and the console client, over a second.
vm_pid=$(cat "$TERMVISOR_HOME/run/flood.pid" 2>/dev/null)
cpu_times() { # per thread of $vm_pid and the client: file, name, user and system ticks
	for f in /proc/$vm_pid/task/*/stat; do
		[ -r "$f" ] && echo "$f $(cat "${f%stat}comm" 2>/dev/null) $(cut -d' ' -f14,15 "$f")"
	done
	echo "client console-client $(cut -d' ' -f14,15 "/proc/$typer/stat" 2>/dev/null)"
}
c0=$(cpu_times)
sleep 1
c1=$(cpu_times)
echo "# CPU under the flood over 1 s (ticks of 1/$(getconf CLK_TCK) s, user+system):" \
	$(printf '%s\n%s\n' "$c0" "$c1" |
		awk '$1 in u {printf "%s %d+%d; ", $2, $3 - u[$1], $4 - s[$1]; next} {u[$1] = $3; s[$1] = $4}')

for i in 1 2 3; do
	timed "status $i" "$TV" status flood
	t_check "status $i answers under the flood (state running, $MS ms)" \
		grep -q '^state: *running' "$TERMVISOR_HOME/timed.out"
	t_check "status $i answers within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
done

# A read-only client attached now: the screen, then the live flood.
"$TV" console flood --read-only <&4 >"$out" 2>&1 &
watch_pid=$!
wait_until 10 has "$out" '^Connected to'
connected=$MS
if wait_until 10 has "$out" 'stress: line'; then
	MS=$((connected + MS))
	echo "# console attach: connected after $connected ms, the first output after $MS ms"
	t_check "console attach shows the output within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
else
	t_fail "console attach shows the guest's output"
fi
t_check "the attached console gets the live output" wait_until 5 grows "$(size "$out"; echo $SZ)"

timed pause "$TV" pause flood
t_check "pause succeeds under the flood" [ "$RC" -eq 0 ]
t_check "pause takes effect within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
timed "status while paused" "$TV" status flood
t_check "status says paused ($MS ms)" grep -q '^state: *paused' "$TERMVISOR_HOME/timed.out"
sleep 0.3 # what was on its way to the client
size "$out"
before=$SZ
sleep 1
size "$out"
after=$SZ
echo "# console output while paused: $before bytes, then $after bytes a second later"
t_check "the console output stops while paused" [ "$after" -eq "$before" ]

timed resume "$TV" resume flood
t_check "resume succeeds and answers within a second ($MS ms)" [ "$RC" -eq 0 -a "$MS" -lt $LIMIT_MS ]
if wait_until 5 grows "$after"; then
	echo "# the output goes on $MS ms after the resume"
	t_check "the flood goes on after the resume within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
else
	t_fail "the flood goes on after the resume"
fi
timed "status after the resume" "$TV" status flood
t_check "status answers after the resume within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]

# A key typed at the first client reaches the guest through the flood.
printf x >&3
if wait_until 5 has "$out" 'stress: stopped after'; then
	echo "# a key stops the stress after $MS ms"
	t_check "a typed key reaches the flooding guest within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
else
	t_fail "a typed key reaches the flooding guest"
fi
printf 'stress all\r' >&3
again() { sed -n '/stress: stopped after/,$p' "$out" | grep -q 'stress: line'; }
t_check "stress all starts again" wait_until 10 again

# The stress loop looks at the ACPI power button between rounds: a plain
# stop (power button) ends it, as it would a guest that is only busy.
timed stop "$TV" stop flood --timeout 10
t_check "stop ends the VM under the flood" [ "$RC" -eq 0 ]
t_check "stop returns within a second ($MS ms)" [ "$MS" -lt $LIMIT_MS ]
t_check "the guest powered off on the button" grep -q "VM ended: the guest powered off" "$data/vm.log"
t_check "the VM reads as stopped" grep -q "^flood .* stopped " <<<"$("$TV" list)"
wait $watch_pid 2>/dev/null
watch_pid=
wait $typer 2>/dev/null
t_done
