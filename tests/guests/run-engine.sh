#!/bin/sh
# `termvisor run` hands the VM to termvisor-engine, the small program that
# carries no interface libraries (the VM process stays small), and still runs
# the VM itself when that program is missing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
t_need_kvm
G=$top_builddir/tests/guests/serial.elf
d=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT

# The serial guest waits for input: the VM runs while stdin stays open.
mkfifo "$d/in"
"$TV" run --kernel "$G" --memory 64M <"$d/in" >"$d/out" 2>&1 &
pid=$!
exec 3>"$d/in"
for _ in $(seq 1 100); do
	grep -q "hello from the serial guest" "$d/out" 2>/dev/null && break
	sleep 0.1
done
exe=$(readlink "/proc/$pid/exe")
echo "# VM process $pid: $exe"
t_check "the VM runs in termvisor-engine" [ "$(basename "$exe")" = termvisor-engine ]
t_check "the VM process maps no interface library (ncurses, libvterm, libconfig)" \
	sh -c "! grep -E 'ncurses|tinfo|vterm|libconfig' /proc/$pid/maps"
t_check "the guest runs there" grep -q "hello from the serial guest" "$d/out"
printf 'hi\nquit\n' >&3
exec 3>&-
wait $pid
rc=$?
pid=
t_check "it ends with the guest (status 0)" [ "$rc" -eq 0 ]

# Without termvisor-engine the VM runs in the termvisor process itself.
out=$(printf 'hi\nquit\n' | TERMVISOR_ENGINE=$d/missing timeout 30 "$TV" run --kernel "$G" \
	--memory 64M 2>&1)
rc=$?
t_check "without termvisor-engine the VM still runs (status 0)" [ "$rc" -eq 0 ]
t_check "without termvisor-engine the guest still prints" grep -q "bye (rx" <<EOT
$out
EOT
t_done
