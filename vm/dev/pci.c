/* PCI bus 0: host bridge, type-1 and ECAM configuration access, BAR
 * placement and decoding, INTx and MSI-X. Configuration space is kept as
 * bytes with a write mask per byte, so BAR sizing, read-only fields and the
 * writable bits of capabilities all follow from one rule. */
#include <endian.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vm/dev/pci.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

#define PCI_CF8_PORT 0xCF8
#define PCI_RCR_OFF  1 /* 0xCF9: reset control register */

struct pci_bus {
	struct dev dev;
	struct vm *vm;
	pthread_mutex_t lock; /* cf8, slots, INTx counts, placement */
	uint32_t cf8;
	struct pci_dev host;
	struct pci_dev *slots[PCI_MAX_SLOTS];
	uint64_t mmio_next;
	unsigned intx_count[8];
};

static uint16_t cfg16(const struct pci_dev *p, unsigned reg)
{
	return (uint16_t)(p->cfg[reg] | p->cfg[reg + 1] << 8);
}

static uint32_t cfg32(const struct pci_dev *p, unsigned reg)
{
	return (uint32_t)cfg16(p, reg) | (uint32_t)cfg16(p, reg + 2) << 16;
}

static void set16(uint8_t *c, unsigned reg, uint16_t v)
{
	c[reg] = (uint8_t)v;
	c[reg + 1] = (uint8_t)(v >> 8);
}

static void set32(uint8_t *c, unsigned reg, uint32_t v)
{
	set16(c, reg, (uint16_t)v);
	set16(c, reg + 2, (uint16_t)(v >> 16));
}

