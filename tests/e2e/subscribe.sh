#!/usr/bin/env bash
# A running VM's events as the interface's model follows them: a subscribed
# client (one connection, not attached to a console) hears of every snapshot
# change ("take TAG", "rename OLD NEW", "rollback TAG", "delete TAG") made by
# anyone, of pause and resume, of the stop and of the end, in order; a client
# that did not subscribe hears only of the end.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
QEMU_IMG=${QEMU_IMG:-$(command -v qemu-img)}
[ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is not installed"
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
events=$top_builddir/tests/e2e/tv-events
[ -x "$events" ] || t_skip_all "tests/e2e/tv-events is not built"
t_home
cleanup() {
	timeout 10 "$TV" stop lab --force >/dev/null 2>&1
	t_cleanup
}
trap cleanup EXIT
ev=$TERMVISOR_HOME/subscribed.out
plain=$TERMVISOR_HOME/plain.out
wait_line() { # file text
	for _ in $(seq 300); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# $1 while waiting for '$2':" && sed 's/^/#   /' "$1"
	return 1
}

t_demo_vm lab "$demo" || exit 1
"$TV" start lab >/dev/null || exit 1
"$events" lab 300 >"$ev" &
sub=$!
"$events" lab 300 --plain >"$plain" &
pl=$!
t_check "a client subscribes" wait_line "$ev" "^subscribed"
t_check "another only connects" wait_line "$plain" "^connected"
# Let the guest boot far enough for its snapshot to be worth restoring.
sleep 2
t_check "take s1" "$TV" snapshot take lab s1
t_check "pause" "$TV" pause lab
t_check "resume" "$TV" resume lab
t_check "rename s1 first" "$TV" snapshot rename lab s1 first
t_check "take s2" "$TV" snapshot take lab s2
t_check "rollback to first" "$TV" snapshot rollback lab first
t_check "delete s2" "$TV" snapshot delete lab s2
t_check "stop" "$TV" stop lab
wait $sub $pl
want=$(printf '%s\n' subscribed "5 take s1" 1 2 "5 rename s1 first" "5 take s2" \
	"5 rollback first" "5 delete s2" 3)
# Pause and resume say nothing more; stopping says the seconds left.
got=$(grep -v '^4 ' "$ev" | sed 's/^3 .*/3/; s/ *$//')
t_check "the subscriber heard each change, in order" [ "$got" = "$want" ]
[ "$got" = "$want" ] || { echo "# got:"; sed 's/^/#   /' "$ev"; }
t_check "and the end last" bash -c "tail -n1 '$ev' | grep -q '^4 '"
t_check "the client that did not subscribe heard only the end" \
	bash -c "[ \"\$(grep -c . '$plain')\" -eq 2 ] && tail -n1 '$plain' | grep -q '^4 '"
[ "$(grep -c . "$plain")" -eq 2 ] || { echo "# got:"; sed 's/^/#   /' "$plain"; }
t_done
