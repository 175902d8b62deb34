/* qcow2 images: open (header validation), create, the I/O paths, flush
 * ordering, compression. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vm/block/qcow2.h"
#include "common/util.h"

uint64_t qcow2_be64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

uint32_t qcow2_be32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

uint16_t qcow2_be16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return __builtin_bswap16(v);
}

void qcow2_put_be64(void *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, 8);
}

void qcow2_put_be32(void *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}

void qcow2_put_be16(void *p, uint16_t v)
{
	v = __builtin_bswap16(v);
	memcpy(p, &v, 2);
}

int qcow2_header_write(struct qcow2 *s, unsigned off, const void *buf, size_t len,
		       struct tv_err *err)
{
	if (pwrite_full(s->b->fd, buf, len, off) < 0)
		return tv_errno(err, "%s: cannot write the header", s->b->path);
	return 0;
}

int qcow2_sync(struct qcow2 *s, struct tv_err *err)
{
	if (fdatasync(s->b->fd) < 0)
		return tv_errno(err, "%s: flush failed", s->b->path);
	s->deps_unsynced = false;
	return 0;
}

static int write_incompat(struct qcow2 *s, struct tv_err *err)
{
	uint8_t v[8];

	qcow2_put_be64(v, s->incompat);
	if (qcow2_header_write(s, QH_INCOMPAT, v, 8, err) < 0)
		return -1;
	return qcow2_sync(s, err);
}

/* Set before the first metadata change of a session, cleared on a clean
 * close: an image found dirty gets its leaked clusters repaired. */
int qcow2_mark_dirty(struct qcow2 *s, struct tv_err *err)
{
	if (s->dirty_on_disk || s->version < 3)
		return 0;
	s->incompat |= QCOW2_INCOMPAT_DIRTY;
	if (write_incompat(s, err) < 0)
		return -1;
	s->dirty_on_disk = true;
	return 0;
}

int qcow2_corrupt(struct qcow2 *s, struct tv_err *err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Stop writing to it, and say so in the image for the next user. */
	if (!s->b->readonly && s->version >= 3 && !(s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		s->incompat |= QCOW2_INCOMPAT_CORRUPT;
		write_incompat(s, NULL);
		s->b->readonly = true;
	}
	return tv_errf(err, "%s: image is corrupt: %s; run `termvisor img check`", s->b->path, msg);
}

/* Metadata reaches the disk in an order where a crash between any two
 * writes leaves at worst leaked clusters: refcounts, then the L2 tables
 * that use them, then the L1 entries pointing to those; clusters that
 * tables stopped pointing to are freed only after that. */
int qcow2_flush_locked(struct qcow2 *s, struct tv_err *err)
{
	bool rb = qcow2_cache_has_dirty(s->rb_cache), l2 = qcow2_cache_has_dirty(s->l2_cache);
	bool l1 = s->l1_dirty_lo < s->l1_dirty_hi;

	if (s->b->readonly)
		return 0;
	if (rb && qcow2_cache_write_dirty(s, s->rb_cache, err) < 0)
		return -1;
	if ((l2 || l1) && s->deps_unsynced && qcow2_sync(s, err) < 0)
		return -1;
	if (l2 && (qcow2_cache_write_dirty(s, s->l2_cache, err) < 0 ||
		   (l1 && qcow2_sync(s, err) < 0)))
		return -1;
	if (l1 && qcow2_write_l1(s, err) < 0)
		return -1;
	if (qcow2_sync(s, err) < 0 || qcow2_apply_deferred_frees(s, err) < 0)
		return -1;
	/* The frees go out now too (the tables no longer point to those
	 * clusters on disk): a flushed image has exact refcounts, no leaks,
	 * as `qemu-img check -U` of a running VM's disk or a copy shows. */
	if (qcow2_cache_has_dirty(s->rb_cache) &&
	    (qcow2_cache_write_dirty(s, s->rb_cache, err) < 0 || qcow2_sync(s, err) < 0))
		return -1;
	return 0;
}

void qcow2_compressed_range(const struct qcow2 *s, uint64_t e, uint64_t *off, uint64_t *len)
{
	uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;

	*off = e & ((1ull << s->csize_shift) - 1);
	*len = nsec * 512 - (*off & 511);
}

static int inflate_raw(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	z_stream z = {0};
	int rc;

	if (inflateInit2(&z, -12) != Z_OK)
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	rc = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	return (rc == Z_STREAM_END || z.avail_out == 0) && z.avail_out == 0 ? 0 : -1;
}

static int zstd_decompress(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = {in, inlen, 0};
	ZSTD_outBuffer ob = {out, outlen, 0};
	int rc = -1;

	if (!d)
		return -1;
	while (ob.pos < ob.size) {
		size_t r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r))
			break;
		if (r == 0 || ib.pos == ib.size) {
			break;
		}
	}
	if (ob.pos == ob.size)
		rc = 0;
	ZSTD_freeDCtx(d);
	return rc;
}

