/* The snapshot tree's rows (ui/snaptree.c) from real stores made in a
 * temporary directory through snapstore's API: straight history stays flat,
 * branches are drawn, children come in date order, the marks (here, pending
 * restore, automatic, disk-only) are right, a deleted middle snapshot's
 * children move up, and 200 snapshots are handled. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/fsutil.h"
#include "src/core/snapstore.h"
#include "ui/snaptree.h"

struct fixture {
	char dir[64];
	struct snapstore st;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct tv_err err;

	snprintf(f->dir, sizeof(f->dir), "/tmp/tv-snaptree.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (snapstore_open(&f->st, f->dir, SNAPSTORE_LOCK, NULL, &err) < 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	snapstore_close(&f->st);
	remove_tree(f->dir);
	free(f);
	return 0;
}

/* A snapshot under the current "here", with a file in its directory. */
static uint64_t take(struct fixture *f, const char *tag, bool memory, bool automatic)
{
	struct snap_txn t;
	struct tv_err err;
	uint64_t id;

	if (snapstore_begin(&f->st, tag, "line one\nline two", memory, automatic, NULL, 0, &t,
			    &err) < 0)
		fail_msg("begin %s: %s", tag, err.msg);
	char *file = xasprintf("%s/state", t.dir);
	FILE *fp = fopen(file, "w");
	fputs("state", fp);
	fclose(fp);
	free(file);
	id = t.rec.id;
	if (snapstore_commit(&t, &err) < 0)
		fail_msg("commit %s: %s", tag, err.msg);
	return id;
}

static void here(struct fixture *f, const char *tag, bool pending)
{
	struct tv_err err;

	assert_int_equal(snapstore_set_here(&f->st, snapstore_find(&f->st, tag)->id, pending, &err),
			 0);
}

/* The dates the tests want, as if the snapshots had been taken then. */
static void set_date(struct fixture *f, const char *tag, int64_t when)
{
	for (size_t i = 0; i < f->st.nrecs; i++)
		if (strcmp(f->st.recs[i].tag, tag) == 0)
			f->st.recs[i].created = when;
}

static const struct snaptree_row *row(const struct snaptree *t, size_t i)
{
	assert_true(i < t->n);
	return &t->rows[i];
}

/*	base
 *	s1
 *	├─ a
 *	│  a2
 *	└─ b        <- here
 */
static void make_branches(struct fixture *f)
{
	take(f, "base", true, false);
	take(f, "s1", true, false);
	take(f, "a", true, false);
	take(f, "a2", false, false);
	here(f, "s1", false);
	take(f, "b", true, false);
}

static void test_empty(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;
	char tag[SNAP_TAG_MAX + 1];

	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	assert_int_equal(t.n, 0);
	assert_int_equal(snaptree_here(&t), -1);
	assert_int_equal(snaptree_newest(&t), -1);
	assert_int_equal(snaptree_find(&t, "x"), -1);
	assert_int_equal(snaptree_after_delete(&t, 0, tag), -1);
	snaptree_free(&t);
}

static void test_branches_utf8_and_ascii(void **state)
{
	struct fixture *f = *state;
	static const char *const tags[] = {"base", "s1", "a", "a2", "b"};
	static const char *const utf8[] = {"", "", "\u251c\u2500 ", "\u2502  ", "\u2514\u2500 "};
	static const char *const ascii[] = {"", "", "|- ", "|  ", "`- "};
	static const unsigned depth[] = {0, 1, 2, 3, 2}, level[] = {0, 0, 1, 1, 1};
	struct snaptree t, ta;

	make_branches(f);
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	snaptree_build(&ta, &f->st, 0);
	assert_int_equal(t.n, 5);
	assert_int_equal(ta.n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(row(&t, i)->tag, tags[i]);
		assert_string_equal(row(&t, i)->prefix, utf8[i]);
		assert_string_equal(row(&ta, i)->prefix, ascii[i]);
		assert_int_equal(row(&t, i)->depth, depth[i]);
		assert_int_equal(row(&t, i)->level, level[i]);
		assert_int_equal(row(&t, i)->prefix_cols, (int)level[i] * SNAPTREE_INDENT);
		assert_int_equal(row(&t, i)->here, i == 4);
		assert_false(row(&t, i)->pending);
		/* The first line of the description, nothing after it. */
		assert_string_equal(row(&t, i)->description, "line one");
	}
	assert_string_equal(row(&t, 0)->parent_tag, "");
	assert_string_equal(row(&t, 3)->parent_tag, "a");
	assert_string_equal(row(&t, 4)->parent_tag, "s1");
	assert_int_equal(row(&t, 1)->nchildren, 2);
	assert_int_equal(row(&t, 3)->nchildren, 0);
	assert_string_equal(snaptree_kind(row(&t, 3)), "disk-only");
	assert_string_equal(snaptree_kind(row(&t, 2)), "machine");
	assert_int_equal(snaptree_here(&t), 4);
	assert_int_equal(snaptree_find(&t, "a2"), 3);
	assert_int_equal(snaptree_find(&t, "nope"), -1);
	snaptree_free(&t);
	snaptree_free(&ta);
}

