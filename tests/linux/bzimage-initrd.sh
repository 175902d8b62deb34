#!/usr/bin/env bash
# The bzImage's own entry (--no-extract) with an initrd: Linux runs from its
# preferred address (16 MiB) and its decompressor copies itself to the top of
# [16 MiB, 16 MiB + init_size) (67.5 MiB for Debian 12's cloud kernel), so an
# initrd there is overwritten before the kernel reads it ("Initramfs
# unpacking failed: invalid magic", as QEMU's loader shows in 68M).
#  - 96M of RAM, a 40 MiB initrd: the old placement (top of RAM, above 1 MiB
#    + init_size) put it at 56 MiB, in that range; it fits nowhere clear of
#    the kernel, so termvisor refuses to start, saying why.
#  - 128M, a 1 MiB initramfs: it goes to the top of RAM, clear of the kernel;
#    its init runs and finds its file intact (md5sum).
# The place between the loaded image and 16 MiB (for a small initrd when only
# that is free) is checked by tests/unit/test-boot: this kernel needs more
# than the 69M of RAM that case allows to reach its init.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
t_home
[ -x /bin/busybox ] || t_skip_all "/bin/busybox is missing (the Debian package busybox-static)"
command -v cpio >/dev/null || t_skip_all "cpio is missing"

cache=$(t_linux_cache)
kernel=$("$top_srcdir/tests/linux/fetch-kernel.sh" cloud-amd64 "$cache" --vmlinuz \
	2>"$TERMVISOR_HOME/fetch.err") || t_skip_all "$(cat "$TERMVISOR_HOME/fetch.err")"

ir=$TERMVISOR_HOME/ir
mkdir -p "$ir/bin"
cp /bin/busybox "$ir/bin/"
head -c 65536 /dev/urandom >"$ir/pad"
sum=$(md5sum <"$ir/pad" | cut -d' ' -f1)
cat >"$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox echo "tvinit: pad $(/bin/busybox md5sum /pad)"
/bin/busybox poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -9) >"$TERMVISOR_HOME/initrd.gz"
echo "# initramfs: $(stat -c %s "$TERMVISOR_HOME/initrd.gz") bytes, pad md5 $sum"

log=$TERMVISOR_HOME/console.log
truncate -s 40M "$TERMVISOR_HOME/big.img"
timeout 120 "$TV" run --no-extract --kernel "$kernel" --initrd "$TERMVISOR_HOME/big.img" \
	--memory 96M --on-reboot exit --append "console=ttyS0 panic=-1" </dev/null >"$log" 2>&1
rc=$?
grep -E "termvisor|Initramfs|RAMDISK|Kernel panic" "$log" | head -n 5 | sed 's/^/# /'
t_check "96M, 40 MiB initrd: refused (status $rc)" [ "$rc" -eq 1 ]
t_check "the message says the initrd does not fit beside the running kernel" \
	grep -q "initrd .*big.img: 40M .* does not fit in guest memory (96M) beside the kernel, which runs at 16-68 MiB" "$log"

start=$(date +%s)
timeout 300 "$TV" run --no-extract --kernel "$kernel" --initrd "$TERMVISOR_HOME/initrd.gz" \
	--memory 128M --on-reboot exit --append "console=ttyS0 panic=-1" </dev/null >"$log" 2>&1
rc=$?
echo "# 128M: exit status $rc after $(($(date +%s) - start)) s"
grep -E "RAMDISK|Initramfs|Kernel panic" "$log" | sed 's/^/# /'
t_check "128M, 1 MiB initrd: the guest powers off (status $rc)" [ "$rc" -eq 0 ]
t_check "its init ran and read its file intact" grep -q "tvinit: pad $sum" "$log"
if [ $T_FAILED -ne 0 ]; then
	echo "# last console lines:"
	tail -n 20 "$log" | sed 's/^/# /'
fi
t_done
