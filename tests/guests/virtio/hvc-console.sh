#!/usr/bin/env bash
# hvc0 in a detached VM: `termvisor start` runs the virtio test guest in its
# background process and `termvisor console` (in a tmux terminal) types at
# it through the control socket. The first line must reach the UART (hvc0
# not used yet), the second, typed after the guest wrote to hvc0, must reach
# hvc0; the guest echoes both and checks nothing typed for hvc0 reached the
# UART. (The guest ends its lines with a bare LF: the screen is read with
# wrapped lines joined.)
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
t_home
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
wait_for() { # text: up to 120 s on the console's screen (emulated machines)
	for _ in $(seq 1200); do
		tm capture-pane -t con -p -J | grep -q -- "$1" && return 0
		sleep 0.1
	done
	echo "# while waiting for '$1':" && tm capture-pane -t con -p -J | sed 's/^/# /'
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

mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data/hvc"
cat >"$TERMVISOR_HOME/vms/hvc.conf" <<EOF
cpus = 1;
memory = "64M";
kernel = "$G";
cmdline = "noblk hvcecho";
EOF
# The pane stays when the client ends (remain-on-exit), and with it the
# server: a slow run once found no server left to ask for the screen.
tm new-session -d -s con -x 200 -y 40 \
	"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' '$TV' start hvc --attach; echo \"[exit \$?]\"" \; \
	set-option -wg remain-on-exit on
t_check "the guest asks for a line on ttyS0" wait_for "type a line for ttyS0"
tm send-keys -t con "typed at ttyS0" Enter
t_check "typing before hvc0 is used reaches the UART" wait_for "ttyS0 got 'typed at ttyS0'"
t_check "the guest writes to hvc0" wait_for "hvc0: ready for input"
tm send-keys -t con "typed at hvc0" Enter
t_check "typing once the guest uses hvc0 reaches hvc0" wait_for "hvc0: got 'typed at hvc0'"
t_check "every guest check passed (nothing for hvc0 reached the UART)" wait_for "virtio: ok"
t_done
