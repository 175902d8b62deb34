/* qcow2 against a shadow copy in memory: random writes of every size and
 * alignment, discards, zero writes, snapshots, applies, reopens, growth and
 * backing chains; contents must always equal the shadow, and every image
 * written must pass `qemu-img check` and read back the same through
 * `qemu-img convert`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vm/block/block.h"
#include "common/util.h"

static char tmpdir[256];
static void child_signals(void);

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

/* qemu-img is the oracle for every image written; absent, only our own
 * check runs. */
static void qemu_check(const char *path)
{
	const char *q = getenv("QEMU_IMG");
	char *cmd;
	int st;

	if (!q || !*q)
		return;
	cmd = xasprintf("'%s' check -q '%s'", q, path);
	st = system(cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("qemu-img check %s: exit %d", path, WEXITSTATUS(st));
	free(cmd);
}

static void qemu_read_back(const char *path, const uint8_t *shadow, uint64_t size)
{
	const char *q = getenv("QEMU_IMG");
	char *raw = tpath("readback.raw"), *cmd;
	uint8_t *buf;
	FILE *f;
	int st;

	if (!q || !*q) {
		free(raw);
		return;
	}
	cmd = xasprintf("'%s' convert -O raw '%s' '%s'", q, path, raw);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	buf = xmalloc(size);
	f = fopen(raw, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, size, f), size);
	fclose(f);
	if (memcmp(buf, shadow, size) != 0)
		fail_msg("qemu-img reads %s differently from what was written", path);
	unlink(raw);
	free(buf);
	free(cmd);
	free(raw);
}

static void must(int rc, struct tv_err *err)
{
	if (rc < 0)
		fail_msg("%s", err->msg);
}

static void compare_all(struct blk *b, const uint8_t *shadow, uint64_t size)
{
	struct tv_err err;
	uint8_t *buf = xmalloc(size);

	assert_true(blk_size(b) == size);
	must(blk_pread(b, buf, size, 0, &err), &err);
	for (uint64_t i = 0; i < size; i++)
		if (buf[i] != shadow[i])
			fail_msg("byte %llu: read 0x%02x, expected 0x%02x", (unsigned long long)i,
				 buf[i], shadow[i]);
	free(buf);
}

static void fill_random(uint8_t *p, uint64_t n)
{
	uint64_t v = rnd();
	int kind = (int)rnd_below(4);

	for (uint64_t i = 0; i < n; i++) {
		if (kind == 0)
			p[i] = (uint8_t)v; /* runs of one byte */
		else if ((i & 7) == 0)
			v = rnd(), p[i] = (uint8_t)v;
		else
			p[i] = (uint8_t)(v >> (8 * (i & 7)));
	}
	if (kind == 1 && n)
		memset(p, 0, n / 2); /* partly zero clusters */
}

/* A range biased toward what breaks block layers: sub-sector, straddling
 * cluster and L2 boundaries, whole clusters, the end of the disk. */
static void pick_range(uint64_t size, uint64_t cs, uint64_t *off, uint64_t *len)
{
	uint64_t maxlen = MIN(size, 3 * cs + 777);

	switch (rnd_below(5)) {
	case 0:
		*len = 1 + rnd_below(600);
		break;
	case 1:
		*len = cs;
		break;
	case 2:
		*len = 1 + rnd_below(maxlen);
		break;
	case 3:
		*len = ALIGN_UP(1 + rnd_below(maxlen), 512);
		break;
	default:
		*len = 1 + rnd_below(4 * 4096);
	}
	*len = MIN(*len, size);
	switch (rnd_below(4)) {
	case 0:
		*off = ALIGN_DOWN(rnd_below(size - *len + 1), cs);
		break;
	case 1:
		*off = size - *len;
		break;
	default:
		*off = rnd_below(size - *len + 1);
	}
}

struct snap {
	char name[16];
	uint8_t *data;
	uint64_t size;
};

struct run {
	uint64_t cs, size;
	int refcount_bits;
	const char *backing_fmt; /* NULL: no backing file */
	int ops;
	uint64_t seed;
	const char *compression;
	uint64_t l2_cache; /* bytes, 0 default */
};

static struct blk_open_opts run_opts;

static void reopen(struct blk **b, const char *path)
{
	struct tv_err err;

	must(blk_close(*b, &err), &err);
	must(blk_open_opts(b, path, "qcow2", 0, &run_opts, &err), &err);
}

static void make_backing(const struct run *r, uint8_t *shadow)
{
	char *path = tpath(strcmp(r->backing_fmt, "raw") == 0 ? "base.raw" : "base.qcow2");
	struct blk_create_opts o = {.cluster_size = r->cs};
	struct tv_err err;
	struct blk *b;
	/* The backing file is a bit shorter than the overlay: reads past its end
	 * must come back as zeros. */
	uint64_t bsize = r->size - r->cs / 2 - 512;

	unlink(path);
	must(blk_create(path, r->backing_fmt, bsize, &o, &err), &err);
	must(blk_open(&b, path, r->backing_fmt, 0, &err), &err);
	for (int i = 0; i < 40; i++) {
		uint64_t off, len;
		pick_range(bsize, r->cs, &off, &len);
		fill_random(shadow + off, len);
		must(blk_pwrite(b, shadow + off, len, off, &err), &err);
	}
	must(blk_close(b, &err), &err);
	if (strcmp(r->backing_fmt, "qcow2") == 0)
		qemu_check(path);
	free(path);
}

