#!/usr/bin/env bash
# Boot benchmark, termvisor against qemu-system-x86_64 -M microvm, side by side:
# (a) process start to a minimal PVH guest's first byte, (b) process start to
# `Linux version` from Debian's cloud kernel as a bzImage and as its vmlinux,
# (c) resident memory beyond guest RAM, (d) process start to the login prompt
# of the VM `termvisor create --template debian-minimal` makes (Debian's cloud
# kernel, its initramfs, a busybox root on a qcow2 disk), termvisor against
# QEMU -M microvm,pcie=on and -M q35. Results go into bench/RESULTS.md.
#
# usage: bench/boot.sh [BUILD_DIR] [RUNS] [LINUX_RUNS] [LOGIN_RUNS]
#        (defaults: build 15 3 5)
# The kernel package is the one tests/linux/debian-cloud.sh fetched into the
# build directory; it is fetched here with apt-get download when missing.
# BOOT_NESTED=1 names the figures as taken inside tests/kvm-in-qemu.sh (KVM on
# an emulated CPU) and keeps them in a section of their own:
#   KVM_IN_QEMU_COMMAND='BOOT_NESTED=1 ../bench/boot.sh . 15 5' tests/kvm-in-qemu.sh
# BOOT_PARTS=engine runs (a) to (c), BOOT_PARTS=login only (d) (default: all).
# The debian-minimal VM is made once and kept in BUILD_DIR/bench/debian-minimal;
# BOOT_PREPARE=1 only makes it (and fetches the kernel), so that a run inside
# the emulated machine does not spend its time there:
#   BOOT_PREPARE=1 bench/boot.sh build
#   KVM_IN_QEMU_COMMAND='BOOT_NESTED=1 BOOT_PARTS=login ../bench/boot.sh .' tests/kvm-in-qemu.sh
# (d) has no plain -M microvm: its devices are on virtio-mmio, whose driver is
# a module the template's initramfs does not load, so that guest never finds
# its root disk; pcie=on gives microvm a PCI host for the same PCI devices.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
runs=${2:-15}
linux_runs=${3:-3}
login_runs=${4:-5}
parts=${BOOT_PARTS:-all}
case $parts in all | engine | login) ;; *) echo "bench/boot.sh: BOOT_PARTS=$parts: expected all, engine or login" >&2; exit 2 ;; esac
tv=$build/termvisor
[ -x "$tv" ] || { echo "bench/boot.sh: no $tv (build first)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench/boot.sh: qemu-system-x86_64 missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TERMVISOR_HOME=$tmp/home

cache=$build/tests/linux/cache
deb=$("$top/tests/linux/fetch-kernel.sh" cloud-amd64 "$cache")

# (d)'s guest: the template's VM, made by termvisor itself, again when the
# template or the kernel package is newer than the copy kept.
login_home=$build/bench/debian-minimal
login_dir=$login_home/data/deb
if [ "$parts" != engine ] || [ -n "${BOOT_PREPARE:-}" ]; then
	if [ ! -f "$login_dir/disk.qcow2" ] || [ "$top/share/templates/debian-minimal/build.sh" -nt "$login_dir/disk.qcow2" ] ||
		[ "$deb" -nt "$login_dir/disk.qcow2" ]; then
		rm -rf "$login_home"
		mkdir -p "$login_home/cache/debian-packages"
		cp "$deb" "$login_home/cache/debian-packages/"
		TERMVISOR_HOME=$login_home "$tv" create deb --template debian-minimal >"$tmp/create.log" 2>&1 ||
			{ cat "$tmp/create.log" >&2; echo "bench/boot.sh: termvisor create --template debian-minimal failed" >&2; exit 1; }
	fi
	login_cmdline=$(sed -n 's/^cmdline = "\(.*\)";$/\1/p' "$login_home/vms/deb.conf")
	login_memory=$(sed -n 's/^memory = "\([0-9]*\)M";$/\1/p' "$login_home/vms/deb.conf")
	login_cpus=$(sed -n 's/^cpus = \([0-9]*\);$/\1/p' "$login_home/vms/deb.conf")
	[ -n "$login_cmdline" ] && [ -n "$login_memory" ] && [ -n "$login_cpus" ] ||
		{ echo "bench/boot.sh: cannot read cmdline, memory (in M) and cpus from $login_home/vms/deb.conf" >&2; exit 1; }
fi
if [ -n "${BOOT_PREPARE:-}" ]; then
	echo "bench/boot.sh: the debian-minimal VM is in $login_dir"
	exit 0
fi

# Replaces the section between <!-- TAG begin/end --> in bench/RESULTS.md
# with the file given (or appends it).
put_section() { # tag, file
	python3 - "$top/bench/RESULTS.md" "$2" "$1" <<'PY'
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
}
nested_words() {
	echo "on the KVM of a QEMU machine whose CPU is emulated (TCG with SVM), $(nproc) vCPUs there,"
	echo "kernel $(uname -r). Every instruction is translated, the host's own included"
	echo "(engine start-up too), and guest exits are dear; kernel code is not singled out"
	echo "as on the nested host above. $(qemu-system-x86_64 --version | head -n1)."
}

if [ "$parts" != login ]; then
	gcc -nostdlib -static -no-pie -Wl,-N -Wl,-e,start -Wl,-Ttext=0x100000 -Wl,--build-id=none \
		-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -o "$tmp/first-byte.elf" "$top/bench/first-byte.S"

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
			nested_words
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
	put_section "$tag" "$section"
fi

if [ "$parts" != engine ]; then
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	table=$(python3 "$top/bench/boot.py" --termvisor "$tv" --login "$login_dir" \
		--login-runs "$login_runs" --cmdline "$login_cmdline" --memory "$login_memory" \
		--cpus "$login_cpus" --scratch "$tmp")
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)
	echo "$table"
	tag=termvisor-boot-login
	[ -z "${BOOT_NESTED:-}" ] || tag=termvisor-boot-login-nested
	{
		echo "<!-- $tag begin -->"
		if [ -n "${BOOT_NESTED:-}" ]; then
			echo "## Linux to its login prompt inside tests/kvm-in-qemu.sh (KVM on an emulated CPU)"
			echo
			echo "Measured $(date -u +%Y-%m-%d) by \`bench/boot.sh\` with BOOT_NESTED=1: the three machines"
			nested_words
		else
			echo "## Linux to its login prompt (bench/boot.sh)"
			echo
			echo "Measured $(date -u +%Y-%m-%d) by \`bench/boot.sh\` on $(nproc) CPUs ($(uname -r)),"
			echo "$(qemu-system-x86_64 --version | head -n1)."
		fi
		echo "The VM \`termvisor create --template debian-minimal\` made: kernel $(basename "$deb"),"
		echo "the template's initramfs (it loads virtio_pci and virtio_blk), its qcow2 root disk, copied"
		echo "afresh for every boot. Each machine has virtio-blk, virtio-console and virtio-rng on PCI;"
		echo "timed from process start until \`login: \` arrives on the serial console. Runs alternate"
		echo "between the machines; load average $load_before at the start, $load_after at the end."
		echo
		echo "$table"
		echo "<!-- $tag end -->"
	} >"$tmp/login.md"
	put_section "$tag" "$tmp/login.md"
fi
echo "bench/boot.sh: results in bench/RESULTS.md"