int qcow2_decompress(struct qcow2 *s, uint64_t e, void *out, struct tv_err *err)
{
	uint64_t off, len;
	uint8_t *in;
	int rc;

	qcow2_compressed_range(s, e, &off, &len);
	in = xmalloc(len);
	if (blk_file_pread(s->b->fd, in, len, off) < 0) {
		free(in);
		return tv_errno(err, "%s: read at %llu failed", s->b->path, (unsigned long long)off);
	}
	rc = s->compression_type == 1 ? zstd_decompress(in, len, out, s->cluster_size)
				      : inflate_raw(in, len, out, s->cluster_size);
	free(in);
	if (rc < 0)
		return tv_errf(err, "%s: compressed cluster at %llu does not decompress", s->b->path,
			       (unsigned long long)off);
	return 0;
}

/* Header parsing. */
static const char *incompat_name(struct qcow2 *s, const uint8_t *names, uint32_t nlen, int bit)
{
	static const char *known[] = {"dirty bit", "corrupt bit", "external data file",
				      "compression type", "extended L2 entries"};

	for (uint32_t i = 0; names && i + 48 <= nlen; i += 48)
		if (names[i] == 0 && names[i + 1] == bit)
			return (const char *)names + i + 2;
	return bit < (int)ARRAY_SIZE(known) ? known[bit] : NULL;
}

static int check_incompat(struct qcow2 *s, const uint8_t *names, uint32_t nlen,
			  struct tv_err *err)
{
	uint64_t bad = s->incompat & ~QCOW2_INCOMPAT_KNOWN;

	if (s->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return tv_errf(err, "%s: images with an external data file are not supported",
			       s->b->path);
	if (s->incompat & QCOW2_INCOMPAT_EXTL2)
		return tv_errf(err, "%s: images with extended L2 entries (subclusters) are not "
				    "supported",
			       s->b->path);
	for (int bit = 0; bit < 64; bit++) {
		if (!(bad & (1ull << bit)))
			continue;
		char nm[47] = "";
		const char *n = incompat_name(s, names, nlen, bit);
		if (n)
			snprintf(nm, sizeof(nm), "%.46s", n);
		return tv_errf(err, "%s: unsupported incompatible feature bit %d%s%s%s", s->b->path,
			       bit, *nm ? " (" : "", nm, *nm ? ")" : "");
	}
	return 0;
}

static int parse_extensions(struct qcow2 *s, const uint8_t *h, struct tv_err *err)
{
	uint64_t pos = s->header_length, end = s->cluster_size;
	const uint8_t *names = NULL;
	uint32_t nlen = 0;

	if (s->backing_name && qcow2_be64(h + QH_BACKING_OFFSET) > pos)
		end = qcow2_be64(h + QH_BACKING_OFFSET);
	while (pos + 8 <= end) {
		uint32_t type = qcow2_be32(h + pos), len = qcow2_be32(h + pos + 4);
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - pos - 8)
			return tv_errf(err, "%s: header extension 0x%x of %u bytes runs past the "
					    "header",
				       s->b->path, type, len);
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			free(s->backing_fmt);
			s->backing_fmt = xstrndup_len((const char *)h + pos + 8, MIN(len, 16));
		} else if (type == QCOW2_EXT_FEATURE_NAMES) {
			names = h + pos + 8;
			nlen = len;
		}
		pos += 8 + ALIGN_UP((uint64_t)len, 8);
	}
	return check_incompat(s, names, nlen, err);
}

