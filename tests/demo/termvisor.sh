#!/usr/bin/env bash
# The demo guest boots under `termvisor run` and every shell command works through the
# serial console (driven through a pseudo-terminal by demo-shell.py).
. "$top_srcdir/tests/lib.sh"
t_need_kvm
"$TV" run --help >/dev/null 2>&1 || t_skip_all "termvisor has no run command yet"
t_home
demo=$top_builddir/share/demo/demo.elf
disk=$TERMVISOR_HOME/demo.qcow2
raw=$TERMVISOR_HOME/second.raw
"$QEMU_IMG" create -q -f qcow2 "$disk" 16M || exit 1
truncate -s 8M "$raw" || exit 1
python3 "$top_srcdir/tests/demo/demo-shell.py" --kernel "$demo" --disk "$disk" --cpus 2 \
	--extra-disk "$raw" --cmdline "demo.test=1 console=ttyS0" -- \
	"$TV" run --kernel {kernel} --cpus {cpus} --memory 64M --disk {disk} \
	--disk {disk2},format=raw --append {cmdline} --on-reboot restart || exit 1
# The shell on hvc0 (the last console= of the command line): what `run` shows first.
hvcdisk=$TERMVISOR_HOME/hvc.qcow2
"$QEMU_IMG" create -q -f qcow2 "$hvcdisk" 16M || exit 1
python3 "$top_srcdir/tests/demo/demo-shell.py" --kernel "$demo" --disk "$hvcdisk" --cpus 2 \
	--cmdline "console=ttyS0 console=hvc0" --hvc -- \
	"$TV" run --kernel {kernel} --cpus {cpus} --memory 64M --disk {disk} --append {cmdline} || exit 1
# A disk that holds something else in sector 0 (here, a partition table's signature).
printf 'an MBR of someone else\x55\xaa' >"$raw" && truncate -s 1M "$raw" || exit 1
python3 "$top_srcdir/tests/demo/demo-shell.py" --kernel "$demo" --disk "$raw" --foreign-disk -- \
	"$TV" run --kernel {kernel} --memory 64M --disk {disk},format=raw
