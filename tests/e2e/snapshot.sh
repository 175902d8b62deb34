#!/usr/bin/env bash
# Machine snapshots of a running VM, end to end, with the demo guest on
# /dev/kvm and its console in a real terminal (tmux):
#   - a snapshot taken while `count` runs: after a rollback the counter goes on
#     from its value at the snapshot, not from the later one, the note on the
#     disk is the old one, and the console shows the old screen;
#   - two children of one snapshot, switched between ten times, each with its
#     own note;
#   - a hundred rollbacks in a row: the VM process's memory, open files and
#     the snapshots' disk use do not grow;
#   - a paused VM stays paused through a take and a rollback, and resumed it
#     goes on from the snapshot;
#   - a stopped VM rolled back starts where the snapshot was;
#   - the VM process killed (kill -9) during a take, a rollback and the delete
#     of a snapshot whose child's memory image is a layer on it: the
#     tree lists only whole snapshots, what was half written is gone at the
#     next start, and the disk passes qemu-img check with the snapshots'
#     tags listed.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
QEMU_IMG=${QEMU_IMG:-$(command -v qemu-img)}
[ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is not installed"
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
t_tmux_init
sock=$T_TMUX_SOCK
data=$TERMVISOR_HOME/data/lab
disk=$data/disk.qcow2
screen() { t_screen c; }
wait_for() { t_wait_for c "$1"; } # up to 30 s on the console's screen
type_line() { t_type c "$1"; }
asan_opts=$T_ASAN_OPTS
# Under AddressSanitizer freed memory waits in a quarantine before it is
# reused (256 MiB by default), which the VM process's RSS shows as growth:
# here it is 16 MiB, and the RSS check below allows for it.
quarantine_kib=0
if t_sanitized; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
	asan_opts=$asan_opts:quarantine_size_mb=16
	quarantine_kib=16384
fi
console() { # a fresh console client in the tmux session c
	tm kill-session -t c 2>/dev/null
	tm new-session -d -s c -x 100 -y 30 \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' '$TV' console lab; sleep 600"
}
vm_pid() { head -n1 "$TERMVISOR_HOME/run/lab.pid" 2>/dev/null | tr -dc 0-9; }
# A snapshot command, bounded: when it fails, what it said and the end of the
# VM's log; when it hangs, also the system call each of the VM process's
# threads waits in.
snap() {
	timeout 60 "$TV" snapshot "$@" >"$TERMVISOR_HOME/snap.out" 2>&1 && return 0
	local rc=$?
	echo "# termvisor snapshot $* (status $rc):"
	sed 's/^/#   /' "$TERMVISOR_HOME/snap.out"
	tail -n 15 "$data/vm.log" | sed 's/^/#   vm.log: /'
	if [ $rc -eq 124 ]; then
		local pid t
		pid=$(vm_pid)
		for t in /proc/"$pid"/task/*; do
			echo "#   thread $(cat "$t/comm"): syscall $(cut -d' ' -f1 "$t/syscall") wchan $(cat "$t/wchan")"
		done
		t_fail "termvisor snapshot $* answers within 60 s"
		t_done # the rest would only wait on a VM that does not answer
	fi
	return 1
}
# The counter on the screen now (the last "count: N").
count_now() { screen | grep -o 'count: [0-9]*' | tail -n1 | cut -d' ' -f2; }
cleanup() {
	local pid
	pid=$(vm_pid)
	timeout 10 "$TV" stop lab --force >/dev/null 2>&1 || { [ -n "$pid" ] && kill -9 "$pid"; }
	tm kill-server 2>/dev/null
	t_cleanup
}
trap cleanup EXIT
t0=$(date +%s)
note() { echo "# [$(($(date +%s) - t0)) s] $*"; }

t_demo_vm lab "$demo" || exit 1

"$TV" start lab >/dev/null || exit 1
console
t_check "the demo guest's prompt" wait_for 'demo\$'
type_line "note set alpha"
t_check "note alpha saved" wait_for "note saved (5 bytes)"

# A snapshot while the counter runs.
note "take while count runs"
type_line "count"
wait_for "count: [1-9]" >/dev/null
c0=$(count_now)
t_check "snapshot take s1 while count runs" snap take lab s1
c1=$(count_now)
sleep 4
c2=$(count_now)
t_check "the counter runs on after the take ($c0, $c1, $c2)" [ "${c2:-0}" -gt "${c1:-0}" ]
# The guest moves on: the counter stopped, a new note, more on the screen.
tm send-keys -t c q
wait_for "stopped at" >/dev/null
type_line "note set bravo-bb"
wait_for "note saved (8 bytes)" >/dev/null
later=$(screen | grep -o 'stopped at [0-9]*' | tail -n1 | cut -d' ' -f3)
note "rollback to s1 (counter stopped at $later)"
t_check "rollback to s1 (the state before saved automatically)" snap rollback lab s1
t_check "the reply names the automatic snapshot" grep -q "auto-" "$TERMVISOR_HOME/snap.out"
t_check "the console shows the old screen: the counter, not the later commands" \
	bash -c "sleep 0.3; '$TMUX_BIN' -S '$sock' capture-pane -t c -p | grep -q 'counting' &&
		! '$TMUX_BIN' -S '$sock' capture-pane -t c -p | grep -q 'note set bravo'"
sleep 0.5
tm send-keys -t c q
t_check "the counter was running again" wait_for "stopped at"
back=$(screen | grep -o 'stopped at [0-9]*' | tail -n1 | cut -d' ' -f3)
t_check "it went on from its value at s1 ($c0..$c1), not from the later $later (got $back)" \
	[ -n "$back" ] && [ "$back" -ge "${c0:-0}" ] && [ "$back" -lt "${later:-0}" ]
type_line "note get"
t_check "the note is alpha again" wait_for "note: alpha"

# Two children of s1, switched between ten times.
note "children"
type_line "note set c1-note-xyz"
wait_for "note saved (11 bytes)" >/dev/null
t_check "take c1" snap take lab c1
t_check "back to s1 without saving" snap rollback lab s1 --discard
tm send-keys -t c q
wait_for "stopped at" >/dev/null
type_line "note set c2-note-uvwxyz"
wait_for "note saved (14 bytes)" >/dev/null
t_check "take c2" snap take lab c2
ok=true
for i in $(seq 10); do
	for child in c1 c2; do
		snap rollback lab $child --discard || { ok=false; break 2; }
		type_line "note get"
		wait_for "note: $child-note" >/dev/null || { ok=false; break 2; }
		screen | grep -q "note: $([ $child = c1 ] && echo c2 || echo c1)-note" && { ok=false; break 2; }
	done
done
t_check "ten switches between c1 and c2, each with its own note (stopped at round $i)" $ok

# A hundred rollbacks in a row: nothing grows.
note "100 rollbacks"
pid=$(vm_pid)
usage() { # RSS in KiB, open files, snapshot bytes on disk
	echo "$(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status) $(ls /proc/"$pid"/fd | wc -l) $(du -s --block-size=1 "$data/snapshots" | cut -f1)"
}
for _ in 1 2 3; do snap rollback lab c1 --discard; done
read -r rss0 fds0 du0 <<<"$(usage)"
start=$(date +%s%N)
n=0
for _ in $(seq 100); do snap rollback lab c1 --discard && n=$((n + 1)); done
ms=$((($(date +%s%N) - start) / 1000000))
read -r rss1 fds1 du1 <<<"$(usage)"
echo "# 100 rollbacks in $ms ms; RSS $rss0 -> $rss1 KiB, fds $fds0 -> $fds1, snapshots $du0 -> $du1 bytes"
t_check "100 rollbacks in a row all worked ($n)" [ $n -eq 100 ]
t_check "the VM process's RSS did not grow (more than 4 MiB$([ $quarantine_kib -eq 0 ] || echo " and the sanitizer's quarantine"): $rss0 -> $rss1 KiB)" \
	[ $((rss1 - rss0)) -lt $((4096 + quarantine_kib)) ]
t_check "nor its open files ($fds0 -> $fds1)" [ "$fds1" -eq "$fds0" ]
t_check "nor the snapshots' disk use ($du0 -> $du1)" [ "$du1" -eq "$du0" ]
type_line "note get"
t_check "the guest still answers, on c1" wait_for "note: c1-note-xyz"

# A paused VM: a take and a rollback leave it paused; resumed, it goes on from
# the snapshot.
note "paused VM"
paused() { "$TV" status lab | grep -q '^state: *paused'; }
"$TV" pause lab >/dev/null
t_check "take of the paused VM" snap take lab while-paused
t_check "the VM is still paused after the take" paused
t_check "rollback of the paused VM to c2" snap rollback lab c2 --discard
t_check "the VM is still paused after the rollback" paused
"$TV" resume lab >/dev/null
type_line "note get"
t_check "resumed, it goes on from c2: c2's note" wait_for "note: c2-note-uvwxyz"
snap rollback lab c1 --discard

# A stopped VM rolled back starts where the snapshot was.
note "stopped VM"
"$TV" stop lab --force >/dev/null
t_check "rollback of the stopped VM to c2" snap rollback lab c2
"$TV" start lab >/dev/null
console
t_check "it starts on c2's screen" wait_for "note set c2-note"
type_line "note get"
t_check "with c2's note" wait_for "note: c2-note-uvwxyz"

# kill -9 during takes and rollbacks: only whole snapshots remain.
note "kills"
whole() { # every snapshot the index names has its files; nothing half-made lists
	local ok=0 n=0 index
	# (no process substitution: the nested machine's chroot has no /dev/fd)
	index=$(sed -n 's/^snapshot id=\([0-9a-f]*\) .*memory=\([a-z]*\).*/\1 \2/p' "$data/snapshots/index")
	while read -r id mem; do
		n=$((n + 1))
		[ "$mem" = yes ] || continue
		for f in state memory console; do
			[ -s "$data/snapshots/$id/$f" ] || { echo "# snapshot $id lacks $f"; ok=1; }
		done
	done <<<"$index"
	[ $n -ge 3 ] || { echo "# only $n snapshots in the index"; ok=1; }
	"$TV" snapshot list lab >/dev/null || ok=1
	return $ok
}
qcheck() { # no corruption (leaks from a killed writer allowed until the next open)
	"$QEMU_IMG" check -q "$disk" 2>&1 | sed 's/^/# /'
	local rc=${PIPESTATUS[0]}
	[ $rc -eq 0 ] || [ $rc -eq 3 ]
}
kills_ok=true
parents=
for i in 1 2 3 4 5 6; do
	if [ $((i % 3)) -eq 0 ]; then
		# A delete of a snapshot whose child's memory image is a layer on
		# it: the child's layer is made whole before the parent goes.
		"$TV" snapshot take lab "p$i" >/dev/null && "$TV" snapshot take lab "q$i" >/dev/null ||
			{ kills_ok=false; echo "# takes before kill $i failed"; }
		parents="$parents q$i"
	fi
	pid=$(vm_pid)
	case $((i % 3)) in
	1) "$TV" snapshot take lab "k$i" >/dev/null 2>&1 & ;;
	2) "$TV" snapshot rollback lab c1 >/dev/null 2>&1 & ;;
	0) "$TV" snapshot delete lab "p$i" >/dev/null 2>&1 & ;;
	esac
	sleep "0.0$((RANDOM % 10))"
	kill -9 "$pid"
	wait
	sleep 0.3
	whole || { kills_ok=false; echo "# after kill $i: the tree is not whole"; }
	qcheck || { kills_ok=false; echo "# after kill $i: qemu-img check failed"; }
	"$TV" start lab >/dev/null || { kills_ok=false; echo "# after kill $i: no start"; }
done
t_check "kill -9 during takes, rollbacks and deletes leaves only whole snapshots and sound disks" $kills_ok
# The children of the snapshots whose delete was cut short still restore.
children_ok=true
for q in $parents; do
	snap rollback lab "$q" --discard || children_ok=false
done
t_check "each child of a snapshot killed while being deleted rolls back ($parents)" $children_ok
t_check "the next start left no half-made snapshot" \
	bash -c "! ls -a '$data/snapshots' | grep -q '^\.tmp-'"
"$TV" stop lab --force >/dev/null
t_check "the disk passes qemu-img check" "$QEMU_IMG" check -q "$disk"
tags=$("$QEMU_IMG" snapshot -l "$disk")
t_check "qemu-img snapshot -l lists s1, c1 and c2" \
	bash -c "grep -qw s1 <<<'$tags' && grep -qw c1 <<<'$tags' && grep -qw c2 <<<'$tags'"
t_check "and exactly the tags of the tree" \
	[ "$(awk 'NR > 2 {print $2}' <<<"$tags" | sort | tr '\n' ' ')" = \
	"$(sed -n 's/^snapshot .*tag=\([^ ]*\).*/\1/p' "$data/snapshots/index" | sort | tr '\n' ' ')" ]
note "done"
t_done
