# Sourced by the demo guest's tests against QEMU: skips without KVM or QEMU's PC
# machine and qboot; sets $qemu, $bios and $demo, and a private TERMVISOR_HOME.
. "$top_srcdir/tests/lib.sh"
t_need_kvm
qemu=$(command -v qemu-system-x86_64) || t_skip_all "qemu-system-x86_64 is not installed"
bios=/usr/share/qemu/qboot.rom
[ -f "$bios" ] || t_skip_all "$bios is missing"
t_home
demo=$top_builddir/share/demo/demo.elf