void pci_dev_init(struct pci_dev *p, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t rev, uint16_t subsys_vendor, uint16_t subsys_id)
{
	pthread_mutex_init(&p->lock, NULL);
	set16(p->cfg, PCI_VENDOR_ID, vendor);
	set16(p->cfg, PCI_DEVICE_ID, device);
	p->cfg[PCI_REVISION] = rev;
	p->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	p->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	p->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	set16(p->cfg, PCI_SUBSYS_VENDOR, subsys_vendor);
	set16(p->cfg, PCI_SUBSYS_ID, subsys_id);
	/* Command: I/O, memory, bus master, INTx disable are the guest's. */
	set16(p->wmask, PCI_COMMAND,
	      PCI_COMMAND_IO | PCI_COMMAND_MEM | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	p->wmask[0x0C] = 0xFF; /* cache line size */
	p->wmask[0x0D] = 0xFF; /* latency timer */
	p->wmask[PCI_INT_LINE] = 0xFF;
	p->msix_bar = -1;
	p->next_cap = 0x40;
}

void pci_dev_add_bar(struct pci_dev *p, int bar, uint64_t size, bool is64,
		     const struct dev_io_ops *io, void *opaque)
{
	struct pci_bar *b = &p->bars[bar];
	uint64_t mask = ~(size - 1);
	unsigned reg = PCI_BAR0 + 4 * (unsigned)bar;

	b->size = size;
	b->is64 = is64;
	b->io = io;
	b->opaque = opaque;
	b->pdev = p;
	/* Address bits at or above the size are writable: sizing reads back
	 * the complement of size - 1. Bits 0-3 (type) stay as set here. */
	set32(p->cfg, reg, is64 ? 0x4 : 0x0);
	set32(p->wmask, reg, (uint32_t)mask & ~0xFu);
	if (is64)
		set32(p->wmask, reg + 4, (uint32_t)(mask >> 32));
}

uint8_t pci_dev_add_cap(struct pci_dev *p, uint8_t id, uint8_t len)
{
	uint8_t off = p->next_cap;

	p->cfg[off] = id;
	p->cfg[off + 1] = p->cfg[PCI_CAP_PTR];
	p->cfg[PCI_CAP_PTR] = off;
	p->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	p->next_cap = (uint8_t)ALIGN_UP(off + len, 4);
	return off;
}

void pci_dev_add_msix(struct pci_dev *p, unsigned nvec, int bar, uint64_t table_off,
		      uint64_t pba_off)
{
	uint8_t c = pci_dev_add_cap(p, PCI_CAP_ID_MSIX, 12);

	p->msix_cap = c;
	p->msix_nvec = nvec;
	p->msix_bar = bar;
	p->msix_table_off = table_off;
	p->msix_pba_off = pba_off;
	set16(p->cfg, c + 2, (uint16_t)(nvec - 1));
	p->wmask[c + 3] = (PCI_MSIX_ENABLE | PCI_MSIX_MASKALL) >> 8;
	set32(p->cfg, c + 4, (uint32_t)table_off | (uint32_t)bar);
	set32(p->cfg, c + 8, (uint32_t)pba_off | (uint32_t)bar);
}

static uint64_t bar_addr(const struct pci_dev *p, int i)
{
	unsigned reg = PCI_BAR0 + 4 * (unsigned)i;
	uint64_t a = cfg32(p, reg) & ~0xFull;

	if (p->bars[i].is64)
		a |= (uint64_t)cfg32(p, reg + 4) << 32;
	return a;
}

/* ---- MSI-X ---- */

static bool msix_on(const struct pci_dev *p)
{
	return p->msix_cap != 0 && (cfg16(p, p->msix_cap + 2) & PCI_MSIX_ENABLE);
}

static bool msix_masked(const struct pci_dev *p, unsigned v)
{
	return (cfg16(p, p->msix_cap + 2) & PCI_MSIX_MASKALL) || (p->msix_table[16 * v + 12] & 1);
}

static void msix_send(struct pci_dev *p, unsigned v)
{
	const uint8_t *e = &p->msix_table[16 * v];
	uint64_t addr;
	uint32_t data;

	memcpy(&addr, e, 8);
	memcpy(&data, e + 8, 4);
	vm_signal_msi(p->dev.vm, le64toh(addr), le32toh(data));
}

bool pci_bus_master(const struct pci_dev *p)
{
	return __atomic_load_n(&p->master, __ATOMIC_ACQUIRE);
}

/* p->master from the command register; true when it changed. Called with
 * p->lock held. */
static bool master_sync(struct pci_dev *p)
{
	bool on = (cfg16(p, PCI_COMMAND) & PCI_COMMAND_MASTER) != 0;

	if (on == p->master)
		return false;
	__atomic_store_n(&p->master, on, __ATOMIC_RELEASE);
	return true;
}

/* Sends what waited behind a mask (or bus mastering off) that is now gone. */
static void msix_flush_pending(struct pci_dev *p)
{
	if (!msix_on(p) || !p->master)
		return;
	for (unsigned v = 0; v < p->msix_nvec; v++) {
		if ((p->msix_pending >> v & 1) && !msix_masked(p, v)) {
			p->msix_pending &= ~(1ull << v);
			msix_send(p, v);
		}
	}
}

bool pci_msix_enabled(struct pci_dev *p)
{
	bool on;

	pthread_mutex_lock(&p->lock);
	on = msix_on(p);
	pthread_mutex_unlock(&p->lock);
	return on;
}

bool pci_msix_notify(struct pci_dev *p, unsigned vector)
{
	pthread_mutex_lock(&p->lock);
	if (!msix_on(p)) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	if (vector < p->msix_nvec) {
		if (msix_masked(p, vector) || !p->master)
			p->msix_pending |= 1ull << vector;
		else
			msix_send(p, vector);
	}
	pthread_mutex_unlock(&p->lock);
	return true;
}

static void msix_table_access(struct pci_dev *p, uint64_t off, void *data, unsigned len, bool write)
{
	uint64_t tsize = 16 * (uint64_t)p->msix_nvec;

	if (off >= tsize || len > tsize - off)
		return;
	if (!write) {
		memcpy(data, &p->msix_table[off], len);
		return;
	}
	memcpy(&p->msix_table[off], data, len);
	msix_flush_pending(p);
}

static void msix_pba_read(struct pci_dev *p, uint64_t off, void *data, unsigned len)
{
	uint8_t pba[8];

	memset(data, 0, len);
	if (off >= sizeof(pba))
		return;
	for (unsigned i = 0; i < 8; i++)
		pba[i] = (uint8_t)(p->msix_pending >> (8 * i));
	memcpy(data, pba + off, MIN(len, sizeof(pba) - off));
}

/* ---- BARs ---- */

static bool bar_msix(struct pci_bar *b, uint64_t off, unsigned len, uint64_t *rel, int *what)
{
	struct pci_dev *p = b->pdev;
	uint64_t tsize = 16 * (uint64_t)p->msix_nvec, psize = 8;

	if (p->msix_cap == 0 || &p->bars[p->msix_bar] != b)
		return false;
	if (off >= p->msix_table_off && off - p->msix_table_off < tsize) {
		*rel = off - p->msix_table_off;
		*what = 0;
		return true;
	}
	if (off >= p->msix_pba_off && off - p->msix_pba_off < psize) {
		*rel = off - p->msix_pba_off;
		*what = 1;
		return true;
	}
	(void)len;
	return false;
}

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_bar *b = opaque;
	uint64_t rel;
	int what;

	if (bar_msix(b, off, len, &rel, &what)) {
		memset(data, 0, len);
		pthread_mutex_lock(&b->pdev->lock);
		if (what == 0)
			msix_table_access(b->pdev, rel, data, len, false);
		else
			msix_pba_read(b->pdev, rel, data, len);
		pthread_mutex_unlock(&b->pdev->lock);
		return;
	}
	if (b->io->read != NULL)
		b->io->read(b->opaque, off, data, len);
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_bar *b = opaque;
	uint64_t rel;
	int what;

	if (bar_msix(b, off, len, &rel, &what)) {
		pthread_mutex_lock(&b->pdev->lock);
		if (what == 0)
			msix_table_access(b->pdev, rel, (void *)data, len, true);
		pthread_mutex_unlock(&b->pdev->lock);
		return;
	}
	if (b->io->write != NULL)
		b->io->write(b->opaque, off, data, len);
}

