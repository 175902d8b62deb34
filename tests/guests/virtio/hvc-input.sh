#!/bin/sh
# Typing at `termvisor run` reaches the guest's hvc0 once the guest uses it:
# the virtio test guest first reads a line from the UART (hvc0 not opened
# yet, so the typing must go there), then opens hvc0, writes to it, and
# reads a line from its receive queue; it echoes both lines and checks that
# nothing typed for hvc0 reached the UART.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/virtio/virtio-guest.elf
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-hvc.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$D"' EXIT
mkfifo "$D/in"

timeout 60 "$TV" run --debug-exit --kernel "$G" --memory 64M --append "noblk hvcecho" \
	<"$D/in" >"$D/out" 2>&1 &
pid=$!
exec 3>"$D/in"
# Types once the guest says it is ready; the polling covers slow hosts.
wait_for() {
	i=0
	while ! grep -q "$1" "$D/out"; do
		i=$((i + 1))
		[ $i -le 600 ] && kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
}
wait_for "type a line for ttyS0" && printf 'typed at ttyS0\r' >&3
wait_for "hvc0: ready for input" && printf 'typed at hvc0\r' >&3
wait "$pid"
rc=$?
pid=
exec 3>&-
sed 's/^/# /' "$D/out"
has() { grep -q "$1" "$D/out"; }
t_check "guest finished with exit status 0" [ "$rc" -eq 0 ]
t_check "before hvc0 is used, typing goes to the UART" has "ttyS0 got 'typed at ttyS0'"
t_check "once the guest writes to hvc0, typing goes there" has "hvc0: got 'typed at hvc0'"
t_check "every guest check passed (nothing typed for hvc0 reached the UART)" has "^virtio: ok"
t_done
