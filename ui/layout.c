/* The screen's regions (ui/layout.h): a header line, the tab bar, the list and
 * the pane side by side on a wide terminal or stacked on a narrow or tall one,
 * or one of them alone (zoom), and the footer. */
#include <string.h>

#include "ui/layout.h"

/* Side by side from this width: a list of 40 columns beside a pane of 80. */
#define LAYOUT_SIDE_MIN_COLS 120
#define LAYOUT_LIST_MIN_COLS 40
#define LAYOUT_LIST_MAX_COLS 60
#define LAYOUT_LIST_MAX_ROWS 12

static struct rect rect(int y, int x, int rows, int cols)
{
	if (rows <= 0 || cols <= 0)
		return (struct rect){y, x, 0, 0};
	return (struct rect){y, x, rows, cols};
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void layout_compute(struct layout *l, enum layout_kind kind, int rows, int cols, int tabs,
		    bool zoom_list)
{
	int top = 0, bottom = rows;

	memset(l, 0, sizeof(*l));
	if (rows <= 0 || cols <= 0) {
		l->used = kind == LAYOUT_AUTO ? LAYOUT_STACK : kind;
		return;
	}
	if (rows >= 3)
		l->header = rect(top++, 0, 1, cols);
	if (rows >= 2)
		l->footer = rect(--bottom, 0, 1, cols);
	if (tabs > 1 && bottom - top >= 4)
		l->tabs = rect(top++, 0, 1, cols);
	if (kind == LAYOUT_AUTO)
		kind = cols >= LAYOUT_SIDE_MIN_COLS && bottom - top >= 6 ? LAYOUT_SIDE : LAYOUT_STACK;
	l->used = kind;
	int body = bottom - top;
	switch (kind) {
	case LAYOUT_ZOOM:
		if (zoom_list)
			l->list = rect(top, 0, body, cols);
		else
			l->pane = rect(top, 0, body, cols);
		break;
	case LAYOUT_SIDE: {
		int lc = clamp(cols / 3, LAYOUT_LIST_MIN_COLS, LAYOUT_LIST_MAX_COLS);
		if (lc > cols - 2)
			lc = cols - 2;
		l->list = rect(top, 0, body, lc);
		/* One column between them for the separator. */
		l->pane = rect(top, lc + 1, body, cols - lc - 1);
		break;
	}
	default: {
		/* The list on top, a third of the rows; too short a screen keeps
		 * only the list. */
		int lr = body < 5 ? body : clamp(body / 3, 3, LAYOUT_LIST_MAX_ROWS);
		l->list = rect(top, 0, lr, cols);
		l->pane = rect(top + lr, 0, body - lr, cols);
		break;
	}
	}
}
