/* Direct data access (vm/block/map.h): the same mappings the image's own
 * read and overwrite paths use, handed out under the same shared hold. */
#include "vm/block/map.h"
#include "vm/block/block-int.h"
#include "vm/block/qcow2.h"

void blk_map_begin(struct blk *b)
{
	pthread_rwlock_rdlock(&b->lock);
}

void blk_map_end(struct blk *b)
{
	pthread_rwlock_unlock(&b->lock);
}

/* Like the qcow2 overwrite fast path: a normal cluster this image owns alone
 * (COPIED) and that no metadata lies in; any normal cluster for a read. */
static int map_qcow2(struct blk *b, uint64_t off, uint64_t len, bool write, struct blk_extent *x,
		     struct tv_err *err)
{
	struct qcow2 *s = qcow2_state(b);
	uint64_t run, host, e;
	bool copied;
	enum qcow2_ctype t;
	int rc;

	pthread_mutex_lock(&s->cache_lock);
	rc = qcow2_map(s, off, len, &run, &host, &e, &copied, &t, err);
	pthread_mutex_unlock(&s->cache_lock);
	if (rc < 0)
		return -1;
	if (t != QC_NORMAL || run == 0)
		return 0;
	if (write && (!copied || qcow2_overlaps_meta(s, host, run) != NULL))
		return 0;
	*x = (struct blk_extent){.fd = b->fd, .host = host, .len = run};
	return 1;
}

int blk_map(struct blk *b, uint64_t off, uint64_t len, bool write, struct blk_extent *x,
	    struct tv_err *err)
{
	if (len == 0 || off > b->size || len > b->size - off || (write && b->readonly))
		return 0;
	if (b->drv == &blk_raw_driver) {
		*x = (struct blk_extent){.fd = b->fd, .host = off, .len = len};
		return 1;
	}
	if (b->drv == &blk_qcow2_driver)
		return map_qcow2(b, off, len, write, x, err);
	return 0;
}
