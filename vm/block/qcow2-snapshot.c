/* qcow2 internal snapshots: the snapshot table, and taking, applying and
 * deleting snapshots with refcounts raised before anything points to them
 * and lowered only after nothing does. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vm/block/qcow2.h"
#include "common/util.h"

enum { SN_HEADER = 40, SN_EXTRA_KNOWN = 16 };

void qcow2_snapshots_free(struct qcow2 *s)
{
	for (uint32_t i = 0; s->snaps && i < s->nb_snapshots; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
		free(s->snaps[i].extra);
	}
	free(s->snaps);
	s->snaps = NULL;
}

static int sn_read_one(struct qcow2 *s, struct qcow2_snap *sn, uint64_t *pos, uint64_t limit,
		       struct tv_err *err)
{
	uint8_t h[SN_HEADER];
	uint32_t extra, idl, nml;
	uint8_t *buf;

	if (*pos + SN_HEADER > limit || blk_file_pread(s->b->fd, h, SN_HEADER, *pos) < 0)
		return tv_errf(err, "%s: snapshot table runs past the end of the file", s->b->path);
	sn->l1_offset = qcow2_be64(h);
	sn->l1_size = qcow2_be32(h + 8);
	idl = qcow2_be16(h + 12);
	nml = qcow2_be16(h + 14);
	sn->date_sec = qcow2_be32(h + 16);
	sn->date_nsec = qcow2_be32(h + 20);
	sn->vm_clock_nsec = qcow2_be64(h + 24);
	sn->vm_state_size = qcow2_be32(h + 32);
	extra = qcow2_be32(h + 36);
	if (extra > 1024)
		return tv_errf(err, "%s: snapshot extra data of %u bytes is too large", s->b->path,
			       extra);
	if (*pos + SN_HEADER + extra + idl + nml > limit)
		return tv_errf(err, "%s: snapshot table runs past the end of the file", s->b->path);
	buf = xmalloc((size_t)extra + idl + nml + 1);
	if (blk_file_pread(s->b->fd, buf, (size_t)extra + idl + nml, *pos + SN_HEADER) < 0) {
		free(buf);
		return tv_errno(err, "%s: cannot read the snapshot table", s->b->path);
	}
	sn->disk_size = s->b->size;
	if (extra >= 8)
		sn->vm_state_size = qcow2_be64(buf);
	if (extra >= 16)
		sn->disk_size = qcow2_be64(buf + 8);
	if (extra > SN_EXTRA_KNOWN) {
		sn->extra_len = extra - SN_EXTRA_KNOWN;
		sn->extra = xmalloc(sn->extra_len);
		memcpy(sn->extra, buf + SN_EXTRA_KNOWN, sn->extra_len);
	}
	sn->id = xstrndup_len((char *)buf + extra, idl);
	sn->name = xstrndup_len((char *)buf + extra + idl, nml);
	free(buf);
	if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return tv_errf(err, "%s: snapshot '%s' has an L1 table of %u entries", s->b->path,
			       sn->name, sn->l1_size);
	*pos = ALIGN_UP(*pos + SN_HEADER + extra + idl + nml, 8);
	return 0;
}

int qcow2_snapshots_read(struct qcow2 *s, struct tv_err *err)
{
	struct stat st;
	uint64_t pos = s->snapshots_offset, limit;

	s->snapshots_size = 0;
	if (!s->nb_snapshots)
		return 0;
	if (fstat(s->b->fd, &st) < 0)
		return tv_errno(err, "%s: cannot stat", s->b->path);
	if (pos & (s->cluster_size - 1) || pos == 0 || pos >= (uint64_t)st.st_size)
		return tv_errf(err, "%s: snapshot table offset %llu is invalid", s->b->path,
			       (unsigned long long)pos);
	limit = MIN((uint64_t)st.st_size, pos + QCOW2_MAX_SNAPSHOT_TABLE);
	s->snaps = xcalloc(s->nb_snapshots, sizeof(*s->snaps));
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (sn_read_one(s, &s->snaps[i], &pos, limit, err) < 0)
			return -1;
	s->snapshots_size = pos - s->snapshots_offset;
	return 0;
}

/* Serialises snaps[0..n) and makes the header point to it; the old table is
 * freed once the header no longer names it. */