static void random_run(const struct run *r)
{
	char *path = tpath("t.qcow2");
	struct blk_create_opts o = {.cluster_size = r->cs, .refcount_bits = r->refcount_bits,
				    .compression = r->compression};
	uint64_t size = r->size;
	uint8_t *shadow = xcalloc(1, size), *buf = xmalloc(4 * r->cs + 4096);
	struct snap snaps[4];
	int nsnaps = 0;
	struct tv_err err;
	struct blk *b;
	char *base_copy = NULL;

	/* TV_QCOW2_SEED varies every run (soak testing); failures print it. */
	rnd_state = r->seed ^ (getenv("TV_QCOW2_SEED") ? strtoull(getenv("TV_QCOW2_SEED"), NULL, 0)
						       : 0);
	if (!rnd_state)
		rnd_state = 1;
	run_opts.l2_cache_size = r->l2_cache;
	unlink(path);
	if (r->backing_fmt) {
		make_backing(r, shadow);
		o.backing = strcmp(r->backing_fmt, "raw") == 0 ? "base.raw" : "base.qcow2";
		o.backing_fmt = r->backing_fmt;
		base_copy = tpath(o.backing);
	}
	must(blk_create(path, "qcow2", size, &o, &err), &err);
	must(blk_open_opts(&b, path, "qcow2", 0, &run_opts, &err), &err);
	for (int op = 0; op < r->ops; op++) {
		uint64_t off, len, k = rnd_below(100);
		pick_range(size, r->cs, &off, &len);
		if (k < 40) {
			fill_random(shadow + off, len);
			must(blk_pwrite(b, shadow + off, len, off, &err), &err);
		} else if (k < 55) {
			uint8_t *rb = xmalloc(len);
			must(blk_pread(b, rb, len, off, &err), &err);
			if (memcmp(rb, shadow + off, len) != 0)
				fail_msg("op %d: read %llu+%llu differs", op, (unsigned long long)off,
					 (unsigned long long)len);
			free(rb);
		} else if (k < 63) {
			must(blk_discard(b, off, len, &err), &err);
			memset(shadow + off, 0, len);
		} else if (k < 71) {
			must(blk_write_zeroes(b, off, len, &err), &err);
			memset(shadow + off, 0, len);
		} else if (k < 75) {
			must(blk_flush(b, &err), &err);
		} else if (k < 80) {
			reopen(&b, path);
		} else if (k < 85 && (r->refcount_bits == 0 || r->refcount_bits >= 4) && nsnaps < 4) {
			struct snap *s = &snaps[nsnaps++];
			snprintf(s->name, sizeof(s->name), "s%d", op);
			must(blk_snapshot_create(b, s->name, 0, 0, &err), &err);
			s->data = xmalloc(size);
			memcpy(s->data, shadow, size);
			s->size = size;
		} else if (k < 89 && nsnaps) {
			struct snap *s = &snaps[rnd_below((uint64_t)nsnaps)];
			must(blk_snapshot_apply(b, s->name, &err), &err);
			size = s->size;
			shadow = xrealloc(shadow, size);
			memcpy(shadow, s->data, size);
		} else if (k < 92 && nsnaps) {
			int i = (int)rnd_below((uint64_t)nsnaps);
			must(blk_snapshot_delete(b, snaps[i].name, &err), &err);
			free(snaps[i].data);
			snaps[i] = snaps[--nsnaps];
		} else if (k < 94) {
			uint64_t grow = rnd_below(3 * r->cs) + 512;
			grow = ALIGN_UP(grow, 512);
			must(blk_resize(b, size + grow, &err), &err);
			shadow = xrealloc(shadow, size + grow);
			memset(shadow + size, 0, grow);
			size += grow;
		} else if (k < 96) {
			compare_all(b, shadow, size);
		}
	}
	compare_all(b, shadow, size);
	{
		struct blk_check_result cr;
		must(blk_check(b, 0, &cr, &err), &err);
		if (cr.corruptions || cr.leaks)
			fail_msg("own check: %llu corruptions, %llu leaks",
				 (unsigned long long)cr.corruptions, (unsigned long long)cr.leaks);
	}
	must(blk_close(b, &err), &err);
	qemu_check(path);
	qemu_read_back(path, shadow, size);
	/* Every snapshot still reads as taken. */
	for (int i = 0; i < nsnaps; i++) {
		must(blk_open(&b, path, "qcow2", 0, &err), &err);
		must(blk_snapshot_apply(b, snaps[i].name, &err), &err);
		compare_all(b, snaps[i].data, snaps[i].size);
		must(blk_close(b, &err), &err);
		free(snaps[i].data);
	}
	qemu_check(path);
	unlink(path);
	if (base_copy)
		unlink(base_copy);
	free(base_copy);
	free(shadow);
	free(buf);
	free(path);
}

static void test_random_64k(void **state)
{
	struct run r = {.cs = 65536, .size = 12 << 20, .ops = 400, .seed = 0x1234567};
	random_run(&r);
}

static void test_random_512(void **state)
{
	/* Tiny clusters: many L2 tables, refcount blocks and table growth. */
	struct run r = {.cs = 512, .size = 3 << 20, .ops = 500, .seed = 99};
	random_run(&r);
}

static void test_random_4k_refcount_widths(void **state)
{
	static const int widths[] = {1, 2, 4, 8, 32, 64};

	for (size_t i = 0; i < ARRAY_SIZE(widths); i++) {
		struct run r = {.cs = 4096,
				.size = 2 << 20,
				.refcount_bits = widths[i],
				.ops = 200,
				.seed = 7 + i};
		random_run(&r);
	}
}