static const struct dev_io_ops pci_bar_io = {.read = bar_read, .write = bar_write};

void pci_bar_access(struct pci_dev *p, int bar, uint64_t off, void *data, unsigned len,
		    bool write)
{
	if (bar < 0 || bar >= PCI_NUM_BARS || p->bars[bar].size == 0 ||
	    off >= p->bars[bar].size || len > p->bars[bar].size - off)
		return;
	if (write)
		bar_write(&p->bars[bar], off, data, len);
	else
		bar_read(&p->bars[bar], off, data, len);
}

static void bar_unmap(struct pci_dev *p, int i)
{
	struct pci_bar *b = &p->bars[i];

	if (b->mapped_at == 0)
		return;
	dev_del_mmio(p->dev.vm, b->mapped_at);
	if (p->bar_moved != NULL)
		p->bar_moved(p, i, b->mapped_at, false);
	b->mapped_at = 0;
}

/* Decodes each BAR where the guest put it, when memory decoding is on. An
 * address that overlaps another range or wraps leaves the BAR undecoded. */
static void bars_update(struct pci_dev *p)
{
	bool mem = cfg16(p, PCI_COMMAND) & PCI_COMMAND_MEM;

	for (int i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &p->bars[i];
		uint64_t a;

		if (b->size == 0)
			continue;
		a = bar_addr(p, i);
		if (mem && a != 0 && a + b->size > a && a == b->mapped_at)
			continue;
		bar_unmap(p, i);
		if (!mem || a == 0 || a + b->size < a)
			continue;
		if (dev_add_mmio(p->dev.vm, &p->dev, a, b->size, &pci_bar_io, b, NULL) != 0)
			continue;
		b->mapped_at = a;
		if (p->bar_moved != NULL)
			p->bar_moved(p, i, a, true);
	}
}

/* ---- INTx ---- */

/* The line as the bus sees it: several devices may share a GSI, so the
 * bus counts how many hold it up. Called with p->lock held. */