static int sn_table_write(struct qcow2 *s, struct qcow2_snap *snaps, uint32_t n,
			  struct tv_err *err)
{
	uint64_t size = 0, off = 0, old = s->snapshots_offset, oldsize = s->snapshots_size;
	uint8_t *buf, *p, hdr[12];

	for (uint32_t i = 0; i < n; i++)
		size += ALIGN_UP(SN_HEADER + SN_EXTRA_KNOWN + snaps[i].extra_len +
					 strlen(snaps[i].id) + strlen(snaps[i].name),
				 8);
	buf = p = xcalloc(1, size ? size : 1);
	for (uint32_t i = 0; i < n; i++) {
		struct qcow2_snap *sn = &snaps[i];
		size_t idl = strlen(sn->id), nml = strlen(sn->name);
		qcow2_put_be64(p, sn->l1_offset);
		qcow2_put_be32(p + 8, sn->l1_size);
		qcow2_put_be16(p + 12, (uint16_t)idl);
		qcow2_put_be16(p + 14, (uint16_t)nml);
		qcow2_put_be32(p + 16, sn->date_sec);
		qcow2_put_be32(p + 20, sn->date_nsec);
		qcow2_put_be64(p + 24, sn->vm_clock_nsec);
		qcow2_put_be32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
		qcow2_put_be32(p + 36, SN_EXTRA_KNOWN + sn->extra_len);
		qcow2_put_be64(p + 40, sn->vm_state_size);
		qcow2_put_be64(p + 48, sn->disk_size);
		if (sn->extra_len)
			memcpy(p + 56, sn->extra, sn->extra_len);
		memcpy(p + 56 + sn->extra_len, sn->id, idl);
		memcpy(p + 56 + sn->extra_len + idl, sn->name, nml);
		p += ALIGN_UP(56 + sn->extra_len + idl + nml, 8);
	}
	if (size) {
		off = qcow2_alloc_clusters(s, (size + s->cluster_size - 1) >> s->cluster_bits, err);
		if (!off || pwrite_full(s->b->fd, buf, size, off) < 0) {
			free(buf);
			return off ? tv_errno(err, "%s: cannot write the snapshot table", s->b->path)
				   : -1;
		}
	}
	free(buf);
	if (qcow2_flush_locked(s, err) < 0)
		return -1;
	qcow2_put_be32(hdr, n);
	qcow2_put_be64(hdr + 4, off);
	if (qcow2_header_write(s, QH_NB_SNAPSHOTS, hdr, 12, err) < 0 || qcow2_sync(s, err) < 0)
		return -1;
	s->snapshots_offset = off;
	s->snapshots_size = size;
	if (oldsize && qcow2_refcount_update(s, old, ALIGN_UP(oldsize, s->cluster_size), -1, err) < 0)
		return -1;
	return 0;
}

static struct qcow2_snap *sn_find(struct qcow2 *s, const char *name)
{
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (strcmp(s->snaps[i].name, name) == 0)
			return &s->snaps[i];
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (strcmp(s->snaps[i].id, name) == 0)
			return &s->snaps[i];
	return NULL;
}

static uint64_t *sn_read_l1(struct qcow2 *s, const struct qcow2_snap *sn, struct tv_err *err)
{
	struct stat st;
	uint64_t bytes = (uint64_t)sn->l1_size * 8;
	uint64_t *l1;

	if (fstat(s->b->fd, &st) < 0 || sn->l1_offset & (s->cluster_size - 1) ||
	    sn->l1_offset > (uint64_t)st.st_size || bytes > (uint64_t)st.st_size - sn->l1_offset) {
		qcow2_corrupt(s, err, "snapshot '%s' L1 table lies outside the file", sn->name);
		return NULL;
	}
	l1 = xcalloc(sn->l1_size ? sn->l1_size : 1, 8);
	if (bytes && blk_file_pread(s->b->fd, l1, bytes, sn->l1_offset) < 0) {
		free(l1);
		tv_errno(err, "%s: cannot read a snapshot L1 table", s->b->path);
		return NULL;
	}
	for (uint32_t i = 0; i < sn->l1_size; i++)
		l1[i] = qcow2_be64(&l1[i]) & ~QCOW2_OFLAG_COPIED;
	return l1;
}

/* Writes l1 (host order, size entries) to new clusters; returns the offset. */
static uint64_t l1_write_new(struct qcow2 *s, const uint64_t *l1, uint64_t size, bool strip,
			     struct tv_err *err)
{
	uint64_t bytes = ALIGN_UP(size * 8, s->cluster_size), off, *be;

