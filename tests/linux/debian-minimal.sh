#!/usr/bin/env bash
# `termvisor create --template debian-minimal` builds a real Linux guest from the
# host's Debian packages: a kernel, an initramfs that loads the virtio drivers
# in an order the kernel accepts, and an ext4 root disk that qemu-img accepts.
# It needs no /dev/kvm, so it runs on every host. That the guest boots to a
# shell is debian-shell.sh's part (termvisor's engine) and
# debian-shell-qemu.sh's (QEMU, on any host).
. "$(dirname "$0")/../lib.sh"
t_home
command -v mkfs.ext4 >/dev/null || t_skip_all "mkfs.ext4 is missing (e2fsprogs)"
[ -x /bin/busybox ] || t_skip_all "busybox-static is missing"
apt-cache depends linux-image-cloud-amd64 >/dev/null 2>&1 ||
	t_skip_all "apt knows no linux-image-cloud-amd64 (no Debian archive configured)"
# Reuse the package the other Linux test fetched, when there is one.
mkdir -p "$TERMVISOR_HOME/cache/debian-packages"
cp "$(t_linux_cache)"/linux-image-*-cloud-amd64_*.deb \
	"$TERMVISOR_HOME/cache/debian-packages/" 2>/dev/null

out=$("$TV" create deb --template debian-minimal 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "cannot fetch" <<<"$out"; then
	t_check "a failed fetch leaves nothing behind" [ ! -e "$TERMVISOR_HOME/data/deb" ]
	t_skip_all "the kernel package cannot be fetched here: $(tail -n1 <<<"$out")"
fi
t_check "the VM is created" [ $rc -eq 0 ]
data=$TERMVISOR_HOME/data/deb
t_check "with a kernel, an initrd and a disk" [ -s "$data/kernel" ] && [ -s "$data/initrd" ] && [ -s "$data/disk.qcow2" ]
t_check "progress was shown" grep -q "making the initramfs" <<<"$out"
t_check "the initramfs carries the virtio drivers" \
	bash -c "zcat '$data/initrd' | cpio -t 2>/dev/null | grep -q 'virtio_blk.ko'"
# The init loads the modules in the order it names them: each must come
# after the modules it depends on, or the kernel refuses it.
ird=$TERMVISOR_HOME/initrd.d
mkdir -p "$ird" && (cd "$ird" && zcat "$data/initrd" | cpio -id 2>/dev/null)
order=$(sed -n 's/^for m in \(.*\); do$/\1/p' "$ird/init")
modinfo=$(command -v modinfo || echo /sbin/modinfo)
if [ -x "$modinfo" ] && [ -n "$order" ]; then
	bad="" seen=""
	for m in $order; do
		for d in $("$modinfo" -F depends "$ird/lib/modules/$m" | tr , ' '); do
			case " $seen " in *" $d "*) ;; *) bad="$bad $m(needs $d)" ;; esac
		done
		seen="$seen $(tr - _ <<<"${m%.ko}")"
	done
	t_check "the initramfs loads each module after its dependencies${bad:+:$bad}" [ -z "$bad" ]
fi
rm -rf "$ird"
if [ -n "${QEMU_IMG:-}" ]; then
	t_check "qemu-img check accepts the root disk" "$QEMU_IMG" check -q "$data/disk.qcow2"
	"$QEMU_IMG" convert -O raw "$data/disk.qcow2" "$TERMVISOR_HOME/root.raw"
	t_check "the root disk is ext4 with busybox as init" \
		bash -c "debugfs -R 'stat /bin/busybox' '$TERMVISOR_HOME/root.raw' 2>/dev/null | grep -q 'Type: regular'"
	rm -f "$TERMVISOR_HOME/root.raw"
fi
t_check "list shows it" grep -q "^deb .* stopped .* 1 *256M *1 " <<<"$("$TV" list)"

t_done
