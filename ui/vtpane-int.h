/* Inside the console pane: shared by ui/vtpane.c (screen, scrollback,
 * drawing) and ui/vtcopy.c (search, copy mode, selection). */
#ifndef TV_VTPANE_INT_H
#define TV_VTPANE_INT_H

#include "ui/vtpane.h"
#include "ui/vtcolor.h"
#include "src/vmm/vtguard.h"
#include "src/vmm/vtscreen.h"

/* A scrollback cell, 16 bytes: ch holds the code point (bits 0-20), the
 * width (bits 21-22) and how many combining characters follow in the line's
 * extra array (bits 23-25, from extra_at). */
struct vtcell {
	uint32_t ch;
	VTermColor fg, bg;
	uint16_t attrs;
	uint16_t extra_at;
};

/* A line pushed off the screen. Trailing blank cells are not kept: cells
 * from len up to cols read as blanks. */
struct vtline {
	int cols, len, cap; /* cap: cells allocated, kept when the slot is reused */
	struct vtcell *cells;
	uint32_t *extra; /* combining characters, NULL for most lines */
};

struct vtpane {
	VTerm *vt;
	struct vtscreen *screen;
	struct vtguard guard;
	int rows, cols;

	/* Scrollback ring, oldest first from head. Lines are numbered as one
	 * sequence with the screen: 0 .. sb_len-1 the scrollback, then the
	 * screen's rows; a line keeps its number while it scrolls off. */
	struct vtline *sb;
	size_t sb_cap, sb_len, sb_head;
	int offset; /* rows scrolled back from the live view */

	VTermPos cursor;
	bool cursor_visible, cursor_blink, altscreen;
	int cursor_shape;
	bool bell;

	/* Drawing: which rows changed since the last draw, and where it went. */
	bool dirty, all_dirty;
	uint8_t *row_dirty;
	WINDOW *last_win;
	int last_y0, last_maxy, last_maxx;
	unsigned color_gen;
	enum vtcolor_class cls;

	char title[128];
	vtpane_output_fn out;
	void *ctx;

	/* Search: the last text and direction, and the match shown. */
	char *search_text;
	int search_dir;
	bool match;
	long match_line;
	int match_col, match_end; /* columns, end exclusive */

	/* Copy mode: a cursor over scrollback and screen, and the selection's
	 * other end. */
	bool copy;
	long cur_line, anchor_line;
	int cur_col, anchor_col;
	enum vtpane_select sel;
};

/* Lines in scrollback and screen together. */
long vtpane_lines(const struct vtpane *p);
/* Width of a line (a scrollback line keeps the width it had). */
int vtpane_line_cols(const struct vtpane *p, long line);
/* The cell at a line and column; blank beyond the line's end. The second
 * half of a wide character reads as chars[0] == (uint32_t)-1. */
void vtpane_cell(const struct vtpane *p, long line, int col, VTermScreenCell *cell);
/* The line shown on the first visible row. */
long vtpane_view_top(const struct vtpane *p);
/* Scrolls so that line is visible, centred if it was not. */
void vtpane_show_line(struct vtpane *p, long line);
void vtpane_touch(struct vtpane *p);

/* The selection's first and last cells in reading order; false without
 * one. */
bool vtpane_selection_range(const struct vtpane *p, long *l0, int *c0, long *l1, int *c1);

/* UTF-8 of a line's columns first..last (inclusive), trailing blanks
 * removed; col_of, when not NULL, gets the column of each byte (and of the
 * end at index len). buf holds at least vtpane_line_bytes(cols) bytes. */
size_t vtpane_line_utf8(const struct vtpane *p, long line, int first, int last, char *buf,
			int *col_of);
size_t vtpane_line_bytes(int cols);

#endif