	if (!size)
		return 0;
	off = qcow2_alloc_clusters(s, bytes >> s->cluster_bits, err);
	if (!off)
		return UINT64_MAX;
	be = xcalloc(1, bytes);
	for (uint64_t i = 0; i < size; i++)
		qcow2_put_be64(&be[i], strip ? l1[i] & ~QCOW2_OFLAG_COPIED : l1[i]);
	if (pwrite_full(s->b->fd, be, bytes, off) < 0) {
		free(be);
		tv_errno(err, "%s: cannot write an L1 table", s->b->path);
		return UINT64_MAX;
	}
	free(be);
	return off;
}

static char *sn_next_id(struct qcow2 *s)
{
	unsigned long max = 0;

	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		char *end;
		unsigned long v = strtoul(s->snaps[i].id, &end, 10);
		if (!*end && v > max)
			max = v;
	}
	return xasprintf("%lu", max + 1);
}

static int sn_clear_copied(struct qcow2 *s, struct tv_err *err)
{
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2off = s->l1[i] & QCOW2_OFFSET_MASK, *l2;
		if (!l2off)
			continue;
		if (qcow2_l2_offset_ok(s, i, l2off, err) < 0)
			return -1;
		if (s->l1[i] & QCOW2_OFLAG_COPIED) {
			s->l1[i] &= ~QCOW2_OFLAG_COPIED;
			s->l1_dirty_lo = MIN(s->l1_dirty_lo, i);
			s->l1_dirty_hi = MAX(s->l1_dirty_hi, i + 1);
		}
		if (qcow2_cache_get(s, s->l2_cache, l2off, false, (void **)&l2, err) < 0)
			return -1;
		for (uint64_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = qcow2_be64(&l2[j]);
			if (e & QCOW2_OFLAG_COPIED) {
				qcow2_put_be64(&l2[j], e & ~QCOW2_OFLAG_COPIED);
				qcow2_cache_mark_dirty(s->l2_cache, l2);
			}
		}
		qcow2_cache_put(s->l2_cache, l2);
	}
	return 0;
}

static int sn_create_locked(struct qcow2 *s, const char *name, uint64_t vm_state_size,
			    uint64_t vm_clock_nsec, struct tv_err *err)
{
	struct qcow2_snap *snaps, *sn;
	struct timespec now;
	uint64_t l1off;

	if (!*name || strlen(name) > 65535)
		return tv_errf(err, "%s: snapshot name must be 1 to 65535 bytes", s->b->path);
	if (sn_find(s, name))
		return tv_errf(err, "%s: a snapshot named '%s' exists already", s->b->path, name);
	if (s->refcount_bits < 2)
		return tv_errf(err, "%s: images with 1-bit refcounts cannot hold snapshots",
			       s->b->path);
	if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
		return tv_errf(err, "%s: too many snapshots", s->b->path);
	if (qcow2_flush_locked(s, err) < 0 || qcow2_mark_dirty(s, err) < 0)
		return -1;
	/* Shared clusters must never look owned: the COPIED flags go first
	 * (a crash then only costs extra copies), then the refcounts rise (a
	 * crash then only leaks), then the snapshot appears. */
	if (sn_clear_copied(s, err) < 0 || qcow2_flush_locked(s, err) < 0 ||
	    qcow2_table_refs(s, s->l1, s->l1_size, +1, err) < 0)
		return -1;
	l1off = l1_write_new(s, s->l1, s->l1_size, true, err);
	if (l1off == UINT64_MAX || qcow2_flush_locked(s, err) < 0)
		return -1;
	snaps = xcalloc(s->nb_snapshots + 1, sizeof(*snaps));
	if (s->nb_snapshots)
		memcpy(snaps, s->snaps, s->nb_snapshots * sizeof(*snaps));
	sn = &snaps[s->nb_snapshots];
	clock_gettime(CLOCK_REALTIME, &now);
	sn->l1_offset = l1off;
	sn->l1_size = s->l1_size;
	sn->id = sn_next_id(s);
	sn->name = xstrdup(name);
	sn->date_sec = (uint32_t)now.tv_sec;
	sn->date_nsec = (uint32_t)now.tv_nsec;
	sn->vm_clock_nsec = vm_clock_nsec;
	sn->vm_state_size = vm_state_size;
	sn->disk_size = s->b->size;
	if (sn_table_write(s, snaps, s->nb_snapshots + 1, err) < 0) {
		free(sn->id);
		free(sn->name);
		free(snaps);
		return -1;
	}
	free(s->snaps);
	s->snaps = snaps;
	s->nb_snapshots++;
	return 0;
}

