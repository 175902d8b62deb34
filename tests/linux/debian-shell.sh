#!/usr/bin/env bash
# A Linux guest all the way: the debian-minimal VM (Debian's cloud kernel,
# busybox root on a qcow2 disk) boots to its login prompt, root logs in, the
# shell sees the vCPUs, the root file system on virtio-blk, the entropy device
# and the virtio console, writes a file that reaches the disk, and `poweroff`
# ends the VM with exit status 0 through ACPI. On termvisor's engine (the
# default run) a machine snapshot is taken at the shell and rolled back to. The disk then passes qemu-img
# check and holds the file.
#
# TV_SHELL_ENGINE=qemu runs the same guest and checks under QEMU emulating
# the whole machine (TCG, the same devices: virtio-blk, -rng and -console over
# PCI), which needs no /dev/kvm: debian-shell-qemu.sh does that, so the
# template's guest is checked on every machine, and this test is shown to
# pass against the peer. Where there is no /dev/kvm, ./dev check runs this
# test on termvisor's engine inside tests/kvm-in-qemu.sh (with 2 vCPUs, and
# as debian-shell-threads.sh with 1 vCPU and the disk on I/O threads).
#
# Where the host's KVM emulates guest kernel code (nested KVM without VMX),
# the kernel cannot get past early boot: it ends with an emulation failure
# (exit status 4), and the test skips saying so.
#
# The template starts a getty on ttyS0 and one on hvc0. Each is a console of
# its own: the terminal of `termvisor run` shows ttyS0 (the kernel's console
# here) and its keys go there, so the test logs in on ttyS0 on both engines
# (QEMU's hvc0 goes nowhere); the shell's tty is shown.
#
# Every wait ends at a marker or a deadline, never after a fixed sleep; a
# failure shows the console's last lines and, the VM being stopped, where
# each vCPU was (termvisor runs with --verbose).
# TV_KEEP=1 keeps the test's termvisor home (the console log) for a look;
# TV_SHELL_APPEND adds kernel parameters, TV_SHELL_CPUS sets the vCPUs (2),
# TV_SHELL_AIO (io_uring or threads) names in the VM's definition how the
# engine moves the disk's data (unset: the default, io_uring, which falls back
# to threads saying why), TV_SHELL_TIMEOUT bounds the whole run (600 s).
. "$(dirname "$0")/../lib.sh"
engine=${TV_SHELL_ENGINE:-termvisor}
case $engine in
termvisor) t_need_kvm ;;
qemu) command -v qemu-system-x86_64 >/dev/null || t_skip_all "qemu-system-x86_64 is missing (qemu-system-x86)" ;;
*) echo "TV_SHELL_ENGINE=$engine: expected termvisor or qemu" >&2; exit 99 ;;
esac
aio=${TV_SHELL_AIO:-}
case $aio in '' | io_uring | threads) ;; *) echo "TV_SHELL_AIO=$aio: expected io_uring or threads" >&2; exit 99 ;; esac
[ -z "$aio" ] || [ "$engine" = termvisor ] || { echo "TV_SHELL_AIO is for termvisor's engine" >&2; exit 99; }
t_home; [ -n "${TV_KEEP:-}" ] && trap - EXIT
command -v mkfs.ext4 >/dev/null || t_skip_all "mkfs.ext4 is missing (e2fsprogs)"
[ -x /bin/busybox ] || t_skip_all "busybox-static is missing"
apt-cache depends linux-image-cloud-amd64 >/dev/null 2>&1 ||
	t_skip_all "apt knows no linux-image-cloud-amd64 (no Debian archive configured)"
# The kernel package is fetched once and kept with the other Linux tests'.
pkgs=$TERMVISOR_HOME/cache/debian-packages
kcache=$(t_linux_cache)
mkdir -p "$pkgs" "$kcache"
cp "$kcache"/linux-image-*-cloud-amd64_*.deb "$pkgs/" 2>/dev/null
created=$(date +%s)
out=$(t_debian_minimal deb)
rc=$?
echo "# termvisor create --template debian-minimal: $(($(date +%s) - created)) s"
if [ $rc -ne 0 ] && grep -q "cannot fetch" <<<"$out"; then
	t_skip_all "the kernel package cannot be fetched here: $(tail -n1 <<<"$out")"
