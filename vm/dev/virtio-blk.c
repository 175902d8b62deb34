/* virtio-blk (virtio spec 5.2) on the block layer: read, write, flush,
 * discard, write-zeroes and get-id, read-only disks, one queue per vCPU (up
 * to VBLK_MAX_QUEUES). Requests run on the queues' own threads and move data
 * straight between the image and guest memory (no bounce buffer).
 *
 * Two ways to move the data (the disk's aio setting): "threads", where each
 * queue's thread and two helpers run a batch of requests with blocking
 * calls into the block layer; and "io_uring", where the queue's thread maps
 * the reads and in-place overwrites of a batch to the image file (holding
 * the image as a read does, so no cluster moves meanwhile), submits them all
 * at once (requests that follow each other in the file as one readv/writev)
 * and reaps them, and hands whatever needs the block layer's own
 * work (allocating writes, flush, discard, compressed or unallocated data)
 * to the threads way.
 *
 * A write the host refuses (a full file system) is held, not failed, when
 * the disk's on_error says pause: the VM pauses with the reason, the queue
 * waits, and the request is done again at each resume until it goes
 * through (vm_hold). */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "vm/block/block.h"
#include "vm/block/map.h"
#include "vm/block/uring.h"
#include "vm/dev/virtio-pci.h"
#include "common/util.h"
#include "vm/vm.h"

#define VBLK_MAX_QUEUES 4
/* Requests taken from a queue at once, and the helper threads that run
 * them alongside the queue's own thread (0: one request at a time). */
#define VBLK_BATCH 16
#ifndef VBLK_HELPERS
#define VBLK_HELPERS 2
#endif
/* aio when the disk does not say: the faster way on bench/virtio-blk.sh. */
#ifndef VBLK_AIO_DEFAULT
#define VBLK_AIO_DEFAULT VM_AIO_IO_URING
#endif
#define VBLK_QUEUE_SIZE		 256
#define VBLK_SECTOR		 512ull
#define VBLK_ID_BYTES		 20
#define VBLK_MAX_DISCARD_SEGS	 32
#define VBLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per segment */

#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_MQ		  12
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_DISCARD_WZ_UNMAP 1 /* the unmap flag of a discard/write-zeroes range */

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VBLK_CFG_SIZE 60

/* vblk_handle: the request waits for the VM to be resumed (vm_hold). */
#define VBLK_HELD (-2)

struct vblk;

/* One request handed to a helper; a batch is done when left reaches 0. */
struct vblk_job {
	struct vblk *vb;
	struct vq_req *r;
	int64_t used;
	int error; /* VBLK_HELD: the host's errno */
	unsigned *left;
	pthread_cond_t *done;
	struct vblk_job *next;
	bool direct; /* io_uring: every byte submitted */
	bool write;  /* io_uring: a write (else a read) */
	bool failed; /* io_uring: a transfer came back short (redone the threads way) */
};

struct vblk_uring;

struct vblk {
	struct blk *blk;
	/* Helpers: a job list under pool_lock. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_work;
	struct vblk_job *jobs;
	bool pool_stop;
	pthread_t helpers[VBLK_HELPERS + 1];
	unsigned nhelpers;
	bool readonly;
	enum vm_disk_on_error on_error;
	char *name; /* the image's file name, for the reason of a pause */
	unsigned nqueues;
	uint64_t sectors;
	char id[VBLK_ID_BYTES];
	uint8_t cfg[VBLK_CFG_SIZE];
	struct vq_req *reqs;	  /* VBLK_BATCH per queue, used on its thread only */
	struct vblk_uring *uring; /* one per queue, or NULL: threads only */
};

struct vblk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct vblk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* Data segments of a request: the readable ones after the header, or the
 * writable ones before the status byte. */
typedef int (*seg_fn)(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err);

