/* virtio 1.x PCI transport: common configuration, ISR, notifications
 * through ioeventfds, MSI-X or INTx interrupts, device reset. Locking: the
 * common configuration under vp->lock; each queue's ring state under its
 * own lock, taken after vp->lock when both are needed. The queue threads
 * take only their queue's lock, so a vCPU programming the device never
 * waits behind another queue's disk I/O. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vm/dev/virtio-pci.h"
#include "common/util.h"
#include "vm/vm.h"

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4
#define VIRTIO_PCI_CAP_PCI_CFG 5
#define PCI_CFG_CAP_LEN	      20 /* struct virtio_pci_cfg_cap */
#define COMMON_SIZE	      0x38
#define ISR_QUEUE	      1
#define ISR_CONFIG	      2
/* How long a queue thread keeps polling its ring after work (ns); 0: not at
 * all. Off by default: on a 2-CPU host the polling thread takes the CPU the
 * vCPU needs (measured slower there); build with -DVIRTIO_POLL_NS=32000 to
 * compare on bigger hosts. */
#ifndef VIRTIO_POLL_NS
#define VIRTIO_POLL_NS 0
#endif

/* Features every device offers: the ring formats we implement. */
#define TRANSPORT_FEATURES                                                                         \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |                    \
	 (1ull << VIRTIO_F_RING_EVENT_IDX))

struct virtio_queue {
	struct virtio_pci *vp;
	unsigned idx;
	pthread_mutex_t lock; /* vq */
	struct vq vq;
	/* Programming, under vp->lock. */
	uint16_t size, msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	int kick_fd;
	pthread_t thread;
	bool thread_started;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev_info info;
	void *priv;
	pthread_mutex_t lock;
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint8_t status; /* atomic loads outside the lock */
	uint8_t config_gen; /* atomic */
	uint16_t msix_config; /* atomic loads outside the lock */
	uint16_t queue_select;
	uint8_t isr;	  /* atomic */
	bool needs_reset; /* atomic */
	bool quiesced;	  /* under every queue lock: threads hold still */
	int stop_fd;
	struct virtio_queue *q;
	uint8_t cfg_cap; /* the VIRTIO_PCI_CAP_PCI_CFG capability */
	struct dev_ops ops; /* vp_ops with the model's state size added */
};

static uint64_t device_features(const struct virtio_pci *vp)
{
	return vp->info.features | TRANSPORT_FEATURES;
}

void *virtio_pci_priv(struct virtio_pci *vp)
{
	return vp->priv;
}

uint64_t virtio_pci_features(struct virtio_pci *vp)
{
	uint64_t f = 0;

	pthread_mutex_lock(&vp->lock);
	if (vp->status & VIRTIO_STATUS_FEATURES_OK)
		f = vp->driver_features;
	pthread_mutex_unlock(&vp->lock);
	return f;
}

struct vm *virtio_pci_vm(struct virtio_pci *vp)
{
	return vp->pci.dev.vm;
}

/* ---- interrupts ---- */

static void vp_interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (pci_msix_notify(&vp->pci, vector))
		return;
	__atomic_or_fetch(&vp->isr, isr_bit, __ATOMIC_SEQ_CST);
	pci_set_irq(&vp->pci, true);
}

void virtio_pci_set_broken(struct virtio_pci *vp, const char *why)
{
	if (__atomic_exchange_n(&vp->needs_reset, true, __ATOMIC_SEQ_CST))
		return;
	if (vm_config(virtio_pci_vm(vp))->verbose)
		fprintf(stderr, "termvisor: %s: device needs reset: %s\n", vp->pci.dev.name,
			why != NULL ? why : "bad programming");
	if (__atomic_load_n(&vp->status, __ATOMIC_ACQUIRE) & VIRTIO_STATUS_DRIVER_OK)
		vp_interrupt(vp, __atomic_load_n(&vp->msix_config, __ATOMIC_RELAXED), ISR_CONFIG);
}

/* Atomics only: a queue thread may call this with its queue's lock held,
 * and vp->lock comes before the queue locks. */
void virtio_pci_config_changed(struct virtio_pci *vp)
{
	__atomic_add_fetch(&vp->config_gen, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&vp->status, __ATOMIC_ACQUIRE) & VIRTIO_STATUS_DRIVER_OK)
		vp_interrupt(vp, __atomic_load_n(&vp->msix_config, __ATOMIC_RELAXED), ISR_CONFIG);
}