fi
if [ $rc -ne 0 ]; then
	sed 's/^/# /' <<<"$out"
	t_fail "the debian-minimal VM is created (exit status $rc)"
	t_done
fi
cp -n "$pkgs"/linux-image-*-cloud-amd64_*.deb "$kcache/" 2>/dev/null
if [ -n "$aio" ]; then
	conf=$TERMVISOR_HOME/vms/deb.conf
	sed -i "s/^\( *\)format = \"qcow2\";\$/&\n\1aio = \"$aio\";/" "$conf"
	grep -q "^ *aio = \"$aio\";\$" "$conf" ||
		{ sed 's/^/# /' "$conf"; t_fail "the disk's aio is set to $aio in deb.conf"; t_done; }
fi

# The network (TV_SHELL_NET=0 leaves it out): the user network that a new
# VM gets by default, with a host port forwarded to the guest's port 8080;
# its MAC as `status` reports it. Under QEMU: its user network (-netdev user)
# and virtio-net with the same MAC and forward, so the template is shown to
# get its network on both engines.
net=1 fport= mac=
[ "${TV_SHELL_NET:-1}" = 0 ] && net=
if [ -n "$net" ]; then
	conf=$TERMVISOR_HOME/vms/deb.conf
	fport=$((20000 + RANDOM % 20000))
	if [ "$engine" = termvisor ]; then
		grep -q '^ *mode = "user";$' "$conf" ||
			{ sed 's/^/# /' "$conf"; t_fail "a new VM has a network card on the user network"; t_done; }
		sed -i "s/^\( *\)mode = \"user\";\$/&\n\1forward = ( \"tcp::$fport:8080\" );/" "$conf"
		mac=$("$TV" status deb --json | grep -o '"mac": "[0-9a-f:]*"' | head -n1 | cut -d'"' -f4)
		grep -q "forward = ( \"tcp::$fport:8080\" );" "$conf" && [ -n "$mac" ] ||
			{ sed 's/^/# /' "$conf"; t_fail "the VM has a user network with a MAC and a forward"; t_done; }
	else
		mac=52:54:00:12:34:56
	fi
fi

log=$TERMVISOR_HOME/console.log
fifo=$TERMVISOR_HOME/in
mkfifo "$fifo"
start=$(date +%s)
data=$TERMVISOR_HOME/data/deb
cpus=${TV_SHELL_CPUS:-2}
append="console=ttyS0 root=/dev/vda rw${TV_SHELL_APPEND:+ $TV_SHELL_APPEND}"
if [ "$engine" = qemu ]; then
	timeout "${TV_SHELL_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -smp "$cpus" -m 256M \
		-display none -monitor none -serial stdio -no-reboot \
		-kernel "$data/kernel" -initrd "$data/initrd" -append "$append" \
		-drive "file=$data/disk.qcow2,if=virtio,format=qcow2" -device virtio-rng-pci \
		-device virtio-serial-pci -device virtconsole \
		${net:+-netdev user,id=n0,hostfwd=tcp:127.0.0.1:$fport-:8080 -device virtio-net-pci,netdev=n0,mac=$mac,disable-legacy=on,romfile=} \
		<"$fifo" >"$log" 2>&1 &
	prompts=1 # hvc0 goes nowhere
	prompt_what="its login prompt"
else
	timeout "${TV_SHELL_TIMEOUT:-600}" "$TV" run deb --verbose --cpus "$cpus" \
		--append "$append" <"$fifo" >"$log" 2>&1 &
	prompts=1 # ttyS0's; hvc0's shows on a console of its own
	prompt_what="its login prompt"
fi
pid=$!
exec 3>"$fifo"
# Typing at a VM that has ended must not end the test before it says why.
trap '' PIPE

