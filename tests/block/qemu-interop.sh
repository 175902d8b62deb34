#!/usr/bin/env bash
# Images made by qemu-img and written with qemu-io (every cluster size, v2 and
# v3, snapshots, zero writes, discards, compression, backing chains) read back
# through termvisor exactly as qemu-img reads them; images termvisor writes
# pass `qemu-img check`; the image locks of the two exclude each other.
. "$top_srcdir/tests/lib.sh"
[ -n "${QEMU_IMG:-}" ] && [ -x "$QEMU_IMG" ] || t_skip_all "qemu-img is not installed"
[ -n "${QEMU_IO:-}" ] && [ -x "$QEMU_IO" ] || t_skip_all "qemu-io is not installed"
D=$(mktemp -d "${TMPDIR:-/tmp}/tv-interop.XXXXXX")
trap 'rm -rf "$D"' EXIT
QI=$QEMU_IMG

# Same bytes through both readers?
same_as_qemu() { # image
	rm -f "$D/theirs.raw" "$D/ours.raw"
	"$QI" convert -O raw "$1" "$D/theirs.raw" &&
		"$TV" img convert -O raw "$1" "$D/ours.raw" >/dev/null &&
		cmp -s "$D/theirs.raw" "$D/ours.raw"
}
qcheck() { "$QI" check -q "$1" >/dev/null 2>&1; }

io() { # image, qemu-io commands...
	local img=$1 a=()
	shift
	for c in "$@"; do a+=(-c "$c"); done
	"$QEMU_IO" -f qcow2 "${a[@]}" "$img" >/dev/null
}

for compat in 0.10 1.1; do
	for cs in 512 4k 64k 2M; do
		img="$D/q-$compat-$cs.qcow2"
		size=8M
		[ $cs = 2M ] && size=24M
		"$QI" create -q -f qcow2 -o compat=$compat,cluster_size=$cs "$img" $size
		io "$img" "write -P 0x11 0 100k" "write -P 0x22 1000k 3000" "write -P 0x33 5M 1M" \
			"write -P 0x44 123 1"
		"$QI" snapshot -c one "$img"
		io "$img" "write -P 0x55 4k 200k" "write -z 5M 512k" "discard 0 64k" \
			"write -P 0x66 7M 4k"
		"$QI" snapshot -c two "$img"
		io "$img" "write -P 0x77 2M 300k"
		t_check "v$compat cluster $cs: reads as qemu-img does" same_as_qemu "$img"
		cp "$img" "$D/theirs.qcow2"
		"$QI" snapshot -a one "$D/theirs.qcow2"
		"$TV" img snapshot -a one "$img"
		rm -f "$D/a.raw" "$D/b.raw"
		"$QI" convert -O raw "$img" "$D/a.raw"
		"$QI" convert -O raw "$D/theirs.qcow2" "$D/b.raw"
		t_check "v$compat cluster $cs: applying a qemu snapshot" cmp -s "$D/a.raw" "$D/b.raw"
		t_check "v$compat cluster $cs: qemu-img check after apply" qcheck "$img"
		# termvisor writes onto qemu's image, then qemu reads it.
		head -c 3M /dev/urandom >"$D/pat.raw"
		truncate -s $size "$D/pat.raw"
		"$TV" img convert -n -O qcow2 "$D/pat.raw" "$img" >/dev/null
		t_check "v$compat cluster $cs: termvisor writes read back by qemu" \
			"$QI" compare -q "$D/pat.raw" "$img"
		"$TV" img snapshot -d two "$img"
		"$TV" img snapshot -c three "$img"
		t_check "v$compat cluster $cs: qemu-img check after our snapshots" qcheck "$img"
		t_check "v$compat cluster $cs: our check agrees" "$TV" img check "$img" >/dev/null
		rm -f "$img" "$D/theirs.qcow2"
	done
done

# Compressed clusters, deflate and zstd, written by qemu-img.
head -c 2M /dev/urandom >"$D/rnd.raw"
yes "termvisor compresses text well" | head -c 3M >"$D/txt.raw"
cat "$D/rnd.raw" "$D/txt.raw" >"$D/mix.raw"
for ct in zlib zstd; do
	"$QI" convert -c -O qcow2 -o compression_type=$ct "$D/mix.raw" "$D/c.qcow2"
	t_check "compressed ($ct) by qemu-img reads back" same_as_qemu "$D/c.qcow2"
	"$TV" img convert -c -O qcow2 -o compression_type=$ct "$D/mix.raw" "$D/ours-c.qcow2" \
		>/dev/null
	t_check "compressed ($ct) by termvisor passes qemu-img check" qcheck "$D/ours-c.qcow2"
	t_check "compressed ($ct) by termvisor reads back in qemu" \
		"$QI" compare -q "$D/mix.raw" "$D/ours-c.qcow2"
	rm -f "$D/c.qcow2" "$D/ours-c.qcow2"
done