static int read_header(struct qcow2 *s, uint8_t **hdrp, uint64_t fsize, struct tv_err *err)
{
	struct blk *b = s->b;
	uint8_t h0[QH_V3_LENGTH + 8], *h;
	uint64_t bo;
	uint32_t bl;

	memset(h0, 0, sizeof(h0));
	if (blk_file_pread(b->fd, h0, sizeof(h0), 0) < 0)
		return tv_errno(err, "%s: cannot read the header", b->path);
	if (qcow2_be32(h0) != QCOW2_MAGIC)
		return tv_errf(err, "%s: not a qcow2 image (bad magic)", b->path);
	s->version = (int)qcow2_be32(h0 + QH_VERSION);
	if (s->version != 2 && s->version != 3)
		return tv_errf(err, "%s: qcow2 version %d is not supported (expected 2 or 3)",
			       b->path, s->version);
	s->cluster_bits = (int)qcow2_be32(h0 + QH_CLUSTER_BITS);
	if (s->cluster_bits < 9 || s->cluster_bits > 21)
		return tv_errf(err, "%s: cluster_bits %d out of range (expected 9..21)", b->path,
			       s->cluster_bits);
	s->cluster_size = 1ull << s->cluster_bits;
	if (qcow2_be32(h0 + QH_CRYPT))
		return tv_errf(err, "%s: encrypted images are not supported", b->path);
	h = xcalloc(1, s->cluster_size);
	*hdrp = h;
	if (blk_file_pread(b->fd, h, s->cluster_size, 0) < 0)
		return tv_errno(err, "%s: cannot read the header", b->path);
	if (s->version == 3) {
		s->incompat = qcow2_be64(h + QH_INCOMPAT);
		s->compat = qcow2_be64(h + QH_COMPAT);
		s->autoclear = qcow2_be64(h + QH_AUTOCLEAR);
		uint32_t order = qcow2_be32(h + QH_REFCOUNT_ORDER);
		if (order > 6)
			return tv_errf(err, "%s: refcount_order %u out of range (expected 0..6)",
				       b->path, order);
		s->refcount_order = (int)order;
		s->header_length = qcow2_be32(h + QH_HEADER_LENGTH);
		if (s->header_length < QH_V3_LENGTH || s->header_length > s->cluster_size)
			return tv_errf(err, "%s: header_length %u out of range", b->path,
				       s->header_length);
		if (s->incompat & QCOW2_INCOMPAT_COMPRESSION) {
			if (s->header_length <= QH_COMPRESSION_TYPE)
				return tv_errf(err, "%s: compression type bit set without the field",
					       b->path);
			s->compression_type = h[QH_COMPRESSION_TYPE];
			if (s->compression_type > 1)
				return tv_errf(err, "%s: unknown compression type %d", b->path,
					       s->compression_type);
		} else if (s->header_length > QH_COMPRESSION_TYPE && h[QH_COMPRESSION_TYPE]) {
			return tv_errf(err, "%s: compression type set without its feature bit",
				       b->path);
		}
	} else {
		s->refcount_order = 4;
		s->header_length = QH_V2_LENGTH;
	}
	bo = qcow2_be64(h + QH_BACKING_OFFSET);
	bl = qcow2_be32(h + QH_BACKING_SIZE);
	if (bo) {
		if (bl == 0 || bl > 1023 || bo > s->cluster_size || bl > s->cluster_size - bo)
			return tv_errf(err, "%s: backing file name (offset %llu, %u bytes) is not "
					    "inside the header cluster",
				       b->path, (unsigned long long)bo, bl);
		s->backing_name = xstrndup_len((const char *)h + bo, bl);
		if (strlen(s->backing_name) != bl)
			return tv_errf(err, "%s: backing file name contains a NUL byte", b->path);
	}
	return parse_extensions(s, h, err);
}

static int check_table(struct qcow2 *s, const char *what, uint64_t off, uint64_t bytes,
		       uint64_t fsize, struct tv_err *err)
{
	if (off & (s->cluster_size - 1))
		return tv_errf(err, "%s: %s offset %llu is not cluster-aligned", s->b->path, what,
			       (unsigned long long)off);
	if (bytes && (off == 0 || off > fsize || bytes > fsize - off))
		return tv_errf(err, "%s: %s (%llu bytes at %llu) lies outside the file (%llu bytes)",
			       s->b->path, what, (unsigned long long)bytes, (unsigned long long)off,
			       (unsigned long long)fsize);
	return 0;
}

static int load_tables(struct qcow2 *s, const uint8_t *h, uint64_t fsize, bool creating,
		       struct tv_err *err)
{
	struct blk *b = s->b;
	uint64_t cover, need;

