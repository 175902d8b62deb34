/* qcow2 refcounts: reading and updating them, allocating clusters, freeing
 * them in a crash-safe order, and the consistency check that rebuilds them. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/block/qcow2.h"
#include "common/util.h"

static uint64_t rb_entry_get(const struct qcow2 *s, const uint8_t *rb, uint64_t i)
{
	switch (s->refcount_order) {
	case 0:
	case 1:
	case 2: {
		unsigned bits = 1u << s->refcount_order, per = 8 / bits;
		return (rb[i / per] >> (bits * (i % per))) & ((1u << bits) - 1);
	}
	case 3:
		return rb[i];
	case 4:
		return qcow2_be16(rb + 2 * i);
	case 5:
		return qcow2_be32(rb + 4 * i);
	default:
		return qcow2_be64(rb + 8 * i);
	}
}

static void rb_entry_set(const struct qcow2 *s, uint8_t *rb, uint64_t i, uint64_t v)
{
	switch (s->refcount_order) {
	case 0:
	case 1:
	case 2: {
		unsigned bits = 1u << s->refcount_order, per = 8 / bits;
		unsigned shift = bits * (i % per), mask = ((1u << bits) - 1) << shift;
		rb[i / per] = (uint8_t)((rb[i / per] & ~mask) | ((v << shift) & mask));
		break;
	}
	case 3:
		rb[i] = (uint8_t)v;
		break;
	case 4:
		qcow2_put_be16(rb + 2 * i, (uint16_t)v);
		break;
	case 5:
		qcow2_put_be32(rb + 4 * i, (uint32_t)v);
		break;
	default:
		qcow2_put_be64(rb + 8 * i, v);
	}
}

static int rb_offset_ok(struct qcow2 *s, uint64_t rti, uint64_t off, struct tv_err *err)
{
	if (off & (s->cluster_size - 1) || off == 0)
		return qcow2_corrupt(s, err, "refcount block %llu at unaligned offset %llu",
				     (unsigned long long)rti, (unsigned long long)off);
	/* Tables are written before anything points to them: one past the end
	 * of the file is damage, and must not be written back out there. */
	if (off >= s->fresh_from)
		return qcow2_corrupt(s, err, "refcount block %llu at %llu is past the end of the file",
				     (unsigned long long)rti, (unsigned long long)off);
	return 0;
}

int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *rc, struct tv_err *err)
{
	uint64_t rti = cluster / s->rb_entries, off;
	void *rb;

	*rc = 0;
	if (rti >= s->rt_entries || !(off = s->rt[rti] & QCOW2_OFFSET_MASK))
		return 0;
	if (rb_offset_ok(s, rti, off, err) < 0 ||
	    qcow2_cache_get(s, s->rb_cache, off, false, &rb, err) < 0)
		return -1;
	*rc = rb_entry_get(s, rb, cluster % s->rb_entries);
	qcow2_cache_put(s->rb_cache, rb);
	return 0;
}

/* A bigger refcount table at the first range no table entry covers: new
 * refcount blocks describing themselves and the table, then the table, then
 * the header switch; the old table is freed last. */