# Backing chains with relative names: raw <- qcow2 <- qcow2 in other folders.
mkdir -p "$D/tpl" "$D/vms"
"$QI" create -q -f raw "$D/tpl/base.raw" 6M
"$QEMU_IO" -f raw -c "write -P 0xa1 0 2M" "$D/tpl/base.raw" >/dev/null
"$QI" create -q -f qcow2 -b base.raw -F raw "$D/tpl/mid.qcow2" 6M
io "$D/tpl/mid.qcow2" "write -P 0xb2 1M 2M"
"$QI" create -q -f qcow2 -b ../tpl/mid.qcow2 -F qcow2 "$D/vms/top.qcow2" 8M
io "$D/vms/top.qcow2" "write -P 0xc3 2500k 100k" "write -z 0 64k"
t_check "backing chain raw <- qcow2 <- qcow2 reads as qemu-img does" same_as_qemu "$D/vms/top.qcow2"
"$TV" img create -b ../tpl/mid.qcow2 -F qcow2 "$D/vms/ours.qcow2" >/dev/null
t_check "termvisor overlay takes its size from the backing file" \
	sh -c "'$TV' img info --json '$D/vms/ours.qcow2' | grep -q '\"virtual-size\": 6291456'"
sum_base=$(md5sum <"$D/tpl/base.raw")
head -c 1M /dev/urandom >"$D/pat6.raw"
truncate -s 6M "$D/pat6.raw"
"$TV" img convert -n -O qcow2 "$D/pat6.raw" "$D/vms/ours.qcow2" >/dev/null
t_check "termvisor overlay passes qemu-img check" qcheck "$D/vms/ours.qcow2"
t_check "termvisor overlay reads as qemu-img does" same_as_qemu "$D/vms/ours.qcow2"
t_check "termvisor overlay holds what was written" "$QI" compare -q "$D/pat6.raw" "$D/vms/ours.qcow2"
t_check "backing file untouched" test "$(md5sum <"$D/tpl/base.raw")" = "$sum_base"
t_check "info --backing-chain names all three" \
	sh -c "'$TV' img info --backing-chain '$D/vms/top.qcow2' | grep -c '^image:' | grep -qx 3"

# Grow, then check.
"$QI" create -q -f qcow2 "$D/g.qcow2" 1M
io "$D/g.qcow2" "write -P 0x5a 0 1M"
"$TV" img resize "$D/g.qcow2" +3M >/dev/null
t_check "resize: qemu-img sees the new size" \
	sh -c "'$QI' info --output=json '$D/g.qcow2' | grep -q '\"virtual-size\": 4194304'"
t_check "resize: image passes qemu-img check" qcheck "$D/g.qcow2"
t_check "resize: new area reads as zeros" same_as_qemu "$D/g.qcow2"

# check exit statuses like qemu-img: 3 for leaks, repaired by -r leaks.
"$QI" create -q -f qcow2 "$D/leak.qcow2" 4M
io "$D/leak.qcow2" "write -P 1 0 1M"
# Raise the refcount of cluster 0 (the header) to 2: one leaked reference.
printf '\000\002' | dd of="$D/leak.qcow2" bs=1 seek=$((2 * 65536)) conv=notrunc 2>/dev/null
"$TV" img check "$D/leak.qcow2" >/dev/null
t_check "check exits 3 on leaks" test $? -eq 3
"$TV" img check -r leaks "$D/leak.qcow2" >/dev/null
t_check "check -r leaks repairs them" qcheck "$D/leak.qcow2"

# Locks: qemu holding the image keeps termvisor from writing it, and back.
"$QI" create -q -f qcow2 "$D/lock.qcow2" 4M
# Wait for a writer to hold the image's "write" permission byte (101), read
# passively from /proc/locks: probing with `qemu-img info` would itself take
# lock bytes, and a writer that opens at that instant gives up and exits.
wait_locked() { # image, writer's PID; up to 30 s: qemu-io starts slowly under load
	local ino
	ino=$(stat -c %i "$1")
	for _ in $(seq 300); do
		kill -0 "$2" 2>/dev/null || return 1
		awk -v ino=":$ino" 'index($(NF-2), ino) == length($(NF-2)) - length(ino) + 1 &&
			$(NF-1) <= 101 && ($NF == "EOF" || $NF >= 101) { f = 1 } END { exit !f }' \
			/proc/locks && return 0
		sleep 0.1
	done
	return 1
}
"$QEMU_IO" -f qcow2 -c "sleep 60000" "$D/lock.qcow2" >/dev/null 2>&1 &
qpid=$!
t_check "qemu-io holds its lock on the image" wait_locked "$D/lock.qcow2" $qpid
# QEMU settles its permissions (and so its lock bytes) in steps after opening;
# give it a moment past the first lock seen before testing for its final ones.
sleep 1
out=$("$TV" img snapshot -c x "$D/lock.qcow2" 2>&1)
says() { grep -q "$1" <<<"$2" || { echo "# got: $2"; return 1; }; }
t_check "a writer while qemu-io holds the image gets 'in use by PID $qpid'" \
	says "in use by PID $qpid" "$out"
t_check "qemu-io was still running when refused" kill -0 $qpid
t_check "the refused writer left the image unchanged" \
	sh -c "! '$TV' img snapshot -l -U '$D/lock.qcow2' | grep -qw x"
kill $qpid 2>/dev/null
wait $qpid 2>/dev/null
"$TV" img bench -w -c 4000000 -s 512 "$D/lock.qcow2" >/dev/null 2>&1 &
tpid=$!
t_check "termvisor holds its lock on the image" wait_locked "$D/lock.qcow2" $tpid
t_check "qemu-io cannot write while termvisor does" \
	sh -c "! '$QEMU_IO' -f qcow2 -c 'write 0 4k' '$D/lock.qcow2' >/dev/null 2>&1"
kill $tpid 2>/dev/null
wait $tpid 2>/dev/null
t_check "image consistent after its writer was killed" \
	sh -c "'$TV' img check '$D/lock.qcow2' >/dev/null; [ \$? -ne 2 ]"

t_done
