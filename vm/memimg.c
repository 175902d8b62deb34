/* Guest memory images of a VM: saves (full from the process's page table,
 * layers from the change bitmaps), the lazy restore that maps a chain over
 * guest RAM, the VM's base image, and the glue to KVM's dirty log at the end.
 * The file format is vm/memimg-file.c's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/memimg-int.h"
#include "vm/vm-int.h"

#define HUGE_FROM     (16ULL << 20) /* as the engine maps RAM (kvm.c) */
#define MAP_MIN_PAGES 16	    /* shorter runs of a layer are read in */

/* ---- the VM's memory as the images see it ---- */

struct memimg_mem {
	uint8_t *ram;
	uint64_t size, npages;
	bool shared;
	/* Private anonymous memory no restore has replaced: the page table
	 * tells which pages were ever touched. Else maybe says which pages may
	 * be non-zero (NULL: any). */
	bool anonymous;
	uint64_t *maybe;
	uint64_t *host_dirty; /* gmem_mark_dirty, from any thread */
	uint64_t *carry;      /* changes no image holds yet (failed save, deleted base) */

	int base_fd; /* the image last saved or restored, or -1 */
	struct hdr base;
};

struct memimg_mem *memimg_mem_new(uint8_t *ram, uint64_t size, bool shared)
{
	struct memimg_mem *m = xcalloc(1, sizeof(*m));

	m->ram = ram;
	m->size = size;
	m->npages = size / PAGE;
	m->shared = shared;
	m->anonymous = !shared;
	m->host_dirty = bm_new(m->npages);
	m->carry = bm_new(m->npages);
	m->base_fd = -1;
	return m;
}

void memimg_mem_free(struct memimg_mem *m)
{
	if (m == NULL)
		return;
	memimg_mem_forget_base(m);
	free(m->maybe);
	free(m->host_dirty);
	free(m->carry);
	free(m);
}

uint64_t *memimg_mem_host_dirty(struct memimg_mem *m)
{
	return m->host_dirty;
}

bool memimg_mem_has_base(const struct memimg_mem *m)
{
	return m->base_fd >= 0;
}

void memimg_mem_forget_base(struct memimg_mem *m)
{
	if (m->base_fd >= 0)
		close(m->base_fd);
	m->base_fd = -1;
}

static void base_set(struct memimg_mem *m, int fd, const struct hdr *h)
{
	memimg_mem_forget_base(m);
	m->base_fd = fd;
	m->base = *h;
}

/* Moves the host's marks into bm (atomically: device threads may mark). */
static void take_host_dirty(struct memimg_mem *m, uint64_t *bm)
{
	for (uint64_t w = 0; w < bm_words(m->npages); w++)
		if (__atomic_load_n(&m->host_dirty[w], __ATOMIC_RELAXED) != 0)
			bm[w] |= __atomic_exchange_n(&m->host_dirty[w], 0, __ATOMIC_ACQ_REL);
}

/* Pages present or swapped in the page table (/proc/self/pagemap). */
static int pagemap_pages(const uint8_t *ram, uint64_t npages, uint64_t *bm, struct tv_err *err)
{
	enum { CHUNK = 32768 };
	uint64_t *e = xmalloc(CHUNK * 8), vpn = (uintptr_t)ram / PAGE;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		free(e);
		return tv_errno(err, "/proc/self/pagemap");
	}
	for (uint64_t i = 0; i < npages; i += CHUNK) {
		uint64_t n = MIN(CHUNK, npages - i);
		if (pread_full(fd, e, n * 8, (vpn + i) * 8) < 0) {
			tv_errno(err, "/proc/self/pagemap");
			close(fd);
			free(e);
			return -1;
		}
		for (uint64_t k = 0; k < n; k++)
			if (e[k] >> 62) /* bit 63 present, bit 62 swapped */
				bm_set(bm, i + k);
	}
	close(fd);
	free(e);
	return 0;
}

/* ---- saving ---- */

/* "../DIR/FILE": base_path (absolute) seen from the directory of path, when
 * the two directories are siblings; else NULL. */
static char *sibling_path(const char *path, const char *base_path)
{
	char *a = xstrdup(path), *b = xstrdup(base_path), *b2 = xstrdup(base_path);
	char *da = realpath(dirname(a), NULL), *db = dirname(b), *file = basename(b2);
	char *pa = da ? xstrdup(da) : NULL, *pb = xstrdup(db), *rel = NULL;

	if (da != NULL && strcmp(dirname(pa), dirname(pb)) == 0) {
		char *db2 = xstrdup(db);
		rel = xasprintf("../%s/%s", basename(db2), file);
		free(db2);
		if (strlen(rel) >= PARENT_MAX || !memimg_parent_path_ok(rel)) {
			free(rel);
			rel = NULL;
		}
	}
	free(a);
	free(b);
	free(b2);
	free(da);
	free(pa);
	free(pb);
	return rel;
}

