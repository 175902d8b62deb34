#!/usr/bin/env bash
# Machine snapshots, termvisor against QEMU's savevm/loadvm over its monitor, in
# one run, on the same guest program (the demo guest, 1 vCPU, a 16 MiB qcow2
# disk) and memory size (bench/snapshot.py says what each part measures):
#   (a) rollback of a running VM at 256 MiB, 1 GiB and 4 GiB, the guest having
#       written all its RAM first: request to reply and to the guest answering;
#   (b) the pause of a snapshot taken after a parent, 1 GiB guest with 1%, 10%
#       and 100% of its RAM written since;
#   (c) disk space of ten snapshots of a 1 GiB guest writing 10 MiB between them.
# The figures go into bench/RESULTS.md ("snapshot" section).
#
#   usage: bench/snapshot.sh [BUILD_DIR]
#   env: SNAP_SIZES (MiB for (a), default 256,1024,4096), SNAP_RUNS (3),
#        SNAP_GUEST_MIB (RAM for (b) and (c), 1024), SNAP_QEMU_ACCEL (kvm; tcg with
#        SNAP_ENGINES=qemu tries the QEMU side where there is no /dev/kvm),
#        SNAP_PARTS (a,b,c), SNAP_ENGINES (qemu,termvisor), SNAP_DIR (where the
#        disks and snapshots go; default $TMPDIR or /tmp), TV (termvisor),
#        SNAP_TIMEOUT (seconds one step may take, 600),
#        SNAP_NESTED=1 names the figures as taken inside tests/kvm-in-qemu.sh.
#
# Minutes, and memory: a 4 GiB guest and its 4 GiB snapshot, and QEMU's ten
# full copies of a 1 GiB guest in (c); a size or part that does not fit in the
# machine's free memory and SNAP_DIR's free space is left out, saying so. Not
# part of make check. Inside the nested machine (no /dev/kvm here), with its
# /tmp (a tmpfs) grown to hold the images:
#   KVM_IN_QEMU_MEM=16G \
#   KVM_IN_QEMU_COMMAND='mount -o remount,size=14G /tmp && SNAP_NESTED=1 ../bench/snapshot.sh .' \
#     tests/kvm-in-qemu.sh
# (the machine needs 16 GiB of memory rather than its default 4 GiB). Parts can
# run apart (SNAP_PARTS, SNAP_SIZES) to keep each run within the machine's time.
# termvisor's side needs `termvisor snapshot take|rollback`; a termvisor without
# them is left out (the table says so) and QEMU's side still runs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
TV=${TV:-$build/termvisor}
demo=$build/share/demo/demo.elf
[ -x "$TV" ] || { echo "bench/snapshot.sh: no $TV (build first)" >&2; exit 1; }
[ -f "$demo" ] || make -C "$build" share/demo/demo.elf >/dev/null
command -v qemu-system-x86_64 >/dev/null || { echo "bench/snapshot.sh: qemu-system-x86_64 missing" >&2; exit 1; }
accel=${SNAP_QEMU_ACCEL:-kvm}
[ -e /dev/kvm ] || [ "$accel/${SNAP_ENGINES:-}" = tcg/qemu ] ||
	{ echo "bench/snapshot.sh: no /dev/kvm (see tests/kvm-in-qemu.sh)" >&2; exit 1; }
[ -f /usr/share/qemu/qboot.rom ] || { echo "bench/snapshot.sh: /usr/share/qemu/qboot.rom missing (qemu-system-data)" >&2; exit 1; }
work=$(mktemp -d "${SNAP_DIR:-${TMPDIR:-/tmp}}/tv-snapbench.XXXXXX")
trap 'rm -rf "$work"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
sizes=${SNAP_SIZES:-256,1024,4096}
table=$(python3 "$top/bench/snapshot.py" --termvisor "$TV" --demo "$demo" --work "$work" \
	--sizes "$sizes" --runs "${SNAP_RUNS:-3}" \
	--parts "${SNAP_PARTS:-a,b,c}" --engines "${SNAP_ENGINES:-qemu,termvisor}" \
	--guest-mib "${SNAP_GUEST_MIB:-1024}" --qemu-accel "$accel" --timeout "${SNAP_TIMEOUT:-600}")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$table"

# One section per part, and for (a) per set of sizes, so that parts run apart
# (each within the nested machine's time) keep each other's figures.
tag=termvisor-snapshot
[ -z "${SNAP_NESTED:-}" ] || tag=termvisor-snapshot-nested
about=$work/about.md
{
	if [ -n "${SNAP_NESTED:-}" ]; then
		echo "Measured $(date -u +%Y-%m-%d) by \`bench/snapshot.sh\` with SNAP_NESTED=1: the engines on the"
		echo "KVM of a QEMU machine whose CPU is emulated (TCG with SVM), $(nproc) vCPUs and"
		echo "$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) >> 20)) GiB there, kernel $(uname -r);"
	else
		echo "Measured $(date -u +%Y-%m-%d) by \`bench/snapshot.sh\` on $(nproc) CPUs ($(uname -r)),"
	fi
	echo "$(qemu-system-x86_64 --version | head -n1). The demo guest, 1 vCPU,"
	echo "a 16 MiB qcow2 disk; QEMU: -M pc with qboot, virtio-blk-pci, savevm/loadvm through QMP's"
	echo "human-monitor-command$([ "$accel" = kvm ] || echo ", QEMU with -accel $accel"); termvisor (built from"
	echo "$(git -C "$(dirname "$TV")/.." describe --always --dirty 2>/dev/null || echo "an unknown tree")): a background VM,"
	echo "\`termvisor snapshot take|rollback\`. Disks and snapshots on $(stat -f -c %T "$work")."
	echo "Load average $load_before at the start, $load_after at the end. \`dirty 100%\` writes"
	echo "all the RAM the guest may (all but its first 4 MiB)."
} >"$about"
printf '%s\n' "$table" >"$work/table.md"
python3 - "$top/bench/RESULTS.md" "$work/table.md" "$about" "$tag" "$sizes" <<'PY'
import re, sys
path, tables, about, tag, sizes = sys.argv[1:6]
text = open(path).read()
about = open(about).read().rstrip("\n")
titles = {"a": "rollback of a running VM", "b": "pause of a snapshot after a parent",
          "c": "disk space of ten snapshots"}
parts = re.split(r"^@@ part (\w)\n", open(tables).read(), flags=re.M)[1:]
for p, body in zip(parts[0::2], parts[1::2]):
    t = "%s-%s" % (tag, p) + ("-" + sizes.replace(",", "-") if p == "a" else "")
    heading = "## Snapshots, (%s) %s%s%s" % (
        p, titles[p], " (%s MiB)" % sizes if p == "a" else "",
        ", inside tests/kvm-in-qemu.sh" if tag.endswith("nested") else "")
    section = "<!-- %s begin -->\n%s\n\n%s\n\n%s\n<!-- %s end -->" % (
        t, heading, about, body.strip("\n"), t)
    pat = re.compile(r"<!-- %s begin -->.*?<!-- %s end -->" % (re.escape(t), re.escape(t)), re.S)
    text = pat.sub(lambda m: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "bench/snapshot.sh: results in bench/RESULTS.md"
