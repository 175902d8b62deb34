#!/usr/bin/env bash
# A Linux guest as users run it: the VM made by `termvisor create --template
# debian-minimal` boots on this engine to its login prompt in the interface's
# console, takes a root login and a command, and is forced off from the list.
. "$(dirname "$0")/../lib.sh"
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
t_need_kvm
t_home
command -v mkfs.ext4 >/dev/null || t_skip_all "mkfs.ext4 is missing (e2fsprogs)"
[ -x /bin/busybox ] || t_skip_all "busybox-static is missing"
# The kernel package tests/kvm-in-qemu.sh (or debian-cloud.sh) fetched.
mkdir -p "$TERMVISOR_HOME/cache/debian-packages"
cp "$(t_linux_cache)"/linux-image-*-cloud-amd64_*.deb \
	"$TERMVISOR_HOME/cache/debian-packages/" 2>/dev/null ||
	t_skip_all "no cached linux-image-*-cloud-amd64 package (tests/linux/fetch-kernel.sh fetches it)"
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
screen() { tm capture-pane -t ui -p; }
wait_for() { # text, seconds
	for _ in $(seq $((${2:-5} * 10))); do
		screen | grep -q -- "$1" && return 0
		sleep 0.1
	done
	echo "# screen while waiting for '$1':" && screen | sed 's/^/# /'
	return 1
}
trap '"$TV" stop deb --force >/dev/null 2>&1; tm kill-server 2>/dev/null; t_cleanup' EXIT

out=$(t_debian_minimal deb)
t_check "the VM is created from the template" [ $? -eq 0 ]
echo "$out" | tail -n 3 | sed 's/^/# /'

tm new-session -d -s ui -x 100 -y 30 "env TERMVISOR_HOME='$TERMVISOR_HOME' '$TV'; echo \"[exit \$?]\"" \; \
	set-option -wg remain-on-exit on
t_check "the interface lists the VM" wait_for "deb .* stopped" 10
start=$(date +%s%N)
tm send-keys -t ui Enter
# The template boots quietly: the first thing on the console is the login.
t_check "Enter starts it and its console shows the login prompt" wait_for "login:" 180
echo "# login prompt $((($(date +%s%N) - start) / 1000000)) ms after Enter"
tm send-keys -t ui root Enter
t_check "root logs in (no password yet)" wait_for "root@.*:~#" 30
tm send-keys -t ui "cat /proc/cpuinfo | grep -c ^processor; mount | grep ' / '" Enter
t_check "a command answers: / is the ext4 disk on virtio-blk" wait_for "/dev/vda on / type ext4" 30
tm send-keys -t ui C-g
# The footer names the list's keys again once the console lets go.
t_check "C-g gives the keyboard back to the list" wait_for " s start " 10
t_check "where the VM runs" wait_for "deb .* running" 10
tm send-keys -t ui F
t_check "force off asks first" wait_for "Force the VM .deb. off" 10
tm send-keys -t ui y
t_check "then the VM is stopped" wait_for "deb .* stopped" 20
t_done
