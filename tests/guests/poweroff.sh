#!/bin/sh
# ACPI power-off: the guest walks the tables (RSDP, XSDT, FADT, DSDT with
# checksums), writes SLP_TYP(S5) | SLP_EN to PM1a_CNT, and the run ends
# with status 0 (a guest that kept running would end with 64 + 7).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
for n in 1 3; do
	out=$(timeout 30 "$TV" run --debug-exit --kernel "$top_builddir/tests/guests/poweroff.elf" --cpus $n \
		--memory 32M </dev/null)
	rc=$?
	echo "$out" | sed 's/^/# /'
	t_check "$n cpus: tables found, PM1a_CNT at 0x604" grep -q "PM1a_CNT 604, S5 type" <<EOT
$out
EOT
	t_check "$n cpus: powered off with status 0" [ "$rc" -eq 0 ]
done
t_done