static int rt_grow(struct qcow2 *s, uint64_t need_index, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, per_cluster = cs / 8, range = s->rb_entries * cs;
	/* The first range past everything ever written: nothing there is in
	 * use, whatever the old table says. */
	uint64_t m = (s->fresh_from + range - 1) / range, nr = 1, nt = 0, entries = 0;
	uint64_t base, *rt;
	uint8_t *blocks, hdr[12];
	uint64_t old_off = s->rt_offset, old_clusters = s->rt_clusters;

	for (int it = 0; it < 64; it++) {
		uint64_t want = MAX(MAX(m + nr, need_index + 1),
				    MIN(2 * s->rt_entries, QCOW2_MAX_RT_BYTES / 8));
		entries = ALIGN_UP(want, per_cluster);
		nt = entries / per_cluster;
		uint64_t nr2 = (nr + nt + s->rb_entries - 1) / s->rb_entries;
		if (nr2 <= nr)
			break;
		nr = nr2;
	}
	if (entries * 8 > QCOW2_MAX_RT_BYTES)
		return tv_errf(err, "%s: refcount table would exceed %llu bytes", s->b->path,
			       (unsigned long long)QCOW2_MAX_RT_BYTES);
	if (m > (1ull << 56) / range)
		return tv_errf(err, "%s: image full (offsets past 2^56)", s->b->path);
	base = m * range;
	blocks = xcalloc(nr, cs);
	for (uint64_t c = 0; c < nr + nt; c++)
		rb_entry_set(s, blocks + (c / s->rb_entries) * cs, c % s->rb_entries, 1);
	rt = xcalloc(entries, 8);
	for (uint64_t i = 0; i < MIN(s->rt_entries, entries); i++)
		qcow2_put_be64(&rt[i], s->rt[i]);
	for (uint64_t j = 0; j < nr; j++)
		qcow2_put_be64(&rt[m + j], base + j * cs);
	if (pwrite_full(s->b->fd, blocks, nr * cs, base) < 0 ||
	    pwrite_full(s->b->fd, rt, entries * 8, base + nr * cs) < 0) {
		free(blocks);
		free(rt);
		return tv_errno(err, "%s: cannot write the refcount table", s->b->path);
	}
	free(blocks);
	s->fresh_from = MAX(s->fresh_from, base + (nr + entries * 8 / cs) * cs);
	if (qcow2_sync(s, err) < 0) {
		free(rt);
		return -1;
	}
	qcow2_put_be64(hdr, base + nr * cs);
	qcow2_put_be32(hdr + 8, (uint32_t)nt);
	if (qcow2_header_write(s, QH_RT_OFFSET, hdr, 12, err) < 0 || qcow2_sync(s, err) < 0) {
		free(rt);
		return -1;
	}
	for (uint64_t i = 0; i < entries; i++)
		rt[i] = qcow2_be64(&rt[i]);
	free(s->rt);
	s->rt = rt;
	s->rt_entries = entries;
	s->rt_offset = base + nr * cs;
	s->rt_clusters = (uint32_t)nt;
	return qcow2_refcount_update(s, old_off, old_clusters * cs, -1, err);
}

/* A refcount block for range rti, placed at the range's first cluster (free,
 * since no refcount of the range exists yet) and counting itself. */
static int rb_create(struct qcow2 *s, uint64_t rti, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, off = rti * s->rb_entries * cs, be;
	uint8_t *rb;

	/* Allocation brings its own blocks: a count for a cluster in a range
	 * with none, past anything ever written, comes from a table pointing
	 * where no data can be. */
	if (off >= s->fresh_from)
		return qcow2_corrupt(s, err, "a table points to cluster %llu, past the end of the image",
				     (unsigned long long)(rti * s->rb_entries));
	if (rti >= s->rt_entries && rt_grow(s, rti, err) < 0)
		return -1;
	if (s->rt[rti])
		return 0; /* the new table's own blocks covered it */
	if (s->in_repair) {
		struct stat st;
		if (fstat(s->b->fd, &st) == 0 && off < (uint64_t)st.st_size)
			return tv_errf(err, "%s: refcount block %llu is missing inside the image; "
					    "cannot repair it in place",
				       s->b->path, (unsigned long long)rti);
	}
	rb = xcalloc(1, cs);
	rb_entry_set(s, rb, 0, 1);
	if (pwrite_full(s->b->fd, rb, cs, off) < 0) {
		free(rb);
		return tv_errno(err, "%s: cannot write a refcount block", s->b->path);
	}
	free(rb);
	s->fresh_from = MAX(s->fresh_from, off + cs);
	qcow2_cache_drop(s->rb_cache, off);
	if (qcow2_sync(s, err) < 0)
		return -1;
	qcow2_put_be64(&be, off);
	if (pwrite_full(s->b->fd, &be, 8, s->rt_offset + rti * 8) < 0)
		return tv_errno(err, "%s: cannot write the refcount table", s->b->path);
	s->rt[rti] = off;
	return qcow2_sync(s, err);
}

int qcow2_refcount_set(struct qcow2 *s, uint64_t cluster, uint64_t rc, struct tv_err *err)
{
	uint64_t rti = cluster / s->rb_entries, off;
	void *rb;

	if (rc > s->refcount_max)
		return tv_errf(err, "%s: refcount of cluster %llu would overflow %d bits", s->b->path,
			       (unsigned long long)cluster, s->refcount_bits);
	if (rti >= s->rt_entries || !s->rt[rti]) {
		if (rc == 0)
			return 0;
		if (rb_create(s, rti, err) < 0)
			return -1;
	}
	off = s->rt[rti] & QCOW2_OFFSET_MASK;
	if (rb_offset_ok(s, rti, off, err) < 0 ||
	    qcow2_cache_get(s, s->rb_cache, off, false, &rb, err) < 0)
		return -1;
	rb_entry_set(s, rb, cluster % s->rb_entries, rc);
	qcow2_cache_mark_dirty(s->rb_cache, rb);
	qcow2_cache_put(s->rb_cache, rb);
	return 0;
}

