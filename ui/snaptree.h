/* The snapshot tree as rows to draw (ui/view-snapshots.c): pure logic, no
 * ncurses, so every shape of tree can be unit-tested.
 *
 * Rows come depth first, children in the order they were taken (date, then
 * ID). A snapshot with one child continues at its own indentation, so a long
 * straight history stays flat; where a snapshot has several children (or the
 * tree several roots) each gets a branch and the level below is indented by
 * SNAPTREE_INDENT columns:
 *
 *	base
 *	snap-1
 *	├─ exp-a
 *	│  exp-a2          (exp-a's only child)
 *	└─ exp-b
 *
 * With ASCII only, "|- ", "`- " and "|  " stand for the box characters. */
#ifndef TV_UI_SNAPTREE_H
#define TV_UI_SNAPTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/snapstore.h"

#define SNAPTREE_INDENT 3      /* columns per level */
#define SNAPTREE_MAX_LEVEL 12  /* deeper branches stop being indented further */
#define SNAPTREE_DESC_MAX 128  /* bytes of the description's first line kept */

struct snaptree_row {
	uint64_t id, parent;     /* parent 0: a root */
	char tag[SNAP_TAG_MAX + 1];
	char parent_tag[SNAP_TAG_MAX + 1]; /* "" for a root */
	unsigned depth;          /* generations below its root */
	unsigned level;          /* indentation levels drawn */
	/* The drawing before the tag (UTF-8 or ASCII), level * SNAPTREE_INDENT
	 * columns wide. */
	char prefix[SNAPTREE_MAX_LEVEL * SNAPTREE_INDENT * 3 + 1];
	int prefix_cols;
	int64_t created;         /* seconds since the epoch */
	uint64_t size;           /* bytes on disk (snapstore_du), 0 when not read */
	bool memory;             /* a machine snapshot; false: disk-only */
	bool automatic;          /* taken by a rollback */
	bool here;               /* "you are here": the current state descends from it */
	bool pending;            /* its machine state is restored at the next start */
	size_t nchildren;
	char description[SNAPTREE_DESC_MAX + 1]; /* its first line, control bytes blanked */
};

struct snaptree {
	struct snaptree_row *rows;
	size_t n;
};

enum snaptree_flags {
	SNAPTREE_UTF8 = 1 << 0,  /* box-drawing characters; else ASCII */
	SNAPTREE_SIZES = 1 << 1, /* read each snapshot's size on disk */
};

/* Builds the rows of st (a tree with no snapshot gives none). A record whose
 * parent is missing from the index is shown as a root. */
void snaptree_build(struct snaptree *t, const struct snapstore *st, unsigned flags);
void snaptree_free(struct snaptree *t);

/* "machine", "disk-only". */
const char *snaptree_kind(const struct snaptree_row *r);

/* Row indexes, or -1 when there is none. */
int snaptree_find(const struct snaptree *t, const char *tag);
int snaptree_here(const struct snaptree *t);
/* The newest snapshot the user took (an automatic one only when there is no
 * other): where `r` from the list puts the cursor. */
int snaptree_newest(const struct snaptree *t);
/* Where the cursor goes once row is deleted: the row under it, else the one
 * above; its tag is copied to tag (SNAP_TAG_MAX + 1 bytes), found again in the
 * tree rebuilt after the delete with snaptree_find. -1 when none is left. */
int snaptree_after_delete(const struct snaptree *t, int row, char *tag);

#endif
