/* The modern (1.x) virtio PCI transport that the disk and network drivers share:
 * finding the register regions, MSI-X, feature negotiation, one split queue's setup. */
#include "demo.h"

/* virtio_pci_common_cfg offsets */
#define CC_DFSEL   0
#define CC_DF	   4
#define CC_GFSEL   8
#define CC_GF	   12
#define CC_MSIX	   16
#define CC_STATUS  20
#define CC_QSEL	   22
#define CC_QSIZE   24
#define CC_QMSIX   26
#define CC_QENABLE 28
#define CC_QNOTIFY 30
#define CC_QDESC   32
#define CC_QDRIVER 40
#define CC_QDEVICE 48

#define ST_ACK	     1
#define ST_DRIVER    2
#define ST_DRIVER_OK 4
#define ST_FEAT_OK   8
#define ST_FAILED    0x80

static uint8_t rd8(uint64_t a)
{
	return *(volatile uint8_t *)a;
}
static uint16_t rd16(uint64_t a)
{
	return *(volatile uint16_t *)a;
}
static void wr8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}
static void wr16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}
static void wr64(uint64_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

/* Points MSI-X table entry 0 at this CPU's LAPIC with VEC_VIRTIO, so completions wake
 * the waiting CPU instead of it polling.  0 when the device has no usable MSI-X. */
int virtio_msix_setup(const struct pci_dev *d)
{
	unsigned p = pci_read8(d, 0x34) & 0xfc;

	for (unsigned n = 0; p && n < 48 && pci_read8(d, p) != 0x11; n++)
		p = pci_read8(d, p + 1) & 0xfc;
	if (!p || pci_read8(d, p) != 0x11)
		return 0;
	uint32_t table = pci_read32(d, p + 4);
	if ((table & 7) > 5)
		return 0;
	uint64_t bar = pci_bar(d, table & 7);
	if (!bar)
		bar = pci_bar_assign(d, table & 7);
	if (!bar)
		return 0;
	uint64_t entry = bar + (table & ~7u);
	map_phys(entry, 16);
	mmio_write32(entry + 0, 0xfee00000u | lapic_id() << 12);
	mmio_write32(entry + 4, 0);
	mmio_write32(entry + 8, VEC_VIRTIO);
	mmio_write32(entry + 12, 0); /* unmasked */
	uint16_t ctrl = pci_read16(d, p + 2);
	pci_write16(d, p + 2, (uint16_t)((ctrl | 0x8000) & ~0x4000)); /* enable, no mask-all */
	return 1;
}

/* Walks the vendor capabilities for the common, notify and device config regions. */
const char *virtio_caps_find(const struct pci_dev *d, struct virtio_regs *r)
{
	if (!(pci_read16(d, 6) & 0x10))
		return "no capability list";
	for (unsigned p = pci_read8(d, 0x34) & 0xfc, n = 0; p && n < 48;
	     p = pci_read8(d, p + 1) & 0xfc, n++) {
		if (pci_read8(d, p) != 0x09)
			continue;
		unsigned type = pci_read8(d, p + 3), bar = pci_read8(d, p + 4);
		if ((type != 1 && type != 2 && type != 4) || bar > 5)
			continue;
		uint64_t base = pci_bar(d, bar);
		if (!base)
			base = pci_bar_assign(d, bar);
		if (!base)
			return "BAR not assigned, and no room to assign it";
		uint64_t addr = base + pci_read32(d, p + 8);
		map_phys(addr, pci_read32(d, p + 12));
		if (type == 1 && !r->common)
			r->common = addr;
		else if (type == 2 && !r->notify) {
			r->notify = addr;
			r->notify_mul = pci_read32(d, p + 16);
		} else if (type == 4 && !r->devcfg)
			r->devcfg = addr;
	}
	if (!r->common || !r->notify || !r->devcfg)
		return "no modern virtio capabilities";
	return NULL;
}

/* Resets the device and agrees on VIRTIO_F_VERSION_1 plus what of want (feature bits
 * 0-31) the device offers; *got says which. */
const char *virtio_negotiate(const struct virtio_regs *r, uint32_t want, uint32_t *got)
{
	wr8(r->common + CC_STATUS, 0);
	for (unsigned i = 0; rd8(r->common + CC_STATUS); i++)
		if (i == 100000)
			return "device does not reset";
	wr8(r->common + CC_STATUS, ST_ACK);
	wr8(r->common + CC_STATUS, ST_ACK | ST_DRIVER);
	mmio_write32(r->common + CC_DFSEL, 1);
	if (!(mmio_read32(r->common + CC_DF) & 1))
		return "device lacks VIRTIO_F_VERSION_1";
	mmio_write32(r->common + CC_DFSEL, 0);
	*got = mmio_read32(r->common + CC_DF) & want;
	mmio_write32(r->common + CC_GFSEL, 0);
	mmio_write32(r->common + CC_GF, *got);
	mmio_write32(r->common + CC_GFSEL, 1);
	mmio_write32(r->common + CC_GF, 1);
	wr8(r->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEAT_OK);
	if (!(rd8(r->common + CC_STATUS) & ST_FEAT_OK))
		return "device refused our features";
	wr16(r->common + CC_MSIX, VIRTIO_NO_VECTOR);
	return NULL;
}

/* Sets queue q up with at most max entries, completions to MSI-X vector (or none);
 * fills q->size, q->notify and whether the vector took (q->msix). */
const char *virtio_queue_setup(const struct virtio_regs *r, unsigned q, uint16_t max,
			       uint16_t vector, struct virtio_queue *vq)
{
	wr16(r->common + CC_QSEL, (uint16_t)q);
	vq->size = rd16(r->common + CC_QSIZE);
	if (!vq->size)
		return "queue missing";
	if (vq->size > max) {
		vq->size = max;
		wr16(r->common + CC_QSIZE, vq->size);
	}
	vq->msix = 0;
	if (vector != VIRTIO_NO_VECTOR) {
		wr16(r->common + CC_QMSIX, vector);
		vq->msix = rd16(r->common + CC_QMSIX) == vector; /* the device may refuse */
	}
	wr64(r->common + CC_QDESC, (uint64_t)vq->desc);
	wr64(r->common + CC_QDRIVER, (uint64_t)vq->avail);
	wr64(r->common + CC_QDEVICE, (uint64_t)vq->used);
	vq->notify = r->notify + (uint64_t)rd16(r->common + CC_QNOTIFY) * r->notify_mul;
	vq->index = (uint16_t)q;
	wr16(r->common + CC_QENABLE, 1);
	return NULL;
}

void virtio_driver_ok(const struct virtio_regs *r)
{
	wr8(r->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
}

void virtio_failed(const struct virtio_regs *r)
{
	if (r->common)
		wr8(r->common + CC_STATUS, ST_FAILED);
}

void virtio_notify(const struct virtio_queue *vq)
{
	wr16(vq->notify, vq->index);
}

/* The start every driver makes: the transport's regions, memory space and bus
 * mastering on, MSI-X entry 0 (*msix: whether it took), the features agreed. */
const char *virtio_start(const struct pci_dev *d, struct virtio_regs *r, uint32_t want,
			 uint32_t *got, int *msix)
{
	const char *err = virtio_caps_find(d, r);

	if (err)
		return err;
	pci_write16(d, 4, pci_read16(d, 4) | 0x6); /* memory space, bus master */
	*msix = virtio_msix_setup(d);
	return virtio_negotiate(r, want, got);
}

/* Makes descriptor id available in a split ring of size entries. */
void virtio_publish(struct vring *r, uint16_t size, uint16_t id)
{
	r->avail.ring[r->avail.idx % size] = id;
	__asm__ volatile("mfence" ::: "memory");
	r->avail.idx++;
	__asm__ volatile("mfence" ::: "memory");
}
