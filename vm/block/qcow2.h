/* qcow2 internals shared by qcow2*.c (QEMU docs/interop/qcow2.txt). */
#ifndef TV_QCOW2_H
#define TV_QCOW2_H

#include <pthread.h>
#include <stdint.h>

#include "vm/block/block-int.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u

#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull

/* Limits QEMU applies too: they bound what a hostile header can make us
 * allocate. */
#define QCOW2_MAX_L1_BYTES (32ull << 20)
#define QCOW2_MAX_RT_BYTES (8ull << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_TABLE (64ull << 20)
#define QCOW2_DEFAULT_L2_CACHE (32ull << 20)
#define QCOW2_GROW_CHUNK (16ull << 20) /* see grow_ahead */

/* Header field offsets. */
enum {
	QH_VERSION = 4,
	QH_BACKING_OFFSET = 8,
	QH_BACKING_SIZE = 16,
	QH_CLUSTER_BITS = 20,
	QH_SIZE = 24,
	QH_CRYPT = 32,
	QH_L1_SIZE = 36,
	QH_L1_OFFSET = 40,
	QH_RT_OFFSET = 48,
	QH_RT_CLUSTERS = 56,
	QH_NB_SNAPSHOTS = 60,
	QH_SNAPSHOTS_OFFSET = 64,
	QH_INCOMPAT = 72,
	QH_COMPAT = 80,
	QH_AUTOCLEAR = 88,
	QH_REFCOUNT_ORDER = 96,
	QH_HEADER_LENGTH = 100,
	QH_COMPRESSION_TYPE = 104,
	QH_V2_LENGTH = 72,
	QH_V3_LENGTH = 104,
};

struct qcow2_cache;

struct qcow2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint8_t *extra; /* extra data beyond the two fields we know */
	uint32_t extra_len;
};

struct qcow2_free {
	uint64_t offset, len;
};

/* A data write left for after the image lock is released: its clusters are
 * fresh (never written, reading as zeros) and already mapped. */
struct qcow2_wreq {
	uint64_t host;
	const uint8_t *buf;
	uint64_t len;
};

struct qcow2_wq {
	struct qcow2_wreq r[16];
	size_t n;
};

struct qcow2 {
	struct blk *b;
	int version;
	int cluster_bits;
	uint64_t cluster_size;
	int l2_bits;
	uint64_t l2_entries;
	int csize_shift;
	uint64_t csize_mask;

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1; /* host byte order */
	uint32_t l1_dirty_lo, l1_dirty_hi; /* dirty range [lo, hi) */

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_entries;
	uint64_t *rt;
	int refcount_order, refcount_bits;
	uint64_t rb_entries; /* refcounts per refcount block */
	uint64_t refcount_max;

	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	int compression_type; /* 0 deflate, 1 zstd */
	char *backing_name, *backing_fmt;

	uint32_t nb_snapshots;
	uint64_t snapshots_offset, snapshots_size;
	struct qcow2_snap *snaps;

	struct qcow2_cache *l2_cache, *rb_cache;
	pthread_mutex_t cache_lock;

	uint64_t free_hint; /* cluster index where free space search starts */
	uint64_t run_hint;  /* where the search for several clusters starts */
	uint64_t fresh_from; /* host bytes from here on were never written */
	bool last_alloc_fresh;
	/* Deferred data writes still running: freed clusters wait for them. */
	int alloc_inflight;
	uint64_t compressed_next; /* byte where the next compressed cluster may go, 0 none */
	struct qcow2_free *frees; /* clusters to free once the tables no longer point to them */
	size_t nfrees, frees_cap;
	/* Refcount blocks or data of newly mapped clusters written since the
	 * last sync: an L2 table or L1 entry may go out only after a sync. */
	bool deps_unsynced;
	/* The file was grown ahead (fallocate) up to here; cut back at close. */
	uint64_t grown_to;
	bool short_tail; /* a fresh cluster's data write failed (a full disk): the
			  * file may end before it; close makes it whole (a hole) */
	bool no_grow_ahead;
	bool dirty_on_disk; /* dirty bit written for this session */
	bool in_repair;
};

static inline struct qcow2 *qcow2_state(struct blk *b)
{
	return b->opaque;
}

static inline uint64_t qcow2_offset_to_cluster(const struct qcow2 *s, uint64_t off)
{
	return off >> s->cluster_bits;
}

/* Big-endian field access. */
uint64_t qcow2_be64(const void *p);
uint32_t qcow2_be32(const void *p);
uint16_t qcow2_be16(const void *p);
void qcow2_put_be64(void *p, uint64_t v);
void qcow2_put_be32(void *p, uint32_t v);
void qcow2_put_be16(void *p, uint16_t v);

/* qcow2.c */
int qcow2_header_write(struct qcow2 *s, unsigned off, const void *buf, size_t len,
		       struct tv_err *err);
