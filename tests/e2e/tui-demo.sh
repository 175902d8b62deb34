#!/usr/bin/env bash
# The first-run experience through a real terminal: with no VM defined the
# interface makes the demo VM, boots it and shows its console; the VM
# keeps running when the interface quits, and a new interface sees its screen.
. "$(dirname "$0")/../lib.sh"
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
t_need_kvm
[ -f "$top_builddir/share/demo/demo.elf" ] || t_skip_all "the demo guest was not built"
t_home
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
screen() { tm capture-pane -t ui -p; }
wait_for() { # text, seconds (deadlines for emulated machines too)
	for _ in $(seq $((${2:-30} * 10))); do
		screen | grep -q -- "$1" && return 0
		sleep 0.1
	done
	echo "# screen while waiting for '$1':" && screen | sed 's/^/# /'
	return 1
}
open_ui() {
	tm new-session -d -s ui -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'" \; \
		set-option -wg remain-on-exit on
}
trap '"$TV" stop demo --force >/dev/null 2>&1; tm kill-server 2>/dev/null; t_cleanup' EXIT

open_ui
t_check "first run boots the demo VM and shows its console" wait_for "termvisor demo OS" 60
t_check "its definition exists" [ -f "$TERMVISOR_HOME/vms/demo.conf" ]
t_check "the shell prompt appears" wait_for 'demo\$' 60
tm send-keys -t ui "info" Enter
t_check "typed commands reach the guest" wait_for "vCPUs: *2" 60
tm send-keys -t ui C-]
t_check "Ctrl-] returns to the list, where the VM runs" wait_for "demo .* running .* 2 *64M"
t_check "with the welcome line" wait_for "Welcome"
tm send-keys -t ui q
sleep 0.5
tm kill-server
t_check "the VM keeps running after the interface quits" grep -q "^demo .* running" <<<"$("$TV" list)"

open_ui
wait_for "demo .* running" >/dev/null
tm send-keys -t ui Enter
t_check "a new interface shows the console as it was" wait_for "vCPUs: *2" 60
tm send-keys -t ui C-]
wait_for "demo .* running" >/dev/null
tm send-keys -t ui F
t_check "force off asks first" wait_for "Force the VM off"
tm send-keys -t ui y
t_check "then the VM is stopped" wait_for "demo .* stopped" 60
t_done