	b->size = qcow2_be64(h + QH_SIZE);
	s->l1_size = qcow2_be32(h + QH_L1_SIZE);
	s->l1_offset = qcow2_be64(h + QH_L1_OFFSET);
	s->rt_offset = qcow2_be64(h + QH_RT_OFFSET);
	s->rt_clusters = qcow2_be32(h + QH_RT_CLUSTERS);
	s->nb_snapshots = qcow2_be32(h + QH_NB_SNAPSHOTS);
	s->snapshots_offset = qcow2_be64(h + QH_SNAPSHOTS_OFFSET);
	cover = s->l2_entries << s->cluster_bits;
	need = b->size / cover + (b->size % cover != 0);
	if (b->size > (1ull << 62) || need * 8 > QCOW2_MAX_L1_BYTES)
		return tv_errf(err, "%s: disk size %llu is too large for %llu-byte clusters",
			       b->path, (unsigned long long)b->size,
			       (unsigned long long)s->cluster_size);
	if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		return tv_errf(err, "%s: L1 table of %u entries is too large", b->path, s->l1_size);
	if (!creating && s->l1_size < need)
		return tv_errf(err, "%s: L1 table (%u entries) too small for the disk size (needs "
				    "%llu)",
			       b->path, s->l1_size, (unsigned long long)need);
	if ((uint64_t)s->rt_clusters * s->cluster_size > QCOW2_MAX_RT_BYTES || !s->rt_clusters)
		return tv_errf(err, "%s: refcount table of %u clusters is out of range", b->path,
			       s->rt_clusters);
	if (check_table(s, "L1 table", s->l1_offset, (uint64_t)s->l1_size * 8, fsize, err) < 0 ||
	    check_table(s, "refcount table", s->rt_offset,
			(uint64_t)s->rt_clusters * s->cluster_size, fsize, err) < 0)
		return -1;
	if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return tv_errf(err, "%s: %u snapshots is more than the %d allowed", b->path,
			       s->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	s->l1 = xcalloc(s->l1_size ? s->l1_size : 1, 8);
	if (s->l1_size && blk_file_pread(b->fd, s->l1, (size_t)s->l1_size * 8, s->l1_offset) < 0)
		return tv_errno(err, "%s: cannot read the L1 table", b->path);
	for (uint32_t i = 0; i < s->l1_size; i++)
		s->l1[i] = qcow2_be64(&s->l1[i]);
	s->rt_entries = (uint64_t)s->rt_clusters * s->cluster_size / 8;
	s->rt = xmalloc(s->rt_entries * 8);
	if (blk_file_pread(b->fd, s->rt, s->rt_entries * 8, s->rt_offset) < 0)
		return tv_errno(err, "%s: cannot read the refcount table", b->path);
	for (uint64_t i = 0; i < s->rt_entries; i++)
		s->rt[i] = qcow2_be64(&s->rt[i]);
	return qcow2_snapshots_read(s, err);
}

static void qcow2_free_state(struct qcow2 *s)
{
	qcow2_cache_free(s->l2_cache);
	qcow2_cache_free(s->rb_cache);
	qcow2_snapshots_free(s);
	pthread_mutex_destroy(&s->cache_lock);
	free(s->l1);
	free(s->rt);
	free(s->frees);
	free(s->backing_name);
	free(s->backing_fmt);
	free(s);
}

static void qcow2_setup_caches(struct qcow2 *s, uint64_t l2_cache_bytes)
{
	uint64_t cover = s->l2_entries << s->cluster_bits;
	uint64_t need = s->b->size / cover + 2;
	uint64_t n = MIN(need, l2_cache_bytes / s->cluster_size);

	/* An explicit size is taken as asked (even past the disk's needs). */
	if (s->b->l2_cache_size)
		n = MIN(l2_cache_bytes / s->cluster_size, 1u << 20);

	s->l2_cache = qcow2_cache_new(MAX(n, 8), s->cluster_size);
	s->rb_cache = qcow2_cache_new(MAX(4, MIN(32, (8ull << 20) / s->cluster_size)),
				      s->cluster_size);
	qcow2_cache_set_dependency(s->l2_cache, s->rb_cache);
}

static int qcow2_repair_dirty(struct qcow2 *s, struct tv_err *err)
{
	struct blk_check_result res = {0};

	if (qcow2_check_image(s, BLK_FIX_LEAKS, &res, err) < 0)
		return tv_err_prefix(err, "%s: repairing after an unclean shutdown: ", s->b->path);
	if (res.corruptions > res.corruptions_fixed)
		return tv_errf(err, "%s: image was not closed cleanly and has %llu errors; run "
				    "`termvisor img check -r all %s`",
			       s->b->path, (unsigned long long)(res.corruptions - res.corruptions_fixed), s->b->path);
	s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
	return write_incompat(s, err);
}

static int qcow2_open_state(struct blk *b, int flags, bool creating, struct tv_err *err)
{
	struct qcow2 *s = xcalloc(1, sizeof(*s));
	uint8_t *h = NULL;
	struct stat st;

	s->b = b;
	b->opaque = s;
	pthread_mutex_init(&s->cache_lock, NULL);
	s->l1_dirty_lo = UINT32_MAX;
	if (fstat(b->fd, &st) < 0) {
		tv_errno(err, "%s: cannot stat", b->path);
		goto fail;
	}
	if (read_header(s, &h, (uint64_t)st.st_size, err) < 0)
		goto fail;
	s->l2_bits = s->cluster_bits - 3;
	s->l2_entries = s->cluster_size / 8;
	s->csize_shift = 62 - (s->cluster_bits - 8);
	s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
	s->refcount_bits = 1 << s->refcount_order;
	s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
	s->rb_entries = s->cluster_size * 8 / (uint64_t)s->refcount_bits;
	if (load_tables(s, h, (uint64_t)st.st_size, creating, err) < 0)
		goto fail;
	free(h);
	h = NULL;
	qcow2_setup_caches(s, b->l2_cache_size ? b->l2_cache_size : QCOW2_DEFAULT_L2_CACHE);
	s->free_hint = 1;
	s->fresh_from = ALIGN_UP((uint64_t)st.st_size, s->cluster_size);
	if (!b->readonly && (s->incompat & QCOW2_INCOMPAT_CORRUPT) && !(flags & BLK_CHECK)) {
		tv_errf(err, "%s: image is marked corrupt; it can only be opened read-only (repair "
			     "it with `termvisor img check -r all`)",
			b->path);
		goto fail;
	}
	if (!b->readonly && s->autoclear) {
		uint8_t z[8] = {0};
		s->autoclear = 0;
		if (qcow2_header_write(s, QH_AUTOCLEAR, z, 8, err) < 0)
			goto fail;
	}
	if (!b->readonly && !(flags & BLK_NO_REPAIR) && (s->incompat & QCOW2_INCOMPAT_DIRTY) &&
	    qcow2_repair_dirty(s, err) < 0)
		goto fail;
	if (s->backing_name && !(flags & BLK_NO_BACKING) &&
	    blk_open_backing(b, s->backing_name, s->backing_fmt, err) < 0)
		goto fail;
	return 0;
fail:
	free(h);
	qcow2_free_state(s);
	b->opaque = NULL;
	return -1;
}

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC && qcow2_be32(buf + 4) >= 2 ? 100 : 0;
}

