#!/usr/bin/env bash
# ACPI from inside a guest: tables found both ways with good checksums, one
# MADT processor per vCPU, SCI_EN set, the PM timer counting at 3.58 MHz
# against the CMOS clock, PM1_EN keeping its enables, and \_S5 written to PM1a_CNT
# powering the VM off with status 0.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/acpi.elf
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 60 "$TV" run --debug-exit --kernel "$G" --cpus 3 --memory 32M </dev/null >"$out" 2>&1
rc=$?
t_check "S5 written to PM1a_CNT powers off: status 0" [ "$rc" -eq 0 ]
t_check "no error from termvisor or the guest" \
	test -z "$(grep 'termvisor run:\|still running' "$out")"
t_check "every table checksum is right" grep -q '^tables ok$' "$out"
for t in FACP APIC MCFG; do
	t_check "the XSDT lists $t" grep -q "^table $t\$" "$out"
done
t_check "the MADT lists the 3 vCPUs" grep -q '^cpus 3$' "$out"
t_check "the SCI is IRQ 9" grep -q '^sci 9$' "$out"
t_check "SCI_EN reads 1 (no SMI handshake needed)" grep -q '^sci_en 1$' "$out"
t_check "PM1_EN keeps the power button and RTC enables written to it" \
	grep -q '^pm1_en 500$' "$out"
t_check "the PM timer never went backwards" grep -q '^timer backwards 0$' "$out"
t_check "\\_S5 holds sleep type 5" grep -q '^s5 5$' "$out"
ticks=$(sed -n 's/^timer ticks per second \([0-9]*\)$/\1/p' "$out")
echo "# PM timer ticks in one CMOS second: ${ticks:-none} (3579545 expected)"
t_check "the PM timer runs at 3.58 MHz (within 10%)" \
	test "${ticks:-0}" -ge 3221590 -a "${ticks:-0}" -le 3937500
t_done
