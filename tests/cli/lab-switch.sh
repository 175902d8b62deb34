#!/usr/bin/env bash
# `termvisor lab-switch`: a switch in the foreground serves its network's socket
# (mode 0600), refuses a second switch for the network, ends after its linger time
# with its counters, and bad names and options are errors that say what is wrong.
. "$(dirname "$0")/../lib.sh"
t_home
sock=$TERMVISOR_HOME/run/lab/lab1.sock
"$TV" lab-switch --linger 2 lab1 >"$TERMVISOR_HOME/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
t_check "the switch serves the network's socket" test -S "$sock"
t_check "only the user may use it" test "$(stat -c %a "$sock")" = 600
err=$("$TV" lab-switch lab1 2>&1)
t_check "a second switch for the network is refused" \
	grep -q "lab network lab1: a switch already serves it at $sock" <<<"$err"
wait $pid
t_check "with no member it ends after its linger time, status 0" test $? -eq 0
t_check "and prints its counters" grep -q "lab network lab1: 0 frames in" "$TERMVISOR_HOME/out"
t_check "its socket is gone" test ! -e "$sock"
err=$("$TV" lab-switch 'a/b' 2>&1)
t_check "a name with / is refused, named" grep -q "lab network name 'a/b' must not contain '/'" <<<"$err"
"$TV" lab-switch --linger soon lab1 2>"$TERMVISOR_HOME/err"
t_check "a bad --linger is a usage error" test $? -eq 2
t_check "which names the value" grep -q "expected seconds (0 to 86400), not 'soon'" "$TERMVISOR_HOME/err"
t_done
