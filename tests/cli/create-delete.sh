#!/usr/bin/env bash
# `termvisor create` and `termvisor delete`: names, options, confirmation,
# and nothing half-made left behind on failure.
. "$(dirname "$0")/../lib.sh"
t_home

t_check "create with options" "$TV" create lab1 --cpus 2 --memory 1G --cmdline "console=ttyS0"
t_check "definition written where expected" [ -f "$TERMVISOR_HOME/vms/lab1.conf" ]
t_check "data directory made" [ -d "$TERMVISOR_HOME/data/lab1" ]
t_check "list shows it" grep -q "^lab1 .* stopped .* 2 *1G " <<<"$("$TV" list)"
t_check "the definition is readable" grep -q '^memory = "1G";' "$TERMVISOR_HOME/vms/lab1.conf"
t_check "creating it twice fails" bash -c "! '$TV' create lab1 2>/dev/null"
msg=$("$TV" create lab1 2>&1)
t_check "and says it exists" grep -q "already exists" <<<"$msg"

for bad in "a/b" ".hidden" "-x" "has space" "$(printf 'x%.0s' {1..65})"; do
	if "$TV" create -- "$bad" >/dev/null 2>&1; then t_fail "name '$bad' refused"; else t_ok "name '${bad:0:12}' refused"; fi
done
msg=$("$TV" create lab2 --memory lots 2>&1)
t_check "bad --memory refused with the value" grep -q -- "--memory lots: expected a size" <<<"$msg"
t_check "nothing left of lab2" [ ! -e "$TERMVISOR_HOME/vms/lab2.conf" ] && [ ! -e "$TERMVISOR_HOME/data/lab2" ]
msg=$("$TV" create lab3 --kernel /no/such/kernel 2>&1)
t_check "missing kernel refused with its name" grep -q "/no/such/kernel" <<<"$msg"
t_check "nothing left of lab3" [ ! -e "$TERMVISOR_HOME/data/lab3" ]
t_check "--cpus 0 refused" bash -c "! '$TV' create lab4 --cpus 0 2>/dev/null"

# A disk: qcow2, of the size asked, that qemu-img accepts; its snapshots counted.
t_check "create with --disk" "$TV" create lab5 --disk 1G
img=$TERMVISOR_HOME/data/lab5/disk.qcow2
t_check "the disk is made" [ -f "$img" ]
if [ -n "${QEMU_IMG:-}" ]; then
	t_check "qemu-img check accepts it" "$QEMU_IMG" check -q "$img"
	t_check "qemu-img sees a 1 GiB qcow2 image" \
		grep -q '"virtual-size": 1073741824' <<<"$("$QEMU_IMG" info --output=json "$img")"
	# Only termvisor's snapshots count: one made by qemu-img is not in its tree.
	"$QEMU_IMG" snapshot -c by-hand "$img"
	"$TV" snapshot take lab5 first >/dev/null && "$TV" snapshot take lab5 >/dev/null
	t_check "list counts its snapshots" grep -q "^lab5 .* 1 *512M *1 *2$" <<<"$("$TV" list)"
	if command -v script >/dev/null; then
		# On a terminal, delete asks first, saying how many snapshots would go.
		msg=$(script -qec "'$TV' delete lab5" /dev/null <<<n 2>&1)
		t_check "delete asks on a terminal, counting the snapshots that would go" \
			grep -q "Delete VM 'lab5' with its disks and 2 snapshots in .*/lab5? \[y/N\]" <<<"$msg"
		t_check "answered no, it keeps the VM" [ -f "$TERMVISOR_HOME/vms/lab5.conf" ]
	fi
fi
t_check "list --json names the disk" grep -q '"format": "qcow2"' <<<"$("$TV" list --json)"
msg=$("$TV" delete lab5 --yes)
if [ -n "${QEMU_IMG:-}" ]; then
	t_check "delete says how many snapshots go with it" \
		grep -q "^deleted VM 'lab5' and 2 snapshots$" <<<"$msg"
fi

msg=$("$TV" delete lab1 </dev/null 2>&1)
t_check "delete without a terminal and without --yes refuses" grep -q -- "--yes" <<<"$msg"
t_check "so lab1 is still there" [ -f "$TERMVISOR_HOME/vms/lab1.conf" ]

# A running VM is not deleted: a live process holds its lock and owns its pid file.
mkdir -p "$TERMVISOR_HOME/run"
(exec 9>"$TERMVISOR_HOME/run/lab1.lock"; flock 9; exec sleep 30) &
sleeper=$!
while flock -n "$TERMVISOR_HOME/run/lab1.lock" true; do sleep 0.05; done
echo $sleeper >"$TERMVISOR_HOME/run/lab1.pid"
msg=$("$TV" delete lab1 --yes 2>&1)
t_check "delete refuses while the VM runs" grep -q "is running" <<<"$msg"
t_check "list shows it running with its PID" grep -q "^lab1 .* running *$sleeper " <<<"$("$TV" list)"
kill $sleeper
wait $sleeper 2>/dev/null
t_check "a VM whose process died shows as crashed" grep -q "^lab1 .* crashed " <<<"$("$TV" list)"
t_check "and its stale pid file is cleaned up" [ ! -e "$TERMVISOR_HOME/run/lab1.pid" ]

t_check "delete --yes removes it" "$TV" delete lab1 --yes
t_check "definition gone" [ ! -e "$TERMVISOR_HOME/vms/lab1.conf" ]
t_check "data gone" [ ! -e "$TERMVISOR_HOME/data/lab1" ]
t_check "deleting an unknown VM fails" bash -c "! '$TV' delete nosuch --yes 2>/dev/null"
t_check "help lists the commands" grep -q "create" <<<"$("$TV" help)"
t_check "--help works per command" grep -q "usage: termvisor create NAME" <<<"$("$TV" create --help)"
t_check "unknown command exits 2" bash -c "'$TV' frobnicate 2>/dev/null; [ \$? -eq 2 ]"
t_done