/* Where the base image is now: the path of its open file (renamed with its
 * directory since, perhaps). When that file was replaced by one of the same
 * id (memimg_unparent), the base is reopened there. NULL when it is gone. */
static char *base_locate(struct memimg_mem *m)
{
	static const char deleted[] = " (deleted)";
	char link[64], buf[PATH_MAX];
	struct stat st;
	struct layer l;
	ssize_t n;

	if (m->base_fd < 0 || fstat(m->base_fd, &st) < 0)
		return NULL;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", m->base_fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (st.st_nlink > 0)
		return xstrdup(buf);
	if ((size_t)n > strlen(deleted) && strcmp(buf + n - strlen(deleted), deleted) == 0)
		buf[n - strlen(deleted)] = '\0';
	if (memimg_layer_load(&l, buf, -1, m->size, NULL) < 0 ||
	    memcmp(l.h.id, m->base.id, MEMIMG_ID_LEN) != 0) {
		memimg_layer_close(&l);
		return NULL;
	}
	close(m->base_fd);
	m->base_fd = l.fd;
	m->base = l.h;
	l.fd = -1;
	memimg_layer_close(&l);
	return xstrdup(buf);
}

/* The parent a save names, or NULL for a full image (and why, in *why). */
static char *save_parent(struct memimg_mem *m, const char *path, uint64_t changed_pages,
			 const char **why)
{
	char *bp, *rel;

	*why = "the VM has no base image";
	if (m->base_fd < 0)
		return NULL;
	*why = "the base image is gone or not in a sibling directory";
	bp = base_locate(m);
	rel = bp ? sibling_path(path, bp) : NULL;
	free(bp);
	if (rel == NULL)
		return NULL;
	*why = "the chain is at its cap (16 layers, or RAM/2 in layers)";
	if (m->base.depth + 1 >= MEMIMG_MAX_LAYERS ||
	    m->base.layer_pages + changed_pages > m->npages / 2) {
		free(rel);
		return NULL;
	}
	return rel;
}

/* The pages a full image must look at: those that may be non-zero. */
static int full_candidates(struct memimg_mem *m, const uint64_t *changed, uint64_t *cand,
			   struct tv_err *err)
{
	if (m->anonymous)
		return pagemap_pages(m->ram, m->npages, cand, err);
	if (m->maybe == NULL) {
		memset(cand, 0xff, bm_words(m->npages) * 8);
		if (m->npages % 64)
			cand[bm_words(m->npages) - 1] = (1ULL << (m->npages % 64)) - 1;
		return 0;
	}
	memcpy(cand, m->maybe, bm_words(m->npages) * 8);
	bm_or(cand, changed, m->npages);
	return 0;
}

int memimg_mem_save(struct memimg_mem *m, const char *path, const uint64_t *kvm_changed,
		    struct memimg_save_stats *st, struct tv_err *err)
{
	uint64_t *changed = bm_new(m->npages), *held = bm_new(m->npages);
	struct writer w = {.path = path};
	struct hdr h = {.ram_size = m->size};
	const char *why;
	char *rel;
	int fd = -1, rfd;
	struct stat sb;

