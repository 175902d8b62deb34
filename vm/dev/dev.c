/* Device registration and the port-I/O and MMIO buses the vCPU threads
 * dispatch guest accesses through. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vm/dev/acpi-pm.h"
#include "vm/dev/dev.h"
#include "vm/dev/virtio-pci.h"
#include "common/util.h"
#include "vm/vm-int.h"

/* Every VM's devices, created in this order (see dev.h). */
const dev_create_fn dev_machine[] = {
	serial8250_create,
	i8042_create,
	mc146818_create,
	debug_exit_create,
	acpi_pm_create,
	pci_create,
	virtio_blk_create,
	virtio_console_create,
	virtio_rng_create,
	virtio_net_create,
	NULL,
};

void bus_init(struct io_bus *b)
{
	memset(b, 0, sizeof(*b));
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_free(struct io_bus *b)
{
	free(b->ranges);
	pthread_rwlock_destroy(&b->lock);
}

static int bus_add(struct io_bus *b, struct dev *d, uint64_t base, uint64_t len,
		   const struct dev_io_ops *io, void *opaque, const char *space, struct tv_err *err)
{
	if (len == 0 || base + len < base)
		return tv_errf(err, "%s: empty or wrapping %s range 0x%" PRIx64, d->name, space,
			       base);
	pthread_rwlock_wrlock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		const struct io_range *r = &b->ranges[i];
		if (base < r->base + r->len && r->base < base + len) {
			pthread_rwlock_unlock(&b->lock);
			return tv_errf(err, "%s: %s range 0x%" PRIx64 "+0x%" PRIx64
					    " overlaps %s at 0x%" PRIx64,
				       d->name, space, base, len, r->dev->name, r->base);
		}
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->ranges = xreallocarray(b->ranges, b->cap, sizeof(*b->ranges));
	}
	b->ranges[b->n++] = (struct io_range){base, len, d, io, opaque};
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

static int bus_del(struct io_bus *b, uint64_t base)
{
	int rc = -1;

	pthread_rwlock_wrlock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		if (b->ranges[i].base == base) {
			b->ranges[i] = b->ranges[--b->n];
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

/* The range is copied out under the lock and the callback runs without it, so
 * a callback may move ranges (a PCI BAR write) without deadlocking. */
bool bus_access(struct io_bus *b, uint64_t addr, void *data, unsigned len, bool write)
{
	struct io_range hit;
	bool found = false;

	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < b->n; i++) {
		const struct io_range *r = &b->ranges[i];
		if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base)) {
			hit = *r;
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&b->lock);
	if (!found)
		return false;
	if (write) {
		if (hit.io->write != NULL)
			hit.io->write(hit.opaque, addr - hit.base, data, len);
	} else if (hit.io->read != NULL) {
		hit.io->read(hit.opaque, addr - hit.base, data, len);
	}
	return true;
}

void dev_register(struct vm *vm, struct dev *d)
{
	struct dev **p = &vm->devs;

	d->vm = vm;
	d->next = NULL;
	while (*p != NULL)
		p = &(*p)->next;
	*p = d;
}

int dev_add_pio(struct vm *vm, struct dev *d, uint16_t base, uint16_t len,
		const struct dev_io_ops *io, void *opaque, struct tv_err *err)
{
	if ((uint32_t)base + len > 0x10000)
		return tv_errf(err, "%s: port range 0x%x+0x%x beyond 0xffff", d->name, base, len);
	return bus_add(&vm->pio, d, base, len, io, opaque, "port", err);
}

int dev_add_mmio(struct vm *vm, struct dev *d, uint64_t base, uint64_t len,
		 const struct dev_io_ops *io, void *opaque, struct tv_err *err)
{
	return bus_add(&vm->mmio, d, base, len, io, opaque, "MMIO", err);
}

int dev_del_mmio(struct vm *vm, uint64_t base)
{
	return bus_del(&vm->mmio, base);
}

struct dev *dev_first(struct vm *vm)
{
	return vm->devs;
}

struct dev *dev_find(struct vm *vm, const char *name)
{
	for (struct dev *d = vm->devs; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

void dev_reset_all(struct vm *vm)
{
	for (struct dev *d = vm->devs; d != NULL; d = d->next)
		if (d->ops->reset != NULL)
			d->ops->reset(d);
}

static void destroy_from(struct dev *d)
{
	if (d == NULL)
		return;
	destroy_from(d->next);
	if (d->ops->destroy != NULL)
		d->ops->destroy(d);
}

/* Reverse order: a device may use one registered before it. */
void dev_destroy_all(struct vm *vm)
{
	struct dev *d = vm->devs;

	vm->devs = NULL;
	destroy_from(d);
}