/* Children come in the order they were taken, whatever their IDs. */
static void test_children_by_date(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;

	make_branches(f);
	set_date(f, "base", 1000);
	set_date(f, "s1", 2000);
	set_date(f, "a", 5000);
	set_date(f, "a2", 6000);
	set_date(f, "b", 3000); /* b is older than a */
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	assert_string_equal(row(&t, 2)->tag, "b");
	assert_string_equal(row(&t, 2)->prefix, "\u251c\u2500 ");
	assert_string_equal(row(&t, 3)->tag, "a");
	assert_string_equal(row(&t, 3)->prefix, "\u2514\u2500 ");
	/* The last branch's descendants hang under blanks, not a bar. */
	assert_string_equal(row(&t, 4)->tag, "a2");
	assert_string_equal(row(&t, 4)->prefix, "   ");
	assert_int_equal(row(&t, 4)->created, 6000);
	/* The newest is a2, wherever it is drawn. */
	assert_int_equal(snaptree_newest(&t), 4);
	snaptree_free(&t);
}

static void test_automatic_and_pending(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;

	take(f, "mine", true, false);
	take(f, "auto-1", true, true);
	here(f, "mine", true);
	snaptree_build(&t, &f->st, SNAPTREE_SIZES);
	assert_int_equal(t.n, 2);
	assert_false(row(&t, 0)->automatic);
	assert_true(row(&t, 1)->automatic);
	assert_true(row(&t, 0)->here);
	assert_true(row(&t, 0)->pending);
	assert_false(row(&t, 1)->pending);
	/* Sizes read from each directory: its state file takes a block. */
	assert_true(row(&t, 0)->size > 0);
	/* `r` from the list proposes the user's own newest, not the safety net. */
	assert_int_equal(snaptree_newest(&t), 0);
	snaptree_free(&t);

	/* Without SIZES nothing is read. */
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(row(&t, 0)->size, 0);
	snaptree_free(&t);
}

static void test_only_automatic(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;

	take(f, "auto-1", true, true);
	take(f, "auto-2", true, true);
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(snaptree_newest(&t), 1);
	snaptree_free(&t);
}

/* Deleting s1: its children move up to base, the tree is drawn again, and the
 * cursor lands on the row that was under s1. */
static void test_deleted_middle(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;
	struct tv_err err;
	char tag[SNAP_TAG_MAX + 1];
	int r;

	make_branches(f);
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	r = snaptree_find(&t, "s1");
	assert_int_equal(snaptree_after_delete(&t, r, tag), r + 1);
	assert_string_equal(tag, "a");
	/* The last row goes up instead. */
	assert_int_equal(snaptree_after_delete(&t, 4, tag), 3);
	assert_string_equal(tag, "a2");
	snaptree_free(&t);

	assert_int_equal(snapstore_delete(&f->st, "s1", NULL, 0, &err), 0);
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	assert_int_equal(t.n, 4);
	assert_string_equal(row(&t, 0)->tag, "base");
	assert_int_equal(row(&t, 0)->nchildren, 2);
	assert_string_equal(row(&t, 1)->tag, "a");
	assert_string_equal(row(&t, 1)->parent_tag, "base");
	assert_int_equal(row(&t, 1)->depth, 1);
	assert_string_equal(row(&t, 1)->prefix, "\u251c\u2500 ");
	assert_string_equal(row(&t, 3)->tag, "b");
	assert_true(row(&t, 3)->here);
	assert_int_equal(snaptree_find(&t, "a"), 1);
	snaptree_free(&t);

	/* Deleting the only snapshot left leaves no row to go to. */
	assert_int_equal(snapstore_delete(&f->st, "a", NULL, 0, &err), 0);
	assert_int_equal(snapstore_delete(&f->st, "a2", NULL, 0, &err), 0);
	assert_int_equal(snapstore_delete(&f->st, "b", NULL, 0, &err), 0);
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(snaptree_after_delete(&t, 0, tag), -1);
	assert_string_equal(tag, "");
	snaptree_free(&t);
}

/* Several roots (the root deleted) each get a branch, so that the second root
 * is not read as the first one's child. */
static void test_several_roots(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;
	struct tv_err err;

	make_branches(f);
	assert_int_equal(snapstore_delete(&f->st, "base", NULL, 0, &err), 0);
	assert_int_equal(snapstore_delete(&f->st, "s1", NULL, 0, &err), 0);
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(t.n, 3);
	assert_string_equal(row(&t, 0)->tag, "a");
	assert_string_equal(row(&t, 0)->prefix, "|- ");
	assert_string_equal(row(&t, 0)->parent_tag, "");
	assert_string_equal(row(&t, 1)->tag, "a2");
	assert_string_equal(row(&t, 1)->prefix, "|  ");
	assert_string_equal(row(&t, 2)->tag, "b");
	assert_string_equal(row(&t, 2)->prefix, "`- ");
	snaptree_free(&t);
}

