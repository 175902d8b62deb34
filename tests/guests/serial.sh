#!/bin/sh
# Serial console: guest output, the PVH start info (command line, memory
# map), input read by polling and through the RX/THRE interrupts.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/serial.elf
out=$(printf 'hello world\nsecond line\nquit\n' |
	timeout 30 "$TV" run --debug-exit --kernel "$G" --memory 64M --append "console=ttyS0 tv.test=1")
rc=$?
echo "$out" | sed 's/^/# /'
t_check "exit status 0 after the guest finished" [ "$rc" -eq 0 ]
t_check "guest output reaches stdout" grep -q "hello from the serial guest" <<EOT
$out
EOT
t_check "command line reaches the guest" grep -q "cmdline: console=ttyS0 tv.test=1" <<EOT
$out
EOT
# 64M minus the reserved [0x9fc00, 1M) hole: 65536 - 385 KiB.
t_check "memory map covers the RAM given" grep -q "memmap: .* 65151 KiB RAM" <<EOT
$out
EOT
t_check "polled input echoed" grep -q "echo (polled): HELLO WORLD" <<EOT
$out
EOT
t_check "THRE interrupt raised when enabled" grep -q "thre interrupt: yes" <<EOT
$out
EOT
t_check "interrupt-driven input echoed" grep -q "echo (interrupt): SECOND LINE" <<EOT
$out
EOT
t_check "RX interrupts delivered" grep -q "bye (rx interrupts: yes)" <<EOT
$out
EOT
t_done
