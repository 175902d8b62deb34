/* The common block API: driver table, probing, locking, request checks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/block/block-int.h"
#include "common/util.h"

static const struct blk_driver *const blk_drivers[] = {
	&blk_qcow2_driver,
	&blk_raw_driver,
	NULL,
};

static const struct blk_driver *blk_driver_find(const char *name)
{
	for (size_t i = 0; blk_drivers[i]; i++)
		if (strcmp(blk_drivers[i]->name, name) == 0)
			return blk_drivers[i];
	return NULL;
}

int blk_file_pread(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static bool blk_direct_ok(struct blk *b, const void *buf, size_t len, uint64_t off)
{
	return b->dfd != b->fd && !(((uintptr_t)buf | len | off) & 511);
}

int blk_data_pread(struct blk *b, void *buf, size_t len, uint64_t off)
{
	if (blk_direct_ok(b, buf, len, off)) {
		/* O_DIRECT reads stop short at the end of the file. */
		ssize_t n = pread(b->dfd, buf, len, (off_t)off);
		if (n == (ssize_t)len)
			return 0;
	}
	return blk_file_pread(b->fd, buf, len, off);
}

int blk_data_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off)
{
	return pwrite_full(blk_direct_ok(b, buf, len, off) ? b->dfd : b->fd, buf, len, off);
}

static const struct blk_driver *blk_probe_fd(int fd)
{
	uint8_t buf[512];
	const struct blk_driver *best = &blk_raw_driver;
	int score = 0;

	if (blk_file_pread(fd, buf, sizeof(buf), 0) < 0)
		return NULL;
	for (size_t i = 0; blk_drivers[i]; i++) {
		int s = blk_drivers[i]->probe ? blk_drivers[i]->probe(buf, sizeof(buf)) : 0;
		if (s > score) {
			score = s;
			best = blk_drivers[i];
		}
	}
	return best;
}

/* QEMU's lock protocol: byte 100+i held = "I use permission i", byte 200+i
 * held = "nobody else may use permission i". All locks are shared; a
 * conflict is another description holding the opposite byte. */
enum {
	LOCK_PERM_BASE = 100,
	LOCK_SHARED_BASE = 200,
	PERM_CONSISTENT_READ = 0,
	PERM_WRITE = 1,
	PERM_WRITE_UNCHANGED = 2,
	PERM_RESIZE = 3,
};

static int lock_byte(int fd, int cmd, short type, off_t off, struct flock *out)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};
	int rc = fcntl(fd, cmd, &fl);

	if (out)
		*out = fl;
	return rc;
}

/* Who holds a lock on the file: OFD locks report no PID, so look for the
 * process with a lock line on a descriptor of this file. */