	memcpy(changed, m->carry, bm_words(m->npages) * 8);
	take_host_dirty(m, changed);
	if (kvm_changed != NULL)
		bm_or(changed, kvm_changed, m->npages);
	rel = save_parent(m, path, bm_count(changed, m->npages), &why);
	if (rel != NULL) {
		memcpy(held, changed, bm_words(m->npages) * 8);
		h.flags = FLAG_PARENT;
		h.depth = m->base.depth + 1;
		memcpy(h.parent_id, m->base.id, MEMIMG_ID_LEN);
		snprintf(h.parent, sizeof(h.parent), "%s", rel);
	} else if (full_candidates(m, changed, held, err) < 0) {
		goto fail;
	}
	fd = w.fd = memimg_create(path, m->size, err);
	if (fd < 0)
		goto fail;
	for (uint64_t pg = bm_next(held, m->npages, 0, true); pg < m->npages;
	     pg = bm_next(held, m->npages, pg + 1, true)) {
		const uint8_t *p = m->ram + pg * PAGE;
		bool zero = page_zero(p);
		if (zero && rel == NULL) { /* a full image leaves zero pages out */
			bm_clear(held, pg);
			continue;
		}
		if (memimg_writer_page(&w, pg, p, zero, err) < 0)
			goto fail_file;
	}
	if (memimg_writer_flush(&w, err) < 0)
		goto fail_file;
	h.data_crc = w.crc;
	memimg_new_id(h.id);
	if (rel != NULL)
		h.layer_pages = m->base.layer_pages + bm_count(held, m->npages);
	if (memimg_trailer_write(fd, path, &h, held, err) < 0)
		goto fail_file;
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0) {
		tv_errno(err, "%s", path);
		goto fail_file;
	}
	if (st != NULL) {
		memset(st, 0, sizeof(*st));
		st->full = rel == NULL;
		st->pages_written = h.pages;
		st->depth = h.depth;
		st->full_why = rel == NULL ? why : NULL;
		if (fstat(fd, &sb) == 0)
			st->disk_bytes = (uint64_t)sb.st_blocks * 512;
	}
	close(fd);
	base_set(m, rfd, &h);
	memset(m->carry, 0, bm_words(m->npages) * 8);
	if (m->maybe != NULL) {
		if (rel == NULL)
			memcpy(m->maybe, held, bm_words(m->npages) * 8);
		else
			bm_or(m->maybe, changed, m->npages);
	}
	free(rel);
	free(changed);
	free(held);
	return 0;

fail_file:
	close(fd);
	unlink(path);
fail:
	memcpy(m->carry, changed, bm_words(m->npages) * 8);
	free(rel);
	free(changed);
	free(held);
	return -1;
}

/* ---- restoring ---- */

/* Private RAM: the base mapped over all of it, then each later layer's own
 * pages (those no layer above it holds): long runs mapped, short ones read. */
static int restore_private(struct memimg_mem *m, struct chain *c, uint64_t **eff,
			   struct tv_err *err)
{
	uint64_t min_run = MAP_MIN_PAGES;
	const struct layer *base = &c->l[c->n - 1];

	for (;;) { /* the shortest run worth a mapping, for at most MEMIMG_MAX_MAPS */
		uint64_t maps = 0;
		for (unsigned i = 0; i + 1 < c->n; i++) {
			FOR_RUNS(eff[i], m->npages, a, b)
			{
				maps += b - a >= min_run;
			}
		}
		if (maps <= MEMIMG_MAX_MAPS)
			break;
		min_run *= 2;
	}
	/* MAP_NORESERVE: the guest's RAM was sized against the host when the VM
	 * was made; a rollback must not fail for the commit charge of a second
	 * copy of it (the old pages go as the new mapping replaces them). */
	if (mmap(m->ram, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
		 base->fd, 0) == MAP_FAILED)
		return tv_errno(err, "%s: mapping", base->path);
	for (unsigned i = c->n - 1; i-- > 0;) {
		const struct layer *l = &c->l[i];
		FOR_RUNS(eff[i], m->npages, a, b)
		{
			if (b - a < min_run) {
				if (memimg_read_run(m->ram + a * PAGE, l, a, b, err) < 0)
					return -1;
			} else if (mmap(m->ram + a * PAGE, (b - a) * PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, l->fd,
					(off_t)(a * PAGE)) == MAP_FAILED) {
				return tv_errno(err, "%s: mapping pages %" PRIu64 "-%" PRIu64,
						l->path, a, b - 1);
			}
		}
	}
	/* The new mappings lost the advice the RAM mapping had (kvm.c). */
	if (m->size > HUGE_FROM)
		madvise(m->ram + HUGE_FROM, m->size - HUGE_FROM, MADV_HUGEPAGE);
	return 0;
}

/* Shared RAM (a memory file others may map): filled in place. */
static int restore_shared(struct memimg_mem *m, struct chain *c, uint64_t **eff, struct tv_err *err)
{
	if (madvise(m->ram, m->size, MADV_REMOVE) < 0)
		memset(m->ram, 0, m->size);
	for (unsigned i = c->n; i-- > 0;) {
		FOR_RUNS(eff[i], m->npages, a, b)
		{
			if (memimg_read_run(m->ram + a * PAGE, &c->l[i], a, b, err) < 0)
				return -1;
		}
	}
	return 0;
}

