/* The screen's regions (ui/layout.c) for terminal sizes from tiny to huge:
 * every region inside the screen, none overlapping, the list and the pane
 * side by side on a wide terminal and stacked on a narrow one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "ui/layout.h"

static const struct rect *regions(const struct layout *l, int i)
{
	const struct rect *r[] = {&l->header, &l->tabs, &l->list, &l->pane, &l->footer};

	return i < 5 ? r[i] : NULL;
}

static bool overlap(const struct rect *a, const struct rect *b)
{
	if (a->rows == 0 || b->rows == 0)
		return false;
	return a->y < b->y + b->rows && b->y < a->y + a->rows && a->x < b->x + b->cols &&
	       b->x < a->x + a->cols;
}

static void check(const struct layout *l, int rows, int cols)
{
	for (int i = 0; i < 5; i++) {
		const struct rect *r = regions(l, i);
		/* An empty region is empty both ways. */
		assert_true((r->rows == 0) == (r->cols == 0));
		if (r->rows == 0)
			continue;
		assert_true(r->rows > 0 && r->cols > 0);
		assert_true(r->y >= 0 && r->x >= 0);
		assert_true(r->y + r->rows <= rows);
		assert_true(r->x + r->cols <= cols);
		for (int j = i + 1; j < 5; j++)
			assert_false(overlap(r, regions(l, j)));
	}
}

static const int sizes[][2] = {
	{24, 80}, {50, 200}, {5, 20}, {100, 300}, {1, 1}, {2, 2},  {3, 10}, {4, 4},
	{25, 80}, {30, 100}, {40, 119}, {40, 120}, {10, 200}, {200, 40}, {6, 120}, {60, 132},
	{0, 0},   {24, 0},   {0, 80},
};

static void test_every_size(void **state)
{
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (int tabs = 0; tabs < 3; tabs++)
			for (int kind = LAYOUT_AUTO; kind <= LAYOUT_ZOOM; kind++)
				for (int zl = 0; zl < 2; zl++) {
					struct layout l;
					layout_compute(&l, (enum layout_kind)kind, sizes[s][0],
						       sizes[s][1], tabs, zl);
					check(&l, sizes[s][0], sizes[s][1]);
				}
	/* Every size from 1x1 to 60x160, to catch an off-by-one anywhere. */
	for (int rows = 1; rows <= 60; rows++)
		for (int cols = 1; cols <= 160; cols++) {
			struct layout l;
			layout_compute(&l, LAYOUT_AUTO, rows, cols, 2, false);
			check(&l, rows, cols);
		}
}

static void test_shape(void **state)
{
	struct layout l;

	/* 80x24: stacked, the list above a pane as wide as the screen. */
	layout_compute(&l, LAYOUT_AUTO, 24, 80, 1, false);
	assert_int_equal(l.used, LAYOUT_STACK);
	assert_int_equal(l.pane.cols, 80);
	assert_true(l.list.rows >= 3);
	assert_true(l.pane.rows >= 12);
	assert_int_equal(l.pane.y, l.list.y + l.list.rows);
	assert_int_equal(l.header.y, 0);
	assert_int_equal(l.footer.y, 23);
	assert_int_equal(l.tabs.rows, 0); /* one tab: no bar */
	/* 200x50: side by side, the pane the wider. */
	layout_compute(&l, LAYOUT_AUTO, 50, 200, 3, false);
	assert_int_equal(l.used, LAYOUT_SIDE);
	assert_int_equal(l.list.y, l.pane.y);
	assert_true(l.pane.x > l.list.x + l.list.cols - 1);
	assert_true(l.pane.cols > l.list.cols);
	assert_int_equal(l.tabs.rows, 1);
	assert_int_equal(l.list.rows, 50 - 3);
	/* 300x100 too. */
	layout_compute(&l, LAYOUT_AUTO, 100, 300, 0, false);
	assert_int_equal(l.used, LAYOUT_SIDE);
	assert_true(l.pane.cols >= 200);
	/* Tall and narrow: stacked. */
	layout_compute(&l, LAYOUT_AUTO, 100, 60, 0, false);
	assert_int_equal(l.used, LAYOUT_STACK);
	/* Zoom: the pane alone, or the list alone, under the header. */
	layout_compute(&l, LAYOUT_ZOOM, 24, 80, 2, false);
	assert_int_equal(l.list.rows, 0);
	assert_int_equal(l.pane.rows, 24 - 3);
	assert_int_equal(l.pane.cols, 80);
	layout_compute(&l, LAYOUT_ZOOM, 24, 80, 2, true);
	assert_int_equal(l.pane.rows, 0);
	assert_int_equal(l.list.rows, 24 - 3);
	/* 20x5: something to see still, and nothing outside. */
	layout_compute(&l, LAYOUT_AUTO, 5, 20, 2, false);
	assert_true(l.list.rows >= 1);
	/* Forced side by side on a narrow screen keeps both inside. */
	layout_compute(&l, LAYOUT_SIDE, 24, 30, 1, false);
	check(&l, 24, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_size),
		cmocka_unit_test(test_shape),
	};

	return cmocka_run_group_tests_name("layout", tests, NULL, NULL);
}