static int qcow2_open(struct blk *b, int flags, struct tv_err *err)
{
	return qcow2_open_state(b, flags, false, err);
}

static void qcow2_close(struct blk *b)
{
	struct qcow2 *s = qcow2_state(b);

	if (!s)
		return;
	if (!b->readonly) {
		/* The frees applied by the last flush, the part of the file
		 * grown ahead that no cluster came to use (nothing past
		 * fresh_from was ever handed out), then the clean mark. */
		struct stat st;

		/* A mapped cluster past the end of the file reads as zeros, but
		 * qemu-img check calls it an error: the file takes it in, as a
		 * hole (which needs no room on a full disk). */
		if (s->short_tail && fstat(b->fd, &st) == 0 && (uint64_t)st.st_size < s->fresh_from)
			(void)!ftruncate(b->fd, (off_t)s->fresh_from);
		if (qcow2_flush_locked(s, NULL) == 0) {
			if (s->grown_to > s->fresh_from)
				(void)!ftruncate(b->fd, (off_t)s->fresh_from);
			if (s->dirty_on_disk) {
				s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
				write_incompat(s, NULL);
			}
		}
	}
	qcow2_free_state(s);
	b->opaque = NULL;
}

static int qcow2_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	int rc;

	pthread_rwlock_rdlock(&b->lock);
	rc = qcow2_read_range(s, buf, len, off, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

/* Overwrites of clusters this image owns alone need no metadata change and
 * run in parallel; returns the bytes done that way. */
static int64_t qcow2_pwrite_fast(struct qcow2 *s, const uint8_t *buf, uint64_t len, uint64_t off,
				 struct tv_err *err)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t run, host, e;
		bool copied;
		enum qcow2_ctype t;
		int rc;

		pthread_mutex_lock(&s->cache_lock);
		rc = qcow2_map(s, off + done, len - done, &run, &host, &e, &copied, &t, err);
		pthread_mutex_unlock(&s->cache_lock);
		if (rc < 0)
			return -1;
		/* Anything unusual (allocation, a mapping onto metadata) is
		 * handled, and reported, on the exclusive path. */
		if (t != QC_NORMAL || !copied || qcow2_overlaps_meta(s, host, run))
			break;
		if (blk_data_pwrite(s->b, buf + done, run, host) < 0)
			return tv_errno(err, "%s: write at %llu failed", s->b->path,
					(unsigned long long)host);
		done += run;
	}
	return (int64_t)done;
}

static int qcow2_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off,
			struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	struct qcow2_wq wq = {.n = 0};
	int64_t done;
	int rc;

	pthread_rwlock_rdlock(&b->lock);
	done = b->readonly ? 0 : qcow2_pwrite_fast(s, buf, len, off, err);
	pthread_rwlock_unlock(&b->lock);
	if (done < 0)
		return -1;
	if ((uint64_t)done == len)
		return 0;
	pthread_rwlock_wrlock(&b->lock);
	if (b->readonly)
		rc = tv_errf(err, "%s: image is read-only", b->path);
	else
		rc = qcow2_write_alloc(s, (const uint8_t *)buf + done, len - (uint64_t)done,
				       off + (uint64_t)done, &wq, err);
	pthread_rwlock_unlock(&b->lock);
	/* Data for fresh clusters goes out in parallel with other requests. */
	for (size_t i = 0; i < wq.n; i++) {
		if (rc == 0 && blk_data_pwrite(b, wq.r[i].buf, wq.r[i].len, wq.r[i].host) < 0) {
			rc = tv_errno(err, "%s: write at %llu failed", b->path,
				      (unsigned long long)wq.r[i].host);
			s->short_tail = true;
		}
		__atomic_sub_fetch(&s->alloc_inflight, 1, __ATOMIC_ACQ_REL);
	}
	return rc;
}

