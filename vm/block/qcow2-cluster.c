/* qcow2 L1/L2 mapping: finding where guest bytes live, allocating clusters
 * for writes (copy on write for shared ones), zeroing and discarding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/block/qcow2.h"
#include "common/util.h"

enum qcow2_ctype qcow2_entry_type(const struct qcow2 *s, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return QC_COMPRESSED;
	if (s->version >= 3 && (e & QCOW2_OFLAG_ZERO))
		return QC_ZERO;
	return e & QCOW2_OFFSET_MASK ? QC_NORMAL : QC_UNALLOC;
}

int qcow2_l2_offset_ok(struct qcow2 *s, uint64_t l1i, uint64_t l2off, struct tv_err *err)
{
	if (l2off & (s->cluster_size - 1))
		return qcow2_corrupt(s, err, "L2 table at unaligned offset %llu (L1 index %llu)",
				     (unsigned long long)l2off, (unsigned long long)l1i);
	if (l2off >= s->fresh_from)
		return qcow2_corrupt(s, err, "L2 table at %llu (L1 index %llu) is past the end of "
					     "the file",
				     (unsigned long long)l2off, (unsigned long long)l1i);
	return 0;
}

int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, uint64_t *run, uint64_t *host,
	      uint64_t *l2e, bool *copied, enum qcow2_ctype *type, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, l1i = off >> (s->cluster_bits + s->l2_bits);
	uint64_t l2i = (off >> s->cluster_bits) & (s->l2_entries - 1), in = off & (cs - 1);
	uint64_t avail = ((s->l2_entries - l2i) << s->cluster_bits) - in, l2off, e, n;
	uint64_t *l2;
	enum qcow2_ctype t;

	len = MIN(len, avail);
	*host = 0;
	*l2e = 0;
	*copied = false;
	*type = QC_UNALLOC;
	*run = len;
	if (l1i >= s->l1_size || !(l2off = s->l1[l1i] & QCOW2_OFFSET_MASK))
		return 0;
	if (qcow2_l2_offset_ok(s, l1i, l2off, err) < 0 ||
	    qcow2_cache_get(s, s->l2_cache, l2off, false, (void **)&l2, err) < 0)
		return -1;
	e = qcow2_be64(&l2[l2i]);
	t = qcow2_entry_type(s, e);
	*type = t;
	*l2e = e;
	*copied = e & QCOW2_OFLAG_COPIED;
	n = 1;
	if (t == QC_NORMAL) {
		if ((e & QCOW2_OFFSET_MASK) & (cs - 1)) {
			qcow2_cache_put(s->l2_cache, l2);
			return qcow2_corrupt(s, err, "data cluster at unaligned offset %llu",
					     (unsigned long long)(e & QCOW2_OFFSET_MASK));
		}
		*host = (e & QCOW2_OFFSET_MASK) + in;
		while (n * cs < in + len) {
			uint64_t x = qcow2_be64(&l2[l2i + n]);
			if (qcow2_entry_type(s, x) != QC_NORMAL ||
			    (x & QCOW2_OFFSET_MASK) != (e & QCOW2_OFFSET_MASK) + n * cs ||
			    (x & QCOW2_OFLAG_COPIED) != (e & QCOW2_OFLAG_COPIED))
				break;
			n++;
		}
	} else if (t != QC_COMPRESSED) {
		while (n * cs < in + len && qcow2_entry_type(s, qcow2_be64(&l2[l2i + n])) == t)
			n++;
	}
	qcow2_cache_put(s->l2_cache, l2);
	*run = MIN(len, n * cs - in);
	return 0;
}

/* Reads guest bytes (disk or VM state area); the caller holds the image lock
 * in either mode. */
int qcow2_read_range(struct qcow2 *s, uint8_t *buf, uint64_t len, uint64_t off,
		     struct tv_err *err)
{
	struct blk *b = s->b;

