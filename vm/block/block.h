/* Disk images: one interface over every format (qcow2, raw), chosen from a
 * driver table. Everything a VM disk, `termvisor img` and the VM list need.
 *
 * Thread safety: every function taking a struct blk may be called from any
 * thread, at the same time as others on the same struct blk. Each image has
 * an internal lock: reads and overwrites of clusters already allocated run in
 * parallel (metadata looked up under a short lock, data transferred outside
 * it); anything that changes metadata (allocation, discard, write-zeroes,
 * flush, snapshots, resize, check) runs alone. blk_close must be called once,
 * after every other call on the image has returned.
 *
 * Errors: functions return 0 (or a count) on success and -1 with err filled
 * (err may be NULL) naming the file and what was wrong. A failed write or
 * flush leaves the image consistent on disk; the data of that request may be
 * partly written, as on a real disk. */
#ifndef TV_BLOCK_H
#define TV_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct blk;

enum blk_open_flags {
	BLK_READONLY = 1 << 0,	 /* no writes; shared lock only */
	BLK_SHARE = 1 << 1,	 /* take no lock at all (like qemu-img -U); implies read-only */
	BLK_NO_BACKING = 1 << 2, /* do not open the backing file (info, check) */
	BLK_NO_REPAIR = 1 << 3,	 /* leave a dirty image as it is (check) */
	BLK_DIRECT = 1 << 4,	 /* aligned data transfers bypass the host page cache */
	BLK_CHECK = 1 << 5,	 /* opened to be repaired: a corrupt image may be written */
};

/* Opens path. fmt is "qcow2", "raw" or NULL to probe the format from the
 * file's first bytes; a file the caller names as raw is never probed, so a
 * guest cannot turn its raw disk into a qcow2 image pointing at host files.
 * A writable open locks the image (open file description locks, compatible
 * with QEMU's): a second writer, or a writer while QEMU uses the image, gets
 * "in use by PID n". A qcow2 image left dirty by a crash has its leaked
 * clusters repaired on a writable open. */
int blk_open(struct blk **bp, const char *path, const char *fmt, int flags, struct tv_err *err);

struct blk_open_opts {
	/* qcow2 L2 table cache in bytes; 0: enough to map the whole disk, at
	 * most 32 MiB (1 MiB maps 8 GiB with 64 KiB clusters). */
	uint64_t l2_cache_size;
};
/* blk_open with options; o may be NULL. */
int blk_open_opts(struct blk **bp, const char *path, const char *fmt, int flags,
		  const struct blk_open_opts *o, struct tv_err *err);

/* Flushes (for a writable image), marks a qcow2 image clean, unlocks and
 * frees. Returns -1 when the final flush failed (the image is still freed). */
int blk_close(struct blk *b, struct tv_err *err);

struct blk_create_opts {
	uint64_t cluster_size;	  /* qcow2: 512 .. 2M, a power of two; 0 = 64K */
	int refcount_bits;	  /* qcow2: 1, 2, 4 .. 64; 0 = 16 */
	const char *backing;	  /* backing file, as stored (relative to the image) */
	const char *backing_fmt;  /* "qcow2" / "raw"; NULL = probe it now */
	const char *compression;  /* "zlib" (default) or "zstd" */
	bool size_from_backing;	  /* size 0 with a backing file: take its size */
};

/* Creates a new image (qcow2 version 3 or raw). Refuses to overwrite an
 * existing file. opts may be NULL. */
int blk_create(const char *path, const char *fmt, uint64_t size, const struct blk_create_opts *opts,
	       struct tv_err *err);

/* Data. Offsets and lengths are in bytes, any alignment; a request must lie
 * inside [0, blk_size). Reads of never-written areas return zeros (or the
 * backing file's data). A write that the host refuses (a full disk: ENOSPC,
 * EDQUOT, or any I/O error) returns -1 with errno saying why, and leaves the
 * image consistent: the range reads as before, as written or a mix of the
 * two (as after any device's failed write), no cluster leaks, and the same
 * write can be done again once there is room. */
int blk_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err);
int blk_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off, struct tv_err *err);
/* Makes every completed write durable (metadata in a crash-safe order, then
 * fdatasync). */
int blk_flush(struct blk *b, struct tv_err *err);
/* The range reads back as zeros afterwards (qcow2: zero clusters / freed
 * space where whole clusters are covered; raw: punched holes). */
int blk_discard(struct blk *b, uint64_t off, uint64_t len, struct tv_err *err);
int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct tv_err *err);

