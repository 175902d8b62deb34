#!/usr/bin/env bash
# `termvisor create --template debian` fails cleanly: with a mirror that has no
# Debian archive, with one that cannot be reached, and when it is stopped while
# debootstrap runs, it says why, exits non-zero and leaves no VM, no data
# directory, no build tree and nothing mounted.
. "$(dirname "$0")/../lib.sh"
t_home
PATH=$PATH:/usr/sbin:/sbin
command -v debootstrap >/dev/null || t_skip_all "debootstrap is missing (the Debian package debootstrap)"
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
	t_skip_all "debootstrap needs root: run as root or with password-less sudo"
fi

nothing_left() { # name
	[ ! -e "$TERMVISOR_HOME/vms/$1.conf" ] && [ ! -e "$TERMVISOR_HOME/data/$1" ] &&
		! grep -q " $TERMVISOR_HOME/" /proc/mounts
}

# A server that answers, without a Debian archive at that path.
out=$(TV_DEBIAN_MIRROR=http://deb.debian.org/no-such-archive "$TV" create bad --template debian 2>&1)
rc=$?
t_check "a mirror without the archive: create fails" [ $rc -ne 0 ]
t_check "saying debootstrap could not get the Release file from it" \
	grep -qi "debootstrap failed.*release file.*no-such-archive" <<<"$out"
t_check "and that nothing was kept" grep -q "nothing was kept" <<<"$out"
t_check "no VM, data directory or mount is left" nothing_left bad
t_check "the VM is not listed" bash -c "! '$TV' list | grep -q '^bad '"
[ $T_FAILED -eq 0 ] || sed 's/^/# /' <<<"$out"

# A host that does not resolve (.invalid never does).
out=$(TV_DEBIAN_MIRROR=http://mirror.invalid/debian timeout 120 "$TV" create gone --template debian 2>&1)
rc=$?
t_check "an unreachable mirror: create fails" [ $rc -ne 0 ] && [ $rc -ne 124 ]
t_check "naming the mirror" grep -q "debootstrap failed.*mirror.invalid" <<<"$out"
t_check "no VM, data directory or mount is left" nothing_left gone

# Stopped while debootstrap fetches packages: termvisor passes the signal on
# to the builder, which removes its tree. The mirror is the real one (apt's, or
# TV_DEBIAN_MIRROR); if it cannot be reached the builder fails on its own
# before the signal, which the checks accept as long as nothing is left.
err=$TERMVISOR_HOME/stopped.err
"$TV" create stopped --template debian 2>"$err" &
pid=$!
for _ in $(seq 600); do
	grep -q "fetching packages" "$err" && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
sleep 1
if kill -TERM $pid 2>/dev/null; then
	wait $pid
	rc=$?
	t_check "stopped with SIGTERM: create fails" [ $rc -ne 0 ]
	t_check "saying it was interrupted and nothing was kept" \
		grep -q "interrupted; nothing was kept" "$err"
else
	wait $pid
	rc=$?
	echo "# the builder ended before it was stopped: $(tail -n 1 "$err")"
	t_check "create fails" [ $rc -ne 0 ]
	t_check "saying debootstrap failed" grep -q "debootstrap failed" "$err"
fi
t_check "no VM, data directory or mount is left" nothing_left stopped
t_check "no debootstrap of it still runs" \
	bash -c "! pgrep -f '[d]ebootstrap.*$TERMVISOR_HOME' >/dev/null"
[ $T_FAILED -eq 0 ] || sed 's/^/# /' "$err"
t_done
