/* qcow2 metadata as others see it: after random writes, discards, zero
 * writes and snapshot operations, the L2 tables and refcount blocks in the
 * file are parsed by a reader of its own here (nothing from vm/block) and
 * compared with what the writes must have left: every guest byte found
 * through the on-disk L2 entries equals the shadow copy, every stored
 * refcount equals the references counted from all L1/L2 tables, COPIED
 * flags match, tables are updated where they are rather than moved, and
 * `qemu-img map` / `qemu-img check` agree. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vm/block/block.h"
#include "vm/util.h"

static char tmpdir[256];

static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static char *tpath(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static void must(int rc, struct tv_err *err)
{
	if (rc < 0)
		fail_msg("%s", err->msg);
}

static const char *qemu_img(void)
{
	const char *q = getenv("QEMU_IMG");
	return q && *q ? q : NULL;
}

/* ---- An independent reader of the qcow2 file ---- */

#define L1_MASK 0x00fffffffffffe00ull
#define F_COPIED (1ull << 63)
#define F_COMPRESSED (1ull << 62)
#define F_ZERO 1ull

struct qimg {
	uint8_t *f;
	uint64_t fsize;
	int version, cluster_bits, rc_bits;
	uint64_t cs, size, l1_off, rt_off, snap_off, snap_bytes;
	uint32_t l1_size, rt_clusters, nsnap;
	uint64_t snap_l1_off[64];
	uint32_t snap_l1_size[64];
	uint64_t *refs; /* references counted from the tables, per cluster */
	uint64_t nrefs;
};

static uint64_t be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static uint32_t be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Bytes of the file; reading past its end is a failure of the image. */
static const uint8_t *qimg_at(const struct qimg *q, uint64_t off, uint64_t len, const char *what)
{
	if (off > q->fsize || len > q->fsize - off)
		fail_msg("%s at %llu+%llu lies past the end of the file (%llu bytes)", what,
			 (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)q->fsize);
	return q->f + off;
}

static void qimg_free(struct qimg *q)
{
	free(q->f);
	free(q->refs);
	memset(q, 0, sizeof(*q));
}

static void count_ref(struct qimg *q, uint64_t off, uint64_t len)
{
	uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;

	if (!len)
		return;
	if (last >= q->nrefs) {
		uint64_t n = MAX(last + 1, q->nrefs * 2);
		q->refs = xrealloc(q->refs, n * 8);
		memset(q->refs + q->nrefs, 0, (n - q->nrefs) * 8);
		q->nrefs = n;
	}
	for (uint64_t c = first; c <= last; c++)
		q->refs[c]++;
}

static void count_l1(struct qimg *q, uint64_t l1_off, uint32_t l1_size)
{
	uint64_t l2n = q->cs / 8;

	count_ref(q, l1_off, (uint64_t)l1_size * 8);
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2 = be64(qimg_at(q, l1_off + 8ull * i, 8, "L1 entry")) & L1_MASK;
		const uint8_t *t;
		if (!l2)
			continue;
		count_ref(q, l2, q->cs);
		t = qimg_at(q, l2, q->cs, "L2 table");
		for (uint64_t j = 0; j < l2n; j++) {
			uint64_t e = be64(t + 8 * j);
			if (e & F_COMPRESSED) {
				int x = 62 - (q->cluster_bits - 8);
				uint64_t off = e & ((1ull << x) - 1);
				uint64_t nsec = ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
				count_ref(q, off & ~511ull, nsec * 512);
			} else if (e & L1_MASK) {
				count_ref(q, e & L1_MASK, q->cs);
			}
		}
	}
}

