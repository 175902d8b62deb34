/* Split virtqueues, device side. Every field is read from guest memory once
 * into a local copy and checked there, so a driver changing a descriptor
 * while we look at it cannot slip a value past the checks. */
#include <endian.h>
#include <string.h>

#include "vm/dev/virtio-queue.h"

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define DESC_SIZE 16

static uint16_t load16_acquire(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static uint16_t load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static void store16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)p, htole16(v), order);
}

/* Every store into the used ring goes through here: the pages the host
 * writes are marked for the memory images (KVM's dirty log sees only the
 * guest's writes). */
static void used_store16(struct vq *q, size_t off, uint16_t v, int order)
{
	gmem_mark_dirty(q->mem, q->used + off, 2);
	store16(q->used + off, v, order);
}

static void desc_read(const uint8_t *table, uint16_t i, struct vring_desc *d)
{
	struct vring_desc raw;

	memcpy(&raw, table + (size_t)i * DESC_SIZE, sizeof(raw));
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

static uint64_t avail_bytes(uint16_t size)
{
	return 4 + 2 * (uint64_t)size + 2; /* flags, idx, ring, used_event */
}

static uint64_t used_bytes(uint16_t size)
{
	return 4 + 8 * (uint64_t)size + 2; /* flags, idx, ring, avail_event */
}

void vq_reset(struct vq *q)
{
	memset(q, 0, sizeof(*q));
}

int vq_start(struct vq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	     uint64_t avail, uint64_t used, bool event_idx, bool indirect)
{
	vq_reset(q);
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)) != 0)
		return -1;
	/* Alignments required by 2.7 (16, 2, 4); they also keep our 16- and
	 * 32-bit ring accesses naturally aligned. */
	if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0)
		return -1;
	q->desc = gmem_ptr(mem, desc, (uint64_t)size * DESC_SIZE);
	q->avail = gmem_ptr(mem, avail, avail_bytes(size));
	q->used = gmem_ptr(mem, used, used_bytes(size));
	if (q->desc == NULL || q->avail == NULL || q->used == NULL) {
		vq_reset(q);
		return -1;
	}
	q->mem = mem;
	q->size = size;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;
	q->event_idx = event_idx;
	q->indirect = indirect;
	/* The driver starts its rings at zero; so do we (2.7.13). */
	q->last_avail = 0;
	q->used_idx = 0;
	q->ready = true;
	return 0;
}

static int vq_break(struct vq *q, const char *why)
{
	q->broken = true;
	q->why = why;
	return -1;
}

/* Follows one chain from head. Each table (the ring's, or one indirect
 * table) is walked at most its own length in steps, which bounds loops. */
