#!/usr/bin/env bash
# The console pane against tmux, side by side in one run.
# usage: bench/console.sh [BUILDDIR] [MB] [RUNS] [PARTS]
# PARTS: "pane" (the default; no KVM needed), "ui", or both.
# pane: the console pane alone (bench/vtdrive):
#  (a) MB megabytes of console output (bench/console-data.py) drawn at 80x24:
#      CPU of bench/vtdrive (termvisor's pane: libvterm, scrollback, ncurses)
#      running in a tmux pane, against the CPU of a tmux server showing `cat`
#      of the same bytes in a pane of the same size to an attached client;
#      the median of RUNS runs each, alternating.
#  (b) key-to-screen latency while a child floods the pane: from the key's
#      read in the pane's loop to the draw showing the guest's echo, which
#      waits behind the flood its pipe holds (64 KiB, then 16 KiB).
#  (c) CPU of the pane program over 10 s with nothing to do.
# ui: the whole interface (`termvisor` at 80x24 on a pty) with four running
#  demo VMs, needs /dev/kvm, or with CONSOLE_UI_STANDIN=1 four stand-in VM
#  processes (bench/standin) (bench/console-ui.py, where the figures are
#  described): (c) its CPU over 60 s idle; (a) MB megabytes of a guest's
#  `stress console` shown by it and by a tmux server at the same time, the
#  CPU of each and of the VM process; (b) key to screen while the guest
#  floods, 300 keys, from the write to its terminal to the echo there, then
#  the same keys through the peer (tmux showing `termvisor console`).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
mb=${2:-10}
runs=${3:-3}
parts=${4:-pane}
drive=$build/bench/vtdrive
if [[ $parts == *ui* ]]; then
	[ -e /dev/kvm ] || [ "${CONSOLE_UI_STANDIN:-}" = 1 ] ||
		{ echo "the ui part needs /dev/kvm (tests/kvm-in-qemu.sh runs it without; CONSOLE_UI_STANDIN=1: stand-in VM processes)" >&2; exit 1; }
	echo "termvisor interface vs tmux $(tmux -V | cut -d' ' -f2), $(date -u '+%Y-%m-%d %H:%M'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
		"clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
	python3 "$top/bench/console-ui.py" "$build" "$mb" "${CONSOLE_UI_KEYS:-300}" "${CONSOLE_UI_IDLE:-60}" 4 "${CONSOLE_UI_CAP:-600}"
	echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	[[ $parts == *pane* ]] || exit 0
fi
[ -x "$drive" ] || { echo "build first: make -C $build bench/vtdrive" >&2; exit 1; }
command -v tmux >/dev/null && command -v script >/dev/null || { echo "needs tmux and script" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tv-console.XXXXXX")
A="tmux -L tvbench-a-$$ -f $tmp/tmux.conf"
B="tmux -L tvbench-b-$$ -f $tmp/tmux.conf"
trap '$A kill-server 2>/dev/null; $B kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
term=tmux-256color
infocmp "$term" >/dev/null 2>&1 || term=screen-256color
printf 'set -g default-terminal %s\nset -g status off\nset -g history-limit 5000\nset -g exit-empty off\n' "$term" >"$tmp/tmux.conf"
python3 "$top/bench/console-data.py" $((mb * 1000000)) "$tmp/data"

ticks() { # utime + stime of a process, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

pane_run() { # pane_run NAME COMMAND...: runs in an 80x24 tmux pane until it ends
	$A new-session -d -x 80 -y 24 -s "$1" "${*:2}; $A wait-for -S $1-done"
	$A wait-for "$1-done"
}

tmux_cat() { # prints the CPU seconds of a tmux server showing cat of the data
	local pid t0 t1
	$B new-session -d -x 80 -y 24 -s cat "$B wait-for go; cat $tmp/data; $B wait-for -S cat-done; sleep 600"
	script -qfc "stty rows 24 cols 80; $B attach -t cat" /dev/null >/dev/null 2>&1 &
	for _ in $(seq 50); do
		[ -n "$($B list-clients 2>/dev/null)" ] && break
		sleep 0.1
	done
	pid=$($B display -p '#{pid}')
	sleep 0.5
	t0=$(ticks "$pid")
	$B wait-for -S go
	$B wait-for cat-done
	sleep 0.5 # what is still in the pane's pty
	t1=$(ticks "$pid")
	$B kill-server
	wait
	awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", (b - a) / hz }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "termvisor console pane vs tmux $(tmux -V | cut -d' ' -f2), $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -m), TERM $term"
for i in $(seq "$runs"); do
	pane_run feed "$drive feed $tmp/data $tmp/feed.$i"
	awk '/^cpu/ { printf "%.2f\n", $2 + $3 }' "$tmp/feed.$i" >>"$tmp/tv"
	tmux_cat >>"$tmp/tmux"
done
echo "(a) ${mb} MB at 80x24, CPU seconds (median of $runs): pane $(median <"$tmp/tv") [$(paste -sd' ' "$tmp/tv")]," \
	"tmux server $(median <"$tmp/tmux") [$(paste -sd' ' "$tmp/tmux")]"

latency() { # latency LABEL [PIPE_BYTES]
	$A new-session -d -x 80 -y 24 -s lat "$drive latency $tmp/lat $2; $A wait-for -S lat-done"
	sleep 1
	for _ in $(seq 300); do
		$A send-keys -t lat k
		sleep 0.03
	done
	sleep 0.5
	$A send-keys -t lat q
	$A wait-for lat-done
	grep '^lat' "$tmp/lat" | awk '{ print $2 }' | sort -n >"$tmp/lats"
	awk -v l="$1" '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.5); if (i < 1) i = 1;
		printf "(b) key to screen while flooding, %s: %d keys, median %.2f ms, p99 %.2f ms, max %.2f ms\n",
			l, NR, v[int((NR + 1) / 2)], v[i], v[NR] }' "$tmp/lats"
}
latency "64 KiB pipe"
latency "16 KiB pipe" 16384

pane_run idle "$drive idle 10 $tmp/idle"
awk '/^cpu/ { printf "(c) idle 10 s: %.3f CPU seconds (%.3f%% of a CPU)\n", $2 + $3, ($2 + $3) * 10 }' "$tmp/idle"