static void qimg_load(struct qimg *q, const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	const uint8_t *h;
	uint64_t p;

	memset(q, 0, sizeof(*q));
	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	q->fsize = (uint64_t)st.st_size;
	q->f = xmalloc(q->fsize + 1);
	assert_int_equal(fread(q->f, 1, q->fsize, fp), q->fsize);
	fclose(fp);
	h = qimg_at(q, 0, 104, "header");
	assert_true(be32(h) == 0x514649fbu);
	q->version = (int)be32(h + 4);
	q->cluster_bits = (int)be32(h + 20);
	q->cs = 1ull << q->cluster_bits;
	q->size = be64(h + 24);
	q->l1_size = be32(h + 36);
	q->l1_off = be64(h + 40);
	q->rt_off = be64(h + 48);
	q->rt_clusters = be32(h + 56);
	q->nsnap = be32(h + 60);
	q->snap_off = be64(h + 64);
	q->rc_bits = q->version >= 3 ? 1 << be32(h + 96) : 16;
	assert_true(q->nsnap <= ARRAY_SIZE(q->snap_l1_off));
	/* Snapshot table: fixed part, extra data, id, name, padded to 8. */
	p = q->snap_off;
	for (uint32_t i = 0; i < q->nsnap; i++) {
		const uint8_t *e = qimg_at(q, p, 40, "snapshot entry");
		uint64_t len = 40ull + be32(e + 36) + be16(e + 12) + be16(e + 14);
		q->snap_l1_off[i] = be64(e);
		q->snap_l1_size[i] = be32(e + 8);
		p += ALIGN_UP(len, 8);
	}
	q->snap_bytes = p - q->snap_off;
	/* Every reference to every cluster. */
	count_ref(q, 0, q->cs);
	count_ref(q, q->rt_off, (uint64_t)q->rt_clusters * q->cs);
	for (uint64_t i = 0; i < (uint64_t)q->rt_clusters * q->cs / 8; i++) {
		uint64_t rb = be64(qimg_at(q, q->rt_off + 8 * i, 8, "refcount table")) & ~511ull;
		if (rb)
			count_ref(q, rb, q->cs);
	}
	if (q->nsnap)
		count_ref(q, q->snap_off, q->snap_bytes);
	count_l1(q, q->l1_off, q->l1_size);
	for (uint32_t i = 0; i < q->nsnap; i++)
		count_l1(q, q->snap_l1_off[i], q->snap_l1_size[i]);
}

/* The refcount stored for cluster c (0 where no refcount block covers it). */
static uint64_t qimg_refcount(const struct qimg *q, uint64_t c)
{
	uint64_t per = q->cs * 8 / (uint64_t)q->rc_bits, i = c / per, k = c % per, rb;
	const uint8_t *b;

	if (i >= (uint64_t)q->rt_clusters * q->cs / 8)
		return 0;
	rb = be64(q->f + q->rt_off + 8 * i) & ~511ull;
	if (!rb)
		return 0;
	b = qimg_at(q, rb, q->cs, "refcount block");
	switch (q->rc_bits) {
	case 64:
		return be64(b + 8 * k);
	case 32:
		return be32(b + 4 * k);
	case 16:
		return be16(b + 2 * k);
	case 8:
		return b[k];
	default:
		return (b[k * q->rc_bits / 8] >> (k * q->rc_bits % 8)) & ((1u << q->rc_bits) - 1);
	}
}

static uint64_t qimg_counted(const struct qimg *q, uint64_t c)
{
	return c < q->nrefs ? q->refs[c] : 0;
}

/* exact: after a flush, stored refcounts equal the references. Otherwise
 * (after a crash) a cluster may be leaked (stored higher) but never
 * referenced more often than stored, and no COPIED flag may claim a shared
 * cluster. */
static void qimg_check_refcounts(const struct qimg *q, bool exact, const char *when)
{
	uint64_t n = MAX(q->nrefs, ALIGN_UP(q->fsize, q->cs) >> q->cluster_bits);

	for (uint64_t c = 0; c < n; c++) {
		uint64_t want = qimg_counted(q, c), have = qimg_refcount(q, c);
		if (exact ? have != want : have < want)
			fail_msg("%s: cluster %llu (offset %llu): refcount %llu stored, %llu "
				 "references in the tables",
				 when, (unsigned long long)c, (unsigned long long)(c << q->cluster_bits),
				 (unsigned long long)have, (unsigned long long)want);
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t e = be64(q->f + q->l1_off + 8ull * i), l2 = e & L1_MASK;
		const uint8_t *t;
		if (!l2)
			continue;
		if ((e & F_COPIED) ? qimg_refcount(q, l2 >> q->cluster_bits) != 1
				   : exact && qimg_refcount(q, l2 >> q->cluster_bits) == 1)
			fail_msg("%s: L1 entry %u: COPIED %d but the L2 table's refcount is %llu",
				 when, i, !!(e & F_COPIED),
				 (unsigned long long)qimg_refcount(q, l2 >> q->cluster_bits));
		t = q->f + l2;
		for (uint64_t j = 0; j < q->cs / 8; j++) {
			uint64_t x = be64(t + 8 * j), rc;
			if ((x & F_COMPRESSED) || !(x & L1_MASK))
				continue;
			rc = qimg_refcount(q, (x & L1_MASK) >> q->cluster_bits);
			if ((x & F_COPIED) ? rc != 1 : exact && rc == 1)
				fail_msg("%s: L2 entry %llu of table %llu: COPIED %d, refcount %llu",
					 when, (unsigned long long)j, (unsigned long long)l2,
					 !!(x & F_COPIED), (unsigned long long)rc);
		}
	}
}

