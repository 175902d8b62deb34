/* PCI bus and virtio-pci transport without KVM: the buses are driven as the
 * vCPU threads drive them (type-1 ports, ECAM, BAR MMIO), on a VM shell
 * that has guest memory and buses but no /dev/kvm behind it (interrupt and
 * ioeventfd ioctls fail quietly there, so notifications take the MMIO path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/block/block.h"
#include "vm/dev/pci.h"
#include "vm/dev/virtio-pci.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm-int.h"

#define RAM (1u << 20)

struct fix {
	struct vm *vm;
	uint8_t *ram;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct vm_config cfg = {0};
	struct tv_err err;

	f->vm = calloc(1, sizeof(*f->vm));
	f->vm->fd = -1;
	f->vm->kvm_fd = -1;
	bus_init(&f->vm->pio);
	bus_init(&f->vm->mmio);
	pthread_mutex_init(&f->vm->lock, NULL);
	f->ram = calloc(1, RAM);
	assert_int_equal(gmem_add_region(&f->vm->mem, 0, RAM, f->ram), 0);
	assert_int_equal(pci_create(f->vm, &cfg, &err), 0);
	assert_int_equal(virtio_rng_create(f->vm, &cfg, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	dev_destroy_all(f->vm);
	bus_free(&f->vm->pio);
	bus_free(&f->vm->mmio);
	pthread_mutex_destroy(&f->vm->lock);
	free(f->vm);
	free(f->ram);
	free(f);
	return 0;
}

static uint32_t io(struct fix *f, bool pio, uint64_t addr, unsigned len, bool write, uint32_t v,
		   bool *claimed)
{
	uint8_t d[4];

	memset(d, 0xFF, sizeof(d));
	if (write)
		dev_data_put(d, len, v);
	*claimed = bus_access(pio ? &f->vm->pio : &f->vm->mmio, addr, d, len, write);
	return (uint32_t)dev_data_get(d, len);
}

/* Type-1 configuration access, as a guest does it. */
static uint32_t cfg_rd(struct fix *f, unsigned slot, unsigned reg, unsigned len)
{
	bool c;

	io(f, true, 0xCF8, 4, true, 0x80000000u | slot << 11 | (reg & 0xFC), &c);
	return io(f, true, 0xCFC + (reg & 3), len, false, 0, &c);
}

static void cfg_wr(struct fix *f, unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	bool c;

	io(f, true, 0xCF8, 4, true, 0x80000000u | slot << 11 | (reg & 0xFC), &c);
	io(f, true, 0xCFC + (reg & 3), len, true, v, &c);
}

static uint32_t mmio_rd(struct fix *f, uint64_t a, unsigned len, bool *claimed)
{
	return io(f, false, a, len, false, 0, claimed);
}

static void mmio_wr(struct fix *f, uint64_t a, unsigned len, uint32_t v)
{
	bool c;

	io(f, false, a, len, true, v, &c);
}

static void test_enumeration(void **state)
{
	struct fix *f = *state;
	bool c;

	assert_int_equal(cfg_rd(f, 0, 0, 2), 0x8086);
	assert_int_equal(cfg_rd(f, 0, 0x0A, 2), 0x0600); /* host bridge class */
	assert_int_equal(cfg_rd(f, 1, 0, 4), 0x10441AF4);
	assert_int_equal(cfg_rd(f, 1, 0x08, 1), 1); /* revision: modern */
	assert_int_equal(cfg_rd(f, 5, 0, 4), 0xFFFFFFFF);
	/* Function 1 and bus 1 do not exist. */
	io(f, true, 0xCF8, 4, true, 0x80000000u | 1 << 11 | 1 << 8, &c);
	assert_int_equal(io(f, true, 0xCFC, 4, false, 0, &c), 0xFFFFFFFF);
	assert_int_equal(mmio_rd(f, LAYOUT_PCI_ECAM_BASE + (1 << 20), 4, &c), 0xFFFFFFFF);
	/* ECAM and type-1 agree, also on a byte in the middle. */
	assert_int_equal(mmio_rd(f, LAYOUT_PCI_ECAM_BASE + (1 << 15), 4, &c), 0x10441AF4);
	assert_true(c);
	assert_int_equal(mmio_rd(f, LAYOUT_PCI_ECAM_BASE + (1 << 15) + 3, 1, &c), 0x10);
	/* Extended space reads zero (no extended capabilities). */
	assert_int_equal(mmio_rd(f, LAYOUT_PCI_ECAM_BASE + (1 << 15) + 0x100, 4, &c), 0);
	/* The enable bit off: nothing answers. */
	io(f, true, 0xCF8, 4, true, 1 << 11, &c);
	assert_int_equal(io(f, true, 0xCFC, 4, false, 0, &c), 0xFFFFFFFF);
}

static void test_read_only_fields(void **state)
{
	struct fix *f = *state;

	cfg_wr(f, 1, 0, 4, 0x12345678);
	assert_int_equal(cfg_rd(f, 1, 0, 4), 0x10441AF4);
	cfg_wr(f, 1, 0x3D, 1, 4); /* interrupt pin */
	assert_int_equal(cfg_rd(f, 1, 0x3D, 1), 1);
	assert_int_equal(cfg_rd(f, 1, 0x3C, 1), PCI_INTX_GSI(1, 0));
	cfg_wr(f, 1, 0x3C, 1, 11); /* interrupt line is scratch for the OS */
	assert_int_equal(cfg_rd(f, 1, 0x3C, 1), 11);
	cfg_wr(f, 1, 4, 2, 0xFFFF);
	assert_int_equal(cfg_rd(f, 1, 4, 2), 0x407);
}

static void test_capabilities(void **state)
{
	struct fix *f = *state;
	unsigned types = 0, msix = 0, n = 0;

	assert_true(cfg_rd(f, 1, 6, 2) & PCI_STATUS_CAP_LIST);
	for (unsigned c = cfg_rd(f, 1, 0x34, 1); c != 0 && n < 48;
	     c = cfg_rd(f, 1, c + 1, 1), n++) {
		assert_true(c >= 0x40 && (c & 3) == 0);
		if (cfg_rd(f, 1, c, 1) == PCI_CAP_ID_MSIX) {
			msix = c;
			continue;
		}
		assert_int_equal(cfg_rd(f, 1, c, 1), PCI_CAP_ID_VNDR);
		types |= 1u << cfg_rd(f, 1, c + 3, 1);
		assert_int_equal(cfg_rd(f, 1, c + 4, 1), 0); /* BAR 0 */
		if (cfg_rd(f, 1, c + 3, 1) == 2) {
			assert_int_equal(cfg_rd(f, 1, c + 2, 1), 20);
			assert_int_equal(cfg_rd(f, 1, c + 16, 4), VIRTIO_NOTIFY_MULT);
		}
		if (cfg_rd(f, 1, c + 3, 1) == 5)
			assert_int_equal(cfg_rd(f, 1, c + 2, 1), 20);
	}
	/* common, notify, ISR, and the PCI configuration access the spec requires */
	assert_int_equal(types, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 5);
	assert_int_not_equal(msix, 0);
	assert_int_equal(cfg_rd(f, 1, msix + 2, 2), 1); /* 2 vectors, off */
	assert_int_equal(cfg_rd(f, 1, msix + 4, 4), VIRTIO_BAR_MSIX);
	/* Only enable and function mask are writable. */
	cfg_wr(f, 1, msix + 2, 2, 0xFFFF);
	assert_int_equal(cfg_rd(f, 1, msix + 2, 2), 0xC001);
}

