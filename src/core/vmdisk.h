/* A VM's disks seen from the program: creation and what `list` shows. */
#ifndef TV_VMDISK_H
#define TV_VMDISK_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/vmdef.h"
#include "common/err.h"

/* The VM's snapshots (its snapshot tree, src/core/snapstore.h); -1 when the
 * tree's index cannot be read. */
int vmdisk_snapshot_count(const struct vmdef *d);

/* Creates an empty image for disk (qcow2 v3 or raw) of size bytes; refuses to
 * overwrite an existing file. */
int vmdisk_create(const char *path, enum disk_format fmt, uint64_t size, struct tv_err *err);

struct blk;
/* Copies in's data into out (at least as large), skipping clusters of zeros
 * so the copy stays sparse: `img convert` and clones. compress: clusters
 * written compressed (qcow2 out, unallocated); zero_fill: zeros written too
 * (out is not fresh). */
int vmdisk_copy(struct blk *in, struct blk *out, bool compress, bool zero_fill, struct tv_err *err);

#endif
