#!/bin/bash
# The nested machine's own KVM, traced around a benchmark that does not trace
# it itself (bench/net.sh; bench/net-faults.py has --trace): its exits, the
# exceptions it injects and its async page faults in a ring of 4 MiB a CPU,
# and in a second ring every shutdown exit (SVM's exit code 0x7f: the host
# KVM's own view of a guest's triple fault, whichever engine runs the guest).
# Root, in tests/kvm-in-qemu.sh's machine, from the build directory:
#   KVM_IN_QEMU_THREADS=multi KVM_IN_QEMU_COMMAND='../bench/nested-kvm-trace.sh start;
#     ../bench/nested-kvm-trace.sh watch nf & w=$!; NET_NESTED=1 NET_RESULTS=0
#     ../bench/net.sh . 16 8 3; kill $w; ../bench/nested-kvm-trace.sh save nf'
#     tests/kvm-in-qemu.sh build
# usage: nested-kvm-trace.sh start | watch DIR | save DIR
#   watch: at each new shutdown exit, the ring is copied to DIR/ring-at-shutdown-N.txt
#   save: DIR/shutdowns.txt, and the shutdown exits printed (status 1: none)
T=/sys/kernel/tracing
case $1 in
start)
	[ -d $T/events ] || mount -t tracefs nodev $T
	echo 0 >$T/tracing_on
	echo 4096 >$T/buffer_size_kb
	for e in kvm_exit kvm_inj_exception kvm_userspace_exit kvm_page_fault kvm_async_pf_not_present \
		kvm_async_pf_ready kvm_async_pf_completed kvm_async_pf_repeated_fault kvm_try_async_get_page; do
		[ -e $T/events/kvm/$e/enable ] && echo 1 >$T/events/kvm/$e/enable
	done
	echo >$T/trace
	echo 1 >$T/tracing_on
	mkdir -p $T/instances/shutdowns
	echo 'exit_reason == 127' >$T/instances/shutdowns/events/kvm/kvm_exit/filter
	echo 1 >$T/instances/shutdowns/events/kvm/kvm_exit/enable
	echo 1 >$T/instances/shutdowns/tracing_on
	;;
watch) # saves the main ring at each new shutdown exit
	mkdir -p "$2"
	seen=0
	while sleep 1; do
		n=$(grep -c kvm_exit $T/instances/shutdowns/trace)
		if [ "$n" -gt "$seen" ]; then
			echo 0 >$T/tracing_on
			cp $T/trace "$2/ring-at-shutdown-$n.txt"
			cp $T/instances/shutdowns/trace "$2/shutdowns.txt"
			echo >$T/trace
			echo 1 >$T/tracing_on
			echo "nf-trace: shutdown exit $n saved: $(grep kvm_exit $T/instances/shutdowns/trace | tail -1)"
			seen=$n
		fi
	done
	;;
save)
	mkdir -p "$2"
	cp $T/instances/shutdowns/trace "$2/shutdowns.txt"
	echo "nf-trace: shutdown exits over the run: $(grep -c kvm_exit "$2/shutdowns.txt")"
	grep kvm_exit "$2/shutdowns.txt"
	;;
esac
