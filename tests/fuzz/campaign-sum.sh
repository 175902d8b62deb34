#!/usr/bin/env bash
# Sums up a campaign of tests/fuzz/campaign.sh: per target, from DIR/campaign.tsv,
# the slices, wall hours, CPU hours, executions, the last slice's coverage
# (libFuzzer's cov and ft), the corpus it grew and the failing inputs found,
# as a Markdown table; then the totals.
#	tests/fuzz/campaign-sum.sh DIR
set -eu
log=${1:?usage: campaign-sum.sh DIR}/campaign.tsv
[ -f "$log" ] || { echo "campaign-sum.sh: $log is missing (run tests/fuzz/campaign.sh first)" >&2; exit 2; }
awk -F'\t' '
NR == 1 { next }
{
	t = $1
	if (!(t in slices)) order[++n] = t
	slices[t]++; wall[t] += $3; cpu[t] += $4
	if ($5 ~ /^[0-9]+$/) execs[t] += $5
	if ($6 ~ /^[0-9]+$/) { cov[t] = $6; ft[t] = $7 }
	corpus[t] = $8 " / " int($9 / 1024) " KiB"
	# Failing inputs, counted by kind (crash, leak, timeout, oom).
	if ($11 != "-") {
		k = split($11, f, " ")
		for (j = 1; j <= k; j++) { sub(/-.*/, "", f[j]); nfail[t, f[j]]++; kinds[f[j]] = 1 }
	}
	if ($3 !~ /^[0-9.]+$/) nowall[t]++
	if (first == "" || $2 < first) first = $2
}
END {
	print "| target | slices | wall h | CPU h | executions | cov | ft | corpus grown | failing inputs |"
	print "|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= n; i++) {
		t = order[i]
		fl = ""
		for (k in kinds)
			if ((t, k) in nfail) fl = fl (fl == "" ? "" : ", ") nfail[t, k] " " k
		if (t in nowall) fl = fl " (" nowall[t] " slices without a time)"
		printf "| %s | %d | %.2f | %.2f | %d | %s | %s | %s | %s |\n", t, slices[t], wall[t] / 3600,
			cpu[t] / 3600, execs[t], cov[t], ft[t], corpus[t], fl == "" ? "none" : fl
		W += wall[t]; C += cpu[t]; E += execs[t]
	}
	printf "| all %d targets | | %.2f | %.2f | %d | | | | |\n", n, W / 3600, C / 3600, E
	printf "\nfirst slice started %s\n", first
}' "$log"
