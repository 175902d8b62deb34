/* The console pane's search, copy mode and selection, and the OSC 52
 * sequence that hands a selection to the user's clipboard. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ui/vtpane-int.h"
#include "common/util.h"

static bool has_capital(const char *s)
{
	for (; *s; s++)
		if (isupper((unsigned char)*s))
			return true;
	return false;
}

/* The match in line nearest to col in the direction (forward: the first
 * starting after col; backward: the last starting before col). */
static bool match_in_line(struct vtpane *p, long line, int col, int dir, char *buf, int *col_of)
{
	const char *text = p->search_text;
	size_t tlen = strlen(text), len;
	bool exact = has_capital(text);
	const char *s, *found = NULL;

	len = vtpane_line_utf8(p, line, 0, INT_MAX, buf, col_of);
	for (s = buf; (size_t)(s - buf) + tlen <= len;) {
		const char *m = exact ? strstr(s, text) : strcasestr(s, text);
		int mc;

		if (m == NULL)
			break;
		mc = col_of[m - buf];
		if (dir > 0 && mc > col) {
			found = m;
			break;
		}
		if (dir < 0 && mc < col)
			found = m;
		if (dir < 0 && mc >= col)
			break;
		s = m + 1;
	}
	if (found == NULL)
		return false;
	p->match = true;
	p->match_line = line;
	p->match_col = col_of[found - buf];
	{
		size_t end = (size_t)(found - buf) + tlen; /* the byte after the match */
		p->match_end = col_of[end] > col_of[end - 1] ? col_of[end] : col_of[end - 1] + 1;
	}
	return true;
}

static enum vtpane_found search_run(struct vtpane *p, int dir)
{
	long n = vtpane_lines(p), line;
	int col, maxcols = p->cols;
	enum vtpane_found res = VTPANE_NOT_FOUND;
	char *buf;
	int *col_of;

	if (p->search_text == NULL || p->search_text[0] == '\0')
		return VTPANE_NOT_FOUND;
	for (size_t i = 0; i < p->sb_len; i++)
		if (vtpane_line_cols(p, (long)i) > maxcols)
			maxcols = vtpane_line_cols(p, (long)i);
	if (p->match) {
		line = p->match_line, col = p->match_col;
	} else if (p->copy) {
		line = p->cur_line, col = p->cur_col;
	} else if (dir > 0) {
		line = vtpane_view_top(p), col = -1;
	} else {
		line = vtpane_view_top(p) + p->rows - 1, col = INT_MAX;
	}
	buf = xmalloc(vtpane_line_bytes(maxcols));
	col_of = xcalloc(vtpane_line_bytes(maxcols), sizeof(*col_of));
	for (long k = 0; k <= n; k++) {
		long l = ((line + dir * k) % n + n) % n;
		int from = k == 0 ? col : (dir > 0 ? -1 : INT_MAX);

		if (k == n) /* back at the start: only the part not yet searched */
			from = dir > 0 ? -1 : INT_MAX;
		if (match_in_line(p, l, from, dir, buf, col_of)) {
			bool wrapped = k == n || (dir > 0 ? l < line : l > line);
			res = wrapped ? VTPANE_WRAPPED : VTPANE_FOUND;
			break;
		}
	}
	free(buf);
	free(col_of);
	if (res == VTPANE_NOT_FOUND) {
		p->match = false;
	} else {
		vtpane_show_line(p, p->match_line);
		if (p->copy) {
			p->cur_line = p->match_line;
			p->cur_col = p->match_col;
		}
	}
	vtpane_touch(p);
	return res;
}

enum vtpane_found vtpane_search(struct vtpane *p, const char *text, int direction)
{
	free(p->search_text);
	p->search_text = xstrdup(text ? text : "");
	p->search_dir = direction < 0 ? VTPANE_OLDER : VTPANE_NEWER;
	p->match = false;
	return search_run(p, p->search_dir);
}

enum vtpane_found vtpane_search_again(struct vtpane *p, bool reverse)
{
	return search_run(p, reverse ? -p->search_dir : p->search_dir);
}

void vtpane_search_clear(struct vtpane *p)
{
	if (p->match)
		vtpane_touch(p);
	p->match = false;
}

void vtpane_copy_start(struct vtpane *p)
{
	int row = p->cursor.row < p->rows ? p->cursor.row : p->rows - 1;

	p->copy = true;
	p->sel = VTPANE_SELECT_NONE;
	p->cur_line = vtpane_view_top(p) + row;
	p->cur_col = p->offset == 0 ? p->cursor.col : 0;
	p->match = false;
	vtpane_touch(p);
}

/* The column of the cell that covers col (the first half of a wide one). */
static int cell_start(const struct vtpane *p, long line, int col)
{
	VTermScreenCell c;

	if (col <= 0)
		return 0;
	vtpane_cell(p, line, col, &c);
	return c.chars[0] == (uint32_t)-1 ? col - 1 : col;
}

