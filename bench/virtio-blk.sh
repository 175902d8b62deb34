#!/usr/bin/env bash
# virtio-blk throughput: the virtio test guest (tests/guests/virtio) writes a
# pattern over a whole qcow2 disk, flushes, and reads it back with checks,
# first under termvisor, then under QEMU (-M q35, virtio-blk-pci with
# disable-legacy=on) on an identical image: same guest, same requests, same
# vCPU count (1) and memory; termvisor runs twice, once per way of moving
# disk data (aio=threads and aio=io_uring). The guest times each pass with its TSC
# (calibrated against the ACPI PM timer) and prints them; the final flush is
# timed apart, since it measures the host disk more than the device model. Cases: 64 KiB
# requests 16 deep on a fresh image (allocating writes) and on a prefilled
# one (overwrites), and 4 KiB requests one at a time (latency). Each case runs
# REPS times alternating the engines; the medians go into bench/RESULTS.md
# (the "virtio-blk" section).
#   usage: bench/virtio-blk.sh [BUILD_DIR]   (env: BENCH_DIR, REPS, SIZE, TV)
# VBLK_NESTED=1 names the figures as taken inside tests/kvm-in-qemu.sh (KVM on
# an emulated CPU, images on that machine's tmpfs) and keeps them apart:
#   KVM_IN_QEMU_COMMAND='VBLK_NESTED=1 SIZE=64M ../bench/virtio-blk.sh .' tests/kvm-in-qemu.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
TV=${TV:-$build/termvisor}
G=$build/tests/guests/virtio/virtio-guest.elf
QI=${QEMU_IMG:-$(command -v qemu-img)}
QIO=${QEMU_IO:-$(command -v qemu-io)}
QEMU=${QEMU_SYSTEM:-$(command -v qemu-system-x86_64)}
REPS=${REPS:-5}
SIZE=${SIZE:-256M}
[ -x "$TV" ] || { echo "build termvisor first ($TV missing)" >&2; exit 1; }
[ -f "$G" ] || make -C "$build" tests/guests/virtio/virtio-guest.elf >/dev/null
tag=termvisor-virtio-blk
[ -z "${VBLK_NESTED:-}" ] || { tag=termvisor-virtio-blk-nested; BENCH_DIR=${BENCH_DIR:-/tmp}; }
D=$(mktemp -d "${BENCH_DIR:-/var/tmp}/tv-vbench.XXXXXX")
trap 'rm -rf "$D"' EXIT

image() { # path prefill(0/1)
	rm -f "$1"
	"$QI" create -q -f qcow2 "$1" "$SIZE"
	if [ "$2" = 1 ]; then "$QIO" -f qcow2 -c "write -P 0x11 0 $SIZE" "$1" >/dev/null; fi
	sync "$1" # no writeback of the preparation left for the guest's flush
}

run_tv() { # image append aio
	timeout 300 "$TV" run --debug-exit --kernel "$G" --memory 128M --cpus 1 \
		--disk "$1,format=qcow2,aio=$3" --append "$2" </dev/null 2>&1
}

run_qemu() { # image append
	timeout 300 "$QEMU" -enable-kvm -M q35 -smp 1 -m 128M -display none -serial stdio \
		-monitor none -no-reboot -nic none -kernel "$G" -append "$2" \
		-drive "file=$1,if=none,id=d0,format=qcow2" \
		-device virtio-blk-pci,drive=d0,disable-legacy=on \
		-device isa-debug-exit,iobase=0xf4,iosize=4 </dev/null 2>&1 || true
}

field() { sed -n "s/^bench: .* $1=\([0-9]*\).*/\1/p"; }

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

range() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%d-%d", lo, hi }'; }

mbps() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0) ? b / 1e3 / ms : 0 }'; }

