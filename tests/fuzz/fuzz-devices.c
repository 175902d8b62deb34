/* libFuzzer target for the device models a guest reaches: the machine's
 * devices (vm/dev/dev.c's dev_machine table: 8250, i8042, RTC, debug-exit,
 * ACPI PM, PCI with its configuration space, virtio-pci with the console,
 * the entropy source and a network card on the user network) are created on a VM without KVM, then the input is
 * played as a guest would: port and MMIO reads and writes of any size and
 * value, in any order, to the ranges the devices claimed (BARs move as the
 * guest programs them), with guest RAM filled from the input for the queues
 * to read. Whatever the guest does, no device may crash, hang, touch memory
 * outside guest RAM, or leak; each device's state must save and restore. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vm/dev/dev.h"
#include "vm/vm-int.h"

#define FUZZ_RAM (2u << 20)

/* While an input plays, the monotonic clock the devices count with (the PM
 * timer, the RTC's periodic interrupt) stands still, on every thread, so a
 * run repeats and a device's saved state can be compared before and after a
 * restore. (On this thread only, the RTC's timer thread counted periods on
 * the real clock against a count the input's thread had made on the frozen
 * one, and set a flag between a restore and the next save, which the
 * campaign of 2026-12-07 reported as a changed state.) Other clocks
 * (libFuzzer times its runs with the real-time clock) and libFuzzer between
 * inputs see the real time. */
static atomic_bool clock_frozen;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	if (clock_frozen && id == CLOCK_MONOTONIC) {
		ts->tv_sec = 1700000000;
		ts->tv_nsec = 0;
		return 0;
	}
	return (int)syscall(SYS_clock_gettime, id, ts);
}

/* The engine calls the devices make, stood in for: there is no KVM here. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm;
	(void)gsi;
	(void)level;
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm;
	(void)addr;
	(void)data;
	return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason r, int code, const char *msg)
{
	(void)code;
	(void)msg;
	if (vm->reason == VM_EXIT_NONE)
		vm->reason = r;
}

/* No ioeventfds: queue notifications reach the devices as MMIO writes. */
int vm_ioeventfd(struct vm *vm, int fd, uint64_t addr, unsigned len, bool pio, bool datamatch,
		 uint64_t data, bool assign, struct tv_err *err)
{
	(void)vm;
	(void)fd;
	(void)addr;
	(void)len;
	(void)pio;
	(void)datamatch;
	(void)data;
	if (!assign)
		return 0;
	return tv_errf(err, "no ioeventfd in the fuzz target");
}

/* A disk write the host refused: the engine would pause the VM until it is
 * resumed; here the run is over at once (false), as when the VM stops. */
bool vm_hold(struct vm *vm, const char *why)
{
	return false;
}

bool vm_hold_reason(const struct vm *vm, char *buf, size_t len)
{
	if (len > 0)
		buf[0] = '\0';
	return false;
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return &vm->mem;
}

const struct vm_config *vm_config(const struct vm *vm)
{
	return &vm->cfg;
}

unsigned vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

void console_attach_input(struct vm *vm, unsigned port, console_input_fn fn, void *dev)
{
	(void)vm;
	(void)port;
	(void)fn;
	(void)dev;
}

void console_attach_size(struct vm *vm, unsigned port, console_size_fn fn, void *dev)
{
	(void)vm;
	(void)port;
	(void)fn;
	(void)dev;
}

/* What the guest prints goes nowhere, but every byte is touched, so a
 * device handing out a bad buffer shows. */
void console_output(struct vm *vm, unsigned port, const void *bytes, size_t len)
{
	volatile uint8_t sum = 0;

	(void)vm;
	(void)port;
	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)bytes)[i];
}

static struct vm *machine_new(void)
{
	struct vm *vm = xcalloc(1, sizeof(*vm));
	struct tv_err err;

	vm->kvm_fd = vm->fd = -1;
	vm->ncpus = vm->cfg.cpus = 1;
	vm->cfg.memory = FUZZ_RAM;
	/* One NIC on the user network (no forwards): its queues are fuzzed
	 * through the transport like the others'. */
	static const struct vm_nic nic = {.mode = NET_MODE_USER, .mac = {0x52, 0x54, 0, 1, 2, 3}};
	vm->cfg.nics = &nic;
	vm->cfg.nnics = 1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	bus_init(&vm->pio);
	bus_init(&vm->mmio);
	vm->ram = mmap(NULL, FUZZ_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->ram == MAP_FAILED || gmem_add_region(&vm->mem, 0, FUZZ_RAM, vm->ram) < 0)
		abort();
	for (const dev_create_fn *c = dev_machine; *c != NULL; c++) {
		if ((*c)(vm, &vm->cfg, &err) < 0) {
			fprintf(stderr, "device set-up: %s\n", err.msg);
			abort();
		}
	}
	return vm;
}

