/* The snapshot tree as rows (ui/snaptree.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ui/snaptree.h"

/* A record and the parent it is drawn under (0 when its own is missing). */
struct node {
	uint64_t parent;
	const struct snap_record *r;
	size_t index; /* in the store's records */
};

struct build {
	const struct snapstore *st;
	struct node *nodes; /* sorted: parent, date, ID */
	size_t n;
	bool *seen;         /* by the store's record index */
	unsigned flags;
	struct snaptree *t;
	size_t cap;
};

static int node_cmp(const void *a, const void *b)
{
	const struct node *x = a, *y = b;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->r->created != y->r->created)
		return x->r->created < y->r->created ? -1 : 1;
	return x->r->id < y->r->id ? -1 : x->r->id > y->r->id;
}

/* The children of id: nodes[*lo .. hi). */
static size_t children(const struct build *b, uint64_t id, size_t *lo)
{
	size_t l = 0, h = b->n;

	while (l < h) {
		size_t m = l + (h - l) / 2;
		if (b->nodes[m].parent < id)
			l = m + 1;
		else
			h = m;
	}
	*lo = l;
	while (h < b->n && b->nodes[h].parent == id)
		h++;
	return h > l ? h - l : 0;
}

static void copy_line(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; src[n] && src[n] != '\n' && n + 1 < cap; n++)
		dst[n] = (unsigned char)src[n] < 0x20 || src[n] == 0x7f ? ' ' : src[n];
	dst[n] = '\0';
}

static void emit(struct build *b, const struct node *nd, const char *prefix, unsigned level,
		 unsigned depth)
{
	const struct snapstore *st = b->st;
	const struct snap_record *r = nd->r, *p = snapstore_get(st, nd->parent);
	struct snaptree_row *row;
	size_t kid;

	b->seen[nd->index] = true;
	if (b->t->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->t->rows = xreallocarray(b->t->rows, b->cap, sizeof(*b->t->rows));
	}
	row = &b->t->rows[b->t->n++];
	memset(row, 0, sizeof(*row));
	row->id = r->id;
	row->parent = nd->parent;
	snprintf(row->tag, sizeof(row->tag), "%s", r->tag);
	if (p != NULL)
		snprintf(row->parent_tag, sizeof(row->parent_tag), "%s", p->tag);
	row->depth = depth;
	row->level = level;
	snprintf(row->prefix, sizeof(row->prefix), "%s", prefix);
	row->prefix_cols = (int)(level * SNAPTREE_INDENT);
	row->created = r->created;
	if ((b->flags & SNAPTREE_SIZES) && snapstore_du(st, r->id, &row->size, NULL) < 0)
		row->size = 0;
	row->memory = r->memory;
	row->automatic = r->automatic;
	row->here = st->here == r->id;
	row->pending = st->pending_restore == r->id;
	row->nchildren = children(b, r->id, &kid);
	copy_line(row->description, sizeof(row->description), r->description);
}

/* Draws id's descendants below base (the columns of the levels above). An
 * only child continues at its parent's indentation, so straight history
 * loops here instead of nesting. */
static void walk(struct build *b, uint64_t id, const char *base, unsigned level, unsigned depth)
{
	const bool utf8 = b->flags & SNAPTREE_UTF8;
	const char *tee = utf8 ? "\u251c\u2500 " : "|- ", *elbow = utf8 ? "\u2514\u2500 " : "`- ";
	const char *bar = utf8 ? "\u2502  " : "|  ";
	char prefix[sizeof(b->t->rows->prefix)], below[sizeof(prefix)];

	for (;;) {
		size_t lo, nk = children(b, id, &lo);

		if (nk == 1) {
			if (b->seen[b->nodes[lo].index])
				return;
			emit(b, &b->nodes[lo], base, level, depth);
			id = b->nodes[lo].r->id;
			depth++;
			continue;
		}
		for (size_t i = 0; i < nk; i++) {
			const struct node *nd = &b->nodes[lo + i];
			bool last = i + 1 == nk, deeper = level < SNAPTREE_MAX_LEVEL;
			if (b->seen[nd->index])
				continue;
			snprintf(prefix, sizeof(prefix), "%s%s", base, deeper ? last ? elbow : tee : "");
			emit(b, nd, prefix, deeper ? level + 1 : level, depth);
			snprintf(below, sizeof(below), "%s%s", base, deeper ? last ? "   " : bar : "");
			walk(b, nd->r->id, below, deeper ? level + 1 : level, depth + 1);
		}
		return;
	}
}

void snaptree_build(struct snaptree *t, const struct snapstore *st, unsigned flags)
{
	struct build b = {.st = st, .n = st->nrecs, .flags = flags, .t = t};

	t->rows = NULL;
	t->n = 0;
	if (st->nrecs == 0)
		return;
	b.nodes = xcalloc(st->nrecs, sizeof(*b.nodes));
	b.seen = xcalloc(st->nrecs, sizeof(*b.seen));
	for (size_t i = 0; i < st->nrecs; i++) {
		const struct snap_record *r = &st->recs[i];
		bool orphan = r->parent == r->id || snapstore_get(st, r->parent) == NULL;
		b.nodes[i] = (struct node){.parent = orphan ? 0 : r->parent, .r = r, .index = i};
	}
	qsort(b.nodes, b.n, sizeof(*b.nodes), node_cmp);
	walk(&b, 0, "", 0, 0);
	/* Only a damaged index has records that no root leads to (parents in a
	 * loop): each is shown as a root rather than hidden. */
	for (size_t i = 0; i < b.n; i++)
		if (!b.seen[b.nodes[i].index]) {
			emit(&b, &b.nodes[i], "", 0, 0);
			walk(&b, b.nodes[i].r->id, "", 0, 1);
		}
	free(b.nodes);
	free(b.seen);
}

void snaptree_free(struct snaptree *t)
{
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
}

const char *snaptree_kind(const struct snaptree_row *r)
{
	return r->memory ? "machine" : "disk-only";
}

int snaptree_find(const struct snaptree *t, const char *tag)
{
	for (size_t i = 0; tag != NULL && i < t->n; i++)
		if (strcmp(t->rows[i].tag, tag) == 0)
			return (int)i;
	return -1;
}

int snaptree_here(const struct snaptree *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->rows[i].here)
			return (int)i;
	return -1;
}

static bool newer(const struct snaptree_row *a, const struct snaptree_row *b)
{
	return a->created != b->created ? a->created > b->created : a->id > b->id;
}

int snaptree_newest(const struct snaptree *t)
{
	int best = -1, best_auto = -1;

	for (size_t i = 0; i < t->n; i++) {
		int *slot = t->rows[i].automatic ? &best_auto : &best;
		if (*slot < 0 || newer(&t->rows[i], &t->rows[*slot]))
			*slot = (int)i;
	}
	return best >= 0 ? best : best_auto;
}

int snaptree_after_delete(const struct snaptree *t, int row, char *tag)
{
	int next = row + 1 < (int)t->n ? row + 1 : row - 1;

	tag[0] = '\0';
	if (row < 0 || row >= (int)t->n || next < 0)
		return -1;
	snprintf(tag, SNAP_TAG_MAX + 1, "%s", t->rows[next].tag);
	return next;
}
