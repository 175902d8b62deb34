/* A virtio-console driver (hvc0) over the modern PCI transport: one port, no multiport
 * protocol, a receive and a transmit queue.  When the command line's last console=
 * names hvc0, the shell's console moves here from the UART once the device is up
 * (console.c asks vcon_active): output leaves in buffers of up to 4 KiB, one
 * notification each, where the 8250 costs a trip to the host per byte; typing comes
 * from the receive queue, whose MSI-X interrupt wakes a halted shell. */
#include "demo.h"

#define RX	 0
#define TX	 1
#define TX_BUF	 4096
#define RX_BUF	 64
#define TX_AHEAD 2 /* buffers with the device at once while the next fills: an echo
		    * waits behind little (Linux's hvc waits for each buffer) */

struct vcon_queues {
	struct vring r[2];
	uint8_t tx[VQ_MAX][TX_BUF];
	uint8_t rx[VQ_MAX][RX_BUF];
} __attribute__((aligned(4096)));

static struct vcon_queues vcq __attribute__((section(".noinit.vcon"))); /* cleared in init */
static struct virtio_queue q[2];
static struct virtio_regs regs;
static uint16_t rx_seen, tx_next;
static size_t tx_len;		  /* bytes in the open transmit buffer (slot tx_next) */
static int active, batching;
static uint8_t in[256];		  /* typed bytes taken from the receive queue */
static uint8_t in_head, in_tail;

/* Whether the last console= of the command line is hvc0. */
static int wants_hvc(void)
{
	const char *c = boot.cmdline, *last = 0;

	for (; *c; c++)
		if ((c == boot.cmdline || c[-1] == ' ') && strncmp(c, "console=", 8) == 0)
			last = c + 8;
	return last && strncmp(last, "hvc0", 4) == 0 && (last[4] == 0 || last[4] == ' ' ||
							  last[4] == ',');
}

static const char *vcon_init(const struct pci_dev *d)
{
	uint32_t features;
	const char *err;
	int msix;

	if ((err = virtio_start(d, &regs, 0, &features, &msix)) != NULL)
		return err;
	memset(&vcq, 0, sizeof(vcq));
	for (unsigned i = 0; i < 2; i++) {
		q[i] = (struct virtio_queue){vcq.r[i].desc, &vcq.r[i].avail, &vcq.r[i].used, 0, 0, 0, 0};
		err = virtio_queue_setup(&regs, i, VQ_MAX, i == RX && msix ? 0 : VIRTIO_NO_VECTOR,
					 &q[i]);
		if (err)
			return i == RX ? "receive queue missing" : "transmit queue missing";
	}
	vcq.r[RX].avail.flags = q[RX].msix ? 0 : 1;
	vcq.r[TX].avail.flags = 1; /* sent buffers are reclaimed when the next one goes */
	for (uint16_t i = 0; i < q[RX].size; i++) {
		vcq.r[RX].desc[i] = (struct vq_desc){(uint64_t)vcq.rx[i], RX_BUF, 2, 0};
		virtio_publish(&vcq.r[RX], q[RX].size, i);
	}
	rx_seen = tx_next = 0;
	tx_len = 0;
	virtio_driver_ok(&regs);
	virtio_notify(&q[RX]);
	return NULL;
}

/* Starts the first virtio-console device on bus 0 when the command line asks for it. */
void vcon_probe(void)
{
	static const uint16_t ids[] = {0x1043, 0x1003};
	struct pci_dev d;
	const char *err;

	if (!wants_hvc() || !pci_find(0x1af4, ids, ARRAY_SIZE(ids), &d, 0))
		return;
	if ((err = vcon_init(&d)) != NULL) {
		virtio_failed(&regs);
		printf("hvc0: %s; the console stays on the UART\n", err);
		return;
	}
	active = 1;
}

int vcon_active(void)
{
	return active;
}

/* Sends the open buffer. */
void vcon_flush(void)
{
	struct vring *r = &vcq.r[TX];
	uint16_t slot = tx_next % q[TX].size;

	if (!active || !tx_len)
		return;
	r->desc[slot] = (struct vq_desc){(uint64_t)vcq.tx[slot], (uint32_t)tx_len, 0, 0};
	virtio_publish(r, q[TX].size, slot);
	tx_next++;
	tx_len = 0;
	virtio_notify(&q[TX]);
}

/* While on, output waits in the open buffer until it is full (the flood of `stress`);
 * off, every write goes at once. */
void vcon_batch(int on)
{
	batching = on;
	if (!on)
		vcon_flush();
}

/* Appends to the open buffer, sending each that fills; vcon_written ends a write. */
void vcon_write(const char *s, size_t n)
{
	while (n) {
		if (!tx_len) { /* opening slot tx_next: wait until the device gave it back */
			while ((uint16_t)(tx_next - *(volatile uint16_t *)&vcq.r[TX].used.idx) >=
			       TX_AHEAD)
				cpu_relax();
			barrier();
		}
		size_t k = n < TX_BUF - tx_len ? n : TX_BUF - tx_len;
		memcpy(vcq.tx[tx_next % q[TX].size] + tx_len, s, k);
		tx_len += k;
		s += k;
		n -= k;
		if (tx_len == TX_BUF)
			vcon_flush();
	}
}

void vcon_written(void)
{
	if (!batching)
		vcon_flush();
}

/* A typed byte, or -1: takes what the device filled and gives the buffers back. */
int vcon_getc(void)
{
	struct vring *r = &vcq.r[RX];
	unsigned n = 0;

	while (in_head == in_tail && *(volatile uint16_t *)&r->used.idx != rx_seen) {
		barrier();
		uint32_t id = r->used.ring[rx_seen % q[RX].size].id;
		uint32_t len = r->used.ring[rx_seen % q[RX].size].len;
		rx_seen++;
		if (id >= q[RX].size)
			continue; /* a device bug: not ours to hand back */
		for (uint32_t i = 0; i < len && i < RX_BUF; i++)
			if ((uint8_t)(in_head + 1) != in_tail)
				in[in_head++] = vcq.rx[id][i];
		r->desc[id] = (struct vq_desc){(uint64_t)vcq.rx[id], RX_BUF, 2, 0};
		virtio_publish(r, q[RX].size, (uint16_t)id);
		n++;
	}
	if (n)
		virtio_notify(&q[RX]);
	if (in_head == in_tail)
		return -1;
	return in[in_tail++];
}
