#!/usr/bin/env bash
# `termvisor img bench` against `qemu-img bench -t none` on the same qcow2
# image: 4 KiB random and 1 MiB sequential, reads and writes, depth 1 and 32.
# Both use O_DIRECT (-t none) on a prefilled 1 GiB image (overwrites, no
# allocation), then one allocating case on fresh images. Each case runs
# REPS times, the two tools taking turns to go first with a pause between
# runs (SETTLE seconds); the median time of each counts.
# Writes the figures into bench/RESULTS.md (the "termvisor img bench"
# section) and prints them.
#   usage: bench/img.sh [BUILD_DIR]   (env: BENCH_DIR for the image, REPS,
#   ONLY=REGEX to run only the matching cases, without updating RESULTS.md,
#   CONTROL=1 to run qemu-img a second time each round as a control: its
#   ratio to the first qemu-img run shows how far two runs of one tool differ)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
TV=$build/termvisor
QI=${QEMU_IMG:-$(command -v qemu-img)}
QIO=${QEMU_IO:-$(command -v qemu-io)}
REPS=${REPS:-5}
[ -x "$TV" ] || { echo "build termvisor first ($TV missing)" >&2; exit 1; }
D=$(mktemp -d "${BENCH_DIR:-/var/tmp}/tv-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
img=$D/bench.qcow2
# A step that visits the image in a scattered order: random-like access with
# the same sequence for both tools (qemu-img bench has no random mode).
RSTEP=$((64001 * 4096))

"$QI" create -q -f qcow2 "$img" 1G
# Written with O_DIRECT: no page-cache copy of the image for one tool to drop.
"$QIO" -f qcow2 -t none -c "write -P 0x5a 0 1G" "$img" >/dev/null

secs() { sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'; }

rows=()
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
run_case() { # label count size depth step write(0/1) [fresh]
	local label=$1 c=$2 s=$3 d=$4 S=$5 w=$6 fresh=${7:-} wflag= t bytes tq tt
	local qs=() ts=() cs=()
	[[ -z "${ONLY:-}" || "$label" =~ $ONLY ]] || return 0
	[ "$w" = 1 ] && wflag=-w
	for rep in $(seq "$REPS"); do
		local target=$img tool
		# Alternate which tool goes first, and let the host's write-back
		# of one run settle before the next, so neither pays for the other.
		local order
		order=$([ $((rep % 2)) = 1 ] && echo "q t" || echo "t q")
		[ -z "${CONTROL:-}" ] || order=$([ $((rep % 2)) = 1 ] && echo "q t c" || echo "c t q")
		for tool in $order; do
			if [ -n "$fresh" ]; then
				target=$D/fresh.qcow2
				rm -f "$target"
				"$QI" create -q -f qcow2 "$target" 1G
			fi
			sync
			sleep "${SETTLE:-1}"
			if [ $tool != t ]; then
				t=$("$QI" bench -f qcow2 -t none -c "$c" -s "$s" -d "$d" -S "$S" $wflag \
					"$target" | secs)
				if [ $tool = q ]; then qs+=("$t"); else cs+=("$t"); fi
			else
				t=$("$TV" img bench -f qcow2 -t none -c "$c" -s "$s" -d "$d" -S "$S" \
					$wflag "$target" | secs)
				ts+=("$t")
			fi
		done
	done
	tq=$(printf '%s\n' "${qs[@]}" | median)
	tt=$(printf '%s\n' "${ts[@]}" | median)
	# The ratio of each round (the two tools ran back to back) shows the
	# spread: the lowest and highest are listed after the median's.
	local rr=$(paste -d' ' <(printf '%s\n' "${qs[@]}") <(printf '%s\n' "${ts[@]}") |
		awk '{ print $1 / $2 }' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
	bytes=$(numfmt --from=iec "${s^^}")
	rows+=("$(awk -v l="$label" -v c="$c" -v b="$bytes" -v q="$tq" -v t="$tt" -v rr="$rr" 'BEGIN {
		printf "| %s | %.0f | %.1f | %.0f | %.1f | %.2f (%s) |", l, c / q, c * b / q / 1048576,
			c / t, c * b / t / 1048576, q / t, rr }')")
	echo "${rows[-1]}"
	if [ ${#cs[@]} -gt 0 ]; then
		local tc cr
		tc=$(printf '%s\n' "${cs[@]}" | median)
		cr=$(paste -d' ' <(printf '%s\n' "${qs[@]}") <(printf '%s\n' "${cs[@]}") |
			awk '{ print $1 / $2 }' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
		rows+=("$(awk -v q="$tq" -v c="$tc" -v cr="$cr" 'BEGIN {
			printf "| (control: qemu-img again, its speed over the first run) | | | | | %.2f (%s) |", q / c, cr }')")
		echo "${rows[-1]}"
	fi
}

echo "| case | qemu-img IOPS | qemu-img MiB/s | termvisor IOPS | termvisor MiB/s | speed ratio (termvisor/qemu), per-round range |"
run_case "4 KiB random read, depth 1" 20000 4k 1 $RSTEP 0
run_case "4 KiB random read, depth 32" 100000 4k 32 $RSTEP 0
run_case "4 KiB random write, depth 1" 20000 4k 1 $RSTEP 1
run_case "4 KiB random write, depth 32" 60000 4k 32 $RSTEP 1
run_case "1 MiB sequential read, depth 1" 1000 1M 1 1M 0
run_case "1 MiB sequential read, depth 32" 2000 1M 32 1M 0
run_case "1 MiB sequential write, depth 1" 1000 1M 1 1M 1
run_case "1 MiB sequential write, depth 32" 2000 1M 32 1M 1
run_case "64 KiB allocating write (fresh image), depth 1" 8000 64k 1 64k 1 fresh
run_case "64 KiB allocating write (fresh image), depth 32" 8000 64k 32 64k 1 fresh

results=$top/bench/RESULTS.md
# A partial run (ONLY=regex of case labels) only prints.
[ -z "${ONLY:-}" ] || exit 0
section=$(
	echo "<!-- termvisor-img-bench begin -->"
	echo "## termvisor img bench vs qemu-img bench -t none"
	echo
	echo "Measured $(date -u +%Y-%m-%d) by bench/img.sh on $(nproc) CPUs ($(uname -r)), load average"
	echo "$load_start at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine: expect"
	echo "some noise; the tools' own threads waiting on the disk count in it too), $QI"
	echo "($("$QI" --version | head -1)). 1 GiB qcow2 image, 64 KiB clusters, prefilled;"
	echo "both tools with O_DIRECT; median of $REPS runs each, taking turns to go first. Random = a fixed"
	echo "scattering step ($RSTEP bytes), the same sequence for both tools. Ratio > 1: termvisor faster."
	echo
	echo "| case | qemu-img IOPS | qemu-img MiB/s | termvisor IOPS | termvisor MiB/s | speed ratio (termvisor/qemu), per-round range |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	cat <<'NOTES'
Both tools send the same requests through the same kernel paths (one pread/pwrite of the
whole request with O_DIRECT: contiguous clusters are one transfer in both; termvisor runs
one thread per request in flight, qemu-img its thread pool). The 4 KiB cases measure the
format's own cost (cached L2 lookup, no metadata I/O for overwrites): perf stat gives
termvisor a quarter to a third of qemu-img's CPU time for the 4 KiB random reads. The
1 MiB cases are bound by the shared host disk (both tools use 7-15% of a CPU there, and
termvisor reads as fast at depth 4 as at 32): single runs vary 0.4-4x from one minute to
the next, so ratios near 1 within the per-round range are noise. The exception seen
more than once is 1 MiB writes at depth 32 (0.77, 0.99 and 0.86 in three runs of this
script, 0.80 over 12 rounds in shuffled order). The system calls are the same (one
1 MiB pwrite each, 28-31 in flight), but each takes longer (perf trace: 10.0 ms vs
5.3 ms): the guest's I/O scheduler merges termvisor's concurrent writes into requests of
up to 2 MiB, while qemu-img's reach this virtual disk unmerged or even split in two
(512 KiB, their buffer pages less contiguous), and this host's disk takes smaller
requests faster (the same bytes as 512 KiB writes, 64 in flight: 0.75 s vs 0.95 s for
1 MiB ones, qemu-img 0.71 s). A property of this host's storage, not fixed here.

Allocating writes send only the new bytes to never-written clusters, outside the image
lock. When such writes overlap, the block layer grows the image file ahead in 16 MiB
steps (fallocate), so that their O_DIRECT writes land inside the file and run in parallel
rather than one at a time as file-extending writes (ext4 serializes those); the unused
rest is cut off at close. That took the depth-32 allocating case from 0.99 (8448 vs
8520 IOPS, median of 7, same day, load 3-12) to the ratio above; a lone writer (depth 1)
is left as it was, since writing into preallocated extents costs it more.
NOTES
	echo "<!-- termvisor-img-bench end -->"
)
touch "$results"
grep -q '^# ' "$results" || sed -i '1i # Benchmarks\n' "$results"
python3 - "$results" "$section" <<'EOF'
import sys, re
path, section = sys.argv[1], sys.argv[2]
s = open(path).read()
pat = re.compile(r"<!-- termvisor-img-bench begin -->.*?<!-- termvisor-img-bench end -->", re.S)
s = pat.sub(lambda m: section, s) if pat.search(s) else s.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(s)
EOF
echo "results in $results"