void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q, struct vq *vq)
{
	if (vq->broken) {
		virtio_pci_set_broken(vp, vq->why);
		return;
	}
	if (vq_should_notify(vq))
		vp_interrupt(vp, __atomic_load_n(&vp->q[q].msix_vector, __ATOMIC_RELAXED),
			     ISR_QUEUE);
}

void virtio_pci_kick(struct virtio_pci *vp, unsigned q)
{
	uint64_t one = 1;

	if (q < vp->info.nqueues && write(vp->q[q].kick_fd, &one, sizeof(one)) < 0) {
		/* The counter is full: the thread has plenty to wake up for. */
	}
}

bool virtio_pci_queue_ready(struct virtio_pci *vp, unsigned q)
{
	bool ready;

	if (q >= vp->info.nqueues)
		return false;
	pthread_mutex_lock(&vp->lock);
	ready = (vp->status & VIRTIO_STATUS_DRIVER_OK) && !vp->needs_reset && vp->q[q].enabled;
	pthread_mutex_unlock(&vp->lock);
	return ready;
}

/* ---- queue threads ---- */

/* Guest memory is touched only here: on the queue's thread, while the
 * driver is up and the function may master the bus. */
static bool queue_live(struct virtio_pci *vp, struct virtio_queue *q)
{
	return q->vq.ready && !q->vq.broken && !vp->quiesced && pci_bus_master(&vp->pci) &&
	       (__atomic_load_n(&vp->status, __ATOMIC_ACQUIRE) & VIRTIO_STATUS_DRIVER_OK);
}

/* Handles the queue, then keeps watching the ring for a short while with
 * kicks turned off: a driver that keeps the queue busy then adds requests
 * without a notify exit each time, and a new request is seen at once
 * rather than after a wake-up. */
static void queue_run(struct virtio_pci *vp, struct virtio_queue *q)
{
	uint64_t until;
	bool more;

	pthread_mutex_lock(&q->lock);
	if (!queue_live(vp, q)) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	do {
		vp->info.queue_notify(vp, q->idx, &q->vq);
		if (!queue_live(vp, q) || VIRTIO_POLL_NS == 0)
			break;
		vq_disable_notify(&q->vq);
		until = monotonic_ns() + VIRTIO_POLL_NS;
		more = false;
		while (!more && monotonic_ns() < until) {
			pthread_mutex_unlock(&q->lock);
			__builtin_ia32_pause();
			pthread_mutex_lock(&q->lock);
			more = vq_has_work(&q->vq) && queue_live(vp, q);
		}
		if (!more && queue_live(vp, q))
			more = vq_enable_notify(&q->vq);
	} while (more && queue_live(vp, q));
	pthread_mutex_unlock(&q->lock);
}

