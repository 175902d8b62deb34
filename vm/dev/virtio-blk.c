/* virtio-blk (virtio spec 5.2) on the block layer: read, write, flush,
 * discard, write-zeroes and get-id, read-only disks, one queue per vCPU (up
 * to VBLK_MAX_QUEUES). Requests run on the queues' own threads and move data
 * straight between the image and guest memory (no bounce buffer). */
#include <endian.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/block/block.h"
#include "vm/dev/virtio-pci.h"
#include "vm/util.h"
#include "vm/vm.h"

#define VBLK_MAX_QUEUES 4
/* Requests taken from a queue at once, and the helper threads that run
 * them alongside the queue's own thread (0: one request at a time). */
#define VBLK_BATCH 16
#ifndef VBLK_HELPERS
#define VBLK_HELPERS 2
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

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VBLK_CFG_SIZE 60

struct vblk;

/* One request handed to a helper; a batch is done when left reaches 0. */
struct vblk_job {
	struct vblk *vb;
	struct vq_req *r;
	int64_t used;
	unsigned *left;
	pthread_cond_t *done;
	struct vblk_job *next;
};

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
	unsigned nqueues;
	uint64_t sectors;
	char id[VBLK_ID_BYTES];
	uint8_t cfg[VBLK_CFG_SIZE];
	struct vq_req *reqs; /* VBLK_BATCH per queue, used on its thread only */
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

static uint8_t do_ranges(struct vblk *vb, struct vq_req *r, uint32_t type)
{
	uint64_t bytes = r->out_len - sizeof(struct vblk_hdr);
	struct vblk_range rg;

	if (vb->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (bytes == 0 || bytes % sizeof(rg) != 0 || bytes / sizeof(rg) > VBLK_MAX_DISCARD_SEGS)
		return VIRTIO_BLK_S_UNSUPP;
	for (uint64_t k = 0; k < bytes / sizeof(rg); k++) {
		uint64_t sector, n;
		int rc;

		iov_to_buf(r->iov, r->nout, sizeof(struct vblk_hdr) + k * sizeof(rg), &rg,
			   sizeof(rg));
		sector = le64toh(rg.sector);
		n = le32toh(rg.num_sectors);
		if ((le32toh(rg.flags) & ~1u) != 0 || n > VBLK_MAX_DISCARD_SECTORS)
			return VIRTIO_BLK_S_UNSUPP;
		if (!in_range(vb, sector, n * VBLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
		if (type == VIRTIO_BLK_T_DISCARD)
			rc = blk_discard(vb->blk, sector * VBLK_SECTOR, n * VBLK_SECTOR, NULL);
		else
			rc = blk_write_zeroes(vb->blk, sector * VBLK_SECTOR, n * VBLK_SECTOR, NULL);
		if (rc != 0)
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Handles one request; returns the bytes written into its writable part
 * (data plus status byte), or -1 for a request framed so badly that the
 * device must stop (no header, or nowhere to put the status). */
static int64_t vblk_handle(struct vblk *vb, struct vq_req *r)
{
	struct vblk_hdr h;
	uint64_t data_in, data_out;
	uint8_t status = VIRTIO_BLK_S_OK;
	int64_t used = 1;

	if (r->out_len < sizeof(h) || r->in_len < 1)
		return -1;
	iov_to_buf(r->iov, r->nout, 0, &h, sizeof(h));
	h.type = le32toh(h.type);
	h.sector = le64toh(h.sector);
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
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!vb->readonly && blk_flush(vb->blk, NULL) != 0)
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = MIN(data_in, (uint64_t)VBLK_ID_BYTES);
		iov_from_buf(r->iov + r->nout, r->nin, 0, vb->id, n);
		used += (int64_t)n;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = do_ranges(vb, r, h.type);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
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
		j->used = vblk_handle(vb, j->r);
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
		jobs[0].used = vblk_handle(vb, jobs[0].r);
		pthread_mutex_lock(&vb->pool_lock);
		while (left > 0)
			pthread_cond_wait(&done, &vb->pool_lock);
		pthread_mutex_unlock(&vb->pool_lock);
		pthread_cond_destroy(&done);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		jobs[i].used = vblk_handle(vb, jobs[i].r);
}

static void vblk_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vblk *vb = virtio_pci_priv(vp);
	struct vq_req *reqs = &vb->reqs[(size_t)qi * VBLK_BATCH];
	struct vblk_job jobs[VBLK_BATCH];
	int rc = 1;

	while (rc > 0) {
		unsigned n = 0;

		while (n < VBLK_BATCH && (rc = vq_pop(vq, &reqs[n])) > 0) {
			jobs[n] = (struct vblk_job){.vb = vb, .r = &reqs[n]};
			n++;
		}
		if (n == 0)
			break;
		vblk_run_batch(vb, jobs, n);
		for (unsigned i = 0; i < n; i++) {
			if (jobs[i].used < 0) {
				vq->broken = true;
				vq->why = "block request without a header or a status byte";
				rc = -1;
				break;
			}
			vq_push(vq, jobs[i].r->head, (uint32_t)jobs[i].used);
		}
		/* Completions go out per batch: the driver can refill while the
		 * next batch runs. */
		virtio_pci_queue_done(vp, qi, vq);
		if (vq->broken)
			return;
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
	if (vb->blk != NULL)
		blk_close(vb->blk, NULL);
	free(vb->reqs);
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

/* The serial a guest reads with GET_ID: the image's file name, cut to fit. */
static void vblk_set_id(struct vblk *vb, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	memset(vb->id, 0, sizeof(vb->id));
	memcpy(vb->id, base, MIN(strlen(base), sizeof(vb->id)));
}

static void vblk_start_helpers(struct vblk *vb)
{
	sigset_t all, old;

	sigfillset(&all);
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

	if (blk_open(&vb->blk, d->path, d->format, d->readonly ? BLK_READONLY : 0, err) != 0) {
		free(vb);
		return tv_err_prefix(err, "disk %u: ", n);
	}
	vb->readonly = d->readonly || blk_is_readonly(vb->blk);
	vb->sectors = blk_size(vb->blk) / VBLK_SECTOR;
	vb->nqueues = MAX(1u, MIN(vm_ncpus(vm), (unsigned)VBLK_MAX_QUEUES));
	vb->reqs = xcalloc((size_t)vb->nqueues * VBLK_BATCH, sizeof(*vb->reqs));
	pthread_mutex_init(&vb->pool_lock, NULL);
	pthread_cond_init(&vb->pool_work, NULL);
	vblk_start_helpers(vb);
	vblk_set_id(vb, d->path);
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

struct blk *virtio_blk_disk(struct vm *vm, unsigned i)
{
	char name[32];
	struct virtio_pci *vp;

	snprintf(name, sizeof(name), "virtio-blk%u", i);
	vp = virtio_pci_find(vm, name);
	return vp != NULL ? ((struct vblk *)virtio_pci_priv(vp))->blk : NULL;
}

/* One virtio-blk device per configured disk, in order. */
int virtio_blk_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	for (size_t i = 0; i < cfg->ndisks; i++)
		if (vblk_create_one(vm, &cfg->disks[i], (unsigned)i, err) != 0)
			return -1;
	return 0;
}