int qcow2_refcount_update(struct qcow2 *s, uint64_t off, uint64_t len, int delta,
			  struct tv_err *err)
{
	uint64_t first, last, rc;

	if (len == 0)
		return 0;
	first = off >> s->cluster_bits;
	last = (off + len - 1) >> s->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		if (qcow2_refcount_get(s, c, &rc, err) < 0)
			return -1;
		if (delta < 0 && rc < (uint64_t)-delta)
			return qcow2_corrupt(s, err, "refcount of cluster %llu would drop below 0",
					     (unsigned long long)c);
		rc += (uint64_t)(int64_t)delta;
		if (qcow2_refcount_set(s, c, rc, err) < 0)
			return -1;
		if (rc == 0) {
			uint64_t coff = c << s->cluster_bits;
			/* A freed table must never be written back over its reuse. */
			qcow2_cache_drop(s->l2_cache, coff);
			qcow2_cache_drop(s->rb_cache, coff);
			if (s->compressed_next >> s->cluster_bits == c)
				s->compressed_next = 0;
			if (c < s->free_hint)
				s->free_hint = c;
		}
	}
	return 0;
}

static bool rb_missing(const struct qcow2 *s, uint64_t r)
{
	return r >= s->rt_entries || !s->rt[r];
}

/* Finds n free clusters in a row from the search start; returns the first
 * or UINT64_MAX with err set. */
static uint64_t find_free_run(struct qcow2 *s, uint64_t n, struct tv_err *err)
{
	/* Single clusters fill holes from the first free one; runs search on
	 * from where the last run ended, so growing an image never rescans it. */
	uint64_t c = n == 1 ? s->free_hint : MAX(s->free_hint, s->run_hint), start = c, run = 0;
	uint64_t rc;

	for (;; c++) {
		if ((c + 1) << s->cluster_bits > (1ull << 56)) {
			tv_errf(err, "%s: image full (offsets past 2^56)", s->b->path);
			return UINT64_MAX;
		}
		/* Past everything ever written nothing can be in use (a hostile
		 * refcount table claiming otherwise must not make this scan
		 * endless). */
		if (c << s->cluster_bits >= s->fresh_from)
			rc = 0;
		else if (qcow2_refcount_get(s, c, &rc, err) < 0)
			return UINT64_MAX;
		if (rc) {
			run = 0;
			start = c + 1;
			if (c == s->free_hint)
				s->free_hint = c + 1;
			continue;
		}
		if (++run == n)
			return start;
	}
}

/* The run [start+m, start+m+n) where the m ranges it and the new blocks
 * touch get their refcount blocks at [start, start+m): all written, and the
 * refcount table pointing to them, before any cluster is handed out. */
static uint64_t alloc_with_new_blocks(struct qcow2 *s, uint64_t start, uint64_t n, uint64_t span,
				      struct tv_err *err)
{
	uint64_t cs = s->cluster_size, rb = s->rb_entries;
	uint64_t r0 = start / rb, r1 = (start + span - 1) / rb, m = 0, *ranges;
	uint8_t *blocks;
	uint64_t result = 0;