uint64_t blk_size(const struct blk *b);
bool blk_is_readonly(const struct blk *b);
const char *blk_format(const struct blk *b); /* "qcow2" / "raw" */
const char *blk_path(const struct blk *b);
/* The unit that allocation works in: the cluster size for qcow2, 4096 for raw. */
uint64_t blk_cluster_size(const struct blk *b);
/* The backing image, or NULL. */
struct blk *blk_backing(const struct blk *b);

/* Grows the image (shrinking is refused). The new area reads as zeros. */
int blk_resize(struct blk *b, uint64_t size, struct tv_err *err);

/* Writes one whole cluster compressed (qcow2 only, for `img convert -c`); off
 * is cluster-aligned, len is the cluster size (or the rest of the disk). The
 * cluster must not be allocated yet. Falls back to a plain write when the
 * data does not compress. */
int blk_write_compressed(struct blk *b, const void *buf, size_t len, uint64_t off,
			 struct tv_err *err);

struct blk_info {
	const char *format;
	uint64_t virtual_size;
	uint64_t disk_size; /* bytes the file occupies on the host */
	uint64_t cluster_size;
	int version;	    /* qcow2 2 or 3; 0 for raw */
	int refcount_bits;
	const char *compression; /* "zlib" / "zstd" / NULL */
	const char *backing;	 /* as stored in the image, or NULL */
	const char *backing_fmt; /* or NULL */
	int nb_snapshots;
	bool dirty, corrupt, lazy_refcounts;
};
/* Pointers stay valid until blk_close. */
void blk_get_info(struct blk *b, struct blk_info *info);

/* Allocation status of [off, off+len): fills *pnum with the length of the
 * leading run sharing one status (at least 1 byte) and returns a mask, or -1. */
enum blk_status {
	BLK_STATUS_DATA = 1 << 0,      /* reads from a data area of this or a backing layer */
	BLK_STATUS_ZERO = 1 << 1,      /* reads as zeros */
	BLK_STATUS_ALLOCATED = 1 << 2, /* decided by this layer, not the backing file */
	BLK_STATUS_COMPRESSED = 1 << 3,
};
int blk_block_status(struct blk *b, uint64_t off, uint64_t len, uint64_t *pnum,
		     uint64_t *host_off, struct tv_err *err);

/* Internal snapshots (qcow2 only; raw images answer "not supported"). */
struct blk_snapshot {
	char *id;
	char *name;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
};
int blk_snapshot_list(struct blk *b, struct blk_snapshot **list, int *count, struct tv_err *err);
void blk_snapshot_list_free(struct blk_snapshot *list, int count);
/* vm_state_size: bytes of VM state saved with blk_vmstate_pwrite before the
 * call (0 for a disk-only snapshot). Names must be unique. */
int blk_snapshot_create(struct blk *b, const char *name, uint64_t vm_state_size,
			uint64_t vm_clock_nsec, struct tv_err *err);
/* Reverts the disk to the snapshot (name or id); the VM state saved with it is
 * readable again with blk_vmstate_pread. */
int blk_snapshot_apply(struct blk *b, const char *name, struct tv_err *err);
int blk_snapshot_delete(struct blk *b, const char *name, struct tv_err *err);
/* Gives the snapshot name (name or id) the name new_name, which no other
 * snapshot of the image may have. */
int blk_snapshot_rename(struct blk *b, const char *name, const char *new_name,
			struct tv_err *err);
/* The number of internal snapshots of the image at path, reading only its
 * header (no lock, no repair): what `termvisor list` shows. -1 on error;
 * 0 for a raw image. */
int blk_snapshot_count(const char *path, struct tv_err *err);

/* VM state area (qcow2): bytes stored past the end of the disk in the
 * current state, captured by the next blk_snapshot_create and restored by
 * blk_snapshot_apply, as QEMU's savevm does. */
int blk_vmstate_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off,
		       struct tv_err *err);
int blk_vmstate_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct tv_err *err);

/* Consistency check (qcow2): rebuilds every reference from the L1/L2 tables
 * of the image and its snapshots and compares with the stored refcounts. */
enum blk_check_fix {
	BLK_FIX_LEAKS = 1 << 0,
	BLK_FIX_ERRORS = 1 << 1,
};
struct blk_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters;
	uint64_t image_end_offset;
};
int blk_check(struct blk *b, int fix, struct blk_check_result *res, struct tv_err *err);

#endif
