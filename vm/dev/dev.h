/* Devices: how a device model plugs into the engine. A device embeds a
 * struct dev, registers it with dev_register, and claims port-I/O and MMIO
 * ranges whose accesses the vCPU threads dispatch to it. The engine knows
 * devices only through this interface: reset, save and restore walk the list.
 *
 * Concurrency: read/write callbacks run on whichever vCPU thread made the
 * access, several at once; each device protects its own state with its own
 * lock. Callbacks must not block for long (a disk request belongs on the
 * device's own thread, signalled through an ioeventfd).
 *
 * Guest values: off and len are checked by the engine (off + len lies inside
 * the range, len is 1, 2, 4 or 8); everything else a guest writes is for the
 * device to validate. A device never aborts the host on a guest action. */
#ifndef TV_DEV_H
#define TV_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct vm;
struct vm_config;
struct dev;

/* One port-I/O or MMIO range. data holds len bytes, little-endian as the
 * guest sees them; a read fills them (the engine pre-fills 0xFF, what an
 * unclaimed bus reads). */
struct dev_io_ops {
	void (*read)(void *opaque, uint64_t off, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned len);
};

struct dev_ops {
	/* Back to power-on state (a reset from the guest, or a restore). May be NULL. */
	void (*reset)(struct dev *d);
	/* Snapshots: the device's state as one plain struct of state_size bytes
	 * (no pointers), versioned by its own layout. save fills it; restore
	 * checks every field as guest input and applies it, or fails with err. */
	size_t state_size;
	void (*save)(struct dev *d, void *state);
	int (*restore)(struct dev *d, const void *state, struct tv_err *err);
	/* Optional: whether restore would accept state, changing nothing (a
	 * snapshot is checked whole before anything is restored). */
	int (*check)(struct dev *d, const void *state, struct tv_err *err);
	/* Frees the device; called once by vm_free after the vCPUs stopped,
	 * in reverse order of registration. May be NULL. */
	void (*destroy)(struct dev *d);
};

struct dev {
	const char *name; /* unique per VM, e.g. "serial0", "virtio-blk@00:03.0" */
	const struct dev_ops *ops;
	struct vm *vm;    /* set by dev_register */
	struct dev *next; /* engine's list */
};

/* Adds d (name and ops filled in) to the VM. The VM owns it from then on:
 * its destroy op is called at teardown even when a later step fails. */
void dev_register(struct vm *vm, struct dev *d);

/* Claims [base, base + len) in port-I/O or MMIO space for d; io gets opaque.
 * Fails (naming the device) when the range overlaps another claim. MMIO
 * ranges may be added and removed while the VM runs, also from inside a
 * callback (PCI BARs move). A vCPU may still be inside a removed range's
 * callback when dev_del_* returns: devices live until vm_free, so their
 * opaque stays valid. */
int dev_add_pio(struct vm *vm, struct dev *d, uint16_t base, uint16_t len,
		const struct dev_io_ops *io, void *opaque, struct tv_err *err);
int dev_add_mmio(struct vm *vm, struct dev *d, uint64_t base, uint64_t len,
		 const struct dev_io_ops *io, void *opaque, struct tv_err *err);
int dev_del_mmio(struct vm *vm, uint64_t base);

/* Walking the devices (snapshots): first, then next until NULL. */
struct dev *dev_first(struct vm *vm);
struct dev *dev_find(struct vm *vm, const char *name);
void dev_reset_all(struct vm *vm);

/* Machine construction: vm_new calls each function of dev_machine[] in
 * order, last: guest memory (with the kernel and ACPI tables already in it),
 * the irqchip and the vCPUs exist. Each one reads what it needs from cfg (virtio-blk: its
 * cfg->disks), creates its devices and registers them. Adding a device model
 * to every VM is adding one line to the table in vm/dev/dev.c. */
typedef int (*dev_create_fn)(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
extern const dev_create_fn dev_machine[];

/* The built-in ISA devices (vm/dev/). */
int serial8250_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
int i8042_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
int mc146818_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
int debug_exit_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);

/* Little-endian helpers for callbacks. */
static inline uint64_t dev_data_get(const void *data, unsigned len)
{
	const uint8_t *p = data;
	uint64_t v = 0;

	for (unsigned i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void dev_data_put(void *data, unsigned len, uint64_t v)
{
	uint8_t *p = data;

	for (unsigned i = 0; i < len && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
