/* What the format drivers share with block.c: the driver table entry and the
 * common part of an open image. */
#ifndef TV_BLOCK_INT_H
#define TV_BLOCK_INT_H

#include <pthread.h>

#include "vm/block/block.h"

struct blk_driver {
	const char *name;
	/* Score how likely buf (the file's first bytes) is this format: 0 never. */
	int (*probe)(const uint8_t *buf, size_t len);
	int (*open)(struct blk *b, int flags, struct tv_err *err);
	void (*close)(struct blk *b);
	int (*create)(const char *path, int fd, uint64_t size, const struct blk_create_opts *o,
		      struct tv_err *err);
	int (*pread)(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err);
	int (*pwrite)(struct blk *b, const void *buf, size_t len, uint64_t off, struct tv_err *err);
	int (*flush)(struct blk *b, struct tv_err *err);
	int (*discard)(struct blk *b, uint64_t off, uint64_t len, bool zero, struct tv_err *err);
	int (*resize)(struct blk *b, uint64_t size, struct tv_err *err);
	int (*write_compressed)(struct blk *b, const void *buf, size_t len, uint64_t off,
				struct tv_err *err);
	void (*get_info)(struct blk *b, struct blk_info *info);
	int (*block_status)(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum,
			    uint64_t *host_off, struct tv_err *err);
	int (*snapshot_list)(struct blk *b, struct blk_snapshot **list, int *count,
			     struct tv_err *err);
	int (*snapshot_create)(struct blk *b, const char *name, uint64_t vm_state_size,
			       uint64_t vm_clock_nsec, struct tv_err *err);
	int (*snapshot_apply)(struct blk *b, const char *name, struct tv_err *err);
	int (*snapshot_delete)(struct blk *b, const char *name, struct tv_err *err);
	int (*snapshot_rename)(struct blk *b, const char *name, const char *new_name,
			       struct tv_err *err);
	int (*snapshot_count)(int fd, const char *path, struct tv_err *err);
	int (*vmstate_rw)(struct blk *b, void *buf, size_t len, uint64_t off, bool write,
			  struct tv_err *err);
	int (*check)(struct blk *b, int fix, struct blk_check_result *res, struct tv_err *err);
	/* Called with the image exclusively held; may clear cached state. */
	void (*mark_clean)(struct blk *b);
};

struct blk {
	const struct blk_driver *drv;
	char *path;
	int fd;
	int dfd; /* O_DIRECT descriptor for aligned data transfers, or fd */
	int flags;
	bool readonly;
	uint64_t size;
	uint64_t l2_cache_size; /* requested, 0 for the default */
	struct blk *backing;
	/* Data transfers to allocated clusters hold it shared; metadata changes
	 * hold it exclusively. */
	pthread_rwlock_t lock;
	void *opaque; /* the driver's state */
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

/* Reads len bytes at off from fd; bytes past the end of the file read as
 * zeros (an image's last cluster may be short). */
int blk_file_pread(int fd, void *buf, size_t len, uint64_t off);

/* Data transfers: through dfd when buffer, length and offset suit O_DIRECT. */
int blk_data_pread(struct blk *b, void *buf, size_t len, uint64_t off);
int blk_data_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off);

/* Image locking, QEMU-compatible byte-range locks (block.c). */
int blk_lock_image(struct blk *b, bool write, struct tv_err *err);

/* Opens the backing file named in an image, relative to the image's folder. */
int blk_open_backing(struct blk *b, const char *name, const char *fmt, struct tv_err *err);
/* The backing file path resolved against the image at path (caller frees). */
char *blk_backing_path(const char *image, const char *name);

#endif
