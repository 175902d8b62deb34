/* Table cache: L2 tables and refcount blocks kept in memory, found by their
 * host offset through a hash, evicted with the CLOCK algorithm, written back
 * (after the tables they depend on) when dirty. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm/block/qcow2.h"
#include "common/util.h"

/* Each table buffer is preceded by its slot number, so that a table pointer
 * leads back to its slot without a search. */
#define CACHE_PREFIX 16

struct qcache_entry {
	uint64_t offset; /* 0: empty (cluster 0 is always the header) */
	uint8_t *data;
	int pins;
	bool dirty, referenced;
	int32_t next; /* hash chain */
};

struct qcow2_cache {
	size_t n, table_size, nbuckets;
	struct qcache_entry *e;
	int32_t *buckets;
	size_t hand;
	size_t ndirty;
	struct qcow2_cache *dep;
};

struct qcow2_cache *qcow2_cache_new(size_t entries, size_t table_size)
{
	struct qcow2_cache *c = xcalloc(1, sizeof(*c));

	c->n = entries;
	c->table_size = table_size;
	c->nbuckets = entries * 2 + 1;
	c->e = xcalloc(entries, sizeof(*c->e));
	c->buckets = xmalloc(c->nbuckets * sizeof(*c->buckets));
	for (size_t i = 0; i < c->nbuckets; i++)
		c->buckets[i] = -1;
	for (size_t i = 0; i < entries; i++)
		c->e[i].next = -1;
	return c;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].data)
			free(c->e[i].data - CACHE_PREFIX);
	free(c->e);
	free(c->buckets);
	free(c);
}

void qcow2_cache_set_dependency(struct qcow2_cache *c, struct qcow2_cache *dep)
{
	c->dep = dep;
}

static size_t cache_hash(const struct qcow2_cache *c, uint64_t off)
{
	uint64_t h = off * 0x9e3779b97f4a7c15ull;

	return (size_t)((h >> 29) % c->nbuckets);
}

static int32_t cache_find(struct qcow2_cache *c, uint64_t off)
{
	for (int32_t i = c->buckets[cache_hash(c, off)]; i >= 0; i = c->e[i].next)
		if (c->e[i].offset == off)
			return i;
	return -1;
}

static void cache_unlink(struct qcow2_cache *c, int32_t idx)
{
	int32_t *p = &c->buckets[cache_hash(c, c->e[idx].offset)];

	while (*p >= 0 && *p != idx)
		p = &c->e[*p].next;
	if (*p == idx)
		*p = c->e[idx].next;
	c->e[idx].next = -1;
	c->e[idx].offset = 0;
}

static void cache_link(struct qcow2_cache *c, int32_t idx, uint64_t off)
{
	size_t h = cache_hash(c, off);

	c->e[idx].offset = off;
	c->e[idx].next = c->buckets[h];
	c->buckets[h] = idx;
}

static int cache_write_entry(struct qcow2 *s, struct qcow2_cache *c, struct qcache_entry *e,
			     struct tv_err *err)
{
	if (!e->dirty)
		return 0;
	if (c->dep && (c->dep->ndirty || s->deps_unsynced)) {
		/* The tables this one relies on (refcounts of what it points
		 * to), and the data of clusters it maps anew, reach the disk
		 * first: also when they were written earlier (a refcount block
		 * evicted) and not synced yet. */
		if (qcow2_cache_write_dirty(s, c->dep, err) < 0 || qcow2_sync(s, err) < 0)
			return -1;
	}
	if (pwrite_full(s->b->fd, e->data, c->table_size, e->offset) < 0)
		return tv_errno(err, "%s: cannot write metadata at %llu", s->b->path,
				(unsigned long long)e->offset);
	if (!c->dep)
		s->deps_unsynced = true; /* a refcount block, on disk but not synced */
	e->dirty = false;
	c->ndirty--;
	return 0;
}

/* Picks a slot to (re)use: an empty one or the least recently referenced
 * unpinned one, written back first when dirty. */
static int32_t cache_victim(struct qcow2 *s, struct qcow2_cache *c, struct tv_err *err)
{
	for (size_t tries = 0; tries < 3 * c->n; tries++) {
		size_t i = c->hand;
		struct qcache_entry *e = &c->e[i];

		c->hand = (c->hand + 1) % c->n;
		if (e->offset == 0)
			return (int32_t)i;
		if (e->pins)
			continue;
		if (e->referenced) {
			e->referenced = false;
			continue;
		}
		if (cache_write_entry(s, c, e, err) < 0)
			return -1;
		cache_unlink(c, (int32_t)i);
		return (int32_t)i;
	}
	tv_errf(err, "%s: metadata cache exhausted (every table pinned)", s->b->path);
	return -1;
}

int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool fresh,
		    void **table, struct tv_err *err)
{
	int32_t i = cache_find(c, offset);
	struct qcache_entry *e;

	if (i < 0) {
		i = cache_victim(s, c, err);
		if (i < 0)
			return -1;
		e = &c->e[i];
		if (!e->data) {
			uint8_t *raw = xmalloc(c->table_size + CACHE_PREFIX);
			memcpy(raw, &i, sizeof(i));
			e->data = raw + CACHE_PREFIX;
		}
		if (fresh) {
			memset(e->data, 0, c->table_size);
		} else if (blk_file_pread(s->b->fd, e->data, c->table_size, offset) < 0) {
			return tv_errno(err, "%s: cannot read metadata at %llu", s->b->path,
					(unsigned long long)offset);
		}
		cache_link(c, i, offset);
	}
	e = &c->e[i];
	if (fresh)
		memset(e->data, 0, c->table_size);
	e->pins++;
	e->referenced = true;
	*table = e->data;
	return 0;
}

static struct qcache_entry *cache_entry_of(struct qcow2_cache *c, void *table)
{
	int32_t i;

	memcpy(&i, (uint8_t *)table - CACHE_PREFIX, sizeof(i));
	return i >= 0 && (size_t)i < c->n && c->e[i].data == table ? &c->e[i] : NULL;
}

void qcow2_cache_put(struct qcow2_cache *c, void *table)
{
	struct qcache_entry *e;

	if (!table)
		return;
	e = cache_entry_of(c, table);
	if (e && e->pins > 0)
		e->pins--;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
	struct qcache_entry *e = cache_entry_of(c, table);

	if (e && !e->dirty) {
		e->dirty = true;
		c->ndirty++;
	}
}

bool qcow2_cache_has_dirty(struct qcow2_cache *c)
{
	return c->ndirty > 0;
}

int qcow2_cache_write_dirty(struct qcow2 *s, struct qcow2_cache *c, struct tv_err *err)
{
	for (size_t i = 0; i < c->n && c->ndirty; i++)
		if (c->e[i].offset && cache_write_entry(s, c, &c->e[i], err) < 0)
			return -1;
	return 0;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset)
{
	int32_t i = cache_find(c, offset);

	if (i < 0)
		return;
	if (c->e[i].dirty) {
		c->e[i].dirty = false;
		c->ndirty--;
	}
	cache_unlink(c, i);
}
