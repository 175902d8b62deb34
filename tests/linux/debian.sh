#!/usr/bin/env bash
# `termvisor create --template debian` installs a full Debian with debootstrap:
# the VM gets the cloud kernel, its initramfs (with the virtio drivers) and an
# ext4 root disk in qcow2 that qemu-img accepts, holding systemd, a getty on
# ttyS0 and a root account without a password. Its kernel boots under
# termvisor as far as these hosts allow (banner, command line, initramfs), and
# under QEMU without KVM (the peer, emulating everything) the system comes up
# to a login on the serial console where root logs in.
#
# Downloaded packages are kept under the build directory (like the kernel
# package of the other Linux tests), so a rerun fetches only the archive's
# package lists; the install itself (dpkg, the initramfs) takes about a minute.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
t_home
PATH=$PATH:/usr/sbin:/sbin
command -v debootstrap >/dev/null || t_skip_all "debootstrap is missing (the Debian package debootstrap)"
command -v debugfs >/dev/null || t_skip_all "debugfs is missing (e2fsprogs)"
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
	t_skip_all "debootstrap needs root: run as root or with password-less sudo"
fi
unset TV_DEBIAN_SUITE

cache=$(t_linux_cache)/debootstrap-bookworm
mkdir -p "$cache" "$TERMVISOR_HOME/cache/debootstrap" || t_skip_all "cannot create $cache"
cache=$(cd "$cache" && pwd)
ln -s "$cache" "$TERMVISOR_HOME/cache/debootstrap/bookworm"
cached=$(ls "$cache" | grep -c '\.deb$')

start=$(date +%s)
out=$("$TV" create deb --template debian 2>&1)
rc=$?
secs=$(($(date +%s) - start))
data=$TERMVISOR_HOME/data/deb
if [ $rc -ne 0 ] && grep -qi "debootstrap failed.*release file" <<<"$out"; then
	t_check "a mirror that cannot be reached leaves nothing behind" [ ! -e "$data" ]
	t_skip_all "the Debian mirror cannot be reached: $(grep 'debootstrap failed' <<<"$out")"
fi
echo "# created in $secs s, with $cached packages cached before"
t_check "the VM is created" [ $rc -eq 0 ]
if [ $rc -ne 0 ]; then
	sed 's/^/# /' <<<"$out"
	t_done
fi
t_check "with a kernel, an initrd and a disk" [ -s "$data/kernel" ] && [ -s "$data/initrd" ] && [ -s "$data/disk.qcow2" ]
t_check "and nothing else in its data directory (the build tree is gone)" \
	[ "$(ls -A "$data" | tr '\n' ' ')" = "disk.qcow2 initrd kernel " ]
t_check "nothing stays mounted" bash -c "! grep -q ' $TERMVISOR_HOME/' /proc/mounts"
t_check "progress was shown" \
	grep -q "configuring the kernel, making its initramfs" <<<"$out"
t_check "the root login is told" grep -q "log in on the console as root" <<<"$out"
t_check "the packages are cached for the next time" \
	test "$(ls "$cache" | grep -c '\.deb$')" -gt 100

initrd_list() {
	case $(head -c 2 "$data/initrd" | od -An -tx1 | tr -d ' ') in
	1f8b) zcat "$data/initrd" | cpio -t 2>/dev/null ;;
	28b5) zstd -dc "$data/initrd" | cpio -t 2>/dev/null ;;
	*) cpio -t <"$data/initrd" 2>/dev/null ;;
	esac
}
t_check "the initramfs carries virtio_pci and virtio_blk" \
	bash -c "$(declare -f initrd_list); data='$data'; l=\$(initrd_list); grep -q '/virtio_pci.ko' <<<\"\$l\" && grep -q '/virtio_blk.ko' <<<\"\$l\""

