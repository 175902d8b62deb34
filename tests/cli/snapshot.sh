#!/usr/bin/env bash
# `termvisor snapshot` and `termvisor clone` on a stopped VM: disk-only
# snapshots as internal qcow2 snapshots of the same name, rollback that brings
# the data back, the tree after a delete, writers killed at random points, and
# clones (full and linked) that hold the data. qemu-img and qemu-io are the
# oracle for the images.
. "$(dirname "$0")/../lib.sh"
t_home
[ -n "${QEMU_IMG:-}" ] && [ -n "${QEMU_IO:-}" ] || t_skip_all "qemu-img and qemu-io are needed"

"$TV" create lab1 --disk 64M >/dev/null || { echo "cannot create lab1"; exit 1; }
data=$TERMVISOR_HOME/data
img=$data/lab1/disk.qcow2

write() { "$QEMU_IO" -c "write -P $2 0 256k" "$1" >/dev/null; }  # IMAGE PATTERN
holds() { "$QEMU_IO" -c "read -P $2 0 256k" "$1" >/dev/null 2>&1; } # IMAGE PATTERN
clean() { "$QEMU_IMG" check -q "$1"; }
disk_tags() { "$QEMU_IMG" snapshot -l "$1" | awk 'NR > 2 { print $2 }' | sort; }
listed_tags() { "$TV" snapshot list "$1" --json | grep -o '"tag": "[^"]*"' | cut -d'"' -f4 | sort; }

write "$img" 0x11
out=$("$TV" snapshot take lab1 base --description "clean install")
t_check "take says what it did" grep -q "took disk-only snapshot 'base' of stopped VM lab1 (1 disk)" <<<"$out"
write "$img" 0x22
out=$("$TV" snapshot take lab1)
t_check "a tag is proposed when none is given" grep -q "'snap-1'" <<<"$out"
write "$img" 0x33
"$TV" snapshot take lab1 >/dev/null
t_check "qemu-img sees the three snapshots by their tags" \
	[ "$(disk_tags "$img" | tr '\n' ' ')" = "base snap-1 snap-2 " ]
t_check "the image is clean" clean "$img"

tree=$("$TV" snapshot list lab1 --tree)
t_check "the tree: base at the root" grep -q "^base  (.*disk-only.*clean install)$" <<<"$tree"
t_check "the tree: snap-1 under base" grep -q "^\`-- snap-1  (" <<<"$tree"
t_check "the tree: snap-2 under snap-1, and here" \
	grep -q "^    \`-- snap-2  (.*)  <- you are here$" <<<"$tree"
flat=$("$TV" snapshot list lab1)
t_check "the flat list marks here and names parents" grep -q "^\* *snap-2 .* disk-only .* snap-1$" <<<"$flat"

t_check "a tag in use is refused" bash -c "! '$TV' snapshot take lab1 base 2>/dev/null"
msg=$("$TV" snapshot take lab1 'a b' 2>&1)
t_check "a bad tag is refused, naming the character" grep -q "snapshot tag 'a b' has the character ' '" <<<"$msg"
msg=$("$TV" snapshot rollback lab1 nosuch 2>&1)
t_check "an unknown tag is named" grep -q "VM lab1 has no snapshot named 'nosuch'" <<<"$msg"
msg=$("$TV" snapshot frob lab1 2>&1)
t_check "an unknown subcommand is a usage error" grep -q "unknown subcommand 'frob'" <<<"$msg"

# Rollback: the data written since comes back as it was at the snapshot, and
# the state before is kept as an automatic snapshot.
write "$img" 0x44
out=$("$TV" snapshot rollback lab1 base)
t_check "rollback says so and names the automatic snapshot" \
	grep -q "to snapshot 'base'; the state before was saved as 'auto-1'" <<<"$out"
t_check "rollback brings base's data back" holds "$img" 0x11
t_check "the image is clean after rollback" clean "$img"
t_check "here moved to base" grep -q "^base  (.*)  <- you are here$" <<<"$("$TV" snapshot list lab1 --tree)"
"$TV" snapshot rollback lab1 auto-1 --discard >/dev/null
t_check "the automatic snapshot holds what was there before the rollback" holds "$img" 0x44
t_check "--discard takes no automatic snapshot" [ "$(listed_tags lab1 | grep -c '^auto-')" = 1 ]

# Delete the middle of base -> snap-1 -> snap-2: snap-2 keeps working.
out=$("$TV" snapshot delete lab1 snap-1)
t_check "delete says where the child went" grep -q "its 1 child now descends from 'base'" <<<"$out"
t_check "the disk's snapshot went with it" [ "$(disk_tags "$img" | tr '\n' ' ')" = "auto-1 base snap-2 " ]
t_check "snap-2 is now under base" grep -q "^\`-- snap-2  (" <<<"$("$TV" snapshot list lab1 --tree)"
"$TV" snapshot rollback lab1 snap-2 --discard >/dev/null
t_check "the child of the deleted snapshot still rolls back" holds "$img" 0x33
"$TV" snapshot rollback lab1 base --discard >/dev/null
t_check "and so does the parent" holds "$img" 0x11
t_check "the image is clean after the delete" clean "$img"