static void test_random_small_cache(void **state)
{
	/* Far more L2 tables than cache slots: evictions write tables back
	 * (after the refcounts they depend on) all the time. */
	struct run r = {.cs = 512, .size = 4 << 20, .ops = 400, .seed = 2024, .l2_cache = 512};
	random_run(&r);
	r.backing_fmt = "qcow2";
	r.seed = 2025;
	random_run(&r);
}

static void test_random_2m(void **state)
{
	struct run r = {.cs = 2 << 20, .size = 16 << 20, .ops = 60, .seed = 4242};
	random_run(&r);
}

static void test_random_backing_qcow2(void **state)
{
	struct run r = {.cs = 65536, .size = 6 << 20, .backing_fmt = "qcow2", .ops = 300,
			.seed = 31337};
	random_run(&r);
}

static void test_random_backing_raw(void **state)
{
	struct run r = {.cs = 4096, .size = 2 << 20, .backing_fmt = "raw", .ops = 300, .seed = 5};
	random_run(&r);
}

static void test_random_zstd(void **state)
{
	struct run r = {.cs = 65536, .size = 4 << 20, .ops = 150, .seed = 77,
			.compression = "zstd"};
	random_run(&r);
}

/* Compressed clusters written as `img convert -c` does, then overwritten. */
static void test_compressed_write(void **state)
{
	static const char *types[] = {"zlib", "zstd"};

	for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
		char *path = tpath("c.qcow2");
		struct blk_create_opts o = {.cluster_size = 65536, .compression = types[t]};
		uint64_t size = 2 << 20, cs = 65536;
		uint8_t *shadow = xcalloc(1, size);
		struct tv_err err;
		struct blk *b;

		rnd_state = 11 + t;
		unlink(path);
		must(blk_create(path, "qcow2", size, &o, &err), &err);
		must(blk_open(&b, path, "qcow2", 0, &err), &err);
		for (uint64_t off = 0; off < size; off += cs) {
			uint8_t *p = shadow + off;
			if (off % (3 * cs) == 0)
				continue;
			for (uint64_t i = 0; i < cs; i++) /* compressible text-like data */
				p[i] = (uint8_t)("termvisor qcow2 "[(i + off / cs) % 16] + (i % 512 == 0));
			if (off % (5 * cs) == cs)
				fill_random(p, cs); /* incompressible: stored plain */
			must(blk_write_compressed(b, p, cs, off, &err), &err);
		}
		compare_all(b, shadow, size);
		for (int i = 0; i < 60; i++) {
			uint64_t off, len;
			pick_range(size, cs, &off, &len);
			fill_random(shadow + off, len);
			must(blk_pwrite(b, shadow + off, len, off, &err), &err);
		}
		compare_all(b, shadow, size);
		must(blk_close(b, &err), &err);
		qemu_check(path);
		qemu_read_back(path, shadow, size);
		unlink(path);
		free(path);
		free(shadow);
	}
}

