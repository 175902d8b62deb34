# Builds a Debian guest with debootstrap in the current directory (the new VM's
# data directory): kernel, initrd and disk.qcow2. Run by `termvisor create
# --template debian` with TV_NAME, TV_CACHE_DIR, TV_TERMVISOR and TV_DISK_SIZE
# set. debootstrap needs root: run as anyone else, the script runs itself again
# through sudo and gives the files it made back to the user.
#
# Settings (environment): TV_DEBIAN_MIRROR, the archive to install from (default:
# the one apt uses on this host, else http://deb.debian.org/debian);
# TV_DEBIAN_SUITE (default bookworm). Downloaded packages are kept in
# TV_CACHE_DIR/debootstrap/SUITE and reused.
#
# Any failure or interruption exits non-zero with nothing of the VM left: the
# build tree is unmounted and removed here, and termvisor removes the rest.
set -eu
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

say() { printf 'termvisor: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing: install the Debian package $2"; }

need debootstrap debootstrap
need mkfs.ext4 e2fsprogs

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 ||
		fail "debootstrap needs root: run termvisor create as root, or install the Debian package sudo"
	say "debootstrap needs root: going on through sudo"
	exec sudo -- env PATH="$PATH" TV_OWNER="$(id -u):$(id -g)" TV_NAME="$TV_NAME" \
		TV_CACHE_DIR="$TV_CACHE_DIR" TV_TERMVISOR="$TV_TERMVISOR" \
		TV_DISK_SIZE="${TV_DISK_SIZE:-}" TV_DEBIAN_MIRROR="${TV_DEBIAN_MIRROR:-}" \
		TV_DEBIAN_SUITE="${TV_DEBIAN_SUITE:-}" http_proxy="${http_proxy:-}" \
		https_proxy="${https_proxy:-}" /bin/sh -e "$0"
fi

# "URI SUITE" for every deb source apt reads, in both of its formats.
apt_sources() {
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			print $i, $(i + 1)
		}'
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
			if (types ~ /(^| )deb( |$)/ && enabled !~ /^no$/) {
				n = split(uris, u, " "); m = split(suites, s, " ")
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
			}
			types = uris = suites = enabled = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		{ key = tolower($1); sub(/^[^:]*:[ \t]*/, "") }
		key == "types:" { types = $0 } key == "uris:" { uris = $0 }
		key == "suites:" { suites = $0 } key == "enabled:" { enabled = tolower($0) }
		END { flush() }' "$f"
	done
}

# The mirror apt uses for SUITE (nothing if none)...
apt_mirror() {
	apt_sources | awk -v suite="$1" '$1 ~ /^(https?|ftp|file):/ && $2 == suite { print $1; exit }'
}

# ...failing that, the host's own Debian archive (a mirror serves every release).
host_mirror() {
	m=$(apt_mirror "$1")
	[ -n "$m" ] || m=$(apt_sources |
		awk '$1 ~ /^(https?|ftp|file):.*\/debian\/?$/ && $2 !~ /-/ { print $1; exit }')
	echo "$m"
}