/* A record whose parent is not in the index is still shown, as a root. */
static void test_missing_parent(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;

	take(f, "x", true, false);
	take(f, "y", true, false);
	f->st.recs[1].parent = 0x777;
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(row(&t, 1)->depth, 0);
	assert_string_equal(row(&t, 1)->parent_tag, "");
	snaptree_free(&t);
	f->st.recs[1].parent = f->st.recs[0].parent;
	/* Parents in a loop (only a damaged index has them): shown, not hidden. */
	f->st.recs[0].parent = f->st.recs[1].id;
	f->st.recs[1].parent = f->st.recs[0].id;
	snaptree_build(&t, &f->st, 0);
	assert_int_equal(t.n, 2);
	snaptree_free(&t);
}

/* 200 snapshots: a straight history stays at the left edge; a branch from the
 * middle indents only the two lines of descent. */
static void test_two_hundred(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;
	char tag[32];

	for (int i = 0; i < 200; i++) {
		snprintf(tag, sizeof(tag), "s%d", i);
		take(f, tag, i % 3 != 0, i % 7 == 6);
	}
	snaptree_build(&t, &f->st, SNAPTREE_UTF8 | SNAPTREE_SIZES);
	assert_int_equal(t.n, 200);
	for (int i = 0; i < 200; i++) {
		snprintf(tag, sizeof(tag), "s%d", i);
		assert_string_equal(row(&t, (size_t)i)->tag, tag);
		assert_int_equal(row(&t, (size_t)i)->depth, i);
		assert_int_equal(row(&t, (size_t)i)->level, 0);
		assert_string_equal(row(&t, (size_t)i)->prefix, "");
	}
	assert_int_equal(snaptree_here(&t), 199);
	assert_int_equal(snaptree_find(&t, "s150"), 150);
	assert_int_equal(snaptree_newest(&t), 199);
	snaptree_free(&t);

	here(f, "s100", false);
	take(f, "fork", true, false);
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	assert_int_equal(t.n, 201);
	assert_string_equal(row(&t, 100)->tag, "s100");
	assert_int_equal(row(&t, 100)->nchildren, 2);
	assert_string_equal(row(&t, 101)->tag, "s101");
	assert_string_equal(row(&t, 101)->prefix, "\u251c\u2500 ");
	assert_string_equal(row(&t, 102)->prefix, "\u2502  ");
	assert_string_equal(row(&t, 199)->prefix, "\u2502  ");
	assert_string_equal(row(&t, 200)->tag, "fork");
	assert_string_equal(row(&t, 200)->prefix, "\u2514\u2500 ");
	assert_int_equal(row(&t, 200)->depth, 101);
	assert_int_equal(snaptree_here(&t), 200);
	snaptree_free(&t);
}

/* Branches deeper than SNAPTREE_MAX_LEVEL stop moving right. */
static void test_deep_branches(void **state)
{
	struct fixture *f = *state;
	struct snaptree t;
	char tag[32];

	char cur[32] = "root";

	take(f, "root", true, false);
	/* Each snapshot gets two children; the first goes on branching. */
	for (int i = 0; i < 30; i++) {
		snprintf(tag, sizeof(tag), "left%d", i);
		take(f, tag, true, false);
		here(f, cur, false);
		snprintf(tag, sizeof(tag), "right%d", i);
		take(f, tag, true, false);
		snprintf(cur, sizeof(cur), "left%d", i);
		here(f, cur, false);
	}
	snaptree_build(&t, &f->st, SNAPTREE_UTF8);
	assert_int_equal(t.n, 61);
	for (size_t i = 0; i < t.n; i++) {
		assert_true(row(&t, i)->level <= SNAPTREE_MAX_LEVEL);
		assert_true(strlen(row(&t, i)->prefix) < sizeof(row(&t, i)->prefix));
	}
	assert_int_equal(row(&t, (size_t)snaptree_find(&t, "right29"))->level, SNAPTREE_MAX_LEVEL);
	assert_int_equal(row(&t, (size_t)snaptree_find(&t, "right29"))->depth, 30);
	/* Depth first: root's second child comes last, at the first level. */
	assert_string_equal(row(&t, t.n - 1)->tag, "right0");
	assert_int_equal(row(&t, t.n - 1)->level, 1);
	snaptree_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_branches_utf8_and_ascii, setup, teardown),
		cmocka_unit_test_setup_teardown(test_children_by_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_automatic_and_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_automatic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_middle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_roots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_hundred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_branches, setup, teardown),
	};

	return cmocka_run_group_tests_name("snaptree", tests, NULL, NULL);
}
