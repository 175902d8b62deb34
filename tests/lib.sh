# Shared helpers for the script tests. Each test prints TAP-like lines
# ("ok N - what" / "not ok N - what") and exits 0 (pass), 1 (fail) or 77 (skip).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
TV=${TV:-$top_builddir/termvisor}
T_N=0
T_FAILED=0

t_ok() { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
t_fail() { T_N=$((T_N + 1)); echo "not ok $T_N - $*"; T_FAILED=1; }
t_check() { # description, command...
	local what=$1
	shift
	if "$@"; then t_ok "$what"; else t_fail "$what"; fi
}
t_skip_all() { echo "1..0 # SKIP $*"; exit 77; }
# Where the Linux tests keep Debian's kernel packages: TV_LINUX_CACHE (set by
# tests/kvm-in-qemu.sh to its own cache), else the build tree's.
t_linux_cache() { echo "${TV_LINUX_CACHE:-$top_builddir/tests/linux/cache}"; }
t_done() { echo "1..$T_N"; exit $T_FAILED; }
# Runs a command in the background with its output in file out until
# pattern has appeared n times there (at most max_s seconds), then sends it
# SIGTERM; sets T_COUNT to the pattern's count and T_RC to the command's status.
t_run_until() { # out, pattern, n, max_s, command...
	local out=$1 pat=$2 n=$3 max=$4 pid i
	shift 4
	"$@" </dev/null >"$out" 2>&1 &
	pid=$!
	for i in $(seq $((max * 10))); do
		[ "$(grep -c -- "$pat" "$out")" -ge "$n" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	T_RC=$?
	T_COUNT=$(grep -c -- "$pat" "$out")
}
t_need_kvm() {
	[ -c /dev/kvm ] || t_skip_all "/dev/kvm is absent on this machine"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || t_skip_all "no permission on /dev/kvm (join the kvm group)"
}
# Makes the debian-minimal VM $1 in $TERMVISOR_HOME, as `termvisor create
# --template debian-minimal` does, and prints what that said. Where
# tests/kvm-in-qemu.sh made that VM with this build's termvisor on its host
# before the emulated machine started (7 s there, 90 s in the machine), a
# copy of it is taken instead. Returns create's status.
t_debian_minimal() {
	local fx=$top_builddir/tests/linux/fixture
	if [ -f "$fx/vms/deb.conf" ] && [ "$fx/vms/deb.conf" -nt "$TV" ] && [ -d "$fx/data/deb" ]; then
		mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data" &&
			cp -a "$fx/data/deb" "$TERMVISOR_HOME/data/$1" &&
			sed "s/^name = \"deb\";\$/name = \"$1\";/" "$fx/vms/deb.conf" >"$TERMVISOR_HOME/vms/$1.conf" &&
			echo "created VM '$1' (a copy of the one made on the host by: termvisor create deb --template debian-minimal)"
		return
	fi
	"$TV" create "$1" --template debian-minimal 2>&1
}
# Where tests/kvm-in-qemu.sh traces its KVM's exits (the Linux tests'
# machine), the ring's last $1 lines: what a guest that just ended badly did
# last, since AMD's KVM keeps no registers of a triple fault.
t_kvm_trace() {
	local tr=/sys/kernel/tracing
	[ -r $tr/trace ] && [ "$(cat $tr/tracing_on 2>/dev/null)" = 1 ] || return 0
	echo 0 >$tr/tracing_on
	echo "# the host KVM's last events (tests/kvm-in-qemu.sh traces them):"
	tail -n "${1:-60}" $tr/trace | sed 's/^/#   /'
	echo >$tr/trace
	echo 1 >$tr/tracing_on
}
# A private termvisor home per test, removed at exit.
t_home() {
	TERMVISOR_HOME=$(mktemp -d "${TMPDIR:-/tmp}/tv-test.XXXXXX")
	export TERMVISOR_HOME
	trap 't_cleanup' EXIT
}
# A VM process its sandbox ended says so in its log: the line is kept in the
# test's output, whether or not the test noticed.
t_cleanup() {
	[ -n "${TERMVISOR_HOME:-}" ] || return 0
	cat "$TERMVISOR_HOME"/data/*/vm.log "$TERMVISOR_HOME"/data/*/vm.log.old 2>/dev/null |
		grep -a "sandbox: forbidden" | sed 's/^/# vm.log: /' || true
	rm -rf "$TERMVISOR_HOME"
}
# Waits up to 60 s for VM name to read as stopped (a guest that ends by itself).
t_wait_stopped() {
	for _ in $(seq 1 600); do
		"$TV" status "$1" 2>/dev/null | grep -q '^state: *stopped' && return 0
		sleep 0.1
	done
	return 1
}
# t_demo_vm NAME KERNEL: defines VM NAME in $TERMVISOR_HOME running KERNEL (the
# demo guest) with 1 vCPU, 64 MiB, its console on ttyS0 and a 16 MiB qcow2
# disk, disk.qcow2 in its data directory.
t_demo_vm() {
	mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data/$1"
	"${QEMU_IMG:-qemu-img}" create -q -f qcow2 "$TERMVISOR_HOME/data/$1/disk.qcow2" 16M || return 1
	cat >"$TERMVISOR_HOME/vms/$1.conf" <<EOF
cpus = 1;
memory = "64M";
kernel = "$2";
cmdline = "console=ttyS0";
disks = ( { file = "disk.qcow2"; format = "qcow2"; } );
EOF
}
# Terminals through tmux (after t_home): t_tmux_init skips the test without
# tmux; tm runs tmux on the test's own server; t_screen SESSION [ARGS] prints
# what a session shows (capture-pane ARGS: -e keeps the colours);
# t_wait_for SESSION TEXT [SECONDS] waits for TEXT (a grep pattern), 30 s
# unless told (deadlines for emulated machines; a pass takes what it
# takes), showing the screen when it does not come; t_type SESSION TEXT
# types a line. T_ASAN_OPTS: for programs that die with their terminal (in a
# sanitizer build LeakSanitizer's exit-time scan of such a process was seen
# to spin forever, reparented to init; leaks are the unit tests' business).
t_tmux_init() {
	TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
	[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
	T_TMUX_SOCK=$TERMVISOR_HOME/tmux.sock
	T_ASAN_OPTS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
}
tm() { timeout 20 "$TMUX_BIN" -S "$T_TMUX_SOCK" -f /dev/null "$@"; }
# True for termvisor built with AddressSanitizer (./configure
# --enable-sanitizers links libasan).
t_sanitized() { ldd "$TV" 2>/dev/null | grep -q 'libasan'; }
# (POSIX sh: the guest tests source this file with /bin/sh.)
t_screen() {
	local pane=$1
	shift
	tm capture-pane -t "$pane" -p "$@"
}
# A mouse report as a terminal sends it (X10: ESC [ M, then button, column
# and row, 1-based, each plus 32; one ASCII byte each, so columns up to 95)
# to tmux pane $1: button $2 (0 left press, 3 release, 64/65 wheel up/down).
t_mouse() {
	local b
	b=$(printf '\\%03o\\%03o\\%03o' $((32 + $2)) $((32 + $3)) $((32 + $4)))
	tm send-keys -t "$1" -l "$(printf "\033[M$b")"
}
t_wait_for() {
	local i=0 n=$((${3:-30} * 10))
	while [ $i -lt $n ]; do
		t_screen "$1" | grep -q -- "$2" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# $1 while waiting for '$2':" && t_screen "$1" | sed 's/^/# /'
	return 1
}
t_type() { tm send-keys -t "$1" "$2" Enter; }
