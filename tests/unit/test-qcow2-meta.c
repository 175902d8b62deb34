/* qcow2 metadata as others see it: after random writes, discards, zero
 * writes and snapshot operations, the L2 tables and refcount blocks in the
 * file are parsed by a reader of its own here (nothing from vm/block) and
 * compared with what the writes must have left: every guest byte found
 * through the on-disk L2 entries equals the shadow copy, every stored
 * refcount equals the references counted from all L1/L2 tables, COPIED
 * flags match, tables are updated where they are rather than moved, and
 * `qemu-img map` / `qemu-img check` agree.
 *
 * Then a writer is stopped at chosen system calls (ptrace, with a seccomp
 * filter so only writes and syncs stop it): at L2 table writes, refcount
 * block writes, and the syncs after them, the write torn at a sector
 * boundary or not done, and the writes since the last fdatasync partly
 * undone as a power cut would lose them. The image must stay safe (no
 * cluster referenced more often than its refcount says, no COPIED flag on
 * a shared cluster, qemu-img check finding at worst leaks), keep every
 * flushed write, and be exact again after our open repairs it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vm/block/block.h"
#include "common/util.h"

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

/* TV_META_SEED varies the runs (soak testing); a failure names it. */
static uint64_t soak_seed(void)
{
	const char *e = getenv("TV_META_SEED");
	return e ? strtoull(e, NULL, 0) : 0;
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

#define L1_MASK	     0x00fffffffffffe00ull
#define F_COPIED     (1ull << 63)
#define F_COMPRESSED (1ull << 62)
#define F_ZERO	     1ull

struct qimg {
	uint8_t *f;
	uint64_t fsize;
	int version, cluster_bits, rc_bits;
	uint64_t cs, size, l1_off, rt_off, snap_off, snap_bytes;
	uint32_t l1_size, rt_clusters, nsnap;
	uint64_t snap_l1_off[64];
	uint32_t snap_l1_size[64];
	uint64_t *refs;		/* references counted from the tables, per cluster */
	uint64_t nrefs, maxref; /* allocated, highest referenced + 1 */
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
	q->maxref = MAX(q->maxref, last + 1);
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
				uint64_t nsec =
				    ((e >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
				count_ref(q, off & ~511ull, nsec * 512);
			} else if (e & L1_MASK) {
				count_ref(q, e & L1_MASK, q->cs);
			}
		}
	}
}

static void qimg_load_raw(struct qimg *q, const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;

	memset(q, 0, sizeof(*q));
	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	q->fsize = (uint64_t)st.st_size;
	q->f = xmalloc(q->fsize + 1);
	assert_int_equal(fread(q->f, 1, q->fsize, fp), q->fsize);
	fclose(fp);
}

