#!/usr/bin/env bash
# The demo guest's network stack against the peer's virtio-net device: QEMU's user-mode
# network (DHCP, a ping to the gateway, TCP and UDP echoes through host port forwards,
# datagrams both ways), then three QEMU guests on termvisor's lab switches through
# QEMU's -netdev dgram (two on lab1 talk, the one on lab2 sees nothing).
. "$top_srcdir/tests/demo/qemu-pc.sh"
pc="$qemu $accel -M pc -bios $bios -smp 1 -m 64 -display none -monitor none
	-chardev stdio,id=con,signal=off -serial chardev:con -kernel $demo"
nic="virtio-net-pci,disable-legacy=on,romfile="
ports=$(python3 -c 'import socket
for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, k); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read -r tcp udp recv <<<"$(echo $ports)"
user="-netdev user,id=n0,hostfwd=tcp:127.0.0.1:$tcp-:7,hostfwd=udp:127.0.0.1:$udp-:9"
user="$user,hostfwd=udp:127.0.0.1:$recv-:5555 -device $nic,netdev=n0"
python3 "$top_srcdir/tests/demo/demo-net.py" user --machine "$pc $user" \
	--tcp-port "$tcp" --udp-port "$udp" --recv-port "$recv" || T_FAILED=1

# The lab networks: their switches, as a VM would start them.
pids=
for n in lab1 lab2; do
	"$TV" lab-switch --linger 0 $n >"$TERMVISOR_HOME/$n.log" 2>&1 &
	pids="$pids $!"
done
trap 'kill $pids 2>/dev/null; t_cleanup' EXIT
for _ in $(seq 100); do
	[ -S "$TERMVISOR_HOME/run/lab/lab1.sock" ] && [ -S "$TERMVISOR_HOME/run/lab/lab2.sock" ] && break
	sleep 0.1
done
member() { # name network last-byte-of-mac
	echo "$pc -netdev dgram,id=n0,local.type=unix,local.path=$TERMVISOR_HOME/$1.sock,remote.type=unix,remote.path=$TERMVISOR_HOME/run/lab/$2.sock -device $nic,netdev=n0,mac=52:54:00:00:50:$3"
}
python3 "$top_srcdir/tests/demo/demo-net.py" lab --idle-ping --a "$(member a lab1 01)" \
	--b "$(member b lab1 02)" --c "$(member c lab2 03)" || T_FAILED=1
kill $pids 2>/dev/null
wait $pids 2>/dev/null
t_check "the lab1 switch counted the frames it forwarded" \
	grep -Eq 'lab network lab1: [1-9][0-9]* frames in' "$TERMVISOR_HOME/lab1.log"
sed 's/^/# /' "$TERMVISOR_HOME"/lab*.log
t_done
