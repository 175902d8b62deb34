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
lacks() { ! grep -qx "$1" <<<"$2"; } # LINE TEXT
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
"$QEMU_IMG" snapshot -c by-hand "$img"
msg=$("$TV" snapshot take lab1 by-hand 2>&1)
t_check "a tag that a disk holds from another tool is refused, naming the disk" \
	grep -q "disk.qcow2 already holds an internal snapshot named 'by-hand' that is not one of termvisor's" <<<"$msg"
t_check "and that snapshot is left alone" grep -qx by-hand <<<"$(disk_tags "$img")"
"$QEMU_IMG" snapshot -d by-hand "$img"
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

out=$("$TV" snapshot rename lab1 snap-2 experiment)
t_check "rename says so" grep -q "renamed snapshot 'snap-2' of VM lab1 to 'experiment'" <<<"$out"
t_check "the disk's snapshot is renamed too" [ "$(disk_tags "$img" | tr '\n' ' ')" = "auto-1 base experiment " ]
t_check "the tree shows the new tag in place" grep -q "^\`-- experiment  (" <<<"$("$TV" snapshot list lab1 --tree)"
"$TV" snapshot rollback lab1 experiment --discard >/dev/null
t_check "the renamed snapshot rolls back" holds "$img" 0x33
t_check "renaming to a tag in use is refused" bash -c "! '$TV' snapshot rename lab1 experiment base 2>/dev/null"
"$TV" snapshot rename lab1 experiment snap-2 >/dev/null
t_check "the image is clean after renames" clean "$img"

# A stopped VM rolled back to a snapshot that holds the machine's state (made
# here by marking a disk-only one, as a running VM would have taken it): the
# disks revert now, and the index asks the next start to restore the machine.
idx=$data/lab1/snapshots/index
reindex() { # sed script: edits the index and gives it its checksum again
	sed -e '/^checksum /d' -e "$1" "$idx" >"$idx.new"
	local crc
	crc=$(gzip -c <"$idx.new" | tail -c8 | head -c4 | od -An -tx4 | tr -d ' \n')
	echo "checksum $crc" >>"$idx.new"
	mv "$idx.new" "$idx"
}
write "$img" 0x77
"$TV" snapshot take lab1 machine >/dev/null
reindex '/ tag=machine /s/memory=no/memory=yes/'
write "$img" 0x78
out=$("$TV" snapshot rollback lab1 machine --discard)
t_check "rollback to a machine snapshot of a stopped VM: restored at the next start" \
	grep -q "the machine state 'machine' holds is restored when lab1 next starts" <<<"$out"
t_check "its disks are reverted now" holds "$img" 0x77
t_check "the tree says so" grep -q "machine  (.*machine.*)  <- you are here (its machine state is restored at the next start)" \
	<<<"$("$TV" snapshot list lab1 --tree)"
t_check "the index records it" grep -q "^pending-restore $(grep -o 'id=[0-9a-f]* parent=[^ ]* created=[0-9]* memory=yes' "$idx" | cut -c4-19)$" "$idx"
t_check "list --json too" grep -q '"tag": "machine", .*"pending_restore": true' <<<"$("$TV" snapshot list lab1 --json)"
show=$("$TV" snapshot show lab1 machine)
t_check "show of a machine snapshot whose state file is missing says so, naming it" \
	grep -q "machine     unreadable: .*/state" <<<"$show"
"$TV" snapshot take lab1 after >/dev/null
t_check "a take clears it" grep -q "^pending-restore -$" "$idx"
"$TV" snapshot delete lab1 after >/dev/null
"$TV" snapshot delete lab1 machine >/dev/null

# A damaged index is refused, naming the file and line, and nothing is changed.
cp "$idx" "$idx.good"
sed -i 's/tag=base /tag=bass /' "$idx"
msg=$("$TV" snapshot list lab1 2>&1)
t_check "a damaged index is refused with the file and line" \
	grep -q "snapshots/index:[0-9]*: checksum: the file says" <<<"$msg"
t_check "a take is refused too" bash -c "! '$TV' snapshot take lab1 x 2>/dev/null"
t_check "and the disk has no snapshot x" lacks x "$(disk_tags "$img")"
mv "$idx.good" "$idx"

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
killed_run() { # take|delete|rename TAG [NEW]: termvisor snapshot ... lab1 TAG [NEW], killed somewhere
	local kind=$1
	shift
	if command -v strace >/dev/null; then
		local log=$TERMVISOR_HOME/strace.log
		# A run of the same kind first, to see which calls it makes.
		if [ "$kind" = take ]; then
			strace -f -qq -o "$log" -e trace=$calls "$TV" snapshot take lab1 probe >/dev/null 2>&1
		else
			"$TV" snapshot take lab1 probe >/dev/null 2>&1
			strace -f -qq -o "$log" -e trace=$calls "$TV" snapshot "$kind" lab1 probe \
				$([ "$kind" = rename ] && echo probe2) >/dev/null 2>&1
		fi
		"$TV" snapshot delete lab1 probe >/dev/null 2>&1
		"$TV" snapshot delete lab1 probe2 >/dev/null 2>&1
		mapfile -t seq < <(sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$log")
		local n=${#seq[@]} r name k
		r=$((RANDOM % (n > 0 ? n : 1)))
		name=${seq[$r]:-write}
		k=$(printf '%s\n' "${seq[@]:0:r+1}" | grep -cx "$name")
		# (In a shell of its own, whose "Killed" goes where its output goes.)
		bash -c '"$@"; true' - strace -f -qq -o /dev/null \
			-e inject="$name:signal=KILL:when=$k" "$TV" snapshot "$kind" "$@" >/dev/null 2>&1
		echo "# run $i: $kind $* killed at $name #$k of $n calls"
	else
		"$TV" snapshot "$kind" "$@" >/dev/null 2>&1 &
		local pid=$!
		sleep "0.00$((RANDOM % 10))"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
	fi
	return 0
}
whole=1 exact=1 images=1 tmps=1
for i in $(seq 1 20); do
	case $((i % 3)) in
	1) killed_run take lab1 "k$i" ;;
	2) "$TV" snapshot take lab1 "d$i" >/dev/null
	   killed_run delete lab1 "d$i" ;;
	0) "$TV" snapshot take lab1 "r$i" >/dev/null
	   killed_run rename lab1 "r$i" "renamed$i" ;;
	esac
	# Listed means whole: the disk holds every listed tag (a rename cut short
	# is finished by the next change, below).
	missing=$(comm -23 <(listed_tags lab1) <(disk_tags "$img"))
	[ -z "$missing" ] || [ $((i % 3)) = 0 ] ||
		{ whole=0; echo "# run $i: listed but not on the disk: $missing"; }
	# The next change recovers what the killed run left.
	"$TV" snapshot take lab1 recover >/dev/null && "$TV" snapshot delete lab1 recover >/dev/null
	[ "$(listed_tags lab1)" = "$(disk_tags "$img")" ] ||
		{ exact=0; echo "# run $i: the disk holds other snapshots than listed"; }
	clean "$img" || { images=0; echo "# run $i: qemu-img check fails"; }
	ls -A "$data/lab1/snapshots" | grep -q '^\.tmp-' && { tmps=0; echo "# run $i: .tmp left"; }