static void qimg_load(struct qimg *q, const char *path)
{
	const uint8_t *h;
	uint64_t p;

	qimg_load_raw(q, path);
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
	/* Clusters past the end of the file that nothing references are not
	 * looked at (qemu-img check does not either: a power cut may keep a
	 * refcount and lose the write that would have grown the file). */
	uint64_t n = MAX(q->maxref, ALIGN_UP(q->fsize, q->cs) >> q->cluster_bits);

	for (uint64_t c = 0; c < n; c++) {
		uint64_t want = qimg_counted(q, c), have = qimg_refcount(q, c);
		if (exact ? have != want : have < want)
			fail_msg("%s: cluster %llu (offset %llu): refcount %llu stored, %llu "
				 "references in the tables",
				 when, (unsigned long long)c,
				 (unsigned long long)(c << q->cluster_bits),
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
				fail_msg(
				    "%s: L2 entry %llu of table %llu: COPIED %d, refcount %llu",
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
				 when, (unsigned long long)i, (unsigned long long)qimg_l2e(q, i),
				 buf[i], shadow[i]);
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
	/* (qemu-img leaves "allocated-clusters" out when there are none.) */
	if (json_int(out, "allocated-clusters", 0) != (long long)alloc ||
	    json_int(out, "image-end-offset", -1) != (long long)end)
		fail_msg("%s: qemu-img check counts %lld allocated clusters ending at %lld; the "
			 "tables say %llu ending at %llu",
			 when, json_int(out, "allocated-clusters", 0),
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
			uint64_t e = qimg_l2e(q, o),
				 n = MIN(q->cs - (o & (q->cs - 1)), (uint64_t)(start + len) - o);
			bool idata = (e & L1_MASK) && !(q->version >= 3 && (e & F_ZERO));
			uint64_t pnum, host = 0;
			int s;
			if (idata != data || (!idata && !zero) ||
			    (idata && (uint64_t)hoff + (o - (uint64_t)start) !=
					  (e & L1_MASK) + (o & (q->cs - 1))))
				fail_msg(
				    "%s: qemu-img map says data=%d zero=%d offset=%lld at guest "
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
					fail_msg("%s: blk_block_status at %llu: 0x%x host %llu; "
						 "qemu-img "
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
	*off =
	    rnd_below(2) ? ALIGN_DOWN(rnd_below(size - *len + 1), cs) : rnd_below(size - *len + 1);
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

static void verify_open_image(struct blk *b, const char *path, const uint8_t *shadow, uint64_t size,
			      const char *when)
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

	rnd_state = r->seed ^ soak_seed();
	unlink(path);
	must(blk_create(path, "qcow2", size, &o, &err), &err);
	must(blk_open_opts(&b, path, "qcow2", 0, &oo, &err), &err);
	for (int op = 0, burst = -1; op < r->ops; op++) {
		uint64_t off, len, k = rnd_below(100);
		/* Besides the random ones, a checkpoint every 40 ops followed by
		 * a few writes, discards and zero writes and another checkpoint:
		 * tables there must have been updated in place. */
		if (op % 40 == 39) {
			k = 85;
			burst = 6;
		} else if (burst > 0) {
			k = rnd_below(68);
			burst--;
		} else if (burst == 0) {
			k = 85;
			burst = -1;
		}
		pick(size, r->cs, &off, &len);
		if (k < 50 || k >= 91) {
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
		} else if (k < 89) {
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
		} else if (k < 91) {
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
	/* The checks above really ran, in place ones included. */
	assert_true(checks >= 8 && in_place_checks >= 4);
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
	    {.cs = 512,
	     .size = 1 << 20,
	     .refcount_bits = 16,
	     .l2_cache = 8 * 512,
	     .ops = 300,
	     .seed = 0x51},
	    {.cs = 4096, .size = 6 << 20, .refcount_bits = 64, .ops = 250, .seed = 0x52},
	    {.cs = 65536, .size = 24 << 20, .refcount_bits = 4, .ops = 200, .seed = 0x53},
	    {.cs = 512,
	     .size = 512 << 10,
	     .refcount_bits = 2,
	     .l2_cache = 8 * 512,
	     .ops = 250,
	     .seed = 0x54,
	     .max_snaps = 1},
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
		cmd = xasprintf(
		    "'%s' create -q -f qcow2 -o cluster_size=%s,refcount_bits=8 '%s' 4M && "
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

/* ---- A writer stopped at chosen writes, with a power cut ---- */

#if defined(__x86_64__)
struct cop {
	int type; /* 0 write, 1 zero, 2 discard, 3 flush, 4 snapshot create (+delete) */
	uint64_t off, len;
	uint8_t pat;
};

static struct cop cop_gen(uint64_t seed, uint64_t i, uint64_t size, uint64_t cs)
{
	uint64_t save = rnd_state, k;
	struct cop o;

	rnd_state = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
	rnd();
	k = rnd_below(100);
	o.type = k < 68 ? 0 : k < 76 ? 1 : k < 84 ? 2 : k < 95 ? 3 : 4;
	pick(size, cs, &o.off, &o.len);
	o.pat = (uint8_t)(1 + rnd_below(255));
	rnd_state = save;
	return o;
}

static void cop_apply(uint8_t *sh, const struct cop *o)
{
	if (o->type == 0)
		memset(sh + o->off, o->pat, o->len);
	else if (o->type == 1 || o->type == 2)
		memset(sh + o->off, 0, o->len);
}

struct crash_cfg {
	uint64_t cs, size;
	int refcount_bits;
	uint64_t l2_cache;
	uint64_t seed;
	int nops;
	bool fill_all; /* the base image written whole */
};

/* Only writes and syncs stop the traced writer (a seccomp filter hands
 * them to the tracer); every other system call runs at full speed. The
 * other ways to change a file are trapped too, so that one the power cut
 * below does not model fails the test rather than going unseen. */
static void trace_only_writes(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwrite64, 10, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fdatasync, 9, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fsync, 8, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 7, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwritev, 6, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pwritev2, 5, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_writev, 4, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fallocate, 3, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ftruncate, 2, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_copy_file_range, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
	};
	struct sock_fprog prog = {.len = ARRAY_SIZE(f), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		_exit(5);
}

/* The traced writer: ops 0..nops-1, a record on fd after each. It stops
 * itself first so the tracer sees every write. */
static void crash_child(const struct crash_cfg *c, const char *path, int fd)
{
	struct blk_open_opts oo = {.l2_cache_size = c->l2_cache};
	uint8_t *buf = xmalloc(4 * c->cs + 4096);
	struct tv_err err;
	struct blk *b;

	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(77); /* tracing not allowed here */
	trace_only_writes();
	raise(SIGSTOP);
	if (blk_open_opts(&b, path, "qcow2", 0, &oo, &err) < 0)
		_exit(2);
	for (int i = 0; i < c->nops; i++) {
		struct cop o = cop_gen(c->seed, (uint64_t)i, c->size, c->cs);
		int rc = 0;
		switch (o.type) {
		case 0:
			memset(buf, o.pat, o.len);
			rc = blk_pwrite(b, buf, o.len, o.off, &err);
			break;
		case 1:
			rc = blk_write_zeroes(b, o.off, o.len, &err);
			break;
		case 2:
			rc = blk_discard(b, o.off, o.len, &err);
			break;
		case 3:
			rc = blk_flush(b, &err);
			break;
		default: {
			char name[32];
			snprintf(name, sizeof(name), "c%d", i);
			rc = blk_snapshot_create(b, name, 0, 0, &err);
			if (rc == 0 && i % 2)
				rc = blk_snapshot_delete(b, name, &err);
		}
		}
		if (rc < 0 || write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(3);
	}
	blk_close(b, NULL);
	_exit(0); /* no exit handlers (a sanitizer's leak scan cannot run traced) */
}

/* A write to the image the tracer saw, with the bytes it replaced. */
struct wrec {
	uint64_t off, len;
	uint8_t *old, *new;
};

struct tracer {
	pid_t pid;
	const char *path;
	int fd; /* the tracer's own descriptor of the image */
	uint64_t nevents;
	struct wrec *log; /* writes since the last completed fdatasync */
	size_t nlog;
	uint64_t *offs; /* every image write's offset or EV_SYNC, in order */
	size_t nall;
};

#define EV_SYNC UINT64_MAX

static bool is_image_fd(const struct tracer *t, uint64_t fd)
{
	char link[64], target[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/fd/%llu", (int)t->pid, (unsigned long long)fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strcmp(target, t->path) == 0;
}

static void log_write(struct tracer *t, uint64_t buf, uint64_t len, uint64_t off)
{
	struct wrec *w;
	struct iovec local, remote;

	t->log = xrealloc(t->log, (t->nlog + 1) * sizeof(*t->log));
	w = &t->log[t->nlog++];
	w->off = off;
	w->len = len;
	w->old = xcalloc(1, len + 1);
	w->new = xmalloc(len + 1);
	assert_true(pread(t->fd, w->old, len, (off_t)off) >= 0);
	local = (struct iovec){w->new, len};
	remote = (struct iovec){(void *)(uintptr_t)buf, len};
	assert_true(process_vm_readv(t->pid, &local, 1, &remote, 1, 0) == (ssize_t)len);
}

static void log_clear(struct tracer *t)
{
	for (size_t i = 0; i < t->nlog; i++) {
		free(t->log[i].old);
		free(t->log[i].new);
	}
	t->nlog = 0;
}

/* Runs the child until its stop-th write or sync of the image (1-based),
 * which is not done at all or, for a write with torn set, done for its
 * first torn bytes only; then kills it. stop 0: to the end. */
static void trace_run(struct tracer *t, uint64_t stop, uint64_t torn)
{
	bool kill_at_exit = false, sync_pending = false;
	int st, sig = 0, req = PTRACE_CONT;

	assert_true(waitpid(t->pid, &st, 0) == t->pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip();
	assert_true(WIFSTOPPED(st));
	assert_int_equal(ptrace(PTRACE_SETOPTIONS, t->pid, 0,
				PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACESECCOMP),
			 0);
	for (;;) {
		struct user_regs_struct r;
		assert_int_equal(ptrace((enum __ptrace_request)req, t->pid, 0, sig), 0);
		sig = 0;
		req = PTRACE_CONT;
		assert_true(waitpid(t->pid, &st, 0) == t->pid);
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
				fail_msg("traced writer failed with status %d", WEXITSTATUS(st));
			return;
		}
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			/* The end of a write or sync we asked to see. */
			assert_int_equal(ptrace(PTRACE_GETREGS, t->pid, 0, &r), 0);
			if ((int64_t)r.rax == -ENOSYS) { /* its start, on older kernels */
				req = PTRACE_SYSCALL;
				continue;
			}
			if (kill_at_exit)
				break;
			if (sync_pending && (int64_t)r.rax == 0)
				log_clear(t);
			sync_pending = false;
			continue;
		}
		if (st >> 8 != (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))) {
			sig = WSTOPSIG(st);
			continue;
		}
		assert_int_equal(ptrace(PTRACE_GETREGS, t->pid, 0, &r), 0);
		if (!is_image_fd(t, r.rdi))
			continue;
		if (r.orig_rax != SYS_pwrite64 && r.orig_rax != SYS_fdatasync &&
		    r.orig_rax != SYS_fsync)
			fail_msg("the writer changed the image with system call %llu, which "
				 "this test does not model",
				 (unsigned long long)r.orig_rax);
		t->nevents++;
		t->offs = xrealloc(t->offs, (t->nall + 1) * 8);
		t->offs[t->nall++] = r.orig_rax == SYS_pwrite64 ? r.r10 : EV_SYNC;
		if (r.orig_rax != SYS_pwrite64) {
			/* Stopped at a sync: everything since the last one is at
			 * the mercy of the power cut. */
			if (t->nevents == stop)
				break;
			sync_pending = true;
			req = PTRACE_SYSCALL;
			continue;
		}
		if (t->nevents != stop) {
			log_write(t, r.rsi, r.rdx, r.r10);
			continue;
		}
		if (!torn || torn >= r.rdx)
			break;
		/* The write goes out cut short, as a power cut may tear it. */
		r.rdx = torn;
		assert_int_equal(ptrace(PTRACE_SETREGS, t->pid, 0, &r), 0);
		log_write(t, r.rsi, r.rdx, r.r10);
		kill_at_exit = true;
		req = PTRACE_SYSCALL;
	}
	kill(t->pid, SIGKILL);
	assert_true(waitpid(t->pid, &st, 0) == t->pid);
}

/* A power cut: of the writes since the last fdatasync, a random subset
 * never reached the disk. Undo them all, newest first, then redo the kept
 * ones in order. */
static void power_cut(struct tracer *t, unsigned lose_pct)
{
	int fd = open(t->path, O_WRONLY);
	bool *keep = xcalloc(t->nlog + 1, 1);

	assert_true(fd >= 0);
	for (size_t i = 0; i < t->nlog; i++)
		keep[i] = rnd_below(100) >= lose_pct;
	for (size_t i = t->nlog; i-- > 0;)
		assert_int_equal(pwrite_full(fd, t->log[i].old, t->log[i].len, t->log[i].off), 0);
	for (size_t i = 0; i < t->nlog; i++)
		if (keep[i])
			assert_int_equal(
			    pwrite_full(fd, t->log[i].new, t->log[i].len, t->log[i].off), 0);
	close(fd);
	free(keep);
}

enum wkind { W_DATA, W_L2, W_REFBLOCK, W_OTHER_META, W_SYNC, W_NKINDS };
static const char *const wkind_name[] = {"data", "L2 table", "refcount block", "other metadata",
					 "fdatasync"};

/* What the image's final layout says a write at off was. */
static enum wkind classify(const struct qimg *q, uint64_t off)
{
	uint64_t c = off & ~(q->cs - 1);

	if (off == EV_SYNC)
		return W_SYNC;
	if (c == 0 || (c >= q->l1_off && c < q->l1_off + q->l1_size * 8ull) ||
	    (c >= q->rt_off && c < q->rt_off + q->rt_clusters * q->cs) ||
	    (q->nsnap && c >= (q->snap_off & ~(q->cs - 1)) && c < q->snap_off + q->snap_bytes))
		return W_OTHER_META;
	for (uint64_t i = 0; i < q->rt_clusters * q->cs / 8; i++)
		if ((be64(q->f + q->rt_off + 8 * i) & ~511ull) == c)
			return W_REFBLOCK;
	for (uint32_t i = 0; i < q->l1_size; i++)
		if ((be64(q->f + q->l1_off + 8ull * i) & L1_MASK) == c)
			return W_L2;
	for (uint32_t s = 0; s < q->nsnap; s++)
		for (uint32_t i = 0; i < q->snap_l1_size[s]; i++)
			if ((be64(q->f + q->snap_l1_off[s] + 8ull * i) & L1_MASK) == c)
				return W_L2;
	for (uint32_t s = 0; s < q->nsnap; s++)
		if (c >= q->snap_l1_off[s] && c < q->snap_l1_off[s] + q->snap_l1_size[s] * 8ull)
			return W_OTHER_META;
	return W_DATA;
}

static pid_t crash_spawn(const struct crash_cfg *c, const char *path, int *rfd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(c, path, p[1]);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t buf[65536];
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_true(write(out, buf, (size_t)n) == n);
	assert_true(n == 0);
	close(in);
	close(out);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct qimg q;
	uint8_t *data;

	qimg_load_raw(&q, path);
	data = q.f;
	*len = q.fsize;
	return data;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite_full(fd, data, len, 0), 0);
	close(fd);
}

/* qemu-img check after a crash: leaks are fine, and so is the one error a
 * crash inside a snapshot operation may leave (a COPIED flag cleared on a
 * cluster whose refcount is still 1: it only costs a copy). */
static void qemu_check_after_crash(const char *path, const char *when)
{
	char *cmd, *out, *line;
	int st, unsafe = 0;

	if (!qemu_img())
		return;
	cmd = xasprintf("'%s' check '%s' 2>&1", qemu_img(), path);
	out = run_capture(cmd, &st);
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
		if (strncmp(line, "ERROR", 5) == 0 &&
		    !(strstr(line, "OFLAG_COPIED") && strstr(line, "refcount=1")))
			unsafe++;
	if (!WIFEXITED(st) || unsafe ||
	    (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 3))
		fail_msg("%s: qemu-img check exits %d with %d errors", when, WEXITSTATUS(st),
			 unsafe);
	free(out);
	free(cmd);
}

static void crash_run(const struct crash_cfg *c, int rounds, int *hit)
{
	char *base = tpath("crash-base.qcow2"), *path = tpath("crash.qcow2"), when[160];
	char *real;
	struct blk_create_opts o = {.cluster_size = c->cs, .refcount_bits = c->refcount_bits};
	uint8_t *base_data = xcalloc(1, c->size);
	uint64_t total, *offs, nall;
	enum wkind *kinds;
	uint8_t *tables_before;
	struct tracer t;
	struct tv_err err;
	struct blk *b;
	struct qimg q;
	int rfd;

	/* A base with data, tables and a snapshot, so that the run overwrites,
	 * allocates and copies on write. */
	unlink(base);
	must(blk_create(base, "qcow2", c->size, &o, &err), &err);
	must(blk_open(&b, base, "qcow2", 0, &err), &err);
	for (int i = 0; i < 30; i++) {
		uint64_t off, len;
		pick(c->size, c->cs, &off, &len);
		fill(base_data + off, len);
		must(blk_pwrite(b, base_data + off, len, off, &err), &err);
	}
	for (uint64_t off = 0; c->fill_all && off < c->size; off += 65536) {
		fill(base_data + off, 65536);
		must(blk_pwrite(b, base_data + off, 65536, off, &err), &err);
	}
	must(blk_snapshot_create(b, "base", 0, 0, &err), &err);
	must(blk_close(b, &err), &err);

	/* A run to the end: the writes and syncs, and what each write was. A
	 * sync is marked with the kinds of tables written since the one before
	 * (1 L2 tables, 2 refcount blocks). */
	copy_file(base, path);
	real = realpath(path, NULL);
	assert_non_null(real);
	memset(&t, 0, sizeof(t));
	t.path = real;
	t.fd = open(path, O_RDONLY);
	t.pid = crash_spawn(c, path, &rfd);
	trace_run(&t, 0, 0);
	close(rfd);
	close(t.fd);
	log_clear(&t);
	total = t.nevents;
	offs = t.offs;
	nall = t.nall;
	free(t.log);
	qimg_load(&q, path);
	kinds = xmalloc(nall * sizeof(*kinds));
	tables_before = xcalloc(nall + 1, 1);
	for (uint64_t i = 0, since = 0; i < nall; i++) {
		kinds[i] = classify(&q, offs[i]);
		if (kinds[i] == W_L2)
			since |= 1;
		if (kinds[i] == W_REFBLOCK)
			since |= 2;
		if (kinds[i] == W_SYNC) {
			tables_before[i] = (uint8_t)since;
			since = 0;
		}
	}
	qimg_free(&q);
	assert_true(total > 20);

	for (int round = 0; round < rounds; round++) {
		/* Stops at L2 table writes, refcount block writes, syncs right
		 * after both, and anywhere, in turn. */
		uint64_t stop = 1 + rnd_below(total), torn = 0;
		uint8_t *state = xmalloc(c->size), *touched = xcalloc(1, c->size), *buf;
		int last_done = -1, last_flush = -1, rec, kind = round % 4;
		unsigned first_lose = round % 3 == 0 ? 0 : 50;
		uint8_t *crashed;
		size_t crashed_len;

		for (int tries = 0; kind != 3 && tries < 500; tries++) {
			enum wkind k = kinds[stop - 1];
			if ((kind == 0 && k == W_L2) || (kind == 1 && k == W_REFBLOCK) ||
			    (kind == 2 && k == W_SYNC && tables_before[stop - 1] == 3))
				break;
			stop = 1 + rnd_below(total);
		}
		if (rnd_below(2)) /* torn after a whole number of sectors */
			torn = 512 * rnd_below(2 * c->cs / 512 + 1);
		copy_file(base, path);
		memset(&t, 0, sizeof(t));
		t.path = real;
		t.fd = open(path, O_RDONLY);
		t.pid = crash_spawn(c, path, &rfd);
		trace_run(&t, stop, torn);
		while (read(rfd, &rec, sizeof(rec)) == sizeof(rec)) {
			struct cop op = cop_gen(c->seed, (uint64_t)rec, c->size, c->cs);
			last_done = rec;
			if (op.type == 3 || op.type == 4)
				last_flush = rec;
		}
		close(rfd);
		hit[kinds[stop - 1]]++;
		close(t.fd);

		/* What a flush made durable; ranges written after it are open. */
		memcpy(state, base_data, c->size);
		for (int i = 0; i <= last_flush; i++) {
			struct cop op = cop_gen(c->seed, (uint64_t)i, c->size, c->cs);
			cop_apply(state, &op);
		}
		for (int i = last_flush + 1; i <= last_done + 1 && i < c->nops; i++) {
			struct cop op = cop_gen(c->seed, (uint64_t)i, c->size, c->cs);
			if (op.type <= 2)
				memset(touched + op.off, 1, op.len);
		}
		/* Several power cuts from the same stop: each loses another
		 * subset of the unsynced writes. */
		crashed = read_file(path, &crashed_len);
		for (int cut = 0; cut < 4; cut++) {
			unsigned lose = cut == 0 ? first_lose : 25u * (unsigned)cut;
			if (cut)
				write_file(path, crashed, crashed_len);
			t.path = real;
			power_cut(&t, lose);
			snprintf(when, sizeof(when),
				 "cluster %llu, stopped at event %llu of %llu (%s at %llu, torn to "
				 "%llu), %u%% of %zu unsynced writes lost",
				 (unsigned long long)c->cs, (unsigned long long)stop,
				 (unsigned long long)total, wkind_name[kinds[stop - 1]],
				 (unsigned long long)offs[stop - 1], (unsigned long long)torn, lose,
				 t.nlog);
			qimg_load(&q, path);
			qimg_check_refcounts(&q, false, when);
			qimg_compare(&q, state, c->size, touched, when);
			qimg_free(&q);
			if (cut == 0)
				qemu_check_after_crash(path, when);
			/* Our open repairs the leaks: then everything is exact. */
			must(blk_open(&b, path, "qcow2", 0, &err), &err);
			buf = xmalloc(c->size);
			must(blk_pread(b, buf, c->size, 0, &err), &err);
			must(blk_close(b, &err), &err);
			for (uint64_t i = 0; i < c->size; i++)
				if (!touched[i] && buf[i] != state[i])
					fail_msg("%s: byte %llu reads 0x%02x after repair, flushed "
						 "0x%02x",
						 when, (unsigned long long)i, buf[i], state[i]);
			qimg_load(&q, path);
			qimg_check_refcounts(&q, true, when);
			if (cut == 0) /* and qemu-img finds nothing at all */
				qemu_check_json(&q, path, when);
			qimg_free(&q);
			free(buf);
		}
		free(crashed);
		log_clear(&t);
		free(t.log);
		free(t.offs);
		free(state);
		free(touched);
	}
	free(kinds);
	free(tables_before);
	free(offs);
	free(real);
	free(base_data);
	unlink(base);
	unlink(path);
	free(base);
	free(path);
}

static void test_meta_crash(void **state)
{
	/* 512-byte clusters with an 8-table L2 cache and 64-bit refcounts
	 * (64 per block): L2 tables and refcount blocks are evicted, and so
	 * written, in the middle of requests, not only at flushes. */
	static const struct crash_cfg cfgs[] = {
	    {.cs = 512,
	     .size = 1 << 20,
	     .refcount_bits = 64,
	     .l2_cache = 8 * 512,
	     .seed = 7,
	     .nops = 120},
	    {.cs = 4096, .size = 4 << 20, .refcount_bits = 16, .seed = 8, .nops = 120},
	    {.cs = 65536, .size = 8 << 20, .refcount_bits = 16, .seed = 9, .nops = 80},
	    /* A file of 3 MiB in 512-byte clusters: more refcount blocks (64
	     * clusters each) than the refcount cache holds, so they are
	     * evicted between syncs too. */
	    {.cs = 512,
	     .size = 3 << 20,
	     .refcount_bits = 64,
	     .l2_cache = 8 * 512,
	     .seed = 10,
	     .nops = 120,
	     .fill_all = true},
	};
	int hit[W_NKINDS] = {0};

	rnd_state = 0xc4a5 ^ soak_seed();
	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
		struct crash_cfg cc = cfgs[i];
		cc.seed ^= soak_seed();
		crash_run(&cc, 12, hit);
	}
	/* The stops really landed on L2 table and refcount block writes and
	 * on the syncs after them. */
	for (int k = 0; k < W_NKINDS; k++)
		print_message("stops at %s: %d\n", wkind_name[k], hit[k]);
	assert_true(hit[W_L2] >= 6 && hit[W_REFBLOCK] >= 6 && hit[W_SYNC] >= 6);
}
#else
static void test_meta_crash(void **state)
{
	skip(); /* the tracer reads x86-64 registers */
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_meta_reader_on_qemu_images),
	    cmocka_unit_test(test_meta_random),
	    cmocka_unit_test(test_meta_crash),
	};

	/* In memory where possible: the power cuts here are made by the test
	 * itself, so the host disk's syncs would only cost time. */
	snprintf(tmpdir, sizeof(tmpdir), "/dev/shm/tv-qcow2-meta.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		snprintf(tmpdir, sizeof(tmpdir), "%s/tv-qcow2-meta.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(tmpdir))
			return 1;
	}
	int rc = cmocka_run_group_tests_name("qcow2 metadata", tests, NULL, NULL);
	if (soak_seed())
		print_message("TV_META_SEED=%llu\n", (unsigned long long)soak_seed());
	/* TV_META_KEEP=1 leaves the images for a look after a failure. */
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (!getenv("TV_META_KEEP") && system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
