/* A VM's disks seen from the program: creation and what `list` shows. */
#ifndef TV_VMDISK_H
#define TV_VMDISK_H

#include <stdint.h>

#include "src/core/vmdef.h"
#include "common/err.h"

/* Internal snapshots in the VM's first qcow2 disk; -1 when it has no qcow2 disk
 * or the image cannot be read. */
int vmdisk_snapshot_count(const struct vmdef *d);

/* Creates an empty image for disk (qcow2 v3 or raw) of size bytes; refuses to
 * overwrite an existing file. */
int vmdisk_create(const char *path, enum disk_format fmt, uint64_t size, struct tv_err *err);

#endif
