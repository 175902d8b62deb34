/* Guest memory images: the file format and its chain of layers, saves (full
 * from the process's page table, diffs from the change bitmaps), the lazy
 * restore that maps the chain over guest RAM, and the merges (unparent,
 * flatten). The glue to KVM's dirty log is at the end. Every value read
 * from a file is checked before it sizes or indexes anything. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "vm/memimg.h"
#include "vm/vm-int.h"

#define PAGE	      ((uint64_t)4096)
#define HDR_BLOCK     4096 /* the header's place in the trailer */
#define HDR_SIZE      512  /* the bytes of it that are defined (and checksummed) */
#define MAGIC	      "TVMEMIMG"
#define VERSION	      1
#define FLAG_PARENT   1u
#define PARENT_MAX    256
#define HUGE_FROM     (16ULL << 20) /* as the engine maps RAM (kvm.c) */
#define MAP_MIN_PAGES 16	    /* shorter runs of a layer are read in */
#define COPY_PAGES    256	    /* 1 MiB per read when copying between files */

/* Header fields: byte offsets, little-endian (termvisor-snapshot(5)). */
enum {
	H_MAGIC = 0,
	H_VERSION = 8,
	H_HDR_SIZE = 12,
	H_HDR_CRC = 16,
	H_FLAGS = 20,
	H_PAGE_SIZE = 24,
	H_DEPTH = 28,
	H_RAM_SIZE = 32,
	H_PAGES = 40,
	H_LAYER_PAGES = 48,
	H_BITMAP_OFF = 56,
	H_BITMAP_BYTES = 64,
	H_BITMAP_CRC = 72,
	H_DATA_CRC = 76,
	H_ID = 80,
	H_PARENT_ID = 96,
	H_PARENT = 112,
	H_END = H_PARENT + PARENT_MAX,
};

struct hdr {
	uint32_t version, flags, depth;
	uint64_t ram_size, pages, layer_pages, bitmap_off, bitmap_bytes;
	uint32_t bitmap_crc, data_crc;
	uint8_t id[MEMIMG_ID_LEN], parent_id[MEMIMG_ID_LEN];
	char parent[PARENT_MAX];
};

/* ---- bitmaps: bit i of 64-bit word i / 64 is page i ---- */

static uint64_t bm_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

static uint64_t *bm_new(uint64_t npages)
{
	return xcalloc(bm_words(npages) ? bm_words(npages) : 1, sizeof(uint64_t));
}

static bool bm_test(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static void bm_set(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static void bm_clear(uint64_t *bm, uint64_t i)
{
	bm[i / 64] &= ~(1ULL << (i % 64));
}

static uint64_t bm_count(const uint64_t *bm, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < bm_words(npages); w++)
		n += (uint64_t)__builtin_popcountll(bm[w]);
	return n;
}

/* The first page from i on whose bit is want, or npages. */
static uint64_t bm_next(const uint64_t *bm, uint64_t npages, uint64_t i, bool want)
{
	while (i < npages) {
		uint64_t w = bm[i / 64];
		if (!want)
			w = ~w;
		w &= ~0ULL << (i % 64);
		if (w != 0) {
			i = ALIGN_DOWN(i, 64) + (uint64_t)__builtin_ctzll(w);
			return MIN(i, npages);
		}
		i = ALIGN_DOWN(i, 64) + 64;
	}
	return npages;
}

static void bm_or(uint64_t *dst, const uint64_t *src, uint64_t npages)
{
	for (uint64_t w = 0; w < bm_words(npages); w++)
		dst[w] |= src[w];
}

static bool page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

/* ---- the trailer ---- */

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(b + off, &v, 4);
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
	v = htole64(v);
	memcpy(b + off, &v, 8);
}

static uint32_t get32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return le64toh(v);
}

static uint64_t trailer_off(uint64_t ram_size)
{
	return ALIGN_UP(ram_size, PAGE);
}

static uint64_t bitmap_bytes(uint64_t ram_size)
{
	return bm_words(trailer_off(ram_size) / PAGE) * 8;
}

static uint64_t image_size(uint64_t ram_size)
{
	return trailer_off(ram_size) + HDR_BLOCK + bitmap_bytes(ram_size);
}