	ranges = xcalloc(r1 - r0 + 1, sizeof(*ranges));
	for (uint64_t r = r0; r <= r1; r++)
		if (rb_missing(s, r))
			ranges[m++] = r;
	blocks = xcalloc(m, cs);
	/* Refcount 1 for the blocks and the run, in the new blocks or the
	 * existing ones. */
	for (uint64_t c = start; c < start + m + n; c++) {
		uint64_t r = c / rb, j;
		for (j = 0; j < m && ranges[j] != r; j++)
			;
		if (j < m)
			rb_entry_set(s, blocks + j * cs, c % rb, 1);
		else if (qcow2_refcount_set(s, c, 1, err) < 0)
			goto out;
	}
	for (uint64_t j = 0; j < m; j++)
		if (pwrite_full(s->b->fd, blocks + j * cs, cs, (start + j) * cs) < 0) {
			tv_errno(err, "%s: cannot write a refcount block", s->b->path);
			goto out;
		}
	s->fresh_from = MAX(s->fresh_from, (start + m) * cs);
	/* A new block may be counted in an existing one: that count reaches
	 * the disk before the table points to the new block. */
	if (qcow2_cache_write_dirty(s, s->rb_cache, err) < 0 || qcow2_sync(s, err) < 0)
		goto out;
	for (uint64_t j = 0; j < m; j++) {
		uint64_t be;
		qcow2_put_be64(&be, (start + j) * cs);
		if (pwrite_full(s->b->fd, &be, 8, s->rt_offset + ranges[j] * 8) < 0) {
			tv_errno(err, "%s: cannot write the refcount table", s->b->path);
			goto out;
		}
		s->rt[ranges[j]] = (start + j) * cs;
		qcow2_cache_drop(s->rb_cache, (start + j) * cs);
	}
	if (qcow2_sync(s, err) < 0)
		goto out;
	result = start + m;
out:
	free(blocks);
	free(ranges);
	return result;
}

/* Data for fresh clusters at the end of the file is written outside the
 * image lock, so several requests' writes may be in flight at once; but a
 * direct (O_DIRECT) write past the end of a file runs alone in the host
 * file system, the file size changing under it. When such writes overlap,
 * the file is grown ahead in chunks with fallocate: the writes then land
 * inside it and run in parallel (about 3x faster at 32 in flight on ext4).
 * A lone writer gains nothing there and would pay for converting the
 * preallocated extents, so only overlapping ones grow it. The unused rest
 * is cut off again at close. */
static void grow_ahead(struct qcow2 *s, uint64_t from, uint64_t end)
{
	uint64_t chunk = MAX(QCOW2_GROW_CHUNK, 4 * s->cluster_size);

	if (s->no_grow_ahead || s->b->dfd == s->b->fd || end <= s->grown_to ||
	    !__atomic_load_n(&s->alloc_inflight, __ATOMIC_ACQUIRE))
		return;
	from = MAX(from, s->grown_to);
	end = ALIGN_UP(end + chunk, chunk);
	if (end > INT64_MAX || fallocate(s->b->fd, 0, (off_t)from, (off_t)(end - from)) < 0) {
		s->no_grow_ahead = true; /* not supported here: extend as we go */
		return;
	}
	s->grown_to = end;
}

uint64_t qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, struct tv_err *err)
{
	uint64_t start, first, rb = s->rb_entries;
	/* Room for the refcount blocks of every range n + extra clusters touch. */
	uint64_t extra = (n + rb) / (rb - 1) + 3;

	if (n == 0)
		n = 1;
	if (s->free_hint == 0)
		s->free_hint = 1;
retry:
	start = find_free_run(s, n, err);
	if (start == UINT64_MAX)
		return 0;
	first = start;
	for (uint64_t r = start / rb; r <= (start + n - 1) / rb; r++) {
		if (!rb_missing(s, r))
			continue;
		/* Some range has no refcount block yet: take a longer run and
		 * put the blocks at its head. */
		start = find_free_run(s, n + extra, err);
		if (start == UINT64_MAX)
			return 0;
		if ((start + n + extra - 1) / rb >= s->rt_entries) {
			/* The bigger table lands past everything written,
			 * perhaps where this run was: look again. */
			if (rt_grow(s, (start + n + extra - 1) / rb, err) < 0)
				return 0;
			goto retry;
		}
		first = alloc_with_new_blocks(s, start, n, n + extra, err);
		if (!first)
			return 0;
		goto done;
	}
	for (uint64_t c = start; c < start + n; c++)
		if (qcow2_refcount_set(s, c, 1, err) < 0)
			return 0;
done:
	if (start == s->free_hint)
		s->free_hint = first + n;
	if (n > 1)
		s->run_hint = first + n;
	s->last_alloc_fresh = first << s->cluster_bits >= s->fresh_from;
	s->fresh_from = MAX(s->fresh_from, (first + n) << s->cluster_bits);
	if (s->last_alloc_fresh)
		grow_ahead(s, first << s->cluster_bits, (first + n) << s->cluster_bits);
	return first << s->cluster_bits;
}