done
t_check "20 killed takes, deletes and renames: only whole snapshots listed" [ $whole = 1 ]
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
# A clone of a snapshot holding the machine's state gets it as its own, to be
# restored at its first start (the state file here is a stand-in: the files are
# copied as they are, and the VM process checks them when it starts).
write "$img" 0x79
"$TV" snapshot take lab1 mach >/dev/null
reindex '/ tag=mach /s/memory=no/memory=yes/'
mdir=$("$TV" snapshot show lab1 mach --json | grep -o '"directory": "[^"]*"' | cut -d'"' -f4)
head -c 5000 /dev/urandom >"$mdir/state"
out=$("$TV" clone lab1 resumed --snapshot mach)
t_check "a clone of a machine snapshot says it resumes" \
	grep -q "resumed resumes where lab1 was at 'mach' when it first starts" <<<"$out"
t_check "its tree holds the snapshot, to be restored at its first start" \
	grep -q '"tag": "mach", .*"memory": true, .*"here": true, "pending_restore": true' \
	<<<"$("$TV" snapshot list resumed --json)"
rdir=$("$TV" snapshot show resumed mach --json | grep -o '"directory": "[^"]*"' | cut -d'"' -f4)
t_check "with the snapshot's files" cmp -s "$mdir/state" "$rdir/state"
t_check "its disk holds the snapshot's data" holds "$data/resumed/disk.qcow2" 0x79
t_check "and the internal snapshot of the same tag" [ "$(disk_tags "$data/resumed/disk.qcow2")" = mach ]
t_check "its disk is clean" clean "$data/resumed/disk.qcow2"
"$TV" snapshot delete lab1 mach >/dev/null

msg=$("$TV" clone lab1 full1 2>&1)
t_check "a clone name in use is refused" grep -q "VM 'full1' already exists" <<<"$msg"
msg=$("$TV" clone lab1 x --snapshot nosuch 2>&1)
t_check "an unknown snapshot is named" grep -q "no snapshot named 'nosuch'" <<<"$msg"
t_check "nothing is left of a failed clone" [ ! -e "$data/x" ] && [ ! -e "$TERMVISOR_HOME/vms/x.conf" ]
t_check "list shows the clones" [ "$("$TV" list | grep -c '^\(full[12]\|linked[12]\|resumed\) ')" = 5 ]
t_check "list counts lab1's snapshots" grep -q "^lab1 .* $(listed_tags lab1 | wc -l)$" <<<"$("$TV" list)"

n=$(listed_tags lab1 | wc -l)
out=$("$TV" delete lab1 --yes)
t_check "delete says how many snapshots go" grep -q "^deleted VM 'lab1' and $n snapshots$" <<<"$out"
t_check "the linked clones still read their base" holds "$data/linked2/disk.qcow2" 0x11
t_check "and their base is kept" [ -f "$b1" ]
out=$("$TV" delete linked1 --yes)
t_check "deleting one of two linked clones keeps their base" [ -f "$b1" ] && ! grep -q "removed the base" <<<"$out"
nbases=$(find "$data/.bases" -type f ! -name .lock | wc -l)
out=$("$TV" delete linked2 --yes)
t_check "deleting the last clone of a base removes it, saying so" [ ! -e "$b1" ] && grep -q "^removed the base .bases/${b1##*/}, which no VM uses any more$" <<<"$out"
t_check "and no other base" [ "$(find "$data/.bases" -type f ! -name .lock | wc -l)" = $((nbases - 1)) ]
# A base whose clone's definition cannot be read is kept: nothing in use is
# ever removed on a guess.
"$TV" clone resumed linked3 --linked >/dev/null
b3=$("$QEMU_IMG" info "$data/linked3/disk.qcow2" | sed -n 's/^backing file: //p')
echo 'cpus = "many";' >>"$TERMVISOR_HOME/vms/linked3.conf"
out=$("$TV" delete full1 --yes 2>&1)
t_check "a broken definition keeps the bases, saying why" [ -f "$b3" ] && grep -q "linked-clone bases kept: .*linked3.conf" <<<"$out"
t_done