static int vq_walk(struct vq *q, uint16_t head, struct vq_req *r)
{
	const uint8_t *table = q->desc;
	uint32_t n = q->size, steps = 0;
	bool in_indirect = false;
	uint16_t i = head;
	struct vring_desc d;

	r->head = head;
	r->nout = r->nin = 0;
	r->out_len = r->in_len = 0;
	for (;;) {
		if (steps++ >= n)
			return vq_break(q, "descriptor chain loops");
		desc_read(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect)
				return vq_break(q, "indirect descriptor not negotiated");
			if (in_indirect)
				return vq_break(q, "indirect table inside an indirect table");
			if (steps != 1 || (d.flags & VIRTQ_DESC_F_NEXT))
				return vq_break(q, "indirect descriptor not alone in its chain");
			if (d.len == 0 || d.len % DESC_SIZE != 0 || d.len / DESC_SIZE > VQ_MAX_SIZE)
				return vq_break(q, "indirect table of a bad length");
			table = gmem_ptr(q->mem, d.addr, d.len);
			if (table == NULL)
				return vq_break(q, "indirect table outside guest RAM");
			n = d.len / DESC_SIZE;
			in_indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		if (d.len > 0) {
			void *p;
			unsigned k = r->nout + r->nin;

			if (k >= VQ_MAX_SEGS || k >= q->size)
				return vq_break(q, "descriptor chain longer than the queue");
			if (!(d.flags & VIRTQ_DESC_F_WRITE) && r->nin > 0)
				return vq_break(q, "readable descriptor after a writable one");
			p = gmem_ptr(q->mem, d.addr, d.len);
			if (p == NULL)
				return vq_break(q, "buffer outside guest RAM");
			/* The device may write it from now on, from any thread. */
			if (d.flags & VIRTQ_DESC_F_WRITE)
				gmem_mark_dirty(q->mem, p, d.len);
			r->iov[k].iov_base = p;
			r->iov[k].iov_len = d.len;
			if (d.flags & VIRTQ_DESC_F_WRITE) {
				r->nin++;
				r->in_len += d.len;
			} else {
				r->nout++;
				r->out_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 1;
		if (d.next >= n)
			return vq_break(q, "descriptor link out of range");
		i = d.next;
	}
}

int vq_pop(struct vq *q, struct vq_req *r)
{
	uint16_t avail_idx, head;

	if (q->broken)
		return -1;
	if (!q->ready || (q->go != NULL && !__atomic_load_n(q->go, __ATOMIC_ACQUIRE)))
		return 0;
	avail_idx = load16_acquire(q->avail + 2);
	if (avail_idx == q->last_avail) {
		if (!q->event_idx || q->notify_off)
			return 0;
		/* Ask for a kick at the next entry, then look again: the
		 * driver may have added one before it saw our request. */
		used_store16(q, 4 + 8 * (size_t)q->size, q->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = load16_acquire(q->avail + 2);
		if (avail_idx == q->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - q->last_avail) > q->size)
		return vq_break(q, "available index moved past the queue size");
	head = load16(q->avail + 4 + 2 * (size_t)(q->last_avail & (q->size - 1)));
	if (head >= q->size)
		return vq_break(q, "available ring names a descriptor out of range");
	if (vq_walk(q, head, r) < 0)
		return -1;
	q->last_avail++;
	return 1;
}

void vq_unpop(struct vq *q, uint16_t n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void vq_push(struct vq *q, uint16_t head, uint32_t len)
{
	uint8_t *e;

	if (!q->ready)
		return;
	e = q->used + 4 + 8 * (size_t)(q->used_idx & (q->size - 1));
	gmem_mark_dirty(q->mem, e, 8);
	__atomic_store_n((uint32_t *)e, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(e + 4), htole32(len), __ATOMIC_RELAXED);
	q->used_idx++;
	used_store16(q, 2, q->used_idx, __ATOMIC_RELEASE);
}

bool vq_should_notify(struct vq *q)
{
	uint16_t old, used_event;
	bool valid;

	if (!q->ready)
		return false;
	/* Our used index must be visible before we read the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(load16(q->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = q->signalled;
	valid = q->signalled_valid;
	q->signalled = q->used_idx;
	q->signalled_valid = true;
	if (!valid)
		return true;
	used_event = load16(q->avail + 4 + 2 * (size_t)q->size);
	/* vring_need_event: used_event lies in [old, new). */
	return (uint16_t)(q->used_idx - used_event - 1) < (uint16_t)(q->used_idx - old);
}

void vq_disable_notify(struct vq *q)
{
	if (!q->ready || q->notify_off)
		return;
	q->notify_off = true;
	/* With event index, the avail_event we stop updating does the job. */
	if (!q->event_idx)
		used_store16(q, 0, VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool vq_enable_notify(struct vq *q)
{
	if (!q->ready)
		return false;
	q->notify_off = false;
	if (q->event_idx)
		used_store16(q, 4 + 8 * (size_t)q->size, q->last_avail, __ATOMIC_RELAXED);
	else
		used_store16(q, 0, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16_acquire(q->avail + 2) != q->last_avail;
}

bool vq_has_work(struct vq *q)
{
	return q->ready && !q->broken && load16_acquire(q->avail + 2) != q->last_avail;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		l = iov[i].iov_len - off;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + off, l);
		done += l;
		off = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		l = iov[i].iov_len - off;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)buf + done, l);
		done += l;
		off = 0;
	}
	return done;
}
