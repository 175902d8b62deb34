#!/usr/bin/env bash
# tap: a demo VM with `mode = "tap"` on a device root made with
# `ip tuntap add`, its host end addressed: the guest's ping is answered by the
# host's kernel, so frames pass both ways. Needs root and /dev/net/tun (the
# nested machine of tests/kvm-in-qemu.sh has both); the errors a user without
# them gets are tests/unit/test-labswitch's.
. "${top_srcdir:-$(dirname "$0")/../../..}/tests/lib.sh"
t_need_kvm
[ "$(id -u)" = 0 ] || t_skip_all "not root: cannot make a tap device"
[ -c /dev/net/tun ] || t_skip_all "no /dev/net/tun"
command -v ip >/dev/null || t_skip_all "ip (iproute2) is missing"
t_home
demo=$top_builddir/share/demo/demo.elf
ifname=tvtap$(($$ % 100000))
t_check "root makes the tap device with ip tuntap" ip tuntap add dev "$ifname" mode tap
trap 'ip link del "$ifname" 2>/dev/null; t_cleanup' EXIT
ip addr add 10.98.0.1/24 dev "$ifname" && ip link set "$ifname" up
mkdir -p "$TERMVISOR_HOME/vms"
printf 'kernel = "%s";\ncpus = 1;\nmemory = "64M";\nnet = ( { mode = "tap"; ifname = "%s"; } );\n' \
	"$demo" "$ifname" >"$TERMVISOR_HOME/vms/tap.conf"
out=$("$TV" status tap --json 2>&1)
t_check "the definition's NIC is on the tap device (got: $out)" grep -q '"nics": \[{"mode": "tap"' <<<"$out"
python3 "$top_srcdir/tests/demo/demo-net.py" tap --machine "$TV run tap" \
	--host-ip 10.98.0.1 || T_FAILED=1
t_done
