#!/bin/sh
# Timer interrupts: the PIT through IOAPIC pin 2 (the IRQ0 -> GSI 2 route the
# MADT describes), the LAPIC timer, and its TSC-deadline mode (advertised in
# CPUID.1:ECX[24], which KVM leaves to userspace).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
out=$(timeout 30 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/timer.elf" --memory 32M </dev/null)
rc=$?
echo "$out" | sed 's/^/# /'
t_check "exit status 0" [ "$rc" -eq 0 ]
t_check "20 PIT interrupts" grep -q "pit ticks: 20" <<EOT
$out
EOT
t_check "20 LAPIC timer interrupts" grep -q "lapic ticks: 20" <<EOT
$out
EOT
t_check "CPUID advertises the TSC-deadline timer; 20 deadline interrupts" \
	grep -q "tsc-deadline: advertised, 20 interrupts" <<EOT
$out
EOT
t_done
