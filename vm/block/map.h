/* Direct data access for an I/O engine that moves the data itself (the
 * io_uring path of virtio-blk): where a disk's bytes live in the image file,
 * so reads and in-place overwrites can go straight to the file.
 *
 * Between blk_map_begin and blk_map_end the image is held as a read or an
 * overwrite in progress holds it: no cluster is allocated, freed or moved,
 * so every mapping stays valid until blk_map_end, whatever other threads
 * do. The holding thread must not call blk_* functions that change
 * metadata (allocating writes, discard, flush, ...) before blk_map_end:
 * those wait for the hold to end. */
#ifndef TV_BLOCK_MAP_H
#define TV_BLOCK_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/block/block.h"

struct blk_extent {
	int fd;	       /* the image file */
	uint64_t host; /* byte offset in it */
	uint64_t len;  /* bytes, from the start of the range asked for */
};

void blk_map_begin(struct blk *b);
void blk_map_end(struct blk *b);

/* For [off, off + len) inside the disk, between begin and end: 1 with x
 * filled when its leading part is data stored in this image's own file that
 * may be read (write: overwritten in place) directly; 0 when it is not
 * (compressed, reading as zeros, unallocated or from a backing file, shared
 * with a snapshot, not allocated yet, a read-only image): use blk_pread /
 * blk_pwrite for it after blk_map_end. -1 with err on a corrupt mapping. */
int blk_map(struct blk *b, uint64_t off, uint64_t len, bool write, struct blk_extent *x,
	    struct tv_err *err);

#endif