static void hdr_encode(const struct hdr *h, uint8_t *b)
{
	memset(b, 0, HDR_BLOCK);
	memcpy(b + H_MAGIC, MAGIC, 8);
	put32(b, H_VERSION, h->version);
	put32(b, H_HDR_SIZE, HDR_SIZE);
	put32(b, H_FLAGS, h->flags);
	put32(b, H_PAGE_SIZE, PAGE);
	put32(b, H_DEPTH, h->depth);
	put64(b, H_RAM_SIZE, h->ram_size);
	put64(b, H_PAGES, h->pages);
	put64(b, H_LAYER_PAGES, h->layer_pages);
	put64(b, H_BITMAP_OFF, h->bitmap_off);
	put64(b, H_BITMAP_BYTES, h->bitmap_bytes);
	put32(b, H_BITMAP_CRC, h->bitmap_crc);
	put32(b, H_DATA_CRC, h->data_crc);
	memcpy(b + H_ID, h->id, MEMIMG_ID_LEN);
	memcpy(b + H_PARENT_ID, h->parent_id, MEMIMG_ID_LEN);
	memcpy(b + H_PARENT, h->parent, strnlen(h->parent, PARENT_MAX - 1));
	put32(b, H_HDR_CRC, crc32c(0, b, HDR_SIZE));
}

/* A parent path names a file in a sibling directory: "../DIR/FILE". */
static bool parent_path_ok(const char *p)
{
	const char *dir, *file;

	if (strncmp(p, "../", 3) != 0)
		return false;
	dir = p + 3;
	file = strchr(dir, '/');
	if (file == NULL || file == dir || strchr(file + 1, '/') != NULL || file[1] == '\0')
		return false;
	if ((file - dir == 1 && dir[0] == '.') || (file - dir == 2 && strncmp(dir, "..", 2) == 0))
		return false;
	return strcmp(file + 1, ".") != 0 && strcmp(file + 1, "..") != 0;
}

/* Checks everything the header says on its own, naming the field. */
static int hdr_decode(const uint8_t *b, const char *path, struct hdr *h, struct tv_err *err)
{
	uint32_t hs, crc;
	uint8_t tmp[HDR_SIZE];

	if (memcmp(b + H_MAGIC, MAGIC, 8) != 0)
		return tv_errf(err, "%s: trailer field magic: not \"%s\": not a memory image", path,
			       MAGIC);
	h->version = get32(b, H_VERSION);
	if (h->version > VERSION)
		return tv_errf(err,
			       "%s: trailer field version: %" PRIu32
			       " (written by a newer termvisor; this one reads version %d)",
			       path, h->version, VERSION);
	if (h->version == 0)
		return tv_errf(err, "%s: trailer field version: 0 (corrupt)", path);
	hs = get32(b, H_HDR_SIZE);
	if (hs != HDR_SIZE)
		return tv_errf(err, "%s: trailer field header_size: %" PRIu32 ", expected %d", path,
			       hs, HDR_SIZE);
	memcpy(tmp, b, HDR_SIZE);
	put32(tmp, H_HDR_CRC, 0);
	crc = crc32c(0, tmp, HDR_SIZE);
	if (crc != get32(b, H_HDR_CRC))
		return tv_errf(err,
			       "%s: trailer field header_crc: 0x%08" PRIx32
			       " but the header sums to 0x%08" PRIx32 ": corrupt",
			       path, get32(b, H_HDR_CRC), crc);
	if (get32(b, H_PAGE_SIZE) != PAGE)
		return tv_errf(err, "%s: trailer field page_size: %" PRIu32 ", expected %" PRIu64,
			       path, get32(b, H_PAGE_SIZE), PAGE);
	h->flags = get32(b, H_FLAGS);
	if (h->flags & ~FLAG_PARENT)
		return tv_errf(err, "%s: trailer field flags: 0x%" PRIx32 " has unknown bits", path,
			       h->flags);
	h->depth = get32(b, H_DEPTH);
	h->ram_size = get64(b, H_RAM_SIZE);
	h->pages = get64(b, H_PAGES);
	h->layer_pages = get64(b, H_LAYER_PAGES);
	h->bitmap_off = get64(b, H_BITMAP_OFF);
	h->bitmap_bytes = get64(b, H_BITMAP_BYTES);
	h->bitmap_crc = get32(b, H_BITMAP_CRC);
	h->data_crc = get32(b, H_DATA_CRC);
	memcpy(h->id, b + H_ID, MEMIMG_ID_LEN);
	memcpy(h->parent_id, b + H_PARENT_ID, MEMIMG_ID_LEN);
	memcpy(h->parent, b + H_PARENT, PARENT_MAX);
	if (h->ram_size == 0 || h->ram_size % PAGE != 0 || h->ram_size > (1ULL << 40))
		return tv_errf(err,
			       "%s: trailer field ram_size: %" PRIu64
			       ": expected a multiple of 4096 up to 1 TiB",
			       path, h->ram_size);
	if (h->bitmap_off != trailer_off(h->ram_size) + HDR_BLOCK)
		return tv_errf(err,
			       "%s: trailer field bitmap_offset: %" PRIu64 ", expected %" PRIu64,
			       path, h->bitmap_off, trailer_off(h->ram_size) + HDR_BLOCK);
	if (h->bitmap_bytes != bitmap_bytes(h->ram_size))
		return tv_errf(err,
			       "%s: trailer field bitmap_bytes: %" PRIu64 ", expected %" PRIu64,
			       path, h->bitmap_bytes, bitmap_bytes(h->ram_size));
	if (h->pages > h->ram_size / PAGE)
		return tv_errf(err,
			       "%s: trailer field pages: %" PRIu64 ", more than the %" PRIu64
			       " pages of RAM",
			       path, h->pages, h->ram_size / PAGE);
	if (h->parent[PARENT_MAX - 1] != '\0')
		return tv_errf(err, "%s: trailer field parent: not terminated", path);
	if (h->flags & FLAG_PARENT) {
		if (h->depth == 0 || h->depth > MEMIMG_MAX_READ_DEPTH)
			return tv_errf(err,
				       "%s: trailer field depth: %" PRIu32 ", expected 1 to %d for "
				       "an image with a parent",
				       path, h->depth, MEMIMG_MAX_READ_DEPTH);
		if (!parent_path_ok(h->parent))
			return tv_errf(err, "%s: trailer field parent: \"%s\" is not ../DIR/FILE",
				       path, h->parent);
	} else if (h->depth != 0 || h->parent[0] != '\0' || h->layer_pages != 0) {
		return tv_errf(
		    err, "%s: trailer field depth/parent/layer_pages: set in a full image", path);
	}
	return 0;
}

