#!/usr/bin/env bash
# Snapshots by keyboard in the interface, through a real terminal (tmux) of
# 80x24, with the demo guest on /dev/kvm:
#   - Enter starts the VM and focuses its console; `note set one`; the
#     keyboard given back; `t` and Enter take a snapshot (its name proposed);
#   - `note set two`; `T` opens the tree with the "you are here" mark; `r` on
#     the snapshot asks (saying the current state is saved first), `y` rolls
#     back: the console shows the old screen and `note get` prints one;
#   - rename and delete from the tree (the automatic snapshot the rollback
#     made), seen by `termvisor snapshot list` too;
#   - a stopped VM's tree: `t` takes a disk-only snapshot, listed by
#     qemu-img in its disk.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
QEMU_IMG=${QEMU_IMG:-$(command -v qemu-img)}
[ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is not installed"
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
sock=$TERMVISOR_HOME/tmux.sock
tm() { timeout 20 "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
screen() { tm capture-pane -t ui -p; }
# Waits (30 s unless told: emulated machines are slow) for text on the screen.
wait_for() { # text [seconds]
	for _ in $(seq $((${2:-30} * 10))); do
		screen | grep -q -- "$1" && return 0
		sleep 0.1
	done
	echo "# screen while waiting for '$1':" && screen | sed 's/^/# /'
	return 1
}
# Waits until text is on the screen at least n times.
wait_count() { # text n
	for _ in $(seq 300); do
		[ "$(screen | grep -c -- "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "# screen while waiting for $2 times '$1':" && screen | sed 's/^/# /'
	return 1
}
keys() { tm send-keys -t ui "$@"; }
list() { "$TV" snapshot list "$1" 2>&1; }
asan_opts=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
cleanup() {
	timeout 10 "$TV" stop demo --force >/dev/null 2>&1
	tm kill-server 2>/dev/null
	t_cleanup
}
trap cleanup EXIT

# demo first in the list (selected), idle stays stopped.
t_demo_vm demo "$demo" || exit 1
t_demo_vm idle "$demo" || exit 1
tm new-session -d -s ui -x 80 -y 24 \
	"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' LANG=C.UTF-8 '$TV'; sleep 600"
t_check "the list shows both VMs" wait_for "idle"

keys Enter
t_check "Enter starts demo and shows its prompt" wait_for 'demo\$' 60
keys "note set one" Enter
t_check "the note is saved" wait_for "note saved (3 bytes)"
keys C-g
keys t
t_check "t proposes a name" wait_for "snap-1"
keys Enter
t_check "Enter takes the snapshot (the reply's figures in the message bar)" \
	wait_for "took snapshot 'snap-1' of demo"
t_check "it is in the tree on disk, a machine snapshot" \
	bash -c "'$TV' snapshot list demo | grep -q 'snap-1 .* machine'"

keys Enter
wait_for 'demo\$' >/dev/null
keys "note set two" Enter
t_check "the second note is saved" wait_count "note saved (3 bytes)" 2
keys C-g

keys T
t_check "T opens the tree with the 'you are here' mark" wait_for "snap-1 (.*here)"
t_check "the tree shows the snapshot's kind" wait_for "snap-1 .*machine"
keys r
t_check "r asks which snapshot" wait_for "Roll demo back"
t_check "saying the current state is saved first (automatic)" wait_for "automatic"
keys y
t_check "y rolls back (the message names the automatic snapshot)" \
	wait_for "rolled demo back to 'snap-1'.*auto-1" 60
t_check "the console shows the screen of the snapshot" wait_for "note set one"
t_check "and not what came after it" bash -c "! '$TMUX_BIN' -S '$sock' capture-pane -t ui -p |
	grep -q 'note set two'"
keys Enter
keys "note get" Enter
t_check "note get prints the old note" wait_for "note: one"
keys C-g

keys T
t_check "the tree again: the automatic snapshot under snap-1" wait_for "auto-1"
t_check "with here still on snap-1" wait_for "snap-1 (.*here)"
keys R
t_check "R asks for the new name" wait_for "Rename snapshot 'snap-1'"
keys C-u "first" Enter
t_check "the snapshot is renamed" wait_for "renamed snapshot 'snap-1' of demo to 'first'"
t_check "termvisor snapshot list shows the new name" bash -c "'$TV' snapshot list demo | grep -q '^\\* *first '"
t_check "the tree shows it with the mark" wait_for "first (.*here)"
keys Down D
t_check "D names the snapshot and its children" wait_for "Delete snapshot 'auto-1'.*"
t_check "the question says it has no children" wait_for "no children"
keys y
t_check "y deletes it" wait_for "deleted snapshot 'auto-1' of demo"
t_check "termvisor snapshot list no longer has it" bash -c "! '$TV' snapshot list demo | grep -q auto-1"
t_check "the cursor went back to the row above" wait_for "first (.*here)"

# A stopped VM: its snapshots are disk-only, made by a job.
keys Escape
sleep 0.3
keys Down T
t_check "idle's tree is empty" wait_for "no snapshots yet"
keys t
t_check "the form says the snapshot is disk-only" wait_for "Disk-only snapshot"
keys Enter
t_check "t and Enter take it" wait_for "took disk-only snapshot 'snap-1' of stopped VM idle"
t_check "the tree shows it as disk-only" wait_for "snap-1 .*disk-only"
t_check "its disk holds the internal snapshot" \
	bash -c "'$QEMU_IMG' snapshot -l '$TERMVISOR_HOME/data/idle/disk.qcow2' | grep -q snap-1"
t_done
