#!/usr/bin/env bash
# Many VMs at once (bench/many.py says what it measures): N demo guests of
# 64 MiB started together, termvisor against QEMU -M microvm, in one run.
# Needs /dev/kvm; here, inside the nested machine (it needs more than its
# default 4 GiB of memory for 32 guests and 32 QEMU processes):
#   KVM_IN_QEMU_MEM=8G KVM_IN_QEMU_COMMAND='MANY_NESTED=1 ../bench/many.sh . 32' \
#     tests/kvm-in-qemu.sh
# usage: bench/many.sh [BUILD_DIR] [N]   (default: build 32)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
n=${2:-32}
[ -c /dev/kvm ] || { echo "bench/many.sh: needs /dev/kvm (see the header for the nested machine)" >&2; exit 1; }
[ -f "$build/share/demo/demo.elf" ] || make -C "$build" share/demo/demo.elf >/dev/null
echo "# $(nproc) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB${MANY_NESTED:+, inside tests/kvm-in-qemu.sh}"
exec python3 "$top/bench/many.py" "$build/termvisor" "$build/share/demo/demo.elf" "$n"
