/* Guest memory images on a plain RAM buffer (no KVM): a full image holds only
 * the touched pages and is sparse; a restore maps it copy-on-write and reads
 * back the saved memory; diffs hold only the changed pages (the guest's and
 * the host's); chains, unparent and flatten give the same memory; damaged,
 * newer or mismatched files are refused naming the file and the field. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "vm/dev/virtio-queue.h"
#include "vm/mem.h"
#include "vm/memimg.h"

#define PG 4096ULL

struct fix {
	char dir[64];
	uint8_t *ram;
	uint64_t size;
	struct memimg_mem *m;
	struct guest_mem gm;
};

static uint8_t *ram_new(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static void fix_open(struct fix *f, uint64_t size)
{
	f->size = size;
	f->ram = ram_new(size);
	f->m = memimg_mem_new(f->ram, size, false);
	memset(&f->gm, 0, sizeof(f->gm));
	assert_int_equal(gmem_add_region(&f->gm, 0, size, f->ram), 0);
	gmem_track_host_writes(&f->gm, memimg_mem_host_dirty(f->m), f->ram, size);
}

static void fix_close(struct fix *f)
{
	memimg_mem_free(f->m);
	munmap(f->ram, f->size);
	f->m = NULL;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	const char *t = getenv("TMPDIR");

	snprintf(f->dir, sizeof(f->dir), "%s/memimg-XXXXXX", t && strlen(t) < 40 ? t : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	fix_open(f, 16 << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);

	fix_close(f);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f);
	return 0;
}

/* DIR/NAME/memory, its directory created: the snapshots of a VM are siblings. */
static char *img(struct fix *f, const char *name)
{
	char *d = xasprintf("%s/%s", f->dir, name), *p;

	mkdir(d, 0700);
	p = xasprintf("%s/memory", d);
	free(d);
	return p;
}

static void fill(uint8_t *ram, uint64_t page, uint64_t n, uint8_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < PG; k += 512)
			ram[(page + i) * PG + k] = (uint8_t)(seed + i + k / 512 + 1);
}

static uint8_t *copy_of(const struct fix *f)
{
	uint8_t *c = xmalloc(f->size);

	memcpy(c, f->ram, f->size);
	return c;
}

static void assert_ram(const struct fix *f, const uint8_t *want)
{
	for (uint64_t pg = 0; pg < f->size / PG; pg++)
		if (memcmp(f->ram + pg * PG, want + pg * PG, PG) != 0)
			fail_msg("page %llu differs from the saved memory", (unsigned long long)pg);
}

static uint64_t file_blocks(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void save_ok(struct fix *f, const char *path, const uint64_t *changed,
		    struct memimg_save_stats *st)
{
	struct tv_err err = {{0}};

	if (memimg_mem_save(f->m, path, changed, st, &err) < 0)
		fail_msg("save %s: %s", path, err.msg);
}

static void restore_ok(struct fix *f, const char *path)
{
	struct tv_err err = {{0}};

	if (memimg_check(path, f->size, &err) < 0)
		fail_msg("check %s: %s", path, err.msg);
	if (memimg_mem_restore(f->m, path, &err) < 0)
		fail_msg("restore %s: %s", path, err.msg);
}

/* Changed-page bitmap as KVM's dirty log would give it. */
static uint64_t *changed_new(const struct fix *f)
{
	return xcalloc((f->size / PG + 63) / 64, 8);
}

static void mark(uint64_t *bm, uint64_t page, uint64_t n)
{
	for (uint64_t i = page; i < page + n; i++)
		bm[i / 64] |= 1ULL << (i % 64);
}

/* ---- full images ---- */

static void test_full_is_sparse(void **state)
{
	struct fix *f = *state;
	struct memimg_save_stats st;
	struct memimg_info info;
	struct tv_err err;
	char *a = img(f, "a");
	volatile uint8_t sink;

	fill(f->ram, 0, 1, 1);
	fill(f->ram, 5, 1, 2);
	fill(f->ram, 1000, 3, 3);
	fill(f->ram, f->size / PG - 1, 1, 4);
	sink = f->ram[2000 * PG];	   /* read, never written: the zero page */
	memset(f->ram + 3000 * PG, 0, PG); /* written with zeros */
	(void)sink;
	save_ok(f, a, NULL, &st);
	assert_true(st.full);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.pages_written, 6);
	/* 6 pages, the 4 KiB header, a 512-byte bitmap: far below 16 MiB. */
	assert_true(file_blocks(a) <= 6 * PG + 2 * PG + 64 * 1024);
	assert_int_equal(memimg_info(a, &info, &err), 0);
	assert_int_equal(info.version, 1);
	assert_false(info.has_parent);
	assert_int_equal(info.ram_size, f->size);
	assert_int_equal(info.pages, 6);
	assert_string_equal(info.parent, "");
	assert_int_equal(memimg_verify(a, &err), 0);
	printf("# full image of 16 MiB RAM, 6 pages touched: %llu bytes on disk\n",
	       (unsigned long long)file_blocks(a));
	free(a);
}