void qcow2_free_deferred(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (s->nfrees && s->frees[s->nfrees - 1].offset + s->frees[s->nfrees - 1].len == off &&
	    !(off & (s->cluster_size - 1)) && !(len & (s->cluster_size - 1))) {
		s->frees[s->nfrees - 1].len += len;
		return;
	}
	if (s->nfrees == s->frees_cap) {
		s->frees_cap = s->frees_cap ? 2 * s->frees_cap : 64;
		s->frees = xreallocarray(s->frees, s->frees_cap, sizeof(*s->frees));
	}
	s->frees[s->nfrees++] = (struct qcow2_free){off, len};
}

int qcow2_apply_deferred_frees(struct qcow2 *s, struct tv_err *err)
{
	int rc = 0;

	/* A data write still in flight may target a cluster on this list (a
	 * guest discarding what it is writing): keep them for the next flush. */
	if (__atomic_load_n(&s->alloc_inflight, __ATOMIC_ACQUIRE))
		return 0;
	for (size_t i = 0; i < s->nfrees && rc == 0; i++)
		rc = qcow2_refcount_update(s, s->frees[i].offset, s->frees[i].len, -1, err);
	s->nfrees = 0;
	return rc;
}

/* Adds delta to the refcount of every table and cluster an L1 table points
 * to (snapshot create/apply/delete). */
int qcow2_table_refs(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, int delta,
		     struct tv_err *err)
{
	uint64_t *l2 = xmalloc(s->cluster_size);
	int rc = -1;

	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if (qcow2_l2_offset_ok(s, i, l2off, err) < 0)
			goto out;
		if (blk_file_pread(s->b->fd, l2, s->cluster_size, l2off) < 0) {
			tv_errno(err, "%s: cannot read an L2 table", s->b->path);
			goto out;
		}
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = qcow2_be64(&l2[j]), off, len;
			switch (qcow2_entry_type(s, e)) {
			case QC_COMPRESSED:
				qcow2_compressed_range(s, e, &off, &len);
				break;
			case QC_NORMAL:
			case QC_ZERO:
				off = e & QCOW2_OFFSET_MASK;
				len = off ? s->cluster_size : 0;
				break;
			default:
				continue;
			}
			if (qcow2_refcount_update(s, off, len, delta, err) < 0)
				goto out;
		}
		if (qcow2_refcount_update(s, l2off, s->cluster_size, delta, err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(l2);
	return rc;
}

/* Sets the COPIED flag of the active tables to exactly "refcount is 1". */
int qcow2_fix_copied(struct qcow2 *s, struct tv_err *err)
{
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2off = s->l1[i] & QCOW2_OFFSET_MASK, rc, *l2;
		if (!l2off)
			continue;
		if (qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc, err) < 0)
			return -1;
		if (!!(s->l1[i] & QCOW2_OFLAG_COPIED) != (rc == 1)) {
			if (qcow2_l2_offset_ok(s, i, l2off, err) < 0)
				return -1;
			s->l1[i] = rc == 1 ? s->l1[i] | QCOW2_OFLAG_COPIED
					   : s->l1[i] & ~QCOW2_OFLAG_COPIED;
			s->l1_dirty_lo = MIN(s->l1_dirty_lo, i);
			s->l1_dirty_hi = MAX(s->l1_dirty_hi, i + 1);
		}
		if (qcow2_l2_offset_ok(s, i, l2off, err) < 0 ||
		    qcow2_cache_get(s, s->l2_cache, l2off, false, (void **)&l2, err) < 0)
			return -1;
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = qcow2_be64(&l2[j]), off = e & QCOW2_OFFSET_MASK, want;
			if (e & QCOW2_OFLAG_COMPRESSED || !off)
				continue;
			if (qcow2_refcount_get(s, off >> s->cluster_bits, &rc, err) < 0) {
				qcow2_cache_put(s->l2_cache, l2);
				return -1;
			}
			want = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
			if (want != e) {
				qcow2_put_be64(&l2[j], want);
				qcow2_cache_mark_dirty(s->l2_cache, l2);
			}
		}
		qcow2_cache_put(s->l2_cache, l2);
	}
	return 0;
}

/* Per-cluster counters in chunks allocated on first use, under a directory
 * level also allocated on first use: memory follows what the tables
 * reference, not how far a (sparse, possibly hostile) file reaches. */
#define CHUNK_BITS 10
#define DIR_BITS 8

struct counters {
	uint32_t ***dir;
	uint64_t ndir;
};

static void counters_init(struct counters *t, uint64_t n)
{
	t->ndir = (n >> (CHUNK_BITS + DIR_BITS)) + 1;
	t->dir = xcalloc(t->ndir, sizeof(*t->dir));
}