suite=${TV_DEBIAN_SUITE:-bookworm}
mirror=${TV_DEBIAN_MIRROR:-$(host_mirror "$suite")}
mirror=${mirror:-http://deb.debian.org/debian}
case $TV_CACHE_DIR in /*) ;; *) TV_CACHE_DIR=$PWD/$TV_CACHE_DIR ;; esac
cache=$TV_CACHE_DIR/debootstrap/$suite
work=$PWD/.build
root=$work/root
owner=${TV_OWNER:-}

# apt's proxy, when it has one and none is set already: debootstrap fetches with wget.
if [ -z "${http_proxy:-}" ] && command -v apt-config >/dev/null 2>&1; then
	proxy=
	eval "$(apt-config shell proxy Acquire::http::Proxy)"
	[ -n "$proxy" ] && [ "$proxy" != DIRECT ] && export http_proxy="$proxy"
fi

# Unmounts whatever an interrupted debootstrap left mounted in the tree (proc,
# sys, dev/pts), deepest first, then removes it without crossing into any
# mount that would not go.
remove_work() {
	[ -d "$work" ] || return 0
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
	rm -rf --one-file-system "$work"
}

finish() {
	rc=$?
	trap - EXIT INT TERM HUP
	remove_work
	if [ $rc -ne 0 ]; then
		rm -f kernel initrd disk.qcow2
		say "nothing of the VM was kept"
	elif [ -n "$owner" ]; then
		chown "$owner" kernel initrd disk.qcow2
	fi
	# Packages fetched through sudo belong to the user whose cache they are in
	# (the trailing slash: the cache may be a link to elsewhere).
	if [ -n "$owner" ] && [ -d "$cache" ]; then
		chown "$owner" "$TV_CACHE_DIR/debootstrap"
		chown -R "$owner" "$cache/"
	fi
	exit $rc
}
trap finish EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM
trap 'say "hung up"; exit 129' HUP

# debootstrap's stages as a few lines of progress, and its warnings; its last
# error goes into the failure message. (A shell loop: awk may wait for a full
# buffer of input before it prints anything.)
progress() {
	n=0
	while IFS= read -r line; do
		case $line in
		"I: Retrieving InRelease"* | "I: Retrieving Release"*)
			[ -n "${lists:-}" ] || say "fetching the package lists from $mirror"
			lists=1 ;;
		"I: Resolving dependencies of base"*) say "resolving dependencies" ;;
		"I: Validating Packages"*) ;;
		"I: Validating "*)
			n=$((n + 1))
			[ $n -ne 1 ] || say "fetching packages (ones cached from earlier runs are reused)"
			[ $((n % 50)) -ne 0 ] || say "  $n packages" ;;
		"I: Installing core packages"*) say "unpacking $n packages" ;;
		"I: Configuring required packages"*) say "configuring the required packages" ;;
		"I: Unpacking the base system"*) say "unpacking the base system" ;;
		"I: Configuring the base system"*) say "configuring the base system" ;;
		"I: Configuring linux-image-"[0-9]*) say "configuring the kernel, making its initramfs" ;;
		"W: "*) printf '%s\n' "$line" >&2 ;;
		esac
	done
}

mkdir -p "$cache"
rm -rf "$work"
mkdir -p "$work"
say "installing Debian $suite with debootstrap from $mirror (a minute or two)"
# A pipeline's status is its last command's: debootstrap's goes through a file.
{
	rc=0
	debootstrap --variant=minbase --cache-dir="$cache" \
		--include=systemd-sysv,udev,dbus,linux-image-cloud-amd64,iproute2,iputils-ping,procps,less,nano \
		"$suite" "$root" "$mirror" 2>&1 || rc=$?
	echo $rc >"$work/rc"
} | tee "$work/debootstrap.log" | progress
rc=$(cat "$work/rc" 2>/dev/null || echo 1)
if [ "$rc" -ne 0 ]; then
	msg=$(grep '^E: ' "$work/debootstrap.log" | tail -n 1)
	[ -n "$msg" ] || msg=$(tail -n 1 "$work/debootstrap.log")
	[ -n "$msg" ] || msg="it said nothing"
	fail "debootstrap failed (exit $rc): ${msg#E: }"
fi

say "configuring the guest"
echo "$TV_NAME" >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
	"$TV_NAME" >"$root/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' >"$root/etc/fstab"
# Root logs in on the serial console without a password until one is set.
chroot "$root" passwd -d root >/dev/null
printf '%s\n\n' "Log in as root with no password (set one with passwd)." >>"$root/etc/issue"
mkdir -p "$root/etc/systemd/system/getty.target.wants"
ln -sf /lib/systemd/system/serial-getty@.service \
	"$root/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# DHCP on the first network card, whatever udev names it.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/80-dhcp.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1 ||
	fail "cannot enable systemd-networkd in the guest"
# apt in the guest: the suite from the mirror, and its updates and security
# suites where the host's apt has them.
{
	echo "deb $mirror $suite main"
	[ -z "$(apt_mirror "$suite-updates")" ] || echo "deb $mirror $suite-updates main"
	security=$(apt_mirror "$suite-security")
	[ -z "$security" ] || echo "deb $security $suite-security main"
} >"$root/etc/apt/sources.list"
chroot "$root" apt-get clean

# Keep in the cache only the packages this system was made of.
keep=$(chroot "$root" dpkg-query -W -f '${Package}_${Version}_${Architecture}.deb\n' |
	sed 's/:/%3a/g')
for f in "$cache"/*.deb; do
	[ -e "$f" ] || continue
	printf '%s\n' "$keep" | grep -qxF "${f##*/}" || rm -f "$f"
done

vmlinuz=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | tail -n 1)
initrd=$(ls "$root"/boot/initrd.img-* 2>/dev/null | tail -n 1)
[ -n "$vmlinuz" ] && [ -n "$initrd" ] || fail "the guest has no kernel or initramfs in /boot"
cp "$vmlinuz" kernel
cp "$initrd" initrd

size=${TV_DISK_SIZE:-4294967296}
[ -n "$size" ] || size=4294967296
used=$(du -s -k "$root" | cut -f1)
[ $((used * 1024 + used * 1024 / 4)) -lt "$size" ] ||
	fail "the root file system needs about $((used / 1024 * 5 / 4))M; the disk is $((size / 1048576))M (give --disk)"
say "making disk.qcow2 ($((size / 1048576))M, ext4, $((used / 1024))M used)"
: >"$work/root.img"
mkfs.ext4 -q -F -L root -d "$root" "$work/root.img" "$((size / 1024))k" ||
	fail "mkfs.ext4 failed"
"$TV_TERMVISOR" img convert -f raw -O qcow2 "$work/root.img" disk.qcow2
say "done: kernel ${vmlinuz##*/vmlinuz-}; log in on the console as root, no password"
