#!/usr/bin/env bash
# Network benchmark, termvisor against QEMU side by side (bench/net.py does the
# work): (a) TCP throughput host to guest and guest to host through a port
# forward on termvisor's user network and on QEMU's (-netdev user,hostfwd=),
# (b) TCP guest to guest on a termvisor lab network, between two QEMU guests
# joined by -netdev dgram, between two QEMU guests on termvisor's lab switch and
# between two QEMU guests on -netdev user (through a host port forward),
# (c) the VM process's memory without a NIC and with
# one on the user network. The guest is the VM `termvisor create --template
# debian-minimal` makes (bench/boot.sh keeps it in BUILD_DIR/bench/debian-minimal);
# busybox's nc in it sends and receives. Results go into bench/RESULTS.md.
#
# usage: bench/net.sh [BUILD_DIR] [MIB] [LAB_MIB] [RUNS]   (defaults: build 64 64 3)
# NET_PREPARE=1 only makes the VM (on the host, where it is quick):
#   NET_PREPARE=1 bench/net.sh build
# NET_NESTED=1 names the figures as taken inside tests/kvm-in-qemu.sh (KVM on an
# emulated CPU) and keeps them in a section of their own:
#   KVM_IN_QEMU_THREADS=multi KVM_IN_QEMU_COMMAND='NET_NESTED=1 ../bench/net.sh .' \
#     tests/kvm-in-qemu.sh build
# NET_PARTS (a comma list of user, lab, memory; default all three) picks parts;
# a run with only some of them, or NET_RESULTS=0, prints the figures and writes
# nothing to bench/RESULTS.md. NET_TIMEOUT bounds the whole run (900 s); no
# transfer starts in its last 300 s (half, below 600 s), so what was measured
# by then is still written, and a stalled transfer is reported as such.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
mib=${2:-64}
lab_mib=${3:-64}
runs=${4:-3}
parts=${NET_PARTS:-user,lab,memory}
for n in "$mib" "$lab_mib" "$runs"; do
	case $n in '' | *[!0-9]* | 0*) echo "bench/net.sh: $n: expected a positive whole number (MIB LAB_MIB RUNS)" >&2; exit 2 ;; esac
done
tv=$build/termvisor
[ -x "$tv" ] || { echo "bench/net.sh: no $tv (build first)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench/net.sh: qemu-system-x86_64 missing" >&2; exit 1; }

vm_home=$build/bench/debian-minimal
if [ -n "${NET_PREPARE:-}" ]; then
	BOOT_PREPARE=1 "$top/bench/boot.sh" "$build"
	exit 0
fi
conf=$vm_home/vms/deb.conf
if [ ! -f "$vm_home/data/deb/disk.qcow2" ] || [ ! -f "$conf" ]; then
	echo "bench/net.sh: no debian-minimal VM in $vm_home: make it first with NET_PREPARE=1 bench/net.sh $build" >&2
	exit 1
fi
cmdline=$(sed -n 's/^cmdline = "\(.*\)";$/\1/p' "$conf")
memory=$(sed -n 's/^memory = "\([0-9]*\)M";$/\1/p' "$conf")
cpus=$(sed -n 's/^cpus = \([0-9]*\);$/\1/p' "$conf")
if [ -z "$cmdline" ] || [ -z "$memory" ] || [ -z "$cpus" ]; then
	echo "bench/net.sh: cannot read cmdline, memory (in M) and cpus from $conf" >&2
	exit 1
fi

tmp=$(mktemp -d)
bench=
cleanup() {
	if [ -n "$bench" ]; then
		kill "$bench" 2>/dev/null || true
		wait "$bench" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# The lab network's socket under this home, not the user's runtime directory.
export TERMVISOR_HOME=$tmp/home
unset XDG_RUNTIME_DIR
mkdir -p "$TERMVISOR_HOME"

results=(--results "$top/bench/RESULTS.md")
[ "$parts" = user,lab,memory ] && [ "${NET_RESULTS:-1}" != 0 ] || results=()
[ -z "${NET_NESTED:-}" ] || results+=(--nested)
# No run starts in the last 300 s (a transfer's limit and its stall report):
# the figures taken by then are written rather than lost to timeout's kill.
limit=${NET_TIMEOUT:-900}
case $limit in '' | *[!0-9]*) echo "bench/net.sh: NET_TIMEOUT=$limit: expected seconds" >&2; exit 2 ;; esac
deadline=$((limit > 600 ? limit - 300 : limit / 2))
timeout "$limit" python3 "$top/bench/net.py" --termvisor "$tv" --vm "$vm_home/data/deb" \
	--cmdline "$cmdline" --memory "$memory" --cpus "$cpus" --mib "$mib" --lab-mib "$lab_mib" \
	--runs "$runs" --parts "$parts" --scratch "$tmp" --deadline "$deadline" "${results[@]}" &
bench=$!
rc=0
wait "$bench" || rc=$?
bench=
if [ $rc -ne 0 ]; then
	[ $rc -ne 124 ] || echo "bench/net.sh: the run took longer than ${NET_TIMEOUT:-900} s" >&2
	echo "bench/net.sh: failed (status $rc)" >&2
	exit 1
fi
echo "bench/net.sh: done"