static void test_bar_sizing_and_decoding(void **state)
{
	struct fix *f = *state;
	uint32_t home = cfg_rd(f, 1, 0x10, 4);
	bool c;

	assert_true(home >= LAYOUT_PCI_MMIO_BASE && home < LAYOUT_PCI_ECAM_BASE);
	assert_int_equal(home % VIRTIO_BAR_SIZE, 0);
	cfg_wr(f, 1, 0x10, 4, 0xFFFFFFFF);
	assert_int_equal(cfg_rd(f, 1, 0x10, 4), (uint32_t) ~(VIRTIO_BAR_SIZE - 1));
	cfg_wr(f, 1, 0x10, 4, home);
	/* Memory decoding off: nothing there. */
	mmio_rd(f, home + 0x12, 2, &c);
	assert_false(c);
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM);
	assert_int_equal(mmio_rd(f, home + 0x12, 2, &c), 1); /* num_queues */
	assert_true(c);
	/* Moved: the old place is free, the new one answers. */
	cfg_wr(f, 1, 0x10, 4, 0xD0000000);
	mmio_rd(f, home + 0x12, 2, &c);
	assert_false(c);
	assert_int_equal(mmio_rd(f, 0xD0000012, 2, &c), 1);
	/* A reset puts it home, decoding off. */
	dev_reset_all(f->vm);
	assert_int_equal(cfg_rd(f, 1, 0x10, 4), home);
	assert_int_equal(cfg_rd(f, 1, 4, 2), 0);
	mmio_rd(f, 0xD0000012, 2, &c);
	assert_false(c);
}

/* The VIRTIO_PCI_CAP_PCI_CFG capability of the device in slot, or 0. */
static unsigned cfg_cap(struct fix *f, unsigned slot)
{
	unsigned n = 0;

	for (unsigned c = cfg_rd(f, slot, 0x34, 1); c != 0 && n < 48;
	     c = cfg_rd(f, slot, c + 1, 1), n++)
		if (cfg_rd(f, slot, c, 1) == PCI_CAP_ID_VNDR && cfg_rd(f, slot, c + 3, 1) == 5)
			return c;
	return 0;
}

/* Sets the window (cap.bar, cap.offset, cap.length). */
static void window(struct fix *f, unsigned c, unsigned bar, uint32_t off, uint32_t len)
{
	cfg_wr(f, 1, c + 4, 1, bar);
	cfg_wr(f, 1, c + 8, 4, off);
	cfg_wr(f, 1, c + 12, 4, len);
}

static uint32_t window_rd(struct fix *f, unsigned c, unsigned bar, uint32_t off, uint32_t len)
{
	window(f, c, bar, off, len);
	return cfg_rd(f, 1, c + 16, 4) & (uint32_t)((1ull << (8 * (len <= 4 ? len : 4))) - 1);
}

/* pci_cfg_data reaches BAR 0 with accesses of 1, 2 and 4 bytes, reads and
 * writes, with memory decoding off too; windows the driver must not use
 * read as zeros and write nothing. */
static void test_pci_cfg_window(void **state)
{
	struct fix *f = *state;
	uint32_t b = cfg_rd(f, 1, 0x10, 4) & ~0xFu;
	unsigned c = cfg_cap(f, 1);
	bool claimed;

	assert_int_not_equal(c, 0);
	/* The fields are the driver's: they read back. */
	window(f, c, 0, 0x12, 2);
	assert_int_equal(cfg_rd(f, 1, c + 4, 1), 0);
	assert_int_equal(cfg_rd(f, 1, c + 8, 4), 0x12);
	assert_int_equal(cfg_rd(f, 1, c + 12, 4), 2);
	/* Decoding off: the window still reaches the BAR. */
	assert_int_equal(cfg_rd(f, 1, 4, 2), 0);
	assert_int_equal(window_rd(f, c, 0, 0x12, 2), 1); /* num_queues */
	/* 4-byte write, then 4-byte read: device_feature_select, device_feature. */
	window(f, c, 0, 0x00, 4);
	cfg_wr(f, 1, c + 16, 4, 1);
	assert_int_equal(window_rd(f, c, 0, 0x00, 4), 1);
	assert_int_equal(window_rd(f, c, 0, 0x04, 4), 1); /* VERSION_1 is bit 32 */
	/* 1-byte write and read: device_status. */
	window(f, c, 0, 0x14, 1);
	cfg_wr(f, 1, c + 16, 1, 1);
	assert_int_equal(window_rd(f, c, 0, 0x14, 1), 1);
	/* 2-byte write: msix_config. */
	window(f, c, 0, 0x10, 2);
	cfg_wr(f, 1, c + 16, 2, 1);
	assert_int_equal(window_rd(f, c, 0, 0x10, 2), 1);
	/* The MSI-X table in the same BAR, through the window. */
	window(f, c, 0, VIRTIO_BAR_MSIX + 8, 4);
	cfg_wr(f, 1, c + 16, 4, 0x31);
	assert_int_equal(window_rd(f, c, 0, VIRTIO_BAR_MSIX + 8, 4), 0x31);
	/* What memory access sees is what the window did. */
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM);
	assert_int_equal(mmio_rd(f, b + 0x00, 4, &claimed), 1);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &claimed), 1);
	assert_int_equal(mmio_rd(f, b + 0x10, 2, &claimed), 1);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_MSIX + 8, 4, &claimed), 0x31);
	/* Windows a driver must not use: nothing read, nothing written. */
	assert_int_equal(window_rd(f, c, 0, 0x14, 3), 0);	      /* length 3 */
	assert_int_equal(window_rd(f, c, 0, 0x13, 2), 0);	      /* unaligned */
	assert_int_equal(window_rd(f, c, 0, VIRTIO_BAR_SIZE, 4), 0); /* past the BAR */
	assert_int_equal(window_rd(f, c, 0, 0xFFFFFFFC, 4), 0);      /* wraps */
	assert_int_equal(window_rd(f, c, 1, 0x14, 1), 0);	      /* no BAR 1 */
	assert_int_equal(window_rd(f, c, 200, 0x14, 1), 0);	      /* no such BAR */
	window(f, c, 0, 0x15, 2);
	cfg_wr(f, 1, c + 16, 4, 0);
	window(f, c, 0, 0x14, 0);
	cfg_wr(f, 1, c + 16, 4, 0);
	window(f, c, 3, 0x14, 1);
	cfg_wr(f, 1, c + 16, 4, 0);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &claimed), 1);
	/* A reset clears the window. */
	dev_reset_all(f->vm);
	assert_int_equal(cfg_rd(f, 1, c + 12, 4), 0);
}

static uint32_t bar0(struct fix *f)
{
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	return cfg_rd(f, 1, 0x10, 4) & ~0xFu;
}

static void test_feature_negotiation(void **state)
{
	struct fix *f = *state;
	uint32_t b = bar0(f);
	bool c;

	mmio_wr(f, b + 0x14, 1, 1 | 2);
	mmio_wr(f, b + 0x00, 4, 1);
	assert_int_equal(mmio_rd(f, b + 0x04, 4, &c) & 1, 1); /* VERSION_1 */
	/* A legacy driver (no VERSION_1) is refused. */
	mmio_wr(f, b + 0x08, 4, 1);
	mmio_wr(f, b + 0x0C, 4, 0);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c) & 8, 0);
	/* Bits never offered are refused too. */
	mmio_wr(f, b + 0x0C, 4, 1 | 1u << 30);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c) & 8, 0);
	mmio_wr(f, b + 0x0C, 4, 1);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c) & 8, 8);
	/* After FEATURES_OK the features are fixed. */
	mmio_wr(f, b + 0x0C, 4, 0);
	assert_int_equal(mmio_rd(f, b + 0x0C, 4, &c), 1);
	/* Reset: status and features back to zero. */
	mmio_wr(f, b + 0x14, 1, 0);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c), 0);
	assert_int_equal(mmio_rd(f, b + 0x0C, 4, &c), 0);
}

static void negotiate(struct fix *f, uint32_t b)
{
	mmio_wr(f, b + 0x14, 1, 0);
	mmio_wr(f, b + 0x14, 1, 1 | 2);
	mmio_wr(f, b + 0x08, 4, 1);
	mmio_wr(f, b + 0x0C, 4, 1);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8);
}