static void *queue_thread(void *arg)
{
	struct virtio_queue *q = arg;
	struct virtio_pci *vp = q->vp;
	struct pollfd pfd[2] = {{.fd = q->kick_fd, .events = POLLIN},
				{.fd = vp->stop_fd, .events = POLLIN}};
	uint64_t n;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if (read(q->kick_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
			break;
		queue_run(vp, q);
	}
	return NULL;
}

int virtio_pci_queue_fd(struct virtio_pci *vp, unsigned q)
{
	return q < vp->info.nqueues ? vp->q[q].kick_fd : -1;
}

struct vq *virtio_pci_queue_lock(struct virtio_pci *vp, unsigned qi)
{
	struct virtio_queue *q;

	if (qi >= vp->info.nqueues)
		return NULL;
	q = &vp->q[qi];
	pthread_mutex_lock(&q->lock);
	if (!queue_live(vp, q)) {
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	return &q->vq;
}

void virtio_pci_queue_unlock(struct virtio_pci *vp, unsigned q)
{
	pthread_mutex_unlock(&vp->q[q].lock);
}

/* ---- reset ---- */

/* Called with vp->lock held. */
static void vp_reset_locked(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->info.nqueues; i++) {
		struct virtio_queue *q = &vp->q[i];

		pthread_mutex_lock(&q->lock);
		vq_reset(&q->vq);
		pthread_mutex_unlock(&q->lock);
		q->size = vp->info.queue_size;
		__atomic_store_n(&q->msix_vector, VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELAXED);
		q->enabled = false;
		q->desc = q->driver = q->device = 0;
	}
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = 0;
	vp->queue_select = 0;
	__atomic_store_n(&vp->msix_config, VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELAXED);
	__atomic_store_n(&vp->status, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&vp->needs_reset, false, __ATOMIC_RELEASE);
	__atomic_store_n(&vp->isr, 0, __ATOMIC_RELEASE);
	pci_set_irq(&vp->pci, false);
	if (vp->info.reset != NULL)
		vp->info.reset(vp);
}

/* ---- common configuration ---- */

static struct virtio_queue *selected(struct virtio_pci *vp)
{
	return vp->queue_select < vp->info.nqueues ? &vp->q[vp->queue_select] : NULL;
}

static void put(uint8_t *b, unsigned off, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

static void common_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	uint8_t b[COMMON_SIZE] = {0};
	struct virtio_queue *q;
	uint64_t f = device_features(vp);

	if (off >= COMMON_SIZE || len > COMMON_SIZE - off)
		return;
	pthread_mutex_lock(&vp->lock);
	q = selected(vp);
	put(b, 0x00, vp->dfselect, 4);
	put(b, 0x04, vp->dfselect < 2 ? (uint32_t)(f >> (32 * vp->dfselect)) : 0, 4);
	put(b, 0x08, vp->gfselect, 4);
	put(b, 0x0C, vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0,
	    4);
	put(b, 0x10, vp->msix_config, 2);
	put(b, 0x12, vp->info.nqueues, 2);
	put(b, 0x14, vp->status | (vp->needs_reset ? VIRTIO_STATUS_NEEDS_RESET : 0), 1);
	put(b, 0x15, __atomic_load_n(&vp->config_gen, __ATOMIC_RELAXED), 1);
	put(b, 0x16, vp->queue_select, 2);
	if (q != NULL) {
		put(b, 0x18, q->size, 2);
		put(b, 0x1A, q->msix_vector, 2);
		put(b, 0x1C, q->enabled, 2);
		put(b, 0x1E, q->idx, 2); /* queue_notify_off */
		put(b, 0x20, q->desc, 8);
		put(b, 0x28, q->driver, 8);
		put(b, 0x30, q->device, 8);
	}
	pthread_mutex_unlock(&vp->lock);
	memcpy(data, b + off, len);
}

static uint16_t vector_checked(struct virtio_pci *vp, uint64_t v)
{
	return v < vp->pci.msix_nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

/* Called with vp->lock held: the driver enabled the selected queue. */
static void queue_enable(struct virtio_pci *vp, struct virtio_queue *q)
{
	uint64_t f = vp->driver_features;
	int rc;

	if (q->enabled)
		return;
	if (q->size > vp->info.queue_size) {
		virtio_pci_set_broken(vp, "queue size larger than offered");
		return;
	}
	pthread_mutex_lock(&q->lock);
	rc = vq_start(&q->vq, vm_mem(virtio_pci_vm(vp)), q->size, q->desc, q->driver, q->device,
		      f >> VIRTIO_F_RING_EVENT_IDX & 1, f >> VIRTIO_F_RING_INDIRECT_DESC & 1);
	q->vq.go = &vp->pci.master; /* requests only while Bus Master Enable is set */
	pthread_mutex_unlock(&q->lock);
	if (rc != 0) {
		virtio_pci_set_broken(vp,
				      "queue rings outside guest RAM, misaligned or sized badly");
		return;
	}
	q->enabled = true;
}

static void status_write(struct virtio_pci *vp, uint8_t v)
{
	uint8_t old = vp->status;

	if (v == 0) {
		vp_reset_locked(vp);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = vp->driver_features;

		/* Refuse what we never offered, and legacy drivers. */
		if ((f & ~device_features(vp)) != 0 || !(f >> VIRTIO_F_VERSION_1 & 1))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	__atomic_store_n(&vp->status, v, __ATOMIC_RELEASE);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		for (unsigned i = 0; i < vp->info.nqueues; i++)
			virtio_pci_kick(vp, i);
}

static void set64(uint64_t *field, uint64_t off, uint64_t v, unsigned len)
{
	if (len == 8 && off == 0)
		*field = v;
	else if (len == 4 && off == 0)
		*field = (*field & 0xFFFFFFFF00000000ull) | (uint32_t)v;
	else if (len == 4 && off == 4)
		*field = (*field & 0xFFFFFFFFull) | v << 32;
}

static void common_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	uint64_t v = dev_data_get(data, len);
	struct virtio_queue *q;
	bool features_open;

	pthread_mutex_lock(&vp->lock);
	q = selected(vp);
	features_open = !(vp->status & VIRTIO_STATUS_FEATURES_OK);
	switch (off) {
	case 0x00:
		vp->dfselect = (uint32_t)v;
		break;
	case 0x08:
		vp->gfselect = (uint32_t)v;
		break;
	case 0x0C:
		if (features_open && vp->gfselect < 2 && len == 4) {
			unsigned sh = 32 * vp->gfselect;
			vp->driver_features &= ~(0xFFFFFFFFull << sh);
			vp->driver_features |= (v & 0xFFFFFFFFull) << sh;
		}
		break;
	case 0x10:
		__atomic_store_n(&vp->msix_config, vector_checked(vp, v), __ATOMIC_RELAXED);
		break;
	case 0x14:
		status_write(vp, (uint8_t)v);
		break;
	case 0x16:
		vp->queue_select = (uint16_t)v;
		break;
	case 0x18:
		if (q != NULL && !q->enabled)
			q->size = (uint16_t)v;
		break;
	case 0x1A:
		if (q != NULL)
			__atomic_store_n(&q->msix_vector, vector_checked(vp, v), __ATOMIC_RELAXED);
		break;
	case 0x1C:
		if (q != NULL && (v & 1))
			queue_enable(vp, q);
		break;
	case 0x20:
	case 0x24:
		if (q != NULL && !q->enabled)
			set64(&q->desc, off - 0x20, v, len);
		break;
	case 0x28:
	case 0x2C:
		if (q != NULL && !q->enabled)
			set64(&q->driver, off - 0x28, v, len);
		break;
	case 0x30:
	case 0x34:
		if (q != NULL && !q->enabled)
			set64(&q->device, off - 0x30, v, len);
		break;
	default:
		break; /* read-only or not a field start: ignored */
	}
	pthread_mutex_unlock(&vp->lock);
}

/* ---- BAR 0 ---- */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	memset(data, 0, len);
	if (off < VIRTIO_BAR_ISR) {
		common_read(vp, off - VIRTIO_BAR_COMMON, data, len);
	} else if (off == VIRTIO_BAR_ISR) {
		/* Reading the ISR acknowledges it and lowers INTx. */
		uint8_t isr = __atomic_exchange_n(&vp->isr, 0, __ATOMIC_SEQ_CST);
		dev_data_put(data, len, isr);
		pci_set_irq(&vp->pci, false);
	} else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_NOTIFY) {
		uint64_t o = off - VIRTIO_BAR_DEVICE;
		if (o < vp->info.cfg_size && len <= vp->info.cfg_size - o && vp->info.cfg_read)
			vp->info.cfg_read(vp, (unsigned)o, data, len);
	}
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	if (off < VIRTIO_BAR_ISR) {
		common_write(vp, off - VIRTIO_BAR_COMMON, data, len);
	} else if (off >= VIRTIO_BAR_DEVICE && off < VIRTIO_BAR_NOTIFY) {
		uint64_t o = off - VIRTIO_BAR_DEVICE;
		if (o < vp->info.cfg_size && len <= vp->info.cfg_size - o && vp->info.cfg_write)
			vp->info.cfg_write(vp, (unsigned)o, data, len);
	} else if (off >= VIRTIO_BAR_NOTIFY &&
		   off < VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT * (uint64_t)vp->info.nqueues) {
		/* A notify that missed the ioeventfd (another access size). */
		virtio_pci_kick(vp, (unsigned)((off - VIRTIO_BAR_NOTIFY) / VIRTIO_NOTIFY_MULT));
	}
}

