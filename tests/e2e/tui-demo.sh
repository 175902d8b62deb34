#!/usr/bin/env bash
# The first-run experience through a real terminal: with no VM defined the
# interface makes the demo VM, boots it and shows its console, focused; the
# VM keeps running when the interface quits, and a new interface shows its
# screen in the pane at once; copy mode searches, copies (OSC 52) and pastes;
# with its console closed, the pane shows the VM's details with its lease.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
[ -f "$top_builddir/share/demo/demo.elf" ] || t_skip_all "the demo guest was not built"
t_home
t_tmux_init
wait_for() { t_wait_for ui "$1" "${2:-30}"; } # text, seconds (deadlines for emulated machines)
open_ui() {
	tm new-session -d -s ui -x 100 -y 30 \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$T_ASAN_OPTS' '$TV'" \; \
		set-option -wg remain-on-exit on
}
trap '"$TV" stop demo --force >/dev/null 2>&1; tm kill-server 2>/dev/null; t_cleanup' EXIT

open_ui
t_check "first run greets the user" wait_for "Welcome: the demo VM was made and started"
t_check "it boots the demo VM and shows its console" wait_for "termvisor demo OS" 60
t_check "its definition exists" [ -f "$TERMVISOR_HOME/vms/demo.conf" ]
t_check "the shell prompt appears" wait_for 'demo\$' 60
tm send-keys -t ui "info" Enter
t_check "typed commands reach the guest (the console has the keyboard)" wait_for "vCPUs: *2" 60
tm send-keys -t ui C-g
t_check "C-g gives the keyboard back to the list, where the VM runs" \
	wait_for "demo .* running .* 2 *64M"
t_check "the console stays in the pane beside it" wait_for "vCPUs: *2"
tm send-keys -t ui q
sleep 0.5
tm kill-server
t_check "the VM keeps running after the interface quits" grep -q "^demo .* running" <<<"$("$TV" list)"

open_ui
t_check "a new interface shows the console as it was, in the pane" wait_for "vCPUs: *2" 60
tm send-keys -t ui Enter "help" Enter
t_check "Enter focuses it" wait_for "keep a line of text on the virtio disk" 60

# Copy mode in the focused console: a search back for what the guest printed,
# a selection copied to the user's clipboard by OSC 52 (tmux, with
# set-clipboard on, keeps it as a buffer), then typed into the guest.
buffer_is() { # text: tmux's newest buffer within 10 s
	for _ in $(seq 100); do
		[ "$(tm show-buffer 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	echo "# tmux's buffer: '$(tm show-buffer 2>&1)'"
	return 1
}
tm set-option -s set-clipboard on
tm send-keys -t ui M-c
t_check "M-c enters copy mode (the pane's title says so)" wait_for "demo  \[copy mode\]"
t_check "the footer shows copy mode's keys" wait_for "/ search-forward"
tm send-keys -t ui /
tm send-keys -t ui -l "zqzqx"
tm send-keys -t ui Enter
t_check "a search for what is not there says so" wait_for "\[copy mode\] not found"
tm send-keys -t ui "?"
tm send-keys -t ui -l "vCPUs:"
tm send-keys -t ui Enter Space l l l l l Enter
t_check "? finds what the guest printed, Space and l select it, Enter copies it (OSC 52)" \
	buffer_is "vCPUs:"
t_check "copying leaves copy mode" wait_for "console: keys go to the guest"
tm send-keys -t ui M-v
t_check "M-v types the copied text into the guest" wait_for 'demo\$ vCPUs:'
# The details of a running VM show the address its guest leased on the user
# network: the demo guest takes a lease, its console tab is closed, and the
# pane shows the details with the lease on the NIC's line.
tm send-keys -t ui C-u
tm send-keys -t ui -l "net dhcp"
tm send-keys -t ui Enter
t_check "the demo guest takes a lease from the user network" wait_for "net: lease 10.0.2.15" 60
tm send-keys -t ui C-g w
t_check "with its console closed, the pane shows the running VM's details" \
	wait_for "network *user 52:54:00:[0-9a-f:]*"
t_check "where its NIC shows the leased address" \
	wait_for "network *user 52:54:00:[0-9a-f:]* 10\.0\.2\.15"
tm send-keys -t ui Enter
t_check "Enter opens the console again" wait_for "console: keys go to the guest"
tm send-keys -t ui C-g F
t_check "force off asks first" wait_for "Force the VM 'demo' off"
tm send-keys -t ui y
t_check "then the VM is stopped" wait_for "demo .* stopped" 60
t_check "and its pane says it ended" wait_for "demo  VM ended"
t_done