seconds() { echo $(($(date +%s) - start)); }
# True when the console log shows $1 (an extended regex) at least $2 times.
seen() { [ "$(grep -oE "$1" "$log" | wc -l)" -ge "${2:-1}" ]; }
# Waits until the command ($2...) succeeds, or the VM ends, or $1 seconds pass.
wait_until() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		kill -0 $pid 2>/dev/null && [ "$(date +%s)" -lt $end ] || return 1
		sleep 0.5
	done
}
wait_for() { wait_until "$2" seen "$1"; } # regex, seconds
# The login prompts seen: whole, then any left in pieces once the whole ones
# and the line breaks are taken out (a late kernel message on the UART can
# split one).
logins() {
	local whole split
	whole=$(grep -o 'login: ' "$log" | wc -l)
	split=$(sed 's/login: //g' "$log" | tr -d '\r\n' | grep -o 'login: ' | wc -l)
	echo $((whole + split))
}
booted() { [ "$(logins)" -ge "$prompts" ] || seen '^initramfs: cannot'; }
# A failed step: stops the VM (termvisor then says where each vCPU was),
# shows how it ended and the console's last lines, and ends the test.
give_up() {
	kill $pid 2>/dev/null
	wait $pid
	local rc=$?
	exec 3>&-
	echo "# $engine exited $rc after $(seconds) s; the console's last lines:"
	tail -n 40 "$log" | sed 's/^/# /'
	t_kvm_trace
	t_fail "$1"
	t_done
}

# The first byte comes in a second or two even emulated: a guest that says
# nothing is caught here rather than at the end of the whole run.
if ! wait_for 'Linux version' 120; then
	kill -0 $pid 2>/dev/null || wait $pid
	rc=$?
	if [ "$engine" = termvisor ] && [ $rc -eq 4 ] && grep -q 'emulation failure\|internal error' "$log"; then
		tail -n 15 "$log" | sed 's/^/# /'
		t_skip_all "this host's KVM emulates guest kernel code, and the kernel stopped in early boot ($(seconds) s)"
	fi
	give_up "the kernel prints its banner within 120 s"
fi
if ! wait_until 300 booted; then
	wait $pid
	rc=$?
	if [ "$engine" = termvisor ] && [ $rc -eq 4 ] && grep -q 'emulation failure\|internal error' "$log"; then
		tail -n 15 "$log" | sed 's/^/# /'
		t_skip_all "this host's KVM emulates guest kernel code, and the kernel stopped in early boot ($(seconds) s)"
	fi
	give_up "the guest reaches $prompt_what"
fi
seen '^initramfs: cannot' && give_up "the initramfs loads the virtio drivers and mounts the root disk"
echo "# $engine: login prompt after $(seconds) s"
t_ok "the guest reaches $prompt_what"
printf 'root\n' >&3
wait_for 'root@deb:[^ ]*# ' 120 || give_up "root gets a shell"
t_ok "root gets a shell"

# Runs a command line in the guest's shell and sets $got to its output: the
# lines between two markers, which the echoed command line (quoted apart, and
# perhaps wrapped by the guest's line editor) cannot match. They are not
# anchored to the start of a line, where a late kernel message on the UART
# could have left a few bytes.
n=0
got=
run() {
	n=$((n + 1))
	printf 'echo "=beg""in%d="; %s; echo "=do""ne%d="\n' $n "$1" $n >&3
	wait_for "=done$n=" 120 || give_up "the shell runs: $1"
	got=$(sed -n "/=begin$n=/,/=done$n=/p" "$log" | sed '1d;$d' | tr -d '\r')
}
# Kernel messages from here on would land among the markers.
run 'dmesg -n 1; tty'
echo "# the shell runs on $got"
t_check "the login was on the console shown, ttyS0 (got ${got:-nothing})" grep -q '/dev/ttyS0' <<<"$got"
run 'grep -c ^processor /proc/cpuinfo'
t_check "the kernel sees $cpus CPUs (got ${got:-nothing})" test "$got" = "$cpus"
run 'grep " / " /proc/mounts'
t_check "the root file system is ext4 on virtio-blk" grep -q '^/dev/vda / ext4' <<<"$got"
run 'cat /sys/class/misc/hw_random/rng_current'
t_check "the entropy device is the virtio one" grep -q '^virtio' <<<"$got"
run 'ls /dev/hvc0'
t_check "the virtio console is there (hvc0)" grep -q '^/dev/hvc0$' <<<"$got"
# hvc0's terminal takes the size of the window that shows it: the virtio
# console's size (VIRTIO_CONSOLE_F_SIZE), which Linux applies to the tty its
# getty holds open. QEMU's hvc0 has no window.
if [ "$engine" = termvisor ] && command -v tmux >/dev/null; then
	t_tmux_init
	tm new-session -d -s hvc -x 111 -y 33 \
		"env TERMVISOR_HOME='$TERMVISOR_HOME' ASAN_OPTIONS='$T_ASAN_OPTS' '$TV' console deb hvc0"
	for _ in $(seq 20); do
		run 'stty -F /dev/hvc0 size'
		[ "$got" = "33 111" ] && break
		sleep 1
	done
	t_check "hvc0's size is its window's, 33 rows of 111 columns (got ${got:-nothing})" \
		test "$got" = "33 111"
	tm kill-server 2>/dev/null
