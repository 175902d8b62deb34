#!/bin/sh
# SMP: every AP started with INIT-SIPI-SIPI reports its LAPIC id, which must
# match the APIC id CPUID gives it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/smp.elf
for n in 1 4; do
	out=$(timeout 60 "$TV" run --debug-exit --kernel "$G" --cpus $n --memory 32M </dev/null)
	rc=$?
	echo "$out" | sed 's/^/# /'
	t_check "$n cpus: exit status 0" [ "$rc" -eq 0 ]
	t_check "$n cpus: the topology (CPUID leaf 0xb) says $n" grep -q "bsp: lapic id 0, $n cpus" <<EOT
$out
EOT
	t_check "$n cpus: all up" grep -q "smp: $n of $n cpus up" <<EOT
$out
EOT
	i=1
	while [ $i -lt $n ]; do
		t_check "$n cpus: AP with APIC id $i reports it" grep -q "lapic id $i, cpuid apic id $i\$" <<EOT
$out
EOT
		i=$((i + 1))
	done
done
t_done