/* The L2 entry of guest offset off in the active table (0: none). */
static uint64_t qimg_l2e(const struct qimg *q, uint64_t off)
{
	uint64_t l1i = off >> (2 * q->cluster_bits - 3), l2;

	if (l1i >= q->l1_size)
		return 0;
	l2 = be64(q->f + q->l1_off + 8 * l1i) & L1_MASK;
	if (!l2)
		return 0;
	return be64(q->f + l2 + 8 * ((off >> q->cluster_bits) & (q->cs / 8 - 1)));
}

/* Guest bytes found through the on-disk tables (images without backing
 * file or compressed clusters here). */
static void qimg_read(const struct qimg *q, uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		uint64_t in = off & (q->cs - 1), n = MIN(len, q->cs - in), e = qimg_l2e(q, off);
		assert_false(e & F_COMPRESSED);
		if ((q->version >= 3 && (e & F_ZERO)) || !(e & L1_MASK)) {
			memset(buf, 0, n);
		} else {
			uint64_t host = (e & L1_MASK) + in;
			/* The file may end inside the last cluster. */
			uint64_t have = host < q->fsize ? MIN(n, q->fsize - host) : 0;
			memcpy(buf, q->f + host, have);
			memset(buf + have, 0, n - have);
		}
		buf += n;
		off += n;
		len -= n;
	}
}

static void qimg_compare(const struct qimg *q, const uint8_t *shadow, uint64_t size,
			 const uint8_t *skip, const char *when)
{
	uint8_t *buf = xmalloc(size);

	assert_true(q->size == size);
	qimg_read(q, buf, size, 0);
	for (uint64_t i = 0; i < size; i++)
		if ((!skip || !skip[i]) && buf[i] != shadow[i])
			fail_msg("%s: guest byte %llu through the on-disk L2 entry 0x%llx is "
				 "0x%02x, expected 0x%02x",
				 when, (unsigned long long)i,
				 (unsigned long long)qimg_l2e(q, i), buf[i], shadow[i]);
	free(buf);
}

/* ---- qemu-img's view ---- */

static char *run_capture(const char *cmd, int *status)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 4096, n = 0, r;
	char *out = xmalloc(cap);

	assert_non_null(f);
	while ((r = fread(out + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2)
			out = xrealloc(out, cap *= 2);
	}
	out[n] = 0;
	*status = pclose(f);
	return out;
}

static long long json_int(const char *s, const char *key, long long dflt)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(s, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : dflt;
}

/* qemu-img check: no error of any kind, and the same allocated clusters
 * and image end as the tables here say. */
static void qemu_check_json(const struct qimg *q, const char *path, const char *when)
{
	char *cmd, *out;
	uint64_t alloc = 0, end = 0;
	int st;

	if (!qemu_img())
		return;
	cmd = xasprintf("'%s' check -U --output=json '%s'", qemu_img(), path);
	out = run_capture(cmd, &st);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || json_int(out, "check-errors", -1) != 0 ||
	    json_int(out, "corruptions", 0) || json_int(out, "leaks", 0))
		fail_msg("%s: qemu-img check exits %d:\n%s", when, WEXITSTATUS(st), out);
	for (uint64_t off = 0; off < q->size; off += q->cs) {
		uint64_t e = qimg_l2e(q, off);
		alloc += (e & F_COMPRESSED) || (e & L1_MASK);
	}
	for (uint64_t c = 0; c < ALIGN_UP(q->fsize, q->cs) >> q->cluster_bits; c++)
		if (qimg_refcount(q, c))
			end = (c + 1) << q->cluster_bits;
	if (json_int(out, "allocated-clusters", -1) != (long long)alloc ||
	    json_int(out, "image-end-offset", -1) != (long long)end)
		fail_msg("%s: qemu-img check counts %lld allocated clusters ending at %lld; the "
			 "tables say %llu ending at %llu",
			 when, json_int(out, "allocated-clusters", -1),
			 json_int(out, "image-end-offset", -1), (unsigned long long)alloc,
			 (unsigned long long)end);
	free(out);
	free(cmd);
}

/* qemu-img map against the L2 entries parsed here and against our own
 * blk_block_status: the same data/zero status and host offsets. */