/* ---- one layer: an image file's trailer and bitmap ---- */

struct layer {
	char *path;
	int fd;
	struct hdr h;
	uint64_t *bm;
	uint64_t disk_bytes;
};

static void layer_close(struct layer *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->bm);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

/* The RAM size whose image is exactly size bytes, or 0. */
static uint64_t ram_for_size(uint64_t size)
{
	uint64_t lo = 1, hi = size / PAGE;

	while (lo <= hi) {
		uint64_t mid = lo + (hi - lo) / 2, s = image_size(mid * PAGE);
		if (s == size)
			return mid * PAGE;
		if (s < size)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

static bool magic_at(int fd, uint64_t off)
{
	char m[8];

	return pread_full(fd, m, 8, off) == 0 && memcmp(m, MAGIC, 8) == 0;
}

/* Opens the image at path (fd: an open descriptor of it, or -1) and reads its
 * trailer; expect_ram: the RAM size it must have, or 0. */
static int layer_load(struct layer *l, const char *path, int fd, uint64_t expect_ram,
		      struct tv_err *err)
{
	uint8_t b[HDR_BLOCK];
	uint64_t ram, words;
	struct stat st;
	uint32_t crc;

	memset(l, 0, sizeof(*l));
	l->path = xstrdup(path);
	l->fd = fd >= 0 ? fd : open(path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		return tv_errno(err, "%s", path);
	if (fstat(l->fd, &st) < 0)
		return tv_errno(err, "%s", path);
	if (!S_ISREG(st.st_mode))
		return tv_errf(err, "%s: not a regular file", path);
	l->disk_bytes = (uint64_t)st.st_blocks * 512;
	ram = ram_for_size((uint64_t)st.st_size);
	if (ram == 0 || !magic_at(l->fd, trailer_off(ram))) {
		if (expect_ram != 0 && (uint64_t)st.st_size < image_size(expect_ram) &&
		    magic_at(l->fd, trailer_off(expect_ram)))
			return tv_errf(err,
				       "%s: truncated: %jd bytes, an image of %" PRIu64
				       " bytes of RAM has %" PRIu64,
				       path, (intmax_t)st.st_size, expect_ram,
				       image_size(expect_ram));
		return tv_errf(err,
			       "%s: no memory image trailer where its size (%jd bytes) puts it: "
			       "truncated, or not a memory image",
			       path, (intmax_t)st.st_size);
	}
	if (pread_full(l->fd, b, HDR_BLOCK, trailer_off(ram)) < 0)
		return tv_errno(err, "%s: reading the trailer", path);
	if (hdr_decode(b, path, &l->h, err) < 0)
		return -1;
	if (l->h.ram_size != ram)
		return tv_errf(err,
			       "%s: trailer field ram_size: %" PRIu64
			       ", but the file's size is that of an image of %" PRIu64,
			       path, l->h.ram_size, ram);
	if (expect_ram != 0 && l->h.ram_size != expect_ram)
		return tv_errf(err,
			       "%s: trailer field ram_size: %" PRIu64 " bytes, expected %" PRIu64,
			       path, l->h.ram_size, expect_ram);
	words = bm_words(ram / PAGE);
	l->bm = xcalloc(words, 8);
	if (pread_full(l->fd, l->bm, words * 8, l->h.bitmap_off) < 0)
		return tv_errno(err, "%s: reading the page bitmap", path);
	crc = crc32c(0, l->bm, words * 8);
	if (crc != l->h.bitmap_crc)
		return tv_errf(err,
			       "%s: trailer field bitmap_crc: 0x%08" PRIx32
			       " but the bitmap sums to 0x%08" PRIx32 ": corrupt",
			       path, l->h.bitmap_crc, crc);
	for (uint64_t w = 0; w < words; w++)
		l->bm[w] = le64toh(l->bm[w]);
	if ((ram / PAGE) % 64 != 0 && l->bm[words - 1] >> ((ram / PAGE) % 64) != 0)
		return tv_errf(err, "%s: page bitmap: bits set past the end of RAM", path);
	if (bm_count(l->bm, ram / PAGE) != l->h.pages)
		return tv_errf(err,
			       "%s: trailer field pages: %" PRIu64 ", the bitmap holds %" PRIu64,
			       path, l->h.pages, bm_count(l->bm, ram / PAGE));
	return 0;
}

/* ---- the chain: l[0] the image asked for, l[n - 1] its full base ---- */

struct chain {
	struct layer l[MEMIMG_MAX_READ_DEPTH + 1];
	unsigned n;
};

static void chain_close(struct chain *c)
{
	for (unsigned i = 0; i < c->n; i++)
		layer_close(&c->l[i]);
	c->n = 0;
}

/* The parent of the image at child, as a path to open. */
static char *parent_resolve(const char *child, const char *rel)
{
	char *d = xstrdup(child), *p = xasprintf("%s/%s", dirname(d), rel);

	free(d);
	return p;
}

/* Opens the image at path and its parents. */
static int chain_open(struct chain *c, const char *path, uint64_t ram_size, struct tv_err *err)
{
	memset(c, 0, sizeof(*c));
	for (;;) {
		struct layer *l = &c->l[c->n], *child = c->n > 0 ? &c->l[c->n - 1] : NULL;
		char *p = child ? parent_resolve(child->path, child->h.parent) : xstrdup(path);
		int rc = layer_load(l, p, -1, child ? child->h.ram_size : ram_size, err);

		free(p);
		c->n++;
		if (rc < 0) {
			if (child != NULL)
				tv_err_prefix(err, "parent of %s: ", child->path);
			chain_close(c);
			return -1;
		}
		if (child != NULL) {
			if (memcmp(l->h.id, child->h.parent_id, MEMIMG_ID_LEN) != 0) {
				tv_errf(err,
					"%s: trailer field parent_id: does not match the id of "
					"%s (that image was replaced)",
					child->path, l->path);
				chain_close(c);
				return -1;
			}
			if (l->h.depth + 1 != child->h.depth) {
				tv_errf(err,
					"%s: trailer field depth: %" PRIu32
					", its parent %s has %" PRIu32,
					child->path, child->h.depth, l->path, l->h.depth);
				chain_close(c);
				return -1;
			}
		}
		if (!(l->h.flags & FLAG_PARENT))
			return 0;
	}
}

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

/* ---- writing ---- */

struct writer {
	int fd;
	const char *path;
	uint32_t crc;
	uint64_t run, nrun; /* pages waiting to be written from run_src */
	const uint8_t *run_src;
};

static int writer_flush(struct writer *w, struct tv_err *err)
{
	if (w->nrun > 0 && pwrite_full(w->fd, w->run_src, w->nrun * PAGE, w->run * PAGE) < 0)
		return tv_errno(err, "%s: writing", w->path);
	w->nrun = 0;
	return 0;
}

/* Page pg of the image is the 4 KiB at src (which stays valid until the next
 * writer_flush): summed, and written unless zero (the file's hole reads as
 * zeros). Pages come in ascending order. */
static int writer_page(struct writer *w, uint64_t pg, const uint8_t *src, bool zero,
		       struct tv_err *err)
{
	w->crc = crc32c(w->crc, src, PAGE);
	if (zero)
		return 0;
	if (w->nrun > 0 &&
	    (w->run + w->nrun != pg || w->run_src + w->nrun * PAGE != src || w->nrun >= 2048)) {
		if (writer_flush(w, err) < 0)
			return -1;
	}
	if (w->nrun == 0) {
		w->run = pg;
		w->run_src = src;
	}
	w->nrun++;
	return 0;
}

static void new_id(uint8_t *id)
{
	size_t got = 0;

	while (got < MEMIMG_ID_LEN) {
		ssize_t n = getrandom(id + got, MEMIMG_ID_LEN - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			break;
	}
	if (got < MEMIMG_ID_LEN) { /* no getrandom: time and address, still unique enough */
		uint64_t t = monotonic_ns() ^ (uintptr_t)id;
		memcpy(id, &t, 8);
		t = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
		memcpy(id + 8, &t, 8);
	}
}

/* Writes trailer and bitmap, then fsyncs. The file is already sized. */
static int trailer_write(int fd, const char *path, struct hdr *h, const uint64_t *bm,
			 struct tv_err *err)
{
	uint64_t words = bm_words(h->ram_size / PAGE);
	uint64_t *le = xmalloc(words * 8);
	uint8_t b[HDR_BLOCK];
	int rc = 0;

	for (uint64_t w = 0; w < words; w++)
		le[w] = htole64(bm[w]);
	h->version = VERSION;
	h->bitmap_off = trailer_off(h->ram_size) + HDR_BLOCK;
	h->bitmap_bytes = words * 8;
	h->bitmap_crc = crc32c(0, le, words * 8);
	h->pages = bm_count(bm, h->ram_size / PAGE);
	hdr_encode(h, b);
	if (pwrite_full(fd, le, words * 8, h->bitmap_off) < 0 ||
	    pwrite_full(fd, b, HDR_BLOCK, trailer_off(h->ram_size)) < 0)
		rc = tv_errno(err, "%s: writing the trailer", path);
	else if (fsync(fd) < 0)
		rc = tv_errno(err, "%s: fsync", path);
	free(le);
	return rc;
}

static int image_create(const char *path, uint64_t ram_size, struct tv_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return tv_errno(err, "%s", path);
	if (ftruncate(fd, (off_t)image_size(ram_size)) < 0) {
		tv_errno(err, "%s: sizing", path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

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
		if (strlen(rel) >= PARENT_MAX || !parent_path_ok(rel)) {
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
	if (layer_load(&l, buf, -1, m->size, NULL) < 0 ||
	    memcmp(l.h.id, m->base.id, MEMIMG_ID_LEN) != 0) {
		layer_close(&l);
		return NULL;
	}
	close(m->base_fd);
	m->base_fd = l.fd;
	m->base = l.h;
	l.fd = -1;
	layer_close(&l);
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
	*why = "the base image was deleted or is not in a sibling directory";
	bp = base_locate(m);
	rel = bp ? sibling_path(path, bp) : NULL;
	free(bp);
	if (rel == NULL)
		return NULL;
	*why = "the chain would be too long";
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
	fd = w.fd = image_create(path, m->size, err);
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
		if (writer_page(&w, pg, p, zero, err) < 0)
			goto fail_file;
	}
	if (writer_flush(&w, err) < 0)
		goto fail_file;
	h.data_crc = w.crc;
	new_id(h.id);
	if (rel != NULL)
		h.layer_pages = m->base.layer_pages + bm_count(held, m->npages);
	if (trailer_write(fd, path, &h, held, err) < 0)
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

/* Loops over the runs [a, b) of set bits in bm, first to last. */
#define FOR_RUNS(bm, npages, a, b)                                                                 \
	for (uint64_t a = bm_next(bm, npages, 0, true), b = bm_next(bm, npages, a, false);         \
	     a < (npages); a = bm_next(bm, npages, b, true), b = bm_next(bm, npages, a, false))

/* Reads pages [a, b) of layer l to dst. */
static int read_run(uint8_t *dst, const struct layer *l, uint64_t a, uint64_t b, struct tv_err *err)
{
	if (pread_full(l->fd, dst, (b - a) * PAGE, a * PAGE) < 0)
		return tv_errno(err, "%s: reading pages %" PRIu64 "-%" PRIu64, l->path, a, b - 1);
	return 0;
}

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
	if (mmap(m->ram, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, base->fd, 0) ==
	    MAP_FAILED)
		return tv_errno(err, "%s: mapping", base->path);
	for (unsigned i = c->n - 1; i-- > 0;) {
		const struct layer *l = &c->l[i];
		FOR_RUNS(eff[i], m->npages, a, b)
		{
			if (b - a < min_run) {
				if (read_run(m->ram + a * PAGE, l, a, b, err) < 0)
					return -1;
			} else if (mmap(m->ram + a * PAGE, (b - a) * PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_FIXED, l->fd,
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
			if (read_run(m->ram + a * PAGE, &c->l[i], a, b, err) < 0)
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

	if (chain_open(&c, path, m->size, err) < 0)
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
	chain_close(&c);
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
	if (layer_load(&b, bp ? bp : "base image", dfd, m->size, err) < 0) {
		layer_close(&b);
		free(bp);
		return -1;
	}
	/* Relative to the base, the pages the base holds may differ. */
	bm_or(m->carry, b.bm, m->npages);
	if (!(b.h.flags & FLAG_PARENT) || bp == NULL) {
		memimg_mem_forget_base(m);
		goto out;
	}
	pp = parent_resolve(bp, b.h.parent);
	if (layer_load(&p, pp, -1, m->size, NULL) == 0 &&
	    memcmp(p.h.id, b.h.parent_id, MEMIMG_ID_LEN) == 0) {
		base_set(m, p.fd, &p.h);
		p.fd = -1;
	} else {
		memimg_mem_forget_base(m); /* the parent is gone too: the next save is full */
	}
	layer_close(&p);
	free(pp);
out:
	layer_close(&b);
	free(bp);
	return 0;
}

/* ---- file operations ---- */

int memimg_check(const char *path, uint64_t ram_size, struct tv_err *err)
{
	struct chain c;

	if (chain_open(&c, path, ram_size, err) < 0)
		return -1;
	chain_close(&c);
	return 0;
}

int memimg_info(const char *path, struct memimg_info *info, struct tv_err *err)
{
	struct layer l;

	if (layer_load(&l, path, -1, 0, err) < 0) {
		layer_close(&l);
		return -1;
	}
	memset(info, 0, sizeof(*info));
	info->version = l.h.version;
	memcpy(info->id, l.h.id, MEMIMG_ID_LEN);
	info->has_parent = l.h.flags & FLAG_PARENT;
	memcpy(info->parent_id, l.h.parent_id, MEMIMG_ID_LEN);
	snprintf(info->parent, sizeof(info->parent), "%s", l.h.parent);
	info->ram_size = l.h.ram_size;
	info->pages = l.h.pages;
	info->disk_bytes = l.disk_bytes;
	layer_close(&l);
	return 0;
}

/* Writes the pages of layers l[0..n) (the top one wins) into w, in order;
 * held gets the pages written. A full image (full) leaves zero pages out. */
static int copy_layers(struct writer *w, struct layer *l, unsigned n, uint64_t npages, bool full,
		       uint64_t *held, struct tv_err *err)
{
	uint8_t *buf = xmalloc(COPY_PAGES * PAGE);
	int rc = 0;

	for (unsigned i = 0; i < n; i++)
		bm_or(held, l[i].bm, npages);
	for (uint64_t a = bm_next(held, npages, 0, true); a < npages && rc == 0;) {
		unsigned s = 0;
		uint64_t b = a + 1;
		while (!bm_test(l[s].bm, a))
			s++;
		/* A run: from one layer, held, at most COPY_PAGES. */
		while (b < npages && b - a < COPY_PAGES && bm_test(held, b)) {
			unsigned t = 0;
			while (!bm_test(l[t].bm, b))
				t++;
			if (t != s)
				break;
			b++;
		}
		if (read_run(buf, &l[s], a, b, err) < 0) {
			rc = -1;
			break;
		}
		for (uint64_t pg = a; pg < b && rc == 0; pg++) {
			const uint8_t *p = buf + (pg - a) * PAGE;
			bool zero = page_zero(p);
			if (zero && full)
				bm_clear(held, pg);
			else
				rc = writer_page(w, pg, p, zero, err);
		}
		if (rc == 0)
			rc = writer_flush(w, err);
		a = bm_next(held, npages, b, true);
	}
	free(buf);
	return rc;
}

/* Writes a new image at dst from layers l[0..n), then renames it over
 * replace (when not NULL) and syncs the directory. */
static int write_merged(const char *dst, const char *replace, struct layer *l, unsigned n,
			struct hdr *h, struct tv_err *err)
{
	uint64_t npages = h->ram_size / PAGE, *held = bm_new(npages);
	struct writer w = {.path = dst};
	int fd = image_create(dst, h->ram_size, err), rc = -1;

	if (fd < 0) {
		free(held);
		return -1;
	}
	w.fd = fd;
	if (copy_layers(&w, l, n, npages, !(h->flags & FLAG_PARENT), held, err) < 0)
		goto out;
	h->data_crc = w.crc;
	if (h->flags & FLAG_PARENT)
		h->layer_pages = h->layer_pages + bm_count(held, npages);
	if (trailer_write(fd, dst, h, held, err) < 0)
		goto out;
	if (replace != NULL) {
		char *d = xstrdup(replace);
		int dfd;
		if (rename(dst, replace) < 0) {
			tv_errno(err, "%s: renaming over %s", dst, replace);
			free(d);
			goto out;
		}
		dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(d);
	}
	rc = 0;
out:
	close(fd);
	if (rc < 0)
		unlink(dst);
	free(held);
	return rc;
}

int memimg_unparent(const char *path, struct tv_err *err)
{
	struct chain c;
	struct hdr h;
	char *tmp;
	int rc;

	if (chain_open(&c, path, 0, err) < 0)
		return -1;
	if (c.n == 1) {
		chain_close(&c);
		return 0; /* full already */
	}
	/* Keeps its id: its children name it by that, and its memory is the same. */
	h = c.l[0].h;
	h.flags = c.l[1].h.flags;
	h.depth = c.l[1].h.depth;
	memcpy(h.parent_id, c.l[1].h.parent_id, MEMIMG_ID_LEN);
	memcpy(h.parent, c.l[1].h.parent, PARENT_MAX); /* siblings: the same from here */
	h.layer_pages = c.l[1].h.flags & FLAG_PARENT ? c.l[1].h.layer_pages - c.l[1].h.pages : 0;
	tmp = xasprintf("%s.unparent", path);
	unlink(tmp); /* left by a crash */
	rc = write_merged(tmp, path, c.l, 2, &h, err);
	free(tmp);
	chain_close(&c);
	return rc;
}

int memimg_flatten(const char *src, const char *dst, struct tv_err *err)
{
	struct chain c;
	struct hdr h;
	int rc;

	if (chain_open(&c, src, 0, err) < 0)
		return -1;
	memset(&h, 0, sizeof(h));
	h.ram_size = c.l[0].h.ram_size;
	new_id(h.id);
	rc = write_merged(dst, NULL, c.l, c.n, &h, err);
	chain_close(&c);
	return rc;
}

int memimg_verify(const char *path, struct tv_err *err)
{
	struct writer w = {.fd = -1, .path = path};
	struct layer l;
	uint8_t *buf = xmalloc(COPY_PAGES * PAGE);
	uint64_t npages;
	int rc = 0;

	if (layer_load(&l, path, -1, 0, err) < 0) {
		layer_close(&l);
		free(buf);
		return -1;
	}
	npages = l.h.ram_size / PAGE;
	for (uint64_t a = bm_next(l.bm, npages, 0, true); a < npages && rc == 0;) {
		uint64_t b = MIN(bm_next(l.bm, npages, a, false), a + COPY_PAGES);
		rc = read_run(buf, &l, a, b, err);
		if (rc == 0)
			w.crc = crc32c(w.crc, buf, (b - a) * PAGE);
		a = bm_next(l.bm, npages, b, true);
	}
	if (rc == 0 && w.crc != l.h.data_crc)
		rc = tv_errf(err,
			     "%s: trailer field data_crc: 0x%08" PRIx32
			     " but the pages sum to 0x%08" PRIx32 ": corrupt",
			     path, l.h.data_crc, w.crc);
	layer_close(&l);
	free(buf);
	return rc;
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