static void machine_free(struct vm *vm)
{
	dev_destroy_all(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	munmap(vm->ram, FUZZ_RAM);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

/* Picks an address in one of the claimed ranges of bus b (index and offset
 * taken modulo what is there), or a raw one when the range list is empty. */
static uint64_t pick(struct io_bus *b, uint16_t sel, uint32_t off)
{
	uint64_t addr = off;

	pthread_rwlock_rdlock(&b->lock);
	if (b->n > 0) {
		const struct io_range *r = &b->ranges[sel % b->n];
		addr = r->base + off % r->len;
	}
	pthread_rwlock_unlock(&b->lock);
	return addr;
}

/* The RTC's saved state starts with its 128 CMOS bytes (vm/dev/mc146818.c):
 * register C at byte 12, and in it IRQF, PF, AF and UF. */
#define RTC_STATE_REG_C 12
#define RTC_TIME_FLAGS	0xf0

/* Every device's state saved, restored into itself, and saved again: the
 * same bytes, and restore accepts what save gave. */
static void save_restore_all(struct vm *vm)
{
	for (struct dev *d = dev_first(vm); d != NULL; d = d->next) {
		struct tv_err err;
		void *a, *b;

		if (d->ops->save == NULL)
			continue;
		a = xcalloc(1, d->ops->state_size);
		b = xcalloc(1, d->ops->state_size);
		d->ops->save(d, a);
		if (d->ops->restore(d, a, &err) < 0) {
			fprintf(stderr, "%s: restore refused its own state: %s\n", d->name, err.msg);
			abort();
		}
		d->ops->save(d, b);
		if (strcmp(d->name, "rtc") == 0 && d->ops->state_size > RTC_STATE_REG_C) {
			/* Register C's flags are set by time passing: the update-
			 * ended flag by the real-time clock, which stands still for
			 * no one here (libFuzzer times its runs with it), read by
			 * the RTC's own thread between the restore and the save. */
			((uint8_t *)a)[RTC_STATE_REG_C] &= ~RTC_TIME_FLAGS;
			((uint8_t *)b)[RTC_STATE_REG_C] &= ~RTC_TIME_FLAGS;
		}
		if (memcmp(a, b, d->ops->state_size) != 0) {
			size_t i = 0;

			while (((uint8_t *)a)[i] == ((uint8_t *)b)[i])
				i++;
			fprintf(stderr, "%s: state changed by a save and restore (byte %zu: %02x, then %02x)\n",
				d->name, i, ((uint8_t *)a)[i], ((uint8_t *)b)[i]);
			abort();
		}
		free(a);
		free(b);
	}
}

/* Input: u16 bytes of guest RAM (copied at 0 and repeated over the first
 * MiB), then 16-byte operations: u8 op (bit 0 write, bit 1 MMIO, bits 2-3
 * size 1/2/4/8, bit 4 save and restore every device first, bit 5 the offset
 * is the address itself), u8 pad, u16 range selector, u32 offset, u64 value. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm;
	uint16_t nram;

	if (size < 2)
		return 0;
	nram = (uint16_t)(data[0] | data[1] << 8);
	data += 2;
	size -= 2;
	if (nram > size)
		nram = (uint16_t)size;
	clock_frozen = true;
	vm = machine_new();
	for (size_t at = 0; nram > 0 && at + nram <= (1u << 20); at += nram)
		memcpy(vm->ram + at, data, nram);
	data += nram;
	size -= nram;
	for (; size >= 16 && vm->reason == VM_EXIT_NONE; data += 16, size -= 16) {
		uint8_t op = data[0];
		uint16_t sel = (uint16_t)(data[2] | data[3] << 8);
		uint32_t off = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 |
			       (uint32_t)data[7] << 24;
		unsigned len = 1u << ((op >> 2) & 3);
		bool mmio = op & 2, write = op & 1;
		struct io_bus *b = mmio ? &vm->mmio : &vm->pio;
		uint8_t val[8];
		uint64_t addr = (op & 32) ? off : pick(b, sel, off);

		if (op & 16)
			save_restore_all(vm);
		memcpy(val, data + 8, 8);
		if (!mmio && len == 8)
			len = 4; /* port I/O is at most 4 bytes wide */
		bus_access(b, addr, val, len, write);
	}
	machine_free(vm);
	clock_frozen = false;
	return 0;
}

#include "tests/fuzz/standalone.h"
