#!/bin/sh
# CMOS RTC interrupts on IRQ 8: flags read-to-clear, periodic, update-ended
# and alarm interrupts as register B enables them, none while disabled.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
out=$(timeout 60 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/rtc.elf" --memory 32M </dev/null)
rc=$?
echo "$out" | sed 's/^/# /'
check() { # description, pattern
	t_check "$1" grep -q "$2" <<EOT
$out
EOT
}
t_check "exit status 0" [ "$rc" -eq 0 ]
check "PF is set without PIE, and raises no IRQF" "pf without pie: set, no irqf"
check "reading register C clears it" "c after read: 0"
check "no interrupt while none is enabled" "irqs while disabled: 0"
check "periodic interrupts (PIE) with IRQF and PF" "periodic irqs: 32, c c0"
check "an update-ended interrupt (UIE) as the second changes" "update irq: yes, c 90, second advanced"
check "an alarm interrupt (AIE) at the alarm second" "alarm irq: yes, c a0, at the alarm second: yes"
check "no interrupt after disabling them" "irqs after disabling: 0"
t_done