static const struct dev_io_ops vp_bar_io = {.read = bar_read, .write = bar_write};

static void lock_queues(struct virtio_pci *vp);
static void unlock_queues(struct virtio_pci *vp);

/* Bus Master Enable cleared: the queues stop taking requests, and the write
 * that cleared it returns only once the requests a queue thread is handling
 * are done, so nothing touches guest memory afterwards (MSI waits in the
 * PBA, pci.c). Set again: the queues look at their rings. */
static void vp_master_changed(struct pci_dev *p, bool on)
{
	struct virtio_pci *vp = (struct virtio_pci *)p;

	if (on) {
		for (unsigned i = 0; i < vp->info.nqueues; i++)
			virtio_pci_kick(vp, i);
		return;
	}
	lock_queues(vp);
	unlock_queues(vp);
}

/* The notify addresses follow BAR 0: KVM signals the queue's eventfd on a
 * 16-bit write there without leaving the kernel. */
static void vp_bar_moved(struct pci_dev *p, int bar, uint64_t addr, bool mapped)
{
	struct virtio_pci *vp = (struct virtio_pci *)p;

	if (bar != 0)
		return;
	for (unsigned i = 0; i < vp->info.nqueues; i++)
		vm_ioeventfd(p->dev.vm, vp->q[i].kick_fd,
			     addr + VIRTIO_BAR_NOTIFY + VIRTIO_NOTIFY_MULT * (uint64_t)i, 2, false,
			     false, 0, mapped, NULL);
}