	while (len > 0) {
		uint64_t run, host, e;
		bool copied;
		enum qcow2_ctype t;
		int rc;

		pthread_mutex_lock(&s->cache_lock);
		rc = qcow2_map(s, off, len, &run, &host, &e, &copied, &t, err);
		pthread_mutex_unlock(&s->cache_lock);
		if (rc < 0)
			return -1;
		switch (t) {
		case QC_NORMAL:
			if (blk_data_pread(b, buf, run, host) < 0)
				return tv_errno(err, "%s: read at %llu failed", b->path,
						(unsigned long long)host);
			break;
		case QC_COMPRESSED: {
			uint8_t *c = xmalloc(s->cluster_size);
			rc = qcow2_decompress(s, e, c, err);
			if (rc == 0)
				memcpy(buf, c + (off & (s->cluster_size - 1)), run);
			free(c);
			if (rc < 0)
				return -1;
			break;
		}
		case QC_ZERO:
			memset(buf, 0, run);
			break;
		case QC_UNALLOC: {
			uint64_t bsize = b->backing && off < b->size ? blk_size(b->backing) : 0;
			uint64_t from = off < bsize ? MIN(run, bsize - off) : 0;
			if (from && blk_pread(b->backing, buf, from, off, err) < 0)
				return -1;
			memset(buf + from, 0, run - from);
			break;
		}
		}
		buf += run;
		off += run;
		len -= run;
	}
	return 0;
}

static void l1_set(struct qcow2 *s, uint64_t l1i, uint64_t v)
{
	s->l1[l1i] = v;
	s->l1_dirty_lo = MIN(s->l1_dirty_lo, (uint32_t)l1i);
	s->l1_dirty_hi = MAX(s->l1_dirty_hi, (uint32_t)l1i + 1);
}

int qcow2_write_l1(struct qcow2 *s, struct tv_err *err)
{
	uint32_t lo = s->l1_dirty_lo, hi = s->l1_dirty_hi;
	uint64_t *be;

	if (lo >= hi)
		return 0;
	be = xmalloc((size_t)(hi - lo) * 8);
	for (uint32_t i = lo; i < hi; i++)
		qcow2_put_be64(&be[i - lo], s->l1[i]);
	if (pwrite_full(s->b->fd, be, (size_t)(hi - lo) * 8, s->l1_offset + (uint64_t)lo * 8) < 0) {
		free(be);
		return tv_errno(err, "%s: cannot write the L1 table", s->b->path);
	}
	free(be);
	s->l1_dirty_lo = UINT32_MAX;
	s->l1_dirty_hi = 0;
	return 0;
}

/* A bigger L1 table: written whole at a new place, then the header switched
 * to it in one write, then the old one freed. */
int qcow2_grow_l1(struct qcow2 *s, uint64_t min_size, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, size = MAX(min_size, (uint64_t)s->l1_size * 3 / 2);
	uint64_t bytes, newoff, old = s->l1_offset, oldbytes = (uint64_t)s->l1_size * 8;
	uint64_t *l1, *be;
	uint8_t hdr[12];

	if (min_size <= s->l1_size)
		return 0;
	if (min_size * 8 > QCOW2_MAX_L1_BYTES)
		return tv_errf(err, "%s: L1 table would exceed %llu bytes (disk too large for "
				    "this cluster size)",
			       s->b->path, (unsigned long long)QCOW2_MAX_L1_BYTES);
	size = MIN(size, QCOW2_MAX_L1_BYTES / 8);
	bytes = ALIGN_UP(size * 8, cs);
	size = bytes / 8;
	if (qcow2_flush_locked(s, err) < 0)
		return -1;
	newoff = qcow2_alloc_clusters(s, bytes / cs, err);
	if (!newoff)
		return -1;
	l1 = xcalloc(size, 8);
	be = xcalloc(size, 8);
	memcpy(l1, s->l1, oldbytes);
	for (uint64_t i = 0; i < s->l1_size; i++)
		qcow2_put_be64(&be[i], s->l1[i]);
	if (pwrite_full(s->b->fd, be, bytes, newoff) < 0) {
		free(l1);
		free(be);
		return tv_errno(err, "%s: cannot write the L1 table", s->b->path);
	}
	free(be);
	/* The new table's refcounts and contents reach the disk before the
	 * header points to them. */
	if (qcow2_cache_write_dirty(s, s->rb_cache, err) < 0 || qcow2_sync(s, err) < 0)
		goto fail;
	qcow2_put_be32(hdr, (uint32_t)size);
	qcow2_put_be64(hdr + 4, newoff);
	if (qcow2_header_write(s, QH_L1_SIZE, hdr, 12, err) < 0 || qcow2_sync(s, err) < 0)
		goto fail;
	free(s->l1);
	s->l1 = l1;
	s->l1_size = (uint32_t)size;
	s->l1_offset = newoff;
	if (old && oldbytes)
		return qcow2_refcount_update(s, old, ALIGN_UP(oldbytes, cs), -1, err);
	return 0;
fail:
	free(l1);
	return -1;
}

