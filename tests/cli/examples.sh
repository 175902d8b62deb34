#!/usr/bin/env bash
# The shipped example definitions load cleanly: no errors, no warnings.
. "$(dirname "$0")/../lib.sh"
t_home
mkdir -p "$TERMVISOR_HOME/vms"
cp "$top_srcdir"/conf/examples/*.conf "$TERMVISOR_HOME/vms/"
out=$("$TV" list 2>"$TERMVISOR_HOME/err")
t_check "every example loads (exit 0)" [ $? -eq 0 ]
t_check "no warnings" [ ! -s "$TERMVISOR_HOME/err" ]
t_check "linux-lab has 2 vCPUs and 1G" grep -q "^linux-lab .* 2 *1G *1 " <<<"$out"
t_check "linked-clone has two disks" grep -q "^linked-clone .* 512M *2 " <<<"$out"
t_done