static void qemu_map_compare(const struct qimg *q, struct blk *b, const char *path,
			     const char *when)
{
	char *cmd, *out, *p;
	uint64_t covered = 0;
	struct tv_err err;
	int st;

	if (!qemu_img())
		return;
	cmd = xasprintf("'%s' map -U -f qcow2 --output=json '%s'", qemu_img(), path);
	out = run_capture(cmd, &st);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (p = strchr(out, '{'); p; p = strchr(p + 1, '{')) {
		long long start = json_int(p, "start", -1), len = json_int(p, "length", -1);
		char *close = strchr(p, '}');
		bool data, zero;
		long long hoff;
		assert_non_null(close);
		*close = 0;
		data = strstr(p, "\"data\": true") != NULL;
		zero = strstr(p, "\"zero\": true") != NULL;
		hoff = json_int(p, "offset", -1);
		assert_true(start == (long long)covered && len > 0);
		for (uint64_t o = (uint64_t)start; o < (uint64_t)(start + len);) {
			uint64_t e = qimg_l2e(q, o), n = MIN(q->cs - (o & (q->cs - 1)),
							     (uint64_t)(start + len) - o);
			bool idata = (e & L1_MASK) && !(q->version >= 3 && (e & F_ZERO));
			uint64_t pnum, host = 0;
			int s;
			if (idata != data || (!idata && !zero) ||
			    (idata && (uint64_t)hoff + (o - (uint64_t)start) !=
					      (e & L1_MASK) + (o & (q->cs - 1))))
				fail_msg("%s: qemu-img map says data=%d zero=%d offset=%lld at guest "
					 "%llu, its L2 entry is 0x%llx",
					 when, data, zero, hoff, (unsigned long long)o,
					 (unsigned long long)e);
			if (b) {
				s = blk_block_status(b, o, n, &pnum, &host, &err);
				must(s, &err);
				/* Over data, qemu adds "zero" where the host file
				 * has a hole; compare that only elsewhere. */
				if (!!(s & BLK_STATUS_DATA) != data ||
				    (!data && !!(s & BLK_STATUS_ZERO) != zero) ||
				    (data && host != (uint64_t)hoff + (o - (uint64_t)start)))
					fail_msg("%s: blk_block_status at %llu: 0x%x host %llu; qemu-img "
						 "map: data=%d zero=%d offset=%lld",
						 when, (unsigned long long)o, s,
						 (unsigned long long)host, data, zero, hoff);
			}
			o += n;
		}
		covered += (uint64_t)len;
		p = close;
	}
	assert_true(covered == q->size);
	free(out);
	free(cmd);
}

/* ---- Random operations, checked at every flush ---- */

static void fill(uint8_t *p, uint64_t n)
{
	uint64_t v = rnd();

	for (uint64_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			v = rnd();
		p[i] = (uint8_t)(v >> (8 * (i & 7))) | 1;
	}
}

static void pick(uint64_t size, uint64_t cs, uint64_t *off, uint64_t *len)
{
	switch (rnd_below(4)) {
	case 0:
		*len = 1 + rnd_below(700);
		break;
	case 1:
		*len = cs * (1 + rnd_below(3));
		break;
	default:
		*len = 1 + rnd_below(3 * cs + 1000);
	}
	*len = MIN(*len, size);
	*off = rnd_below(2) ? ALIGN_DOWN(rnd_below(size - *len + 1), cs)
			    : rnd_below(size - *len + 1);
}

struct meta_run {
	uint64_t cs, size;
	int refcount_bits;
	uint64_t l2_cache;
	int ops, max_snaps; /* 0: 4 */
	uint64_t seed;
};

struct tables {
	uint64_t *l1, *rt;
	uint32_t l1_size, rt_n;
};

static void tables_take(struct tables *t, const struct qimg *q)
{
	t->l1_size = q->l1_size;
	t->rt_n = (uint32_t)((uint64_t)q->rt_clusters * q->cs / 8);
	t->l1 = xrealloc(t->l1, (t->l1_size + 1) * 8ull);
	t->rt = xrealloc(t->rt, (t->rt_n + 1) * 8ull);
	for (uint32_t i = 0; i < t->l1_size; i++)
		t->l1[i] = be64(q->f + q->l1_off + 8ull * i);
	for (uint32_t i = 0; i < t->rt_n; i++)
		t->rt[i] = be64(q->f + q->rt_off + 8ull * i);
}

/* Between two flushes without snapshot operations, an L2 table the image
 * owned stays where it was (its entries are rewritten in place) and
 * refcount blocks never move. */