static int rw_segments(struct vblk *vb, struct iovec *iov, unsigned n, size_t skip, size_t len,
		       uint64_t off, seg_fn fn)
{
	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t l;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		l = MIN(iov[i].iov_len - skip, len);
		if (fn(vb->blk, (uint8_t *)iov[i].iov_base + skip, l, off, NULL) != 0)
			return -1;
		off += l;
		len -= l;
		skip = 0;
	}
	return 0;
}

static int blk_pwrite_seg(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	return blk_pwrite(b, buf, len, off, err);
}

/* Whether [sector, sector + bytes) lies on the disk, in whole sectors. */
static bool in_range(const struct vblk *vb, uint64_t sector, uint64_t bytes)
{
	if (bytes % VBLK_SECTOR != 0 || sector > vb->sectors)
		return false;
	return bytes / VBLK_SECTOR <= vb->sectors - sector;
}

/* Discard and write-zeroes (virtio 1.2, 5.2.6.2): UNSUPP for a flag we do
 * not know, and for the unmap flag on a discard (it belongs to write-zeroes
 * only, where the device may deallocate); every range is checked before any
 * is carried out, so a refused request changes nothing. */
static uint8_t do_ranges(struct vblk *vb, struct vq_req *r, uint32_t type, bool *host_failed)
{
	uint64_t bytes = r->out_len - sizeof(struct vblk_hdr);
	struct vblk_range rg[VBLK_MAX_DISCARD_SEGS];
	uint64_t nrg;
	uint8_t status = VIRTIO_BLK_S_OK;

	if (vb->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (bytes == 0 || bytes % sizeof(rg[0]) != 0 ||
	    bytes / sizeof(rg[0]) > VBLK_MAX_DISCARD_SEGS)
		return VIRTIO_BLK_S_UNSUPP;
	nrg = bytes / sizeof(rg[0]);
	iov_to_buf(r->iov, r->nout, sizeof(struct vblk_hdr), rg, nrg * sizeof(rg[0]));
	for (uint64_t k = 0; k < nrg; k++) {
		uint32_t flags = le32toh(rg[k].flags);

		if ((flags & ~(uint32_t)VIRTIO_BLK_DISCARD_WZ_UNMAP) != 0 ||
		    (type == VIRTIO_BLK_T_DISCARD && (flags & VIRTIO_BLK_DISCARD_WZ_UNMAP)) ||
		    le32toh(rg[k].num_sectors) > VBLK_MAX_DISCARD_SECTORS)
			return VIRTIO_BLK_S_UNSUPP;
		if (!in_range(vb, le64toh(rg[k].sector),
			      (uint64_t)le32toh(rg[k].num_sectors) * VBLK_SECTOR))
			status = VIRTIO_BLK_S_IOERR;
	}
	if (status != VIRTIO_BLK_S_OK)
		return status;
	for (uint64_t k = 0; k < nrg; k++) {
		uint64_t sector = le64toh(rg[k].sector), n = le32toh(rg[k].num_sectors);
		int rc;

		if (type == VIRTIO_BLK_T_DISCARD)
			rc = blk_discard(vb->blk, sector * VBLK_SECTOR, n * VBLK_SECTOR, NULL);
		else
			rc = blk_write_zeroes(vb->blk, sector * VBLK_SECTOR, n * VBLK_SECTOR, NULL);
		if (rc != 0) {
			*host_failed = true;
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

/* Handles one request; returns the bytes written into its writable part
 * (data plus status byte), -1 for a request framed so badly that the
 * device must stop (no header, or nowhere to put the status), or VBLK_HELD
 * with *error set for a write the host refused that is to be held. */
static int64_t vblk_handle(struct vblk *vb, struct vq_req *r, int *error)
{
	struct vblk_hdr h;
	uint64_t data_in, data_out;
	uint8_t status = VIRTIO_BLK_S_OK;
	int64_t used = 1;
	bool host_failed = false; /* a write, flush, discard the host refused */

	if (r->out_len < sizeof(h) || r->in_len < 1)
		return -1;
	iov_to_buf(r->iov, r->nout, 0, &h, sizeof(h));
	h.type = le32toh(h.type);
	h.sector = le64toh(h.sector);
	errno = 0;
	data_in = r->in_len - 1;
	data_out = r->out_len - sizeof(h);
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		if (!in_range(vb, h.sector, data_in))
			status = VIRTIO_BLK_S_IOERR;
		else if (rw_segments(vb, r->iov + r->nout, r->nin, 0, data_in,
				     h.sector * VBLK_SECTOR, blk_pread) != 0)
			status = VIRTIO_BLK_S_IOERR;
		else
			used += (int64_t)data_in;
		break;
	case VIRTIO_BLK_T_OUT:
		if (vb->readonly || !in_range(vb, h.sector, data_out))
			status = VIRTIO_BLK_S_IOERR;
		else if (rw_segments(vb, r->iov, r->nout, sizeof(h), data_out,
				     h.sector * VBLK_SECTOR, blk_pwrite_seg) != 0)
			host_failed = true;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!vb->readonly && blk_flush(vb->blk, NULL) != 0)
			host_failed = true;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = MIN(data_in, (uint64_t)VBLK_ID_BYTES);
		iov_from_buf(r->iov + r->nout, r->nin, 0, vb->id, n);
		used += (int64_t)n;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = do_ranges(vb, r, h.type, &host_failed);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (host_failed && vb->on_error == VM_ON_ERROR_PAUSE) {
		*error = errno != 0 ? errno : EIO;
		return VBLK_HELD;
	}
	if (host_failed)
		status = VIRTIO_BLK_S_IOERR;
	iov_from_buf(r->iov + r->nout, r->nin, r->in_len - 1, &status, 1);
	return used;
}

static void *vblk_helper(void *arg)
{
	struct vblk *vb = arg;
	struct vblk_job *j;

	pthread_mutex_lock(&vb->pool_lock);
	for (;;) {
		while (vb->jobs == NULL && !vb->pool_stop)
			pthread_cond_wait(&vb->pool_work, &vb->pool_lock);
		if (vb->jobs == NULL)
			break;
		j = vb->jobs;
		vb->jobs = j->next;
		pthread_mutex_unlock(&vb->pool_lock);
		j->used = vblk_handle(vb, j->r, &j->error);
		pthread_mutex_lock(&vb->pool_lock);
		if (--*j->left == 0)
			pthread_cond_signal(j->done);
	}
	pthread_mutex_unlock(&vb->pool_lock);
	return NULL;
}

/* Runs n requests: all but the first go to the helpers, the first runs
 * here, then we wait for the rest. Requests in one batch were all in
 * flight at once, so the driver expects no order among them. */
static void vblk_run_batch(struct vblk *vb, struct vblk_job *jobs, unsigned n)
{
	pthread_cond_t done;
	unsigned left = n - 1;

	if (n > 1 && vb->nhelpers > 0) {
		pthread_cond_init(&done, NULL);
		pthread_mutex_lock(&vb->pool_lock);
		for (unsigned i = n - 1; i >= 1; i--) {
			jobs[i].left = &left;
			jobs[i].done = &done;
			jobs[i].next = vb->jobs;
			vb->jobs = &jobs[i];
		}
		pthread_cond_broadcast(&vb->pool_work);
		pthread_mutex_unlock(&vb->pool_lock);
		jobs[0].used = vblk_handle(vb, jobs[0].r, &jobs[0].error);
		pthread_mutex_lock(&vb->pool_lock);
		while (left > 0)
			pthread_cond_wait(&done, &vb->pool_lock);
		pthread_mutex_unlock(&vb->pool_lock);
		pthread_cond_destroy(&done);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		jobs[i].used = vblk_handle(vb, jobs[i].r, &jobs[i].error);
}

/* ---- the io_uring way ---- */

#ifdef HAVE_LIBURING
#define VBLK_URING_ENTRIES 256 /* submissions in flight per queue */

struct vblk_xfer {
	uint8_t *buf;
	struct blk_extent e;
};

#define VBLK_GROUP_IOVS 32	       /* pieces joined into one readv/writev */
#define VBLK_GROUP_BYTES (2u << 20) /* and the most bytes it moves */

/* One submission: pieces of requests k0..k1 of a batch that follow each
 * other in the image file, read or written with one call, as a run of
 * sequential requests is (QEMU's virtio-blk merges them likewise). */
struct vblk_group {
	struct iovec iov[VBLK_GROUP_IOVS];
	unsigned niov, k0, k1;
	int fd;
	bool write;
	uint64_t host, len;
};

struct vblk_uring {
	struct io_uring ring;
	bool live;				/* set up, and no submission has failed */
	unsigned queued;			/* prepared, not submitted yet */
	unsigned inflight;			/* submitted, not reaped yet */
	unsigned ngroups;			/* groups in use; the last may be open */
	bool open;				/* the last group takes more pieces */
	struct vblk_xfer x[VBLK_URING_ENTRIES]; /* one request's pieces */
	struct vblk_group g[VBLK_URING_ENTRIES];
};

/* Maps a read or a write into pieces of the image file (u->x); the count,
 * or 0 when some part needs the block layer (or more pieces than fit). */
static unsigned vblk_uring_map(struct vblk *vb, struct vblk_uring *u, struct vq_req *r, bool *write)
{
	struct vblk_hdr h;
	struct iovec *iov;
	unsigned niov, nx = 0;
	uint64_t len, off;
	size_t skip;

	if (r->out_len < sizeof(h) || r->in_len < 1)
		return 0;
	iov_to_buf(r->iov, r->nout, 0, &h, sizeof(h));
	if (le32toh(h.type) == VIRTIO_BLK_T_IN) {
		iov = r->iov + r->nout, niov = r->nin, skip = 0, len = r->in_len - 1;
		*write = false;
	} else if (le32toh(h.type) == VIRTIO_BLK_T_OUT && !vb->readonly) {
		iov = r->iov, niov = r->nout, skip = sizeof(h), len = r->out_len - sizeof(h);
		*write = true;
	} else {
		return 0;
	}
	off = le64toh(h.sector);
	if (len == 0 || !in_range(vb, off, len))
		return 0;
	off *= VBLK_SECTOR;
	for (unsigned i = 0; i < niov && len > 0; i++) {
		uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
		uint64_t l;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		l = MIN(iov[i].iov_len - skip, len);
		skip = 0;
		while (l > 0) {
			struct blk_extent e;

			if (nx == VBLK_URING_ENTRIES ||
			    blk_map(vb->blk, off, l, *write, &e, NULL) != 1 || e.len == 0)
				return 0;
			e.len = MIN(e.len, l);
			u->x[nx++] = (struct vblk_xfer){.buf = p, .e = e};
			p += e.len;
			off += e.len;
			l -= e.len;
			len -= e.len;
		}
	}
	return len == 0 ? nx : 0;
}

/* Closes the open group into a submission. */
static void vblk_uring_close(struct vblk_uring *u, struct vblk_job *jobs)
{
	struct vblk_group *g;
	struct io_uring_sqe *sqe;

	if (!u->open)
		return;
	u->open = false;
	g = &u->g[u->ngroups - 1];
	sqe = io_uring_get_sqe(&u->ring);
	if (sqe == NULL) { /* cannot happen: the ring was drained for room */
		for (unsigned k = g->k0; k <= g->k1; k++)
			jobs[k].failed = true;
		return;
	}
	if (g->write)
		io_uring_prep_writev(sqe, g->fd, g->iov, g->niov, g->host);
	else
		io_uring_prep_readv(sqe, g->fd, g->iov, g->niov, g->host);
	io_uring_sqe_set_data64(sqe, u->ngroups - 1);
	u->queued++;
}

/* Adds a piece of request k: to the open group when it carries on where that
 * one ends in the same file, else in a group of its own. */
static void vblk_uring_add(struct vblk_uring *u, struct vblk_job *jobs, unsigned k,
			   const struct vblk_xfer *x)
{
	struct vblk_group *g = u->open ? &u->g[u->ngroups - 1] : NULL;
	bool write = jobs[k].write;

	if (g != NULL && g->fd == x->e.fd && g->write == write && g->host + g->len == x->e.host &&
	    g->niov < VBLK_GROUP_IOVS && g->len + x->e.len <= VBLK_GROUP_BYTES) {
		g->iov[g->niov++] = (struct iovec){.iov_base = x->buf, .iov_len = x->e.len};
		g->len += x->e.len;
		g->k1 = k;
		return;
	}
	vblk_uring_close(u, jobs);
	g = &u->g[u->ngroups++];
	*g = (struct vblk_group){.niov = 1, .k0 = k, .k1 = k, .fd = x->e.fd, .write = write,
				 .host = x->e.host, .len = x->e.len};
	g->iov[0] = (struct iovec){.iov_base = x->buf, .iov_len = x->e.len};
	u->open = true;
}

/* Submits what is prepared and waits for everything submitted. A ring that
 * stops taking submissions is given up: the batch goes the threads way. */
static void vblk_uring_drain(struct vblk_uring *u, struct vblk_job *jobs, unsigned n)
{
	vblk_uring_close(u, jobs);
	/* Never submits again after a failure: what is left in the ring is stale. */
	while (u->live && u->queued > 0) {
		int rc = io_uring_submit(&u->ring);

		if (rc > 0) {
			u->queued -= MIN((unsigned)rc, u->queued);
			u->inflight += (unsigned)rc;
		} else if (rc != -EINTR && rc != -EAGAIN) {
			u->live = false;
			break;
		}
	}
	while (u->inflight > 0) {
		struct io_uring_cqe *cqe;
		unsigned i;

		if (io_uring_wait_cqe(&u->ring, &cqe) != 0)
			continue; /* interrupted: the transfers still run */
		i = (unsigned)cqe->user_data;
		if (i < u->ngroups && (cqe->res < 0 || (uint64_t)cqe->res != u->g[i].len))
			for (unsigned k = u->g[i].k0; k <= u->g[i].k1 && k < n; k++)
				jobs[k].failed = true;
		io_uring_cqe_seen(&u->ring, cqe);
		u->inflight--;
	}
	u->ngroups = 0;
	if (!u->live)
		for (unsigned i = 0; i < n; i++)
			jobs[i].failed = true;
}

/* Queues one request's pieces; false when it must go the threads way. */
static bool vblk_uring_queue(struct vblk *vb, struct vblk_uring *u, struct vblk_job *jobs,
			     unsigned n, unsigned k)
{
	unsigned nx = vblk_uring_map(vb, u, jobs[k].r, &jobs[k].write);

	if (nx == 0)
		return false;
	/* Room for a group per piece, the open one included. */
	if (u->ngroups + nx > VBLK_URING_ENTRIES)
		vblk_uring_drain(u, jobs, n);
	if (!u->live)
		return false;
	for (unsigned i = 0; i < nx; i++)
		vblk_uring_add(u, jobs, k, &u->x[i]);
	return true;
}

/* A batch: reads and overwrites through the ring, under one hold of the
 * image; the rest, and any transfer that came back short or failed, the
 * threads way once the hold is released (a redone read or write is the
 * same request again). */
static void vblk_uring_batch(struct vblk *vb, struct vblk_uring *u, struct vblk_job *jobs,
			     unsigned n)
{
	struct vblk_job slow[VBLK_BATCH];
	unsigned idx[VBLK_BATCH], nslow = 0;

	blk_map_begin(vb->blk);
	for (unsigned k = 0; k < n; k++)
		jobs[k].direct = u->live && vblk_uring_queue(vb, u, jobs, n, k);
	vblk_uring_drain(u, jobs, n);
	blk_map_end(vb->blk);
	for (unsigned k = 0; k < n; k++) {
		struct vq_req *r = jobs[k].r;
		uint8_t status = VIRTIO_BLK_S_OK;

		if (!jobs[k].direct || jobs[k].failed) {
			idx[nslow] = k;
			slow[nslow++] = (struct vblk_job){.vb = vb, .r = r};
			continue;
		}
		iov_from_buf(r->iov + r->nout, r->nin, r->in_len - 1, &status, 1);
		/* The data read and the status, or the status alone. */
		jobs[k].used = jobs[k].write ? 1 : (int64_t)r->in_len;
	}
	if (nslow > 0)
		vblk_run_batch(vb, slow, nslow);
	for (unsigned i = 0; i < nslow; i++) {
		jobs[idx[i]].used = slow[i].used;
		jobs[idx[i]].error = slow[i].error;
	}
}

static const char *vblk_uring_setup(struct vblk *vb)
{
	int rc = 0;
	unsigned i;

	vb->uring = xcalloc(vb->nqueues, sizeof(*vb->uring));
	for (i = 0; i < vb->nqueues && rc == 0; i++) {
		rc = blk_uring_init(&vb->uring[i].ring, VBLK_URING_ENTRIES);
		vb->uring[i].live = rc == 0;
	}
	if (rc == 0)
		return NULL;
	while (--i > 0)
		io_uring_queue_exit(&vb->uring[i - 1].ring);
	free(vb->uring);
	vb->uring = NULL;
	return strerror(-rc);
}

static void vblk_uring_free(struct vblk *vb)
{
	for (unsigned i = 0; vb->uring != NULL && i < vb->nqueues; i++)
		io_uring_queue_exit(&vb->uring[i].ring);
	free(vb->uring);
}
#else
struct vblk_uring {
	bool live;
};

static void vblk_uring_batch(struct vblk *vb, struct vblk_uring *u, struct vblk_job *jobs,
			     unsigned n)
{
	(void)u;
	vblk_run_batch(vb, jobs, n);
}

static const char *vblk_uring_setup(struct vblk *vb)
{
	(void)vb;
	return "termvisor was built without liburing";
}

static void vblk_uring_free(struct vblk *vb)
{
	(void)vb;
}
#endif

/* Pushes the batch's done requests and keeps the held ones at the front of
 * jobs; returns how many are held, or -1 when the queue broke. */
static int vblk_complete(struct vblk_job *jobs, unsigned n, struct vq *vq)
{
	unsigned held = 0;

	for (unsigned i = 0; i < n; i++) {
		if (jobs[i].used == VBLK_HELD) {
			jobs[held++] = jobs[i];
			continue;
		}
		if (jobs[i].used < 0) {
			vq->broken = true;
			vq->why = "block request without a header or a status byte";
			return -1;
		}
		vq_push(vq, jobs[i].r->head, (uint32_t)jobs[i].used);
	}
	return (int)held;
}

/* Requests the host refused: the VM pauses with the first one's reason,
 * and they are done again at each resume until they go through. When the
 * run ends instead, nobody waits for them. */
static void vblk_hold(struct vblk *vb, struct virtio_pci *vp, unsigned qi, struct vq *vq,
		      struct vblk_job *held, int n)
{
	while (n > 0) {
		char why[256];
		size_t at = strlen(vb->name) + 2; /* the message, in lower case as a line goes on */

		snprintf(why, sizeof(why), "%s: %s", vb->name, strerror(held[0].error));
		if (at < sizeof(why))
			why[at] = (char)tolower((unsigned char)why[at]);
		if (!vm_hold(virtio_pci_vm(vp), why))
			return;
		vblk_run_batch(vb, held, (unsigned)n);
		n = vblk_complete(held, (unsigned)n, vq);
		virtio_pci_queue_done(vp, qi, vq);
	}
}

static void vblk_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vblk *vb = virtio_pci_priv(vp);
	struct vq_req *reqs = &vb->reqs[(size_t)qi * VBLK_BATCH];
	struct vblk_job jobs[VBLK_BATCH];
	int rc = 1, held;

	while (rc > 0) {
		unsigned n = 0;

		while (n < VBLK_BATCH && (rc = vq_pop(vq, &reqs[n])) > 0) {
			jobs[n] = (struct vblk_job){.vb = vb, .r = &reqs[n]};
			n++;
		}
		if (n == 0)
			break;
		if (vb->uring != NULL && vb->uring[qi].live)
			vblk_uring_batch(vb, &vb->uring[qi], jobs, n);
		else
			vblk_run_batch(vb, jobs, n);
		held = vblk_complete(jobs, n, vq);
		if (held < 0)
			rc = -1;
		/* Completions go out per batch: the driver can refill while the
		 * next batch runs. */
		virtio_pci_queue_done(vp, qi, vq);
		if (vq->broken)
			return;
		if (held > 0)
			vblk_hold(vb, vp, qi, vq, jobs, held);
	}
	if (vq->broken)
		virtio_pci_queue_done(vp, qi, vq); /* reports it */
}

static void vblk_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vblk *vb = virtio_pci_priv(vp);

	memcpy(data, vb->cfg + off, len);
}

static void vblk_destroy(struct virtio_pci *vp)
{
	struct vblk *vb = virtio_pci_priv(vp);

	pthread_mutex_lock(&vb->pool_lock);
	vb->pool_stop = true;
	pthread_cond_broadcast(&vb->pool_work);
	pthread_mutex_unlock(&vb->pool_lock);
	for (unsigned i = 0; i < vb->nhelpers; i++)
		pthread_join(vb->helpers[i], NULL);
	pthread_cond_destroy(&vb->pool_work);
	pthread_mutex_destroy(&vb->pool_lock);
	vblk_uring_free(vb);
	if (vb->blk != NULL)
		blk_close(vb->blk, NULL);
	free(vb->reqs);
	free(vb->name);
	free(vb);
}

static void put_le(uint8_t *b, unsigned off, uint64_t v, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

static void vblk_fill_cfg(struct vblk *vb)
{
	uint64_t cl = blk_cluster_size(vb->blk);
	uint32_t align = (uint32_t)MAX(cl / VBLK_SECTOR, 1);

	put_le(vb->cfg, 0, vb->sectors, 8);	     /* capacity */
	put_le(vb->cfg, 12, VBLK_QUEUE_SIZE - 2, 4); /* seg_max */
	put_le(vb->cfg, 20, VBLK_SECTOR, 4);	     /* blk_size */
	put_le(vb->cfg, 34, vb->nqueues, 2);	     /* num_queues */
	put_le(vb->cfg, 36, VBLK_MAX_DISCARD_SECTORS, 4);
	put_le(vb->cfg, 40, VBLK_MAX_DISCARD_SEGS, 4);
	put_le(vb->cfg, 44, align, 4);			  /* discard_sector_alignment */
	put_le(vb->cfg, 48, VBLK_MAX_DISCARD_SECTORS, 4); /* max_write_zeroes_sectors */
	put_le(vb->cfg, 52, VBLK_MAX_DISCARD_SEGS, 4);
	vb->cfg[56] = 1; /* write_zeroes_may_unmap */
}

_Static_assert(VBLK_ID_BYTES == VM_DISK_SERIAL_MAX, "GET_ID is 20 bytes");

/* The serial a guest reads with GET_ID (20 bytes, NUL-padded): the disk's
 * own, or "tvdisk" and its index. Never the image's name or path: that is
 * the host's business, and it changes when the file moves. */
static void vblk_set_id(struct vblk *vb, const char *serial, unsigned n)
{
	char def[VBLK_ID_BYTES + 1];

	if (serial == NULL) {
		snprintf(def, sizeof(def), "tvdisk%u", n);
		serial = def;
	}
	memset(vb->id, 0, sizeof(vb->id));
	memcpy(vb->id, serial, MIN(strlen(serial), sizeof(vb->id)));
}

static void vblk_start_helpers(struct vblk *vb)
{
	sigset_t all, old;

	sigfillset(&all);
	sigdelset(&all, SIGSYS); /* the sandbox's report of a forbidden call */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < VBLK_HELPERS; i++)
		if (pthread_create(&vb->helpers[vb->nhelpers], NULL, vblk_helper, vb) == 0)
			vb->nhelpers++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int vblk_create_one(struct vm *vm, const struct vm_disk *d, unsigned n, struct tv_err *err)
{
	struct vblk *vb = xcalloc(1, sizeof(*vb));
	struct virtio_dev_info info = {
	    .device_id = VIRTIO_ID_BLOCK,
	    .class_code = 0x010000,
	    .queue_size = VBLK_QUEUE_SIZE,
	    .cfg_size = VBLK_CFG_SIZE,
	    .cfg_read = vblk_cfg_read,
	    .queue_notify = vblk_queue_notify,
	    .destroy = vblk_destroy,
	};
	char name[32];

	if (d->serial != NULL && !vm_disk_serial_valid(d->serial)) {
		free(vb);
		return tv_errf(err,
			       "disk %u: serial \"%s\": expected 1 to %d printable characters "
			       "without spaces or commas",
			       n, d->serial, VM_DISK_SERIAL_MAX);
	}
	if (blk_open(&vb->blk, d->path, d->format, d->readonly ? BLK_READONLY : 0, err) != 0) {
		free(vb);
		return tv_err_prefix(err, "disk %u: ", n);
	}
	vb->readonly = d->readonly || blk_is_readonly(vb->blk);
	vb->on_error = d->on_error;
	vb->name = xstrdup(strrchr(d->path, '/') ? strrchr(d->path, '/') + 1 : d->path);
	vb->sectors = blk_size(vb->blk) / VBLK_SECTOR;
	vb->nqueues = MAX(1u, MIN(vm_ncpus(vm), (unsigned)VBLK_MAX_QUEUES));
	vb->reqs = xcalloc((size_t)vb->nqueues * VBLK_BATCH, sizeof(*vb->reqs));
	pthread_mutex_init(&vb->pool_lock, NULL);
	pthread_cond_init(&vb->pool_work, NULL);
	vblk_start_helpers(vb);
	if ((d->aio == VM_AIO_DEFAULT ? VBLK_AIO_DEFAULT : d->aio) == VM_AIO_IO_URING) {
		const char *why = vblk_uring_setup(vb);

		/* Blocked by a seccomp filter, disabled by sysctl, an old kernel. */
		if (why != NULL && (d->aio == VM_AIO_IO_URING || vm_config(vm)->verbose))
			fprintf(stderr,
				"termvisor: disk %u (%s): io_uring unavailable (%s); "
				"using I/O threads\n",
				n, d->path, why);
	}
	vblk_set_id(vb, d->serial, n);
	vblk_fill_cfg(vb);
	info.nqueues = vb->nqueues;
	info.features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			1ull << VIRTIO_BLK_F_FLUSH;
	if (vb->nqueues > 1)
		info.features |= 1ull << VIRTIO_BLK_F_MQ;
	if (vb->readonly)
		info.features |= 1ull << VIRTIO_BLK_F_RO;
	else
		info.features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	snprintf(name, sizeof(name), "virtio-blk%u", n);
	info.name = name;
	return virtio_pci_create(vm, &info, vb, NULL, err);
}

/* One virtio-blk device per configured disk, in order. */
int virtio_blk_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	for (size_t i = 0; i < cfg->ndisks; i++)
		if (vblk_create_one(vm, &cfg->disks[i], (unsigned)i, err) != 0)
			return -1;
	return 0;
}

struct blk *virtio_blk_disk(struct vm *vm, unsigned n)
{
	char name[32];
	struct virtio_pci *vp;

	snprintf(name, sizeof(name), "virtio-blk%u", n);
	vp = virtio_pci_find(vm, name);
	return vp != NULL ? ((struct vblk *)virtio_pci_priv(vp))->blk : NULL;
}
