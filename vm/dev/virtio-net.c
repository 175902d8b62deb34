/* virtio-net (virtio spec 5.1): one receive and one transmit queue, the MAC
 * and link status in configuration space, mergeable receive buffers, and
 * checksum offload from the guest (the device completes the checksum, since
 * a backend such as the user network wants whole frames). No segmentation
 * offload is offered, so every frame is at most the MTU.
 *
 * Each NIC has one thread that polls both queue notifiers and the backend's
 * descriptors (vm/net/net.h): frames from the guest go to the backend from
 * there, frames for the guest are copied into its receive buffers from
 * there. When the guest has posted no receive buffer the backend is told so
 * and stops reading until the guest's next receive notify: no busy loop. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vm/dev/virtio-net.h"
#include "vm/dev/virtio-pci.h"
#include "common/util.h"
#include "vm/vm.h"

#define VNET_RX		  0
#define VNET_TX		  1
#define VNET_QUEUE_SIZE	  256
#define VNET_CFG_SIZE	  10 /* mac, status, max_virtqueue_pairs */
#define VNET_POLL_MAX	  256 /* backend descriptors per poll */
#define VNET_TX_BURST	  256 /* frames sent before looking at the rest */
#define VNET_FEATURES                                                                              \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_MAC) |                                \
	 (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_STATUS))

struct vnet {
	struct virtio_pci *vp;
	unsigned index;
	uint8_t mac[6];
	struct net_backend *be;
	int stop_fd;
	pthread_t thread;
	bool thread_started;
	uint64_t features; /* negotiated, read on the thread before a queue is taken */
	/* Buffers given back this round and not yet signalled: the interrupt
	 * goes once at the round's end (vnet_signal), not once a frame. */
	bool used[2];
	bool tx_held; /* vnet_tx stopped for a busy backend (tx_busy) */
	struct vnet_stats st;
	struct vq_req tx_req, rx_req;
	uint16_t heads[VQ_MAX_SIZE];
	uint32_t lens[VQ_MAX_SIZE];
	uint8_t tx_buf[VIRTIO_NET_HDR_LEN + NET_FRAME_MAX];
};

/* ---- the NIC's thread ---- */

/* A frame from the backend (on the NIC's thread). False: no buffer yet,
 * the backend holds off until net_backend_rx_ready. */
static bool vnet_rx(void *ctx, const void *frame, size_t len)
{
	struct vnet *vn = ctx;
	bool mrg = vn->features >> VIRTIO_NET_F_MRG_RXBUF & 1;
	struct vq *vq = virtio_pci_queue_lock(vn->vp, VNET_RX);
	int rc;

	if (vq == NULL) {
		vn->st.rx_dropped++; /* the driver is not up: the link drops it */
		return true;
	}
	rc = vnet_rx_put(vq, &vn->rx_req, mrg, frame, len, vn->heads, vn->lens, &vn->st);
	if (rc < 0)
		virtio_pci_queue_done(vn->vp, VNET_RX, vq); /* broken: said at once */
	else if (rc > 0)
		vn->used[VNET_RX] = true;
	virtio_pci_queue_unlock(vn->vp, VNET_RX);
	return rc != 0;
}

/* The end of a round: one interrupt (where the driver wants one) for all the
 * buffers each queue gave back in it. A burst of frames from the backend
 * (a window of TCP data, the acknowledgements of a burst the guest sent)
 * then costs the guest one interrupt, and its driver finds them all at
 * once, instead of taking the first alone and being interrupted again. */
static void vnet_signal(struct vnet *vn)
{
	for (unsigned q = 0; q < 2; q++) {
		struct vq *vq;

		if (!vn->used[q])
			continue;
		/* Quiesced (a snapshot, a pause) or reset meanwhile: kept for the
		 * round after the kick that ends the quiesce; after a reset the
		 * interrupt is merely spurious. */
		vq = virtio_pci_queue_lock(vn->vp, q);
		if (vq == NULL)
			continue;
		vn->used[q] = false;
		virtio_pci_queue_done(vn->vp, q, vq);
		virtio_pci_queue_unlock(vn->vp, q);
	}
}

