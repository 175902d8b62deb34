/* virtio-console (virtio spec 5.3), a single port without the multiport
 * protocol (hvc0 in Linux). What the guest writes goes to the VM's console
 * sink in one call per buffer, far cheaper than the 8250's exit per byte.
 * Input typed for the guest (virtio_console_input) waits in a small buffer
 * until the guest posts receive buffers.
 *
 * hvc0 is a console of its own (vm/console.h: CONSOLE_HVC): its output and
 * its typing never mix with the UART's. Typing reaches the guest once it uses
 * the port: its driver is up with the receive queue enabled and something has
 * written to hvc0 since the last device reset (a kernel with console=hvc0, a
 * getty on hvc0); before that it is dropped.
 *
 * The port's terminal size (VIRTIO_CONSOLE_F_SIZE, spec 5.3.4): cols and
 * rows in the configuration space, set by the VM process from the terminal
 * or pane that shows hvc0 (console_set_size), with a configuration interrupt
 * when they change. Linux reads them on that interrupt only, and only once
 * its port exists: the first write to the port is announced too, so a size
 * given before the guest's driver came up reaches it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vm/console.h"
#include "vm/dev/virtio-pci.h"
#include "common/util.h"

#define VCON_RX	      0
#define VCON_TX	      1
#define VCON_CFG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */
#define VCON_IN_SIZE  4096
#define VIRTIO_CONSOLE_F_SIZE 0

struct vcon {
	struct virtio_pci *vp;
	struct vq_req req; /* one per queue thread */
	struct vq_req rx_req;
	pthread_mutex_t in_lock;
	uint8_t in[VCON_IN_SIZE]; /* typed, not yet taken by the guest */
	size_t in_head, in_count;
	bool tx_used; /* the guest wrote to the port since the last reset */
	uint16_t rows, cols; /* the terminal's size; 0: not told yet */
};

/* Moves typed bytes into the guest's receive buffers, one chain per call
 * of vq_pop, while both are there. Runs on the receive queue's thread. */
static unsigned vcon_rx(struct vcon *vc, struct vq *vq)
{
	unsigned pushed = 0;

	pthread_mutex_lock(&vc->in_lock);
	while (vc->in_count > 0 && vq_pop(vq, &vc->rx_req) > 0) {
		struct vq_req *r = &vc->rx_req;
		size_t done = 0;

		while (vc->in_count > 0 && done < r->in_len) {
			size_t n = MIN(vc->in_count, VCON_IN_SIZE - vc->in_head);

			n = MIN(n, r->in_len - done);
			iov_from_buf(r->iov + r->nout, r->nin, done, vc->in + vc->in_head, n);
			vc->in_head = (vc->in_head + n) % VCON_IN_SIZE;
			vc->in_count -= n;
			done += n;
		}
		vq_push(vq, r->head, (uint32_t)done);
		pushed++;
	}
	pthread_mutex_unlock(&vc->in_lock);
	return pushed;
}

/* Before the buffer goes back: a guest that sees its write done may
 * expect its next keystroke on hvc0. */
static void vcon_port_used(struct vcon *vc)
{
	bool first, sized;

	pthread_mutex_lock(&vc->in_lock);
	first = !vc->tx_used;
	sized = vc->rows != 0;
	vc->tx_used = true;
	pthread_mutex_unlock(&vc->in_lock);
	if (first && sized && (virtio_pci_features(vc->vp) & 1ull << VIRTIO_CONSOLE_F_SIZE))
		virtio_pci_config_changed(vc->vp);
}

static void vcon_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vcon *vc = virtio_pci_priv(vp);
	unsigned pushed = 0;

	if (qi == VCON_RX) {
		pushed = vcon_rx(vc, vq);
	} else {
		while (vq_pop(vq, &vc->req) > 0) {
			vcon_port_used(vc);
			for (unsigned i = 0; i < vc->req.nout; i++)
				console_output(virtio_pci_vm(vp), CONSOLE_HVC, vc->req.iov[i].iov_base,
					       vc->req.iov[i].iov_len);
			vq_push(vq, vc->req.head, 0);
			pushed++;
		}
		/* Buffers taken before a snapshot count after a restore. */
		if (vq->used_idx != 0)
			vcon_port_used(vc);
	}
	/* A kick that brought nothing costs the guest no interrupt. */
	if (pushed > 0 || vq->broken)
		virtio_pci_queue_done(vp, qi, vq);
}

