#!/usr/bin/env bash
# A distribution kernel boots: Debian's linux-image-*-cloud-amd64 bzImage
# under `termvisor run --cpus 2 --memory 512M`. On the serial console: the
# banner, our command line, an e820 map totalling the memory asked for, every
# ACPI table found with no checksum or table complaint, and both vCPUs
# allowed from the MADT. The package is fetched once with apt-get download and
# kept under the build directory.
#
# Where guest kernel code is emulated (nested KVM without VMX), the kernel
# stops later in early boot with an emulation failure; the test stops the VM
# once it has seen what it checks, and accepts that exit if it comes first.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
t_home

cache=$(t_linux_cache)
kernel=$("$top_srcdir/tests/linux/fetch-kernel.sh" cloud-amd64 "$cache" --vmlinuz \
	2>"$TERMVISOR_HOME/fetch.err") || t_skip_all "$(cat "$TERMVISOR_HOME/fetch.err")"

append="console=ttyS0 earlyprintk=ttyS0 panic=-1 tvcheck=debian-cloud"
log=$TERMVISOR_HOME/console.log
start=$(date +%s)
timeout 300 "$TV" run --kernel "$kernel" --cpus 2 --memory 512M --append "$append" \
	</dev/null >"$log" 2>&1 &
pid=$!
# Done once the last line checked has come (it follows the ACPI tables).
while kill -0 $pid 2>/dev/null && ! grep -q 'smpboot: Allowing' "$log"; do
	sleep 0.5
done
if kill -0 $pid 2>/dev/null; then
	kill $pid
	wait $pid
	status="stopped by the test after $(($(date +%s) - start)) s"
else
	wait $pid
	rc=$?
	status="exit status $rc after $(($(date +%s) - start)) s"
	# 4: the guest crashed, which is the emulation failure on hosts
	# without VMX; anything else (host error, triple fault) is a failure.
	t_check "termvisor ended with a guest crash or not at all ($status)" test $rc -eq 4
fi
echo "# $(basename "$kernel"): $status"

t_check "the vmlinux was extracted on the host into the kernel cache" \
	test -n "$(find "$TERMVISOR_HOME" -name 'vmlinux-*' ! -name '*.nopvh')"
t_check "the kernel prints its banner" grep -q '^\[ *[0-9.]*\] Linux version [0-9]' "$log"
t_check "the kernel got our command line" grep -qF "Command line: $append" "$log"

# e820: usable RAM adds up to the 512 MiB asked for, less the legacy hole
# below 1 MiB.
usable=$(sed -n 's/.*BIOS-e820: \[mem 0x\([0-9a-f]*\)-0x\([0-9a-f]*\)\] usable.*/\1 \2/p' "$log" |
	while read -r a b; do echo $((0x$b - 0x$a + 1)); done | awk '{ s += $1 } END { print s + 0 }')
echo "# e820 usable: $usable bytes"
t_check "the e820 map holds 511-512 MiB of usable RAM" \
	test "$usable" -gt $((511 << 20)) -a "$usable" -le $((512 << 20))

for t in RSDP XSDT FACP DSDT FACS APIC MCFG; do
	t_check "ACPI table $t found" grep -q "ACPI: $t 0x" "$log"
done
complaints=$(grep -E 'ACPI (BIOS )?(Error|Warning)|Incorrect checksum|32/64X|ACPI.*(invalid|Invalid|bad|mismatch)' "$log")
[ -z "$complaints" ] || echo "$complaints" | sed 's/^/# /'
t_check "no ACPI error, warning or checksum complaint" test -z "$complaints"
t_check "SMP comes from the MADT" grep -q 'ACPI: Using ACPI (MADT) for SMP configuration' "$log"
t_check "smpboot: Allowing 2 CPUs" grep -q 'smpboot: Allowing 2 CPUs' "$log"
if [ $T_FAILED -ne 0 ]; then
	echo "# last console lines:"
	tail -n 15 "$log" | sed 's/^/# /'
fi
t_done