static int qcow2_flush(struct blk *b, struct tv_err *err)
{
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = qcow2_flush_locked(qcow2_state(b), err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static int write_zero_bytes(struct qcow2 *s, uint64_t off, uint64_t len, struct tv_err *err)
{
	uint64_t chunk = MIN(len, 1ull << 20);
	uint8_t *z = xcalloc(1, chunk ? chunk : 1);
	int rc = 0;

	while (len > 0 && rc == 0) {
		uint64_t n = MIN(len, chunk);
		rc = qcow2_write_alloc(s, z, n, off, NULL, err);
		off += n;
		len -= n;
	}
	free(z);
	return rc;
}

static int qcow2_discard(struct blk *b, uint64_t off, uint64_t len, bool zero, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	uint64_t cs = s->cluster_size, end = off + len;
	uint64_t a = ALIGN_UP(off, cs), z = ALIGN_DOWN(end, cs);
	int rc = 0;

	/* The last cluster counts as whole when the disk ends inside it. */
	if (end == b->size)
		z = ALIGN_UP(end, cs);
	pthread_rwlock_wrlock(&b->lock);
	if (s->version < 3 && b->backing) {
		rc = write_zero_bytes(s, off, len, err);
	} else if (a >= z) {
		rc = write_zero_bytes(s, off, len, err);
	} else {
		if (off < a)
			rc = write_zero_bytes(s, off, a - off, err);
		if (rc == 0)
			rc = qcow2_zero_clusters(s, a, z - a, zero, err);
		if (rc == 0 && z < end)
			rc = write_zero_bytes(s, z, end - z, err);
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static int qcow2_resize(struct blk *b, uint64_t size, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	uint64_t cover = s->l2_entries << s->cluster_bits, need = size / cover + (size % cover != 0);
	uint64_t old = b->size, bsize = b->backing ? blk_size(b->backing) : 0;
	uint8_t v[8];
	int rc = -1;

	pthread_rwlock_wrlock(&b->lock);
	if (need * 8 > QCOW2_MAX_L1_BYTES) {
		tv_errf(err, "%s: %llu bytes is too large for %llu-byte clusters", b->path,
			(unsigned long long)size, (unsigned long long)s->cluster_size);
		goto out;
	}
	if (bsize > old && s->version < 3) {
		tv_errf(err, "%s: cannot grow a version 2 image past a longer backing file", b->path);
		goto out;
	}
	if (qcow2_mark_dirty(s, err) < 0 || qcow2_grow_l1(s, need, err) < 0)
		goto out;
	/* Whatever lay past the old end (VM state, a longer backing file) must
	 * not show through: the new area reads as zeros. */
	if (qcow2_zero_clusters(s, ALIGN_UP(old, s->cluster_size),
				ALIGN_UP(size, s->cluster_size) - MIN(ALIGN_UP(old, s->cluster_size),
								      ALIGN_UP(size, s->cluster_size)),
				true, err) < 0)
		goto out;
	if (qcow2_flush_locked(s, err) < 0)
		goto out;
	qcow2_put_be64(v, size);
	if (qcow2_header_write(s, QH_SIZE, v, 8, err) < 0 || qcow2_sync(s, err) < 0)
		goto out;
	b->size = size;
	rc = 0;
out:
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static int compress_cluster(struct qcow2 *s, const uint8_t *in, uint8_t *out, size_t *outlen)
{
	size_t cs = s->cluster_size;

	if (s->compression_type == 1) {
		size_t r = ZSTD_compress(out, cs, in, cs, 1);
		if (ZSTD_isError(r))
			return -1;
		*outlen = r;
		return 0;
	}
	z_stream z = {0};
	int rc;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)cs;
	z.next_out = out;
	z.avail_out = (uInt)cs;
	rc = deflate(&z, Z_FINISH);
	*outlen = cs - z.avail_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

static int qcow2_write_compressed_locked(struct qcow2 *s, const uint8_t *buf, size_t len,
					 uint64_t off, struct tv_err *err)
{
	uint64_t cs = s->cluster_size, l1i = off >> (s->cluster_bits + s->l2_bits);
	uint64_t l2i = (off >> s->cluster_bits) & (s->l2_entries - 1), coff, e, *l2;
	uint8_t *in = xcalloc(1, cs), *out = xmalloc(cs);
	size_t clen;
	int rc = -1;

	memcpy(in, buf, len);
	if (compress_cluster(s, in, out, &clen) < 0 || clen >= cs - 512 + 1) {
		rc = qcow2_write_alloc(s, in, MIN(cs, s->b->size - off), off, NULL, err);
		goto out;
	}
	if (qcow2_mark_dirty(s, err) < 0 || qcow2_l2_get_for_write(s, l1i, &l2, err) < 0)
		goto out;
	e = qcow2_be64(&l2[l2i]);
	if (qcow2_entry_type(s, e) != QC_UNALLOC && e != QCOW2_OFLAG_ZERO) {
		qcow2_cache_put(s->l2_cache, l2);
		tv_errf(err, "%s: cluster at %llu is already allocated", s->b->path,
			(unsigned long long)off);
		goto out;
	}
	if (s->compressed_next && (s->compressed_next & (cs - 1)) + clen <= cs) {
		coff = s->compressed_next;
		if (qcow2_refcount_update(s, coff, 1, 1, err) < 0) {
			qcow2_cache_put(s->l2_cache, l2);
			goto out;
		}
	} else if (!(coff = qcow2_alloc_clusters(s, 1, err))) {
		qcow2_cache_put(s->l2_cache, l2);
		goto out;
	}
	if (pwrite_full(s->b->fd, out, clen, coff) < 0) {
		qcow2_cache_put(s->l2_cache, l2);
		tv_errno(err, "%s: write at %llu failed", s->b->path, (unsigned long long)coff);
		goto out;
	}
	s->deps_unsynced = true;
	s->compressed_next = (coff + clen) & (cs - 1) ? coff + clen : 0;
	e = QCOW2_OFLAG_COMPRESSED | coff |
	    ((((coff + clen - 1) >> 9) - (coff >> 9)) << s->csize_shift);
	qcow2_put_be64(&l2[l2i], e);
	qcow2_cache_mark_dirty(s->l2_cache, l2);
	qcow2_cache_put(s->l2_cache, l2);
	rc = 0;
out:
	free(in);
	free(out);
	return rc;
}

static int qcow2_write_compressed(struct blk *b, const void *buf, size_t len, uint64_t off,
				  struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	int rc;

	if (off & (s->cluster_size - 1) || (len != s->cluster_size && off + len != b->size) ||
	    len > s->cluster_size)
		return tv_errf(err, "%s: compressed writes must cover one whole cluster", b->path);
	pthread_rwlock_wrlock(&b->lock);
	rc = qcow2_write_compressed_locked(s, buf, len, off, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static void qcow2_get_info(struct blk *b, struct blk_info *info)
{
	struct qcow2 *s = qcow2_state(b);

	info->cluster_size = s->cluster_size;
	info->version = s->version;
	info->refcount_bits = s->refcount_bits;
	info->compression = s->compression_type == 1 ? "zstd" : "zlib";
	info->backing = s->backing_name;
	info->backing_fmt = s->backing_fmt;
	info->nb_snapshots = (int)s->nb_snapshots;
	info->dirty = s->incompat & QCOW2_INCOMPAT_DIRTY;
	info->corrupt = s->incompat & QCOW2_INCOMPAT_CORRUPT;
	info->lazy_refcounts = s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
}

static int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum,
			      uint64_t *host_off, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	uint64_t run, host, e;
	bool copied;
	enum qcow2_ctype t;
	int rc;

	pthread_rwlock_rdlock(&b->lock);
	pthread_mutex_lock(&s->cache_lock);
	rc = qcow2_map(s, off, len, &run, &host, &e, &copied, &t, err);
	pthread_mutex_unlock(&s->cache_lock);
	pthread_rwlock_unlock(&b->lock);
	if (rc < 0)
		return -1;
	*pnum = run;
	*host_off = host;
	switch (t) {
	case QC_NORMAL:
		return BLK_STATUS_DATA | BLK_STATUS_ALLOCATED;
	case QC_COMPRESSED:
		*host_off = e & ((1ull << s->csize_shift) - 1);
		return BLK_STATUS_DATA | BLK_STATUS_ALLOCATED | BLK_STATUS_COMPRESSED;
	case QC_ZERO:
		return BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED;
	default:
		break;
	}
	if (b->backing && off < blk_size(b->backing)) {
		uint64_t n;
		rc = blk_block_status(b->backing, off, MIN(run, blk_size(b->backing) - off), &n,
				      host_off, err);
		if (rc < 0)
			return -1;
		*pnum = n;
		return rc & ~BLK_STATUS_ALLOCATED;
	}
	return BLK_STATUS_ZERO;
}

static int qcow2_vmstate_rw(struct blk *b, void *buf, size_t len, uint64_t off, bool write,
			    struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	uint64_t cover = s->l2_entries << s->cluster_bits;
	uint64_t base = (b->size + cover - 1) / cover * cover;
	int rc;

	if (off + len < off || (base + off + len) / cover + 1 > QCOW2_MAX_L1_BYTES / 8)
		return tv_errf(err, "%s: VM state of %llu bytes does not fit", b->path,
			       (unsigned long long)(off + len));
	if (!write) {
		pthread_rwlock_rdlock(&b->lock);
		rc = qcow2_read_range(s, buf, len, base + off, err);
	} else {
		pthread_rwlock_wrlock(&b->lock);
		rc = qcow2_write_alloc(s, buf, len, base + off, NULL, err);
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static int qcow2_check(struct blk *b, int fix, struct blk_check_result *res, struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	int rc;

	pthread_rwlock_wrlock(&b->lock);
	rc = b->readonly ? 0 : qcow2_flush_locked(s, err);
	if (rc == 0 && fix)
		rc = qcow2_mark_dirty(s, err);
	if (rc == 0)
		rc = qcow2_check_image(s, fix, res, err);
	if (rc == 0 && fix && (s->incompat & QCOW2_INCOMPAT_CORRUPT) &&
	    res->corruptions == res->corruptions_fixed) {
		s->incompat &= ~QCOW2_INCOMPAT_CORRUPT;
		rc = write_incompat(s, err);
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

/* Creation: header, a one-cluster refcount table and one refcount block;
 * the L1 table is then added through the ordinary growth path. */
static int qcow2_create(const char *path, int fd, uint64_t size, const struct blk_create_opts *o,
			struct tv_err *err)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 65536, pos;
	int rbits = o->refcount_bits ? o->refcount_bits : 16, order = 0, cbits = 0, zstd = 0;
	const char *bfmt = o->backing_fmt;
	uint8_t *h;
	struct blk *b;
	int rc = -1;

	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return tv_errf(err, "%s: cluster size %llu is not a power of two from 512 to 2M",
			       path, (unsigned long long)cs);
	while ((1ull << cbits) < cs)
		cbits++;
	while ((1 << order) < rbits)
		order++;
	if ((1 << order) != rbits || order > 6)
		return tv_errf(err, "%s: refcount bits %d is not a power of two from 1 to 64", path,
			       rbits);
	if (o->compression && strcmp(o->compression, "zstd") == 0)
		zstd = 1;
	else if (o->compression && strcmp(o->compression, "zlib") != 0)
		return tv_errf(err, "%s: compression type '%s' (expected zlib or zstd)", path,
			       o->compression);
	if (o->backing) {
		char *bp = blk_backing_path(path, o->backing);
		struct blk *bb;
		if (blk_open(&bb, bp, bfmt, BLK_SHARE, err) < 0) {
			free(bp);
			return tv_err_prefix(err, "%s: backing file: ", path);
		}
		free(bp);
		if (!bfmt)
			bfmt = blk_format(bb);
		bfmt = strcmp(bfmt, "qcow2") == 0 ? "qcow2" : "raw";
		if (size == 0 && o->size_from_backing)
			size = blk_size(bb);
		blk_close(bb, NULL);
		if (strlen(o->backing) > 1023)
			return tv_errf(err, "%s: backing file name longer than 1023 bytes", path);
	}
	size = ALIGN_UP(size, 512);
	h = xcalloc(3, cs);
	qcow2_put_be32(h, QCOW2_MAGIC);
	qcow2_put_be32(h + QH_VERSION, 3);
	qcow2_put_be32(h + QH_CLUSTER_BITS, (uint32_t)cbits);
	qcow2_put_be64(h + QH_SIZE, size);
	qcow2_put_be64(h + QH_RT_OFFSET, cs);
	qcow2_put_be32(h + QH_RT_CLUSTERS, 1);
	qcow2_put_be64(h + QH_INCOMPAT, zstd ? QCOW2_INCOMPAT_COMPRESSION : 0);
	qcow2_put_be32(h + QH_REFCOUNT_ORDER, (uint32_t)order);
	qcow2_put_be32(h + QH_HEADER_LENGTH, 112);
	h[QH_COMPRESSION_TYPE] = (uint8_t)zstd;
	pos = 112;
	if (o->backing) {
		size_t fl = strlen(bfmt), bl = strlen(o->backing);
		qcow2_put_be32(h + pos, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put_be32(h + pos + 4, (uint32_t)fl);
		memcpy(h + pos + 8, bfmt, fl);
		pos += 8 + ALIGN_UP(fl, 8);
		pos += 8; /* end of extensions */
		if (pos + bl > cs) {
			free(h);
			return tv_errf(err, "%s: backing file name does not fit in a %llu-byte "
					    "cluster",
				       path, (unsigned long long)cs);
		}
		memcpy(h + pos, o->backing, bl);
		qcow2_put_be64(h + QH_BACKING_OFFSET, pos);
		qcow2_put_be32(h + QH_BACKING_SIZE, (uint32_t)bl);
	}
	/* Refcount table entry 0 -> block at cluster 2, counting clusters 0-2. */
	qcow2_put_be64(h + cs, 2 * cs);
	b = xcalloc(1, sizeof(*b));
	b->fd = fd;
	b->dfd = fd;
	b->path = (char *)path;
	for (int c = 0; c < 3; c++) {
		if (order < 3)
			h[2 * cs + c / (8 / rbits)] |= (uint8_t)(1u << (rbits * (c % (8 / rbits))));
		else
			h[2 * cs + (c + 1) * (size_t)(rbits / 8) - 1] = 1;
	}
	if (pwrite_full(fd, h, 3 * cs, 0) < 0) {
		free(h);
		free(b);
		return tv_errno(err, "%s: cannot write", path);
	}
	free(h);
	pthread_rwlock_init(&b->lock, NULL);
	if (qcow2_open_state(b, BLK_NO_BACKING, true, err) == 0) {
		struct qcow2 *s = qcow2_state(b);
		uint64_t cover = s->l2_entries << s->cluster_bits;
		uint64_t need = size / cover + (size % cover != 0);
		rc = need ? qcow2_grow_l1(s, need, err) : 0;
		if (rc == 0)
			rc = qcow2_flush_locked(s, err);
		if (rc == 0 && s->dirty_on_disk) {
			s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			rc = write_incompat(s, err);
		}
		qcow2_free_state(s);
	}
	pthread_rwlock_destroy(&b->lock);
	free(b);
	return rc;
}

const struct blk_driver blk_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.create = qcow2_create,
	.pread = qcow2_pread,
	.pwrite = qcow2_pwrite,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.resize = qcow2_resize,
	.write_compressed = qcow2_write_compressed,
	.get_info = qcow2_get_info,
	.block_status = qcow2_block_status,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.snapshot_rename = qcow2_snapshot_rename,
	.snapshot_count = qcow2_snapshot_count,
	.vmstate_rw = qcow2_vmstate_rw,
	.check = qcow2_check,
};