static size_t vcon_queue_input(struct vcon *vc, const void *bytes, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&vc->in_lock);
	while (n < len && vc->in_count < VCON_IN_SIZE) {
		vc->in[(vc->in_head + vc->in_count) % VCON_IN_SIZE] = ((const uint8_t *)bytes)[n++];
		vc->in_count++;
	}
	pthread_mutex_unlock(&vc->in_lock);
	if (n > 0)
		virtio_pci_kick(vc->vp, VCON_RX);
	return n;
}

size_t virtio_console_input(struct vm *vm, const void *bytes, size_t len)
{
	struct virtio_pci *vp = virtio_pci_find(vm, "virtio-console");

	if (vp == NULL)
		return 0;
	return vcon_queue_input(virtio_pci_priv(vp), bytes, len);
}

/* Typing for hvc0. Until the guest uses the port (it has written to it and
 * its receive queue is ready) nobody reads it: the bytes are dropped, as on
 * a line with no getty. */
static size_t vcon_port_input(void *dev, const void *bytes, size_t len)
{
	struct vcon *vc = dev;
	bool open;

	pthread_mutex_lock(&vc->in_lock);
	open = vc->tx_used;
	pthread_mutex_unlock(&vc->in_lock);
	if (!open || !virtio_pci_queue_ready(vc->vp, VCON_RX))
		return len;
	return vcon_queue_input(vc, bytes, len);
}

/* The size from the VM process (console_set_size): any thread. Sizes past
 * 16 bits are not terminals; they are left out. */
static void vcon_resize(void *dev, unsigned rows, unsigned cols)
{
	struct vcon *vc = dev;
	bool changed;

	if (rows == 0 || cols == 0 || rows > UINT16_MAX || cols > UINT16_MAX)
		return;
	pthread_mutex_lock(&vc->in_lock);
	changed = vc->rows != rows || vc->cols != cols;
	vc->rows = (uint16_t)rows;
	vc->cols = (uint16_t)cols;
	pthread_mutex_unlock(&vc->in_lock);
	if (changed)
		virtio_pci_config_changed(vc->vp);
}

/* cols (u16), rows (u16), then max_nr_ports and emerg_wr, which read zero:
 * multiport and emergency writes are not offered. */
static void vcon_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vcon *vc = virtio_pci_priv(vp);
	uint8_t cfg[VCON_CFG_SIZE] = {0};

	pthread_mutex_lock(&vc->in_lock);
	cfg[0] = (uint8_t)vc->cols;
	cfg[1] = (uint8_t)(vc->cols >> 8);
	cfg[2] = (uint8_t)vc->rows;
	cfg[3] = (uint8_t)(vc->rows >> 8);
	pthread_mutex_unlock(&vc->in_lock);
	memcpy(data, cfg + off, len); /* off + len <= VCON_CFG_SIZE */
}

static void vcon_reset(struct virtio_pci *vp)
{
	struct vcon *vc = virtio_pci_priv(vp);

	pthread_mutex_lock(&vc->in_lock);
	vc->in_head = vc->in_count = 0;
	vc->tx_used = false;
	pthread_mutex_unlock(&vc->in_lock);
}

/* Snapshots: typed bytes the guest has not taken yet, whether the port is
 * in use, and the size in the configuration space go with the machine.
 * Version 1 (before the size) reads as a size never told: its guest did
 * not negotiate VIRTIO_CONSOLE_F_SIZE, which was not offered then. */
#define VCON_STATE_VERSION 2

