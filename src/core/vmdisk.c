#include <stdlib.h>

#include "src/core/vmdisk.h"
#include "vm/block/block.h"

int vmdisk_snapshot_count(const struct vmdef *d)
{
	for (size_t i = 0; i < d->ndisks; i++) {
		if (d->disks[i].format != DISK_FORMAT_QCOW2)
			continue;
		char *path = vmdef_path(d, d->disks[i].file);
		int n = blk_snapshot_count(path, NULL);
		free(path);
		return n;
	}
	return -1;
}

int vmdisk_create(const char *path, enum disk_format fmt, uint64_t size, struct tv_err *err)
{
	return blk_create(path, disk_format_name(fmt), size, NULL, err);
}