/* A second writer is refused with the holder's PID. */
static void test_lock(void **state)
{
	char *path = tpath("lock.qcow2"), want[64];
	struct tv_err err;
	struct blk *b;
	int p[2];
	pid_t pid;
	char c;

	unlink(path);
	must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		struct blk *cb;
		child_signals();
		if (blk_open(&cb, path, NULL, 0, &err) < 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(blk_open(&b, path, NULL, 0, &err), -1);
	snprintf(want, sizeof(want), "in use by PID %d", (int)pid);
	if (!strstr(err.msg, want))
		fail_msg("expected '%s' in: %s", want, err.msg);
	assert_int_equal(blk_open(&b, path, NULL, BLK_READONLY, &err), -1);
	/* Looking without a lock (termvisor list) still works. */
	assert_int_equal(blk_snapshot_count(path, &err), 0);
	must(blk_open(&b, path, NULL, BLK_SHARE, &err), &err);
	blk_close(b, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	must(blk_open(&b, path, NULL, 0, &err), &err);
	blk_close(b, NULL);
	close(p[0]);
	close(p[1]);
	unlink(path);
	free(path);
}

/* VM state saved past the disk goes with the snapshot. */
static void test_vmstate(void **state)
{
	char *path = tpath("vm.qcow2");
	uint8_t st[10000], back[10000];
	struct blk_snapshot *list;
	struct tv_err err;
	struct blk *b;
	int n;

	unlink(path);
	for (size_t i = 0; i < sizeof(st); i++)
		st[i] = (uint8_t)(i * 7);
	must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
	must(blk_open(&b, path, NULL, 0, &err), &err);
	must(blk_vmstate_pwrite(b, st, sizeof(st), 0, &err), &err);
	must(blk_snapshot_create(b, "withram", sizeof(st), 123456789, &err), &err);
	must(blk_vmstate_pwrite(b, back, sizeof(back), 0, &err), &err); /* overwrite it */
	must(blk_snapshot_apply(b, "withram", &err), &err);
	must(blk_vmstate_pread(b, back, sizeof(back), 0, &err), &err);
	assert_memory_equal(st, back, sizeof(st));
	must(blk_snapshot_list(b, &list, &n, &err), &err);
	assert_int_equal(n, 1);
	assert_true(list[0].vm_state_size == sizeof(st));
	assert_true(list[0].vm_clock_nsec == 123456789);
	assert_string_equal(list[0].name, "withram");
	blk_snapshot_list_free(list, n);
	must(blk_close(b, &err), &err);
	assert_int_equal(blk_snapshot_count(path, &err), 1);
	qemu_check(path);
	unlink(path);
	free(path);
}

/* qemu-img's list of the image's snapshot names, one per line ("" without qemu-img). */
static char *qemu_snapshot_names(const char *path)
{
	const char *q = getenv("QEMU_IMG");
	char *cmd, *out = xmalloc(4096);
	size_t n;
	FILE *f;

	out[0] = 0;
	if (!q || !*q)
		return out;
	cmd = xasprintf("'%s' snapshot -l '%s'", q, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, 4095, f);
	out[n] = 0;
	assert_int_equal(pclose(f), 0);
	free(cmd);
	return out;
}

/* A renamed snapshot keeps its data and shows its new name to us and to
 * qemu-img; names stay unique; the image stays consistent. */
static void test_snapshot_rename(void **state)
{
	char *path = tpath("rename.qcow2"), *names;
	uint8_t a[4096], b2[4096], back[4096];
	struct blk_snapshot *list;
	struct tv_err err;
	struct blk *b;
	int n;

	unlink(path);
	memset(a, 0xaa, sizeof(a));
	memset(b2, 0xbb, sizeof(b2));
	must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
	must(blk_open(&b, path, NULL, 0, &err), &err);
	must(blk_pwrite(b, a, sizeof(a), 0, &err), &err);
	must(blk_snapshot_create(b, "first", 0, 0, &err), &err);
	must(blk_snapshot_create(b, "other", 0, 0, &err), &err);
	must(blk_pwrite(b, b2, sizeof(b2), 0, &err), &err);
	must(blk_snapshot_rename(b, "first", "renamed-one", &err), &err);
	/* The old name is gone, the new one is taken, another's name refused. */
	assert_int_equal(blk_snapshot_rename(b, "first", "x", &err), -1);
	assert_non_null(strstr(err.msg, "no snapshot named 'first'"));
	assert_int_equal(blk_snapshot_rename(b, "renamed-one", "other", &err), -1);
	assert_non_null(strstr(err.msg, "exists already"));
	assert_int_equal(blk_snapshot_rename(b, "other", "", &err), -1);
	must(blk_snapshot_list(b, &list, &n, &err), &err);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "renamed-one");
	assert_string_equal(list[1].name, "other");
	blk_snapshot_list_free(list, n);
	must(blk_close(b, &err), &err);
	qemu_check(path);
	names = qemu_snapshot_names(path);
	if (getenv("QEMU_IMG") && *getenv("QEMU_IMG")) {
		assert_non_null(strstr(names, "renamed-one"));
		assert_null(strstr(names, "first"));
	}
	free(names);
	/* Reopened: the new name applies and brings the data of the take back. */
	must(blk_open(&b, path, NULL, 0, &err), &err);
	must(blk_snapshot_apply(b, "renamed-one", &err), &err);
	must(blk_pread(b, back, sizeof(back), 0, &err), &err);
	assert_memory_equal(back, a, sizeof(a));
	must(blk_close(b, &err), &err);
	qemu_check(path);
	unlink(path);
	free(path);
}

/* A raw file is never probed into a qcow2 when the caller says raw, and
 * bad requests are refused with the file named. */
static void test_raw_and_errors(void **state)
{
	char *path = tpath("r.raw"), *q = tpath("q.qcow2");
	uint8_t hdr[512] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	struct tv_err err;
	struct blk *b;
	FILE *f;

	unlink(path);
	unlink(q);
	must(blk_create(path, "raw", 1 << 20, NULL, &err), &err);
	must(blk_open(&b, path, "raw", 0, &err), &err);
	must(blk_pwrite(b, hdr, sizeof(hdr), 0, &err), &err); /* a guest writes a header */
	must(blk_close(b, &err), &err);
	must(blk_open(&b, path, "raw", 0, &err), &err);
	assert_string_equal(blk_format(b), "raw");
	assert_true(blk_size(b) == 1 << 20);
	assert_int_equal(blk_pread(b, hdr, 16, (1 << 20) - 8, &err), -1);
	assert_non_null(strstr(err.msg, path));
	blk_close(b, NULL);
	assert_int_equal(blk_create(path, "qcow2", 1 << 20, NULL, &err), -1); /* exists */
	{
		struct blk_create_opts o = {.cluster_size = 3000};
		assert_int_equal(blk_create(q, "qcow2", 1 << 20, &o, &err), -1);
		assert_non_null(strstr(err.msg, "cluster size"));
	}
	/* Unknown incompatible feature bits are refused by number. */
	must(blk_create(q, "qcow2", 1 << 20, NULL, &err), &err);
	f = fopen(q, "r+b");
	fseek(f, 72 + 7, SEEK_SET);
	fputc(0x40, f); /* bit 6 */
	fclose(f);
	assert_int_equal(blk_open(&b, q, NULL, BLK_READONLY, &err), -1);
	assert_non_null(strstr(err.msg, "feature bit 6"));
	unlink(q);
	unlink(path);
	free(q);
	free(path);
}

/* The writer killed at a random point: the image must stay consistent (at
 * worst leaked clusters), and every write completed before a flush must be
 * there. Ops come from a seeded generator both sides replay. */
struct crash_op {
	int type; /* 0 write, 1 zero, 2 discard, 3 flush, 4 snapshot */
	uint64_t off, len;
	uint8_t pat;
};

/* A forked child must die of its own faults, not resume the test runner
 * (cmocka catches them). */
static void child_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
}

static struct crash_op crash_gen(uint64_t seed, uint64_t i, uint64_t size, uint64_t cs)
{
	struct crash_op o;
	uint64_t save = rnd_state, k;