show=$("$TV" snapshot show lab1 base)
t_check "show: kind and description" grep -q "kind        disk-only" <<<"$show"
t_check "show: children" grep -q "children    snap-2" <<<"$show"
t_check "show: the disk holds it" grep -q "internal snapshot 'base' present" <<<"$show"
json=$("$TV" snapshot show lab1 base --json)
t_check "show --json" grep -q '^{"tag": "base", .*"description": "clean install", "children": \["snap-2"\], .*"disks": \[{"file": ".*disk.qcow2", "internal_snapshot": "present"}\]}$' <<<"$json"
json=$("$TV" snapshot list lab1 --json)
t_check "list --json names here and each parent" \
	grep -q '"here": "base"' <<<"$json"
t_check "list --json: snap-2's parent is base" grep -q '"tag": "snap-2", .*"parent": "base"' <<<"$json"

msg=$("$TV" snapshot rename lab1 snap-2 experiment 2>&1)
if grep -q "not supported by this build" <<<"$msg"; then
	t_ok "rename of a stopped VM's disk snapshots is refused until the disks can rename # SKIP"
else
	t_check "rename" grep -q "renamed snapshot 'snap-2' of VM lab1 to 'experiment'" <<<"$msg"
	t_check "rename: the disk's snapshot too" grep -q "^experiment$" <<<"$(disk_tags "$img")"
	t_check "rename: the tree" grep -q "experiment" <<<"$("$TV" snapshot list lab1 --tree)"
	"$TV" snapshot rename lab1 experiment snap-2 >/dev/null
fi

# Automatic snapshots are pruned by snapshot_keep_automatic.
echo "snapshot_keep_automatic = 2;" >"$TERMVISOR_HOME/termvisor.conf"
for _ in 1 2 3 4; do "$TV" snapshot rollback lab1 base >/dev/null; done
t_check "snapshot_keep_automatic = 2 keeps two automatic snapshots" \
	[ "$(listed_tags lab1 | grep -c '^auto-')" = 2 ]
t_check "and the disk only theirs" [ "$(disk_tags "$img" | grep -c '^auto-')" = 2 ]
rm "$TERMVISOR_HOME/termvisor.conf"

# Raw disks hold no snapshots: refused, saying what to do.
"$TV" create raw1 >/dev/null
sed -i 's/^disks = .*/disks = ( { file = "d.img"; format = "raw"; } );/' "$TERMVISOR_HOME/vms/raw1.conf"
truncate -s 1M "$data/raw1/d.img"
msg=$("$TV" snapshot take raw1 2>&1)
t_check "a raw disk is refused, naming it" grep -q "disk .*/d.img is raw; snapshots live inside qcow2" <<<"$msg"
t_check "and nothing is listed" grep -q "VM raw1 has no snapshots" <<<"$("$TV" snapshot list raw1)"