int qcow2_mark_dirty(struct qcow2 *s, struct tv_err *err);
int qcow2_sync(struct qcow2 *s, struct tv_err *err);
int qcow2_flush_locked(struct qcow2 *s, struct tv_err *err);
int qcow2_corrupt(struct qcow2 *s, struct tv_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int qcow2_decompress(struct qcow2 *s, uint64_t l2e, void *out, struct tv_err *err);
void qcow2_compressed_range(const struct qcow2 *s, uint64_t l2e, uint64_t *off, uint64_t *len);

/* qcow2-cache.c: fixed-size tables (L2, refcount blocks) kept in memory. */
struct qcow2_cache *qcow2_cache_new(size_t entries, size_t table_size);
void qcow2_cache_free(struct qcow2_cache *c);
/* Finds (or loads; zero-fills when fresh) the table at offset and pins it. */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool fresh,
		    void **table, struct tv_err *err);
void qcow2_cache_put(struct qcow2_cache *c, void *table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
bool qcow2_cache_has_dirty(struct qcow2_cache *c);
int qcow2_cache_write_dirty(struct qcow2 *s, struct qcow2_cache *c, struct tv_err *err);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset);
/* Before a dirty table of c is written, dep is written and synced. */
void qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep);

/* qcow2-refcount.c */
int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *rc, struct tv_err *err);
int qcow2_refcount_set(struct qcow2 *s, uint64_t cluster, uint64_t rc, struct tv_err *err);
int qcow2_refcount_update(struct qcow2 *s, uint64_t off, uint64_t len, int delta,
			  struct tv_err *err);
/* Allocates n contiguous clusters with refcount 1; returns the host offset
 * or 0 with err set. */
uint64_t qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, struct tv_err *err);
/* Drops one reference from the clusters of [off, off+len) once the tables
 * that pointed to them are on disk (next flush). */
void qcow2_free_deferred(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_apply_deferred_frees(struct qcow2 *s, struct tv_err *err);
/* Drops one reference from every cluster of an L1 table's tree. */
int qcow2_check_image(struct qcow2 *s, int fix, struct blk_check_result *res, struct tv_err *err);
int qcow2_table_refs(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, int delta,
		     struct tv_err *err);
int qcow2_fix_copied(struct qcow2 *s, struct tv_err *err);

/* qcow2-cluster.c */
enum qcow2_ctype { QC_UNALLOC, QC_ZERO, QC_NORMAL, QC_COMPRESSED };
/* Maps the run starting at guest offset off (at most len bytes) that shares
 * one type and, for normal clusters, contiguous host space. Caller holds
 * cache_lock or the image exclusively. */
int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, uint64_t *run, uint64_t *host,
	      uint64_t *l2e, bool *copied, enum qcow2_ctype *type, struct tv_err *err);
/* wq may be NULL (all data written before returning). */
int qcow2_write_alloc(struct qcow2 *s, const uint8_t *buf, uint64_t len, uint64_t off,
		      struct qcow2_wq *wq, struct tv_err *err);
int qcow2_zero_clusters(struct qcow2 *s, uint64_t off, uint64_t len, bool zero,
			struct tv_err *err);
const char *qcow2_overlaps_meta(const struct qcow2 *s, uint64_t host, uint64_t len);
int qcow2_grow_l1(struct qcow2 *s, uint64_t min_size, struct tv_err *err);
int qcow2_write_l1(struct qcow2 *s, struct tv_err *err);
int qcow2_read_range(struct qcow2 *s, uint8_t *buf, uint64_t len, uint64_t off,
		     struct tv_err *err);
int qcow2_l2_get_for_write(struct qcow2 *s, uint64_t l1i, uint64_t **l2, struct tv_err *err);
enum qcow2_ctype qcow2_entry_type(const struct qcow2 *s, uint64_t l2e);
/* An L2 table offset that may be read and written back (else: corrupt). */
int qcow2_l2_offset_ok(struct qcow2 *s, uint64_t l1i, uint64_t l2off, struct tv_err *err);

/* qcow2-snapshot.c */
int qcow2_snapshots_read(struct qcow2 *s, struct tv_err *err);
void qcow2_snapshots_free(struct qcow2 *s);
extern const struct blk_driver blk_qcow2_driver;
int qcow2_snapshot_list(struct blk *b, struct blk_snapshot **list, int *count, struct tv_err *err);
int qcow2_snapshot_create(struct blk *b, const char *name, uint64_t vm_state_size,
			  uint64_t vm_clock_nsec, struct tv_err *err);
int qcow2_snapshot_apply(struct blk *b, const char *name, struct tv_err *err);
int qcow2_snapshot_delete(struct blk *b, const char *name, struct tv_err *err);
int qcow2_snapshot_rename(struct blk *b, const char *name, const char *new_name,
			  struct tv_err *err);
int qcow2_snapshot_count(int fd, const char *path, struct tv_err *err);

#endif