static void tables_in_place(const struct tables *t, const struct qimg *q, const char *when)
{
	for (uint32_t i = 0; i < t->l1_size && i < q->l1_size; i++) {
		uint64_t now = be64(q->f + q->l1_off + 8ull * i);
		if ((t->l1[i] & F_COPIED) && now != t->l1[i])
			fail_msg("%s: L1 entry %u moved from 0x%llx to 0x%llx", when, i,
				 (unsigned long long)t->l1[i], (unsigned long long)now);
	}
	for (uint32_t i = 0; i < t->rt_n; i++) {
		uint64_t now = i < (uint64_t)q->rt_clusters * q->cs / 8
				       ? be64(q->f + q->rt_off + 8ull * i)
				       : 0;
		if (t->rt[i] && now != t->rt[i])
			fail_msg("%s: refcount table entry %u moved from 0x%llx to 0x%llx", when, i,
				 (unsigned long long)t->rt[i], (unsigned long long)now);
	}
}

static void verify_open_image(struct blk *b, const char *path, const uint8_t *shadow,
			      uint64_t size, const char *when)
{
	struct qimg q;

	qimg_load(&q, path);
	qimg_check_refcounts(&q, true, when);
	qimg_compare(&q, shadow, size, NULL, when);
	qemu_map_compare(&q, b, path, when);
	qemu_check_json(&q, path, when);
	qimg_free(&q);
}

static void meta_run(const struct meta_run *r)
{
	char *path = tpath("meta.qcow2"), when[96];
	struct blk_create_opts o = {.cluster_size = r->cs, .refcount_bits = r->refcount_bits};
	struct blk_open_opts oo = {.l2_cache_size = r->l2_cache};
	uint64_t size = r->size;
	uint8_t *shadow = xcalloc(1, size), *snap_data[4];
	uint64_t snap_size[4];
	char snap_name[4][16];
	int nsnaps = 0, checks = 0, in_place_checks = 0;
	bool snap_op = true;
	struct tables t = {0};
	struct tv_err err;
	struct blk *b;

	rnd_state = r->seed;
	unlink(path);
	must(blk_create(path, "qcow2", size, &o, &err), &err);
	must(blk_open_opts(&b, path, "qcow2", 0, &oo, &err), &err);
	for (int op = 0; op < r->ops; op++) {
		uint64_t off, len, k = rnd_below(100);
		pick(size, r->cs, &off, &len);
		if (k < 50) {
			fill(shadow + off, len);
			must(blk_pwrite(b, shadow + off, len, off, &err), &err);
		} else if (k < 60) {
			must(blk_discard(b, off, len, &err), &err);
			memset(shadow + off, 0, len);
		} else if (k < 68) {
			must(blk_write_zeroes(b, off, len, &err), &err);
			memset(shadow + off, 0, len);
		} else if (k < 74 && nsnaps < (r->max_snaps ? r->max_snaps : 4)) {
			snprintf(snap_name[nsnaps], sizeof(snap_name[0]), "m%d", op);
			must(blk_snapshot_create(b, snap_name[nsnaps], 0, 0, &err), &err);
			snap_data[nsnaps] = xmalloc(size);
			memcpy(snap_data[nsnaps], shadow, size);
			snap_size[nsnaps++] = size;
			snap_op = true;
		} else if (k < 78 && nsnaps) {
			int i = (int)rnd_below((uint64_t)nsnaps);
			must(blk_snapshot_apply(b, snap_name[i], &err), &err);
			size = snap_size[i];
			shadow = xrealloc(shadow, size);
			memcpy(shadow, snap_data[i], size);
			snap_op = true;
		} else if (k < 81 && nsnaps) {
			int i = (int)rnd_below((uint64_t)nsnaps);
			must(blk_snapshot_delete(b, snap_name[i], &err), &err);
			free(snap_data[i]);
			nsnaps--;
			memcpy(snap_name[i], snap_name[nsnaps], sizeof(snap_name[0]));
			snap_data[i] = snap_data[nsnaps];
			snap_size[i] = snap_size[nsnaps];
			snap_op = true;
		} else if (k < 83) {
			uint64_t grow = ALIGN_UP(rnd_below(2 * r->cs) + 512, 512);
			must(blk_resize(b, size + grow, &err), &err);
			shadow = xrealloc(shadow, size + grow);
			memset(shadow + size, 0, grow);
			size += grow;
		} else if (k < 93) {
			/* A flush puts every table on disk: check it all there. */
			struct qimg q;
			must(blk_flush(b, &err), &err);
			snprintf(when, sizeof(when), "cluster %llu, after op %d",
				 (unsigned long long)r->cs, op);
			verify_open_image(b, path, shadow, size, when);
			qimg_load(&q, path);
			if (!snap_op) {
				tables_in_place(&t, &q, when);
				in_place_checks++;
			}
			tables_take(&t, &q);
			qimg_free(&q);
			snap_op = false;
			checks++;
		} else {
			must(blk_close(b, &err), &err);
			snprintf(when, sizeof(when), "cluster %llu, closed after op %d",
				 (unsigned long long)r->cs, op);
			verify_open_image(NULL, path, shadow, size, when);
			must(blk_open_opts(&b, path, "qcow2", 0, &oo, &err), &err);
		}
	}
	must(blk_close(b, &err), &err);
	snprintf(when, sizeof(when), "cluster %llu, at the end", (unsigned long long)r->cs);
	verify_open_image(NULL, path, shadow, size, when);
	/* The checks above must really have run, in place ones included. */
	assert_true(checks >= 5 && in_place_checks >= 2);
	for (int i = 0; i < nsnaps; i++)
		free(snap_data[i]);
	free(t.l1);
	free(t.rt);
	free(shadow);
	unlink(path);
	free(path);
}

