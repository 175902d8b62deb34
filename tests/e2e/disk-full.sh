#!/usr/bin/env bash
# A full host file system pauses the VM instead of failing the guest's
# writes: the demo guest's disk image lives on a small tmpfs and the guest
# writes until it fills. The VM shows paused with why (status, status
# --json, list, its log) and the guest sees no error; once space is freed,
# resume lets the held write finish, everything the guest wrote reads back
# and the image passes qemu-img check. Both disk paths (io_uring, I/O
# threads). Runs the demo guest on /dev/kvm; mounting needs root.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
[ "$(id -u)" = 0 ] || t_skip_all "mounting a small file system needs root"
TMUX_BIN=${TMUX_BIN:-$(command -v tmux)}
[ -x "$TMUX_BIN" ] || t_skip_all "tmux is not installed"
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
QEMU_IMG=${QEMU_IMG:-qemu-img}
t_home
small=$TERMVISOR_HOME/small
mkdir -p "$small"
mount -t tmpfs -o size=12M tv-disk-full "$small" 2>/dev/null || t_skip_all "cannot mount a tmpfs here"
sock=$TERMVISOR_HOME/tmux.sock
tm() { "$TMUX_BIN" -S "$sock" -f /dev/null "$@"; }
screen() { tm capture-pane -t "$1" -p; }
# Emulated machines are slow: up to 60 s for a command to succeed.
within_60s() {
	for _ in $(seq 600); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
on_screen() { screen "$1" | grep -q -- "$2"; }
in_status() { "$TV" status "$1" 2>/dev/null | grep -q -- "$2"; }
wait_for() { # session, text
	within_60s on_screen "$1" "$2" && return 0
	echo "# $1 while waiting for '$2':" && screen "$1" | sed 's/^/# /'
	return 1
}
wait_state() { # name, text in `status`
	within_60s in_status "$1" "$2" && return 0
	"$TV" status "$1" 2>&1 | sed 's/^/# /'
	return 1
}
asan_opts=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
cleanup() {
	for vm in fulluring fullthreads; do "$TV" stop "$vm" --force >/dev/null 2>&1; done
	tm kill-server 2>/dev/null
	umount "$small" 2>/dev/null
	t_cleanup
}
trap cleanup EXIT
why="disk.qcow2: no space left on device"

for aio in io_uring threads; do
	vm=full${aio/io_/}
	rm -f "$small"/*
	"$QEMU_IMG" create -q -f qcow2 "$small/disk.qcow2" 32M
	mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data/$vm"
	cat >"$TERMVISOR_HOME/vms/$vm.conf" <<EOF
cpus = 1;
memory = "64M";
kernel = "$demo";
cmdline = "console=ttyS0";
disks = ( { file = "$small/disk.qcow2"; format = "qcow2"; aio = "$aio"; } );
EOF
	# About 8 MiB left: the guest's 10 MiB do not fit.
	dd if=/dev/zero of="$small/filler" bs=1M count=4 status=none
	tm new-session -d -s "$vm" -x 100 -y 30 \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' '$TV' start $vm --attach" \; \
		set-option -wg remain-on-exit on
	wait_for "$vm" 'demo\$' >/dev/null || { t_fail "$aio: the demo guest reaches its prompt"; continue; }
	tm send-keys -t "$vm" "fill 10" Enter

	t_check "$aio: the VM pauses when the disk fills, saying why" wait_state "$vm" "^state: *paused: $why"
	t_check "$aio: status --json gives the reason" \
		grep -q "\"state\": \"paused\", \"reason\": \"$why\"" <<<"$("$TV" status "$vm" --json)"
	t_check "$aio: list shows it paused with the reason" \
		grep -q "^    | paused: $why" <<<"$("$TV" list)"
	t_check "$aio: list --json too" grep -q "\"reason\": \"$why\"" <<<"$("$TV" list --json)"
	t_check "$aio: the log says so" grep -q "paused: $why" "$TERMVISOR_HOME/data/$vm/vm.log"
	sleep 1
	t_check "$aio: the guest has not seen a failed write" \
		bash -c "! { '$TMUX_BIN' -S '$sock' capture-pane -t '$vm' -p | grep -q 'fill: write failed'; }"
	t_check "$aio: a snapshot is refused while the disk holds requests" \
		bash -c "'$TV' snapshot take $vm 2>&1 | grep -q 'free space on the host and resume'"

	rm -f "$small/filler"
	t_check "$aio: resume" "$TV" resume "$vm"
	t_check "$aio: the held write completes" wait_for "$vm" "fill: wrote 10 MiB"
	t_check "$aio: the VM runs again" wait_state "$vm" "^state: *running$"
	tm send-keys -t "$vm" "fill check 10" Enter
	t_check "$aio: everything written, before and after the pause, reads back" \
		wait_for "$vm" "fill: 10 MiB read back intact"
	"$TV" stop "$vm" --timeout 10 >/dev/null
	t_check "$aio: the VM stops" t_wait_stopped "$vm"
	t_check "$aio: the image passes qemu-img check" "$QEMU_IMG" check -q "$small/disk.qcow2"
	tm kill-session -t "$vm" 2>/dev/null
done

# Stopping a VM that a full disk holds paused forces it off at once.
vm=fullthreads
dd if=/dev/zero of="$small/filler" bs=1M count=12 status=none 2>/dev/null
tm new-session -d -s last -x 100 -y 30 \
	"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' '$TV' start $vm --attach" \; \
	set-option -wg remain-on-exit on
wait_for last 'demo\$' >/dev/null
tm send-keys -t last "fill 20" Enter
t_check "a second fill pauses again" wait_state "$vm" "^state: *paused: $why"
t_check "stop forces a held VM off" "$TV" stop "$vm"
t_check "it stops" t_wait_stopped "$vm"
rm -f "$small/filler"
t_check "and its image still passes qemu-img check" "$QEMU_IMG" check -q "$small/disk.qcow2"
t_done