/* ---- device ---- */

static void vp_dev_reset(struct dev *d)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;

	pthread_mutex_lock(&vp->lock);
	vp_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	pci_dev_reset(&vp->pci);
}

static void vp_destroy(struct dev *d)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	uint64_t one = 1;

	if (vp->stop_fd >= 0 && write(vp->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail on a fresh eventfd */
	}
	if (vp->info.stop != NULL)
		vp->info.stop(vp);
	for (unsigned i = 0; i < vp->info.nqueues; i++) {
		if (vp->q[i].thread_started)
			pthread_join(vp->q[i].thread, NULL);
		if (vp->q[i].kick_fd >= 0)
			close(vp->q[i].kick_fd);
		pthread_mutex_destroy(&vp->q[i].lock);
	}
	if (vp->stop_fd >= 0)
		close(vp->stop_fd);
	if (vp->info.destroy != NULL)
		vp->info.destroy(vp);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->pci.lock);
	free((char *)vp->pci.dev.name);
	free(vp->q);
	free(vp);
}

/* ---- snapshots ---- */

#define VP_STATE_VERSION 1
#define VP_STATE_QUEUES	 8

struct vp_queue_state {
	uint64_t desc, driver, device;
	uint16_t size, msix_vector, last_avail, used_idx, signalled;
	uint8_t enabled, signalled_valid;
	uint8_t pad[4];
};

struct vp_state {
	uint32_t version, nqueues;
	struct pci_state pci;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t msix_config, queue_select;
	uint8_t status, config_gen, isr, needs_reset;
	struct vp_queue_state q[VP_STATE_QUEUES];
};

static void lock_queues(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->info.nqueues; i++)
		pthread_mutex_lock(&vp->q[i].lock);
}

static void unlock_queues(struct virtio_pci *vp)
{
	for (unsigned i = vp->info.nqueues; i-- > 0;)
		pthread_mutex_unlock(&vp->q[i].lock);
}

/* With the queue locks held no request is half done: each one popped has
 * been pushed, so the rings and our indices agree. */
static void vp_save(struct dev *d, void *state)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	struct vp_state *s = state;

	memset(s, 0, sizeof(*s));
	pci_dev_save(&vp->pci, &s->pci);
	pthread_mutex_lock(&vp->lock);
	lock_queues(vp);
	s->version = VP_STATE_VERSION;
	s->nqueues = vp->info.nqueues;
	s->driver_features = vp->driver_features;
	s->dfselect = vp->dfselect;
	s->gfselect = vp->gfselect;
	s->msix_config = vp->msix_config;
	s->queue_select = vp->queue_select;
	s->status = vp->status;
	s->config_gen = vp->config_gen;
	s->isr = vp->isr;
	s->needs_reset = vp->needs_reset;
	for (unsigned i = 0; i < vp->info.nqueues; i++) {
		struct virtio_queue *q = &vp->q[i];
		struct vp_queue_state *qs = &s->q[i];

		*qs = (struct vp_queue_state){
		    .desc = q->desc,
		    .driver = q->driver,
		    .device = q->device,
		    .size = q->size,
		    .msix_vector = q->msix_vector,
		    .last_avail = q->vq.last_avail,
		    .used_idx = q->vq.used_idx,
		    .signalled = q->vq.signalled,
		    .enabled = q->enabled,
		    .signalled_valid = q->vq.signalled_valid,
		};
	}
	unlock_queues(vp);
	pthread_mutex_unlock(&vp->lock);
	if (vp->info.save != NULL)
		vp->info.save(vp, (uint8_t *)state + sizeof(*s));
}

