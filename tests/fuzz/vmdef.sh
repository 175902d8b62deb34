#!/usr/bin/env bash
# Builds the VM definition fuzz target with clang's libFuzzer (or, without
# clang, as a plain program) and runs it for a bounded time on the example
# definitions, the templates' and some broken ones. TV_FUZZ_TIME sets the
# seconds (default 15), TV_FUZZ_SEED the seed (default 1).
. "$top_srcdir/tests/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-fuzzdef.XXXXXX")
trap 'rm -rf "$D"' EXIT
S=$top_srcdir
SRCS=("$S/src/core/vmdef.c" "$S/src/core/paths.c" "$S/common/util.c" "$S/common/err.c")
CFLAGS=(-g -O1 -D_GNU_SOURCE -I"$S" -I"$top_builddir")
LIBS=(-lconfig)

mkdir "$D/corpus" "$D/tmp"
# libconfig 1.5 leaks a string buffer when a file ends inside a string: its
# bug, not ours, and a few bytes per broken file read.
echo "leak:libconfig.so" >"$D/lsan.supp"
export LSAN_OPTIONS=suppressions=$D/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
i=0
for f in "$S"/conf/examples/*.conf "$S"/share/templates/*/*.conf; do
	[ -f "$f" ] && cp "$f" "$D/corpus/seed$i.conf" && i=$((i + 1))
done
printf 'cpus = 999;\nmemory = "1T";\n' >"$D/corpus/big"
printf 'disks = ( { file = "../../etc/passwd"; format = "raw"; } );\n' >"$D/corpus/path"
printf 'name = "other";\nkernel = 7;\nmemory = "12Q";\n' >"$D/corpus/types"
printf '@include "/etc/passwd"\ncmdline = "%s";\n' "$(head -c 5000 /dev/zero | tr '\0' x)" >"$D/corpus/long"
printf 'net = ( { mode = "user"; forward = ( "tcp:127.0.0.1:2222:22", "udp::x:y" ); mac = "52:54:00:12:34:56"; } );\n' \
	>"$D/corpus/net"

if command -v clang >/dev/null 2>&1 &&
	clang "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined "$S/tests/fuzz/fuzz-vmdef.c" \
		"${SRCS[@]}" "${LIBS[@]}" -o "$D/fuzz" 2>"$D/build.log"; then
	TMPDIR=$D/tmp "$D/fuzz" -seed="${TV_FUZZ_SEED:-1}" -max_total_time="${TV_FUZZ_TIME:-15}" \
		-max_len=8192 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$top_builddir/fuzz-vmdef-" "$D/corpus" >"$D/fuzz.log" 2>&1
	rc=$?
	grep -B 2 -A 12 "ERROR: AddressSanitizer\|runtime error\|deadly signal" "$D/fuzz.log" | sed 's/^/# /'
	grep -E "^Done [0-9]+ runs" "$D/fuzz.log" | tail -n 1 | sed "s/^/# /"; tail -n 8 "$D/fuzz.log" | sed 's/^/# /'
	# A failing input is kept as $top_builddir/fuzz-vmdef-crash-* to replay.
	t_check "libFuzzer on VM definitions: no crash, and what loads saves and loads back the same" \
		test $rc -eq 0
else
	[ -s "$D/build.log" ] && sed 's/^/# /' "$D/build.log"
	${CC:-cc} "${CFLAGS[@]}" -fsanitize=address,undefined -DFUZZ_STANDALONE \
		"$S/tests/fuzz/fuzz-vmdef.c" "${SRCS[@]}" "${LIBS[@]}" -o "$D/fuzz" ||
		{ t_fail "the fuzz target builds (its sources compile)"; t_done; }
	t_check "fuzz target over the seeds (no libFuzzer here)" env TMPDIR="$D/tmp" "$D/fuzz" "$D"/corpus/*
fi
t_done