static void set_rings(struct fix *f, uint32_t b, uint64_t desc, uint64_t avail, uint64_t used)
{
	mmio_wr(f, b + 0x16, 2, 0);
	mmio_wr(f, b + 0x18, 2, 8);
	mmio_wr(f, b + 0x20, 4, (uint32_t)desc);
	mmio_wr(f, b + 0x24, 4, (uint32_t)(desc >> 32));
	mmio_wr(f, b + 0x28, 4, (uint32_t)avail);
	mmio_wr(f, b + 0x2C, 4, (uint32_t)(avail >> 32));
	mmio_wr(f, b + 0x30, 4, (uint32_t)used);
	mmio_wr(f, b + 0x34, 4, (uint32_t)(used >> 32));
	mmio_wr(f, b + 0x1C, 2, 1);
}

static void test_rings_outside_ram(void **state)
{
	struct fix *f = *state;
	uint32_t b = bar0(f);
	bool c;

	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, RAM - 16); /* used ring runs off the end */
	assert_int_equal(mmio_rd(f, b + 0x1C, 2, &c), 0);
	assert_true(mmio_rd(f, b + 0x14, 1, &c) & VIRTIO_STATUS_NEEDS_RESET);
	mmio_wr(f, b + 0x14, 1, 0);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c), 0);
	/* A size above what was offered (64) is refused too. */
	negotiate(f, b);
	assert_int_equal(mmio_rd(f, b + 0x18, 2, &c), 64);
	mmio_wr(f, b + 0x18, 2, 128);
	mmio_wr(f, b + 0x1C, 2, 1);
	assert_int_equal(mmio_rd(f, b + 0x1C, 2, &c), 0);
	assert_true(mmio_rd(f, b + 0x14, 1, &c) & VIRTIO_STATUS_NEEDS_RESET);
	/* Once enabled, a queue's programming is fixed. */
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	assert_int_equal(mmio_rd(f, b + 0x1C, 2, &c), 1);
	mmio_wr(f, b + 0x18, 2, 4);
	mmio_wr(f, b + 0x20, 4, 0x5000);
	assert_int_equal(mmio_rd(f, b + 0x18, 2, &c), 8);
	assert_int_equal(mmio_rd(f, b + 0x20, 4, &c), 0x2000);
}

static void test_msix_vector_range(void **state)
{
	struct fix *f = *state;
	uint32_t b = bar0(f);
	bool c;

	mmio_wr(f, b + 0x10, 2, 1);
	assert_int_equal(mmio_rd(f, b + 0x10, 2, &c), 1);
	mmio_wr(f, b + 0x10, 2, 2); /* the rng has vectors 0 and 1 only */
	assert_int_equal(mmio_rd(f, b + 0x10, 2, &c), VIRTIO_MSI_NO_VECTOR);
	mmio_wr(f, b + 0x1A, 2, 7);
	assert_int_equal(mmio_rd(f, b + 0x1A, 2, &c), VIRTIO_MSI_NO_VECTOR);
	/* The MSI-X table starts masked and takes writes. */
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_MSIX + 12, 4, &c), 1);
	mmio_wr(f, b + VIRTIO_BAR_MSIX + 8, 4, 0x31);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_MSIX + 8, 4, &c), 0x31);
	/* Past the table: nothing, and no crash. */
	mmio_wr(f, b + VIRTIO_BAR_MSIX + 16 * 64, 4, 1);
}

static void test_request_through_intx(void **state)
{
	struct fix *f = *state;
	uint32_t b = bar0(f);
	uint8_t *ram = f->ram;
	uint64_t desc[2] = {0x8000, 16 | (uint64_t)2 << 32}; /* addr; len, WRITE */
	uint16_t one = 1;
	struct timespec ts = {0, 1000000};
	bool c;

	memset(ram + 0x8000, 0, 16);
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	memcpy(ram + 0x2000, desc, sizeof(desc));
	memcpy(ram + 0x3004, (uint16_t[]){0}, 2);
	__atomic_store_n((uint16_t *)(ram + 0x3002), one, __ATOMIC_RELEASE);
	/* A 4-byte notify misses the 2-byte ioeventfd: the MMIO path kicks. */
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	for (int i = 0;
	     i < 2000 && __atomic_load_n((uint16_t *)(ram + 0x4002), __ATOMIC_ACQUIRE) == 0; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(*(uint16_t *)(ram + 0x4002), 1);
	assert_int_equal(*(uint32_t *)(ram + 0x4008), 16); /* bytes written */
	assert_int_not_equal(memcmp(ram + 0x8000, (uint8_t[16]){0}, 16), 0);
	/* No MSI-X: the ISR says "queue" once, then reads clear. */
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c), 1);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c), 0);
}

/* Posts a 16-byte entropy request as avail entry n and waits for used n + 1. */
static void rng_request(struct fix *f, uint32_t b, uint16_t n)
{
	uint8_t *ram = f->ram;
	uint64_t desc[2] = {0x8000, 16 | (uint64_t)2 << 32};
	struct timespec ts = {0, 1000000};
	uint16_t idx = (uint16_t)(n + 1), head = 0;

	memcpy(ram + 0x2000, desc, sizeof(desc));
	memcpy(ram + 0x3004 + 2 * (n % 8), &head, 2);
	__atomic_store_n((uint16_t *)(ram + 0x3002), idx, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	for (int i = 0; i < 2000 && *(volatile uint16_t *)(ram + 0x4002) != idx; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(*(uint16_t *)(ram + 0x4002), idx);
}

static void wait_used(struct fix *f, uint64_t used, uint16_t idx)
{
	for (int i = 0; i < 2000 && *(volatile uint16_t *)(f->ram + used + 2) != idx; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(*(volatile uint16_t *)(f->ram + used + 2), idx);
}

static unsigned msix_cap_of(struct fix *f, unsigned slot)
{
	unsigned n = 0;

	for (unsigned c = cfg_rd(f, slot, 0x34, 1); c != 0 && n < 48;
	     c = cfg_rd(f, slot, c + 1, 1), n++)
		if (cfg_rd(f, slot, c, 1) == PCI_CAP_ID_MSIX)
			return c;
	return 0;
}

/* With Bus Master Enable clear the device leaves guest memory alone: a
 * request waits with its buffer untouched, and an MSI-X message waits in
 * the PBA (it is a memory write too). Set again, both go out. */
static void test_bus_master(void **state)
{
	struct fix *f = *state;
	uint32_t b = bar0(f);
	uint8_t *ram = f->ram;
	struct pci_dev *p = (struct pci_dev *)dev_find(f->vm, "virtio-rng");
	unsigned msix = msix_cap_of(f, 1);
	struct timespec ts = {0, 100000000};
	bool c;

	assert_non_null(p);
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	rng_request(f, b, 0);
	/* Off: the next request is not taken. */
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM);
	assert_false(pci_bus_master(p));
	memset(ram + 0x8000, 0, 16);
	memcpy(ram + 0x3004 + 2, (uint16_t[]){0}, 2);
	__atomic_store_n((uint16_t *)(ram + 0x3002), 2, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	nanosleep(&ts, NULL);
	assert_int_equal(*(volatile uint16_t *)(ram + 0x4002), 1);
	assert_memory_equal(ram + 0x8000, (uint8_t[16]){0}, 16);
	/* On again: served without another notify. */
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	wait_used(f, 0x4000, 2);
	assert_int_not_equal(memcmp(ram + 0x8000, (uint8_t[16]){0}, 16), 0);
	/* MSI-X on, vector 0 unmasked: with bus mastering off it stays pending. */
	assert_int_not_equal(msix, 0);
	cfg_wr(f, 1, msix + 2, 2, PCI_MSIX_ENABLE);
	mmio_wr(f, b + VIRTIO_BAR_MSIX + 12, 4, 0);
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM);
	assert_true(pci_msix_notify(p, 0));
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_PBA, 4, &c) & 1, 1);
	cfg_wr(f, 1, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_PBA, 4, &c) & 1, 0); /* sent */
	assert_true(pci_msix_notify(p, 0));
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_PBA, 4, &c) & 1, 0);
	/* A reset clears Bus Master Enable with the rest. */
	dev_reset_all(f->vm);
	assert_false(pci_bus_master(p));
}

