# Sourced by the demo guest's tests against QEMU: skips without QEMU's PC machine
# and qboot; sets $qemu, $accel, $bios and $demo, and a private TERMVISOR_HOME.
# QEMU runs with KVM where the host has it and with TCG (its own emulated CPU)
# where it has not: either way the guest is checked on a machine other than
# termvisor's, and on a host without /dev/kvm that costs seconds, not the
# minutes of QEMU's KVM inside the nested machine.
. "$top_srcdir/tests/lib.sh"
qemu=$(command -v qemu-system-x86_64) || t_skip_all "qemu-system-x86_64 is not installed"
bios=/usr/share/qemu/qboot.rom
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=-enable-kvm || accel="-accel tcg"
[ -f "$bios" ] || t_skip_all "$bios is missing"
t_home
demo=$top_builddir/share/demo/demo.elf
