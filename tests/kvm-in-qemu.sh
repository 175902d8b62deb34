#!/usr/bin/env bash
# Runs tests that need /dev/kvm on a machine that has none: inside a QEMU
# virtual machine whose CPU is emulated (TCG) with AMD's virtualization
# extensions (SVM, nested paging) turned on, so that Debian's kernel there
# loads kvm-amd and offers a /dev/kvm. The host's root file system is shared
# read-write over 9p; the tests run chrooted into it with the build directory
# as it is here, so their logs land in the build tree as usual.
#
#   usage: tests/kvm-in-qemu.sh [BUILD_DIR] [TEST...]
#   (default: build/ and every test script that needs /dev/kvm, plus
#   tests/unit/test-engine, test-snapshot and test-memimg; env
#   KVM_IN_QEMU_TIMEOUT, seconds, default 3600;
#   KVM_IN_QEMU_COMMAND, a command to run there instead of the tests;
#   KVM_IN_QEMU_THREADS, single or multi: QEMU's TCG on one host thread for
#   all emulated CPUs, or on one per CPU (default single; a command: multi);
#   KVM_IN_QEMU_LOCK, a file locked while the machine runs, so that runs
#   started side by side on one host wait for each other rather than share
#   its CPUs (default /tmp/tv-nested-run.lock; empty: no lock);
#   KVM_IN_QEMU_STALL, seconds without a byte in any test's log after which
#   the machine counts as stuck and is stopped (default 300; 0: never);
#   KVM_IN_QEMU_APPEND, parameters for the machine's kernel; KVM_IN_QEMU_SMP,
#   its CPUs (default 1 single-threaded, see below; as many as here
#   multi-threaded); KVM_IN_QEMU_CPU, QEMU's -cpu;
#   KVM_IN_QEMU_MEM, its memory, default 4G (benchmarks of large guests
#   need more: its /tmp is a tmpfs in that memory); KVM_IN_QEMU_CACHE, where
#   the kernel packages are kept (default BUILD_DIR/tests/linux/cache: a
#   second build dir can share the first's); KVM_IN_QEMU_RETRY=0,
#   no second run of failed tests, see below)
#
# Everything runs emulated: expect minutes where KVM takes seconds. The
# programs the tests need are built here first (make check-programs), so the
# machine only runs them. The kernel package (linux-image-*-amd64, for
# kvm-amd.ko and the 9p modules) is fetched with apt-get download and kept
# under BUILD_DIR/tests/linux/cache.
# Exits with the status of make check (or of the command), or 125 when the
# machine could not be set up or ended without a result.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd -P)
build=$(cd "${1:-$top/build}" && pwd -P)
[ $# -gt 0 ] && shift
die() {
	echo "kvm-in-qemu: $*" >&2
	exit 125
}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (the Debian package qemu-system-x86)"
[ -x /bin/busybox ] || die "/bin/busybox is missing (the Debian package busybox-static)"
command -v cpio >/dev/null || die "cpio is missing"
[ -f "$build/Makefile" ] || die "$build is not a configured build directory"

if [ $# -gt 0 ]; then
	tests="$*"
else
	# All the Linux tests but the debootstrap template, which takes minutes to
	# build and is left to hosts with KVM.
	tests=$(cd "$top" && grep -l '^t_need_kvm' tests/*/*.sh tests/guests/virtio/*.sh |
		grep -v '^tests/linux/debian\.sh$' | tr '\n' ' ')
	# The debian-minimal guest to a root shell and back, twice: 2 vCPUs with
	# the disk on io_uring, 1 vCPU with the disk on I/O threads.
	tests="$tests tests/linux/debian-shell.sh tests/linux/debian-shell-threads.sh"
	# The demo guest on the user network (in a folder of its own, so not
	# found above).
	tests="$tests tests/guests/net/user-net.sh"
	# The unit tests with cases that need /dev/kvm: the engine, machine
	# snapshots, memory images.
	tests="$tests tests/unit/test-engine tests/unit/test-snapshot tests/unit/test-memimg"
	# Lab networks: demo VMs on two lab networks (one folder deeper than the scan).
	tests="$tests tests/guests/net/lab.sh"
	# tap: root makes the device (the machine runs the tests as root).
	tests="$tests tests/guests/net/tap.sh"
fi
# KVM_IN_QEMU_LIST=1: only print the tests, for ./dev check.
if [ "${KVM_IN_QEMU_LIST:-0}" = 1 ]; then
	echo $tests
	exit 0
fi
# One nested machine at a time on this host: two would starve each other's
# emulated CPUs into soft lockups.
if [ -n "${KVM_IN_QEMU_LOCK-/tmp/tv-nested-run.lock}" ] && command -v flock >/dev/null; then
	exec 8>>"${KVM_IN_QEMU_LOCK-/tmp/tv-nested-run.lock}"
	flock -n 8 || { echo "kvm-in-qemu: waiting for another nested machine on this host" >&2; flock 8; }
fi
case ${KVM_IN_QEMU_THREADS:-} in '' | single | multi) ;; *) die "KVM_IN_QEMU_THREADS=$KVM_IN_QEMU_THREADS: expected multi or single" ;; esac
# Built here, on the host's own CPUs: emulated, compiling is slow.
make -C "$build" -s -j"$(nproc)" check-programs >/dev/null || die "make check-programs failed in $build"

cache=${KVM_IN_QEMU_CACHE:-$build/tests/linux/cache}
deb=$("$top/tests/linux/fetch-kernel.sh" amd64 "$cache" 2>&1) || die "$deb"

# The machine has no network: the Linux tests' kernel package (the cloud
# flavour) is fetched here when they are to run and it is not cached yet;
# without it they skip, saying so.
if [[ " $tests " == *" tests/linux/"* ]]; then
	"$top/tests/linux/fetch-kernel.sh" cloud-amd64 "$cache" >/dev/null 2>"$build/kvm-in-qemu.err" ||
		echo "kvm-in-qemu: $(cat "$build/kvm-in-qemu.err"); the Linux tests will skip" >&2
	rm -f "$build/kvm-in-qemu.err"
fi
# The Linux shell tests' VM, made here with `termvisor create --template
# debian-minimal` (7 s on the host, 90 s in the emulated machine, where each
# test made its own); they copy it (tests/lib.sh: t_debian_minimal).
# debian-minimal.sh still creates its own there, checking what create makes.
fixture=$build/tests/linux/fixture
rm -rf "$fixture"
if [[ " $tests " == *" tests/linux/debian-shell"* || " $tests " == *" tests/linux/debian-minimal-tui.sh "* ]] &&
	ls "$cache"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
	mkdir -p "$fixture/cache/debian-packages"
	cp "$cache"/linux-image-*-cloud-amd64_*.deb "$fixture/cache/debian-packages/"
	TERMVISOR_HOME=$fixture "$build/termvisor" create deb --template debian-minimal \
		>"$fixture.log" 2>&1 || {
		echo "kvm-in-qemu: termvisor create --template debian-minimal failed here; the tests make their own:" >&2
		sed 's/^/kvm-in-qemu:   /' "$fixture.log" >&2
		rm -rf "$fixture"
	}
	rm -f "$fixture.log"
fi

# In the build tree, which the machine shares (see /tmp below).
work=$(mktemp -d "$build/kvm-in-qemu.XXXXXX")
# Killed (an outer timeout, Ctrl-C), the machine goes too: left running, it
# would hold whatever lock its caller took around this script for its whole
# hour.
qemu=
trap '[ -z "$qemu" ] || kill $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './boot/vmlinuz-*' './lib/modules/*'
kver=$(ls "$work/lib/modules" | head -n1)
mods=$work/lib/modules/$kver/kernel
ir=$work/initramfs
mkdir -p "$ir/bin" "$ir/mods" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/mnt"
cp /bin/busybox "$ir/bin/"
# In load order: virtio over PCI, 9p over virtio, KVM for AMD.
order="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
	drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/9p/9pnet
	net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p virt/lib/irqbypass
	arch/x86/kvm/kvm drivers/crypto/ccp/ccp arch/x86/kvm/kvm-amd"
names=
for m in $order; do
	[ -f "$mods/$m.ko" ] || die "$(basename "$deb") has no $m.ko"
	cp "$mods/$m.ko" "$ir/mods/"
	names="$names $(basename "$m")"
done
# tun, for tests/guests/net/tap.sh (which skips without /dev/net/tun).
if [ -f "$mods/drivers/net/tun.ko" ]; then
	cp "$mods/drivers/net/tun.ko" "$ir/mods/"
	names="$names tun"
fi
# The command, status and output pass through files in the shared tree.
# KVM_IN_QEMU_COMMAND replaces make check: a shell command run in the build
# directory (a benchmark, say), whose output is shown and status returned.
#
# QEMU's emulation of SVM is not sound with a thread per CPU (with one thread
# for two CPUs Linux does not boot at all; see "Which machine runs what"
# below). In loops of Linux boots on termvisor there (2026-12-06, QEMU 7.2):
# the shell test hung once in 10 boots of 2 vCPUs,
# one vCPU halted with interrupts off waiting for a spinlock kick that never
# came and the other idle; under a fork-heavy shell loop 3 of 6 boots broke,
# a guest vCPU with a CR3 that is an address of the machine's own memory, a
# triple fault, and the machine's own kernel panicked ("corrupted stack end
# detected inside scheduler" in the thread running a vCPU), which no user
# program can cause. So tests that fail are run once more when they are at
# most three (more is a breakage, not this), the end of the first run's log
# shown; a machine that ends without a result (its kernel died or locked
# up) is started again for the tests that did not pass in it; both say
# so in the output. KVM_IN_QEMU_RETRY=0 turns this off.
# The machine gives the tests a tmpfs on /tmp; a tree that lives under the
# host's /tmp (a fresh clone there, say) is bound back into it.
keep=
for d in "$top" "$build"; do
	case $d in /tmp/?*)
		e=${d#/tmp/}
		e=${e%%/*}
		[[ " $keep " == *" $e "* ]] || keep="$keep $e" ;;
	esac
done
cat >"$ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
for m in $names; do insmod /mods/\$m.ko || echo "kvm-in-qemu: insmod \$m failed"; done
[ -c /dev/kvm ] || echo "kvm-in-qemu: no /dev/kvm in the machine"
# Loopback up: tests reach a guest's port forwards and host services on 127.0.0.1.
ip link set lo up || echo "kvm-in-qemu: no loopback interface"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose host /mnt ||
	echo "kvm-in-qemu: cannot mount the host's files"
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -o rbind /dev /mnt/dev
mkdir -p /hosttmp
mount -o bind /mnt/tmp /hosttmp
mount -t tmpfs tmp /mnt/tmp
for e in $keep; do
	mkdir -p "/mnt/tmp/\$e" && mount -o bind "/hosttmp/\$e" "/mnt/tmp/\$e" ||
		echo "kvm-in-qemu: cannot bind /tmp/\$e"
done
chroot /mnt /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=xterm \
	/bin/bash '$work/inside.sh'
poweroff -f
EOF
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"

write_inside() { # from $cmd, $tests, $retry and the machine's $threads
	local trace=0
	[ -z "${KVM_IN_QEMU_COMMAND:-}" ] && [[ " $tests " == *" tests/linux/"* ]] && trace=1
	cat >"$work/inside.sh" <<-EOF
	cd '$build'
	export TMPDIR=/tmp
	# The kernel packages fetched here (the machine has no network): a
	# second build dir's Linux tests use the first one's (KVM_IN_QEMU_CACHE).
	export TV_LINUX_CACHE='$cache'
	# A machine running Linux tests traces its KVM's exits into a small ring
	# (1 MiB a CPU; not for a benchmark): a Linux test whose guest ends badly prints
	# the ring's end (tests/lib.sh: t_kvm_trace), the guest's last exits and
	# exceptions, since AMD's KVM keeps no registers of a triple fault.
	if [ $trace = 1 ] && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
		echo 1024 >/sys/kernel/tracing/buffer_size_kb
		for e in kvm_exit kvm_inj_exception kvm_pio kvm_userspace_exit; do
			echo 1 >/sys/kernel/tracing/events/kvm/\$e/enable
		done
		echo 1 >/sys/kernel/tracing/tracing_on
	fi
	$cmd >'$work/check.out' 2>&1
	rc=\$?
	failed=
	for t in $tests; do
		grep -qE '^:test-result: (FAIL|ERROR)' "\$t.trs" 2>/dev/null && failed="\$failed \$t"
	done
	if [ \$rc -ne 0 ] && [ $retry = 1 ] && [ -n "\$failed" ] && [ \$(echo \$failed | wc -w) -le 3 ]; then
		{
			for t in \$failed; do
				echo "kvm-in-qemu: \$t failed; the end of its log:"
				tail -n 25 "\$t.log" | sed 's/^/kvm-in-qemu:   /'
				cp "\$t.log" "\$t.log.first"
			done
			echo "kvm-in-qemu: running again:\$failed"
		} >>'$work/check.out'
		make -s -k check TESTS="\$failed" >>'$work/check.out' 2>&1
		rc=\$?
	fi
	echo \$rc >'$work/status'
	EOF
}
# Runs $cmd in a machine with TCG in mode $1 (single or multi), at most $2
# seconds, and sets rc to its status (125: no result). With retry=1 a
# machine that ended without a result (or was stopped as stuck) is started
# again for the tests that did not pass: at most twice, or four times for a
# multi-threaded one (a clean-clone run of 2026-12-06 lost three in a row:
# stuck, a CPU locked up at boot, its kernel's panic in a vCPU thread).
machine() {
	local threads=$1 limit=$2 start attempt tries=3
	[ "$threads" = multi ] && tries=5
	write_inside
	echo "kvm-in-qemu: $kver under TCG ($threads-threaded) with SVM; running: $cmd"
	start=$(date +%s)
	for attempt in $(seq 1 $tries); do
		rm -f "$work/status" "$work/check.out"
		: >"$work/console.log"
		timeout "$limit" qemu-system-x86_64 -accel tcg,thread="$threads" \
			-smp "${KVM_IN_QEMU_SMP:-$([ "$threads" = multi ] && nproc || echo 1)}" -m "${KVM_IN_QEMU_MEM:-4G}" -cpu "${KVM_IN_QEMU_CPU:-qemu64,+svm,+npt}" \
			-display none -monitor none \
			-serial file:"$work/console.log" -no-reboot -kernel "$work"/boot/vmlinuz-* \
			-initrd "$work/initrd.gz" \
			-append "console=ttyS0 quiet panic=-1${KVM_IN_QEMU_APPEND:+ $KVM_IN_QEMU_APPEND}" \
			-virtfs local,path=/,mount_tag=host,security_model=passthrough,id=h,multidevs=remap &
		qemu=$!
		# A machine whose CPU has been locked up for a minute does not come
		# back (seen with a thread per CPU): stop it rather than wait out the
		# limit. Nor does one in which no test has written a byte of its log
		# for $stall seconds (seen: a thread per CPU, both busy, nothing on
		# its console, one test's log empty for 8 minutes where it takes 18 s);
		# the tests print as they go, and the slowest is quiet for about a
		# minute (5 minutes are allowed, 3 in a multi-threaded machine).
		# Not for a command (a benchmark may be quiet for long).
		local stall=${KVM_IN_QEMU_STALL:-$([ "$threads" = multi ] && echo 180 || echo 300)}
		local last=$SECONDS newest=0 now t m
		while kill -0 $qemu 2>/dev/null; do
			if grep -qE 'soft lockup - CPU#[0-9]+ stuck for ([6-9][0-9]|[0-9]{3,})s' "$work/console.log"; then
				echo "kvm-in-qemu: the machine's kernel reports a CPU locked up for a minute; stopping it"
				kill $qemu 2>/dev/null
				break
			fi
			if [ -z "${KVM_IN_QEMU_COMMAND:-}" ] && [ "$stall" -gt 0 ]; then
				now=0
				for t in $tests; do
					# (make check removes a test's log as the test starts)
					m=$(stat -c %Y "$build/$t.log" 2>/dev/null) || continue
					[ "$m" -le "$now" ] || now=$m
				done
				if [ "$now" -gt "$newest" ]; then
					newest=$now last=$SECONDS
				elif [ $((SECONDS - last)) -ge "$stall" ]; then
					echo "kvm-in-qemu: no test wrote to its log for $stall s; the machine is stuck: stopping it"
					kill $qemu 2>/dev/null
					break
				fi
			fi
			sleep 2
		done
		wait $qemu || true
		cat "$work/check.out" 2>/dev/null || true
		grep 'kvm-in-qemu:' "$work/console.log" || true
		# The machine's kernel prints only warnings and worse (quiet): a soft
		# lockup, a hung task, an oops there explains a test that failed in it.
		grep -v 'kvm-in-qemu:' "$work/console.log" | grep -v '^[[:space:]]*$' | tail -n 60 |
			sed 's/^/kvm-in-qemu: console: /' || true
		[ ! -s "$work/status" ] && [ $attempt -lt $tries ] && [ $retry = 1 ] || break
		# The tests that passed keep their results (make check writes a
		# test's .trs when it ends): only the others run again.
		local left= t
		for t in $tests; do
			grep -qE '^:test-result: (PASS|SKIP)' "$build/$t.trs" 2>/dev/null || left="$left $t"
		done
		echo "kvm-in-qemu: the machine ended without a result after $(($(date +%s) - start)) s" \
			"(its kernel's last words above); starting it again for:$left"
		[ -n "$left" ] || { echo 0 >"$work/status"; break; }
		tests=${left# } cmd="make -s -k check TESTS='${left# }'"
		write_inside
	done
	if [ -s "$work/status" ]; then
		rc=$(cat "$work/status")
		echo "kvm-in-qemu: it exited $rc after $(($(date +%s) - start)) s"
	else
		echo "kvm-in-qemu: the machine ended without a result after $(($(date +%s) - start)) s" >&2
		rc=125
	fi
}

# The group's slowest tests, from the birth of each one's log (when it
# started) to that of its result file (written as it ended); the logs are
# written through 9p into the build tree here, where a file's last change
# can come long after the test wrote it (cache=loose).
timings() {
	local t f
	for t in $1; do
		f=$build/$t.log
		[ -f "$f" ] && [ -f "$build/$t.trs" ] || continue
		echo "$(($(stat -c %W "$build/$t.trs") - $(stat -c %W "$f"))) $t"
	done | sort -rn | head -n 12 | awk '{ printf "kvm-in-qemu: %4d s %s\n", $1, $2 }'
}

# Which machine runs what. By default one machine with one emulated CPU on
# one TCG thread runs every test. Linux guests need that one CPU: with two
# CPUs on one TCG thread, a Linux guest on the machine's KVM did not get past
# early boot, on termvisor's engine and on QEMU's KVM mode alike (issue 16:
# both spin on a timer interrupt taken while the guest holds
# hrtimer_bases.lock with interrupts off, 4 runs of 4); with one CPU it
# reaches its shell (2026-12-07: the four Linux shell tests in 160 s of one
# host CPU, where a thread per CPU took 140 s of two). A thread per CPU
# (KVM_IN_QEMU_THREADS=multi, which the network benchmarks use for their
# many guests) is not sound here: its kernel panicked ("corrupted stack end
# detected inside scheduler") or both its CPUs locked up in about one start
# of four, with or without nested paging.
if [ -n "${KVM_IN_QEMU_COMMAND:-}" ]; then
	cmd=$KVM_IN_QEMU_COMMAND retry=0
	machine "${KVM_IN_QEMU_THREADS:-multi}" "${KVM_IN_QEMU_TIMEOUT:-3600}"
	exit "$rc"
fi
retry=${KVM_IN_QEMU_RETRY:-1}
tests=$(echo $tests)
all=$tests # (a machine started again runs only the tests left)
cmd="make -s -k check TESTS='$tests'"
machine "${KVM_IN_QEMU_THREADS:-single}" "${KVM_IN_QEMU_TIMEOUT:-3600}"
echo "kvm-in-qemu: the slowest tests in that machine:"
timings "$all"
exit "$rc"