static void test_save_restore(void **state)
{
	struct fix *f = *state;
	struct virtio_pci *vp = virtio_pci_find(f->vm, "virtio-rng");
	struct dev *d = dev_find(f->vm, "virtio-rng");
	uint8_t *saved, *bad;
	struct tv_err err;
	uint32_t b;
	bool c;

	assert_non_null(vp);
	assert_true(d->ops->state_size > 0);
	saved = calloc(1, d->ops->state_size);
	bad = calloc(1, d->ops->state_size);
	bar0(f);
	cfg_wr(f, 1, 0x10, 4, 0xD0000000);
	b = 0xD0000000;
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	rng_request(f, b, 0);
	d->ops->save(d, saved);

	dev_reset_all(f->vm);
	assert_int_not_equal(cfg_rd(f, 1, 0x10, 4), 0xD0000000);
	assert_int_equal(d->ops->restore(d, saved, &err), 0);
	assert_int_equal(cfg_rd(f, 1, 0x10, 4), 0xD0000000);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c), 1 | 2 | 8 | 4);
	assert_true(c);
	assert_int_equal(mmio_rd(f, b + 0x1C, 2, &c), 1);
	/* The queue goes on where it was: the next request is used entry 2. */
	rng_request(f, b, 1);
	/* Quiesced, a kick is held back; released, it is served. */
	virtio_pci_quiesce(f->vm, true);
	memcpy(f->ram + 0x3004 + 2 * 2, (uint16_t[]){0}, 2);
	__atomic_store_n((uint16_t *)(f->ram + 0x3002), 3, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(*(volatile uint16_t *)(f->ram + 0x4002), 2);
	virtio_pci_quiesce(f->vm, false);
	for (int i = 0; i < 2000 && *(volatile uint16_t *)(f->ram + 0x4002) != 3; i++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(*(volatile uint16_t *)(f->ram + 0x4002), 3);

	/* Hostile states: another device's identity, an unknown version. */
	memcpy(bad, saved, d->ops->state_size);
	bad[8] ^= 0xFF; /* vendor id, first byte of the configuration space */
	assert_int_equal(d->ops->restore(d, bad, &err), -1);
	assert_non_null(strstr(err.msg, "configuration space"));
	memcpy(bad, saved, d->ops->state_size);
	bad[0] = 99;
	assert_int_equal(d->ops->restore(d, bad, &err), -1);
	assert_non_null(strstr(err.msg, "version"));
	free(saved);
	free(bad);
}

static char sink_buf[64];
static size_t sink_len;
static unsigned sink_port = ~0u;

static void sink(void *ctx, unsigned port, const void *bytes, size_t len)
{
	(void)ctx;
	sink_port = port;
	len = MIN(len, sizeof(sink_buf) - sink_len);
	memcpy(sink_buf + sink_len, bytes, len);
	sink_len += len;
}

/* hvc0: a transmit buffer reaches the console sink in one piece, typed
 * bytes wait until the guest posts a receive buffer. */
static void test_console(void **state)
{
	struct fix *f = *state;
	struct vm_config cfg = {0};
	struct tv_err err;
	uint32_t b;
	uint64_t rxd[2] = {0x9000, 8 | (uint64_t)2 << 32}; /* 8 bytes, WRITE */
	uint64_t txd[2] = {0x9100, 5};

	f->vm->cfg.console = (struct console_sink){.output = sink};
	sink_len = 0;
	assert_int_equal(virtio_console_create(f->vm, &cfg, &err), 0);
	assert_int_equal(cfg_rd(f, 2, 0, 4), 0x10431AF4);
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000); /* queue 0: receive */
	mmio_wr(f, b + 0x16, 2, 1);
	mmio_wr(f, b + 0x18, 2, 8);
	mmio_wr(f, b + 0x20, 4, 0x5000);
	mmio_wr(f, b + 0x28, 4, 0x6000);
	mmio_wr(f, b + 0x30, 4, 0x7000);
	mmio_wr(f, b + 0x1C, 2, 1); /* queue 1: transmit */
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);

	memcpy(f->ram + 0x9100, "hello", 5);
	memcpy(f->ram + 0x5000, txd, sizeof(txd));
	__atomic_store_n((uint16_t *)(f->ram + 0x6002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT, 4, 1);
	wait_used(f, 0x7000, 1);
	assert_int_equal(sink_len, 5);
	assert_memory_equal(sink_buf, "hello", 5);
	assert_int_equal(sink_port, CONSOLE_HVC);

	/* Typed before any receive buffer: kept, then delivered. */
	assert_int_equal(virtio_console_input(f->vm, "ls\r", 3), 3);
	memcpy(f->ram + 0x2000, rxd, sizeof(rxd));
	__atomic_store_n((uint16_t *)(f->ram + 0x3002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	wait_used(f, 0x4000, 1);
	assert_int_equal(*(uint32_t *)(f->ram + 0x4008), 3);
	assert_memory_equal(f->ram + 0x9000, "ls\r", 3);
}

/* hvc0's size (VIRTIO_CONSOLE_F_SIZE): offered; cols and rows in the
 * configuration space as the VM process gives them; a change moves the
 * configuration generation on and, once the driver is up, raises a
 * configuration interrupt (an unchanged or impossible size does neither);
 * the first write to the port after a reset announces a size given before
 * the driver came up; the UART's size goes nowhere. Snapshots keep the size,
 * read the version before it (no size) and refuse a version 1 that claims
 * one. */
#define VCON_STATE_SIZE (16 + 4096) /* the model's part, last in the state */

static uint32_t con_gen(struct fix *f, uint32_t b)
{
	bool c;

	return mmio_rd(f, b + 0x15, 1, &c);
}

static void con_size(struct fix *f, uint32_t b, uint32_t *rows, uint32_t *cols)
{
	bool c;

	*cols = mmio_rd(f, b + VIRTIO_BAR_DEVICE, 2, &c);
	*rows = mmio_rd(f, b + VIRTIO_BAR_DEVICE + 2, 2, &c);
}

/* Status handshake with F_SIZE (bit 0) and VERSION_1 accepted. */
static void con_negotiate(struct fix *f, uint32_t b, bool size)
{
	bool c;

	mmio_wr(f, b + 0x14, 1, 0);
	mmio_wr(f, b + 0x14, 1, 1 | 2);
	mmio_wr(f, b + 0x08, 4, 0);
	mmio_wr(f, b + 0x0C, 4, size ? 1 : 0);
	mmio_wr(f, b + 0x08, 4, 1);
	mmio_wr(f, b + 0x0C, 4, 1);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8);
	assert_int_equal(mmio_rd(f, b + 0x14, 1, &c) & 8, 8);
}

static void con_tx_queue(struct fix *f, uint32_t b)
{
	mmio_wr(f, b + 0x16, 2, 1);
	mmio_wr(f, b + 0x18, 2, 8);
	mmio_wr(f, b + 0x20, 4, 0x5000);
	mmio_wr(f, b + 0x28, 4, 0x6000);
	mmio_wr(f, b + 0x30, 4, 0x7000);
	mmio_wr(f, b + 0x1C, 2, 1);
}

static void test_console_size(void **state)
{
	struct fix *f = *state;
	struct vm_config cfg = {0};
	struct dev *d;
	struct tv_err err;
	uint8_t *saved, *bad;
	uint32_t b, rows, cols, gen;
	uint64_t txd[2] = {0x9100, 2};
	size_t at;
	bool c;

	f->vm->cfg.console = (struct console_sink){.output = sink};
	sink_len = 0;
	assert_int_equal(virtio_console_create(f->vm, &cfg, &err), 0);
	d = dev_find(f->vm, "virtio-console");
	assert_non_null(d);
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	mmio_wr(f, b + 0x00, 4, 0);
	assert_int_equal(mmio_rd(f, b + 0x04, 4, &c) & 1, 1); /* F_SIZE offered */

	/* Not told yet: zero. Told before any driver: kept, no interrupt. */
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 0);
	assert_int_equal(cols, 0);
	gen = con_gen(f, b);
	console_set_size(f->vm, CONSOLE_HVC, 40, 120);
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 40);
	assert_int_equal(cols, 120);
	assert_int_not_equal(con_gen(f, b), gen);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c), 0);

	/* The driver comes up with F_SIZE; the first write to the port tells
	 * it about the size it was given before. */
	con_negotiate(f, b, true);
	con_tx_queue(f, b);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c) & 2, 0);
	memcpy(f->ram + 0x9100, "$ ", 2);
	memcpy(f->ram + 0x5000, txd, sizeof(txd));
	__atomic_store_n((uint16_t *)(f->ram + 0x6002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT, 4, 1);
	wait_used(f, 0x7000, 1);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c) & 2, 2);

	/* A change while the driver is up: new values, a configuration
	 * interrupt, the generation moves on. */
	gen = con_gen(f, b);
	console_set_size(f->vm, CONSOLE_HVC, 30, 100);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c), 2);
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 30);
	assert_int_equal(cols, 100);
	assert_int_not_equal(con_gen(f, b), gen);
	/* The same size again, an impossible one, the UART's: nothing. */
	gen = con_gen(f, b);
	console_set_size(f->vm, CONSOLE_HVC, 30, 100);
	console_set_size(f->vm, CONSOLE_HVC, 0, 100);
	console_set_size(f->vm, CONSOLE_HVC, 30, 70000);
	console_set_size(f->vm, CONSOLE_SERIAL, 50, 160);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c), 0);
	assert_int_equal(con_gen(f, b), gen);
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 30);
	assert_int_equal(cols, 100);

	/* Snapshots: the size goes with the machine. */
	saved = calloc(1, d->ops->state_size);
	bad = calloc(1, d->ops->state_size);
	at = d->ops->state_size - VCON_STATE_SIZE;
	d->ops->save(d, saved);
	console_set_size(f->vm, CONSOLE_HVC, 25, 80);
	assert_int_equal(d->ops->restore(d, saved, &err), 0);
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 30);
	assert_int_equal(cols, 100);
	/* Version 1 (no size) reads as a size never told. */
	memcpy(bad, saved, d->ops->state_size);
	memcpy(bad + at, (uint32_t[]){1}, 4);
	memset(bad + at + 12, 0, 4);
	assert_int_equal(d->ops->restore(d, bad, &err), 0);
	con_size(f, b, &rows, &cols);
	assert_int_equal(rows, 0);
	assert_int_equal(cols, 0);
	/* A version 1 with a size, half a size, a later version: refused. */
	memcpy(bad + at + 12, saved + at + 12, 4);
	assert_int_equal(d->ops->restore(d, bad, &err), -1);
	assert_non_null(strstr(err.msg, "version 1"));
	memcpy(bad, saved, d->ops->state_size);
	memset(bad + at + 12, 0, 2); /* rows 0, cols 100 */
	assert_int_equal(d->ops->restore(d, bad, &err), -1);
	assert_non_null(strstr(err.msg, "console size"));
	memcpy(bad, saved, d->ops->state_size);
	memcpy(bad + at, (uint32_t[]){3}, 4);
	assert_int_equal(d->ops->restore(d, bad, &err), -1);
	assert_non_null(strstr(err.msg, "console state version 3"));
	free(saved);
	free(bad);

	/* A driver without F_SIZE: no configuration interrupt at its first
	 * write. */
	con_negotiate(f, b, false);
	con_tx_queue(f, b);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	(void)mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c);
	memcpy(f->ram + 0x5000, txd, sizeof(txd));
	__atomic_store_n((uint16_t *)(f->ram + 0x6002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT, 4, 1);
	wait_used(f, 0x7000, 1);
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_ISR, 1, &c) & 2, 0);
}