static void counters_free(struct counters *t)
{
	for (uint64_t i = 0; i < t->ndir; i++) {
		if (!t->dir[i])
			continue;
		for (unsigned j = 0; j < (1u << DIR_BITS); j++)
			free(t->dir[i][j]);
		free(t->dir[i]);
	}
	free(t->dir);
}

/* The chunk holding cluster c's counter, or NULL when none was made. */
static uint32_t *counters_chunk(const struct counters *t, uint64_t c)
{
	uint32_t **d = t->dir[c >> (CHUNK_BITS + DIR_BITS)];

	return d ? d[(c >> CHUNK_BITS) & ((1u << DIR_BITS) - 1)] : NULL;
}

/* The first cluster from c on (below end) whose chunk was made, or end: a
 * directory entry without chunks is skipped whole, so that a large sparse
 * file (or a hostile one) costs its counted clusters, not its size. */
static uint64_t counters_next(const struct counters *t, uint64_t c, uint64_t end)
{
	while (c < end) {
		uint32_t **d = t->dir[c >> (CHUNK_BITS + DIR_BITS)];

		if (d == NULL)
			c = ((c >> (CHUNK_BITS + DIR_BITS)) + 1) << (CHUNK_BITS + DIR_BITS);
		else if (d[(c >> CHUNK_BITS) & ((1u << DIR_BITS) - 1)] == NULL)
			c = ((c >> CHUNK_BITS) + 1) << CHUNK_BITS;
		else
			return c;
	}
	return end;
}

static uint32_t counters_get(const struct counters *t, uint64_t c)
{
	const uint32_t *ch = counters_chunk(t, c);

	return ch ? ch[c & ((1u << CHUNK_BITS) - 1)] : 0;
}

static void counters_add(struct counters *t, uint64_t c, uint32_t n)
{
	uint32_t ***d = &t->dir[c >> (CHUNK_BITS + DIR_BITS)], **ch, *v;

	if (!*d)
		*d = xcalloc(1u << DIR_BITS, sizeof(**d));
	ch = &(*d)[(c >> CHUNK_BITS) & ((1u << DIR_BITS) - 1)];
	if (!*ch)
		*ch = xcalloc(1u << CHUNK_BITS, sizeof(**ch));
	v = &(*ch)[c & ((1u << CHUNK_BITS) - 1)];
	*v = *v > UINT32_MAX - n ? UINT32_MAX : *v + n;
}

/* The check: count every reference the tables make, compare with the stored
 * refcounts. */
struct check {
	struct qcow2 *s;
	struct counters refs;
	struct counters l2mult; /* references to each cluster as an L2 table */
	uint64_t nclusters;
	/* References past the end of the file (allocated, never written
	 * before a crash; or hostile): few, kept as a list. */
	struct qcow2_free *far;
	size_t nfar, capfar;
	struct blk_check_result *res;
	uint64_t file_size;
};

static void check_ref_n(struct check *k, uint64_t off, uint64_t len, uint32_t n)
{
	if (len == 0)
		return;
	for (uint64_t c = off >> k->s->cluster_bits; c <= (off + len - 1) >> k->s->cluster_bits;
	     c++) {
		if (c >= k->nclusters) {
			if (c >= (1ull << 56) >> k->s->cluster_bits || k->nfar >= 1u << 20) {
				k->res->corruptions++;
				return;
			}
			if (k->nfar == k->capfar) {
				k->capfar = k->capfar ? 2 * k->capfar : 64;
				k->far = xreallocarray(k->far, k->capfar, sizeof(*k->far));
			}
			k->far[k->nfar++] = (struct qcow2_free){c, n};
			continue;
		}
		counters_add(&k->refs, c, n);
	}
	k->res->image_end_offset = MAX(k->res->image_end_offset,
				       ALIGN_UP(off + len, k->s->cluster_size));
}

static void check_ref(struct check *k, uint64_t off, uint64_t len)
{
	check_ref_n(k, off, len, 1);
}

/* Each L1 table only notes which L2 tables it uses; every L2 table is then
 * read once and its entries counted once per reference, so a hostile image
 * pointing many tables at the same clusters cannot make the walk slow. */
