/* Guest memory images on a plain RAM buffer (no KVM): a full image holds only
 * the touched pages and is sparse; a restore maps it copy-on-write, brings in
 * no page before it is touched, and reads back the saved memory; diffs hold
 * only the changed pages (the guest's and the host's); chains, unparent and
 * flatten give the same memory; damaged, newer or mismatched files are refused
 * naming the file and the field. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "vm/dev/virtio-queue.h"
#include "vm/mem.h"
#include "vm/memimg.h"
#include "vm/vm.h"
#include "tests/unit/guest-console.h"

#define PG 4096ULL

struct fix {
	char dir[64];
	uint8_t *ram;
	uint64_t size;
	struct memimg_mem *m;
	struct guest_mem gm;
	struct vm *vm;	    /* a KVM test's, freed by the teardown when it fails */
	struct capture cap; /* its console (outlives a failed test's frame) */
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

	vm_free(f->vm);
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

/* Pages of [p, p + n pages) that the process's page tables map (bit 63 of
 * each /proc/self/pagemap entry): what has been read in or written. */
static uint64_t pages_mapped(const uint8_t *p, uint64_t n)
{
	uint64_t *e = xcalloc(n, sizeof(*e)), count = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, e, n * sizeof(*e), (off_t)((uintptr_t)p / PG * sizeof(*e))),
			 (ssize_t)(n * sizeof(*e)));
	close(fd);
	for (uint64_t i = 0; i < n; i++)
		count += e[i] >> 63;
	free(e);
	return count;
}

/* A rollback costs the same whatever the RAM: the image is mapped, and a page
 * is read only when the guest touches it. Here every page of 64 MiB is
 * saved; after the restore none is in the RAM's page tables until read. */