static void intx_apply(struct pci_dev *p)
{
	bool want = p->intx_level && !(cfg16(p, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
	struct pci_bus *bus = p->bus;
	unsigned g = PCI_INTX_GSI(p->slot, 0);

	if (p->intx_level)
		p->cfg[PCI_STATUS] |= PCI_STATUS_INTX;
	else
		p->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTX;
	if (want == p->intx_asserted)
		return;
	p->intx_asserted = want;
	pthread_mutex_lock(&bus->lock);
	if (want && bus->intx_count[g - 16]++ == 0)
		vm_irq_line(bus->vm, g, 1);
	else if (!want && --bus->intx_count[g - 16] == 0)
		vm_irq_line(bus->vm, g, 0);
	pthread_mutex_unlock(&bus->lock);
}

void pci_set_irq(struct pci_dev *p, bool level)
{
	pthread_mutex_lock(&p->lock);
	p->intx_level = level;
	intx_apply(p);
	pthread_mutex_unlock(&p->lock);
}

/* ---- configuration space ---- */

static bool touches(unsigned reg, unsigned len, unsigned start, unsigned n)
{
	return reg < start + n && start < reg + len;
}

static bool in_window(const struct pci_dev *p, unsigned reg, unsigned len)
{
	return p->win_access != NULL && touches(reg, len, p->win_off, p->win_len);
}

uint32_t pci_cfg_read(struct pci_dev *p, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	if (in_window(p, reg, len))
		p->win_access(p, false);
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < len && i < 4; i++)
		if (reg + i < PCI_CFG_SIZE)
			v |= (uint32_t)p->cfg[reg + i] << (8 * i);
	pthread_mutex_unlock(&p->lock);
	return v;
}

void pci_cfg_write(struct pci_dev *p, unsigned reg, uint32_t val, unsigned len)
{
	bool master_moved;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < len && i < 4; i++) {
		unsigned r = reg + i;
		uint8_t v = (uint8_t)(val >> (8 * i));

		if (r >= PCI_CFG_SIZE)
			break;
		p->cfg[r] = (uint8_t)((p->cfg[r] & ~p->wmask[r]) | (v & p->wmask[r]));
	}
	if (touches(reg, len, PCI_COMMAND, 2) || touches(reg, len, PCI_BAR0, 24))
		bars_update(p);
	if (touches(reg, len, PCI_COMMAND, 2))
		intx_apply(p);
	master_moved = master_sync(p);
	if ((p->msix_cap != 0 && touches(reg, len, p->msix_cap + 2, 2)) || master_moved)
		msix_flush_pending(p);
	pthread_mutex_unlock(&p->lock);
	if (master_moved && p->master_changed != NULL)
		p->master_changed(p, p->master);
	if (in_window(p, reg, len))
		p->win_access(p, true);
}

void pci_dev_reset(struct pci_dev *p)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < PCI_NUM_BARS; i++)
		bar_unmap(p, i);
	memcpy(p->cfg, p->reset_cfg, sizeof(p->cfg));
	memset(p->msix_table, 0, sizeof(p->msix_table));
	for (unsigned v = 0; v < p->msix_nvec; v++)
		p->msix_table[16 * v + 12] = 1; /* masked */
	p->msix_pending = 0;
	p->intx_level = false;
	intx_apply(p);
	master_sync(p);
	pthread_mutex_unlock(&p->lock);
}

void pci_dev_save(struct pci_dev *p, struct pci_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&p->lock);
	memcpy(s->cfg, p->cfg, sizeof(s->cfg));
	memcpy(s->msix_table, p->msix_table, sizeof(s->msix_table));
	s->msix_pending = p->msix_pending;
	s->intx_level = p->intx_level;
	pthread_mutex_unlock(&p->lock);
}

int pci_dev_check(const struct pci_dev *p, const struct pci_state *s, struct tv_err *err)
{
	for (unsigned r = 0; r < PCI_CFG_SIZE; r++) {
		uint8_t fixed = (uint8_t)~p->wmask[r];

		if (r == PCI_STATUS)
			fixed &= (uint8_t)~PCI_STATUS_INTX; /* follows the line */
		if ((s->cfg[r] & fixed) != (p->reset_cfg[r] & fixed))
			return tv_errf(err,
				       "%s: saved configuration space differs at 0x%02x "
				       "(0x%02x, expected 0x%02x): another device?",
				       p->dev.name, r, s->cfg[r], p->reset_cfg[r]);
	}
	return 0;
}