static int vp_restore_check(struct virtio_pci *vp, const struct vp_state *s, struct tv_err *err)
{
	const char *n = vp->pci.dev.name;

	if (s->version != VP_STATE_VERSION)
		return tv_errf(err, "%s: state version %u, expected %u", n, s->version,
			       VP_STATE_VERSION);
	if (s->nqueues != vp->info.nqueues)
		return tv_errf(err, "%s: state has %u queues, the device %u", n, s->nqueues,
			       vp->info.nqueues);
	/* Before FEATURES_OK the driver may have written anything (the device
	 * refuses it at FEATURES_OK); after it, only what was offered. */
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) && (s->driver_features & ~device_features(vp)) != 0)
		return tv_errf(err, "%s: saved features 0x%llx were never offered", n,
			       (unsigned long long)s->driver_features);
	for (unsigned i = 0; i < s->nqueues; i++) {
		const struct vp_queue_state *qs = &s->q[i];

		if (qs->size > vp->info.queue_size)
			return tv_errf(err, "%s: queue %u: size %u above %u", n, i, qs->size,
				       vp->info.queue_size);
		if ((uint16_t)(qs->last_avail - qs->used_idx) > qs->size)
			return tv_errf(err, "%s: queue %u: indices %u/%u out of step", n, i,
				       qs->last_avail, qs->used_idx);
		if (qs->enabled) {
			/* The rings as restore will map them, against this VM's memory. */
			struct vq probe;
			if (vq_start(&probe, vm_mem(virtio_pci_vm(vp)), qs->size, qs->desc,
				     qs->driver, qs->device, false, false) != 0)
				return tv_errf(err,
					       "%s: queue %u: rings outside guest memory, misaligned "
					       "or sized badly",
					       n, i);
		}
	}
	return 0;
}

static int vp_check(struct dev *d, const void *state, struct tv_err *err)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	struct vp_state s;

	memcpy(&s, state, sizeof(s));
	if (vp_restore_check(vp, &s, err) != 0 || pci_dev_check(&vp->pci, &s.pci, err) != 0)
		return -1;
	if (vp->info.check != NULL &&
	    vp->info.check(vp, (const uint8_t *)state + sizeof(s), err) != 0)
		return tv_err_prefix(err, "%s: ", d->name);
	return 0;
}

static int vp_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	struct vp_state s;
	int rc = 0;

	memcpy(&s, state, sizeof(s));
	if (vp_check(d, state, err) != 0 || pci_dev_restore(&vp->pci, &s.pci, err) != 0)
		return -1;
	pthread_mutex_lock(&vp->lock);
	vp_reset_locked(vp);
	lock_queues(vp);
	vp->driver_features = s.driver_features;
	vp->dfselect = s.dfselect;
	vp->gfselect = s.gfselect;
	vp->msix_config = vector_checked(vp, s.msix_config);
	vp->queue_select = s.queue_select;
	vp->config_gen = s.config_gen;
	vp->isr = s.isr & (ISR_QUEUE | ISR_CONFIG);
	vp->needs_reset = s.needs_reset != 0;
	for (unsigned i = 0; i < vp->info.nqueues && rc == 0; i++) {
		struct virtio_queue *q = &vp->q[i];
		const struct vp_queue_state *qs = &s.q[i];
		uint64_t f = s.driver_features;

		q->desc = qs->desc;
		q->driver = qs->driver;
		q->device = qs->device;
		q->size = qs->size;
		q->msix_vector = vector_checked(vp, qs->msix_vector);
		if (!qs->enabled)
			continue;
		/* The rings are checked against this VM's memory again. */
		if (vq_start(&q->vq, vm_mem(virtio_pci_vm(vp)), q->size, q->desc, q->driver,
			     q->device, f >> VIRTIO_F_RING_EVENT_IDX & 1,
			     f >> VIRTIO_F_RING_INDIRECT_DESC & 1) != 0) {
			rc = tv_errf(err, "%s: queue %u: rings outside guest memory",
				     vp->pci.dev.name, i);
			break;
		}
		q->enabled = true;
		q->vq.go = &vp->pci.master;
		q->vq.last_avail = qs->last_avail;
		q->vq.used_idx = qs->used_idx;
		q->vq.signalled = qs->signalled;
		q->vq.signalled_valid = qs->signalled_valid != 0;
	}
	if (rc == 0)
		__atomic_store_n(&vp->status, s.status, __ATOMIC_RELEASE);
	unlock_queues(vp);
	if (rc != 0)
		vp_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	if (rc == 0 && vp->info.restore != NULL)
		vp->info.restore(vp, (const uint8_t *)state + sizeof(s));
	if (rc == 0 && vp->isr != 0 && !pci_msix_enabled(&vp->pci))
		pci_set_irq(&vp->pci, true);
	/* Requests the driver queued before the snapshot are served now. */
	for (unsigned i = 0; rc == 0 && i < vp->info.nqueues; i++)
		virtio_pci_kick(vp, i);
	return rc;
}

