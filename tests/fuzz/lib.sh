# Sourced by the fuzz scripts after tests/lib.sh. They set S (the source tree),
# D (a scratch directory whose corpus/ holds the seeds), and the arrays SRCS
# (what the target links), CFLAGS and LIBS, then call
#	fuzz_run TARGET MAX_LEN CHECK [LIBFUZZER-OPTION...]
# which builds tests/fuzz/fuzz-TARGET.c with clang's libFuzzer and runs it for
# TV_FUZZ_TIME seconds (default 5) from seed TV_FUZZ_SEED (default 1, so CI
# runs repeat; set another to explore). Without clang the target is built as
# a plain program and run once over each seed. A failing input is kept as
# $top_builddir/fuzz-TARGET-crash-* (or -leak-, -timeout-) to replay.
# The committed corpus tests/fuzz/corpus/TARGET (inputs kept from long runs,
# see tests/fuzz/README.md) joins the seeds. With TV_FUZZ_EXPORT=DIR the
# target is only built: DIR/TARGET gets the program (fuzz), the seeds
# (seeds/) and the options this script runs it with (options), for
# tests/fuzz/campaign.sh; a corpus a campaign grew there stays.
fuzz_run() {
	local target=$1 max_len=$2 check=$3 rc
	shift 3
	mkdir -p "$D/tmp"
	if [ -d "$S/tests/fuzz/corpus/$target" ]; then
		cp "$S/tests/fuzz/corpus/$target"/* "$D/corpus/" 2>/dev/null
	fi
	if [ -n "${TV_FUZZ_EXPORT:-}" ]; then
		local x=$TV_FUZZ_EXPORT/$target
		mkdir -p "$x" && rm -rf "$x/seeds" || { t_fail "$x can be made"; return; }
		t_check "the $target fuzz target builds with libFuzzer" \
			clang "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined \
			"$S/tests/fuzz/fuzz-$target.c" "${SRCS[@]}" "${LIBS[@]}" -o "$x/fuzz"
		cp -r "$D/corpus" "$x/seeds"
		printf '%s\n' -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 "$@" >"$x/options"
		return
	fi
	if command -v clang >/dev/null 2>&1 &&
		clang "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined "$S/tests/fuzz/fuzz-$target.c" \
			"${SRCS[@]}" "${LIBS[@]}" -o "$D/fuzz" 2>"$D/build.log"; then
		TMPDIR=$D/tmp "$D/fuzz" -seed="${TV_FUZZ_SEED:-1}" -max_total_time="${TV_FUZZ_TIME:-5}" \
			-max_len="$max_len" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
			-artifact_prefix="$top_builddir/fuzz-$target-" "$@" "$D/corpus" >"$D/fuzz.log" 2>&1
		rc=$?
		grep -B 2 -A 12 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error\|deadly signal" \
			"$D/fuzz.log" | grep -v ' in fuzzer::' | sed 's/^/# /'
		grep -E "^Done [0-9]+ runs" "$D/fuzz.log" | tail -n 1 | sed 's/^/# /'
		tail -n 8 "$D/fuzz.log" | grep -v '^Done ' | sed 's/^/# /'
		t_check "libFuzzer on $check" test $rc -eq 0
	else
		[ -s "$D/build.log" ] && sed 's/^/# /' "$D/build.log"
		${CC:-cc} "${CFLAGS[@]}" -fsanitize=address,undefined -DFUZZ_STANDALONE \
			"$S/tests/fuzz/fuzz-$target.c" "${SRCS[@]}" "${LIBS[@]}" -o "$D/fuzz" ||
			{ t_fail "the fuzz target builds (its sources compile)"; return; }
		t_check "fuzz target over the seeds (no libFuzzer here): $check" \
			env TMPDIR="$D/tmp" "$D/fuzz" "$D"/corpus/*
	fi
}
