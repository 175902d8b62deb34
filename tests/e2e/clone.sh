#!/usr/bin/env bash
# Clones of a running VM, end to end, with the demo guest on /dev/kvm:
#   - `snapshot take` of the running VM prints the VM process's figures;
#   - a running VM is cloned only from a snapshot (the refusal says how);
#   - a clone of a snapshot taken while `count` ran resumes at its first start
#     where the source was: the counter goes on from the snapshot's value, the
#     note on its disk is the snapshot's, while the source keeps its own;
#   - a linked clone of the same snapshot reads the snapshot's note from its
#     base while the source writes on, and its disk passes qemu-img check.
. "$(dirname "$0")/../lib.sh"
t_need_kvm
QEMU_IMG=${QEMU_IMG:-$(command -v qemu-img)}
[ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is not installed"
demo=$top_builddir/share/demo/demo.elf
[ -f "$demo" ] || t_skip_all "the demo guest is not built"
t_home
t_tmux_init
sock=$T_TMUX_SOCK
screen() { t_screen "$1"; }            # SESSION
wait_for() { t_wait_for "$1" "$2"; }   # SESSION TEXT: up to 30 s
type_line() { t_type "$1" "$2"; }
asan_opts=$T_ASAN_OPTS
console() { # VM: a console client in the tmux session of the same name
	tm kill-session -t "$1" 2>/dev/null
	tm new-session -d -s "$1" -x 100 -y 30 \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$asan_opts' '$TV' console $1; sleep 600"
}
count_now() { screen "$1" | grep -o 'count: [0-9]*' | tail -n1 | cut -d' ' -f2; }
cleanup() {
	for vm in lab twin; do "$TV" stop "$vm" --force >/dev/null 2>&1; done
	tm kill-server 2>/dev/null
	t_cleanup
}
trap cleanup EXIT

# The demo guest: 1 vCPU, 64 MiB, console on ttyS0, a 16 MiB qcow2 disk.
mkdir -p "$TERMVISOR_HOME/vms" "$TERMVISOR_HOME/data/lab"
"$QEMU_IMG" create -q -f qcow2 "$TERMVISOR_HOME/data/lab/disk.qcow2" 16M || exit 1
cat >"$TERMVISOR_HOME/vms/lab.conf" <<CONF
cpus = 1;
memory = "64M";
kernel = "$demo";
cmdline = "console=ttyS0";
disks = ( { file = "disk.qcow2"; format = "qcow2"; } );
CONF

"$TV" start lab >/dev/null || exit 1
console lab
t_check "the demo guest's prompt" wait_for lab 'demo\$'
type_line lab "note set alpha"
t_check "note alpha saved" wait_for lab "note saved (5 bytes)"
type_line lab "count"
wait_for lab "count: [1-9]" >/dev/null
c0=$(count_now lab)
out=$("$TV" snapshot take lab s1 2>&1)
c1=$(count_now lab)
t_check "take of a running VM prints the memory written and the pause" \
	grep -q "^took snapshot 's1' of VM lab: [0-9.]* [KMG]iB of memory written (a full image), guest paused [0-9.]* ms$" <<<"$out"
echo "# $out"
sleep 2
tm send-keys -t lab q
wait_for lab "stopped at" >/dev/null
type_line lab "note set bravo"
wait_for lab "note saved (5 bytes)" >/dev/null

msg=$("$TV" clone lab copy 2>&1)
t_check "a running VM is cloned only from a snapshot, and the refusal says how" \
	grep -q "VM lab is running: a running VM is cloned from one of its snapshots" <<<"$msg"
out=$("$TV" clone lab twin --snapshot s1)
t_check "clone of a machine snapshot of the running VM" \
	grep -q "twin resumes where lab was at 's1' when it first starts" <<<"$out"
"$TV" start twin >/dev/null
console twin
t_check "the clone's counter goes on from the snapshot" wait_for twin "count: [1-9]"
sleep 1
ct=$(count_now twin)
t_check "from the snapshot's value (at least $c0), not from zero: $ct" [ "${ct:-0}" -ge "${c0:-1}" ]
tm send-keys -t twin q
wait_for twin "stopped at" >/dev/null
type_line twin "note get"
t_check "the clone's disk holds the snapshot's note" wait_for twin "note: alpha"
type_line lab "note get"
t_check "the source keeps its own" wait_for lab "note: bravo"
"$TV" stop twin --force >/dev/null 2>&1

"$TV" clone lab linked --snapshot s1 --linked >/dev/null
ldisk=$TERMVISOR_HOME/data/linked/disk.qcow2
t_check "the linked clone's overlay is clean while the source runs" "$QEMU_IMG" check -q "$ldisk"
type_line lab "note set charlie"
wait_for lab "note saved (7 bytes)" >/dev/null
"$QEMU_IMG" convert -O raw "$ldisk" "$TERMVISOR_HOME/linked.raw"
t_check "the linked clone reads the snapshot's note, not the source's later ones" \
	bash -c "grep -aq alpha '$TERMVISOR_HOME/linked.raw' && ! grep -aq charlie '$TERMVISOR_HOME/linked.raw'"
t_done
