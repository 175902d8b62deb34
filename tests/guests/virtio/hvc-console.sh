#!/usr/bin/env bash
# A VM's two consoles, ttyS0 and hvc0, each on a terminal of its own: in the
# background, `termvisor start --attach` shows the kernel's console (ttyS0
# here) and `termvisor console NAME hvc0` shows hvc0; in the foreground,
# Ctrl-a c switches the terminal of `termvisor run` between them. The virtio
# test guest reads a line from the UART, then opens hvc0, writes to it and
# reads a line from it; it echoes both and checks nothing typed for hvc0
# reached the UART. hvc0's echo says the size of hvc0's terminal
# (VIRTIO_CONSOLE_F_SIZE): that of the window showing it, followed when the
# window is resized. (The guest ends its lines with a bare LF: the screen is
# read with wrapped lines joined.)
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
t_home
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
wait_for() { # session text: up to 120 s on that terminal's screen (emulated machines)
	for _ in $(seq 1200); do
		tm capture-pane -t "$1" -p -J | grep -q -- "$2" && return 0
		sleep 0.1
	done
	echo "# $1, while waiting for '$2':" && tm capture-pane -t "$1" -p -J | sed 's/^/# /'
	return 1
}
cleanup() {
	"$TV" stop hvc --force >/dev/null 2>&1
	tm kill-server 2>/dev/null
	t_cleanup
}
trap cleanup EXIT
# The console client dies with its terminal: no LeakSanitizer scan there.
asan_opts=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
envs="env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts'"

mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data/hvc"
cat >"$TERMVISOR_HOME/vms/hvc.conf" <<EOF
cpus = 1;
memory = "64M";
kernel = "$G";
cmdline = "noblk hvcecho";
debug_exit = true;
EOF

# In the background: one terminal on ttyS0 (the kernel's console here), one
# on hvc0.
# Panes stay when their command ends (remain-on-exit), and with them the
# server: a slow run once found no server left to ask for the screen.
tm new-session -d -s con -x 200 -y 40 "$envs '$TV' start hvc --attach; echo \"[exit \$?]\"" \; \
	set-option -wg remain-on-exit on
t_check "the guest asks for a line on ttyS0" wait_for con "type a line for ttyS0"
tm send-keys -t con "typed at ttyS0" Enter
t_check "typing at the ttyS0 terminal reaches the UART" wait_for con "ttyS0 got 'typed at ttyS0'"
tm new-session -d -s hvc -x 200 -y 40 "$envs '$TV' console hvc hvc0; echo \"[exit \$?]\""
t_check "the hvc0 terminal shows the guest's hvc0 output" wait_for hvc "hvc0: ready for input"
tm resize-window -t hvc -x 150 -y 30
sleep 1
tm send-keys -t hvc "typed at hvc0" Enter
t_check "typing at the hvc0 terminal reaches hvc0" wait_for hvc "hvc0: got 'typed at hvc0'"
t_check "the guest reads hvc0's size as its resized window's (30x150)" \
	wait_for hvc "hvc0: got 'typed at hvc0' size 30x150"
t_check "every guest check passed (nothing for hvc0 reached the UART)" wait_for con "virtio: ok"
t_check "nothing of hvc0 showed on the ttyS0 terminal" \
	sh -c "! '$TMUX_BIN' -S '$sock' capture-pane -t con -p -J | grep -q 'hvc0:'"
tm kill-session -t con
tm kill-session -t hvc
"$TV" stop hvc --force >/dev/null 2>&1

# In the foreground: Ctrl-a c switches the terminal between the consoles,
# redrawn as it is (hvc0's prompt was written while ttyS0 was shown), and keys
# go to the one shown.
tm new-session -d -s run -x 200 -y 40 "$envs '$TV' run hvc; echo run status \$?" \; \
	set-option -wg remain-on-exit on
t_check "run: the guest asks for a line on ttyS0" wait_for run "type a line for ttyS0"
tm send-keys -t run "typed at ttyS0" Enter
t_check "run: typing reaches the UART" wait_for run "ttyS0 got 'typed at ttyS0'"
tm send-keys -t run C-a c
t_check "run: Ctrl-a c shows hvc0, with what the guest wrote there" \
	wait_for run "hvc0: ready for input"
tm resize-window -t run -x 160 -y 35
sleep 1
tm send-keys -t run "typed at hvc0" Enter
t_check "run: keys go to the console shown" wait_for run "hvc0: got 'typed at hvc0'"
t_check "run: hvc0's size follows the resized terminal (35x160)" \
	wait_for run "hvc0: got 'typed at hvc0' size 35x160"
t_check "run: the guest passed its checks and powered off (status 0)" wait_for run "run status 0"
t_done