/* The L2 table for L1 index l1i, ready to be changed: allocated when absent,
 * copied when shared with a snapshot. Pinned; put it back when done. */
int qcow2_l2_get_for_write(struct qcow2 *s, uint64_t l1i, uint64_t **l2, struct tv_err *err)
{
	uint64_t e = s->l1[l1i], off = e & QCOW2_OFFSET_MASK, newoff;
	void *old, *t;

	if (off && (e & QCOW2_OFLAG_COPIED))
		return qcow2_l2_offset_ok(s, l1i, off, err) < 0
			       ? -1
			       : qcow2_cache_get(s, s->l2_cache, off, false, (void **)l2, err);
	if (off && qcow2_l2_offset_ok(s, l1i, off, err) < 0)
		return -1;
	newoff = qcow2_alloc_clusters(s, 1, err);
	if (!newoff)
		return -1;
	if (qcow2_cache_get(s, s->l2_cache, newoff, true, &t, err) < 0)
		return -1;
	if (off) {
		if (qcow2_cache_get(s, s->l2_cache, off, false, &old, err) < 0) {
			qcow2_cache_put(s->l2_cache, t);
			return -1;
		}
		memcpy(t, old, s->cluster_size);
		qcow2_cache_put(s->l2_cache, old);
		qcow2_free_deferred(s, off, s->cluster_size);
	}
	qcow2_cache_mark_dirty(s->l2_cache, t);
	l1_set(s, l1i, newoff | QCOW2_OFLAG_COPIED);
	*l2 = t;
	return 0;
}

static void free_entry(struct qcow2 *s, uint64_t e)
{
	uint64_t off, len;

	switch (qcow2_entry_type(s, e)) {
	case QC_COMPRESSED:
		qcow2_compressed_range(s, e, &off, &len);
		qcow2_free_deferred(s, off, len);
		break;
	case QC_NORMAL:
	case QC_ZERO:
		if ((off = e & QCOW2_OFFSET_MASK))
			qcow2_free_deferred(s, off, s->cluster_size);
		break;
	default:
		break;
	}
}

/* Data may never land on the header or the tables a hostile image points
 * its clusters at. Returns what it would overwrite, or NULL. */
