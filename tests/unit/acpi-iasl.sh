#!/usr/bin/env bash
# The ACPI tables as ACPICA's own tools read them: iasl disassembles every
# table without errors or warnings and the disassembled DSDT compiles back;
# acpiexec loads them and evaluates \_S5, the host bridge's _CRS and _PRT.
. "$(dirname "$0")/../lib.sh"

command -v iasl >/dev/null 2>&1 || t_skip_all "iasl not installed (Debian package acpica-tools)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$top_builddir/tests/unit/test-acpi" --dump "$dir" 4 || { t_fail "dump the tables"; t_done; }
cd "$dir" || exit 1
for t in XSDT FACP APIC MCFG DSDT; do
	if [ ! -f $t.dat ]; then
		t_fail "$t is in the dump"
		continue
	fi
	iasl -d $t.dat >$t.log 2>&1
	problems=$(grep -ihE 'error|warning|invalid|incorrect' $t.dsl $t.log)
	if [ -f $t.dsl ] && [ -z "$problems" ]; then
		t_ok "iasl reads $t cleanly"
	else
		t_fail "iasl reads $t cleanly: $problems $(cat $t.log)"
	fi
done
t_check "the MADT lists 4 local APICs" \
	test "$(grep -c 'Subtable Type : 00 \[Processor Local APIC\]' APIC.dsl)" -eq 4
t_check "the DSDT has \\_S5" grep -q 'Name (\\_S5, Package' DSDT.dsl
t_check "the DSDT has a PCI Express host bridge" grep -q 'EisaId ("PNP0A08")' DSDT.dsl
t_check "the DSDT has the CMOS clock on IRQ 8" \
	sh -c "grep -q 'EisaId (\"PNP0B00\")' DSDT.dsl && grep -A14 'Device (RTC)' DSDT.dsl | grep -A1 IRQNoFlags | grep -q '{8}'"
iasl -p recompiled DSDT.dsl >compile.log 2>&1
t_check "the disassembled DSDT compiles back without errors or warnings" \
	grep -q ' 0 Errors, 0 Warnings' compile.log
# ACPICA's interpreter (the one Linux runs) loads the tables and evaluates
# the objects a kernel asks for.
if command -v acpiexec >/dev/null 2>&1; then
	timeout 60 acpiexec -b 'evaluate \_S5; evaluate \_SB.PCI0._CRS; evaluate \_SB.PCI0._PRT; evaluate \_SB.MRES._CRS; evaluate \_SB.RTC._CRS' \
		FACP.dat DSDT.dat APIC.dat MCFG.dat >exec.log 2>&1
	t_check "acpiexec loads the DSDT" grep -q '1 ACPI AML tables successfully acquired and loaded' exec.log
	# (Its own hardware self-tests, "aetests", expect GPE and PM2 blocks
	# this machine does not have; their complaints are not about the tables.)
	problems=$(grep -iE 'error|warning|failure|AE_' exec.log | grep -v aetests)
	t_check "acpiexec finds no error in the tables ($problems)" test -z "$problems"
	s5=$(grep -A3 'Evaluation of \\_S5 returned' exec.log)
	t_check "acpiexec: \\_S5 is a package of 4 starting with 5" \
		test -n "$(echo "$s5" | grep 'Contains 4 Elements')" -a \
		-n "$(echo "$s5" | grep 'Integer\] = 0000000000000005')"
	t_check "acpiexec: _PRT holds 128 entries" grep -q 'Contains 128 Elements' exec.log
	t_check "acpiexec: the three _CRS evaluate" \
		test "$(grep -c 'Evaluation of .*_CRS returned object' exec.log)" -eq 3
fi
t_done
