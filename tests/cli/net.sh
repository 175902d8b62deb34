#!/usr/bin/env bash
# The network in definitions and on the command line: a new VM gets a NIC on
# the user network (create --net gives others, --net none none), a NIC's MAC
# is derived from the VM's name when the definition has none, a clone gets one of its own,
# `termvisor ssh` goes through the forward to port 22 as ssh_user (and names
# the VM when there is none), and `run --net` refuses bad text naming it.
. "$(dirname "$0")/../lib.sh"
t_home

# A new VM: one NIC on the user network, its MAC made once and kept.
"$TV" create fresh --disk 16M >/dev/null || { echo "cannot create fresh"; exit 1; }
fmac=$(sed -n 's/^ *mac = "\(.*\)";$/\1/p' "$TERMVISOR_HOME/vms/fresh.conf")
out=$("$TV" status fresh --json)
t_check "a new VM has a NIC on the user network with a MAC kept in its definition (${fmac:-no MAC}; $out)" \
	grep -q "\"nics\": \[{\"mode\": \"user\", \"mac\": \"$fmac\", \"address\": null, \"forwards\": \[\]}\]" <<<"$out"
"$TV" create fresh2 --disk 16M >/dev/null
fmac2=$(sed -n 's/^ *mac = "\(.*\)";$/\1/p' "$TERMVISOR_HOME/vms/fresh2.conf")
t_check "the next new VM gets another MAC ($fmac, ${fmac2:-nothing})" test -n "$fmac2" -a "$fmac2" != "$fmac"
"$TV" create lab --net user,forward=tcp::2222:22 --net lab,name=lab1,mac=52:54:00:00:00:07 >/dev/null
out=$("$TV" status lab --json)
t_check "create --net gives the cards asked for, in order (got: $out)" \
	grep -q '"nics": \[{"mode": "user", "mac": "52:54:00:[0-9a-f:]*", "address": null, "forwards": \["tcp:127.0.0.1:2222:22"\]}, {"mode": "lab", "mac": "52:54:00:00:00:07"' <<<"$out"
out=$("$TV" create bad --net lab 2>&1)
rc=$?
t_check "create --net with a bad card is a usage error naming it, and creates nothing (status $rc: $out)" \
	test $rc -eq 2 -a ! -e "$TERMVISOR_HOME/vms/bad.conf" && grep -q "lab needs name=LAB" <<<"$out"
"$TV" create web --disk 16M --net none >/dev/null || { echo "cannot create web"; exit 1; }
conf=$TERMVISOR_HOME/vms/web.conf
out=$("$TV" status web --json)
t_check "create --net none: a VM without a net setting has no NIC (got: $out)" grep -q '"nics": \[\]' <<<"$out"
printf 'net = ( { mode = "user"; } );\n' >>"$conf"
mac=$("$TV" status web --json | grep -o '"mac": "[0-9a-f:]*"' | cut -d'"' -f4)
t_check "a NIC without a MAC gets one of termvisor's prefix (got ${mac:-nothing})" \
	grep -qE '^52:54:00(:[0-9a-f]{2}){3}$' <<<"$mac"
t_check "the same at the next look" test "$("$TV" status web --json | grep -o '"mac": "[0-9a-f:]*"' | cut -d'"' -f4)" = "$mac"
"$TV" create web2 --disk 16M --net none >/dev/null
printf 'net = ( { mode = "user"; } );\n' >>"$TERMVISOR_HOME/vms/web2.conf"
mac2=$("$TV" status web2 --json | grep -o '"mac": "[0-9a-f:]*"' | cut -d'"' -f4)
t_check "another VM gets another MAC ($mac, $mac2)" test "$mac" != "$mac2"

if [ -n "${QEMU_IMG:-}" ]; then
	"$TV" clone web twin >/dev/null 2>&1
	macc=$(sed -n 's/^ *mac = "\(.*\)";$/\1/p' "$TERMVISOR_HOME/vms/twin.conf")
	t_check "a clone gets a MAC of its own, kept in its definition ($mac, ${macc:-nothing})" \
		test -n "$macc" -a "$macc" != "$mac"
fi

out=$("$TV" status web --json)
t_check "status --json of a stopped VM lists its NIC: mode, MAC, no address (got: $out)" \
	grep -q "\"nics\": \[{\"mode\": \"user\", \"mac\": \"$mac\", \"address\": null, \"forwards\": \[\]}\]" <<<"$out"
out=$("$TV" ssh web 2>&1)
rc=$?
t_check "ssh without a forward to port 22 fails naming the VM (status $rc: $out)" \
	test $rc -eq 1 && grep -q "VM web has no forward to its port 22" <<<"$out"

sed -i 's/{ mode = "user"; }/{ mode = "user"; forward = ( "udp::5353:53", "tcp::2222:22" ); }/' "$conf"
printf 'ssh_user = "student";\n' >>"$conf"
# A stand-in ssh that shows what it was given.
mkdir -p "$TERMVISOR_HOME/bin"
printf '#!/bin/sh\necho "ssh $*"\n' >"$TERMVISOR_HOME/bin/ssh"
chmod +x "$TERMVISOR_HOME/bin/ssh"
out=$(PATH=$TERMVISOR_HOME/bin:$PATH "$TV" ssh web uname -a 2>&1)
t_check "ssh goes to the forward's port on loopback as ssh_user (got: $out)" \
	test "$out" = "ssh -p 2222 -l student 127.0.0.1 uname -a"

out=$("$TV" list --json)
t_check "list --json carries the forwards (got: $out)" \
	grep -q "\"forwards\": \[\"udp:127.0.0.1:5353:53\", \"tcp:127.0.0.1:2222:22\"\]" <<<"$out"
out=$("$TV" status web)
t_check "status shows the NIC (got: $out)" grep -q "^net0: *user $mac forwards udp:127.0.0.1:5353:53 tcp:127.0.0.1:2222:22$" <<<"$out"

sed -i 's/"tcp::2222:22"/"tcp::99999:22"/' "$conf"
out=$("$TV" ssh web 2>&1)
t_check "a bad forward is named with its file and line (got: $out)" \
	grep -q "web.conf:[0-9]*: net\[0\].forward: forward \"tcp::99999:22\": host port \"99999\"" <<<"$out"

out=$("$TV" run --kernel /nonexistent --net user,forward=tcp::0:22 2>&1)
rc=$?
t_check "run --net with a bad forward is a usage error naming it (status $rc: $out)" \
	test $rc -eq 2 && grep -q 'host port "0"' <<<"$out"
out=$("$TV" run --kernel /nonexistent --net bridge 2>&1)
t_check "run --net with an unknown mode names the choices (got: $out)" \
	grep -q "expected user, lab or tap" <<<"$out"
t_done
