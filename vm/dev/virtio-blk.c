/* virtio-blk (virtio spec 5.2) on the block layer: read, write, flush,
 * discard, write-zeroes and get-id, read-only disks, one queue per vCPU (up
 * to VBLK_MAX_QUEUES). Requests run on the queues' own threads and move data
 * straight between the image and guest memory (no bounce buffer). */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/block/block.h"
#include "vm/dev/virtio-pci.h"
#include "vm/util.h"
#include "vm/vm.h"

#define VBLK_MAX_QUEUES 4
#define VBLK_QUEUE_SIZE 256
#define VBLK_SECTOR 512ull
#define VBLK_ID_BYTES 20
#define VBLK_MAX_DISCARD_SEGS 32
#define VBLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per segment */

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VBLK_CFG_SIZE 60

struct vblk {
	struct blk *blk;
	bool readonly;
	unsigned nqueues;
	uint64_t sectors;
	char id[VBLK_ID_BYTES];
	uint8_t cfg[VBLK_CFG_SIZE];
	struct vq_req *reqs; /* one per queue, used on its thread only */
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

		iov_to_buf(r->iov, r->nout, sizeof(struct vblk_hdr) + k * sizeof(rg), &rg, sizeof(rg));
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

static void vblk_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vblk *vb = virtio_pci_priv(vp);
	struct vq_req *r = &vb->reqs[qi];
	int rc;

	while ((rc = vq_pop(vq, r)) > 0) {
		int64_t used = vblk_handle(vb, r);

		if (used < 0) {
			vq->broken = true;
			vq->why = "block request without a header or a status byte";
			break;
		}
		vq_push(vq, r->head, (uint32_t)used);
	}
	virtio_pci_queue_done(vp, qi, vq);
}

static void vblk_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	struct vblk *vb = virtio_pci_priv(vp);

	memcpy(data, vb->cfg + off, len);
}

static void vblk_destroy(struct virtio_pci *vp)
{
	struct vblk *vb = virtio_pci_priv(vp);

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

	put_le(vb->cfg, 0, vb->sectors, 8);            /* capacity */
	put_le(vb->cfg, 12, VBLK_QUEUE_SIZE - 2, 4);   /* seg_max */
	put_le(vb->cfg, 20, VBLK_SECTOR, 4);           /* blk_size */
	put_le(vb->cfg, 34, vb->nqueues, 2);           /* num_queues */
	put_le(vb->cfg, 36, VBLK_MAX_DISCARD_SECTORS, 4);
	put_le(vb->cfg, 40, VBLK_MAX_DISCARD_SEGS, 4);
	put_le(vb->cfg, 44, align, 4);                 /* discard_sector_alignment */
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
	vb->reqs = xcalloc(vb->nqueues, sizeof(*vb->reqs));
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