int pci_dev_restore(struct pci_dev *p, const struct pci_state *s, struct tv_err *err)
{
	if (pci_dev_check(p, s, err) != 0)
		return -1;
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < PCI_NUM_BARS; i++)
		bar_unmap(p, i);
	memcpy(p->cfg, s->cfg, sizeof(p->cfg));
	memcpy(p->msix_table, s->msix_table, sizeof(p->msix_table));
	p->msix_pending =
	    p->msix_nvec < 64 ? s->msix_pending & ((1ull << p->msix_nvec) - 1) : s->msix_pending;
	p->intx_level = s->intx_level != 0;
	master_sync(p);
	bars_update(p);
	intx_apply(p);
	msix_flush_pending(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* ---- the bus ---- */

static struct pci_dev *bus_dev(struct pci_bus *bus, unsigned busno, unsigned devfn)
{
	if (busno != 0 || (devfn & 7) != 0)
		return NULL;
	return bus->slots[devfn >> 3];
}

static void ecam_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	struct pci_dev *p = bus_dev(bus, (unsigned)(off >> 20), (unsigned)(off >> 12) & 0xFF);

	if (p != NULL)
		dev_data_put(data, len, pci_cfg_read(p, (unsigned)(off & 0xFFF), len));
}

static void ecam_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	struct pci_dev *p = bus_dev(bus, (unsigned)(off >> 20), (unsigned)(off >> 12) & 0xFF);

	if (p != NULL && len <= 4)
		pci_cfg_write(p, (unsigned)(off & 0xFFF), (uint32_t)dev_data_get(data, len), len);
}

static struct pci_dev *cf8_dev(struct pci_bus *bus, unsigned *reg)
{
	uint32_t a;

	pthread_mutex_lock(&bus->lock);
	a = bus->cf8;
	pthread_mutex_unlock(&bus->lock);
	if (!(a & 0x80000000u))
		return NULL;
	*reg = a & 0xFC;
	return bus_dev(bus, (a >> 16) & 0xFF, (a >> 8) & 0xFF);
}

static void cf8_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	struct pci_dev *p;
	unsigned reg;

	if (off == 0 && len == 4) {
		pthread_mutex_lock(&bus->lock);
		dev_data_put(data, len, bus->cf8);
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	if (off < 4) {
		if (off == PCI_RCR_OFF)
			dev_data_put(data, len, 0);
		return;
	}
	p = cf8_dev(bus, &reg);
	if (p != NULL)
		dev_data_put(data, len, pci_cfg_read(p, reg + (unsigned)(off - 4), len));
}

static void cf8_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	uint32_t v = (uint32_t)dev_data_get(data, len);
	struct pci_dev *p;
	unsigned reg;

	if (off == 0 && len == 4) {
		pthread_mutex_lock(&bus->lock);
		bus->cf8 = v;
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	if (off < 4) {
		/* 0xCF9: a write with RST_CPU set resets the machine. */
		if (off == PCI_RCR_OFF && len == 1 && (v & 0x04))
			vm_request_exit(bus->vm, VM_EXIT_REBOOT, 0, "PCI reset control register");
		return;
	}
	p = cf8_dev(bus, &reg);
	if (p != NULL && reg + (off - 4) + len <= PCI_CFG_SIZE)
		pci_cfg_write(p, reg + (unsigned)(off - 4), v, len);
}

static const struct dev_io_ops ecam_io = {.read = ecam_read, .write = ecam_write};
static const struct dev_io_ops cf8_io = {.read = cf8_read, .write = cf8_write};

static void bus_reset(struct dev *d)
{
	struct pci_bus *bus = (struct pci_bus *)d;

	pthread_mutex_lock(&bus->lock);
	bus->cf8 = 0;
	pthread_mutex_unlock(&bus->lock);
	pci_dev_reset(&bus->host);
}

static void bus_destroy(struct dev *d)
{
	struct pci_bus *bus = (struct pci_bus *)d;

	pthread_mutex_destroy(&bus->host.lock);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

struct bus_state {
	uint32_t cf8;
	uint32_t pad;
	struct pci_state host;
};

static void bus_save(struct dev *d, void *state)
{
	struct pci_bus *bus = (struct pci_bus *)d;
	struct bus_state *s = state;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&bus->lock);
	s->cf8 = bus->cf8;
	pthread_mutex_unlock(&bus->lock);
	pci_dev_save(&bus->host, &s->host);
}

static int bus_check(struct dev *d, const void *state, struct tv_err *err)
{
	struct pci_bus *bus = (struct pci_bus *)d;
	struct bus_state s;

	memcpy(&s, state, sizeof(s));
	return pci_dev_check(&bus->host, &s.host, err);
}

