# Builds a Debian 12 guest with debootstrap in the current directory (the new VM's
# data directory): kernel, initrd and disk.qcow2. Run by `termvisor create
# --template debian`. Needs root; any failure exits non-zero and termvisor then
# removes the half-made VM.
set -eu

say() { printf 'termvisor: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing: install the Debian package $2"; }

[ "$(id -u)" -eq 0 ] || fail "the debian template runs debootstrap, which needs root: run termvisor create with sudo"
need debootstrap debootstrap
need mkfs.ext4 e2fsprogs

suite=${TV_DEBIAN_SUITE:-bookworm}
mirror=${TV_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d "${TMPDIR:-/tmp}/tv-template.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

say "debootstrap $suite from $mirror (this takes a few minutes)"
debootstrap --variant=minbase \
	--include=systemd-sysv,udev,linux-image-cloud-amd64,ifupdown,isc-dhcp-client,iproute2,less,nano \
	"$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	fail "debootstrap failed: $(tail -n 3 "$work/debootstrap.log")"

say "configuring"
echo "$TV_NAME" >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n' \
	>"$root/etc/network/interfaces"
chroot "$root" passwd -d root >/dev/null
cp "$(ls "$root"/boot/vmlinuz-* | head -n 1)" kernel
cp "$(ls "$root"/boot/initrd.img-* | head -n 1)" initrd

size=${TV_DISK_SIZE:-4294967296}
say "making disk.qcow2 ($((size / 1048576))M, ext4)"
mkfs.ext4 -q -F -L root -d "$root" "$work/root.img" "$((size / 1024))k"
"$TV_TERMVISOR" img convert -f raw -O qcow2 "$work/root.img" disk.qcow2
say "done; log in as root (no password: set one with passwd)"
