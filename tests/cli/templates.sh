#!/usr/bin/env bash
# Templates: listed, used by create, and a failing template leaves nothing behind.
. "$(dirname "$0")/../lib.sh"
t_home

out=$("$TV" templates)
for t in demo debian-minimal debian; do
	t_check "template $t is listed" grep -q "^$t " <<<"$out"
done

# A user's own template (data is user-writable) with a builder that fails half-way.
tpl=$TERMVISOR_HOME/data/templates/half
mkdir -p "$tpl"
printf 'description = "fails half-way";\ncpus = 3;\nbuilder = "build.sh";\n' >"$tpl/template.conf"
printf 'echo partial >kernel\necho "cannot fetch package xyz" >&2\nexit 1\n' >"$tpl/build.sh"
t_check "user templates are listed" grep -q "^half .*fails half-way" <<<"$("$TV" templates)"
msg=$("$TV" create vm1 --template half 2>&1)
rc=$?
t_check "create fails when the builder fails" [ $rc -ne 0 ]
t_check "the builder's message reaches the user" grep -q "cannot fetch package xyz" <<<"$msg"
t_check "the error names the template" grep -q "template 'half'" <<<"$msg"
t_check "no definition is left" [ ! -e "$TERMVISOR_HOME/vms/vm1.conf" ]
t_check "no data directory is left" [ ! -e "$TERMVISOR_HOME/data/vm1" ]

# A builder that succeeds: its kernel and initrd end up in the definition,
# with the template's values unless the command line overrides them.
tpl=$TERMVISOR_HOME/data/templates/tiny
mkdir -p "$tpl"
printf 'cpus = 3;\nmemory = "96M";\ncmdline = "console=ttyS0";\nbuilder = "build.sh";\n' \
	>"$tpl/template.conf"
printf 'echo k >kernel\necho i >initrd\n' >"$tpl/build.sh"
t_check "create from a building template" "$TV" create vm2 --template tiny --memory 128M
conf=$TERMVISOR_HOME/vms/vm2.conf
t_check "kernel recorded" grep -q '^kernel = "kernel";' "$conf"
t_check "initrd recorded" grep -q '^initrd = "initrd";' "$conf"
t_check "template's cpus kept" grep -q '^cpus = 3;' "$conf"
t_check "command line's memory wins" grep -q '^memory = "128M";' "$conf"
t_check "template's cmdline kept" grep -q '^cmdline = "console=ttyS0";' "$conf"
t_check "the kernel file is there" [ -f "$TERMVISOR_HOME/data/vm2/kernel" ]

msg=$("$TV" create vm3 --template nosuch 2>&1)
t_check "an unknown template is named in the error" grep -q "no template named 'nosuch'" <<<"$msg"
t_check "and nothing is left" [ ! -e "$TERMVISOR_HOME/data/vm3" ]
t_check "a template name cannot climb directories" bash -c "! '$TV' create vm4 --template ../x 2>/dev/null"
# A building template makes the disk itself, of the size --disk asks for (the
# template's own otherwise), and it is kept as made.
tpl=$TERMVISOR_HOME/data/templates/sized
mkdir -p "$tpl"
printf 'disk = "64M";\nbuilder = "build.sh";\n' >"$tpl/template.conf"
printf 'echo k >kernel\necho "$TV_DISK_SIZE" >disk.qcow2\n' >"$tpl/build.sh"
t_check "create --disk from a template whose builder makes the disk" \
	"$TV" create vm5 --template sized --disk 2G
t_check "the builder was asked for 2G" [ "$(cat "$TERMVISOR_HOME/data/vm5/disk.qcow2")" = 2147483648 ]
t_check "and its disk is in the definition" grep -q 'file = "disk.qcow2";' "$TERMVISOR_HOME/vms/vm5.conf"
t_check "create from it without --disk" "$TV" create vm6 --template sized
t_check "the builder was asked for the template's 64M" \
	[ "$(cat "$TERMVISOR_HOME/data/vm6/disk.qcow2")" = 67108864 ]

# termvisor stopped while a builder runs: the signal reaches the builder and
# what it started, the builder cleans up, and no VM is made.
tpl=$TERMVISOR_HOME/data/templates/slow
mkdir -p "$tpl"
printf 'builder = "build.sh";\n' >"$tpl/template.conf"
cat >"$tpl/build.sh" <<BUILD
trap 'echo "builder: stopped" >&2; exit 143' TERM
echo k >kernel
sleep 60 &
echo \$! >"$TERMVISOR_HOME/sleep.pid"
echo "builder: started" >&2
wait \$!
BUILD
err=$TERMVISOR_HOME/slow.err
"$TV" create vm7 --template slow 2>"$err" &
pid=$!
for _ in $(seq 100); do
	grep -q "builder: started" "$err" && break
	sleep 0.1
done
kill -TERM $pid
wait $pid
rc=$?
t_check "SIGTERM while the builder runs: create fails" [ $rc -ne 0 ]
t_check "the builder got it" grep -q "builder: stopped" "$err"
gone() { # pid: exited (a zombie waiting for init counts), within 5 s
	for _ in $(seq 50); do
		[ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
t_check "so did what it started" gone "$(cat "$TERMVISOR_HOME/sleep.pid")"
t_check "the error says it was interrupted" grep -q "template 'slow': interrupted; nothing was kept" "$err"
t_check "no definition or data directory is left" \
	[ ! -e "$TERMVISOR_HOME/vms/vm7.conf" ] && [ ! -e "$TERMVISOR_HOME/data/vm7" ]
t_done
