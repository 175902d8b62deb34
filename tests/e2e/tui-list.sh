#!/usr/bin/env bash
# The interface through a real terminal (tmux): the VM list, creating a VM with
# the form, refusing a bad value in place, and deleting with confirmation.
. "$(dirname "$0")/../lib.sh"
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
t_home
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" "$@"; }
screen() { tm capture-pane -t ui -p; }
# Waits up to 5 s for text to appear on the screen.
wait_for() {
	for _ in $(seq 50); do
		screen | grep -q -- "$1" && return 0
		sleep 0.1
	done
	echo "# screen while waiting for '$1':" && screen | sed 's/^/# /'
	return 1
}
trap 'tm kill-server 2>/dev/null; t_cleanup' EXIT

mkdir -p "$TERMVISOR_HOME/vms"
printf 'cpus = 2;\nmemory = "1G";\ndescription = "first lab";\n' >"$TERMVISOR_HOME/vms/lab1.conf"
printf 'memory = "lots";\n' >"$TERMVISOR_HOME/vms/broken.conf"
tm new-session -d -s ui -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; sleep 5"

t_check "the list shows the VM with its vCPUs and memory" wait_for "lab1 .* stopped .* 2 *1G"
t_check "a broken definition is listed as broken" wait_for "broken *broken"
t_check "the selected broken VM shows its error" wait_for "broken.conf:1: memory: expected a size"
tm send-keys -t ui Down
t_check "moving down shows lab1's details" wait_for "first lab"

tm send-keys -t ui n
t_check "n opens the form" wait_for "New VM"
tm send-keys -t ui "web1" Tab Tab "lots" Tab
tm send-keys -t ui Enter Enter Enter
t_check "a bad memory value is refused in the form" wait_for "memory: expected a size like 512M"
# Back to the memory field; typing replaces the old value; Ctrl-U empties the
# disk field (no disk); Enter on the last field creates.
tm send-keys -t ui Up Up Up "768M" Tab C-u Tab Tab Enter
t_check "the new VM appears in the list" wait_for "web1 .* stopped .* 1 *768M"
t_check "its definition was written" grep -q 'memory = "768M";' "$TERMVISOR_HOME/vms/web1.conf"

tm send-keys -t ui d
t_check "delete asks first" wait_for "Delete VM 'web1'"
tm send-keys -t ui n
sleep 0.3
t_check "answering no keeps it" [ -f "$TERMVISOR_HOME/vms/web1.conf" ]
tm send-keys -t ui d
wait_for "Delete VM 'web1'" >/dev/null
tm send-keys -t ui y
t_check "answering yes deletes it" wait_for "deleted VM 'web1'"
t_check "its files are gone" [ ! -e "$TERMVISOR_HOME/vms/web1.conf" ] && [ ! -e "$TERMVISOR_HOME/data/web1" ]
tm send-keys -t ui q
sleep 0.3
t_check "q quits" bash -c "! '$TMUX_BIN' -S '$sock' capture-pane -t ui -p | grep -q 'n new'"
t_done