static const struct dev_ops vp_ops = {
    .reset = vp_dev_reset,
    .state_size = sizeof(struct vp_state),
    .save = vp_save,
    .restore = vp_restore,
    .check = vp_check,
    .destroy = vp_destroy,
};

static struct virtio_pci *vp_of(struct dev *d)
{
	return d != NULL && d->ops->save == vp_save ? (struct virtio_pci *)d : NULL;
}

struct virtio_pci *virtio_pci_find(struct vm *vm, const char *name)
{
	return vp_of(dev_find(vm, name));
}

/* Every queue's lock, once its thread is done with the requests in flight;
 * false (no lock taken) when a device holds requests for a full disk
 * (vm_hold): their thread lets go only after a resume. */
static bool lock_queues_settled(struct virtio_pci *vp)
{
	struct vm *vm = virtio_pci_vm(vp);

	for (unsigned i = 0; i < vp->info.nqueues; i++) {
		while (pthread_mutex_trylock(&vp->q[i].lock) != 0) {
			if (vm_hold_reason(vm, NULL, 0)) {
				while (i-- > 0)
					pthread_mutex_unlock(&vp->q[i].lock);
				return false;
			}
			usleep(1000);
		}
	}
	return true;
}

bool virtio_pci_quiesce(struct vm *vm, bool quiesce)
{
	for (struct dev *d = dev_first(vm); d != NULL; d = d->next) {
		struct virtio_pci *vp = vp_of(d);

		if (vp == NULL)
			continue;
		if (!lock_queues_settled(vp)) {
			if (quiesce)
				virtio_pci_quiesce(vm, false); /* the devices done so far */
			if (quiesce)
				return false;
			continue; /* never quiesced: it was holding already */
		}
		vp->quiesced = quiesce;
		unlock_queues(vp);
		if (!quiesce)
			for (unsigned i = 0; i < vp->info.nqueues; i++)
				virtio_pci_kick(vp, i);
	}
	return true;
}

static void add_vcap(struct pci_dev *p, uint8_t type, uint32_t off, uint32_t len, uint8_t cap_len)
{
	uint8_t c = pci_dev_add_cap(p, PCI_CAP_ID_VNDR, cap_len);

	p->cfg[c + 2] = cap_len;
	p->cfg[c + 3] = type;
	p->cfg[c + 4] = 0; /* BAR 0 */
	put(p->cfg, c + 8, off, 4);
	put(p->cfg, c + 12, len, 4);
	if (type == VIRTIO_PCI_CAP_NOTIFY)
		put(p->cfg, c + 16, VIRTIO_NOTIFY_MULT, 4);
}

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* VIRTIO_PCI_CAP_PCI_CFG (virtio 1.2, 4.1.4.9): the driver sets cap.bar,
 * cap.offset and cap.length (1, 2 or 4), then an access to pci_cfg_data is
 * an access of cap.length bytes at cap.offset in that BAR, decoded or not:
 * a write sends the first cap.length bytes of pci_cfg_data, a read stores
 * the bytes read there. A window the driver must not use (another length,
 * an offset not a multiple of it, outside the BAR, no such BAR) does
 * nothing, and reads as zeros. */
static void vp_cfg_window(struct pci_dev *p, bool write)
{
	struct virtio_pci *vp = (struct virtio_pci *)p;
	unsigned c = vp->cfg_cap;
	uint8_t data[4], bar;
	uint32_t off, len;
	bool ok;

	pthread_mutex_lock(&p->lock);
	bar = p->cfg[c + 4];
	off = get32(p->cfg + c + 8);
	len = get32(p->cfg + c + 12);
	memcpy(data, p->cfg + c + 16, 4);
	pthread_mutex_unlock(&p->lock);
	ok = (len == 1 || len == 2 || len == 4) && off % len == 0 && bar < PCI_NUM_BARS &&
	     p->bars[bar].size != 0 && off < p->bars[bar].size && len <= p->bars[bar].size - off;
	if (write) {
		if (ok)
			pci_bar_access(p, bar, off, data, len, true);
		return;
	}
	memset(data, 0, sizeof(data));
	if (ok)
		pci_bar_access(p, bar, off, data, len, false);
	pthread_mutex_lock(&p->lock);
	memcpy(p->cfg + c + 16, data, ok ? len : 4);
	pthread_mutex_unlock(&p->lock);
}