static int check_l1(struct check *k, const uint64_t *l1, uint32_t l1_size, bool be)
{
	struct qcow2 *s = k->s;

	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t e = be ? qcow2_be64(&l1[i]) : l1[i], l2off = e & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off & (s->cluster_size - 1) || l2off >= k->file_size) {
			k->res->corruptions++;
			continue;
		}
		check_ref(k, l2off, s->cluster_size);
		counters_add(&k->l2mult, l2off >> s->cluster_bits, 1);
	}
	return 0;
}

static void check_l2_tables(struct check *k)
{
	struct qcow2 *s = k->s;
	uint64_t *l2 = xmalloc(s->cluster_size);

	for (uint64_t c = counters_next(&k->l2mult, 0, k->nclusters); c < k->nclusters;
	     c = counters_next(&k->l2mult, c + 1, k->nclusters)) {
		uint32_t n;
		if (!(n = counters_get(&k->l2mult, c)))
			continue;
		if (blk_file_pread(s->b->fd, l2, s->cluster_size, c << s->cluster_bits) < 0) {
			k->res->check_errors++;
			continue;
		}
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t x = qcow2_be64(&l2[j]), off, len;
			switch (qcow2_entry_type(s, x)) {
			case QC_COMPRESSED:
				qcow2_compressed_range(s, x, &off, &len);
				break;
			case QC_NORMAL:
			case QC_ZERO:
				off = x & QCOW2_OFFSET_MASK;
				len = off ? s->cluster_size : 0;
				if (off & (s->cluster_size - 1)) {
					k->res->corruptions++;
					continue;
				}
				k->res->allocated_clusters += off != 0;
				break;
			default:
				continue;
			}
			check_ref_n(k, off, len, n);
		}
	}
	free(l2);
}

static int check_snapshots(struct check *k)
{
	struct qcow2 *s = k->s;

	if (s->nb_snapshots)
		check_ref(k, s->snapshots_offset, s->snapshots_size);
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		struct qcow2_snap *sn = &s->snaps[i];
		uint64_t *l1;
		if (sn->l1_offset & (s->cluster_size - 1) || sn->l1_offset >= k->file_size ||
		    (uint64_t)sn->l1_size * 8 > k->file_size - sn->l1_offset) {
			k->res->corruptions++;
			continue;
		}
		check_ref(k, sn->l1_offset, (uint64_t)sn->l1_size * 8);
		l1 = xmalloc((size_t)sn->l1_size * 8 + 1);
		if (blk_file_pread(s->b->fd, l1, (size_t)sn->l1_size * 8, sn->l1_offset) < 0)
			k->res->check_errors++;
		else
			check_l1(k, l1, sn->l1_size, true);
		free(l1);
	}
	return 0;
}