int memimg_mem_restore(struct memimg_mem *m, const char *path, struct tv_err *err)
{
	uint64_t *eff[MEMIMG_MAX_READ_DEPTH + 1], *covered;
	struct chain c;
	int rc, fd;

	if (memimg_chain_open(&c, path, m->size, err) < 0)
		return -1;
	/* Each layer's pages that no layer above holds: disjoint sets. */
	covered = bm_new(m->npages);
	for (unsigned i = 0; i < c.n; i++) {
		eff[i] = bm_new(m->npages);
		for (uint64_t w = 0; w < bm_words(m->npages); w++) {
			eff[i][w] = c.l[i].bm[w] & ~covered[w];
			covered[w] |= c.l[i].bm[w];
		}
	}
	rc = m->shared ? restore_shared(m, &c, eff, err) : restore_private(m, &c, eff, err);
	for (unsigned i = 0; i < c.n; i++)
		free(eff[i]);
	if (rc == 0) {
		/* Only the chain's pages can be non-zero now. */
		free(m->maybe);
		m->maybe = covered;
		m->anonymous = false;
		memset(m->carry, 0, bm_words(m->npages) * 8);
		for (uint64_t w = 0; w < bm_words(m->npages); w++)
			__atomic_store_n(&m->host_dirty[w], 0, __ATOMIC_RELAXED);
		fd = c.l[0].fd;
		c.l[0].fd = -1;
		base_set(m, fd, &c.l[0].h);
	} else {
		free(covered);
	}
	memimg_chain_close(&c);
	return rc;
}

int memimg_mem_base_deleted(struct memimg_mem *m, struct tv_err *err)
{
	struct layer b, p;
	char *bp, *pp;
	int dfd;

	if (m->base_fd < 0)
		return 0;
	bp = base_locate(m);
	dfd = dup(m->base_fd);
	if (dfd < 0) {
		free(bp);
		return tv_errno(err, "base image");
	}
	if (memimg_layer_load(&b, bp ? bp : "base image", dfd, m->size, err) < 0) {
		memimg_layer_close(&b);
		free(bp);
		return -1;
	}
	/* Relative to the base, the pages the base holds may differ. */
	bm_or(m->carry, b.bm, m->npages);
	if (!(b.h.flags & FLAG_PARENT) || bp == NULL) {
		memimg_mem_forget_base(m);
		goto out;
	}
	pp = memimg_parent_resolve(bp, b.h.parent);
	if (memimg_layer_load(&p, pp, -1, m->size, NULL) == 0 &&
	    memcmp(p.h.id, b.h.parent_id, MEMIMG_ID_LEN) == 0) {
		base_set(m, p.fd, &p.h);
		p.fd = -1;
	} else {
		memimg_mem_forget_base(m); /* the parent is gone too: the next save is full */
	}
	memimg_layer_close(&p);
	free(pp);
out:
	memimg_layer_close(&b);
	free(bp);
	return 0;
}

/* ---- the VM: the core plus KVM's dirty log ---- */

int memimg_save(struct vm *vm, const char *path, struct memimg_save_stats *st, struct tv_err *err)
{
	struct memimg_mem *m = vm->memimg;
	uint64_t *changed = NULL;
	int rc;

	if (vm->ram_dirty_log) {
		changed = bm_new(m->npages);
		if (mem_dirty_log_collect(vm, changed, err) < 0) {
			free(changed);
			return -1;
		}
	} else {
		memimg_mem_forget_base(m); /* nothing says what the guest changed */
	}
	rc = memimg_mem_save(m, path, changed, st, err);
	free(changed);
	if (rc == 0 && !vm->ram_dirty_log && mem_dirty_log_enable(vm, err) < 0) {
		memimg_mem_forget_base(m);
		return -1;
	}
	return rc;
}

int memimg_restore(struct vm *vm, const char *path, struct tv_err *err)
{
	struct memimg_mem *m = vm->memimg;
	uint64_t *stale;
	int rc;

	/* KVM keeps its memory slots: they name the host address range, not
	 * its pages, and KVM's MMU notifier drops the old pages from the
	 * guest's page tables as the mapping is replaced, so the guest faults
	 * the image's pages in (test-memimg on KVM checks it). */
	if (memimg_mem_restore(m, path, err) < 0)
		return -1;
	/* The memory is the base now: what the log holds is from before. */
	if (!vm->ram_dirty_log)
		return mem_dirty_log_enable(vm, err);
	stale = bm_new(m->npages);
	rc = mem_dirty_log_collect(vm, stale, err);
	free(stale);
	if (rc < 0)
		memimg_mem_forget_base(m);
	return rc;
}

int memimg_base_deleted(struct vm *vm, struct tv_err *err)
{
	return memimg_mem_base_deleted(vm->memimg, err);
}

void memimg_forget_base(struct vm *vm)
{
	memimg_mem_forget_base(vm->memimg);
}