static int sn_apply_locked(struct qcow2 *s, const char *name, struct tv_err *err)
{
	struct qcow2_snap *sn = sn_find(s, name);
	uint64_t *l1, *old = s->l1, cover = s->l2_entries << s->cluster_bits, size, l1off;
	uint32_t oldsize = s->l1_size;
	uint64_t oldoff = s->l1_offset;
	uint8_t hdr[12], v[8];

	if (!sn)
		return tv_errf(err, "%s: no snapshot named '%s'", s->b->path, name);
	if (qcow2_flush_locked(s, err) < 0 || qcow2_mark_dirty(s, err) < 0)
		return -1;
	if (!(l1 = sn_read_l1(s, sn, err)))
		return -1;
	size = MAX(sn->l1_size, sn->disk_size / cover + (sn->disk_size % cover != 0));
	if (size * 8 > QCOW2_MAX_L1_BYTES) {
		free(l1);
		return tv_errf(err, "%s: snapshot disk size is too large", s->b->path);
	}
	l1 = xreallocarray(l1, size ? size : 1, 8);
	memset(l1 + sn->l1_size, 0, (size - sn->l1_size) * 8);
	if (qcow2_table_refs(s, l1, (uint32_t)size, +1, err) < 0)
		goto fail;
	l1off = l1_write_new(s, l1, size, true, err);
	if (l1off == UINT64_MAX || qcow2_flush_locked(s, err) < 0)
		goto fail;
	qcow2_put_be32(hdr, (uint32_t)size);
	qcow2_put_be64(hdr + 4, l1off);
	qcow2_put_be64(v, sn->disk_size);
	if (qcow2_header_write(s, QH_L1_SIZE, hdr, 12, err) < 0 ||
	    qcow2_header_write(s, QH_SIZE, v, 8, err) < 0 || qcow2_sync(s, err) < 0)
		goto fail;
	s->l1 = l1;
	s->l1_size = (uint32_t)size;
	s->l1_offset = l1off;
	s->l1_dirty_lo = UINT32_MAX;
	s->l1_dirty_hi = 0;
	s->b->size = sn->disk_size;
	/* Nothing points to the old tree any more: drop its references. */
	if (qcow2_table_refs(s, old, oldsize, -1, err) < 0 ||
	    (oldsize && qcow2_refcount_update(s, oldoff, ALIGN_UP((uint64_t)oldsize * 8,
								  s->cluster_size),
					      -1, err) < 0)) {
		free(old);
		return -1;
	}
	free(old);
	if (qcow2_fix_copied(s, err) < 0)
		return -1;
	return qcow2_flush_locked(s, err);
fail:
	free(l1);
	return -1;
}

static int sn_delete_locked(struct qcow2 *s, const char *name, struct tv_err *err)
{
	struct qcow2_snap *sn = sn_find(s, name), gone, *snaps;
	uint64_t *l1;
	uint32_t idx, n = s->nb_snapshots - 1;

	if (!sn)
		return tv_errf(err, "%s: no snapshot named '%s'", s->b->path, name);
	if (qcow2_flush_locked(s, err) < 0 || qcow2_mark_dirty(s, err) < 0)
		return -1;
	if (!(l1 = sn_read_l1(s, sn, err)))
		return -1;
	idx = (uint32_t)(sn - s->snaps);
	gone = *sn;
	snaps = xcalloc(n ? n : 1, sizeof(*snaps));
	memcpy(snaps, s->snaps, idx * sizeof(*snaps));
	memcpy(snaps + idx, s->snaps + idx + 1, (n - idx) * sizeof(*snaps));
	if (sn_table_write(s, snaps, n, err) < 0) {
		free(snaps);
		free(l1);
		return -1;
	}
	free(s->snaps);
	s->snaps = snaps;
	s->nb_snapshots = n;
	/* The table no longer names it: its tree can go. */
	if (qcow2_table_refs(s, l1, gone.l1_size, -1, err) < 0 ||
	    (gone.l1_size &&
	     qcow2_refcount_update(s, gone.l1_offset,
				   ALIGN_UP((uint64_t)gone.l1_size * 8, s->cluster_size), -1,
				   err) < 0)) {
		free(l1);
		goto out;
	}
	free(l1);
	if (qcow2_fix_copied(s, err) < 0 || qcow2_flush_locked(s, err) < 0)
		goto out;
	free(gone.id);
	free(gone.name);
	free(gone.extra);
	return 0;
out:
	free(gone.id);
	free(gone.name);
	free(gone.extra);
	return -1;
}