fi
run 'echo termvisor-was-here >/root/mark && sync && echo written'
t_check "a file is written and synced to the disk" grep -q '^written$' <<<"$got"
if [ "$engine" = termvisor ]; then
	# The engine's io_uring instances show as file descriptors of the VM's
	# process (termvisor, or the termvisor-engine it became); with --verbose
	# it notes a fallback to threads on the default too.
	vmpid=$(pgrep -P $pid | head -n1)
	rings=$(ls -l "/proc/$vmpid/fd" 2>/dev/null | grep -c 'io_uring')
	note=$(grep -m1 'io_uring unavailable' "$log")
	case $aio in
	io_uring) t_check "the disk's data goes through io_uring ($rings rings${note:+; $note})" \
		test "$rings" -gt 0 -a -z "$note" ;;
	threads) t_check "the disk's data goes through I/O threads (io_uring rings: $rings)" test "$rings" -eq 0 ;;
	*) t_check "the disk uses io_uring, the default, or says why not ($rings rings${note:+; $note})" \
		test "$rings" -gt 0 -a -z "$note" -o "$rings" -eq 0 -a -n "$note" ;;
	esac
fi
# The network: eth0 has the definition's MAC; at boot the template's DHCP
# client got 10.0.2.15 with the gateway 10.0.2.2 as its default route; the
# guest reaches a host service through the gateway, and the host reaches the
# guest's port 8080 through the forward. A listener is left running for the
# snapshot below.
# One line from the guest through the forward, or nothing.
fetch_forward() {
	timeout 20 bash -c "exec 5<>/dev/tcp/127.0.0.1/$fport && head -n1 <&5" 2>/dev/null | tr -d '\r'
}
if [ -n "$net" ]; then
	run 'cat /sys/class/net/eth0/address'
	t_check "eth0 has the definition's MAC $mac (got ${got:-nothing})" test "$got" = "$mac"
	# (the lease may still be on its way: the DHCP client runs in the background)
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		run "ifconfig eth0 | sed -n 's/.*inet addr:\\([0-9.]*\\).*/\\1/p'; route -n | awk '\$1 == \"0.0.0.0\" { print \"gw\", \$2 }'"
		[ "$(echo $got)" = "10.0.2.15 gw 10.0.2.2" ] && break
		sleep 1
	done
	t_check "DHCP at boot gave the guest 10.0.2.15 and the default route through 10.0.2.2 (got $(echo ${got:-nothing}))" \
		test "$(echo $got)" = "10.0.2.15 gw 10.0.2.2"
	run 'cat /etc/resolv.conf'
	t_check "and the gateway's DNS forwarder in /etc/resolv.conf (got $(echo ${got:-nothing}))" \
		grep -q '^nameserver 10.0.2.3$' <<<"$got"
	if [ "$engine" = termvisor ]; then
		out=$("$TV" status deb --json)
		t_check "status --json shows the lease and the forward ($out)" \
			grep -q "\"mac\": \"$mac\", \"address\": \"10.0.2.15\", \"forwards\": \[\"tcp:127.0.0.1:$fport:8080\"\]" <<<"$out"
	fi
	mkdir -p "$TERMVISOR_HOME/www" && echo served-by-host >"$TERMVISOR_HOME/www/mark"
	hport=$((20000 + (RANDOM + 7) % 20000))
	python3 -m http.server "$hport" --bind 127.0.0.1 --directory "$TERMVISOR_HOME/www" >/dev/null 2>&1 &
	httpd=$!
	# (it may take seconds to listen where everything is emulated)
	for _ in $(seq 100); do
		timeout 1 bash -c "exec 5<>/dev/tcp/127.0.0.1/$hport" 2>/dev/null && break
		sleep 0.2
	done
	# (busybox's nc: its static wget looks the service up through NSS and crashes)
	run "printf 'GET /mark HTTP/1.0\\r\\n\\r\\n' | nc -w 10 10.0.2.2 $hport | tail -n 1"
	kill $httpd 2>/dev/null
	t_check "the guest fetches from a host service through the gateway (got ${got:-nothing})" \
		test "$got" = served-by-host
	run "ping -c 1 -W 3 10.0.2.2 >/dev/null 2>&1 && echo reply || echo none"
	echo "# ICMP echo to the gateway: $got (needs ping sockets on the host: net.ipv4.ping_group_range)"
	run "printf '#!/bin/sh\\necho hello-from-guest\\n' >/tmp/hi; chmod +x /tmp/hi; (nc -l -p 8080 -e /tmp/hi &) ; sleep 1; echo listening"
	line=$(fetch_forward)
	t_check "the host reaches the guest's port 8080 through the forward on 127.0.0.1:$fport (got ${line:-nothing})" \
		test "$line" = hello-from-guest
	run "(nc -l -p 8080 -e /tmp/hi &) ; sleep 1; echo listening"