static char uart_buf[16];
static size_t uart_len;

static size_t fake_uart(void *dev, const void *bytes, size_t len)
{
	(void)dev;
	len = MIN(len, sizeof(uart_buf) - uart_len);
	memcpy(uart_buf + uart_len, bytes, len);
	uart_len += len;
	return len;
}

/* The VM's two consoles never mix: typing for ttyS0 reaches the UART whether
 * or not the guest uses hvc0; typing for hvc0 is dropped until the guest uses
 * the port (receive queue running and a write to it), reaches hvc0 then, and
 * is dropped again after a device reset. */
static void test_console_input_routing(void **state)
{
	struct fix *f = *state;
	struct vm_config cfg = {0};
	struct tv_err err;
	uint32_t b;
	uint64_t rxd[2] = {0x9000, 8 | (uint64_t)2 << 32}; /* 8 bytes, WRITE */
	uint64_t txd[2] = {0x9100, 2};

	f->vm->cfg.console = (struct console_sink){.output = sink};
	sink_len = uart_len = 0;
	console_attach_input(f->vm, CONSOLE_SERIAL, fake_uart, NULL);
	assert_int_equal(virtio_console_create(f->vm, &cfg, &err), 0);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000); /* queue 0: receive */
	mmio_wr(f, b + 0x16, 2, 1);
	mmio_wr(f, b + 0x18, 2, 8);
	mmio_wr(f, b + 0x20, 4, 0x5000);
	mmio_wr(f, b + 0x28, 4, 0x6000);
	mmio_wr(f, b + 0x30, 4, 0x7000);
	mmio_wr(f, b + 0x1C, 2, 1); /* queue 1: transmit */
	memcpy(f->ram + 0x2000, rxd, sizeof(rxd));
	__atomic_store_n((uint16_t *)(f->ram + 0x3002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);

	/* Driver up, receive buffer posted, nothing written to hvc0 yet: typing
	 * for hvc0 goes nowhere, typing for ttyS0 to the UART. */
	assert_int_equal(console_input(f->vm, CONSOLE_HVC, "x", 1), 1);
	assert_int_equal(uart_len, 0);
	assert_int_equal(console_input(f->vm, CONSOLE_SERIAL, "a", 1), 1);
	assert_int_equal(uart_len, 1);
	assert_int_equal(*(volatile uint16_t *)(f->ram + 0x4002), 0);

	memcpy(f->ram + 0x9100, "$ ", 2);
	memcpy(f->ram + 0x5000, txd, sizeof(txd));
	__atomic_store_n((uint16_t *)(f->ram + 0x6002), 1, __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT, 4, 1);
	wait_used(f, 0x7000, 1);
	assert_int_equal(sink_port, CONSOLE_HVC);
	assert_int_equal(console_input(f->vm, CONSOLE_HVC, "ls\r", 3), 3);
	wait_used(f, 0x4000, 1);
	assert_int_equal(*(uint32_t *)(f->ram + 0x4008), 3);
	assert_memory_equal(f->ram + 0x9000, "ls\r", 3);
	assert_int_equal(uart_len, 1);
	/* Now that hvc0 is in use, ttyS0 still gets its own typing. */
	assert_int_equal(console_input(f->vm, CONSOLE_SERIAL, "b", 1), 1);
	assert_int_equal(uart_len, 2);

	/* Reset: hvc0 is closed until the next driver uses it. */
	mmio_wr(f, b + 0x14, 1, 0);
	assert_int_equal(console_input(f->vm, CONSOLE_HVC, "c", 1), 1);
	assert_int_equal(uart_len, 2);
	assert_memory_equal(uart_buf, "ab", 2);
}

/* One virtio-blk request (header, optional readable data, status) posted
 * as avail entry n of queue 0 at 0x2000/0x3000/0x4000; returns the status. */
