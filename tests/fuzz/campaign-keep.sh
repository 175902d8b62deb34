#!/usr/bin/env bash
# After tests/fuzz/campaign.sh: adds to the committed corpus
# tests/fuzz/corpus/TARGET the inputs of the campaign's corpus that reach
# coverage that the seeds and the committed corpus do not (libFuzzer's
# -merge=1, which prefers small inputs), smallest first, up to KIB KiB per
# target (default 256), so that the repository stays lean and ./dev check's
# replay of it short.
#	tests/fuzz/campaign-keep.sh DIR [KIB [TARGET...]]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(cd "${1:?usage: campaign-keep.sh DIR [KIB [TARGET...]]}" && pwd)
kib=${2:-256}
shift $(($# > 1 ? 2 : 1))
[ $# -gt 0 ] || set -- $(cd "$dir" && for f in */fuzz; do dirname "$f"; done)
for t in "$@"; do
	x=$dir/$t
	[ -x "$x/fuzz" ] && [ -d "$x/corpus" ] || { echo "$t: no campaign corpus in $x, skipped" >&2; continue; }
	keep=$top/tests/fuzz/corpus/$t
	m=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzz-keep.XXXXXX")
	mkdir "$m/base" "$m/tmp"
	cp "$x/seeds"/* "$m/base/" 2>/dev/null || true
	[ -d "$keep" ] && cp "$keep"/* "$m/base/" 2>/dev/null
	ls "$m/base" | sort >"$m/before"
	# shellcheck disable=SC2046
	TMPDIR=$m/tmp nice -n 19 "$x/fuzz" $(cat "$x/options") -merge=1 "$m/base" "$x/corpus" \
		>"$m/merge.log" 2>&1 || { echo "$t: the merge failed, see $m/merge.log" >&2; continue; }
	ls "$m/base" | sort | comm -13 "$m/before" - >"$m/new"
	mkdir -p "$keep"
	n=0 bytes=0 all=0 allbytes=0
	while read -r size f; do
		all=$((all + 1)) allbytes=$((allbytes + size))
		[ $((bytes + size)) -le $((kib * 1024)) ] || continue
		cp "$m/base/$f" "$keep/$f"
		n=$((n + 1)) bytes=$((bytes + size))
	done < <(cd "$m/base" && xargs -r stat -c '%s %n' <"$m/new" | sort -n)
	echo "$t: the merge found $all new inputs ($((allbytes / 1024)) KiB); kept $n ($((bytes / 1024)) KiB) in tests/fuzz/corpus/$t"
	rm -rf "$m"
done