/* A new name in a new table: the header points to the new table once it is
 * written, so a crash leaves either name, never neither. */
static int sn_rename_locked(struct qcow2 *s, const char *name, const char *new_name,
			    struct tv_err *err)
{
	struct qcow2_snap *sn = sn_find(s, name), *snaps;
	char *old;

	if (!sn)
		return tv_errf(err, "%s: no snapshot named '%s'", s->b->path, name);
	if (!*new_name || strlen(new_name) > 65535)
		return tv_errf(err, "%s: snapshot name must be 1 to 65535 bytes", s->b->path);
	for (uint32_t i = 0; i < s->nb_snapshots; i++)
		if (&s->snaps[i] != sn && strcmp(s->snaps[i].name, new_name) == 0)
			return tv_errf(err, "%s: a snapshot named '%s' exists already", s->b->path,
				       new_name);
	if (qcow2_flush_locked(s, err) < 0 || qcow2_mark_dirty(s, err) < 0)
		return -1;
	snaps = xcalloc(s->nb_snapshots, sizeof(*snaps));
	memcpy(snaps, s->snaps, s->nb_snapshots * sizeof(*snaps));
	old = sn->name;
	snaps[sn - s->snaps].name = xstrdup(new_name);
	if (sn_table_write(s, snaps, s->nb_snapshots, err) < 0) {
		free(snaps[sn - s->snaps].name);
		free(snaps);
		return -1;
	}
	free(old);
	free(s->snaps);
	s->snaps = snaps;
	return qcow2_flush_locked(s, err);
}

int qcow2_snapshot_create(struct blk *b, const char *name, uint64_t vm_state_size,
			  uint64_t vm_clock_nsec, struct tv_err *err)
{
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = sn_create_locked(qcow2_state(b), name, vm_state_size, vm_clock_nsec, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int qcow2_snapshot_apply(struct blk *b, const char *name, struct tv_err *err)
{
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = sn_apply_locked(qcow2_state(b), name, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int qcow2_snapshot_rename(struct blk *b, const char *name, const char *new_name,
			  struct tv_err *err)
{
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = sn_rename_locked(qcow2_state(b), name, new_name, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int qcow2_snapshot_delete(struct blk *b, const char *name, struct tv_err *err)
{
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = sn_delete_locked(qcow2_state(b), name, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int qcow2_snapshot_list(struct blk *b, struct blk_snapshot **list, int *count, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	struct blk_snapshot *l;

	pthread_rwlock_rdlock(&b->lock);
	l = xcalloc(s->nb_snapshots ? s->nb_snapshots : 1, sizeof(*l));
	for (uint32_t i = 0; i < s->nb_snapshots; i++) {
		l[i].id = xstrdup(s->snaps[i].id);
		l[i].name = xstrdup(s->snaps[i].name);
		l[i].vm_state_size = s->snaps[i].vm_state_size;
		l[i].disk_size = s->snaps[i].disk_size;
		l[i].date_sec = s->snaps[i].date_sec;
		l[i].date_nsec = s->snaps[i].date_nsec;
		l[i].vm_clock_nsec = s->snaps[i].vm_clock_nsec;
	}
	*list = l;
	*count = (int)s->nb_snapshots;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

int qcow2_snapshot_count(int fd, const char *path, struct tv_err *err)
{
	uint8_t h[QH_V2_LENGTH];
	uint32_t n;

	if (blk_file_pread(fd, h, sizeof(h), 0) < 0)
		return tv_errno(err, "%s: cannot read the header", path);
	if (qcow2_be32(h) != QCOW2_MAGIC ||
	    (qcow2_be32(h + QH_VERSION) != 2 && qcow2_be32(h + QH_VERSION) != 3))
		return tv_errf(err, "%s: not a qcow2 image of version 2 or 3", path);
	n = qcow2_be32(h + QH_NB_SNAPSHOTS);
	if (n > QCOW2_MAX_SNAPSHOTS)
		return tv_errf(err, "%s: snapshot count %u is out of range", path, n);
	return (int)n;
}