void vtpane_copy_move(struct vtpane *p, int lines, int cols)
{
	long line = p->cur_line + lines, n = vtpane_lines(p);
	long col = (long)p->cur_col + cols;
	int width;

	if (!p->copy)
		return;
	if (line < 0)
		line = 0;
	if (line >= n)
		line = n - 1;
	width = vtpane_line_cols(p, line);
	if (col >= width)
		col = width - 1;
	if (col < 0)
		col = 0;
	col = cell_start(p, line, (int)col);
	if (cols > 0 && col <= p->cur_col && line == p->cur_line && col + 2 < width)
		col += 2; /* stepping right off a wide character */
	p->cur_line = line;
	p->cur_col = (int)col;
	vtpane_show_line(p, line);
	vtpane_touch(p);
}

#define FAR (1 << 30) /* past any end: vtpane_copy_move stops there */

bool vtpane_copy_action(struct vtpane *p, const char *action)
{
	static const struct {
		const char *name;
		int lines, cols; /* PAGE: a page of the pane's rows */
	} moves[] = {
	    {"up", -1, 0},	  {"down", 1, 0},	   {"left", 0, -1},
	    {"right", 0, 1},	  {"top", -FAR, -FAR},	   {"bottom", FAR, -FAR},
	    {"line-start", 0, -FAR}, {"line-end", 0, FAR}, {"page-up", -1, 0},
	    {"page-down", 1, 0},
	};

	if (!p->copy)
		return false;
	if (strcmp(action, "select") == 0) {
		vtpane_copy_select(p, VTPANE_SELECT_CHARS);
		return true;
	}
	if (strcmp(action, "select-lines") == 0) {
		vtpane_copy_select(p, VTPANE_SELECT_LINES);
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(moves); i++)
		if (strcmp(action, moves[i].name) == 0) {
			int lines = moves[i].lines;
			if (strncmp(action, "page-", 5) == 0)
				lines *= p->rows > 1 ? p->rows - 1 : 1;
			vtpane_copy_move(p, lines, moves[i].cols);
			return true;
		}
	return false;
}

void vtpane_copy_select(struct vtpane *p, enum vtpane_select mode)
{
	if (!p->copy)
		return;
	p->sel = mode;
	p->anchor_line = p->cur_line;
	p->anchor_col = p->cur_col;
	vtpane_touch(p);
}

void vtpane_copy_end(struct vtpane *p)
{
	p->copy = false;
	p->sel = VTPANE_SELECT_NONE;
	p->match = false;
	vtpane_scroll_reset(p);
	vtpane_touch(p);
}

bool vtpane_copy_active(const struct vtpane *p)
{
	return p->copy;
}

void vtpane_copy_cursor(const struct vtpane *p, int *row, int *col)
{
	long r = p->cur_line - vtpane_view_top(p);

	*row = p->copy && r >= 0 && r < p->rows ? (int)r : -1;
	*col = p->cur_col;
}

bool vtpane_selection_range(const struct vtpane *p, long *l0, int *c0, long *l1, int *c1)
{
	if (!p->copy || p->sel == VTPANE_SELECT_NONE)
		return false;
	*l0 = p->anchor_line, *c0 = p->anchor_col;
	*l1 = p->cur_line, *c1 = p->cur_col;
	if (*l0 > *l1 || (*l0 == *l1 && *c0 > *c1)) {
		*l0 = p->cur_line, *c0 = p->cur_col;
		*l1 = p->anchor_line, *c1 = p->anchor_col;
	}
	return true;
}

char *vtpane_selection_text(const struct vtpane *p)
{
	long l0, l1;
	int c0, c1;
	size_t cap = 1, n = 0;
	char *out;

	if (!vtpane_selection_range(p, &l0, &c0, &l1, &c1))
		return NULL;
	if (p->sel == VTPANE_SELECT_LINES)
		c0 = 0, c1 = INT_MAX;
	for (long l = l0; l <= l1; l++)
		cap += vtpane_line_bytes(vtpane_line_cols(p, l)) + 1;
	out = xmalloc(cap);
	for (long l = l0; l <= l1; l++) {
		int first = l == l0 ? cell_start(p, l, c0) : 0;
		int last = l == l1 ? c1 : INT_MAX;

		n += vtpane_line_utf8(p, l, first, last, out + n, NULL);
		if (l < l1)
			out[n++] = '\n';
	}
	out[n] = '\0';
	return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *vtpane_osc52(const char *text, size_t len, bool tmux)
{
	const unsigned char *s = (const unsigned char *)text;
	const char *head = tmux ? "\033Ptmux;\033\033]52;c;" : "\033]52;c;";
	const char *tail = tmux ? "\a\033\\" : "\a";
	size_t hl = strlen(head), tl = strlen(tail), n;
	char *out = xmalloc(hl + (len + 2) / 3 * 4 + tl + 1);

	memcpy(out, head, hl);
	n = hl;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		out[n++] = b64[v >> 18 & 63];
		out[n++] = b64[v >> 12 & 63];
		out[n++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[n++] = i + 2 < len ? b64[v & 63] : '=';
	}
	memcpy(out + n, tail, tl + 1);
	return out;
}