static void test_meta_random(void **state)
{
	/* 512-byte clusters and an 8-table cache: many L2 tables and refcount
	 * blocks, evicted (so written) between flushes. 2-bit refcounts count
	 * up to 3: one snapshot (applying it counts both trees for a moment). */
	static const struct meta_run runs[] = {
		{.cs = 512, .size = 1 << 20, .refcount_bits = 16, .l2_cache = 8 * 512, .ops = 300,
		 .seed = 0x51},
		{.cs = 4096, .size = 6 << 20, .refcount_bits = 64, .ops = 250, .seed = 0x52},
		{.cs = 65536, .size = 24 << 20, .refcount_bits = 4, .ops = 200, .seed = 0x53},
		{.cs = 512, .size = 512 << 10, .refcount_bits = 2, .l2_cache = 8 * 512, .ops = 250,
		 .seed = 0x54, .max_snaps = 1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(runs); i++)
		meta_run(&runs[i]);
}

/* The reader above must agree with images qemu wrote, or its verdicts on
 * ours would mean nothing. */
static void test_meta_reader_on_qemu_images(void **state)
{
	const char *qio = getenv("QEMU_IO");
	char *path = tpath("q.qcow2"), *cmd;
	static const char *const sizes[] = {"512", "4k", "64k"};

	if (!qemu_img() || !qio || !*qio)
		skip();
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct qimg q;
		uint8_t *buf;
		unlink(path);
		cmd = xasprintf("'%s' create -q -f qcow2 -o cluster_size=%s,refcount_bits=8 '%s' 4M && "
				"'%s' -f qcow2 -c 'write -P 0x11 0 100k' -c 'write -P 0x22 1000k 3000' "
				"'%s' >/dev/null && '%s' snapshot -c one '%s' && "
				"'%s' -f qcow2 -c 'write -P 0x33 4k 200k' -c 'write -z 3M 512k' "
				"-c 'discard 0 64k' '%s' >/dev/null",
				qemu_img(), sizes[i], path, qio, path, qemu_img(), path, qio, path);
		assert_int_equal(system(cmd), 0);
		free(cmd);
		qimg_load(&q, path);
		qimg_check_refcounts(&q, true, "image written by qemu-io");
		buf = xmalloc(q.size);
		qimg_read(&q, buf, q.size, 0);
		assert_int_equal(buf[100], 0);
		assert_int_equal(buf[70000], 0x33);
		assert_int_equal(buf[150 * 1024], 0x33);
		assert_int_equal(buf[1000 * 1024 + 2999], 0x22);
		assert_int_equal(buf[3 * 1024 * 1024 + 5], 0);
		free(buf);
		qemu_map_compare(&q, NULL, path, "image written by qemu-io");
		qemu_check_json(&q, path, "image written by qemu-io");
		qimg_free(&q);
	}
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_reader_on_qemu_images),
		cmocka_unit_test(test_meta_random),
	};

	snprintf(tmpdir, sizeof(tmpdir), "%s/tv-qcow2-meta.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return 1;
	int rc = cmocka_run_group_tests_name("qcow2 metadata", tests, NULL, NULL);
	/* TV_META_KEEP=1 leaves the images for a look after a failure. */
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (!getenv("TV_META_KEEP") && system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
