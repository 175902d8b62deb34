/* raw images: the file is the disk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/block/block-int.h"
#include "common/util.h"

static int raw_open(struct blk *b, int flags, struct tv_err *err)
{
	struct stat st;

	if (fstat(b->fd, &st) < 0)
		return tv_errno(err, "%s: cannot stat", b->path);
	b->size = (uint64_t)st.st_size;
	return 0;
}

static void raw_close(struct blk *b)
{
}

static int raw_create(const char *path, int fd, uint64_t size, const struct blk_create_opts *o,
		      struct tv_err *err)
{
	if (o->backing)
		return tv_errf(err, "%s: raw images cannot have a backing file", path);
	if (size > INT64_MAX)
		return tv_errf(err, "%s: size %llu is too large", path, (unsigned long long)size);
	if (ftruncate(fd, (off_t)size) < 0)
		return tv_errno(err, "%s: cannot set the size", path);
	return 0;
}

static int raw_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	if (blk_data_pread(b, buf, len, off) < 0)
		return tv_errno(err, "%s: read at %llu failed", b->path, (unsigned long long)off);
	return 0;
}

static int raw_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	if (blk_data_pwrite(b, buf, len, off) < 0)
		return tv_errno(err, "%s: write at %llu failed", b->path, (unsigned long long)off);
	return 0;
}

static int raw_flush(struct blk *b, struct tv_err *err)
{
	if (fdatasync(b->fd) < 0)
		return tv_errno(err, "%s: flush failed", b->path);
	return 0;
}

static int raw_discard(struct blk *b, uint64_t off, uint64_t len, bool zero, struct tv_err *err)
{
	static const uint8_t zeros[65536];

	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
	    0)
		return 0;
	/* No hole punching here: write the zeros out. */
	while (len > 0) {
		size_t n = MIN(len, sizeof(zeros));
		if (pwrite_full(b->fd, zeros, n, off) < 0)
			return tv_errno(err, "%s: write at %llu failed", b->path,
					(unsigned long long)off);
		off += n;
		len -= n;
	}
	return 0;
}

static int raw_resize(struct blk *b, uint64_t size, struct tv_err *err)
{
	if (size > INT64_MAX || ftruncate(b->fd, (off_t)size) < 0)
		return tv_errno(err, "%s: cannot resize to %llu bytes", b->path,
				(unsigned long long)size);
	b->size = size;
	return 0;
}

static void raw_get_info(struct blk *b, struct blk_info *info)
{
}

static int raw_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum,
			    uint64_t *host_off, struct tv_err *err)
{
	off_t data = lseek(b->fd, (off_t)off, SEEK_DATA), hole;

	*host_off = off;
	if (data < 0 && errno == ENXIO) {
		*pnum = len;
		return BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED;
	}
	if (data < 0) {
		*pnum = len;
		return BLK_STATUS_DATA | BLK_STATUS_ALLOCATED;
	}
	if ((uint64_t)data > off) {
		*pnum = MIN(len, (uint64_t)data - off);
		return BLK_STATUS_ZERO | BLK_STATUS_ALLOCATED;
	}
	hole = lseek(b->fd, (off_t)off, SEEK_HOLE);
	*pnum = hole > (off_t)off ? MIN(len, (uint64_t)hole - off) : len;
	return BLK_STATUS_DATA | BLK_STATUS_ALLOCATED;
}

const struct blk_driver blk_raw_driver = {
	.name = "raw",
	.probe = NULL,
	.open = raw_open,
	.close = raw_close,
	.create = raw_create,
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.flush = raw_flush,
	.discard = raw_discard,
	.resize = raw_resize,
	.get_info = raw_get_info,
	.block_status = raw_block_status,
};