static void test_restore_reads_back(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a");
	uint8_t *want, page[PG];
	int fd;

	fill(f->ram, 10, 40, 7);
	fill(f->ram, 3000, 1, 8);
	want = copy_of(f);
	save_ok(f, a, NULL, NULL);
	/* The guest goes on: changes saved pages, touches new ones. */
	fill(f->ram, 10, 2, 99);
	fill(f->ram, 500, 20, 98);
	restore_ok(f, a);
	assert_true(memimg_mem_has_base(f->m));
	assert_ram(f, want);
	/* Writes after the restore stay in memory: the file is mapped private. */
	fill(f->ram, 10, 1, 55);
	fill(f->ram, 600, 1, 56);
	fd = open(a, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, page, PG, 10 * PG), (ssize_t)PG);
	assert_memory_equal(page, want + 10 * PG, PG);
	assert_int_equal(pread(fd, page, PG, 600 * PG), (ssize_t)PG);
	assert_memory_equal(page, want + 600 * PG, PG);
	close(fd);
	assert_int_equal(f->ram[10 * PG], (uint8_t)56);
	free(want);
	free(a);
}

/* ---- diffs and chains ---- */

static void test_diff_holds_changed_pages(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a"), *b = img(f, "b");
	uint64_t *changed = changed_new(f);
	struct memimg_save_stats st;
	struct memimg_info info;
	struct tv_err err;
	uint8_t *want, page[PG] = {1, 2, 3};

	fill(f->ram, 0, 100, 1);
	save_ok(f, a, NULL, &st);
	assert_true(st.full);
	/* The guest changes 3 pages (KVM's log says so) and zeroes one; a
	 * device writes one more through guest_mem (no log: the host bitmap). */
	fill(f->ram, 3, 1, 40);
	fill(f->ram, 50, 2, 41);
	memset(f->ram + 60 * PG, 0, PG);
	mark(changed, 3, 1);
	mark(changed, 50, 2);
	mark(changed, 60, 1);
	assert_int_equal(gmem_write(&f->gm, 2000 * PG + 5, page, 3), 0);
	want = copy_of(f);
	save_ok(f, b, changed, &st);
	assert_false(st.full);
	assert_int_equal(st.depth, 1);
	assert_int_equal(st.pages_written, 5);
	assert_true(st.disk_bytes <= 5 * PG + 2 * PG + 64 * 1024);
	assert_int_equal(memimg_info(b, &info, &err), 0);
	assert_true(info.has_parent);
	assert_string_equal(info.parent, "../a/memory");
	assert_int_equal(memimg_verify(b, &err), 0);
	/* Back to b: the zeroed page is zero again, not a's page. */
	fill(f->ram, 0, 4096, 77);
	restore_ok(f, b);
	assert_ram(f, want);
	free(want);
	free(changed);
	free(a);
	free(b);
}

/* The virtqueue marks what it hands a device to write, and the used ring. */
static void test_virtqueue_marks_host_writes(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a"), *b = img(f, "b");
	uint64_t desc = 0x1000, avail = 0x2000, used = 0x3000, buf = 0x9000;
	uint16_t one = 1, zero = 0;
	struct vq q;
	struct vq_req *r = xmalloc(sizeof(*r));
	struct memimg_info info;
	struct tv_err err;
	uint8_t flags[2] = {VIRTQ_DESC_F_WRITE, 0};
	uint32_t len = 3 * PG;

	save_ok(f, a, NULL, NULL);
	/* The driver (not logged here: only the host's writes are tested). */
	memcpy(f->ram + desc, &buf, 8);
	memcpy(f->ram + desc + 8, &len, 4);
	memcpy(f->ram + desc + 12, flags, 2);
	memcpy(f->ram + avail + 4, &zero, 2);
	memcpy(f->ram + avail + 2, &one, 2);
	assert_int_equal(vq_start(&q, &f->gm, 8, desc, avail, used, false, false), 0);
	assert_int_equal(vq_pop(&q, r), 1);
	vq_push(&q, r->head, 0);
	save_ok(f, b, NULL, NULL);
	assert_int_equal(memimg_info(b, &info, &err), 0);
	assert_int_equal(info.pages, 4); /* 3 pages of buffer, 1 of used ring */
	free(r);
	free(a);
	free(b);
}

static void test_chain_of_three(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a"), *b = img(f, "b"), *c = img(f, "c");
	uint64_t *changed = changed_new(f);
	uint8_t *wa, *wb, *wc;
	struct memimg_save_stats st;

	fill(f->ram, 0, 1000, 1);
	wa = copy_of(f);
	save_ok(f, a, NULL, NULL);
	/* Long runs (mapped) and short ones (read in), overlapping. */
	fill(f->ram, 100, 200, 2);
	fill(f->ram, 900, 1, 2);
	mark(changed, 100, 200);
	mark(changed, 900, 1);
	wb = copy_of(f);
	save_ok(f, b, changed, &st);
	assert_int_equal(st.depth, 1);
	memset(changed, 0, (f->size / PG + 63) / 64 * 8);
	fill(f->ram, 150, 64, 3);
	fill(f->ram, 299, 3, 3);
	fill(f->ram, 3000, 1, 3);
	mark(changed, 150, 64);
	mark(changed, 299, 3);
	mark(changed, 3000, 1);
	wc = copy_of(f);
	save_ok(f, c, changed, &st);
	assert_int_equal(st.depth, 2);
	restore_ok(f, a);
	assert_ram(f, wa);
	restore_ok(f, c);
	assert_ram(f, wc);
	restore_ok(f, b);
	assert_ram(f, wb);
	restore_ok(f, c);
	assert_ram(f, wc);
	free(wa);
	free(wb);
	free(wc);
	free(changed);
	free(a);
	free(b);
	free(c);
}

