# Builds a minimal Debian guest in the current directory (the new VM's data
# directory): kernel, initrd and disk.qcow2. Run by `termvisor create --template
# debian-minimal`, with TV_NAME, TV_CACHE_DIR, TV_TERMVISOR and TV_DISK_SIZE set.
# Any failure exits non-zero, and termvisor then removes the half-made VM.
set -eu
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin # mkfs.ext4 is there, outside a user's PATH

say() { printf 'termvisor: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing: install the Debian package $2"; }

need apt-get apt
need apt-cache apt
need dpkg-deb dpkg
need mkfs.ext4 e2fsprogs
need cpio cpio
need gzip gzip
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
	fail "a static busybox is missing: install the Debian package busybox-static"

cache=$TV_CACHE_DIR/debian-packages
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/tv-template.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The kernel: the package that linux-image-cloud-amd64 currently points at.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[ -n "$pkg" ] || fail "cannot find the package linux-image-cloud-amd64 (run apt-get update?)"
deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	say "fetching $pkg"
	(cd "$cache" && apt-get download "$pkg" >/dev/null 2>"$work/apt.log") ||
		fail "cannot fetch $pkg: $(tail -n 1 "$work/apt.log")"
	deb=$(ls "$cache/${pkg}"_*.deb | head -n 1)
fi
say "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/pkg"
vmlinuz=$(ls "$work"/pkg/boot/vmlinuz-* | head -n 1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$work/pkg/lib/modules/$kver/kernel
cp "$vmlinuz" kernel

# A root file system of busybox with a login on the serial console and hvc0.
say "making the root file system"
root=$work/root
mkdir -p "$root"/bin "$root"/sbin "$root"/etc/init.d "$root"/proc "$root"/sys "$root"/dev \
	"$root"/tmp "$root"/root "$root"/run "$root"/var/log "$root"/usr/bin "$root"/usr/sbin
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cat >"$root/etc/inittab" <<'INITTAB'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
hvc0::respawn:/sbin/getty -L 115200 hvc0 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
INITTAB
cat >"$root/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
hostname -F /etc/hostname
ifconfig lo 127.0.0.1 up
# The first network card asks DHCP for an address. udhcpc is given the
# interface up and a script that applies the lease: on a card that is down,
# busybox's udhcpc never returns, and without a script a lease changes
# nothing. It goes on in the background (renewing) once it has a lease or
# after three tries.
if [ -e /sys/class/net/eth0 ]; then
	ifconfig eth0 up
	udhcpc -b -t 3 -T 1 -i eth0 -s /etc/udhcpc.script -p /tmp/udhcpc.pid >/dev/null 2>&1
fi
echo "$(hostname) is up; log in as root (no password: set one with passwd)"
RCS
chmod +x "$root/etc/init.d/rcS"
cat >"$root/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
# Called by udhcpc: applies a DHCP lease to $interface.
case $1 in
deconfig) ifconfig "$interface" 0.0.0.0 up ;;
bound | renew)
	ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" ${broadcast:+broadcast "$broadcast"} up
	if [ -n "$router" ]; then
		while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
		for r in $router; do route add default gw "$r" dev "$interface"; done
	fi
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	;;
esac
exit 0
DHCP
chmod +x "$root/etc/udhcpc.script"
echo "$TV_NAME" >"$root/etc/hostname"
# Busybox's account lookups skip entries whose password field is empty (the
# shell's \u, whoami and id then find no root), so the empty password lives
# in /etc/shadow, where login accepts it and passwd sets one.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root::19000:0:99999:7:::\n' >"$root/etc/shadow"
chmod 600 "$root/etc/shadow"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'ttyS0\nhvc0\nconsole\n' >"$root/etc/securetty"
printf 'PRETTY_NAME="Debian minimal (termvisor template)"\nID=debian\n' >"$root/etc/os-release"
echo "export PS1='\\u@\\h:\\w\\\$ '" >"$root/etc/profile"

# The initramfs loads the virtio drivers (modules in Debian's kernel), then
# mounts the root disk and hands over to its init.
say "making the initramfs"
ird=$work/initrd
mkdir -p "$ird"/bin "$ird"/dev "$ird"/proc "$ird"/sys "$ird"/newroot "$ird"/lib/modules
cp "$BUSYBOX" "$ird/bin/busybox"
# In load order: each after the modules it depends on (virtio needs
# virtio_ring's symbols; everything after needs both).
mods="virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev
	virtio/virtio_pci_legacy_dev virtio/virtio_pci block/virtio_blk char/virtio_console
	char/hw_random/virtio-rng"
order=""
for m in $mods; do
	f=$moddir/drivers/$m.ko
	[ -f "$f" ] || continue
	cp "$f" "$ird/lib/modules/"
	order="$order ${m##*/}.ko"
done
for m in net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
	[ -f "$moddir/$m.ko" ] || continue
	cp "$moddir/$m.ko" "$ird/lib/modules/"
	order="$order ${m##*/}.ko"
done
cat >"$ird/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $order; do
	insmod /lib/modules/\$m 2>/dev/null || echo "initramfs: cannot load \$m" >&2
done
root=/dev/vda
for arg in \$(cat /proc/cmdline); do case \$arg in root=*) root=\${arg#root=} ;; esac; done
i=0
while [ ! -b "\$root" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
if mount -t ext4 "\$root" /newroot; then
	mount --move /dev /newroot/dev
	umount /proc /sys
	exec switch_root /newroot /sbin/init
fi
echo "initramfs: cannot mount \$root; here is a shell"
exec sh
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc 2>/dev/null | gzip -9) >initrd

size=${TV_DISK_SIZE:-536870912}
say "making disk.qcow2 ($((size / 1048576))M, ext4)"
mkfs.ext4 -q -F -L root -d "$root" "$work/root.img" "$((size / 1024))k"
"$TV_TERMVISOR" img convert -f raw -O qcow2 "$work/root.img" disk.qcow2
say "done: kernel $kver"