static void test_restore_is_lazy(void **state)
{
	struct fix *f = *state;
	struct fix g = {.ram = NULL};
	const uint64_t size = 64ULL << 20, npages = size / PG;
	char *a = img(f, "all");
	uint8_t *want;

	fix_open(&g, size);
	fill(g.ram, 0, npages, 5);
	want = copy_of(&g);
	save_ok(&g, a, NULL, NULL);
	assert_int_equal(pages_mapped(g.ram, npages), npages);
	restore_ok(&g, a);
	/* The restore itself read nothing into the RAM. */
	assert_int_equal(pages_mapped(g.ram, npages), 0);
	/* A page the guest reads comes in with the saved bytes, and at most the
	 * 2 MiB around it (the kernel maps the page cache's folio around a fault:
	 * on an ext4 host, 512 pages). */
	assert_memory_equal(g.ram + 1000 * PG, want + 1000 * PG, PG);
	assert_int_equal(pages_mapped(g.ram + 1000 * PG, 1), 1);
	printf("# one page read after the restore: %llu of %llu pages mapped\n",
	       (unsigned long long)pages_mapped(g.ram, npages), (unsigned long long)npages);
	assert_true(pages_mapped(g.ram, npages) <= 512);
	assert_int_equal(pages_mapped(g.ram + 8000 * PG, 1), 0);
	/* Touched all over, it is the saved memory. */
	assert_ram(&g, want);
	fix_close(&g);
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

/* Three images a (full) <- b <- c with different pages; want[i] the memory
 * each saved. */
static void make_chain(struct fix *f, char **p, uint8_t **want)
{
	uint64_t *changed = changed_new(f);

	p[0] = img(f, "a");
	p[1] = img(f, "b");
	p[2] = img(f, "c");
	fill(f->ram, 0, 300, 1);
	want[0] = copy_of(f);
	save_ok(f, p[0], NULL, NULL);
	fill(f->ram, 10, 50, 2);
	memset(f->ram + 200 * PG, 0, PG);
	mark(changed, 10, 50);
	mark(changed, 200, 1);
	want[1] = copy_of(f);
	save_ok(f, p[1], changed, NULL);
	memset(changed, 0, (f->size / PG + 63) / 64 * 8);
	fill(f->ram, 40, 40, 3);
	fill(f->ram, 1000, 1, 3);
	mark(changed, 40, 40);
	mark(changed, 1000, 1);
	want[2] = copy_of(f);
	save_ok(f, p[2], changed, NULL);
	free(changed);
}

static void free_chain(char **p, uint8_t **want)
{
	for (int i = 0; i < 3; i++) {
		free(p[i]);
		free(want[i]);
	}
}

static void rm_image(const char *path)
{
	char *d = xstrdup(path);

	assert_int_equal(unlink(path), 0);
	*strrchr(d, '/') = '\0';
	assert_int_equal(rmdir(d), 0);
	free(d);
}

/* Deleting the middle snapshot: its child takes its pages and names the
 * grandparent; the memory of every image stays the same. */
static void test_unparent(void **state)
{
	struct fix *f = *state;
	char *p[3];
	uint8_t *want[3];
	struct memimg_info before, after;
	struct tv_err err;

	make_chain(f, p, want);
	assert_int_equal(memimg_info(p[2], &before, &err), 0);
	assert_string_equal(before.parent, "../b/memory");
	if (memimg_unparent(p[2], &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(memimg_info(p[2], &after, &err), 0);
	assert_string_equal(after.parent, "../a/memory");
	assert_memory_equal(after.id, before.id, MEMIMG_ID_LEN);
	assert_true(after.pages > before.pages);
	assert_int_equal(memimg_verify(p[2], &err), 0);
	rm_image(p[1]);
	restore_ok(f, p[2]);
	assert_ram(f, want[2]);
	/* Down to a full image. */
	if (memimg_unparent(p[2], &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(memimg_info(p[2], &after, &err), 0);
	assert_false(after.has_parent);
	rm_image(p[0]);
	restore_ok(f, p[2]);
	assert_ram(f, want[2]);
	free_chain(p, want);
}

static void test_flatten(void **state)
{
	struct fix *f = *state;
	char *p[3], *flat = img(f, "clone");
	uint8_t *want[3];
	struct memimg_info info, top;
	struct tv_err err;

	make_chain(f, p, want);
	if (memimg_flatten(p[1], flat, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(memimg_info(flat, &info, &err), 0);
	assert_int_equal(memimg_info(p[1], &top, &err), 0);
	assert_false(info.has_parent);
	assert_memory_not_equal(info.id, top.id, MEMIMG_ID_LEN);
	assert_int_equal(info.pages, 299); /* a's 300 pages, one zeroed by b */
	assert_int_equal(memimg_verify(flat, &err), 0);
	for (int i = 0; i < 3; i++)
		rm_image(p[i]);
	restore_ok(f, flat);
	assert_ram(f, want[1]);
	free_chain(p, want);
	free(flat);
}

/* The VM's base is deleted: the next save holds the base's pages too and
 * names the base's parent. */
static void test_base_deleted(void **state)
{
	struct fix *f = *state;
	char *p[3], *d = img(f, "d");
	uint8_t *want[3], *wd;
	uint64_t *changed = changed_new(f);
	struct memimg_info info;
	struct tv_err err;

	make_chain(f, p, want);
	fill(f->ram, 2000, 1, 4);
	mark(changed, 2000, 1);
	wd = copy_of(f);
	assert_int_equal(memimg_mem_base_deleted(f->m, &err), 0);
	rm_image(p[2]);
	save_ok(f, d, changed, NULL);
	assert_int_equal(memimg_info(d, &info, &err), 0);
	assert_string_equal(info.parent, "../b/memory");
	assert_int_equal(info.pages, 42); /* c's 41 pages and the new one */
	fill(f->ram, 0, 4096, 9);
	restore_ok(f, d);
	assert_ram(f, wd);
	free_chain(p, want);
	free(wd);
	free(d);
	free(changed);
}

/* The base was rewritten by unparent (same id, new file) while the VM ran
 * on it: the next save still names it. */
static void test_base_unparented_under_vm(void **state)
{
	struct fix *f = *state;
	char *p[3], *d = img(f, "d");
	uint8_t *want[3];
	uint64_t *changed = changed_new(f);
	struct memimg_save_stats st;
	struct tv_err err;

	make_chain(f, p, want);
	assert_int_equal(memimg_unparent(p[2], &err), 0);
	fill(f->ram, 2000, 1, 4);
	mark(changed, 2000, 1);
	save_ok(f, d, changed, &st);
	assert_false(st.full);
	assert_int_equal(st.pages_written, 1);
	assert_int_equal(memimg_check(d, f->size, &err), 0);
	free_chain(p, want);
	free(d);
	free(changed);
}

/* A directory that is not a sibling of the base's, too many layers, or
 * layers holding over half the RAM: a full image. */
static void test_full_again(void **state)
{
	struct fix *f = *state;
	uint64_t *changed = changed_new(f);
	struct memimg_save_stats st;
	char *a = img(f, "a"), *other, *path;
	uint8_t *want;

	fill(f->ram, 0, 4, 1);
	save_ok(f, a, NULL, NULL);
	other = xasprintf("%s/elsewhere/x", f->dir);
	path = xasprintf("mkdir -p %s", other);
	assert_int_equal(system(path), 0);
	free(path);
	path = xasprintf("%s/memory", other);
	mark(changed, 0, 1);
	save_ok(f, path, changed, &st);
	assert_true(st.full);
	assert_non_null(strstr(st.full_why, "sibling"));
	free(path);
	for (unsigned i = 0; i < MEMIMG_MAX_LAYERS + 1; i++) {
		char name[16];
		snprintf(name, sizeof(name), "l%u", i);
		path = img(f, name);
		fill(f->ram, 10 + i, 1, (uint8_t)i);
		mark(changed, 10 + i, 1);
		save_ok(f, path, changed, &st);
		/* i = 0 follows the full image elsewhere (not a sibling). */
		assert_int_equal(st.full, i == 0 || i == MEMIMG_MAX_LAYERS);
		assert_int_equal(st.depth, i == MEMIMG_MAX_LAYERS ? 0 : i);
		assert_true((st.full_why != NULL) == st.full);
		free(path);
	}
	want = copy_of(f);
	path = img(f, "half");
	mark(changed, 100, f->size / PG / 2);
	save_ok(f, path, changed, &st);
	assert_true(st.full);
	assert_non_null(strstr(st.full_why, "cap"));
	/* After a restore the memory is no longer anonymous: the full image
	 * comes from the chain's pages, zero ones left out. */
	restore_ok(f, path);
	free(path);
	path = img(f, "after-restore");
	mark(changed, 0, f->size / PG);
	save_ok(f, path, changed, &st);
	assert_true(st.full);
	assert_int_equal(st.pages_written, 4 + MEMIMG_MAX_LAYERS + 1);
	restore_ok(f, path);
	assert_ram(f, want);
	free(path);
	free(want);
	free(other);
	free(a);
	free(changed);
}

/* RAM that is a shared memory file is filled in place, not mapped over. */
static void test_shared_memory_file(void **state)
{
	struct fix *f = *state;
	char *a = img(f, "a"), *mf = xasprintf("%s/ram", f->dir);
	uint64_t size = 4 << 20;
	int fd = open(mf, O_RDWR | O_CREAT, 0600);
	uint8_t *ram, *want, page[PG];
	struct memimg_mem *m;
	struct tv_err err;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(ram != MAP_FAILED);
	m = memimg_mem_new(ram, size, true);
	fill(ram, 3, 5, 1);
	want = xmalloc(size);
	memcpy(want, ram, size);
	assert_int_equal(memimg_mem_save(m, a, NULL, NULL, &err), 0);
	fill(ram, 0, 100, 2);
	assert_int_equal(memimg_mem_restore(m, a, &err), 0);
	assert_memory_equal(ram, want, size);
	/* Still the memory file: what the VM writes reaches it. */
	ram[5 * PG] = 42;
	assert_int_equal(pread(fd, page, PG, 5 * PG), (ssize_t)PG);
	assert_int_equal(page[0], 42);
	memimg_mem_free(m);
	munmap(ram, size);
	close(fd);
	free(want);
	free(mf);
	free(a);
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

/* A guest that uses all of 256 MiB, then changes 1%, 10% and all of it
 * between snapshots: the save of a layer follows what changed. Printed. */
static void test_save_time_by_change(void **state)
{
	struct fix *f = *state;
	struct fix g = {.ram = NULL};
	static const unsigned pct[] = {1, 10, 100};
	uint64_t size = 256ULL << 20, npages = size / PG, *changed, t;
	struct memimg_save_stats st;
	char *path;

	fix_open(&g, size);
	changed = changed_new(&g);
	fill(g.ram, 0, npages, 1);
	path = img(f, "full");
	t = monotonic_ns();
	save_ok(&g, path, NULL, &st);
	printf("# 256 MiB all in use: full save %.1f ms, %llu MiB on disk\n",
	       (monotonic_ns() - t) / 1e6, (unsigned long long)(st.disk_bytes >> 20));
	assert_int_equal(st.pages_written, npages);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t n = npages * pct[i] / 100;
		char name[16];
		snprintf(name, sizeof(name), "p%u", pct[i]);
		memset(changed, 0, (npages + 63) / 64 * 8);
		/* Spread over the RAM, as a guest's changes are. */
		for (uint64_t k = 0; k < n; k++) {
			uint64_t pg = k * npages / n;
			fill(g.ram, pg, 1, (uint8_t)(i + 7));
			mark(changed, pg, 1);
		}
		free(path);
		path = img(f, name);
		t = monotonic_ns();
		save_ok(&g, path, changed, &st);
		printf("# %u%% changed: %s save %.1f ms, %llu MiB on disk\n", pct[i],
		       st.full ? "full" : "layer", (monotonic_ns() - t) / 1e6,
		       (unsigned long long)(st.disk_bytes >> 20));
		/* 100% is over the cap (RAM/2 in layers): a full image. */
		assert_int_equal(st.full, pct[i] == 100);
	}
	free(path);
	free(changed);
	fix_close(&g);
}

static void test_restore_time_flat(void **state)
{
	struct fix *f = *state;
	double one = restore_ms(f, 1ULL << 30), four = restore_ms(f, 4ULL << 30);

	/* Printed, not asserted: timings on a shared host vary. */
	printf("# check + restore of a sparse image: 1 GiB %.2f ms, 4 GiB %.2f ms\n", one, four);
}

/* ---- on KVM: the engine's memory under a running guest ---- */

#define GUEST_RAM   (64ULL << 20) /* the virtio guest's, compared page by page */
#define MEMSNAP_RAM (1ULL << 30)

static struct vm *guest_new(const char *elf, uint64_t memory, const char *cmdline,
			    const struct vm_disk *disk, struct capture *c)
{
	char *kernel = xasprintf("%s/tests/guests/%s", TV_BUILDDIR, elf);
	struct vm_config cfg = {
	    .cpus = 1,
	    .memory = memory,
	    .kernel = kernel,
	    .cmdline = cmdline,
	    .disks = disk,
	    .ndisks = disk != NULL,
	    .debug_exit = true,
	};
	struct vm *vm = guest_vm_new(&cfg, c);

	free(kernel);
	return vm;
}

static uint8_t *guest_ram(struct vm *vm)
{
	uint8_t *c = xmalloc(GUEST_RAM);

	assert_int_equal(gmem_read(vm_mem(vm), 0, c, GUEST_RAM), 0);
	return c;
}

static void assert_guest_ram(struct vm *vm, const uint8_t *want)
{
	uint8_t *now = guest_ram(vm);

	for (uint64_t pg = 0; pg < GUEST_RAM / PG; pg++)
		if (memcmp(now + pg * PG, want + pg * PG, PG) != 0)
			fail_msg("guest page %llu differs from the saved memory",
				 (unsigned long long)pg);
	free(now);
}

static uint64_t counter_of(struct vm *vm)
{
	uint64_t v;

	assert_int_equal(gmem_read(vm_mem(vm), 0x800000, &v, 8), 0);
	return v;
}

static bool wait_until(bool (*cond)(void *), void *arg, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		if (cond(arg))
			return true;
		sleep_ms(1);
	}
	return cond(arg);
}

struct counter_wait {
	struct vm *vm;
	uint64_t above;
};

static bool counter_above(void *arg)
{
	struct counter_wait *w = arg;

	return counter_of(w->vm) > w->above;
}

/* The end of the run within ms, or a failure saying what the guest printed
 * (a guest that never sees its memory change would run on). */
static void wait_exit(struct vm *vm, struct capture *c, unsigned ms)
{
	struct pollfd p = {.fd = vm_exit_fd(vm), .events = POLLIN};

	if (poll(&p, 1, (int)ms) == 1)
		return;
	vm_request_stop(vm);
	vm_wait(vm);
	fail_msg("the guest did not end within %u ms; counter %llu; it printed: %s", ms,
		 (unsigned long long)counter_of(vm), c->buf);
}

static bool kvm_missing(void)
{
	return access("/dev/kvm", R_OK | W_OK) != 0;
}

/* Guest writes, found by KVM's dirty log, a host write found by the host's
 * marks, and a restore under a running guest: KVM maps the image's pages in
 * place of the old ones (no new memory slots), and the guest reads the old
 * value. */
#define HOST_WRITTEN 0x2000000 /* 32 MiB: a page memsnap never touches */

static void test_kvm_guest_reads_old_memory(void **state)
{
	uint8_t host_page[PG], page[PG];
	struct fix *f = *state;
	char *a, *b, want[96];
	struct counter_wait w;
	struct memimg_save_stats st;
	struct capture *c = &f->cap;
	struct tv_err err;
	struct vm *vm;
	uint64_t c1, c2, t;

	if (kvm_missing())
		skip();
	a = img(f, "a");
	b = img(f, "b");
	f->vm = vm = guest_new("memsnap.elf", MEMSNAP_RAM, NULL, NULL, c);
	assert_int_equal(vm_start(vm, &err), 0);
	w = (struct counter_wait){vm, 1000};
	assert_true(wait_until(counter_above, &w, 20000));
	assert_int_equal(vm_pause(vm, &err), 0);
	c1 = counter_of(vm);
	printf("# KVM: counting, paused at %llu\n", (unsigned long long)c1);
	t = monotonic_ns();
	if (memimg_save(vm, a, &st, &err) < 0)
		fail_msg("%s", err.msg);
	printf("# KVM, 1 GiB guest: full save %.2f ms, %llu pages, %llu KiB on disk\n",
	       (monotonic_ns() - t) / 1e6, (unsigned long long)st.pages_written,
	       (unsigned long long)(st.disk_bytes >> 10));
	assert_true(st.full);
	/* A host write, as a device makes: KVM's log does not see it. */
	memset(host_page, 0xa5, sizeof(host_page));
	assert_int_equal(gmem_write(vm_mem(vm), HOST_WRITTEN, host_page, sizeof(host_page)), 0);
	assert_int_equal(vm_resume(vm, &err), 0);
	w.above = c1 + 1000;
	printf("# KVM: resumed\n");
	assert_true(wait_until(counter_above, &w, 20000));
	assert_int_equal(vm_pause(vm, &err), 0);
	c2 = counter_of(vm);
	t = monotonic_ns();
	if (memimg_save(vm, b, &st, &err) < 0)
		fail_msg("%s", err.msg);
	printf("# KVM: diff save %.2f ms, %llu pages\n", (monotonic_ns() - t) / 1e6,
	       (unsigned long long)st.pages_written);
	assert_false(st.full);
	assert_true(st.pages_written >= 1 && st.pages_written < 64);
	t = monotonic_ns();
	if (memimg_check(a, MEMSNAP_RAM, &err) < 0 || memimg_restore(vm, a, &err) < 0)
		fail_msg("%s", err.msg);
	printf("# KVM: check + restore %.2f ms\n", (monotonic_ns() - t) / 1e6);
	printf("# KVM: counter %llu at the first save, %llu at the second\n",
	       (unsigned long long)c1, (unsigned long long)c2);
	fflush(stdout);
	assert_true(counter_of(vm) == c1);
	assert_int_equal(vm_resume(vm, &err), 0);
	wait_exit(vm, c, 30000);
	assert_int_equal(vm_exit_reason(vm), VM_EXIT_DEBUG);
	assert_int_equal(vm_exit_code(vm), 0);
	snprintf(want, sizeof(want), " back to %llu\n", (unsigned long long)c1);
	if (!captured(c, want))
		fail_msg("expected \"%s\" in: %s", want, c->buf);
	/* The diff layer holds the counter's page (the guest's write, from
	 * KVM's log) and the host's page (from the host's marks). */
	if (memimg_restore(vm, b, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(counter_of(vm) == c2);
	assert_int_equal(gmem_read(vm_mem(vm), HOST_WRITTEN, page, sizeof(page)), 0);
	assert_memory_equal(page, host_page, sizeof(page));
	vm_free(vm);
	f->vm = NULL;
	free(a);
	free(b);
}

/* A guest driving virtio-blk (the host writes its disk reads and the used
 * rings into guest memory) between two saves: its memory is saved before it
 * starts and after its disk pass; restoring each gives that memory back, and
 * the guest, whose registers are at the second save, runs on to the end of
 * its checks. This guest also writes every page its device writes (buffers
 * it filled for the write pass, rings it cleared after the first save), so
 * the host's own marks are pinned by test_diff_holds_changed_pages and
 * test_virtqueue_marks_host_writes: with the marks off those fail, this one
 * still passes (tried in the nested machine). */
static void test_kvm_device_writes_in_diff(void **state)
{
	struct fix *f = *state;
	char *a, *b, *diskp;
	struct vm_disk disk = {.format = "raw"};
	struct memimg_save_stats st;
	uint8_t *m1, *m2;
	struct capture *c = &f->cap;
	struct tv_err err;
	struct vm *vm;
	int fd;

	if (kvm_missing())
		skip();
	a = img(f, "a");
	b = img(f, "b");
	disk.path = diskp = xasprintf("%s/disk.raw", f->dir);
	fd = open(diskp, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0 && ftruncate(fd, 4 << 20) == 0);
	close(fd);
	f->vm = vm = guest_new("virtio/virtio-guest.elf", GUEST_RAM, "quick nozero", &disk, c);
	m1 = guest_ram(vm);
	if (memimg_save(vm, a, &st, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(st.full);
	printf("# KVM: the virtio guest saved before it starts: %llu pages\n",
	       (unsigned long long)st.pages_written);
	assert_int_equal(vm_start(vm, &err), 0);
	/* The console comes a byte at a time: wait for the line's end. */
	for (unsigned i = 0; i < 120000 && !captured(c, " bad, checksum "); i++)
		sleep_ms(1);
	if (!captured(c, "words checked, 0 bad, checksum "))
		fail_msg("no clean disk pass in 120 s; the guest printed: %s", c->buf);
	assert_int_equal(vm_pause(vm, &err), 0);
	printf("# KVM: the guest read its disk; paused\n");
	sleep_ms(500); /* requests in flight complete (the VM process quiesces) */
	m2 = guest_ram(vm);
	if (memimg_save(vm, b, &st, &err) < 0)
		fail_msg("%s", err.msg);
	printf("# KVM, virtio-blk pass of 4 MiB: diff of %llu pages\n",
	       (unsigned long long)st.pages_written);
	assert_false(st.full);
	if (memimg_restore(vm, a, &err) < 0)
		fail_msg("%s", err.msg);
	assert_guest_ram(vm, m1);
	printf("# KVM: the first image restored\n");
	if (memimg_restore(vm, b, &err) < 0)
		fail_msg("%s", err.msg);
	assert_guest_ram(vm, m2);
	assert_int_equal(vm_resume(vm, &err), 0);
	wait_exit(vm, c, 120000);
	assert_int_equal(vm_exit_reason(vm), VM_EXIT_DEBUG);
	if (vm_exit_code(vm) != 0 || !captured(c, "virtio: ok"))
		fail_msg("the guest failed after the restore: %s", c->buf);
	vm_free(vm);
	f->vm = NULL;
	free(m1);
	free(m2);
	free(diskp);
	free(a);
	free(b);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    // clang-format off
	    T(test_full_is_sparse),
	    T(test_restore_reads_back),
	    T(test_restore_is_lazy),
	    T(test_diff_holds_changed_pages),
	    T(test_virtqueue_marks_host_writes),
	    T(test_chain_of_three),
	    T(test_unparent),
	    T(test_flatten),
	    T(test_base_deleted),
	    T(test_base_unparented_under_vm),
	    T(test_full_again),
	    T(test_shared_memory_file),
	    T(test_refuses_damaged),
	    T(test_save_time_by_change),
	    T(test_restore_time_flat),
	    T(test_kvm_guest_reads_old_memory),
	    T(test_kvm_device_writes_in_diff),
	    // clang-format on
	};

	setvbuf(stdout, NULL, _IOLBF, 0); /* progress reaches the log as it happens */
	/* MEMIMG_TESTS=test_kvm* runs those only (the nested KVM machine). */
	if (getenv("MEMIMG_TESTS") != NULL)
		cmocka_set_test_filter(getenv("MEMIMG_TESTS"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
