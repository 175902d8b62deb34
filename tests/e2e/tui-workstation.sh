#!/usr/bin/env bash
# The workstation through a real terminal (tmux), at 80x24 (stacked) and at
# 200x50 (side by side), with the demo guest on /dev/kvm: first run shows the
# demo VM; a second VM made with the form from the demo template; both
# started, the screen answering keys while one starts; each pane shows its
# guest's banner; typing into a focused console; tabs by number, last and
# next; the mouse; zoom and back; quitting while both run and reopening to the same
# consoles; resizing while a guest floods its console; NO_COLOR.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
[ -f "$top_builddir/share/demo/demo.elf" ] || t_skip_all "the demo guest was not built"
t_home
t_tmux_init
base=$TERMVISOR_HOME
stop_all() { for vm in demo web; do "$TV" stop "$vm" --force >/dev/null 2>&1; done; }
trap 'stop_all; tm kill-server 2>/dev/null; TERMVISOR_HOME=$base; t_cleanup' EXIT

w() { t_wait_for ui "$1" "${2:-60}"; } # text, seconds (deadlines for emulated machines)
gone() { ! t_screen ui | grep -q -- "$1"; }
open_ui() { # ROWS COLS [ENV...]
	local rows=$1 cols=$2
	shift 2
	tm kill-session -t ui 2>/dev/null
	tm new-session -d -s ui -x "$cols" -y "$rows" \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$T_ASAN_OPTS' $* '$TV'" \; \
		set-option -wg remain-on-exit on
}
# A click of the left button (X10 mouse reports: ESC [ M, then button, column
# and row, each plus 32) on the first place the screen shows TEXT.
click_on() {
	local at col row
	at=$(t_screen ui | awk -v s="$1" '{ i = index($0, s); if (i) { print i, NR; exit } }')
	[ -n "$at" ] || return 1
	col=${at% *} row=${at#* }
	t_mouse ui 0 "$col" "$row"
	t_mouse ui 3 "$col" "$row"
}
count_now() { t_screen ui | grep -o 'count: [0-9]*' | tail -n1 | cut -d' ' -f2; }
# The escape sequences of a colour (SGR 30-38, 40-48, 90-97, 100-107).
colour_escapes() { t_screen ui -e | grep -cE $'\e\\[([0-9;]*;)?(3[0-8]|4[0-8]|9[0-7]|10[0-7])[;m]'; }

scenario() { # ROWS COLS, then the size it is resized to
	local rows=$1 cols=$2 rrows=$3 rcols=$4 at="${2}x${1}:"
	TERMVISOR_HOME=$base/$cols-$rows
	mkdir -p "$TERMVISOR_HOME"
	open_ui "$rows" "$cols"
	t_check "$at first run shows the demo VM's prompt" w 'demo\$'
	tm send-keys -t ui C-g
	t_check "$at the demo VM is listed as running" w "demo .* running"

	tm send-keys -t ui n
	w "New VM" >/dev/null
	tm send-keys -t ui web Tab
	for _ in 1 2 3 4 5 6; do
		t_screen ui | grep -q "Template *demo " && break
		tm send-keys -t ui Right
		sleep 0.3
	done
	t_check "$at the form offers the demo template" w "Template *demo " 5
	t_check "$at which fills in its memory" w "Memory *64M" 5
	tm send-keys -t ui Enter Enter Enter Enter Enter Enter
	t_check "$at the new VM is listed, stopped" w "web .* stopped .* 2 *64M"

	tm send-keys -t ui s
	tm send-keys -t ui '?'
	t_check "$at the screen answers while web starts" w "Keys (rebind them" 10
	tm send-keys -t ui Escape
	t_check "$at web runs" w "web .* running"
	t_check "$at its pane shows its banner" w "web  console"
	t_check "$at  (the banner)" w "termvisor demo OS"
	tm send-keys -t ui Up
	t_check "$at the demo VM's pane shows its own" w "demo  console"
	t_check "$at  (its prompt)" w 'demo\$'

	tm send-keys -t ui Down Enter
	t_check "$at Enter focuses the console" w "keys go to the guest"
	t_type ui "note set x"
	t_check "$at typing reaches the guest" w "note saved (1 bytes)"
	tm send-keys -t ui C-g
	t_check "$at C-g gives the keyboard back" w "s start"

	t_check "$at both consoles are tabs" w "1:demo .*2:web"
	tm send-keys -t ui 1
	t_check "$at tab 1 is demo's console" w "demo  console"
	t_check "$at  (not web's)" gone "note saved"
	tm send-keys -t ui 2
	t_check "$at tab 2 is web's" w "note saved (1 bytes)"
	tm send-keys -t ui l
	t_check "$at the last tab is demo's again" w "demo  console"
	tm send-keys -t ui Tab
	t_check "$at the next tab is web's" w "note saved (1 bytes)"
	# The mouse: a click in the pane focuses it, a click on a tab shows it
	# (at 80 columns: X10 reports carry a column up to 95 in one ASCII byte).
	if [ "$cols" -le 95 ]; then
		click_on "note saved"
		t_check "$at a click in the pane focuses the console" w "keys go to the guest"
		tm send-keys -t ui C-g
		w "s start" >/dev/null
		click_on "1:demo"
		t_check "$at a click on tab 1 shows demo's console" w "demo  console"
		tm send-keys -t ui 2
		w "note saved (1 bytes)" >/dev/null
	fi

	tm send-keys -t ui z
	sleep 0.5
	t_check "$at zoom shows the console alone" gone "NAME  "
	t_check "$at  (the console)" w "note saved (1 bytes)"
	tm send-keys -t ui M-z
	t_check "$at and back" w "NAME  "
	tm send-keys -t ui C-g

	tm send-keys -t ui q
	sleep 1
	t_check "$at both VMs keep running after quitting" \
		bash -c "'$TV' list | grep -q '^demo .* running' && '$TV' list | grep -q '^web .* running'"
	open_ui "$rows" "$cols"
	t_check "$at reopened, the same consoles are tabs" w "1:demo .*2:web"
	# Idle, nothing is drawn and nothing polled: CPU ticks (1/100 s) in 5 s.
	sleep 2
	local pane pid t0 t1
	pane=$(tm list-panes -t ui -F '#{pane_pid}')
	pid=$(pgrep -P "$pane" -f "$TV" || echo "$pane") # the shell may run it as a child
	t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	sleep 5
	t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	t_check "$at idle beside two running VMs the interface takes $((t1 - t0)) ticks in 5 s" \
		[ "$(cat "/proc/$pid/comm")" = termvisor ] && [ $((t1 - t0)) -le 5 ]
	tm send-keys -t ui 2
	t_check "$at with their screens" w "note saved (1 bytes)"

	tm send-keys -t ui Enter
	t_type ui count
	w "count: [1-9]" >/dev/null
	tm resize-window -t ui -x "$rcols" -y "$rrows"
	sleep 1
	local c1 c2
	c1=$(count_now)
	sleep 1
	c2=$(count_now)
	t_check "$at resized while web floods its console, it goes on ($c1, $c2)" \
		[ -n "$c1" ] && [ -n "$c2" ] && [ "$c2" -gt "$c1" ]
	if [ "$rcols" -ge 120 ]; then
		t_check "$at the list and the pane are side by side" w "NAME .*web  "
	else
		t_check "$at the list and the pane are stacked" gone "NAME .*web  "
	fi
	tm send-keys -t ui Space
	t_check "$at keys still reach the guest" w "stopped at"
	tm resize-window -t ui -x "$cols" -y "$rows"
	t_check "$at and back to its size" w "stopped at"
	tm send-keys -t ui C-g
	t_check "$at colours are drawn by default" [ "$(colour_escapes)" -gt 0 ]

	open_ui "$rows" "$cols" NO_COLOR=1
	w "web .* running" >/dev/null
	tm send-keys -t ui 2
	w "stopped at" >/dev/null
	t_check "$at NO_COLOR=1 draws no colour" [ "$(colour_escapes)" -eq 0 ]
	t_check "$at  (while the state still reads)" w "web .* running"
	tm kill-session -t ui
	stop_all
}

scenario 24 80 50 200
scenario 50 200 24 80
t_done