static int bus_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct pci_bus *bus = (struct pci_bus *)d;
	struct bus_state s;

	memcpy(&s, state, sizeof(s));
	if (pci_dev_restore(&bus->host, &s.host, err) != 0)
		return -1;
	pthread_mutex_lock(&bus->lock);
	bus->cf8 = s.cf8;
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

static const struct dev_ops bus_ops = {
    .reset = bus_reset,
    .state_size = sizeof(struct bus_state),
    .save = bus_save,
    .restore = bus_restore,
    .check = bus_check,
    .destroy = bus_destroy,
};

struct pci_bus *pci_bus_of(struct vm *vm)
{
	return (struct pci_bus *)dev_find(vm, "pci");
}

int pci_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct pci_bus *bus = xcalloc(1, sizeof(*bus));

	(void)cfg;
	pthread_mutex_init(&bus->lock, NULL);
	bus->vm = vm;
	bus->dev.name = "pci";
	bus->dev.ops = &bus_ops;
	bus->mmio_next = LAYOUT_PCI_MMIO_BASE;
	dev_register(vm, &bus->dev);
	/* 00:00.0: a host bridge (class 06 00 00), as firmware finds it. */
	pci_dev_init(&bus->host, 0x8086, 0x29C0, 0x060000, 0, 0x1AF4, 0x1100);
	bus->host.dev.name = "pci-host";
	bus->host.dev.vm = vm;
	bus->host.bus = bus;
	memcpy(bus->host.reset_cfg, bus->host.cfg, PCI_CFG_SIZE);
	bus->slots[0] = &bus->host;
	if (dev_add_pio(vm, &bus->dev, PCI_CF8_PORT, 8, &cf8_io, bus, err) != 0)
		return -1;
	return dev_add_mmio(vm, &bus->dev, LAYOUT_PCI_ECAM_BASE, LAYOUT_PCI_ECAM_SIZE, &ecam_io,
			    bus, err);
}

/* Places each BAR naturally aligned in the 32-bit window, as firmware would
 * before handing over to the kernel. */
static int bars_place(struct pci_bus *bus, struct pci_dev *p, struct tv_err *err)
{
	for (int i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &p->bars[i];
		unsigned reg = PCI_BAR0 + 4 * (unsigned)i;
		uint64_t a;

		if (b->size == 0)
			continue;
		a = ALIGN_UP(bus->mmio_next, b->size);
		if (a + b->size > LAYOUT_PCI_MMIO_BASE + LAYOUT_PCI_MMIO_SIZE)
			return tv_errf(err, "%s: no room for BAR %d (%llu bytes) in the PCI hole",
				       p->dev.name, i, (unsigned long long)b->size);
		bus->mmio_next = a + b->size;
		b->home = a;
		set32(p->cfg, reg, (uint32_t)a | (cfg32(p, reg) & 0xF));
		if (b->is64)
			set32(p->cfg, reg + 4, (uint32_t)(a >> 32));
	}
	return 0;
}

int pci_dev_add(struct vm *vm, struct pci_dev *p, struct tv_err *err)
{
	struct pci_bus *bus = pci_bus_of(vm);
	unsigned slot;

	dev_register(vm, &p->dev);
	if (bus == NULL)
		return tv_errf(err, "%s: the machine has no PCI bus", p->dev.name);
	pthread_mutex_lock(&bus->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && bus->slots[slot] != NULL; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		pthread_mutex_unlock(&bus->lock);
		return tv_errf(err, "%s: all %d PCI slots are taken", p->dev.name, PCI_MAX_SLOTS);
	}
	if (bars_place(bus, p, err) != 0) {
		pthread_mutex_unlock(&bus->lock);
		return -1;
	}
	p->slot = slot;
	p->bus = bus;
	/* What firmware leaves for the kernel: the GSI of pin A. */
	p->cfg[PCI_INT_LINE] = (uint8_t)PCI_INTX_GSI(slot, 0);
	p->cfg[PCI_INT_PIN] = 1;
	memcpy(p->reset_cfg, p->cfg, PCI_CFG_SIZE);
	for (unsigned v = 0; v < p->msix_nvec; v++)
		p->msix_table[16 * v + 12] = 1;
	bus->slots[slot] = p;
	pthread_mutex_unlock(&bus->lock);
	return 0;
}
