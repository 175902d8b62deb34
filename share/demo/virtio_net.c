/* A virtio-net driver over the modern (1.x) PCI transport: a receive and a transmit
 * queue, polled; the receive queue also interrupts through MSI-X so that a halted
 * shell wakes to answer ARP and pings.  Every frame carries the 12-byte virtio_net_hdr
 * of VIRTIO_F_VERSION_1; no offloads are negotiated, so buffers of 2 KiB hold any
 * frame the device may send. */
#include "demo.h"

#define NET_F_MAC   (1u << 5)
#define NET_HDR_LEN 12
#define NET_BUF	    2048
#define RX	    0
#define TX	    1

struct vnet_queue {
	struct vring r;
	uint8_t buf[VQ_MAX][NET_BUF];
} __attribute__((aligned(4096)));

static struct vnet_queue vnq[2] __attribute__((section(".noinit.vnet"))); /* cleared in init */
static struct virtio_queue q[2];
static struct virtio_regs regs;
static uint16_t rx_seen, tx_seen, tx_next;
struct vnet nic;

static const char *vnet_init(const struct pci_dev *d)
{
	uint32_t features;
	const char *err;
	int msix;

	if ((err = virtio_start(d, &regs, NET_F_MAC, &features, &msix)) != NULL)
		return err;
	memset(vnq, 0, sizeof(vnq));
	for (unsigned i = 0; i < 2; i++) {
		q[i] = (struct virtio_queue){
		    vnq[i].r.desc, &vnq[i].r.avail, &vnq[i].r.used, 0, 0, 0, 0};
		err = virtio_queue_setup(&regs, i, VQ_MAX, i == RX && msix ? 0 : VIRTIO_NO_VECTOR,
					 &q[i]);
		if (err)
			return i == RX ? "receive queue missing" : "transmit queue missing";
	}
	vnq[RX].r.avail.flags = q[RX].msix ? 0 : 1;
	vnq[TX].r.avail.flags = 1; /* sent frames are reclaimed when the next one goes */
	for (uint16_t i = 0; i < q[RX].size; i++) {
		vnq[RX].r.desc[i] = (struct vq_desc){(uint64_t)vnq[RX].buf[i], NET_BUF, 2, 0};
		virtio_publish(&vnq[RX].r, q[RX].size, i);
	}
	if (features & NET_F_MAC)
		for (unsigned i = 0; i < 6; i++)
			nic.mac[i] = *(volatile uint8_t *)(regs.devcfg + i);
	else
		memcpy(nic.mac, (const uint8_t[6]){0x52, 0x54, 0x00, 0xde, 0x00, 0x01}, 6);
	rx_seen = tx_seen = tx_next = 0;
	virtio_driver_ok(&regs);
	virtio_notify(&q[RX]);
	return NULL;
}

/* Starts the first virtio-net device on bus 0. */
void vnet_probe(void)
{
	static const uint16_t ids[] = {0x1041, 0x1000};

	if (!pci_find(0x1af4, ids, ARRAY_SIZE(ids), &nic.pci, 0))
		return;
	nic.error = vnet_init(&nic.pci);
	if (nic.error)
		virtio_failed(&regs);
	nic.present = !nic.error;
}

int vnet_send(const void *frame, size_t len)
{
	struct vring *r = &vnq[TX].r;
	uint16_t slot;

	if (!nic.present || len > NET_BUF - NET_HDR_LEN)
		return -1;
	barrier();
	tx_seen = *(volatile uint16_t *)&r->used.idx;
	if ((uint16_t)(tx_next - tx_seen) >= q[TX].size)
		return -1; /* every buffer still with the device */
	slot = tx_next % q[TX].size;
	memset(vnq[TX].buf[slot], 0, NET_HDR_LEN);
	memcpy(vnq[TX].buf[slot] + NET_HDR_LEN, frame, len);
	r->desc[slot] =
	    (struct vq_desc){(uint64_t)vnq[TX].buf[slot], (uint32_t)(NET_HDR_LEN + len), 0, 0};
	virtio_publish(r, q[TX].size, slot);
	tx_next++;
	virtio_notify(&q[TX]);
	nic.frames_out++;
	return 0;
}

unsigned vnet_poll(void (*fn)(const uint8_t *frame, size_t len))
{
	struct vring *r = &vnq[RX].r;
	unsigned n = 0;

	if (!nic.present)
		return 0;
	while (*(volatile uint16_t *)&r->used.idx != rx_seen) {
		barrier();
		uint32_t id = r->used.ring[rx_seen % q[RX].size].id;
		uint32_t len = r->used.ring[rx_seen % q[RX].size].len;
		rx_seen++;
		if (id >= q[RX].size) {
			nic.dropped_in++; /* a device bug: not ours to hand back */
			continue;
		}
		if (len > NET_HDR_LEN && len <= NET_BUF) {
			nic.frames_in++;
			fn(vnq[RX].buf[id] + NET_HDR_LEN, len - NET_HDR_LEN);
		} else {
			nic.dropped_in++;
		}
		r->desc[id] = (struct vq_desc){(uint64_t)vnq[RX].buf[id], NET_BUF, 2, 0};
		virtio_publish(r, q[RX].size, (uint16_t)id);
		n++;
	}
	if (n)
		virtio_notify(&q[RX]);
	return n;
}