static int far_cmp(const void *a, const void *b)
{
	const struct qcow2_free *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_compare_one(struct check *k, uint64_t c, uint64_t refs, int fix,
			     struct tv_err *err)
{
	struct qcow2 *s = k->s;
	uint64_t stored;

	if (qcow2_refcount_get(s, c, &stored, err) < 0) {
		k->res->check_errors++;
		return -1;
	}
	if (stored == refs)
		return 0;
	if (stored > refs) {
		k->res->leaks++;
		if (!(fix & BLK_FIX_LEAKS))
			return 0;
		if (qcow2_refcount_set(s, c, refs, err) < 0)
			return -1;
		k->res->leaks_fixed++;
	} else {
		k->res->corruptions++;
		if (!(fix & BLK_FIX_ERRORS))
			return 0;
		if (qcow2_refcount_set(s, c, refs, err) < 0)
			return -1;
		k->res->corruptions_fixed++;
	}
	if (refs == 0 && c < s->free_hint)
		s->free_hint = c;
	return 0;
}

static int check_compare_far(struct check *k, int fix, struct tv_err *err)
{
	if (k->nfar)
		qsort(k->far, k->nfar, sizeof(*k->far), far_cmp);
	for (size_t i = 0; i < k->nfar;) {
		uint64_t c = k->far[i].offset, refs = 0;
		for (; i < k->nfar && k->far[i].offset == c; i++)
			refs = MIN(refs + k->far[i].len, UINT32_MAX);
		if (check_compare_one(k, c, refs, fix, err) < 0)
			return -1;
	}
	return 0;
}

static int check_compare(struct check *k, int fix, struct tv_err *err)
{
	struct qcow2 *s = k->s;

	for (uint64_t c = 0; c < k->nclusters; c++) {
		uint64_t refs, rti = c / s->rb_entries;
		/* Neither referenced nor refcounted: skip to the next cluster that
		 * is either. */
		if (!counters_chunk(&k->refs, c) && (rti >= s->rt_entries || !s->rt[rti])) {
			uint64_t next = counters_next(&k->refs, c, k->nclusters);

			while (rti < s->rt_entries && !s->rt[rti])
				rti++;
			if (rti < s->rt_entries)
				next = MIN(next, rti * s->rb_entries);
			c = MAX(next, c + 1) - 1;
			continue;
		}
		refs = counters_get(&k->refs, c);
		if (check_compare_one(k, c, refs, fix, err) < 0)
			return -1;
	}
	return check_compare_far(k, fix, err);
}

/* Active tables only: the COPIED flag must say "refcount is exactly 1". */
static int check_copied(struct check *k, int fix, struct tv_err *err)
{
	struct qcow2 *s = k->s;
	uint64_t *l2 = xmalloc(s->cluster_size), bad = 0;

	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2off = s->l1[i] & QCOW2_OFFSET_MASK, rc;
		if (!l2off || l2off & (s->cluster_size - 1) || l2off >= k->file_size)
			continue;
		if (qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc, err) < 0)
			break;
		if (!!(s->l1[i] & QCOW2_OFLAG_COPIED) != (rc == 1))
			bad++;
		if (blk_file_pread(s->b->fd, l2, s->cluster_size, l2off) < 0)
			continue;
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = qcow2_be64(&l2[j]), off = e & QCOW2_OFFSET_MASK;
			if (e & QCOW2_OFLAG_COMPRESSED || !off || off & (s->cluster_size - 1))
				continue;
			if (qcow2_refcount_get(s, off >> s->cluster_bits, &rc, err) < 0)
				break;
			if (!!(e & QCOW2_OFLAG_COPIED) != (rc == 1))
				bad++;
		}
	}
	free(l2);
	k->res->corruptions += bad;
	/* With refcounts known right, flags follow from them: fixing flags is
	 * safe even when only leaks may be repaired (a crash inside a snapshot
	 * operation leaves flags cleared early, never set wrongly). */
	if (bad && ((fix & BLK_FIX_ERRORS) ||
		    ((fix & BLK_FIX_LEAKS) && k->res->corruptions == bad))) {
		if (qcow2_fix_copied(s, err) < 0)
			return -1;
		k->res->corruptions_fixed += bad;
	}
	return 0;
}

int qcow2_check_image(struct qcow2 *s, int fix, struct blk_check_result *res, struct tv_err *err)
{
	struct check k = {.s = s, .res = res};
	struct stat st;
	int rc = -1;

	if (fstat(s->b->fd, &st) < 0)
		return tv_errno(err, "%s: cannot stat", s->b->path);
	k.file_size = (uint64_t)st.st_size;
	k.nclusters = (k.file_size + s->cluster_size - 1) >> s->cluster_bits;
	if (k.nclusters >> 36)
		return tv_errf(err, "%s: file too large to check", s->b->path);
	counters_init(&k.refs, k.nclusters);
	counters_init(&k.l2mult, k.nclusters);
	check_ref(&k, 0, s->cluster_size);
	check_ref(&k, s->l1_offset, (uint64_t)s->l1_size * 8);
	check_ref(&k, s->rt_offset, (uint64_t)s->rt_clusters * s->cluster_size);
	for (uint64_t i = 0; i < s->rt_entries; i++) {
		uint64_t off = s->rt[i] & QCOW2_OFFSET_MASK;
		if (!off)
			continue;
		if (off & (s->cluster_size - 1) || off >= k.file_size) {
			res->corruptions++;
			continue;
		}
		check_ref(&k, off, s->cluster_size);
	}
	check_l1(&k, s->l1, s->l1_size, false);
	check_snapshots(&k);
	check_l2_tables(&k);
	res->total_clusters = s->b->size >> s->cluster_bits;
	s->in_repair = fix != 0;
	if (check_compare(&k, fix, err) < 0)
		goto out;
	/* Refcounts now equal the references: frees still pending were
	 * counted in. */
	if (fix & BLK_FIX_LEAKS)
		s->nfrees = 0;
	if (check_copied(&k, fix, err) < 0)
		goto out;
	if (fix && qcow2_flush_locked(s, err) < 0)
		goto out;
	rc = 0;
out:
	s->in_repair = false;
	counters_free(&k.refs);
	counters_free(&k.l2mult);
	free(k.far);
	return rc;
}
