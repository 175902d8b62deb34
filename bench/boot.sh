#!/usr/bin/env bash
# Boot benchmark, termvisor against qemu-system-x86_64 -M microvm, side by side:
# (a) process start to a minimal PVH guest's first byte, (b) process start to
# `Linux version` from Debian's cloud kernel as a bzImage and as its vmlinux,
# (c) resident memory beyond guest RAM. Results go into bench/RESULTS.md.
#
# usage: bench/boot.sh [BUILD_DIR] [RUNS] [LINUX_RUNS]   (defaults: build 15 3)
# The kernel package is the one tests/linux/debian-cloud.sh fetched into the
# build directory; it is fetched here with apt-get download when missing.
# BOOT_NESTED=1 names the figures as taken inside tests/kvm-in-qemu.sh (KVM on
# an emulated CPU) and keeps them in a section of their own:
#   KVM_IN_QEMU_COMMAND='BOOT_NESTED=1 ../bench/boot.sh . 15 5' tests/kvm-in-qemu.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
runs=${2:-15}
linux_runs=${3:-3}
tv=$build/termvisor
[ -x "$tv" ] || { echo "bench/boot.sh: no $tv (build first)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench/boot.sh: qemu-system-x86_64 missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TERMVISOR_HOME=$tmp/home

gcc -nostdlib -static -no-pie -Wl,-N -Wl,-e,start -Wl,-Ttext=0x100000 -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -o "$tmp/first-byte.elf" "$top/bench/first-byte.S"

cache=$build/tests/linux/cache
deb=$("$top/tests/linux/fetch-kernel.sh" cloud-amd64 "$cache")
mkdir -p "$tmp/root"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/root" --wildcards './boot/vmlinuz-*'
bzimage=$(ls "$tmp"/root/boot/vmlinuz-* | tail -n1)

# The vmlinux: what termvisor extracts from the bzImage into its cache (a
# separate cache, so the timed runs start cold).
TERMVISOR_HOME=$tmp/prep "$tv" run --kernel "$bzimage" --memory 512M </dev/null >/dev/null 2>&1 &
prep=$!
vmlinux=
for _ in $(seq 1 300); do
	vmlinux=$(find "$tmp/prep" -name 'vmlinux-*' ! -name '*.nopvh' 2>/dev/null | head -n1 || true)
	[ -n "$vmlinux" ] && break
	sleep 0.1
done
kill $prep 2>/dev/null || true
wait $prep 2>/dev/null || true
[ -n "$vmlinux" ] || { echo "bench/boot.sh: termvisor extracted no vmlinux from $bzimage" >&2; exit 1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
table=$(python3 "$top/bench/boot.py" --termvisor "$tv" --guest "$tmp/first-byte.elf" \
	--bzimage "$bzimage" --vmlinux "$vmlinux" --runs "$runs" --linux-runs "$linux_runs")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$table"

section=$tmp/section.md
tag=termvisor-boot
[ -z "${BOOT_NESTED:-}" ] || tag=termvisor-boot-nested
{
	echo "<!-- $tag begin -->"
	if [ -n "${BOOT_NESTED:-}" ]; then
		echo "## Boot inside tests/kvm-in-qemu.sh (KVM on an emulated CPU)"
		echo
		echo "Measured $(date -u +%Y-%m-%d) by \`bench/boot.sh\` with BOOT_NESTED=1: both engines"
		echo "on the KVM of a QEMU machine whose CPU is emulated (TCG with SVM), $(nproc) vCPUs there,"
		echo "kernel $(uname -r). Every instruction is translated, the host's own included"
		echo "(engine start-up too), and guest exits are dear; kernel code is not singled out"
		echo "as on the nested host above. $(qemu-system-x86_64 --version | head -n1)."
		echo "Kernel: $(basename "$bzimage") from $(basename "$deb"). Runs alternate between"
		echo "the two engines; load average there $load_before at the start, $load_after at the end."
	else
		echo "## Boot: engine start-up, Linux, memory (bench/boot.sh)"
		echo
		echo "Measured $(date -u +%Y-%m-%d) by \`bench/boot.sh\` on $(nproc) CPUs ($(uname -r)),"
		echo "$(qemu-system-x86_64 --version | head -n1). Kernel: $(basename "$bzimage") from"
		echo "$(basename "$deb"). Runs alternate between the two machines; the host's KVM is"
		echo "nested (guest kernel code emulated), and other work shared the machine: load"
		echo "average $load_before at the start, $load_after at the end."
	fi
	echo
	echo "$table"
	echo "<!-- $tag end -->"
} >"$section"
python3 - "$top/bench/RESULTS.md" "$section" "$tag" <<'PY'
import re, sys
path, section, tag = sys.argv[1], open(sys.argv[2]).read().rstrip("\n"), sys.argv[3]
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmark results\n"
pat = re.compile(r"<!-- %s begin -->.*?<!-- %s end -->" % (tag, tag), re.S)
text = pat.sub(lambda m: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "bench/boot.sh: results in bench/RESULTS.md"
