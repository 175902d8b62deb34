#!/usr/bin/env bash
# termvisor autostart starts exactly the VMs marked autostart = true, leaves
# running ones alone, and reports a VM that cannot start without giving up on
# the others.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
trap 'for v in a b c; do "$TV" stop $v --force >/dev/null 2>&1; done; t_cleanup' EXIT
mkdir -p "$TERMVISOR_HOME/vms"
def() { # name autostart kernel
	printf 'memory = "32M";\nkernel = "%s";\nautostart = %s;\n' "$3" "$2" \
		>"$TERMVISOR_HOME/vms/$1.conf"
}
def a true "$demo"
def b false "$demo"
def c true "$TERMVISOR_HOME/missing-kernel"

out=$("$TV" autostart 2>&1)
rc=$?
t_check "autostart reports the VM that could not start (exit 1)" [ $rc -eq 1 ]
t_check "naming it" grep -q "^termvisor autostart: c: " <<<"$out"
list=$("$TV" list)
t_check "the autostart VM runs" grep -q "^a .* running " <<<"$list"
t_check "the other one does not" grep -q "^b .* stopped " <<<"$list"
t_check "the broken one is not left half-started" grep -q "^c .* stopped " <<<"$list"
rm "$TERMVISOR_HOME/vms/c.conf"
out=$("$TV" autostart 2>&1)
t_check "a second run leaves the running VM alone and succeeds" \
	grep -q "VM a already runs" <<<"$out"
t_check "the unit file runs termvisor autostart" \
	grep -q "^ExecStart=termvisor autostart" "$top_srcdir/share/systemd/termvisor-autostart.service"
t_done
