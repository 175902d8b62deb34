/* Layouts: where views go. Pure geometry, no ncurses, so every terminal size
 * can be unit-tested. */
#ifndef TV_UI_LAYOUT_H
#define TV_UI_LAYOUT_H

#include <stdbool.h>

struct rect {
	int y, x, rows, cols;
};

enum layout_kind {
	LAYOUT_AUTO,   /* side by side when wide enough, else stacked */
	LAYOUT_SIDE,   /* list left, console right */
	LAYOUT_STACK,  /* list above, console below */
	LAYOUT_ZOOM,   /* the focused view alone */
};

/* The screen's regions for a terminal of rows x cols: a header line, the
 * tab bar (when tabs > 1), the list, the main pane (console or tree),
 * the footer (key help) and the message line. A region that does not fit is
 * given rows = cols = 0. */
struct layout {
	struct rect header, tabs, list, pane, footer;
	enum layout_kind used; /* what AUTO chose */
};

void layout_compute(struct layout *l, enum layout_kind kind, int rows, int cols, int tabs,
		    bool zoom_list);

#endif
