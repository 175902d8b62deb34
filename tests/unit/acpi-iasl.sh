#!/usr/bin/env bash
# The ACPI tables as ACPICA's own tool reads them: iasl disassembles every
# table without errors or warnings, and the disassembled DSDT compiles back.
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
iasl -p recompiled DSDT.dsl >compile.log 2>&1
t_check "the disassembled DSDT compiles back without errors or warnings" \
	grep -q ' 0 Errors, 0 Warnings' compile.log
t_done