static long lock_holder_pid(int fd)
{
	struct stat st;
	DIR *proc;
	struct dirent *de;
	long found = -1;

	if (fstat(fd, &st) < 0 || !(proc = opendir("/proc")))
		return -1;
	while (found < 0 && (de = readdir(proc))) {
		char dir[300], *end;
		long pid = strtol(de->d_name, &end, 10);
		DIR *fds;
		struct dirent *fe;

		if (*end || pid <= 0 || pid == (long)getpid())
			continue;
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
		if (!(fds = opendir(dir)))
			continue;
		while (found < 0 && (fe = readdir(fds))) {
			char p[600], line[256];
			struct stat fst;
			FILE *f;

			snprintf(p, sizeof(p), "%s/%s", dir, fe->d_name);
			if (fe->d_name[0] == '.' || stat(p, &fst) < 0 || fst.st_dev != st.st_dev ||
			    fst.st_ino != st.st_ino)
				continue;
			snprintf(p, sizeof(p), "/proc/%ld/fdinfo/%s", pid, fe->d_name);
			if (!(f = fopen(p, "r")))
				continue;
			while (fgets(line, sizeof(line), f))
				if (strncmp(line, "lock:", 5) == 0)
					found = pid;
			fclose(f);
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

static int lock_conflict(struct blk *b, int byte, struct tv_err *err)
{
	struct flock fl;
	long pid;

	if (lock_byte(b->fd, F_OFD_GETLK, F_WRLCK, byte, &fl) < 0)
		return tv_errno(err, "%s: cannot test the image lock", b->path);
	if (fl.l_type == F_UNLCK)
		return 0;
	pid = fl.l_pid > 0 ? fl.l_pid : lock_holder_pid(b->fd);
	if (pid > 0)
		return tv_errf(err, "%s: image in use by PID %ld (it holds the %s lock)", b->path,
			       pid, byte % 100 == PERM_WRITE ? "write" : "shared");
	return tv_errf(err, "%s: image in use by another process (it holds the %s lock)", b->path,
		       byte % 100 == PERM_WRITE ? "write" : "shared");
}

int blk_lock_image(struct blk *b, bool write, struct tv_err *err)
{
	/* A writer holds read+write+resize and shares only reading; a reader
	 * holds read and refuses writers, as qemu-img does. */
	static const int wr_hold[] = {PERM_CONSISTENT_READ, PERM_WRITE, PERM_WRITE_UNCHANGED,
				      PERM_RESIZE};
	static const int rd_hold[] = {PERM_CONSISTENT_READ};
	static const int unshare[] = {PERM_WRITE, PERM_RESIZE};
	const int *hold = write ? wr_hold : rd_hold;
	size_t nhold = write ? ARRAY_SIZE(wr_hold) : ARRAY_SIZE(rd_hold);

	for (size_t i = 0; i < nhold; i++)
		if (lock_byte(b->fd, F_OFD_SETLK, F_RDLCK, LOCK_PERM_BASE + hold[i], NULL) < 0)
			return tv_errno(err, "%s: cannot lock the image", b->path);
	for (size_t i = 0; i < ARRAY_SIZE(unshare); i++)
		if (lock_byte(b->fd, F_OFD_SETLK, F_RDLCK, LOCK_SHARED_BASE + unshare[i], NULL) < 0)
			return tv_errno(err, "%s: cannot lock the image", b->path);
	for (size_t i = 0; i < nhold; i++)
		if (lock_conflict(b, LOCK_SHARED_BASE + hold[i], err) < 0)
			return -1;
	for (size_t i = 0; i < ARRAY_SIZE(unshare); i++)
		if (lock_conflict(b, LOCK_PERM_BASE + unshare[i], err) < 0)
			return -1;
	return 0;
}

char *blk_backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');

	if (name[0] == '/' || !slash)
		return xstrdup(name);
	return xasprintf("%.*s/%s", (int)(slash - image), image, name);
}

int blk_open_backing(struct blk *b, const char *name, const char *fmt, struct tv_err *err)
{
	char *p = blk_backing_path(b->path, name);
	int rc;

	rc = blk_open(&b->backing, p, fmt, BLK_READONLY | (b->flags & (BLK_SHARE | BLK_NO_REPAIR)),
		      err);
	free(p);
	if (rc < 0)
		tv_err_prefix(err, "%s: backing file: ", b->path);
	return rc;
}

/* Backing chains open recursively; the depth bounds a chain that loops. */
static __thread int blk_open_nesting;

int blk_open(struct blk **bp, const char *path, const char *fmt, int flags, struct tv_err *err)
{
	return blk_open_opts(bp, path, fmt, flags, NULL, err);
}

int blk_open_opts(struct blk **bp, const char *path, const char *fmt, int flags,
		  const struct blk_open_opts *o, struct tv_err *err)
{
	struct blk *b;
	const struct blk_driver *d = NULL;
	int oflags, rc;

	*bp = NULL;
	if (blk_open_nesting >= 16)
		return tv_errf(err, "%s: backing chain deeper than 16 images (a loop?)", path);
	if (flags & BLK_SHARE)
		flags |= BLK_READONLY;
	if (fmt && !(d = blk_driver_find(fmt)))
		return tv_errf(err, "%s: unknown format '%s' (expected qcow2 or raw)", path, fmt);
	b = xcalloc(1, sizeof(*b));
	b->path = xstrdup(path);
	b->flags = flags;
	b->readonly = flags & BLK_READONLY;
	b->l2_cache_size = o ? o->l2_cache_size : 0;
	pthread_rwlock_init(&b->lock, NULL);
	oflags = (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	b->fd = open(path, oflags);
	b->dfd = b->fd;
	if (b->fd < 0) {
		tv_errno(err, "cannot open %s", path);
		goto fail;
	}
	if ((flags & BLK_DIRECT) && (b->dfd = open(path, oflags | O_DIRECT)) < 0) {
		b->dfd = b->fd;
		tv_errno(err, "%s: cannot open for direct I/O", path);
		goto fail;
	}
	if (!d && !(d = blk_probe_fd(b->fd))) {
		tv_errno(err, "%s: cannot read", path);
		goto fail;
	}
	b->drv = d;
	if (!(flags & BLK_SHARE) && blk_lock_image(b, !b->readonly, err) < 0)
		goto fail;
	blk_open_nesting++;
	rc = d->open(b, flags, err);
	blk_open_nesting--;
	if (rc < 0) {
		b->drv = NULL;
		goto fail;
	}
	*bp = b;
	return 0;
fail:
	if (b->backing)
		blk_close(b->backing, NULL);
	if (b->dfd != b->fd)
		close(b->dfd);
	if (b->fd >= 0)
		close(b->fd);
	pthread_rwlock_destroy(&b->lock);
	free(b->path);
	free(b);
	return -1;
}

int blk_close(struct blk *b, struct tv_err *err)
{
	int rc = 0;

	if (!b)
		return 0;
	if (!b->readonly && b->drv->flush(b, err) < 0)
		rc = -1;
	b->drv->close(b);
	if (b->backing)
		blk_close(b->backing, NULL);
	if (b->dfd != b->fd)
		close(b->dfd);
	close(b->fd);
	pthread_rwlock_destroy(&b->lock);
	free(b->path);
	free(b);
	return rc;
}

int blk_create(const char *path, const char *fmt, uint64_t size, const struct blk_create_opts *opts,
	       struct tv_err *err)
{
	static const struct blk_create_opts none;
	const struct blk_driver *d = blk_driver_find(fmt ? fmt : "qcow2");
	int fd, rc;

	if (!d || !d->create)
		return tv_errf(err, "%s: cannot create images of format '%s' (expected qcow2 or raw)",
			       path, fmt);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return tv_errno(err, "cannot create %s", path);
	rc = d->create(path, fd, size, opts ? opts : &none, err);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = tv_errno(err, "%s: cannot sync", path);
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

static int blk_check_req(struct blk *b, uint64_t off, uint64_t len, bool write, struct tv_err *err)
{
	if (write && b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	if (off > b->size || len > b->size - off)
		return tv_errf(err, "%s: request at %llu+%llu is past the end of the disk (%llu bytes)",
			       b->path, (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)b->size);
	return 0;
}

int blk_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	if (blk_check_req(b, off, len, false, err) < 0)
		return -1;
	return len ? b->drv->pread(b, buf, len, off, err) : 0;
}

int blk_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	if (blk_check_req(b, off, len, true, err) < 0)
		return -1;
	return len ? b->drv->pwrite(b, buf, len, off, err) : 0;
}

int blk_flush(struct blk *b, struct tv_err *err)
{
	return b->readonly ? 0 : b->drv->flush(b, err);
}

int blk_discard(struct blk *b, uint64_t off, uint64_t len, struct tv_err *err)
{
	if (blk_check_req(b, off, len, true, err) < 0)
		return -1;
	return len ? b->drv->discard(b, off, len, false, err) : 0;
}

int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct tv_err *err)
{
	if (blk_check_req(b, off, len, true, err) < 0)
		return -1;
	return len ? b->drv->discard(b, off, len, true, err) : 0;
}

uint64_t blk_size(const struct blk *b)
{
	return b->size;
}

bool blk_is_readonly(const struct blk *b)
{
	return b->readonly;
}

const char *blk_format(const struct blk *b)
{
	return b->drv->name;
}

const char *blk_path(const struct blk *b)
{
	return b->path;
}

struct blk *blk_backing(const struct blk *b)
{
	return b->backing;
}

uint64_t blk_cluster_size(const struct blk *b)
{
	struct blk_info info;

	blk_get_info((struct blk *)b, &info);
	return info.cluster_size ? info.cluster_size : 4096;
}

int blk_resize(struct blk *b, uint64_t size, struct tv_err *err)
{
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	if (size < b->size)
		return tv_errf(err, "%s: shrinking is not supported (%llu < %llu bytes)", b->path,
			       (unsigned long long)size, (unsigned long long)b->size);
	return size == b->size ? 0 : b->drv->resize(b, size, err);
}

int blk_write_compressed(struct blk *b, const void *buf, size_t len, uint64_t off,
			 struct tv_err *err)
{
	if (blk_check_req(b, off, len, true, err) < 0)
		return -1;
	if (!b->drv->write_compressed)
		return tv_errf(err, "%s: format %s cannot store compressed data", b->path,
			       b->drv->name);
	return b->drv->write_compressed(b, buf, len, off, err);
}

void blk_get_info(struct blk *b, struct blk_info *info)
{
	struct stat st;

	memset(info, 0, sizeof(*info));
	info->format = b->drv->name;
	info->virtual_size = b->size;
	if (fstat(b->fd, &st) == 0)
		info->disk_size = (uint64_t)st.st_blocks * 512;
	b->drv->get_info(b, info);
}

int blk_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum,
		     uint64_t *host_off, struct tv_err *err)
{
	uint64_t h;

	if (blk_check_req(b, off, len, false, err) < 0)
		return -1;
	if (len == 0)
		return tv_errf(err, "%s: empty status request", b->path);
	return b->drv->block_status(b, off, len, pnum, host_off ? host_off : &h, err);
}

static int blk_no_snapshots(struct blk *b, struct tv_err *err)
{
	return tv_errf(err, "%s: %s images have no internal snapshots", b->path, b->drv->name);
}

int blk_snapshot_list(struct blk *b, struct blk_snapshot **list, int *count, struct tv_err *err)
{
	*list = NULL;
	*count = 0;
	if (!b->drv->snapshot_list)
		return blk_no_snapshots(b, err);
	return b->drv->snapshot_list(b, list, count, err);
}

void blk_snapshot_list_free(struct blk_snapshot *list, int count)
{
	for (int i = 0; i < count; i++) {
		free(list[i].id);
		free(list[i].name);
	}
	free(list);
}

int blk_snapshot_create(struct blk *b, const char *name, uint64_t vm_state_size,
			uint64_t vm_clock_nsec, struct tv_err *err)
{
	if (!b->drv->snapshot_create)
		return blk_no_snapshots(b, err);
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	return b->drv->snapshot_create(b, name, vm_state_size, vm_clock_nsec, err);
}

int blk_snapshot_apply(struct blk *b, const char *name, struct tv_err *err)
{
	if (!b->drv->snapshot_apply)
		return blk_no_snapshots(b, err);
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	return b->drv->snapshot_apply(b, name, err);
}

int blk_snapshot_delete(struct blk *b, const char *name, struct tv_err *err)
{
	if (!b->drv->snapshot_delete)
		return blk_no_snapshots(b, err);
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	return b->drv->snapshot_delete(b, name, err);
}

int blk_snapshot_rename(struct blk *b, const char *name, const char *new_name,
			struct tv_err *err)
{
	if (!b->drv->snapshot_rename)
		return blk_no_snapshots(b, err);
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	return b->drv->snapshot_rename(b, name, new_name, err);
}

int blk_snapshot_count(const char *path, struct tv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), n;
	const struct blk_driver *d;

	if (fd < 0)
		return tv_errno(err, "cannot open %s", path);
	d = blk_probe_fd(fd);
	if (!d)
		n = tv_errno(err, "%s: cannot read", path);
	else
		n = d->snapshot_count ? d->snapshot_count(fd, path, err) : 0;
	close(fd);
	return n;
}

int blk_vmstate_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off,
		       struct tv_err *err)
{
	if (b->readonly)
		return tv_errf(err, "%s: image is open read-only", b->path);
	if (!b->drv->vmstate_rw)
		return tv_errf(err, "%s: %s images cannot hold VM state", b->path, b->drv->name);
	return b->drv->vmstate_rw(b, (void *)buf, len, off, true, err);
}

int blk_vmstate_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err)
{
	if (!b->drv->vmstate_rw)
		return tv_errf(err, "%s: %s images cannot hold VM state", b->path, b->drv->name);
	return b->drv->vmstate_rw(b, buf, len, off, false, err);
}

int blk_check(struct blk *b, int fix, struct blk_check_result *res, struct tv_err *err)
{
	memset(res, 0, sizeof(*res));
	if (fix && b->readonly)
		return tv_errf(err, "%s: image is open read-only; cannot repair", b->path);
	if (!b->drv->check)
		return 0;
	return b->drv->check(b, fix, res, err);
}
