#!/usr/bin/env bash
# A long fuzz campaign over the targets that the scripts in tests/fuzz/ built
# with TV_FUZZ_EXPORT=DIR (see tests/fuzz/README.md):
#	tests/fuzz/campaign.sh DIR UNTIL [SLICE [JOBS]]
# runs the targets in DIR at nice 19, JOBS (default 2) at a time, in slices of
# SLICE seconds (default 600), always next the target with the least time so
# far, until the clock reads UNTIL (anything `date -d` reads). Each target's
# corpus grows in DIR/TARGET/corpus (its seeds stay in DIR/TARGET/seeds);
# failing inputs land in DIR/TARGET/ as crash-*, leak-*, timeout-*, oom-*.
# DIR/campaign.tsv gets a line per slice: target, start (UTC), wall seconds,
# CPU seconds (user + system), executions, cov, ft, corpus inputs, corpus
# bytes, exit status and the failing input if any. DIR/TARGET/slice-N.log
# keeps libFuzzer's output. tests/fuzz/campaign-sum.sh DIR sums it up.
set -u
dir=$(cd "${1:?usage: campaign.sh DIR UNTIL [SLICE [JOBS]]}" && pwd) || exit 2
until=$(date -d "${2:?usage: campaign.sh DIR UNTIL [SLICE [JOBS]]}" +%s) || exit 2
slice=${3:-600}
jobs=${4:-2}
log=$dir/campaign.tsv
[ -f "$log" ] || printf 'target\tstart\twall_s\tcpu_s\texecs\tcov\tft\tcorpus_n\tcorpus_bytes\trc\tartifact\n' >"$log"

# The targets built in DIR, less those held (DIR/TARGET/hold exists: say, a
# crash being fixed); read again before each slice.
list_targets() {
	targets=()
	for f in "$dir"/*/fuzz; do
		[ -x "$f" ] && [ ! -e "$(dirname "$f")/hold" ] && targets+=("$(basename "$(dirname "$f")")")
	done
}
list_targets
[ ${#targets[@]} -gt 0 ] || { echo "campaign.sh: no built target under $dir (run the tests/fuzz scripts with TV_FUZZ_EXPORT=$dir)" >&2; exit 2; }

# Wall seconds a target has had so far, from the log.
spent() {
	awk -F'\t' -v t="$1" '$1 == t { s += $3 } END { print s + 0 }' "$log"
}

# One slice of target $1 for $2 seconds, then its line in the log.
run_slice() {
	local t=$1 secs=$2 x=$dir/$1 n start before after rc line cov ft execs cpu wall art
	mkdir -p "$x/corpus" "$x/tmp"
	n=$(find "$x" -maxdepth 1 -name 'slice-*.log' | wc -l)
	start=$(date -u +%FT%TZ)
	before=$(find "$x" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
	# shellcheck disable=SC2046
	TMPDIR=$x/tmp /usr/bin/time -f '%e %U %S' -o "$x/time" nice -n 19 "$x/fuzz" \
		$(cat "$x/options") -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$x/" -seed=$((RANDOM * 32768 + RANDOM)) \
		"$x/corpus" "$x/seeds" >"$x/slice-$n.log" 2>&1
	rc=$?
	rm -rf "$x/tmp"/*
	after=$(find "$x" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
	art=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | xargs -r -n1 basename | tr '\n' ' ')
	# time(1) puts "Command exited with non-zero status N" first when so.
	read -r wall u s < <(tail -n 1 "$x/time")
	cpu=$(echo "$u + $s" | bc)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$x/slice-$n.log" | tail -n 1)
	line=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$x/slice-$n.log" | tail -n 1)
	cov=$(echo "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$start" "$wall" "$cpu" \
		"${execs:-?}" "${cov:-?}" "${ft:-?}" "$(find "$x/corpus" -type f | wc -l)" \
		"$(du -sb "$x/corpus" | cut -f1)" "$rc" "${art:--}" >>"$log"
}

declare -A pid_of=()
while :; do
	now=$(date +%s)
	# Reap finished slices.
	for t in "${!pid_of[@]}"; do
		kill -0 "${pid_of[$t]}" 2>/dev/null || { wait "${pid_of[$t]}"; unset "pid_of[$t]"; }
	done
	left=$((until - now))
	if [ $left -lt 30 ]; then
		[ ${#pid_of[@]} -eq 0 ] && break
		sleep 5
		continue
	fi
	if [ ${#pid_of[@]} -lt "$jobs" ]; then
		list_targets
		best= best_s=
		for t in "${targets[@]}"; do
			[ -n "${pid_of[$t]:-}" ] && continue
			s=$(spent "$t")
			if [ -z "$best" ] || [ "${s%.*}" -lt "${best_s%.*}" ]; then best=$t best_s=$s; fi
		done
		if [ -n "$best" ]; then
			run_slice "$best" $((left < slice ? left : slice)) &
			pid_of[$best]=$!
			continue
		fi
	fi
	sleep 5
done
echo "campaign over: $(date -u +%FT%TZ)"