	rnd_state = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
	rnd();
	k = rnd_below(100);
	o.type = k < 70 ? 0 : k < 78 ? 1 : k < 85 ? 2 : k < 97 ? 3 : 4;
	pick_range(size, cs, &o.off, &o.len);
	o.pat = (uint8_t)(1 + rnd_below(255));
	rnd_state = save;
	return o;
}

static void crash_apply_shadow(uint8_t *sh, const struct crash_op *o)
{
	if (o->type == 0)
		memset(sh + o->off, o->pat, o->len);
	else if (o->type == 1 || o->type == 2)
		memset(sh + o->off, 0, o->len);
}

static void crash_child(const char *path, uint64_t seed, uint64_t start, uint64_t size,
			uint64_t cs, int fd)
{
	struct tv_err err;
	struct blk *b;
	uint8_t *buf = xmalloc(MAX(4 * cs, 16384) + 4096);

	child_signals();
	if (blk_open_opts(&b, path, "qcow2", 0, &run_opts, &err) < 0)
		_exit(2);
	for (uint64_t i = start;; i++) {
		struct crash_op o = crash_gen(seed, i, size, cs);
		uint64_t rec[2] = {i, 0};
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
			rec[1] = 1;
			break;
		default: {
			char name[32];
			snprintf(name, sizeof(name), "c%llu", (unsigned long long)i);
			rc = blk_snapshot_create(b, name, 0, 0, &err);
			if (rc == 0 && i % 3 == 0)
				rc = blk_snapshot_delete(b, name, &err);
			rec[1] = 1;
		}
		}
		if (rc < 0)
			_exit(3);
		if (write(fd, rec, sizeof(rec)) != sizeof(rec))
			_exit(4);
	}
}

static void crash_round(const char *path, uint64_t seed, uint64_t *next, uint8_t *shadow,
			uint64_t size, uint64_t cs, useconds_t delay)
{
	uint64_t rec[2], last_done = *next - 1, flushed = *next - 1;
	uint8_t *touched = xcalloc(1, size), *buf = xmalloc(size), *state = xmalloc(size);
	struct blk_check_result cr;
	struct tv_err err;
	struct blk *b;
	int p[2], st;
	pid_t pid;
	const char *q = getenv("QEMU_IMG");

	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		crash_child(path, seed, *next, size, cs, p[1]);
	}
	close(p[1]);
	usleep(delay);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st)); /* it was still writing, not failing */
	while (read(p[0], rec, sizeof(rec)) == sizeof(rec)) {
		last_done = rec[0];
		if (rec[1])
			flushed = rec[0];
	}
	close(p[0]);
	/* What the flushed prefix left; ranges written after it are open. */
	memcpy(state, shadow, size);
	for (uint64_t i = *next; i <= flushed && flushed != *next - 1; i++) {
		struct crash_op o = crash_gen(seed, i, size, cs);
		crash_apply_shadow(state, &o);
	}
	for (uint64_t i = flushed + 1; i <= last_done + 1; i++) {
		struct crash_op o = crash_gen(seed, i, size, cs);
		if (o.type <= 2)
			memset(touched + o.off, 1, o.len);
	}
	if (q && *q) {
		char *cmd = xasprintf("'%s' check '%s' 2>&1", q, path), line[512];
		FILE *f = popen(cmd, "r");
		int unsafe = 0;
		assert_non_null(f);
		/* Leaks are fine. The one error a crash inside a snapshot operation
		 * may leave is a COPIED flag already cleared on a cluster whose
		 * refcount is still 1: harmless (it only costs a copy), repaired
		 * on the next open. A flag claiming ownership of a shared cluster
		 * would be damage. */
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "ERROR", 5) == 0 &&
			    !(strstr(line, "OFLAG_COPIED") && strstr(line, "refcount=1\n")))
				unsafe++, fprintf(stderr, "%s", line);
		st = pclose(f);
		free(cmd);
		if (!WIFEXITED(st) || unsafe ||
		    (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 2 && WEXITSTATUS(st) != 3))
			fail_msg("after a crash, qemu-img check exits %d", WEXITSTATUS(st));
	}
	must(blk_open(&b, path, "qcow2", 0, &err), &err); /* repairs leaks */
	must(blk_check(b, 0, &cr, &err), &err);
	if (cr.corruptions || cr.leaks)
		fail_msg("after repair: %llu corruptions, %llu leaks",
			 (unsigned long long)cr.corruptions, (unsigned long long)cr.leaks);
	must(blk_pread(b, buf, size, 0, &err), &err);
	must(blk_close(b, &err), &err);
	for (uint64_t i = 0; i < size; i++)
		if (!touched[i] && buf[i] != state[i])
			fail_msg("byte %llu lost: 0x%02x, flushed 0x%02x", (unsigned long long)i,
				 buf[i], state[i]);
	memcpy(shadow, buf, size); /* open ranges: whatever survived */
	*next = last_done + 2;
	qemu_check(path);
	free(touched);
	free(buf);
	free(state);
}

static void test_crash(void **state)
{
	/* 512-byte clusters with an 8-table cache: L2 tables are evicted, and
	 * so written, at any moment, not only at flushes. */
	static const uint64_t sizes[] = {4096, 65536, 512};

	for (size_t c = 0; c < ARRAY_SIZE(sizes); c++) {
		run_opts.l2_cache_size = sizes[c] == 512 ? 8 * 512 : 0;
		char *path = tpath("crash.qcow2");
		uint64_t size = 4 << 20, cs = sizes[c], next = 0;
		uint8_t *shadow = xcalloc(1, size);
		struct blk_create_opts o = {.cluster_size = cs};
		struct tv_err err;

		unlink(path);
		must(blk_create(path, "qcow2", size, &o, &err), &err);
		rnd_state = 1000 + c;
		for (int round = 0; round < 10; round++)
			crash_round(path, 77 + c, &next, shadow, size, cs,
				    (useconds_t)(2000 + rnd_below(40000)));
		unlink(path);
		free(path);
		free(shadow);
	}
}

