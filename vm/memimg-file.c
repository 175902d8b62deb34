/* Memory image files: the trailer (header and page bitmap) read and
 * checked field by field, chains of layers, and the operations on files
 * alone: check, info, verify, unparent, flatten. Every value read from a
 * file is checked before it sizes or indexes anything. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "vm/memimg-int.h"

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

/* ---- the trailer ---- */


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
	put_le32(b + H_VERSION, h->version);
	put_le32(b + H_HDR_SIZE, HDR_SIZE);
	put_le32(b + H_FLAGS, h->flags);
	put_le32(b + H_PAGE_SIZE, PAGE);
	put_le32(b + H_DEPTH, h->depth);
	put_le64(b + H_RAM_SIZE, h->ram_size);
	put_le64(b + H_PAGES, h->pages);
	put_le64(b + H_LAYER_PAGES, h->layer_pages);
	put_le64(b + H_BITMAP_OFF, h->bitmap_off);
	put_le64(b + H_BITMAP_BYTES, h->bitmap_bytes);
	put_le32(b + H_BITMAP_CRC, h->bitmap_crc);
	put_le32(b + H_DATA_CRC, h->data_crc);
	memcpy(b + H_ID, h->id, MEMIMG_ID_LEN);
	memcpy(b + H_PARENT_ID, h->parent_id, MEMIMG_ID_LEN);
	memcpy(b + H_PARENT, h->parent, strnlen(h->parent, PARENT_MAX - 1));
	put_le32(b + H_HDR_CRC, crc32c(0, b, HDR_SIZE));
}

/* A parent path names a file in a sibling directory: "../DIR/FILE". */
bool memimg_parent_path_ok(const char *p)
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
	h->version = get_le32(b + H_VERSION);
	if (h->version > VERSION)
		return tv_errf(err,
			       "%s: trailer field version: %" PRIu32
			       " (written by a newer termvisor; this one reads version %d)",
			       path, h->version, VERSION);
	if (h->version == 0)
		return tv_errf(err, "%s: trailer field version: 0 (corrupt)", path);
	hs = get_le32(b + H_HDR_SIZE);
	if (hs != HDR_SIZE)
		return tv_errf(err, "%s: trailer field header_size: %" PRIu32 ", expected %d", path,
			       hs, HDR_SIZE);
	memcpy(tmp, b, HDR_SIZE);
	put_le32(tmp + H_HDR_CRC, 0);
	crc = crc32c(0, tmp, HDR_SIZE);
	if (crc != get_le32(b + H_HDR_CRC))
		return tv_errf(err,
			       "%s: trailer field header_crc: 0x%08" PRIx32
			       " but the header sums to 0x%08" PRIx32 ": corrupt",
			       path, get_le32(b + H_HDR_CRC), crc);
	if (get_le32(b + H_PAGE_SIZE) != PAGE)
		return tv_errf(err, "%s: trailer field page_size: %" PRIu32 ", expected %" PRIu64,
			       path, get_le32(b + H_PAGE_SIZE), PAGE);
	h->flags = get_le32(b + H_FLAGS);
	if (h->flags & ~FLAG_PARENT)
		return tv_errf(err, "%s: trailer field flags: 0x%" PRIx32 " has unknown bits", path,
			       h->flags);
	h->depth = get_le32(b + H_DEPTH);
	h->ram_size = get_le64(b + H_RAM_SIZE);
	h->pages = get_le64(b + H_PAGES);
	h->layer_pages = get_le64(b + H_LAYER_PAGES);
	h->bitmap_off = get_le64(b + H_BITMAP_OFF);
	h->bitmap_bytes = get_le64(b + H_BITMAP_BYTES);
	h->bitmap_crc = get_le32(b + H_BITMAP_CRC);
	h->data_crc = get_le32(b + H_DATA_CRC);
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
		if (!memimg_parent_path_ok(h->parent))
			return tv_errf(err, "%s: trailer field parent: \"%s\" is not ../DIR/FILE",
				       path, h->parent);
	} else if (h->depth != 0 || h->parent[0] != '\0' || h->layer_pages != 0) {
		return tv_errf(
		    err, "%s: trailer field depth/parent/layer_pages: set in a full image", path);
	}
	return 0;
}

/* ---- one layer: an image file's trailer and bitmap ---- */

