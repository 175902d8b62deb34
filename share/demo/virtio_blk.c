/* A virtio-blk driver over the modern (1.x) PCI transport: one split virtqueue, one
 * request at a time, completion signalled by MSI-X (or found by polling without it). */
#include "demo.h"

#define QSIZE_MAX 16

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

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

struct vq {
	struct vq_desc desc[QSIZE_MAX];
	struct {
		uint16_t flags, idx, ring[QSIZE_MAX], used_event;
	} avail __attribute__((aligned(4)));
	struct {
		uint16_t flags, idx;
		struct {
			uint32_t id, len;
		} ring[QSIZE_MAX];
		uint16_t avail_event;
	} used __attribute__((aligned(4)));
	struct blk_req req;
	uint8_t data[512];
	uint8_t status;
} __attribute__((aligned(4096)));

static struct vq vqs[VBLK_MAX] __attribute__((section(".noinit.vq"))); /* cleared in init */
struct vblk disks[VBLK_MAX];
unsigned ndisks;

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

#define NO_VECTOR 0xffff

/* Points MSI-X table entry 0 at this CPU's LAPIC with VEC_VIRTIO, so completions wake
 * the waiting CPU instead of it polling.  0 when the device has no usable MSI-X. */
static int msix_setup(const struct pci_dev *d)
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
static const char *caps_find(struct vblk *b, const struct pci_dev *d, uint32_t *notify_mul)
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
		if (type == 1 && !b->common)
			b->common = addr;
		else if (type == 2 && !b->notify) {
			b->notify = addr;
			*notify_mul = pci_read32(d, p + 16);
		} else if (type == 4 && !b->devcfg)
			b->devcfg = addr;
	}
	if (!b->common || !b->notify || !b->devcfg)
		return "no modern virtio capabilities";
	return NULL;
}

static const char *vblk_init(struct vblk *b, const struct pci_dev *d)
{
	struct vq *vq = b->vq;
	uint32_t mul = 0;
	const char *err = caps_find(b, d, &mul);

	if (err)
		return err;
	pci_write16(d, 4, pci_read16(d, 4) | 0x6); /* memory space, bus master */
	b->msix = msix_setup(d);
	wr8(b->common + CC_STATUS, 0);
	for (unsigned i = 0; rd8(b->common + CC_STATUS); i++)
		if (i == 100000)
			return "device does not reset";
	wr8(b->common + CC_STATUS, ST_ACK);
	wr8(b->common + CC_STATUS, ST_ACK | ST_DRIVER);
	mmio_write32(b->common + CC_DFSEL, 1);
	if (!(mmio_read32(b->common + CC_DF) & 1))
		return "device lacks VIRTIO_F_VERSION_1";
	mmio_write32(b->common + CC_GFSEL, 0);
	mmio_write32(b->common + CC_GF, 0);
	mmio_write32(b->common + CC_GFSEL, 1);
	mmio_write32(b->common + CC_GF, 1);
	wr8(b->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEAT_OK);
	if (!(rd8(b->common + CC_STATUS) & ST_FEAT_OK))
		return "device refused our features";

	wr16(b->common + CC_QSEL, 0);
	b->qsize = rd16(b->common + CC_QSIZE);
	if (!b->qsize)
		return "queue 0 missing";
	if (b->qsize > QSIZE_MAX) {
		b->qsize = QSIZE_MAX;
		wr16(b->common + CC_QSIZE, b->qsize);
	}
	memset(vq, 0, sizeof(*vq));
	b->used_seen = 0;
	wr16(b->common + CC_MSIX, NO_VECTOR);
	if (b->msix) {
		wr16(b->common + CC_QMSIX, 0);
		b->msix = rd16(b->common + CC_QMSIX) == 0; /* the device may refuse */
	}
	vq->avail.flags = b->msix ? 0 : 1; /* without an interrupt, we poll */
	wr64(b->common + CC_QDESC, (uint64_t)vq->desc);
	wr64(b->common + CC_QDRIVER, (uint64_t)&vq->avail);
	wr64(b->common + CC_QDEVICE, (uint64_t)&vq->used);
	b->notify += (uint64_t)rd16(b->common + CC_QNOTIFY) * mul;
	wr16(b->common + CC_QENABLE, 1);
	wr8(b->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEAT_OK | ST_DRIVER_OK);
	b->sectors = (uint64_t)mmio_read32(b->devcfg) | (uint64_t)mmio_read32(b->devcfg + 4) << 32;
	return NULL;
}

/* Finds and starts every virtio-blk device on bus 0 (the first one keeps the notes). */
void vblk_probe(void)
{
	static const uint16_t ids[] = {0x1042, 0x1001};

	while (ndisks < VBLK_MAX) {
		struct vblk *b = &disks[ndisks];
		if (!pci_find(0x1af4, ids, ARRAY_SIZE(ids), &b->pci, (int)ndisks))
			return;
		struct pci_dev d = b->pci;
		b->vq = &vqs[ndisks++];
		b->error = vblk_init(b, &d);
		if (b->error && b->common)
			wr8(b->common + CC_STATUS, ST_FAILED);
		b->present = !b->error;
	}
}

/* Waits for the device to return the request: halted until its MSI-X interrupt, or,
 * without one, a short spin and then the tick; gives up after timeout_s seconds
 * (0: never, for a host that may hold the request while the machine is paused). */
static int vblk_wait(const struct vblk *b, unsigned timeout_s)
{
	volatile uint16_t *used = &b->vq->used.idx;

	for (unsigned spin = 0; !b->msix && spin < 2000; spin++) {
		if (*used != b->used_seen)
			return 0;
		cpu_relax();
	}
	for (uint64_t until = ticks + (uint64_t)timeout_s * DEMO_TICK_HZ; !timeout_s || ticks < until;) {
		if (*used != b->used_seen)
			return 0;
		irq_wait(); /* the MSI-X completion, else the next tick */
	}
	return -1;
}

/* Reads or writes one 512-byte sector; 0 on success. */
int vblk_rw(struct vblk *b, int write, uint64_t sector, void *buf)
{
	struct vq *vq = b->vq;

	if (write)
		memcpy(vq->data, buf, 512);
	int rc = vblk_rw_direct(b, write, sector, vq->data, 512, 2);
	if (rc == 0 && !write)
		memcpy(buf, vq->data, 512);
	return rc;
}

int vblk_rw_direct(struct vblk *b, int write, uint64_t sector, void *buf, uint32_t len,
		   unsigned timeout_s)
{
	struct vq *vq = b->vq;

	if (!b->present || sector >= b->sectors || len % 512 || len / 512 > b->sectors - sector)
		return -1;
	vq->req = (struct blk_req){write ? 1 : 0, 0, sector};
	vq->status = 0xff;
	vq->desc[0] = (struct vq_desc){(uint64_t)&vq->req, sizeof(vq->req), 1, 1};
	vq->desc[1] = (struct vq_desc){(uint64_t)buf, len, (uint16_t)(write ? 1 : 3), 2};
	vq->desc[2] = (struct vq_desc){(uint64_t)&vq->status, 1, 2, 0};
	vq->avail.ring[vq->avail.idx % b->qsize] = 0;
	__asm__ volatile("mfence" ::: "memory");
	vq->avail.idx++;
	__asm__ volatile("mfence" ::: "memory");
	wr16(b->notify, 0);
	if (vblk_wait(b, timeout_s) < 0)
		return -2;
	b->used_seen++;
	barrier();
	if (vq->status != 0)
		return -3;
	return 0;
}
