/* A virtio-blk driver over the modern (1.x) PCI transport: one split virtqueue, one
 * request at a time, completion signalled by MSI-X (or found by polling without it). */
#include "demo.h"

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

struct vq {
	struct vring r;
	struct blk_req req;
	uint8_t data[512];
	uint8_t status;
} __attribute__((aligned(4096)));

static struct vq vqs[VBLK_MAX] __attribute__((section(".noinit.vq"))); /* cleared in init */
struct vblk disks[VBLK_MAX];
unsigned ndisks;

static const char *vblk_init(struct vblk *b, const struct pci_dev *d)
{
	struct vq *vq = b->vq;
	uint32_t features;
	const char *err;

	if ((err = virtio_start(d, &b->regs, 0, &features, &b->msix)) != NULL)
		return err;
	memset(vq, 0, sizeof(*vq));
	b->used_seen = 0;
	b->q = (struct virtio_queue){vq->r.desc, &vq->r.avail, &vq->r.used, 0, 0, 0, 0};
	if ((err = virtio_queue_setup(&b->regs, 0, VQ_MAX, b->msix ? 0 : VIRTIO_NO_VECTOR,
				      &b->q)) != NULL)
		return err;
	b->msix = b->q.msix;
	vq->r.avail.flags = b->msix ? 0 : 1; /* without an interrupt, we poll */
	virtio_driver_ok(&b->regs);
	b->sectors = (uint64_t)mmio_read32(b->regs.devcfg) |
		     (uint64_t)mmio_read32(b->regs.devcfg + 4) << 32;
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
		if (b->error)
			virtio_failed(&b->regs);
		b->present = !b->error;
	}
}

/* Waits for the device to return the request: halted until its MSI-X interrupt, or,
 * without one, a short spin and then the tick; gives up after timeout_s seconds
 * (0: never, for a host that may hold the request while the machine is paused). */
static int vblk_wait(const struct vblk *b, unsigned timeout_s)
{
	volatile uint16_t *used = &b->vq->r.used.idx;

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
	vq->r.desc[0] = (struct vq_desc){(uint64_t)&vq->req, sizeof(vq->req), 1, 1};
	vq->r.desc[1] = (struct vq_desc){(uint64_t)buf, len, (uint16_t)(write ? 1 : 3), 2};
	vq->r.desc[2] = (struct vq_desc){(uint64_t)&vq->status, 1, 2, 0};
	vq->r.avail.ring[vq->r.avail.idx % b->q.size] = 0;
	__asm__ volatile("mfence" ::: "memory");
	vq->r.avail.idx++;
	__asm__ volatile("mfence" ::: "memory");
	virtio_notify(&b->q);
	if (vblk_wait(b, timeout_s) < 0)
		return -2;
	b->used_seen++;
	barrier();
	if (vq->status != 0)
		return -3;
	return 0;
}