static uint8_t blk_req(struct fix *f, uint32_t b, uint16_t n, uint32_t type, uint64_t sector,
		       const void *out, uint32_t out_len, uint32_t hdr_len)
{
	uint8_t *ram = f->ram;
	uint8_t hdr[16] = {0};
	uint64_t d[6];
	unsigned k = 0;

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	memcpy(ram + 0xA000, hdr, 16);
	if (out_len > 0)
		memcpy(ram + 0xB000, out, out_len);
	ram[0xC000] = 0xEE;
	d[k++] = 0xA000;
	d[k++] = hdr_len | (uint64_t)1 << 32 | (uint64_t)1 << 48; /* NEXT, next 1 */
	if (out_len > 0) {
		d[k++] = 0xB000;
		d[k++] = out_len | (uint64_t)1 << 32 | (uint64_t)2 << 48; /* NEXT, next 2 */
	}
	d[k++] = 0xC000;
	d[k++] = 1 | (uint64_t)2 << 32; /* WRITE */
	memcpy(ram + 0x2000, d, 8 * k);
	memcpy(ram + 0x3004 + 2 * (n % 8), (uint16_t[]){0}, 2);
	__atomic_store_n((uint16_t *)(ram + 0x3002), (uint16_t)(n + 1), __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	/* Until the request is used, or the device gave up on the queue. */
	for (int i = 0; i < 2000; i++) {
		bool c;

		if (*(volatile uint16_t *)(ram + 0x4002) == (uint16_t)(n + 1) ||
		    (mmio_rd(f, b + 0x14, 1, &c) & VIRTIO_STATUS_NEEDS_RESET))
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return ram[0xC000];
}

/* Requests a guest may forge: each gets an error status, never an access
 * outside the disk; one without a whole header stops the device. */
static void blk_hostile_requests(struct fix *f, enum vm_disk_aio aio)
{
	char path[] = "/tmp/tv-test-pci.XXXXXX";
	struct vm_disk disk = {.path = path, .format = "raw", .aio = aio};
	struct vm_config cfg = {.disks = &disk, .ndisks = 1};
	uint64_t range[2], many[66] = {0};
	uint8_t data[512] = {0};
	struct tv_err err;
	uint32_t b;
	bool c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(blk_create(path, "raw", 1 << 20, NULL, &err), 0);
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), 0);
	assert_int_equal(cfg_rd(f, 2, 0, 4), 0x10421AF4);
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	assert_int_equal(mmio_rd(f, b + VIRTIO_BAR_DEVICE, 4, &c), 2048); /* capacity */
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);

	assert_int_equal(blk_req(f, b, 0, 1, 0, data, 512, 16), 0); /* a good write */
	assert_int_equal(blk_req(f, b, 1, 1, 2047, data, 512, 16), 0);
	assert_int_equal(blk_req(f, b, 2, 1, 2048, data, 512, 16), 1); /* past the end */
	assert_int_equal(blk_req(f, b, 3, 1, UINT64_MAX / 256, data, 512, 16), 1); /* wraps */
	assert_int_equal(blk_req(f, b, 4, 1, 0, data, 100, 16), 1); /* partial sector */
	range[0] = 2040;
	range[1] = 16; /* 16 sectors from 2040: past the end */
	assert_int_equal(blk_req(f, b, 5, 11, 0, range, 16, 16), 1);
	range[0] = 0;
	range[1] = 8 | (uint64_t)2 << 32; /* unknown flag */
	assert_int_equal(blk_req(f, b, 6, 13, 0, range, 16, 16), 2);
	assert_int_equal(blk_req(f, b, 7, 11, 0, many, 33 * 16, 16), 2); /* 33 segments */
	assert_int_equal(blk_req(f, b, 8, 11, 0, range, 12, 16), 2);	 /* not whole */
	assert_int_equal(blk_req(f, b, 9, 77, 0, NULL, 0, 16), 2);	 /* unknown type */
	range[1] = 8;
	assert_int_equal(blk_req(f, b, 10, 13, 0, range, 16, 16), 0); /* a good write-zeroes */
	/* A header cut short: the device stops, the status is left alone. */
	blk_req(f, b, 11, 0, 0, NULL, 0, 8);
	assert_true(mmio_rd(f, b + 0x14, 1, &c) & VIRTIO_STATUS_NEEDS_RESET);
	unlink(path);
}

static void test_blk_hostile_requests_threads(void **state)
{
	blk_hostile_requests(*state, VM_AIO_THREADS);
}

static void test_blk_hostile_requests_io_uring(void **state)
{
	blk_hostile_requests(*state, VM_AIO_IO_URING);
}

/* A read or write with its data in up to three segments (guest addresses
 * and lengths), posted as avail entry n of queue 0; returns the status and
 * the used length in *used. */
static uint8_t blk_rw(struct fix *f, uint32_t b, uint16_t n, uint32_t type, uint64_t sector,
		      const uint64_t *seg, const uint32_t *len, unsigned nseg, uint32_t *used)
{
	uint8_t *ram = f->ram;
	uint8_t hdr[16] = {0};
	uint64_t d[10];
	unsigned k = 0;
	uint16_t wr = type == 0 || type == 8 ? 2 : 0; /* IN, GET_ID: device-writable */

	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	memcpy(ram + 0xA000, hdr, 16);
	ram[0xC000] = 0xEE;
	d[k++] = 0xA000;
	d[k++] = 16 | (uint64_t)1 << 32 | (uint64_t)1 << 48;
	for (unsigned i = 0; i < nseg; i++) {
		d[k++] = seg[i];
		d[k++] = len[i] | (uint64_t)(1 | wr) << 32 | (uint64_t)(i + 2) << 48;
	}
	d[k++] = 0xC000;
	d[k++] = 1 | (uint64_t)2 << 32;
	memcpy(ram + 0x2000, d, 8 * k);
	memcpy(ram + 0x3004 + 2 * (n % 8), (uint16_t[]){0}, 2);
	__atomic_store_n((uint16_t *)(ram + 0x3002), (uint16_t)(n + 1), __ATOMIC_RELEASE);
	mmio_wr(f, b + VIRTIO_BAR_NOTIFY, 4, 0);
	wait_used(f, 0x4000, (uint16_t)(n + 1));
	*used = *(uint32_t *)(ram + 0x4004 + 8 * (n % 8) + 4);
	return ram[0xC000];
}

/* Reads and writes through virtio-blk on a qcow2 image with 4 KiB clusters:
 * allocating writes, overwrites straddling clusters in odd-sized segments,
 * reads of allocated data and reads reaching unallocated clusters, all
 * giving back what was written; the same whichever way moves the data. */
static void blk_rw_check(struct fix *f, enum vm_disk_aio aio)
{
	char path[] = "/tmp/tv-test-pci.XXXXXX";
	struct vm_disk disk = {.path = path, .format = "qcow2", .aio = aio};
	struct vm_config cfg = {.disks = &disk, .ndisks = 1};
	struct blk_create_opts o = {.cluster_size = 4096};
	static uint8_t expect[20480];
	uint8_t *ram = f->ram;
	struct tv_err err;
	uint32_t b, used;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(blk_create(path, "qcow2", 1 << 20, &o, &err), 0);
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), 0);
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);

	/* Allocating: 16 KiB from sector 0 in two segments. */
	for (unsigned i = 0; i < 16384; i++)
		expect[i] = ram[0x10000 + i] = (uint8_t)(i * 7 + 1);
	memset(expect + 16384, 0, sizeof(expect) - 16384);
	assert_int_equal(blk_rw(f, b, 0, 1, 0, (uint64_t[]){0x10000, 0x12000},
				(uint32_t[]){8192, 8192}, 2, &used),
			 0);
	assert_int_equal(used, 1);
	/* Overwriting sectors 4..19 (clusters 0-2, not aligned to them). */
	for (unsigned i = 0; i < 8192; i++)
		expect[2048 + i] = ram[0x20000 + i] = (uint8_t)(i * 13 + 5);
	assert_int_equal(blk_rw(f, b, 1, 1, 4,
				(uint64_t[]){0x20000, 0x20000 + 3000, 0x20000 + 6000},
				(uint32_t[]){3000, 3000, 2192}, 3, &used),
			 0);
	/* Allocated only, then reaching into unallocated cluster 4. */
	memset(ram + 0x30000, 0xCC, sizeof(expect));
	assert_int_equal(blk_rw(f, b, 2, 0, 0, (uint64_t[]){0x30000, 0x30000 + 5000},
				(uint32_t[]){5000, 16384 - 5000}, 2, &used),
			 0);
	assert_int_equal(used, 16384 + 1);
	assert_memory_equal(ram + 0x30000, expect, 16384);
	memset(ram + 0x30000, 0xCC, sizeof(expect));
	assert_int_equal(
	    blk_rw(f, b, 3, 0, 0, (uint64_t[]){0x30000}, (uint32_t[]){20480}, 1, &used), 0);
	assert_int_equal(used, 20480 + 1);
	assert_memory_equal(ram + 0x30000, expect, 20480);
	/* Past the end: an error, nothing transferred. */
	assert_int_equal(
	    blk_rw(f, b, 4, 0, 2047, (uint64_t[]){0x30000}, (uint32_t[]){1024}, 1, &used), 1);
	unlink(path);
}