# Writers killed at random points: only whole snapshots are listed, and the
# next change leaves the disk holding exactly the listed ones, image clean.
# With strace the kill lands on a random state-changing system call of the
# run; without it, after a random delay.
calls=write,pwrite64,pwritev,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat,rmdir,ftruncate,fallocate,flock
killed_run() { # take|delete TAG: termvisor snapshot take|delete lab1 TAG, killed somewhere
	if command -v strace >/dev/null; then
		local log=$TERMVISOR_HOME/strace.log
		# A run of the same kind first, to see which calls it makes.
		if [ "$1" = take ]; then
			strace -f -qq -o "$log" -e trace=$calls "$TV" snapshot take lab1 probe >/dev/null 2>&1
			"$TV" snapshot delete lab1 probe >/dev/null 2>&1
		else
			"$TV" snapshot take lab1 probe >/dev/null 2>&1
			strace -f -qq -o "$log" -e trace=$calls "$TV" snapshot delete lab1 probe >/dev/null 2>&1
		fi
		mapfile -t seq < <(sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$log")
		local n=${#seq[@]} r name k
		r=$((RANDOM % (n > 0 ? n : 1)))
		name=${seq[$r]:-write}
		k=$(printf '%s\n' "${seq[@]:0:r+1}" | grep -cx "$name")
		# (In a shell of its own, whose "Killed" goes where its output goes.)
		bash -c '"$@"; true' - strace -f -qq -o /dev/null \
			-e inject="$name:signal=KILL:when=$k" "$TV" snapshot "$1" lab1 "$2" >/dev/null 2>&1
		echo "# run $i: $1 $2 killed at $name #$k of $n calls"
	else
		"$TV" snapshot "$1" lab1 "$2" >/dev/null 2>&1 &
		local pid=$!
		sleep "0.00$((RANDOM % 10))"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
	fi
	return 0
}
whole=1 exact=1 images=1 tmps=1
for i in $(seq 1 20); do
	if [ $((i % 2)) = 1 ]; then
		killed_run take "k$i"
	else
		"$TV" snapshot take lab1 "d$i" >/dev/null
		killed_run delete "d$i"
	fi
	# Listed means whole: the disk holds every listed tag.
	missing=$(comm -23 <(listed_tags lab1) <(disk_tags "$img"))
	[ -z "$missing" ] || { whole=0; echo "# run $i: listed but not on the disk: $missing"; }
	# The next change recovers what the killed run left.
	"$TV" snapshot take lab1 recover >/dev/null && "$TV" snapshot delete lab1 recover >/dev/null
	[ "$(listed_tags lab1)" = "$(disk_tags "$img")" ] ||
		{ exact=0; echo "# run $i: the disk holds other snapshots than listed"; }
	clean "$img" || { images=0; echo "# run $i: qemu-img check fails"; }
	ls -A "$data/lab1/snapshots" | grep -q '^\.tmp-' && { tmps=0; echo "# run $i: .tmp left"; }
done
t_check "20 killed takes and deletes: only whole snapshots listed" [ $whole = 1 ]
t_check "after recovery the disk holds exactly the listed snapshots" [ $exact = 1 ]
t_check "and qemu-img check finds the image clean each time" [ $images = 1 ]
t_check "and no temporary directory is left" [ $tmps = 1 ]
t_check "base still rolls back after all that" "$TV" snapshot rollback lab1 base --discard
t_check "with its data" holds "$img" 0x11

# Clones.
write "$img" 0x55
out=$("$TV" clone lab1 full1)
t_check "a full clone of the current state" grep -q "cloned VM lab1 into full1 (full copy)" <<<"$out"
t_check "its disk holds the current data" holds "$data/full1/disk.qcow2" 0x55
t_check "its disk is clean" clean "$data/full1/disk.qcow2"
t_check "it has no snapshots of its own" [ -z "$(disk_tags "$data/full1/disk.qcow2")" ]
t_check "the definition names the clone" grep -q '^name = "full1";' "$TERMVISOR_HOME/vms/full1.conf"
"$TV" clone lab1 full2 --snapshot snap-2 >/dev/null
t_check "a full clone at a snapshot holds the snapshot's data" holds "$data/full2/disk.qcow2" 0x33
t_check "the source is untouched" holds "$img" 0x55
t_check "the source is clean" clean "$img"

"$TV" clone lab1 linked1 --snapshot base --linked >/dev/null
"$TV" clone lab1 linked2 --snapshot base --linked >/dev/null
b1=$("$QEMU_IMG" info "$data/linked1/disk.qcow2" | sed -n 's/^backing file: //p')
b2=$("$QEMU_IMG" info "$data/linked2/disk.qcow2" | sed -n 's/^backing file: //p')
t_check "linked clones of one snapshot share one base" [ -n "$b1" ] && [ "$b1" = "$b2" ]
t_check "the base is read-only" [ "$(stat -c %a "$b1")" = 444 ]
t_check "the base is clean" clean "$b1"
t_check "a linked clone reads the snapshot's data" holds "$data/linked1/disk.qcow2" 0x11
write "$data/linked1/disk.qcow2" 0x66
t_check "writes to one linked clone stay in its overlay" holds "$data/linked2/disk.qcow2" 0x11
t_check "the overlay is clean" clean "$data/linked1/disk.qcow2"
"$TV" snapshot rollback lab1 snap-2 --discard >/dev/null
t_check "the source rolling back leaves the base alone" holds "$data/linked2/disk.qcow2" 0x11
msg=$("$TV" clone lab1 full1 2>&1)
t_check "a clone name in use is refused" grep -q "VM 'full1' already exists" <<<"$msg"
msg=$("$TV" clone lab1 x --snapshot nosuch 2>&1)
t_check "an unknown snapshot is named" grep -q "no snapshot named 'nosuch'" <<<"$msg"
t_check "nothing is left of a failed clone" [ ! -e "$data/x" ] && [ ! -e "$TERMVISOR_HOME/vms/x.conf" ]
t_check "list shows the clones" [ "$("$TV" list | grep -c '^\(full\|linked\)[12] ')" = 4 ]
t_check "list counts lab1's snapshots" grep -q "^lab1 .* $(listed_tags lab1 | wc -l)$" <<<"$("$TV" list)"

n=$(listed_tags lab1 | wc -l)
out=$("$TV" delete lab1 --yes)
t_check "delete says how many snapshots go" grep -q "^deleted VM 'lab1' and $n snapshots$" <<<"$out"
t_check "the linked clones still read their base" holds "$data/linked2/disk.qcow2" 0x11
t_done