rows=()
flushes=()
load1=$(cut -d' ' -f1 /proc/loadavg)
loads=()
ENGINES=(qemu threads io_uring)
declare -A W R F
run_one() { # engine image append -> sets out
	case $1 in
	qemu) out=$(run_qemu "$2" "$3") ;;
	*) out=$(run_tv "$2" "$3" "$1") ;;
	esac
	grep -q "^virtio: ok" <<<"$out" || { echo "$1 run failed:" >&2; echo "$out" >&2; exit 1; }
}
ratio() { awk -v q="$1" -v t="$2" 'BEGIN { printf "%.2f", (t > 0) ? q / t : 0 }'; }
run_case() { # label prefill append
	local label=$1 pre=$2 app=$3 out bytes=0 e
	for e in "${ENGINES[@]}"; do W[$e]=""; R[$e]=""; F[$e]=""; done
	for _ in $(seq "$REPS"); do
		for e in "${ENGINES[@]}"; do
			image "$D/img.qcow2" "$pre"
			loads+=("$(cut -d' ' -f1 /proc/loadavg)")
			run_one "$e" "$D/img.qcow2" "$app"
			W[$e]+="$(field write_ms <<<"$out") "
			F[$e]+="$(field flush_ms <<<"$out") "
			R[$e]+="$(field read_ms <<<"$out") "
			bytes=$(field bytes <<<"$out")
		done
	done
	local pass kind row m q
	for pass in write read; do
		kind=write
		[ $pass = read ] && kind="read + verify"
		row="| $label, $kind |"
		for e in "${ENGINES[@]}"; do
			if [ $pass = write ]; then set -- ${W[$e]}; else set -- ${R[$e]}; fi
			m=$(printf '%s\n' "$@" | median)
			[ "$e" = qemu ] && q=$m
			row+=" $m ms ($(mbps "$bytes" "$m") MB/s; $(printf '%s\n' "$@" | range)) |"
			[ "$e" != qemu ] && row+=" $(ratio "$q" "$m") |"
		done
		rows+=("$row")
		echo "$row"
	done
	row="| $label |"
	for e in "${ENGINES[@]}"; do
		set -- ${F[$e]}
		row+=" $(printf '%s\n' "$@" | median) ms |"
	done
	flushes+=("$row")
}

run_case "64 KiB x 16 deep, fresh image (allocating), $SIZE" 0 "nozero qd=16 bs=64"
run_case "64 KiB x 16 deep, prefilled image (overwrite), $SIZE" 1 "nozero qd=16 bs=64"
run_case "4 KiB x 1 deep, prefilled image, first 8 MiB" 1 "nozero quick qd=1 bs=4"

res=$top/bench/RESULTS.md
tmp=$(mktemp)
{
	echo "<!-- $tag begin -->"
	if [ -n "${VBLK_NESTED:-}" ]; then
		echo "## virtio-blk inside tests/kvm-in-qemu.sh (KVM on an emulated CPU)"
		echo
		echo "Measured $(date -u +%F) with VBLK_NESTED=1: both engines on the KVM of a QEMU machine"
		echo "whose CPU is emulated (TCG with SVM; $(nproc) vCPUs, kernel $(uname -r)), the images on"
		echo "that machine's tmpfs, so the device models' own cost shows (their host code is"
		echo "emulated too) rather than a disk's. $("$QEMU" --version | head -1)."
	else
		echo "## virtio-blk: test guest to a qcow2 disk, termvisor vs QEMU (bench/virtio-blk.sh)"
		echo
		echo "Measured $(date -u +%F) on $(nproc) CPUs ($(uname -r)), $("$QEMU" --version | head -1)."
	fi
	echo "The same guest (tests/guests/virtio, its own virtio-pci driver, 1 vCPU, 128 MiB)"
	echo "on identical qcow2 images (64 KiB clusters, host page cache everywhere,"
	echo "QEMU -M q35 with virtio-blk-pci,disable-legacy=on and its default aio=threads;"
	echo "termvisor with aio=threads and aio=io_uring). Times from the guest's TSC;"
	echo "write is the guest's submit-to-last-completion time (data in the host page cache),"
	echo "read includes checking every word; the final flush (fdatasync of the whole image:"
	echo "the host disk's speed, shared with other work) is listed apart."
	echo "Median of $REPS runs each, the three engines interleaved run by run (range in ms"
	echo "after the rate); host 1-minute load average $load1 at the start, $(cut -d' ' -f1 /proc/loadavg)"
	echo "at the end, median $(printf '%s\n' "${loads[@]}" | median) over the runs (the machine is"
	echo "shared: single runs vary up to 3x). Ratios are QEMU's time over termvisor's: > 1,"
	echo "termvisor faster."
	echo
	echo "| case | QEMU | termvisor aio=threads | ratio | termvisor aio=io_uring | ratio |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "| final flush after the write pass (median) | QEMU | aio=threads | aio=io_uring |"
	echo "|---|---|---|---|"
	printf '%s\n' "${flushes[@]}"
	echo "<!-- $tag end -->"
} >"$tmp"
if [ -f "$res" ] && grep -q "<!-- $tag begin -->" "$res"; then
	awk -v f="$tmp" -v b="<!-- $tag begin -->" -v e="<!-- $tag end -->" '
		$0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
		$0 == e { skip = 0; next }
		!skip' "$res" >"$res.new" && mv "$res.new" "$res"
else
	{ echo; cat "$tmp"; } >>"$res"
fi
rm -f "$tmp"
sed -n "/<!-- $tag begin -->/,/<!-- $tag end -->/p" "$res"