static void test_blk_rw_threads(void **state)
{
	blk_rw_check(*state, VM_AIO_THREADS);
}

static void test_blk_rw_io_uring(void **state)
{
	blk_rw_check(*state, VM_AIO_IO_URING);
}

/* Discard and write-zeroes flags (virtio 1.2, 5.2.6.2): the unmap flag on a
 * discard is unsupported, on write-zeroes allowed; a request refused for one
 * range leaves the others alone too. */
static void test_blk_discard_flags(void **state)
{
	struct fix *f = *state;
	char path[] = "/tmp/tv-test-pci.XXXXXX";
	struct vm_disk disk = {.path = path, .format = "raw"};
	struct vm_config cfg = {.disks = &disk, .ndisks = 1};
	static uint8_t pattern[8192], zeros[4096];
	uint8_t *ram = f->ram;
	uint64_t range[4];
	struct tv_err err;
	uint32_t b, used;
	uint16_t n = 0;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(blk_create(path, "raw", 1 << 20, NULL, &err), 0);
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), 0);
	cfg_wr(f, 2, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	b = cfg_rd(f, 2, 0x10, 4) & ~0xFu;
	negotiate(f, b);
	set_rings(f, b, 0x2000, 0x3000, 0x4000);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = ram[0x10000 + i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(blk_rw(f, b, n++, 1, 0, (uint64_t[]){0x10000}, (uint32_t[]){8192}, 1,
				&used),
			 0);
	/* Discard with unmap: unsupported, nothing discarded. */
	range[0] = 0;
	range[1] = 8 | (uint64_t)1 << 32;
	assert_int_equal(blk_req(f, b, n++, 11, 0, range, 16, 16), 2);
	/* A good range first, a bad one after it: neither is carried out. */
	range[0] = 8;
	range[1] = 8;
	range[2] = 0;
	range[3] = 8 | (uint64_t)1 << 32;
	assert_int_equal(blk_req(f, b, n++, 11, 0, range, 32, 16), 2);
	memset(ram + 0x20000, 0xCC, sizeof(pattern));
	assert_int_equal(blk_rw(f, b, n++, 0, 0, (uint64_t[]){0x20000}, (uint32_t[]){8192}, 1,
				&used),
			 0);
	assert_memory_equal(ram + 0x20000, pattern, sizeof(pattern));
	/* A range past the end with a good one: an I/O error, nothing done. */
	range[2] = 4096;
	range[3] = 8;
	assert_int_equal(blk_req(f, b, n++, 13, 0, range, 32, 16), 1);
	assert_int_equal(blk_rw(f, b, n++, 0, 0, (uint64_t[]){0x20000}, (uint32_t[]){8192}, 1,
				&used),
			 0);
	assert_memory_equal(ram + 0x20000, pattern, sizeof(pattern));
	/* Write-zeroes with unmap: allowed, and the sectors read as zeros. */
	range[0] = 0;
	range[1] = 8 | (uint64_t)1 << 32;
	assert_int_equal(blk_req(f, b, n++, 13, 0, range, 16, 16), 0);
	/* A plain discard: allowed. */
	range[0] = 8;
	range[1] = 8;
	assert_int_equal(blk_req(f, b, n++, 11, 0, range, 16, 16), 0);
	assert_int_equal(blk_rw(f, b, n++, 0, 0, (uint64_t[]){0x20000}, (uint32_t[]){4096}, 1,
				&used),
			 0);
	assert_memory_equal(ram + 0x20000, zeros, sizeof(zeros));
	unlink(path);
}

/* GET_ID: the serial given for the disk, or "tvdisk" and its index; never
 * the image's file name. A serial GET_ID cannot hold is refused. */
static void test_blk_serial(void **state)
{
	struct fix *f = *state;
	char p0[] = "/tmp/tv-test-pci.XXXXXX", p1[] = "/tmp/tv-test-pci.XXXXXX";
	struct vm_disk disks[2] = {{.path = p0, .format = "raw"},
				   {.path = p1, .format = "raw", .serial = "ABCDEFGHIJKLMNOPQRST"}};
	struct vm_config cfg = {.disks = disks, .ndisks = 2};
	uint8_t *ram = f->ram;
	struct tv_err err;
	uint32_t used;
	int fd0 = mkstemp(p0), fd1 = mkstemp(p1);

	assert_true(fd0 >= 0 && fd1 >= 0);
	close(fd0);
	close(fd1);
	unlink(p0);
	unlink(p1);
	assert_int_equal(blk_create(p0, "raw", 1 << 20, NULL, &err), 0);
	assert_int_equal(blk_create(p1, "raw", 1 << 20, NULL, &err), 0);
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), 0);
	for (unsigned slot = 2; slot <= 3; slot++) {
		uint32_t b;

		cfg_wr(f, slot, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
		b = cfg_rd(f, slot, 0x10, 4) & ~0xFu;
		memset(ram + 0x2000, 0, 0x3000); /* fresh rings for each device */
		negotiate(f, b);
		set_rings(f, b, 0x2000, 0x3000, 0x4000);
		mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
		memset(ram + 0x20000, 0xCC, 32);
		assert_int_equal(blk_rw(f, b, 0, 8, 0, (uint64_t[]){0x20000}, (uint32_t[]){20}, 1,
					&used),
				 0);
		assert_int_equal(used, 21);
		if (slot == 2)
			assert_memory_equal(ram + 0x20000, "tvdisk0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
		else
			assert_memory_equal(ram + 0x20000, "ABCDEFGHIJKLMNOPQRST", 20);
		assert_int_equal(ram[0x20014], 0xCC); /* nothing past the 20 bytes */
		mmio_wr(f, b + 0x14, 1, 0);
	}
	disks[0].serial = "ABCDEFGHIJKLMNOPQRSTU";
	cfg.ndisks = 1;
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "disk 0: serial \"ABCDEFGHIJKLMNOPQRSTU\""));
	disks[0].serial = "a,b";
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), -1);
	assert_false(vm_disk_serial_valid(""));
	assert_false(vm_disk_serial_valid("a b"));
	assert_false(vm_disk_serial_valid("\x7f"));
	assert_true(vm_disk_serial_valid("data-01_x.y"));
	unlink(p0);
	unlink(p1);
}

/* ---- the two aio ways against each other ---- */

#define DIFF_QSIZE 64
#define DIFF_SLOTS 8
#define DIFF_SLOT  0x8000 /* data bytes per request at most */
#define DIFF_DISK  (1u << 20)

struct diff_req {
	uint32_t type;
	uint64_t sector;
	unsigned nseg;
	uint32_t len[3];
	uint16_t head;
	uint8_t status;
	uint32_t used;
};

struct diff_dev {
	uint32_t bar;
	uint64_t base; /* this device's rings, headers and buffers in guest RAM */
	uint16_t next; /* avail index */
};