const char *qcow2_overlaps_meta(const struct qcow2 *s, uint64_t host, uint64_t len)
{
	uint64_t end = host + len;
	struct {
		uint64_t off, len;
		const char *what;
	} meta[] = {
		{0, s->cluster_size, "the header"},
		{s->l1_offset, (uint64_t)s->l1_size * 8, "the L1 table"},
		{s->rt_offset, (uint64_t)s->rt_clusters * s->cluster_size, "the refcount table"},
		{s->snapshots_offset, s->snapshots_size, "the snapshot table"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(meta); i++)
		if (meta[i].len && host < meta[i].off + meta[i].len && meta[i].off < end)
			return meta[i].what;
	return NULL;
}

static int data_overlaps(struct qcow2 *s, uint64_t host, uint64_t len, struct tv_err *err)
{
	const char *what = qcow2_overlaps_meta(s, host, len);

	if (what)
		return qcow2_corrupt(s, err, "data cluster at %llu overlaps %s",
				     (unsigned long long)host, what);
	return 0;
}

/* Writes into clusters that need allocating: whole new clusters, the parts
 * the request does not cover filled from the old contents. */
/* True when the old contents of these k clusters are all zeros. */
static bool old_is_zero(struct qcow2 *s, const uint64_t *l2, uint64_t l2i, uint64_t k,
			uint64_t gbase)
{
	uint64_t bsize = s->b->backing ? blk_size(s->b->backing) : 0;

	for (uint64_t i = 0; i < k; i++) {
		enum qcow2_ctype t = qcow2_entry_type(s, qcow2_be64(&l2[l2i + i]));
		if (t == QC_NORMAL || t == QC_COMPRESSED)
			return false;
		if (t == QC_UNALLOC && gbase + i * s->cluster_size < bsize)
			return false;
	}
	return true;
}

static int write_new_clusters(struct qcow2 *s, uint64_t *l2, uint64_t l2i, uint64_t k,
			      const uint8_t *buf, uint64_t bytes, uint64_t off,
			      struct qcow2_wq *wq, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, in = off & (cs - 1), gbase = off - in, host;
	uint64_t end = in + bytes; /* relative to gbase */
	bool zero_old = old_is_zero(s, l2, l2i, k, gbase);
	uint8_t *tmp = NULL;
	int rc = -1, saved;

	host = qcow2_alloc_clusters(s, k, err);
	if (!host)
		return -1;
	if (zero_old && s->last_alloc_fresh) {
		/* Never-written clusters read as zeros already: only the new
		 * bytes need writing, and that can wait for the lock's release. */
		if (wq && wq->n < ARRAY_SIZE(wq->r)) {
			wq->r[wq->n++] = (struct qcow2_wreq){host + in, buf, bytes};
			__atomic_add_fetch(&s->alloc_inflight, 1, __ATOMIC_ACQ_REL);
		} else if (blk_data_pwrite(s->b, buf, bytes, host + in) < 0) {
			goto io;
		}
		goto map;
	}
	/* Head and tail clusters only partly written: merge with old data. */
	for (int side = 0; side < 2; side++) {
		uint64_t c = side == 0 ? 0 : k - 1, cstart = c * cs, cend = cstart + cs;
		uint64_t lo = MAX(in, cstart), hi = MIN(end, cend);
		if (side == 1 && k == 1)
			break;
		if (lo == cstart && hi == cend) {
			if (blk_data_pwrite(s->b, buf + (cstart - in), cs, host + cstart) < 0)
				goto io;
			continue;
		}
		if (!tmp && posix_memalign((void **)&tmp, 4096, cs) != 0) {
			tmp = NULL;
			tv_errf(err, "%s: out of memory", s->b->path);
			goto out;
		}
		if (qcow2_read_range(s, tmp, cs, gbase + cstart, err) < 0)
			goto out;
		memcpy(tmp + (lo - cstart), buf + (lo - in), hi - lo);
		if (blk_data_pwrite(s->b, tmp, cs, host + cstart) < 0)
			goto io;
	}
	if (k > 2 && blk_data_pwrite(s->b, buf + (cs - in), (k - 2) * cs, host + cs) < 0)
		goto io;
map:
	s->deps_unsynced = true; /* the L2 table goes out after this data */
	for (uint64_t i = 0; i < k; i++) {
		free_entry(s, qcow2_be64(&l2[l2i + i]));
		qcow2_put_be64(&l2[l2i + i], (host + i * cs) | QCOW2_OFLAG_COPIED);
	}
	qcow2_cache_mark_dirty(s->l2_cache, l2);
	rc = 0;
	goto out;
io:
	tv_errno(err, "%s: write at %llu failed", s->b->path, (unsigned long long)host);
	/* Nothing points to the clusters yet: they go back, so a full disk
	 * leaves no leak behind (the request is retried whole). Should that
	 * fail too they stay allocated and unreferenced: a leak, never damage. */
	saved = errno;
	(void)qcow2_refcount_update(s, host, k * cs, -1, NULL);
	errno = saved;
out:
	free(tmp);
	return rc;
}

int qcow2_write_alloc(struct qcow2 *s, const uint8_t *buf, uint64_t len, uint64_t off,
		      struct qcow2_wq *wq, struct tv_err *err)
{
	uint64_t cs = s->cluster_size;

	if (qcow2_mark_dirty(s, err) < 0)
		return -1;
	while (len > 0) {
		uint64_t l1i = off >> (s->cluster_bits + s->l2_bits);
		uint64_t l2i = (off >> s->cluster_bits) & (s->l2_entries - 1), in = off & (cs - 1);
		uint64_t avail = MIN(len, ((s->l2_entries - l2i) << s->cluster_bits) - in);
		uint64_t ncl = (in + avail + cs - 1) / cs, k, e, bytes, *l2;
		int rc;

		if (l1i >= s->l1_size && qcow2_grow_l1(s, l1i + 1, err) < 0)
			return -1;
		if (qcow2_l2_get_for_write(s, l1i, &l2, err) < 0)
			return -1;
		e = qcow2_be64(&l2[l2i]);
		k = 0;
		if (qcow2_entry_type(s, e) == QC_NORMAL && (e & QCOW2_OFLAG_COPIED)) {
			uint64_t host = e & QCOW2_OFFSET_MASK;
			while (k < ncl) {
				uint64_t x = qcow2_be64(&l2[l2i + k]);
				if (qcow2_entry_type(s, x) != QC_NORMAL || !(x & QCOW2_OFLAG_COPIED) ||
				    (x & QCOW2_OFFSET_MASK) != host + k * cs)
					break;
				k++;
			}
			bytes = MIN(avail, k * cs - in);
			rc = data_overlaps(s, host + in, bytes, err);
			if (rc == 0 && blk_data_pwrite(s->b, buf, bytes, host + in) < 0)
				rc = tv_errno(err, "%s: write at %llu failed", s->b->path,
					      (unsigned long long)(host + in));
		} else {
			while (k < ncl) {
				uint64_t x = qcow2_be64(&l2[l2i + k]);
				if (qcow2_entry_type(s, x) == QC_NORMAL && (x & QCOW2_OFLAG_COPIED))
					break;
				k++;
			}
			bytes = MIN(avail, k * cs - in);
			rc = write_new_clusters(s, l2, l2i, k, buf, bytes, off, wq, err);
		}
		qcow2_cache_put(s->l2_cache, l2);
		if (rc < 0)
			return -1;
		buf += bytes;
		off += bytes;
		len -= bytes;
	}
	return 0;
}

/* Whole clusters of [off, off+len) read as zeros afterwards: unallocated
 * where nothing shows through, zero clusters where a backing file would. */
int qcow2_zero_clusters(struct qcow2 *s, uint64_t off, uint64_t len, bool zero,
			struct tv_err *err)
{
	uint64_t cs = s->cluster_size;
	uint64_t bsize = s->b->backing ? blk_size(s->b->backing) : 0;

	if (qcow2_mark_dirty(s, err) < 0)
		return -1;
	while (len > 0) {
		uint64_t l1i = off >> (s->cluster_bits + s->l2_bits);
		uint64_t l2i = (off >> s->cluster_bits) & (s->l2_entries - 1);
		uint64_t n = MIN(len >> s->cluster_bits, s->l2_entries - l2i), *l2;
		bool shows_backing = off < bsize;

		if (l1i >= s->l1_size)
			break;
		if (!(s->l1[l1i] & QCOW2_OFFSET_MASK) && !shows_backing)
			goto next;
		if (qcow2_l2_get_for_write(s, l1i, &l2, err) < 0)
			return -1;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t e = qcow2_be64(&l2[l2i + i]);
			uint64_t want = (off + i * cs < bsize) ? QCOW2_OFLAG_ZERO : 0;
			if (e == want)
				continue;
			free_entry(s, e);
			qcow2_put_be64(&l2[l2i + i], want);
			qcow2_cache_mark_dirty(s->l2_cache, l2);
		}
		qcow2_cache_put(s->l2_cache, l2);
next:
		off += n * cs;
		len -= n * cs;
	}
	return 0;
}
