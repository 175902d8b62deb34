#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "src/vmdisk.h"

int vmdisk_snapshot_count(const struct vmdef *d)
{
	return -1;
}

int vmdisk_create(const char *path, enum disk_format fmt, uint64_t size, struct tv_err *err)
{
	int fd;

	if (fmt != DISK_FORMAT_RAW)
		return tv_errf(err, "%s: qcow2 images are not available in this build", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return tv_errno(err, "cannot create %s", path);
	if (ftruncate(fd, (off_t)size) < 0) {
		tv_errno(err, "%s: cannot size it", path);
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}