static uint64_t diff_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void diff_setup(struct fix *f, struct diff_dev *d, unsigned slot, uint64_t base)
{
	uint32_t b = cfg_rd(f, slot, 0x10, 4) & ~0xFu;

	cfg_wr(f, slot, 4, 2, PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
	negotiate(f, b);
	mmio_wr(f, b + 0x16, 2, 0);
	mmio_wr(f, b + 0x18, 2, DIFF_QSIZE);
	mmio_wr(f, b + 0x20, 4, (uint32_t)(base + 0x2000));
	mmio_wr(f, b + 0x28, 4, (uint32_t)(base + 0x3000));
	mmio_wr(f, b + 0x30, 4, (uint32_t)(base + 0x4000));
	mmio_wr(f, b + 0x1C, 2, 1);
	mmio_wr(f, b + 0x14, 1, 1 | 2 | 8 | 4);
	*d = (struct diff_dev){.bar = b, .base = base};
}

static void diff_desc(uint8_t *ram, unsigned k, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint64_t d[2] = {addr, len | (uint64_t)flags << 32 | (uint64_t)(k + 1) << 48};

	memcpy(ram + 0x2000 + 16 * k, d, 16);
}

/* Posts the batch (request i's data at base + 0x10000 + i * DIFF_SLOT,
 * written ones taken from out), notifies once, waits for all of it, and
 * records each request's status and used length. */
static void diff_run(struct fix *f, struct diff_dev *d, struct diff_req *q, unsigned n,
		     const uint8_t *out)
{
	uint8_t *ram = f->ram + d->base;
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *data = ram + 0x10000 + i * DIFF_SLOT;
		uint16_t wr = q[i].type == 0 ? 2 : 0;
		uint64_t hdr[2] = {q[i].type, q[i].sector};
		uint32_t at = 0;

		q[i].head = (uint16_t)k;
		memcpy(ram + 0xA000 + 16 * i, hdr, 16);
		ram[0xC000 + i] = 0xEE;
		diff_desc(ram, k++, d->base + 0xA000 + 16 * i, 16, 1);
		for (unsigned j = 0; j < q[i].nseg; j++) {
			if (wr)
				memset(data + at, 0xCC, q[i].len[j]);
			else
				memcpy(data + at, out + i * DIFF_SLOT + at, q[i].len[j]);
			diff_desc(ram, k++, (uint64_t)(data + at - f->ram), q[i].len[j], 1 | wr);
			at += q[i].len[j];
		}
		diff_desc(ram, k++, d->base + 0xC000 + i, 1, 2);
		memcpy(ram + 0x3004 + 2 * ((d->next + i) % DIFF_QSIZE), &q[i].head, 2);
	}
	__atomic_store_n((uint16_t *)(ram + 0x3002), (uint16_t)(d->next + n), __ATOMIC_RELEASE);
	mmio_wr(f, d->bar + VIRTIO_BAR_NOTIFY, 4, 0);
	wait_used(f, d->base + 0x4000, (uint16_t)(d->next + n));
	for (unsigned u = 0; u < n; u++) {
		uint32_t e[2];

		memcpy(e, ram + 0x4004 + 8 * ((d->next + u) % DIFF_QSIZE), 8);
		for (unsigned i = 0; i < n; i++)
			if (q[i].head == e[0])
				q[i].used = e[1];
	}
	for (unsigned i = 0; i < n; i++)
		q[i].status = ram[0xC000 + i];
	d->next = (uint16_t)(d->next + n);
}

/* One random request in zone i of the disk (zones never overlap, so the
 * order inside a batch cannot matter): mostly reads and writes in one to
 * three segments, some past the end, of partial sectors, flushes, GET_ID
 * and unknown types. */
static void diff_gen(struct diff_req *r, unsigned i, uint64_t *s)
{
	unsigned kind = (unsigned)(diff_rand(s) % 20), total = 0;
	uint64_t zone = (uint64_t)i * (DIFF_DISK / 512 / DIFF_SLOTS);

	memset(r, 0, sizeof(*r));
	r->type = kind < 9 ? 0 : kind < 17 ? 1 : kind == 17 ? 4 : kind == 18 ? 8 : 77;
	r->sector = zone + diff_rand(s) % 192;
	if (i == DIFF_SLOTS - 1 && diff_rand(s) % 4 == 0)
		r->sector = DIFF_DISK / 512 - diff_rand(s) % 8; /* runs past the end */
	r->nseg = 1 + (unsigned)(diff_rand(s) % 3);
	for (unsigned j = 0; j < r->nseg; j++) {
		r->len[j] = (uint32_t)(1 + diff_rand(s) % 20) * 512;
		total += r->len[j];
	}
	if (r->nseg > 1 && diff_rand(s) % 3 == 0) { /* odd segments, whole sectors */
		r->len[0] -= 300;
		r->len[1] += 300;
	}
	if (diff_rand(s) % 10 == 0)
		r->len[r->nseg - 1] -= 100; /* a partial sector: an error */
	assert_true(total <= DIFF_SLOT);
	if (r->type > 1 && diff_rand(s) % 2)
		r->nseg = 1;
}

/* The same random batches against two fresh qcow2 images with 4 KiB
 * clusters, one device moving data with threads, one with io_uring:
 * statuses, used lengths and every byte read must agree, and so must the
 * whole disks at the end. The threads way is the reference. */
static void test_blk_aio_ways_agree(void **state)
{
	struct fix *f = *state;
	char p0[] = "/tmp/tv-test-pci.XXXXXX", p1[] = "/tmp/tv-test-pci.XXXXXX";
	struct vm_disk disks[2] = {{.path = p0, .format = "qcow2", .aio = VM_AIO_THREADS},
				   {.path = p1, .format = "qcow2", .aio = VM_AIO_IO_URING}};
	struct vm_config cfg = {.disks = disks, .ndisks = 2};
	struct blk_create_opts o = {.cluster_size = 4096};
	static uint8_t out[DIFF_SLOTS * DIFF_SLOT];
	struct diff_req a[DIFF_SLOTS], b[DIFF_SLOTS];
	struct diff_dev d0, d1;
	unsigned ok = 0, failed = 0;
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	struct tv_err err;

	for (int i = 0; i < 2; i++) {
		int fd = mkstemp(i ? p1 : p0);
		assert_true(fd >= 0);
		close(fd);
		unlink(i ? p1 : p0);
		assert_int_equal(blk_create(i ? p1 : p0, "qcow2", DIFF_DISK, &o, &err), 0);
	}
	assert_int_equal(virtio_blk_create(f->vm, &cfg, &err), 0);
	diff_setup(f, &d0, 2, 0);
	diff_setup(f, &d1, 3, 0x80000);
	for (unsigned round = 0; round < 60; round++) {
		unsigned n = 1 + (unsigned)(diff_rand(&seed) % DIFF_SLOTS);

		for (unsigned i = 0; i < sizeof(out); i++)
			out[i] = (uint8_t)diff_rand(&seed);
		for (unsigned i = 0; i < n; i++)
			diff_gen(&a[i], i, &seed);
		memcpy(b, a, sizeof(a));
		diff_run(f, &d0, a, n, out);
		diff_run(f, &d1, b, n, out);
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(a[i].status, b[i].status);
			assert_int_equal(a[i].used, b[i].used);
			assert_memory_equal(f->ram + 0x10000 + i * DIFF_SLOT,
					    f->ram + 0x80000 + 0x10000 + i * DIFF_SLOT, DIFF_SLOT);
			ok += a[i].status == 0;
			failed += a[i].status != 0;
		}
	}
	/* Both kinds of outcome were exercised. */
	assert_true(ok > 50 && failed > 10);
	/* The whole disks, read back 32 KiB at a time through both. */
	for (uint64_t s = 0; s < DIFF_DISK / 512; s += DIFF_SLOT / 512) {
		a[0] = (struct diff_req){.type = 0, .sector = s, .nseg = 1, .len = {DIFF_SLOT}};
		b[0] = a[0];
		diff_run(f, &d0, a, 1, out);
		diff_run(f, &d1, b, 1, out);
		assert_int_equal(a[0].status, 0);
		assert_int_equal(b[0].status, 0);
		assert_memory_equal(f->ram + 0x10000, f->ram + 0x90000, DIFF_SLOT);
	}
	unlink(p0);
	unlink(p1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_enumeration),
	    T(test_read_only_fields),
	    T(test_capabilities),
	    T(test_pci_cfg_window),
	    T(test_bar_sizing_and_decoding),
	    T(test_feature_negotiation),
	    T(test_rings_outside_ram),
	    T(test_msix_vector_range),
	    T(test_request_through_intx),
	    T(test_bus_master),
	    T(test_save_restore),
	    T(test_console),
	    T(test_blk_hostile_requests_threads),
	    T(test_blk_hostile_requests_io_uring),
	    T(test_console_input_routing),
	    T(test_console_size),
	    T(test_blk_aio_ways_agree),	  T(test_blk_rw_threads),
	    T(test_blk_rw_io_uring),
	    T(test_blk_discard_flags),
	    T(test_blk_serial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
