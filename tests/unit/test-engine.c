/* The engine API the VM process and snapshots build on: pause/resume holds
 * every vCPU still, stop ends a running guest, console input reaches the
 * UART, device ranges refuse overlaps. Runs the test guests on /dev/kvm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vm/dev/dev.h"
#include "common/util.h"
#include "vm/vm.h"
#include "tests/unit/guest-console.h"

/* The test guests end through the debug-exit port, which only a VM made
 * with debug_exit has. */
static struct vm *guest_new_port(const char *name, unsigned cpus, struct capture *c,
				 bool debug_exit)
{
	char *kernel = xasprintf("%s/tests/guests/%s.elf", TV_BUILDDIR, name);
	struct vm_config cfg = {
		.cpus = cpus,
		.memory = 64 << 20,
		.kernel = kernel,
		.debug_exit = debug_exit,
	};
	struct vm *vm = guest_vm_new(&cfg, c);

	free(kernel);
	return vm;
}

static struct vm *guest_new(const char *name, unsigned cpus, struct capture *c)
{
	return guest_new_port(name, cpus, c, true);
}

static int need_kvm(void **state)
{
	(void)state;
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		skip(); /* /dev/kvm is absent (or not ours) on this machine */
	return 0;
}

static uint64_t rip_of(struct vm *vm, unsigned cpu)
{
	struct kvm_regs r;

	assert_int_equal(ioctl(vm_vcpu_fd(vm, cpu), KVM_GET_REGS, &r), 0);
	return r.rip;
}

/* A CPL 3 loop keeps rip moving; while paused it must not move at all, and
 * the guest still computes the right result across 20 pauses. */
static void test_pause_resume(void **state)
{
	struct capture c;
	struct tv_err err;
	struct vm *vm;
	unsigned pauses = 0;

	need_kvm(state);
	vm = guest_new("user", 1, &c);
	assert_int_equal(vm_start(vm, &err), 0);
	while (!captured(&c, "entering ring 3"))
		sleep_ms(1);
	while (vm_exit_reason(vm) == VM_EXIT_NONE && pauses < 20) {
		assert_int_equal(vm_pause(vm, &err), 0);
		if (vm_exit_reason(vm) != VM_EXIT_NONE)
			break;
		assert_true(vm_paused(vm));
		uint64_t a = rip_of(vm, 0);
		sleep_ms(5);
		assert_true(rip_of(vm, 0) == a);
		assert_int_equal(vm_resume(vm, &err), 0);
		assert_false(vm_paused(vm));
		pauses++;
		sleep_ms(2);
	}
	assert_int_equal(vm_wait(vm), VM_EXIT_DEBUG);
	assert_int_equal(vm_exit_code(vm), 0);
	assert_true(captured(&c, "from cpl 3, 0 memory errors"));
	assert_true(pauses > 0);
	vm_free(vm);
}

/* Stop ends a guest that waits forever (for input), with every vCPU. */
static void test_stop(void **state)
{
	struct capture c;
	struct tv_err err;
	struct vm *vm;
	uint64_t t0;

	need_kvm(state);
	vm = guest_new("serial", 4, &c);
	assert_int_equal(vm_start(vm, &err), 0);
	while (!captured(&c, "memmap:"))
		sleep_ms(1);
	t0 = monotonic_ns();
	vm_request_stop(vm);
	assert_int_equal(vm_wait(vm), VM_EXIT_STOPPED);
	vm_free(vm);
	assert_true(monotonic_ns() - t0 < 1000000000ULL);
}

/* Input typed at the console reaches the guest's UART, polled and through
 * interrupts, even when offered before the guest reads. */
static void test_console_input(void **state)
{
	static const char in[] = "abc\nxyz\nquit\n";
	struct capture c;
	struct tv_err err;
	struct vm *vm;

	need_kvm(state);
	vm = guest_new("serial", 1, &c);
	assert_int_equal(console_input(vm, CONSOLE_SERIAL, in, sizeof(in) - 1), sizeof(in) - 1);
	assert_int_equal(vm_start(vm, &err), 0);
	assert_int_equal(vm_wait(vm), VM_EXIT_DEBUG);
	assert_int_equal(vm_exit_code(vm), 0);
	assert_true(captured(&c, "echo (polled): ABC"));
	assert_true(captured(&c, "echo (interrupt): XYZ"));
	vm_free(vm);
}

static void nop_read(void *opaque, uint64_t off, void *data, unsigned len)
{
}

static const struct dev_io_ops nop_io = {.read = nop_read};
static const struct dev_ops nop_ops = {0};

/* A range that overlaps a claimed one is refused, naming both devices. */
static void test_dev_overlap(void **state)
{
	struct capture c;
	struct tv_err err;
	struct dev d = {.name = "testdev", .ops = &nop_ops};
	struct vm *vm;

	need_kvm(state);
	vm = guest_new("timer", 1, &c);
	dev_register(vm, &d);
	assert_int_equal(dev_add_pio(vm, &d, 0x3fc, 2, &nop_io, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "testdev"));
	assert_non_null(strstr(err.msg, "serial0"));
	assert_int_equal(dev_add_mmio(vm, &d, 0xd0000000, 0x1000, &nop_io, NULL, &err), 0);
	assert_int_equal(dev_add_mmio(vm, &d, 0xd0000800, 0x1000, &nop_io, NULL, &err), -1);
	assert_int_equal(dev_del_mmio(vm, 0xd0000000), 0);
	assert_int_equal(dev_add_mmio(vm, &d, 0xd0000800, 0x1000, &nop_io, NULL, &err), 0);
	assert_ptr_equal(dev_find(vm, "testdev"), &d);
	vm_free(vm);
}

/* Without debug_exit the port is absent: the timer guest's final write to
 * it does not end the run, which goes on until stopped. */
static void test_no_debug_exit(void **state)
{
	struct capture c;
	struct tv_err err;
	struct vm *vm;

	need_kvm(state);
	vm = guest_new_port("timer", 1, &c, false);
	assert_null(dev_find(vm, "debug-exit"));
	assert_int_equal(vm_start(vm, &err), 0);
	for (unsigned i = 0; i < 600 && !captured(&c, "tsc-deadline:"); i++)
		sleep_ms(100);
	assert_true(captured(&c, "tsc-deadline:"));
	sleep_ms(500); /* the guest wrote the port by now */
	assert_int_equal(vm_exit_reason(vm), VM_EXIT_NONE);
	vm_request_stop(vm);
	assert_int_equal(vm_wait(vm), VM_EXIT_STOPPED);
	vm_free(vm);
	vm = guest_new("timer", 1, &c);
	assert_non_null(dev_find(vm, "debug-exit"));
	vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_console_input),
		cmocka_unit_test(test_dev_overlap),
		cmocka_unit_test(test_no_debug_exit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