/* Frames from the guest, one at a time: the queue is not held while the
 * backend sends (it may hand a reply straight to vnet_rx). */
static void vnet_tx(struct vnet *vn)
{
	bool csum = vn->features >> VIRTIO_NET_F_CSUM & 1;
	const struct net_backend_ops *ops = vn->be->ops;

	for (unsigned sent = 0; sent < VNET_TX_BURST; sent++) {
		struct vq *vq;
		size_t len = 0;
		int rc;

		/* The backend holds a frame: the rest wait in the ring. */
		vn->tx_held = ops->tx_busy != NULL && ops->tx_busy(vn->be);
		if (vn->tx_held)
			return;
		vq = virtio_pci_queue_lock(vn->vp, VNET_TX);
		if (vq == NULL)
			return;
		rc = vnet_tx_pop(vq, &vn->tx_req, vn->tx_buf, sizeof(vn->tx_buf), csum, &len,
				 &vn->st);
		if (rc < 0)
			virtio_pci_queue_done(vn->vp, VNET_TX, vq);
		else if (rc > 0)
			vn->used[VNET_TX] = true;
		virtio_pci_queue_unlock(vn->vp, VNET_TX);
		if (rc <= 0)
			return;
		if (rc == 1) {
			struct iovec iov = {vn->tx_buf + VIRTIO_NET_HDR_LEN, len};

			if (vn->be->ops->send(vn->be, &iov, 1) != 0)
				vn->be->tx_dropped++;
		}
	}
	virtio_pci_kick(vn->vp, VNET_TX); /* more next round, after the backend's turn */
}

static void drain(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wake-up */
	}
}

static void *vnet_thread(void *arg)
{
	struct vnet *vn = arg;
	struct pollfd pfd[3 + VNET_POLL_MAX];
	const struct net_backend_ops *ops = vn->be->ops;

	for (;;) {
		int timeout = -1, n;

		pfd[0] = (struct pollfd){.fd = vn->stop_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = virtio_pci_queue_fd(vn->vp, VNET_RX), .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = virtio_pci_queue_fd(vn->vp, VNET_TX), .events = POLLIN};
		n = ops->pollfds(vn->be, pfd + 3, VNET_POLL_MAX, &timeout);
		if (n < 0)
			n = 0;
		if (poll(pfd, 3 + (nfds_t)n, timeout) < 0) {
			if (errno != EINTR)
				break;
			for (int i = 0; i < 3 + n; i++)
				pfd[i].revents = 0;
		}
		if (pfd[0].revents != 0)
			break;
		vn->features = virtio_pci_features(vn->vp);
		if (pfd[1].revents != 0) {
			drain(pfd[1].fd);
			if (ops->rx_ready != NULL)
				ops->rx_ready(vn->be);
		}
		if (pfd[2].revents != 0) {
			drain(pfd[2].fd);
			vnet_tx(vn);
		}
		ops->ready(vn->be, pfd + 3, n);
		if (vn->tx_held && !ops->tx_busy(vn->be))
			vnet_tx(vn); /* the held frame went: the ring's turn */
		vnet_signal(vn);
	}
	return NULL;
}

/* ---- the device ---- */

static void vnet_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vnet *vn = virtio_pci_priv(vp);
	uint8_t cfg[VNET_CFG_SIZE] = {0};

	memcpy(cfg, vn->mac, 6);
	cfg[6] = VIRTIO_NET_S_LINK_UP;
	cfg[8] = 1; /* max_virtqueue_pairs (only read with VIRTIO_NET_F_MQ) */
	memcpy(data, cfg + off, len);
}