if [ -n "${QEMU_IMG:-}" ]; then
	t_check "qemu-img check accepts the root disk" "$QEMU_IMG" check -q "$data/disk.qcow2"
	raw=$TERMVISOR_HOME/root.raw
	"$QEMU_IMG" convert -O raw "$data/disk.qcow2" "$raw"
	fs() { debugfs -R "$1" "$raw" 2>/dev/null; }
	t_check "the root disk is ext4 with systemd as /sbin/init" \
		grep -q "Fast link dest: \"/lib/systemd/systemd\"" <<<"$(fs 'stat /sbin/init')"
	t_check "its host name is the VM's" [ "$(fs 'cat /etc/hostname')" = deb ]
	t_check "root has no password" grep -q '^root::' <<<"$(fs 'cat /etc/shadow')"
	t_check "a getty runs on ttyS0" \
		grep -q 'serial-getty@ttyS0.service' <<<"$(fs 'ls /etc/systemd/system/getty.target.wants')"
	t_check "fstab mounts /dev/vda as /" grep -q '^/dev/vda[[:space:]]*/[[:space:]]' <<<"$(fs 'cat /etc/fstab')"
	t_check "apt installs from the same mirror" grep -q '^deb http' <<<"$(fs 'cat /etc/apt/sources.list')"
	rm -f "$raw"
fi
t_check "list shows it" grep -q "^deb .* stopped .* 2 *1G *1 " <<<"$("$TV" list)"

# termvisor: the kernel starts with the VM's command line and initramfs.
log=$TERMVISOR_HOME/console.log
timeout 300 "$TV" run deb --append "console=ttyS0 earlyprintk=ttyS0 root=/dev/vda rw" \
	</dev/null >"$log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && ! grep -q 'RAMDISK: \[mem' "$log"; do
	sleep 0.5
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
t_check "termvisor: the kernel prints its banner" grep -q "Linux version 6\." "$log"
t_check "with the VM's command line" grep -q "Command line: .*root=/dev/vda" "$log"
t_check "and finds the initramfs" grep -q "RAMDISK: \[mem" "$log"
grep -q "RAMDISK" "$log" || sed 's/^/# /' "$log" | tail -20

# QEMU emulating the whole machine: the initramfs finds the virtio disk, systemd
# starts everything, and root logs in on ttyS0 without a password.
qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
	t_fail "qemu-system-x86_64 is missing (qemu-system-x86): the login cannot be checked"
	t_done
fi
qlog=$TERMVISOR_HOME/qemu.log
start=$(date +%s)
python3 - "$qemu" "$data" "$qlog" <<'PY'
import os, select, subprocess, sys, time
qemu, data, log = sys.argv[1:4]
p = subprocess.Popen([qemu, "-accel", "tcg", "-m", "1G", "-display", "none", "-monitor", "none",
	"-serial", "stdio", "-no-reboot", "-kernel", data + "/kernel", "-initrd", data + "/initrd",
	"-append", "console=ttyS0 root=/dev/vda rw",
	"-drive", "file=" + data + "/disk.qcow2,if=virtio,format=qcow2"],
	stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
out = open(log, "wb")
seen = b""
def expect(what, secs):
	global seen
	end = time.time() + secs
	while time.time() < end:
		if select.select([p.stdout], [], [], 1)[0]:
			chunk = os.read(p.stdout.fileno(), 4096)
			if not chunk:
				return
			out.write(chunk)
			out.flush()
			seen += chunk
			if what in seen:
				seen = seen[seen.index(what) + len(what):]
				return
def send(text):
	p.stdin.write(text)
	p.stdin.flush()
expect(b"deb login:", 400)
time.sleep(1)
send(b"root\n")
expect(b"root@deb:~#", 60)
send(b"echo ROOT-IS $(findmnt -n -o SOURCE,FSTYPE /) STATE $(systemctl is-system-running --wait)\n")
expect(b"\n", 60)
expect(b"root@deb:~#", 120)
send(b"poweroff\n")
expect(b"reboot: Power down", 120)
p.kill()
p.wait()
PY
echo "# QEMU (TCG): login and power off in $(($(date +%s) - start)) s"
t_check "QEMU: the serial console offers a login" grep -q "deb login:" "$qlog"
t_check "root logs in without a password" grep -q "root@deb:~#" "$qlog"
t_check "the root file system is /dev/vda, ext4" grep -aq "ROOT-IS /dev/vda ext4" "$qlog"
t_check "systemd reports the system running" grep -aq "ROOT-IS .* STATE running" "$qlog"
t_check "it powers off" grep -aq "reboot: Power down" "$qlog"
[ $T_FAILED -eq 0 ] || tail -n 30 "$qlog" | sed 's/^/# /'
t_done