static void add_cfg_window(struct virtio_pci *vp)
{
	struct pci_dev *p = &vp->pci;
	uint8_t c = pci_dev_add_cap(p, PCI_CAP_ID_VNDR, PCI_CFG_CAP_LEN);

	p->cfg[c + 2] = PCI_CFG_CAP_LEN;
	p->cfg[c + 3] = VIRTIO_PCI_CAP_PCI_CFG;
	/* cap.bar, cap.offset, cap.length and pci_cfg_data are the driver's. */
	p->wmask[c + 4] = 0xFF;
	memset(p->wmask + c + 8, 0xFF, 12);
	vp->cfg_cap = c;
	p->win_off = (uint8_t)(c + 16);
	p->win_len = 4;
	p->win_access = vp_cfg_window;
}

static int vp_start_threads(struct virtio_pci *vp, struct tv_err *err)
{
	sigset_t all, old;
	int rc = 0;

	/* Signals belong to the vCPU threads and the main loop, not to these. */
	sigfillset(&all);
	sigdelset(&all, SIGSYS); /* the sandbox's report of a forbidden call */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < vp->info.nqueues && rc == 0; i++) {
		if (pthread_create(&vp->q[i].thread, NULL, queue_thread, &vp->q[i]) != 0)
			rc = tv_errf(err, "%s: cannot start a queue thread", vp->pci.dev.name);
		else
			vp->q[i].thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int virtio_pci_create(struct vm *vm, const struct virtio_dev_info *info, void *priv,
		      struct virtio_pci **out, struct tv_err *err)
{
	struct virtio_pci *vp;
	struct pci_dev *p;

	if (info->nqueues == 0 || info->nqueues > VP_STATE_QUEUES)
		return tv_errf(err, "%s: %u queues (1 to %d)", info->name, info->nqueues,
			       VP_STATE_QUEUES);
	vp = xcalloc(1, sizeof(*vp));
	p = &vp->pci;
	vp->info = *info;
	vp->priv = priv;
	vp->q = xcalloc(info->nqueues, sizeof(*vp->q));
	pthread_mutex_init(&vp->lock, NULL);
	vp->stop_fd = eventfd(0, EFD_CLOEXEC);
	for (unsigned i = 0; i < info->nqueues; i++) {
		vp->q[i].vp = vp;
		vp->q[i].idx = i;
		pthread_mutex_init(&vp->q[i].lock, NULL);
		vp->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	pci_dev_init(p, 0x1AF4, (uint16_t)(0x1040 + info->device_id), info->class_code, 1, 0x1AF4,
		     0x1100);
	pci_dev_add_bar(p, 0, VIRTIO_BAR_SIZE, false, &vp_bar_io, vp);
	add_vcap(p, VIRTIO_PCI_CAP_COMMON, VIRTIO_BAR_COMMON, COMMON_SIZE, 16);
	add_vcap(p, VIRTIO_PCI_CAP_ISR, VIRTIO_BAR_ISR, 1, 16);
	add_vcap(p, VIRTIO_PCI_CAP_NOTIFY, VIRTIO_BAR_NOTIFY, VIRTIO_NOTIFY_MULT * info->nqueues,
		 20);
	if (info->cfg_size > 0)
		add_vcap(p, VIRTIO_PCI_CAP_DEVICE, VIRTIO_BAR_DEVICE, info->cfg_size, 16);
	add_cfg_window(vp);
	pci_dev_add_msix(p, info->nqueues + 1, 0, VIRTIO_BAR_MSIX, VIRTIO_BAR_PBA);
	p->bar_moved = vp_bar_moved;
	p->master_changed = vp_master_changed;
	p->dev.name = xstrdup(info->name);
	vp->ops = vp_ops;
	vp->ops.state_size = sizeof(struct vp_state) + info->state_size;
	p->dev.ops = &vp->ops;
	pthread_mutex_lock(&vp->lock);
	vp_reset_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	/* From here the VM owns vp: its destroy runs even when a step fails. */
	if (pci_dev_add(vm, p, err) != 0)
		return -1;
	if (vp->stop_fd < 0)
		return tv_errno(err, "%s: eventfd", info->name);
	for (unsigned i = 0; i < info->nqueues; i++)
		if (vp->q[i].kick_fd < 0)
			return tv_errno(err, "%s: eventfd", info->name);
	if (!info->own_thread && vp_start_threads(vp, err) != 0)
		return -1;
	if (out != NULL)
		*out = vp;
	return 0;
}