static void vnet_stop(struct virtio_pci *vp)
{
	struct vnet *vn = virtio_pci_priv(vp);
	uint64_t one = 1;

	if (!vn->thread_started)
		return;
	if (write(vn->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail on a fresh eventfd */
	}
	pthread_join(vn->thread, NULL);
	vn->thread_started = false;
}

static void vnet_destroy(struct virtio_pci *vp)
{
	struct vnet *vn = virtio_pci_priv(vp);

	vnet_stop(vp);
	if (vn->be != NULL)
		vn->be->ops->free(vn->be);
	if (vn->stop_fd >= 0)
		close(vn->stop_fd);
	free(vn);
}

/* Snapshots: the rings are the transport's; the NIC adds its link state.
 * Frames in flight in the backend are not part of it: the network is
 * allowed to lose them, and TCP resends. */
#define VNET_STATE_VERSION 1

struct vnet_state {
	uint32_t version;
	uint16_t status;
	uint8_t pad[2];
};

static void vnet_save(struct virtio_pci *vp, void *state)
{
	struct vnet_state *s = state;

	(void)vp;
	memset(s, 0, sizeof(*s));
	s->version = VNET_STATE_VERSION;
	s->status = VIRTIO_NET_S_LINK_UP;
}

static int vnet_check(struct virtio_pci *vp, const void *state, struct tv_err *err)
{
	struct vnet_state s;

	(void)vp;
	memcpy(&s, state, sizeof(s));
	if (s.version != VNET_STATE_VERSION)
		return tv_errf(err, "network state version %u, expected %u", s.version,
			       VNET_STATE_VERSION);
	if (s.status & ~VIRTIO_NET_S_LINK_UP)
		return tv_errf(err, "network link status 0x%x not one the device sets", s.status);
	return 0;
}

static void vnet_restore(struct virtio_pci *vp, const void *state)
{
	(void)vp;
	(void)state; /* the link is always up; the transport kicks both queues */
}

static int vnet_start_thread(struct vnet *vn, struct tv_err *err)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	sigdelset(&all, SIGSYS); /* the sandbox's report of a forbidden call */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&vn->thread, NULL, vnet_thread, vn);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return tv_errf(err, "virtio-net%u: cannot start its thread", vn->index);
	vn->thread_started = true;
	return 0;
}

static int vnet_create_one(struct vm *vm, const struct vm_nic *nic, unsigned index,
			   struct tv_err *err)
{
	struct vnet *vn = xcalloc(1, sizeof(*vn));
	char name[32];
	struct virtio_dev_info info = {
	    .name = name,
	    .device_id = VIRTIO_ID_NET,
	    .class_code = 0x020000,
	    .features = VNET_FEATURES,
	    .nqueues = 2,
	    .queue_size = VNET_QUEUE_SIZE,
	    .cfg_size = VNET_CFG_SIZE,
	    .cfg_read = vnet_cfg_read,
	    .destroy = vnet_destroy,
	    .state_size = sizeof(struct vnet_state),
	    .save = vnet_save,
	    .check = vnet_check,
	    .restore = vnet_restore,
	    .own_thread = true,
	    .stop = vnet_stop,
	};

	snprintf(name, sizeof(name), "virtio-net%u", index);
	vn->index = index;
	memcpy(vn->mac, nic->mac, 6);
	vn->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (net_backend_open(nic, &vn->be, err) != 0) {
		if (vn->stop_fd >= 0)
			close(vn->stop_fd);
		free(vn);
		return tv_err_prefix(err, "network %u: ", index);
	}
	vn->be->rx = vnet_rx;
	vn->be->rx_ctx = vn;
	/* From here the VM owns vn (vnet_destroy). */
	if (virtio_pci_create(vm, &info, vn, &vn->vp, err) != 0)
		return -1;
	if (vn->stop_fd < 0)
		return tv_errno(err, "%s: eventfd", name);
	return vnet_start_thread(vn, err);
}

int virtio_net_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	if (cfg->nnics > NET_NICS_MAX)
		return tv_errf(err, "%zu network interfaces, at most %d", cfg->nnics, NET_NICS_MAX);
	for (size_t i = 0; i < cfg->nnics; i++)
		if (vnet_create_one(vm, &cfg->nics[i], (unsigned)i, err) != 0)
			return -1;
	return 0;
}

void virtio_net_info(struct vm *vm, unsigned n, char *buf, size_t len)
{
	char name[32];
	struct virtio_pci *vp;
	struct vnet *vn;

	snprintf(name, sizeof(name), "virtio-net%u", n);
	vp = virtio_pci_find(vm, name);
	if (len > 0)
		buf[0] = '\0';
	if (vp == NULL)
		return;
	vn = virtio_pci_priv(vp);
	if (vn->be->ops->info != NULL)
		vn->be->ops->info(vn->be, buf, len);
}
