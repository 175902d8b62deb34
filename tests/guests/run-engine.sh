#!/bin/sh
# Where `termvisor run` runs the VM: in termvisor itself when it is linked
# statically, else in termvisor-engine, the small program that carries no
# interface libraries; either way the VM process maps none of them. Without
# termvisor-engine the VM still runs, in termvisor.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
t_home
G=$top_builddir/tests/guests/serial.elf
d=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"; t_cleanup' EXIT
if readelf -l "$TV" 2>/dev/null | grep -q 'program interpreter'; then
	want=termvisor-engine
else
	want=termvisor
fi

# run_until_ready ENV...: the serial guest waits for input, so the VM runs
# while the fifo stays open (fd 3); pid is the VM process.
run_until_ready() {
	rm -f "$d/in" "$d/out"
	mkfifo "$d/in"
	env "$@" "$TV" run --debug-exit --kernel "$G" --memory 64M <"$d/in" >"$d/out" 2>&1 &
	pid=$!
	exec 3>"$d/in"
	for _ in $(seq 1 100); do
		grep -q "hello from the serial guest" "$d/out" 2>/dev/null && break
		sleep 0.1
	done
}
finish() {
	printf 'hi\nquit\n' >&3
	exec 3>&-
	wait $pid
	rc=$?
	pid=
	return $rc
}

run_until_ready
exe=$(readlink "/proc/$pid/exe")
echo "# VM process $pid: $exe"
t_check "the VM runs in $want" [ "$(basename "$exe")" = $want ]
t_check "the VM process maps no interface library (ncurses, libvterm, libconfig)" \
	sh -c "! grep -E 'ncurses|tinfo|vterm|libconfig' /proc/$pid/maps"
t_check "the guest runs there" grep -q "hello from the serial guest" "$d/out"
t_check "it ends with the guest (status 0)" finish

run_until_ready TERMVISOR_ENGINE="$top_builddir/termvisor-engine"
exe=$(readlink "/proc/$pid/exe")
t_check "TERMVISOR_ENGINE names the program that runs the VM" \
	[ "$(basename "$exe")" = termvisor-engine ]
t_check "termvisor-engine maps no interface library" \
	sh -c "! grep -E 'ncurses|tinfo|vterm|libconfig' /proc/$pid/maps"
t_check "termvisor-engine ends with the guest (status 0)" finish

out=$(printf 'hi\nquit\n' | TERMVISOR_ENGINE=$d/missing timeout 30 "$TV" run --debug-exit --kernel "$G" \
	--memory 64M 2>&1)
rc=$?
t_check "without termvisor-engine the VM still runs (status 0)" [ "$rc" -eq 0 ]
t_check "without termvisor-engine the guest still prints" grep -q "bye (rx" <<EOT
$out
EOT

# A VM in the background runs in the same program, started from a fresh exec.
"$TV" create bg --kernel "$G" --memory 64M >/dev/null || t_fail "create a VM"
t_check "start runs it in the background" "$TV" start bg
pid=$(cat "$TERMVISOR_HOME/run/bg.pid" 2>/dev/null)
exe=$(readlink "/proc/$pid/exe")
echo "# background VM process ${pid:-none}: $exe"
t_check "the background VM runs in termvisor-engine" [ "$(basename "$exe")" = termvisor-engine ]
t_check "the background VM process maps no interface library" \
	sh -c "! grep -E 'ncurses|tinfo|vterm|libconfig' /proc/$pid/maps"
t_check "it holds no descriptor of the starting program but its own" \
	sh -c "! ls -l /proc/$pid/fd | grep -q pts"
"$TV" stop bg --force >/dev/null
pid=
t_done