void memimg_layer_close(struct layer *l)
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
int memimg_layer_load(struct layer *l, const char *path, int fd, uint64_t expect_ram,
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

void memimg_chain_close(struct chain *c)
{
	for (unsigned i = 0; i < c->n; i++)
		memimg_layer_close(&c->l[i]);
	c->n = 0;
}

/* The parent of the image at child, as a path to open. */
char *memimg_parent_resolve(const char *child, const char *rel)
{
	char *d = xstrdup(child), *p = xasprintf("%s/%s", dirname(d), rel);

	free(d);
	return p;
}

/* Opens the image at path and its parents. */
int memimg_chain_open(struct chain *c, const char *path, uint64_t ram_size, struct tv_err *err)
{
	memset(c, 0, sizeof(*c));
	for (;;) {
		struct layer *l = &c->l[c->n], *child = c->n > 0 ? &c->l[c->n - 1] : NULL;
		char *p =
		    child ? memimg_parent_resolve(child->path, child->h.parent) : xstrdup(path);
		int rc = memimg_layer_load(l, p, -1, child ? child->h.ram_size : ram_size, err);

		free(p);
		c->n++;
		if (rc < 0) {
			if (child != NULL)
				tv_err_prefix(err, "parent of %s: ", child->path);
			memimg_chain_close(c);
			return -1;
		}
		if (child != NULL) {
			if (memcmp(l->h.id, child->h.parent_id, MEMIMG_ID_LEN) != 0) {
				tv_errf(err,
					"%s: trailer field parent_id: does not match the id of "
					"%s (that image was replaced)",
					child->path, l->path);
				memimg_chain_close(c);
				return -1;
			}
			if (l->h.depth + 1 != child->h.depth) {
				tv_errf(err,
					"%s: trailer field depth: %" PRIu32
					", its parent %s has %" PRIu32,
					child->path, child->h.depth, l->path, l->h.depth);
				memimg_chain_close(c);
				return -1;
			}
		}
		if (!(l->h.flags & FLAG_PARENT))
			return 0;
	}
}

/* ---- writing ---- */

int memimg_writer_flush(struct writer *w, struct tv_err *err)
{
	if (w->nrun > 0 && pwrite_full(w->fd, w->run_src, w->nrun * PAGE, w->run * PAGE) < 0)
		return tv_errno(err, "%s: writing", w->path);
	w->nrun = 0;
	return 0;
}

/* Page pg of the image is the 4 KiB at src (which stays valid until the next
 * writer_flush): summed, and written unless zero (the file's hole reads as
 * zeros). Pages come in ascending order. */
int memimg_writer_page(struct writer *w, uint64_t pg, const uint8_t *src, bool zero,
		       struct tv_err *err)
{
	w->crc = crc32c(w->crc, src, PAGE);
	if (zero)
		return 0;
	if (w->nrun > 0 &&
	    (w->run + w->nrun != pg || w->run_src + w->nrun * PAGE != src || w->nrun >= 2048)) {
		if (memimg_writer_flush(w, err) < 0)
			return -1;
	}
	if (w->nrun == 0) {
		w->run = pg;
		w->run_src = src;
	}
	w->nrun++;
	return 0;
}

void memimg_new_id(uint8_t *id)
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
int memimg_trailer_write(int fd, const char *path, struct hdr *h, const uint64_t *bm,
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

int memimg_create(const char *path, uint64_t ram_size, struct tv_err *err)
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

/* Reads pages [a, b) of layer l to dst. */
int memimg_read_run(uint8_t *dst, const struct layer *l, uint64_t a, uint64_t b, struct tv_err *err)
{
	if (pread_full(l->fd, dst, (b - a) * PAGE, a * PAGE) < 0)
		return tv_errno(err, "%s: reading pages %" PRIu64 "-%" PRIu64, l->path, a, b - 1);
	return 0;
}

/* ---- file operations ---- */

int memimg_check(const char *path, uint64_t ram_size, struct tv_err *err)
{
	struct chain c;

	if (memimg_chain_open(&c, path, ram_size, err) < 0)
		return -1;
	memimg_chain_close(&c);
	return 0;
}

int memimg_info(const char *path, struct memimg_info *info, struct tv_err *err)
{
	struct layer l;

	if (memimg_layer_load(&l, path, -1, 0, err) < 0) {
		memimg_layer_close(&l);
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
	memimg_layer_close(&l);
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
		if (memimg_read_run(buf, &l[s], a, b, err) < 0) {
			rc = -1;
			break;
		}
		for (uint64_t pg = a; pg < b && rc == 0; pg++) {
			const uint8_t *p = buf + (pg - a) * PAGE;
			bool zero = page_zero(p);
			if (zero && full)
				bm_clear(held, pg);
			else
				rc = memimg_writer_page(w, pg, p, zero, err);
		}
		if (rc == 0)
			rc = memimg_writer_flush(w, err);
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
	int fd = memimg_create(dst, h->ram_size, err), rc = -1;

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
	if (memimg_trailer_write(fd, dst, h, held, err) < 0)
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

	if (memimg_chain_open(&c, path, 0, err) < 0)
		return -1;
	if (c.n == 1) {
		memimg_chain_close(&c);
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
	memimg_chain_close(&c);
	return rc;
}

int memimg_flatten(const char *src, const char *dst, struct tv_err *err)
{
	struct chain c;
	struct hdr h;
	int rc;

	if (memimg_chain_open(&c, src, 0, err) < 0)
		return -1;
	memset(&h, 0, sizeof(h));
	h.ram_size = c.l[0].h.ram_size;
	memimg_new_id(h.id);
	rc = write_merged(dst, NULL, c.l, c.n, &h, err);
	memimg_chain_close(&c);
	return rc;
}

int memimg_verify(const char *path, struct tv_err *err)
{
	struct writer w = {.fd = -1, .path = path};
	struct layer l;
	uint8_t *buf = xmalloc(COPY_PAGES * PAGE);
	uint64_t npages;
	int rc = 0;

	if (memimg_layer_load(&l, path, -1, 0, err) < 0) {
		memimg_layer_close(&l);
		free(buf);
		return -1;
	}
	npages = l.h.ram_size / PAGE;
	for (uint64_t a = bm_next(l.bm, npages, 0, true); a < npages && rc == 0;) {
		uint64_t b = MIN(bm_next(l.bm, npages, a, false), a + COPY_PAGES);
		rc = memimg_read_run(buf, &l, a, b, err);
		if (rc == 0)
			w.crc = crc32c(w.crc, buf, (b - a) * PAGE);
		a = bm_next(l.bm, npages, b, true);
	}
	if (rc == 0 && w.crc != l.h.data_crc)
		rc = tv_errf(err,
			     "%s: trailer field data_crc: 0x%08" PRIx32
			     " but the pages sum to 0x%08" PRIx32 ": corrupt",
			     path, l.h.data_crc, w.crc);
	memimg_layer_close(&l);
	free(buf);
	return rc;
}