struct vcon_state {
	uint32_t version;
	uint16_t in_head, in_count;
	uint8_t tx_used;
	uint8_t pad[3];
	uint16_t rows, cols; /* version 2; zero in version 1 (it was padding) */
	uint8_t in[VCON_IN_SIZE];
};

static void vcon_save(struct virtio_pci *vp, void *state)
{
	struct vcon *vc = virtio_pci_priv(vp);
	struct vcon_state *s = state;

	memset(s, 0, sizeof(*s));
	s->version = VCON_STATE_VERSION;
	pthread_mutex_lock(&vc->in_lock);
	s->in_head = (uint16_t)vc->in_head;
	s->in_count = (uint16_t)vc->in_count;
	s->tx_used = vc->tx_used;
	s->rows = vc->rows;
	s->cols = vc->cols;
	memcpy(s->in, vc->in, sizeof(s->in));
	pthread_mutex_unlock(&vc->in_lock);
}

static int vcon_check(struct virtio_pci *vp, const void *state, struct tv_err *err)
{
	struct vcon_state s;

	(void)vp;
	memcpy(&s, state, sizeof(s));
	if (s.version != 1 && s.version != VCON_STATE_VERSION)
		return tv_errf(err, "console state version %u, expected 1 to %u", s.version,
			       VCON_STATE_VERSION);
	if (s.version == 1 && (s.rows != 0 || s.cols != 0))
		return tv_errf(err, "console state version 1 with a size (%ux%u): version 1 "
				    "had none",
			       s.rows, s.cols);
	if ((s.rows == 0) != (s.cols == 0))
		return tv_errf(err, "console size %u rows, %u columns: both or neither must be 0",
			       s.rows, s.cols);
	if (s.in_head >= VCON_IN_SIZE || s.in_count > VCON_IN_SIZE || s.tx_used > 1)
		return tv_errf(err, "typed input queue out of range (head %u, count %u)", s.in_head,
			       s.in_count);
	return 0;
}

static void vcon_restore(struct virtio_pci *vp, const void *state)
{
	struct vcon *vc = virtio_pci_priv(vp);
	struct vcon_state s;

	memcpy(&s, state, sizeof(s));
	pthread_mutex_lock(&vc->in_lock);
	vc->in_head = s.in_head;
	vc->in_count = s.in_count;
	vc->tx_used = s.tx_used != 0;
	vc->rows = s.rows;
	vc->cols = s.cols;
	memcpy(vc->in, s.in, sizeof(vc->in));
	pthread_mutex_unlock(&vc->in_lock);
}

static void vcon_destroy(struct virtio_pci *vp)
{
	struct vcon *vc = virtio_pci_priv(vp);

	console_attach_input(virtio_pci_vm(vp), CONSOLE_HVC, NULL, NULL);
	console_attach_size(virtio_pci_vm(vp), CONSOLE_HVC, NULL, NULL);
	pthread_mutex_destroy(&vc->in_lock);
	free(vc);
}

int virtio_console_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct vcon *vc = xcalloc(1, sizeof(*vc));
	struct virtio_dev_info info = {
	    .name = "virtio-console",
	    .device_id = VIRTIO_ID_CONSOLE,
	    .class_code = 0x078000,
	    .features = 1ull << VIRTIO_CONSOLE_F_SIZE,
	    .nqueues = 2,
	    .queue_size = 128,
	    .cfg_size = VCON_CFG_SIZE,
	    .cfg_read = vcon_cfg_read,
	    .queue_notify = vcon_queue_notify,
	    .reset = vcon_reset,
	    .destroy = vcon_destroy,
	    .state_size = sizeof(struct vcon_state),
	    .save = vcon_save,
	    .check = vcon_check,
	    .restore = vcon_restore,
	};

	(void)cfg;
	pthread_mutex_init(&vc->in_lock, NULL);
	if (virtio_pci_create(vm, &info, vc, &vc->vp, err) != 0)
		return -1;
	console_attach_input(vm, CONSOLE_HVC, vcon_port_input, vc);
	console_attach_size(vm, CONSOLE_HVC, vcon_resize, vc);
	return 0;
}
