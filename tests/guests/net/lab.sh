#!/usr/bin/env bash
# Private lab networks end to end: two demo VMs on lab network lab1 with static
# addresses exchange UDP datagrams (unicast and broadcast) and pings, and a third on
# lab2 sees none of it. The VMs start their networks' switches themselves. Needs the
# virtio-net device (`termvisor run --net`); skips in a build without it.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
"$TV" run --help 2>&1 | grep -q -- '--net' || t_skip_all "termvisor run has no --net (no virtio-net device)"
t_home
demo=$top_builddir/share/demo/demo.elf
vm() { # network, last byte of the MAC
	echo "$TV run --kernel $demo --cpus 1 --memory 64M --net lab,name=$1,mac=52:54:00:00:51:$2"
}
python3 "$top_srcdir/tests/demo/demo-net.py" lab --idle-ping --a "$(vm lab1 01)" \
	--b "$(vm lab1 02)" --c "$(vm lab2 03)" || T_FAILED=1
t_check "the VMs started lab1's switch, only the user may use its socket" \
	test "$(stat -c %a "$TERMVISOR_HOME/run/lab/lab1.sock" 2>/dev/null)" = 600
t_check "and lab2's" test -S "$TERMVISOR_HOME/run/lab/lab2.sock"
t_done
