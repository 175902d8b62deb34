/* Guest memory images of machine snapshots (vm/memimg.c).
 *
 * An image is one file: the guest's RAM at file offset == offset in the VM's
 * RAM mapping (so it can be mapped directly, page for page), pages the image
 * does not hold left as holes, then a trailer from offset ram_size (rounded
 * up to 4 KiB): a versioned header with a checksum, the bitmap of the pages
 * the image holds, and the checksum of their data. termvisor-snapshot(5)
 * documents it field by field.
 *
 * Layers: the first image of a VM's memory is full (every page the guest has
 * touched). Once the VM has a base (the image it last saved or restored),
 * the next save writes only the pages changed since, found with KVM's dirty
 * page log plus the pages the host itself wrote for devices, and names its
 * parent image by the parent's id and its path relative to the image's own
 * directory ("../ID/memory": the snapshots of a VM are sibling directories).
 * Images never change once written; a merge writes a new file and renames it
 * over the old one, so a VM that maps the old one is unaffected.
 *
 * Restore maps the chain copy-on-write (MAP_PRIVATE) over guest RAM: pages are
 * read when the guest touches them, so the cost of a rollback does not grow
 * with guest RAM. */
#ifndef TV_MEMIMG_H
#define TV_MEMIMG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct vm;

#define MEMIMG_ID_LEN 16

struct memimg_save_stats {
	bool full;              /* a full image (no parent) */
	uint64_t pages_written; /* pages held by the image */
	uint64_t disk_bytes;    /* blocks the file takes on disk */
	unsigned depth;         /* layers below it (0 for a full image) */
	const char *full_why;   /* a full image: why not a layer (a constant
				 * string: "the VM has no base image", ...); NULL
				 * for a layer */
};

struct memimg_info {
	uint32_t version;
	uint8_t id[MEMIMG_ID_LEN];
	bool has_parent;
	uint8_t parent_id[MEMIMG_ID_LEN];
	char parent[256];       /* relative path of the parent image, "" when full */
	uint64_t ram_size;
	uint64_t pages;         /* pages the image holds */
	uint64_t disk_bytes;
};

/* With the vCPUs paused and the devices quiesced: writes the image at path
 * (created; fsynced before returning). Full when the VM has no base, else the
 * pages changed since the base. On success the new image is the VM's base and
 * change tracking starts again from it. */
int memimg_save(struct vm *vm, const char *path, struct memimg_save_stats *st, struct tv_err *err);

/* Checks the image at path and every parent up the chain (trailer, checksums
 * of header and bitmap, ids, ram_size equal to the given one) without reading
 * page data or touching any VM. Errors name the file and the field. */
int memimg_check(const char *path, uint64_t ram_size, struct tv_err *err);

/* With the vCPUs paused and the devices quiesced: maps the chain at path in
 * place of the VM's RAM (base first, each layer's pages over it), lazily and
 * copy-on-write; the image becomes the VM's base. Call memimg_check first:
 * a failure after the first mapping leaves guest memory undefined (the
 * caller ends the run). */
int memimg_restore(struct vm *vm, const char *path, struct tv_err *err);

/* The VM's base is about to be deleted: the next save also writes the pages
 * the base held and names the base's parent (or is full). */
int memimg_base_deleted(struct vm *vm, struct tv_err *err);
/* The VM forgets its base (after a reboot the memory is new): the next save is full. */
void memimg_forget_base(struct vm *vm);

/* Reads an image's trailer (no page data). */
int memimg_info(const char *path, struct memimg_info *info, struct tv_err *err);
/* Rewrites the image at path so it no longer needs its parent: the parent's
 * pages that path lacks are copied in and path then names the grandparent
 * (or is full). New file, fsync, rename: atomic. */
int memimg_unparent(const char *path, struct tv_err *err);
/* Writes a full, self-contained copy of the chain at src to dst (clones). */
int memimg_flatten(const char *src, const char *dst, struct tv_err *err);
/* Verifies the page data checksum of the image at path (reads all its pages). */
int memimg_verify(const char *path, struct tv_err *err);

/* ---- The core, on any RAM mapping (the engine's, or a test's buffer) ----
 * The functions above are these plus KVM's dirty log. */

/* Layers a save writes at most before it writes a full image again. */
#define MEMIMG_MAX_LAYERS 16
/* Layers a chain may have when read (files written by other versions). */
#define MEMIMG_MAX_READ_DEPTH 64
/* Mappings a restore makes at most for the layers above the base (each
 * splits the RAM mapping); shorter runs of pages are read in instead. */
#define MEMIMG_MAX_MAPS 1024

struct memimg_mem;

/* The RAM mapping [ram, ram + size) (size a multiple of 4 KiB): shared is
 * true when it is a shared file mapping (the VM's memory_file), which a
 * restore must fill in place instead of mapping over it. */
struct memimg_mem *memimg_mem_new(uint8_t *ram, uint64_t size, bool shared);
void memimg_mem_free(struct memimg_mem *m);
/* The bitmap of pages the host wrote (gmem_track_host_writes). */
uint64_t *memimg_mem_host_dirty(struct memimg_mem *m);
bool memimg_mem_has_base(const struct memimg_mem *m);

/* memimg_save with changed: the pages the guest wrote since the base (one
 * bit per 4 KiB page; NULL: none). Pages marked in the host bitmap are
 * added. On failure the changes are kept for the next save. */
int memimg_mem_save(struct memimg_mem *m, const char *path, const uint64_t *changed,
		    struct memimg_save_stats *st, struct tv_err *err);
int memimg_mem_restore(struct memimg_mem *m, const char *path, struct tv_err *err);
int memimg_mem_base_deleted(struct memimg_mem *m, struct tv_err *err);
void memimg_mem_forget_base(struct memimg_mem *m);

#endif
