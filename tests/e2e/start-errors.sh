#!/usr/bin/env bash
# Start-up errors reach the starting command before the VM process detaches,
# with exit status 1, and leave nothing running: a disk another VM holds, a
# kernel that is missing, a /dev/kvm that is not KVM.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
trap '"$TV" stop a --force >/dev/null 2>&1; t_cleanup' EXIT
mkdir -p "$TERMVISOR_HOME/vms"
"$QEMU_IMG" create -q -f qcow2 "$TERMVISOR_HOME/shared.qcow2" 16M || exit 1
for v in a b; do
	printf 'memory = "32M";\nkernel = "%s";\ndisks = ( { file = "%s"; } );\n' \
		"$demo" "$TERMVISOR_HOME/shared.qcow2" >"$TERMVISOR_HOME/vms/$v.conf"
done
stopped_b() { grep -q "^b .* stopped " <<<"$("$TV" list)"; }

"$TV" start a >/dev/null || exit 1
msg=$("$TV" start b 2>&1)
rc=$?
t_check "a disk in use by another VM fails the start with status 1" [ $rc -eq 1 ]
t_check "saying who holds it" grep -q "shared.qcow2: .*in use by PID" <<<"$msg"
t_check "and b is not left running" stopped_b
t_check "b's log says why too" grep -q "start failed: .*in use" "$TERMVISOR_HOME/data/b/vm.log"
"$TV" stop a --force >/dev/null

sed -i "s|^kernel = .*|kernel = \"$TERMVISOR_HOME/nothing-here\";|" "$TERMVISOR_HOME/vms/b.conf"
msg=$("$TV" start b 2>&1)
rc=$?
t_check "a missing kernel fails the start with status 1, naming it" \
	test $rc -eq 1 -a -n "$(grep nothing-here <<<"$msg")"
t_check "and nothing runs" stopped_b

if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	sed -i "s|^kernel = .*|kernel = \"$demo\";|" "$TERMVISOR_HOME/vms/b.conf"
	msg=$(unshare -m sh -c "mount --bind /dev/null /dev/kvm && '$TV' start b" 2>&1)
	rc=$?
	t_check "a /dev/kvm that is not KVM fails the start with status 1" [ $rc -eq 1 ]
	t_check "naming /dev/kvm" grep -q "/dev/kvm" <<<"$msg"
	t_check "and nothing runs" stopped_b
else
	echo "# the /dev/kvm check needs root and mount namespaces"
fi
t_done
