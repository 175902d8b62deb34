#!/usr/bin/env bash
# The demo guest against the peer: the same shell session on QEMU's PC machine (booted
# through PVH by qboot, which starts in a fraction of SeaBIOS's time), so the guest is
# checked on a machine other than ours; then the ACPI power button.
. "$top_srcdir/tests/demo/qemu-pc.sh"
disk=$TERMVISOR_HOME/demo.qcow2
"$QEMU_IMG" create -q -f qcow2 "$disk" 16M || exit 1
pc=("$qemu" $accel -M pc -bios "$bios" -smp 2 -m 64 -display none -net none
	-chardev stdio,id=con,signal=off -serial chardev:con -kernel "$demo")
shell=("$top_srcdir/tests/demo/demo-shell.py" --kernel "$demo" --cpus 2)

python3 "${shell[@]}" --disk "$disk" --cmdline "demo.test=1 console=ttyS0" -- \
	"${pc[@]}" -append {cmdline} -monitor none \
	-drive if=none,id=d0,file={disk},format=qcow2 \
	-device virtio-blk-pci,disable-legacy=on,drive=d0 || exit 1
mon=$TERMVISOR_HOME/monitor.sock
python3 "${shell[@]}" --qemu-monitor "$mon" -- \
	"${pc[@]}" -monitor "unix:$mon,server=on,wait=off"
