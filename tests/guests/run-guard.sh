#!/bin/sh
# `termvisor run` passes the guest's output through the same guard as a
# background VM's console: a guest cannot send this terminal the sequences
# that take terminal emulators down (huge CSI parameters, endless parameter
# lists). The serial guest echoes what it reads, so typed bytes come back as
# guest output.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/serial.elf
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
printf '\033[123456789Mx\nsecond \033[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20Hy\nquit\n' |
	timeout 30 "$TV" run --debug-exit --kernel "$G" --memory 64M >"$d/out" 2>&1
rc=$?
od -c "$d/out" | grep -n '033' | head -n 4 | sed 's/^/# /'
t_check "the guest ran to its end (status 0)" [ "$rc" -eq 0 ]
t_check "the guest echoed the lines" grep -q 'echo (interrupt): SECOND' "$d/out"
t_check "a CSI parameter reaches the terminal cut to 4 digits" \
	grep -q "$(printf '\033')\\[1234M" "$d/out"
t_check "the 9-digit parameter never reaches the terminal" sh -c "! grep -q 123456789 '$d/out'"
t_check "a CSI with 20 parameters reaches it with at most 16" \
	sh -c "! grep -q ';17;18' '$d/out'"
t_done