/* Hostile or damaged headers: each refused with the field named, nothing
 * written. */
static void poke(const char *path, long off, const void *bytes, size_t n)
{
	FILE *f = fopen(path, "r+b");

	assert_non_null(f);
	fseek(f, off, SEEK_SET);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void test_hostile_headers(void **state)
{
	static const struct {
		long off;
		uint8_t bytes[8];
		size_t n;
		const char *want;
	} cases[] = {
		{24, {0x20, 0, 0, 0, 0, 0, 0, 0}, 8, "too large"},	 /* size 2^61 */
		{40, {0, 0, 0, 1, 0, 0, 0, 0}, 8, "outside the file"},	 /* L1 offset 16 TiB */
		{40, {0, 0, 0, 0, 0, 0, 0x10, 0x01}, 8, "not cluster-aligned"},
		{20, {0, 0, 0, 30}, 4, "cluster_bits 30"},
		{96, {0, 0, 0, 7}, 4, "refcount_order 7"},
		{79, {0x10}, 1, "extended L2"},
		{79, {0x04}, 1, "external data file"},
		{100, {0, 2, 0, 0}, 4, "header_length"},
		{32, {0, 0, 0, 1}, 4, "encrypted"},
		{56, {0x7f, 0xff, 0xff, 0xff}, 4, "refcount table"},
		{60, {0, 0x10, 0, 0}, 4, "snapshots"},
		{8, {0, 0, 0, 0, 0, 1, 0, 0}, 8, "backing file name"},
		{4, {0, 0, 0, 4}, 4, "version 4"},
	};
	char *path = tpath("h.qcow2");
	struct tv_err err;
	struct blk *b;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct stat before, after;
		unlink(path);
		must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
		if (cases[i].off == 8) { /* a backing name needs its length too */
			static const uint8_t len[4] = {0, 0, 0, 16};
			poke(path, 16, len, 4);
		}
		poke(path, cases[i].off, cases[i].bytes, cases[i].n);
		stat(path, &before);
		if (blk_open(&b, path, NULL, 0, &err) == 0)
			fail_msg("case %zu (%s): opened", i, cases[i].want);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: expected '%s' in: %s", i, cases[i].want, err.msg);
		stat(path, &after);
		assert_true(before.st_size == after.st_size &&
			    before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
	}
	unlink(path);
	free(path);
}

/* The corrupt bit keeps writers out until a repair clears it; the dirty
 * bit gets leaks freed on the next writable open. */
static void test_corrupt_and_dirty_bits(void **state)
{
	char *path = tpath("bits.qcow2");
	static const uint8_t corrupt[1] = {0x02}, dirty[1] = {0x01};
	uint8_t data[4096];
	struct blk_check_result cr;
	struct tv_err err;
	struct blk *b;

	unlink(path);
	must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
	poke(path, 79, corrupt, 1);
	assert_int_equal(blk_open(&b, path, NULL, 0, &err), -1);
	assert_non_null(strstr(err.msg, "marked corrupt"));
	must(blk_open(&b, path, NULL, BLK_READONLY, &err), &err);
	must(blk_pread(b, data, sizeof(data), 0, &err), &err);
	blk_close(b, NULL);
	/* check -r all opens it to repair it, and clears the bit. */
	must(blk_open(&b, path, NULL, BLK_CHECK | BLK_NO_REPAIR | BLK_NO_BACKING, &err), &err);
	must(blk_check(b, BLK_FIX_LEAKS | BLK_FIX_ERRORS, &cr, &err), &err);
	must(blk_close(b, &err), &err);
	must(blk_open(&b, path, NULL, 0, &err), &err);
	must(blk_close(b, &err), &err);
	unlink(path);

	/* Dirty with a leaked cluster (refcount of cluster 5 raised by hand). */
	must(blk_create(path, "qcow2", 1 << 20, NULL, &err), &err);
	must(blk_open(&b, path, NULL, 0, &err), &err);
	memset(data, 0x42, sizeof(data));
	must(blk_pwrite(b, data, sizeof(data), 0, &err), &err);
	must(blk_close(b, &err), &err);
	{
		static const uint8_t two[2] = {0, 2};
		poke(path, 2 * 65536 + 2 * 5, two, 2); /* cluster 5: 2 instead of 1 */
	}
	poke(path, 79, dirty, 1);
	must(blk_open(&b, path, NULL, BLK_READONLY | BLK_NO_REPAIR, &err), &err);
	must(blk_check(b, 0, &cr, &err), &err);
	assert_true(cr.leaks == 1);
	blk_close(b, NULL);
	must(blk_open(&b, path, NULL, 0, &err), &err); /* repairs */
	must(blk_check(b, 0, &cr, &err), &err);
	assert_true(cr.leaks == 0 && cr.corruptions == 0);
	must(blk_pread(b, data, sizeof(data), 0, &err), &err);
	assert_true(data[0] == 0x42 && data[4095] == 0x42);
	must(blk_close(b, &err), &err);
	qemu_check(path);
	unlink(path);
	free(path);
}

/* Several threads at once on one image, as a device's I/O threads use it:
 * each owns every fourth 4 KiB block, so they share clusters (allocation,
 * the fast overwrite path and flushes all race); the result must equal the
 * shadow and pass qemu-img check. */
struct thr {
	struct blk *b;
	uint8_t *shadow;
	uint64_t size, seed;
	int id, failed;
	char msg[TV_ERR_MAX];
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint64_t st = t->seed;
	struct tv_err err;
	uint8_t buf[4096];

	for (int op = 0; op < 400 && !t->failed; op++) {
		uint64_t blk, in, len, r;
		st ^= st << 13, st ^= st >> 7, st ^= st << 17;
		r = st;
		blk = (r % (t->size / 4096 / 4)) * 4 + (uint64_t)t->id;
		in = (r >> 20) % 4096;
		len = 1 + (r >> 32) % (4096 - in);
		switch ((r >> 50) % 8) {
		case 0:
			if (blk_write_zeroes(t->b, blk * 4096, 4096, &err) < 0)
				goto fail;
			memset(t->shadow + blk * 4096, 0, 4096);
			break;
		case 1:
			if (blk_flush(t->b, &err) < 0)
				goto fail;
			break;
		case 2:
			if (blk_pread(t->b, buf, len, blk * 4096 + in, &err) < 0)
				goto fail;
			if (memcmp(buf, t->shadow + blk * 4096 + in, len) != 0) {
				snprintf(t->msg, sizeof(t->msg), "thread %d: block %llu reads wrong",
					 t->id, (unsigned long long)blk);
				t->failed = 1;
			}
			break;
		default:
			memset(t->shadow + blk * 4096 + in, (int)(r >> 8) | 1, len);
			if (blk_pwrite(t->b, t->shadow + blk * 4096 + in, len, blk * 4096 + in,
				       &err) < 0)
				goto fail;
		}
	}
	return NULL;
fail:
	snprintf(t->msg, sizeof(t->msg), "%s", err.msg);
	t->failed = 1;
	return NULL;
}

static void test_threads(void **state)
{
	static const uint64_t sizes[] = {65536, 4096};
	pthread_t th[4];
	struct thr t[4];

	for (size_t c = 0; c < ARRAY_SIZE(sizes); c++) {
		char *path = tpath("mt.qcow2");
		uint64_t size = 8 << 20;
		uint8_t *shadow = xcalloc(1, size);
		struct blk_create_opts o = {.cluster_size = sizes[c]};
		struct tv_err err;
		struct blk *b;

		unlink(path);
		must(blk_create(path, "qcow2", size, &o, &err), &err);
		must(blk_open(&b, path, "qcow2", 0, &err), &err);
		for (int i = 0; i < 4; i++) {
			t[i] = (struct thr){.b = b, .shadow = shadow, .size = size,
					    .seed = 0x5eed + 77 * (uint64_t)i + c, .id = i};
			pthread_create(&th[i], NULL, thr_main, &t[i]);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < 4; i++)
			if (t[i].failed)
				fail_msg("%s", t[i].msg);
		compare_all(b, shadow, size);
		must(blk_close(b, &err), &err);
		qemu_check(path);
		qemu_read_back(path, shadow, size);
		unlink(path);
		free(path);
		free(shadow);
	}
}

/* Allocating writes in flight together on an image opened for direct I/O:
 * the file is grown ahead for them (fallocate) and cut back at close to
 * what the clusters use; the image reads back and passes qemu-img check. */
struct grow_thr {
	struct blk *b;
	uint8_t *shadow;
	int id, n;
	char msg[TV_ERR_MAX];
};

static void *grow_main(void *arg)
{
	struct grow_thr *t = arg;
	uint8_t *buf;
	struct tv_err err;

	if (posix_memalign((void **)&buf, 4096, 65536) != 0)
		return NULL;
	/* Interleaved 64 KiB clusters: every write allocates at the end. */
	for (int i = 0; i < t->n; i++) {
		uint64_t off = ((uint64_t)i * 4 + (uint64_t)t->id) * 65536;
		memcpy(buf, t->shadow + off, 65536);
		if (blk_pwrite(t->b, buf, 65536, off, &err) < 0) {
			snprintf(t->msg, sizeof(t->msg), "%s", err.msg);
			break;
		}
	}
	free(buf);
	return NULL;
}

static void test_grow_ahead(void **state)
{
	char *path = tpath("grow.qcow2");
	uint64_t size = 32 << 20, peak = 0;
	uint8_t *shadow = xmalloc(size);
	struct grow_thr t[4];
	pthread_t th[4];
	struct tv_err err;
	struct stat st;
	struct blk *b;

	unlink(path);
	rnd_state = 0x6a0;
	fill_random(shadow, size);
	must(blk_create(path, "qcow2", size, NULL, &err), &err);
	if (blk_open(&b, path, "qcow2", BLK_DIRECT, &err) < 0) {
		/* A file system without O_DIRECT (tmpfs): nothing to test. */
		unlink(path);
		free(path);
		free(shadow);
		skip();
	}
	for (int i = 0; i < 4; i++) {
		t[i] = (struct grow_thr){.b = b, .shadow = shadow, .id = i, .n = (int)(size / 65536 / 4)};
		pthread_create(&th[i], NULL, grow_main, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (t[i].msg[0])
			fail_msg("thread %d: %s", i, t[i].msg);
	}
	assert_int_equal(stat(path, &st), 0);
	peak = (uint64_t)st.st_size;
	compare_all(b, shadow, size);
	must(blk_close(b, &err), &err);
	/* Cut back: the data, two L2 tables' worth of metadata, nothing more. */
	assert_int_equal(stat(path, &st), 0);
	if ((uint64_t)st.st_size < size || (uint64_t)st.st_size > size + 8 * 65536)
		fail_msg("image file is %llu bytes after close (grown to %llu while open)",
			 (unsigned long long)st.st_size, (unsigned long long)peak);
	print_message("file grown ahead to %llu bytes while open, %llu after close\n",
		      (unsigned long long)peak, (unsigned long long)st.st_size);
	qemu_check(path);
	qemu_read_back(path, shadow, size);
	unlink(path);
	free(path);
	free(shadow);
}

/* A host file system that runs out of room: writes past a file size limit
 * fail as they would on a full disk (EFBIG here, ENOSPC there; the same
 * paths). The failed write reports the system's error (the device pauses
 * the VM on it), leaves the image consistent (no leaked cluster, nothing
 * but the old or the new bytes in the range, as with any device's failed
 * write), and the same write done again once there is room succeeds. */
static void set_file_limit(uint64_t bytes)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = bytes == 0 ? rl.rlim_max : (rlim_t)bytes;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void full_disk_run(bool backed)
{
	char *path = tpath("full.qcow2"), *base = tpath("full-base.raw");
	uint64_t size = 8 << 20, cs = 65536;
	uint8_t *shadow = xcalloc(1, size), *data = xmalloc(3 * cs);
	/* Fresh clusters past the end of the file: a whole cluster, a part
	 * of one, and a run of three with partial ends. Over a backing file
	 * the partial ones are merged with its data under the image's lock;
	 * without, only the new bytes go out once the lock is released. */
	static const struct {
		uint64_t off, len;
	} w[] = {{2 << 20, 65536}, {3 << 20, 4096}, {(4 << 20) + 512, 3 * 65536 - 1024}};
	struct blk_create_opts o = {.cluster_size = cs};
	struct blk_check_result res;
	struct tv_err err;
	struct stat st;
	struct blk *b;

	unlink(path);
	unlink(base);
	if (backed) {
		fill_random(shadow, size);
		must(blk_create(base, "raw", size, NULL, &err), &err);
		must(blk_open(&b, base, "raw", 0, &err), &err);
		must(blk_pwrite(b, shadow, size, 0, &err), &err);
		must(blk_close(b, &err), &err);
		o.backing = "full-base.raw";
		o.backing_fmt = "raw";
	}
	must(blk_create(path, "qcow2", size, &o, &err), &err);
	must(blk_open(&b, path, "qcow2", 0, &err), &err);
	fill_random(shadow, 1 << 20);
	must(blk_pwrite(b, shadow, 1 << 20, 0, &err), &err);
	must(blk_flush(b, &err), &err);
	for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
		uint8_t *old = xmalloc(w[i].len);

		fill_random(data, w[i].len);
		assert_int_equal(stat(path, &st), 0);
		set_file_limit((uint64_t)st.st_size + 1024);
		errno = 0;
		assert_int_equal(blk_pwrite(b, data, w[i].len, w[i].off, &err), -1);
		if (errno != EFBIG)
			fail_msg("write %zu: expected EFBIG, got \"%s\" (errno %d)", i, err.msg,
				 errno);
		(void)blk_flush(b, NULL);
		set_file_limit(0);
		/* Before the retry: consistent, and nothing but old or new bytes. */
		must(blk_check(b, 0, &res, &err), &err);
		if (res.corruptions || res.leaks || res.check_errors)
			fail_msg("write %zu: after the failure: %llu corruptions, %llu leaks", i,
				 (unsigned long long)res.corruptions, (unsigned long long)res.leaks);
		must(blk_pread(b, old, w[i].len, w[i].off, &err), &err);
		for (uint64_t k = 0; k < w[i].len; k++)
			if (old[k] != shadow[w[i].off + k] && old[k] != data[k])
				fail_msg("write %zu: byte %llu after the failure is neither old nor new",
					 i, (unsigned long long)k);
		/* Room again: the same write goes through. */
		must(blk_pwrite(b, data, w[i].len, w[i].off, &err), &err);
		memcpy(shadow + w[i].off, data, w[i].len);
		must(blk_flush(b, &err), &err);
		free(old);
	}
	compare_all(b, shadow, size);
	must(blk_close(b, &err), &err);
	qemu_check(path);
	qemu_read_back(path, shadow, size);
	unlink(path);
	unlink(base);
	free(path);
	free(base);
	free(shadow);
	free(data);
}

static void test_full_disk(void **state)
{
	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	full_disk_run(false);
	full_disk_run(true);
	signal(SIGXFSZ, SIG_DFL);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/tv-qcow2.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_64k),
		cmocka_unit_test(test_random_512),
		cmocka_unit_test(test_random_4k_refcount_widths),
		cmocka_unit_test(test_random_small_cache),
		cmocka_unit_test(test_random_2m),
		cmocka_unit_test(test_random_backing_qcow2),
		cmocka_unit_test(test_random_backing_raw),
		cmocka_unit_test(test_random_zstd),
		cmocka_unit_test(test_compressed_write),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_grow_ahead),
		cmocka_unit_test(test_full_disk),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_vmstate),
		cmocka_unit_test(test_snapshot_rename),
		cmocka_unit_test(test_raw_and_errors),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_corrupt_and_dirty_bits),
	};
	/* TV_QCOW2_ONLY=test_crash runs one test (soak testing). */
	if (getenv("TV_QCOW2_ONLY"))
		cmocka_set_test_filter(getenv("TV_QCOW2_ONLY"));
	return cmocka_run_group_tests_name("qcow2", tests, setup, teardown);
}