fi
# A machine snapshot at the shell (termvisor's engine, 2 vCPUs: the default
# run): after a rollback the shell answers at once, the file changed since is
# as it was, and the guest's clock goes on from the snapshot (kvmclock and the
# TSC restored): not before it, no jump ahead, and a sleep still ends.
if [ "$engine" = termvisor ] && [ -z "$aio" ]; then
	run 'echo before >/root/state; date +%s'
	t0=$got
	out=$("$TV" snapshot take deb at-shell 2>&1)
	rc=$?
	echo "# $out"
	t_check "a snapshot of the running Linux guest is taken (status $rc)" test $rc -eq 0
	run 'echo after >/root/state; cat /root/state'
	t_check "the guest changes its file after the snapshot" test "$got" = after
	rolled=$(date +%s%N)
	out=$("$TV" snapshot rollback deb at-shell --discard 2>&1)
	rc=$?
	echo "# $out"
	t_check "the guest is rolled back to it (status $rc)" test $rc -eq 0
	run 'echo answered'
	ms=$((($(date +%s%N) - rolled) / 1000000))
	t_check "the shell answers at once after the rollback (in $ms ms, the command's own time included; a stalled guest would take over 10 s)" \
		test "$got" = answered -a $ms -lt 10000
	run 'cat /root/state; date +%s; a=$(cut -d. -f1 /proc/uptime); sleep 2; b=$(cut -d. -f1 /proc/uptime); echo $((b - a))'
	echo "# state, date, uptime step after the rollback: $(echo $got)"
	set -- $got
	t_check "the file is as it was at the snapshot (got ${1:-nothing})" test "${1:-}" = before
	t_check "the guest's date goes on from the snapshot's ($t0 -> ${2:-nothing}): not back, not far ahead" \
		test "${2:-0}" -ge "$t0" -a "${2:-0}" -le $((t0 + 60))
	t_check "a 2 s sleep in the guest ends and its uptime moves 2-4 s (got ${3:-nothing})" \
		test "${3:-0}" -ge 2 -a "${3:-0}" -le 4
	if [ -n "$net" ]; then
		line=$(fetch_forward)
		t_check "after the rollback the forward reaches the guest's listener again (got ${line:-nothing})" \
			test "$line" = hello-from-guest
	fi
fi
printf 'poweroff\n' >&3
wait_for 'no such log line' 120
kill $pid 2>/dev/null # still running after 2 minutes: the status says so
wait $pid
rc=$?
exec 3>&-
echo "# powered off after $(seconds) s"
t_check "poweroff ends the VM with exit status 0 (got $rc)" test $rc -eq 0
[ $rc -eq 0 ] && tail -n 3 "$log" | sed 's/^/# /' || { tail -n 40 "$log" | sed 's/^/# /'; t_kvm_trace; }

if [ -n "${QEMU_IMG:-}" ]; then
	t_check "qemu-img check accepts the disk after the guest used it" "$QEMU_IMG" check -q "$data/disk.qcow2"
	"$QEMU_IMG" convert -O raw "$data/disk.qcow2" "$TERMVISOR_HOME/root.raw"
	t_check "the file the guest wrote is on the disk" \
		bash -c "debugfs -R 'cat /root/mark' '$TERMVISOR_HOME/root.raw' 2>/dev/null | grep -q termvisor-was-here"
	rm -f "$TERMVISOR_HOME/root.raw"
fi
t_done
