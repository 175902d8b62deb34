#!/usr/bin/env bash
# Prints the path of Debian's linux-image-*-FLAVOUR package (FLAVOUR: amd64
# or cloud-amd64) in DIR, fetching it there with apt-get download when DIR
# holds none yet. Used by the Linux tests, tests/kvm-in-qemu.sh and bench/.
# With --vmlinuz it prints instead the kernel image itself, unpacked once
# from the package into DIR/root/boot. On failure it says why on standard
# error and exits 1.
#   usage: tests/linux/fetch-kernel.sh FLAVOUR DIR [--vmlinuz]
set -uo pipefail
flavour=$1 dir=$2 want=${3:-}
cached() { # the newest package of the flavour in DIR (amd64 leaves out cloud-amd64)
	ls "$dir"/linux-image-*-"$flavour"_*.deb 2>/dev/null |
		{ if [ "$flavour" = amd64 ]; then grep -v -- '-cloud-amd64_'; else cat; fi; } | tail -n1
}
mkdir -p "$dir" || { echo "cannot create $dir" >&2; exit 1; }
deb=$(cached)
if [ -z "$deb" ]; then
	pkg=$(apt-cache depends "linux-image-$flavour" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || { echo "apt knows no linux-image-$flavour (no Debian archive configured)" >&2; exit 1; }
	out=$(cd "$dir" && apt-get download -q "$pkg" 2>&1) ||
		{ echo "cannot fetch $pkg: $(echo "$out" | tail -n1)" >&2; exit 1; }
	deb=$(cached)
	[ -n "$deb" ] || { echo "apt-get download $pkg left no package in $dir" >&2; exit 1; }
fi
if [ "$want" != --vmlinuz ]; then
	echo "$deb"
	exit 0
fi
root=$dir/root
kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | tail -n1)
if [ -z "$kernel" ]; then
	rm -rf "$root" && mkdir -p "$root" || { echo "cannot create $root" >&2; exit 1; }
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" --wildcards './boot/vmlinuz-*' ||
		{ echo "cannot unpack the kernel from $deb" >&2; exit 1; }
	kernel=$(ls "$root"/boot/vmlinuz-* | tail -n1)
fi
echo "$kernel"