/* ---- refusals ---- */

static void expect_refused(const char *path, uint64_t ram, const char *field)
{
	struct tv_err err = {{0}};

	assert_int_equal(memimg_check(path, ram, &err), -1);
	if (strstr(err.msg, path) == NULL || strstr(err.msg, field) == NULL)
		fail_msg("expected the file and \"%s\" in: %s", field, err.msg);
}

static void patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static char *copy_file(struct fix *f, const char *src, const char *name)
{
	char *dst = img(f, name), *cmd = xasprintf("cp --sparse=always '%s' '%s'", src, dst);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	return dst;
}

static void test_refuses_damaged(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a"), *b;
	uint64_t trailer = f->size;
	uint8_t v2[4] = {2, 0, 0, 0}, junk = 0x5a;
	struct tv_err err = {{0}};

	fill(f->ram, 1, 2, 1);
	save_ok(f, a, NULL, NULL);
	assert_int_equal(memimg_check(a, f->size, &err), 0);

	expect_refused(a, f->size / 2, "ram_size");

	b = copy_file(f, a, "corrupt-header");
	patch(b, trailer + 90, &junk, 1); /* inside the id */
	expect_refused(b, f->size, "header_crc");
	free(b);

	b = copy_file(f, a, "corrupt-bitmap");
	patch(b, trailer + 4096 + 7, &junk, 1);
	expect_refused(b, f->size, "bitmap_crc");
	free(b);

	b = copy_file(f, a, "newer");
	patch(b, trailer + 8, v2, 4);
	expect_refused(b, f->size, "version");
	free(b);

	b = copy_file(f, a, "truncated");
	assert_int_equal(truncate(b, (off_t)(trailer + 4096 + 100)), 0);
	expect_refused(b, f->size, "truncated");
	assert_int_equal(memimg_info(b, &(struct memimg_info){0}, &err), -1);
	assert_non_null(strstr(err.msg, "truncated"));
	free(b);

	b = copy_file(f, a, "not-an-image");
	assert_int_equal(truncate(b, 12345), 0);
	expect_refused(b, f->size, "not a memory image");
	free(b);

	/* verify reads the pages: a flipped byte of data shows there only. */
	b = copy_file(f, a, "corrupt-data");
	patch(b, 1 * PG + 1, &junk, 1);
	assert_int_equal(memimg_check(b, f->size, &err), 0);
	assert_int_equal(memimg_verify(b, &err), -1);
	assert_non_null(strstr(err.msg, "data_crc"));
	assert_non_null(strstr(err.msg, b));
	free(b);
	free(a);
}

/* ---- restore time does not grow with RAM ---- */

static double restore_ms(struct fix *f, uint64_t size)
{
	struct fix g = {.ram = NULL};
	char *p = xasprintf("%s/big%llu", f->dir, (unsigned long long)(size >> 30)), *path;
	struct memimg_save_stats st;
	uint64_t t;
	double ms;

	mkdir(p, 0700);
	path = xasprintf("%s/memory", p);
	fix_open(&g, size);
	for (uint64_t pg = 0; pg < size / PG; pg += size / PG / 64)
		fill(g.ram, pg, 4, 3);
	t = monotonic_ns();
	save_ok(&g, path, NULL, &st);
	printf("# %llu GiB RAM, %llu pages touched: full save %.1f ms, %llu KiB on disk\n",
	       (unsigned long long)(size >> 30), (unsigned long long)st.pages_written,
	       (monotonic_ns() - t) / 1e6, (unsigned long long)(st.disk_bytes >> 10));
	fill(g.ram, 0, 8, 9);
	t = monotonic_ns();
	restore_ok(&g, path);
	ms = (monotonic_ns() - t) / 1e6;
	assert_int_equal(g.ram[0], 4); /* saved value, not the 9s */
	fix_close(&g);
	free(path);
	free(p);
	return ms;
}

static void test_restore_time_flat(void **state)
{
	struct fix *f = *state;
	double one = restore_ms(f, 1ULL << 30), four = restore_ms(f, 4ULL << 30);

	/* Printed, not asserted: timings on a shared host vary. */
	printf("# check + restore of a sparse image: 1 GiB %.2f ms, 4 GiB %.2f ms\n", one, four);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_full_is_sparse),	      T(test_restore_reads_back),
	    T(test_diff_holds_changed_pages), T(test_virtqueue_marks_host_writes),
	    T(test_chain_of_three),	      T(test_refuses_damaged),
	    T(test_restore_time_flat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
