/* The inside of the memory images (vm/memimg.c, vm/memimg-file.c): the
 * file's trailer, its layers and chains, and the page bitmaps both files
 * work with. termvisor-snapshot(5) documents the format. */
#ifndef TV_MEMIMG_INT_H
#define TV_MEMIMG_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "vm/memimg.h"

#define PAGE	    ((uint64_t)4096)
#define HDR_BLOCK   4096 /* the header's place in the trailer */
#define HDR_SIZE    512	 /* the bytes of it that are defined (and checksummed) */
#define MAGIC	    "TVMEMIMG"
#define VERSION	    1
#define FLAG_PARENT 1u
#define PARENT_MAX  256
#define COPY_PAGES  256 /* 1 MiB per read when copying between files */

/* The trailer's header, decoded. */
struct hdr {
	uint32_t version, flags, depth;
	uint64_t ram_size, pages, layer_pages, bitmap_off, bitmap_bytes;
	uint32_t bitmap_crc, data_crc;
	uint8_t id[MEMIMG_ID_LEN], parent_id[MEMIMG_ID_LEN];
	char parent[PARENT_MAX];
};

/* One image file: its trailer and bitmap. */
struct layer {
	char *path;
	int fd;
	struct hdr h;
	uint64_t *bm;
	uint64_t disk_bytes;
};

/* A chain: l[0] the image asked for, l[n - 1] its full base. */
struct chain {
	struct layer l[MEMIMG_MAX_READ_DEPTH + 1];
	unsigned n;
};

/* Writes an image's pages in ascending order, summing them (data_crc). */
struct writer {
	int fd;
	const char *path;
	uint32_t crc;
	uint64_t run, nrun; /* pages waiting to be written from run_src */
	const uint8_t *run_src;
};

/* Page bitmaps: bit i of 64-bit word i / 64 is page i. */

static inline uint64_t bm_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

static inline uint64_t *bm_new(uint64_t npages)
{
	return xcalloc(bm_words(npages) ? bm_words(npages) : 1, sizeof(uint64_t));
}

static inline bool bm_test(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static inline void bm_set(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static inline void bm_clear(uint64_t *bm, uint64_t i)
{
	bm[i / 64] &= ~(1ULL << (i % 64));
}

static inline uint64_t bm_count(const uint64_t *bm, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < bm_words(npages); w++)
		n += (uint64_t)__builtin_popcountll(bm[w]);
	return n;
}

/* The first page from i on whose bit is want, or npages. */
static inline uint64_t bm_next(const uint64_t *bm, uint64_t npages, uint64_t i, bool want)
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

static inline void bm_or(uint64_t *dst, const uint64_t *src, uint64_t npages)
{
	for (uint64_t w = 0; w < bm_words(npages); w++)
		dst[w] |= src[w];
}

static inline bool page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

/* Loops over the runs [a, b) of set bits in bm, first to last. */
#define FOR_RUNS(bm, npages, a, b)                                                                 \
	for (uint64_t a = bm_next(bm, npages, 0, true), b = bm_next(bm, npages, a, false);         \
	     a < (npages); a = bm_next(bm, npages, b, true), b = bm_next(bm, npages, a, false))

/* memimg-file.c */
/* Opens the image at path (fd: an open descriptor of it, or -1) and reads its
 * trailer; expect_ram: the RAM size it must have, or 0. */
int memimg_layer_load(struct layer *l, const char *path, int fd, uint64_t expect_ram,
		      struct tv_err *err);
void memimg_layer_close(struct layer *l);
/* Opens the image at path and its parents. */
int memimg_chain_open(struct chain *c, const char *path, uint64_t ram_size, struct tv_err *err);
void memimg_chain_close(struct chain *c);
/* A parent path names a file in a sibling directory: "../DIR/FILE". */
bool memimg_parent_path_ok(const char *p);
/* The parent of the image at child, as a path to open. */
char *memimg_parent_resolve(const char *child, const char *rel);
/* Reads pages [a, b) of layer l to dst. */
int memimg_read_run(uint8_t *dst, const struct layer *l, uint64_t a, uint64_t b,
		    struct tv_err *err);
/* A new image file at path, sized for ram_size; its fd. */
int memimg_create(const char *path, uint64_t ram_size, struct tv_err *err);
/* Page pg of the image is the 4 KiB at src (which stays valid until the next
 * memimg_writer_flush): summed, and written unless zero (the file's hole reads
 * as zeros). Pages come in ascending order. */
int memimg_writer_page(struct writer *w, uint64_t pg, const uint8_t *src, bool zero,
		       struct tv_err *err);
int memimg_writer_flush(struct writer *w, struct tv_err *err);
/* Writes trailer and bitmap (h's version, sizes, checksum and page count
 * filled in), then fsyncs. */
int memimg_trailer_write(int fd, const char *path, struct hdr *h, const uint64_t *bm,
			 struct tv_err *err);
void memimg_new_id(uint8_t *id);

#endif
