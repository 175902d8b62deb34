/* The console pane: a terminal screen (src/vmm/vtscreen.h, on libvterm's
 * state), a scrollback ring, and the drawing of both into an ncurses window,
 * row by row as they change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui/vtpane-int.h"
#include "common/util.h"

#define CH_MASK 0x1fffffu
#define CH_WIDTH(c) (((c) >> 21) & 3u)
#define CH_NEXTRA(c) (((c) >> 23) & 7u)

static void mark_rows(struct vtpane *p, int start, int end)
{
	if (p->offset > 0) {
		p->all_dirty = true; /* the live rows sit lower in a scrolled view */
	} else {
		if (start < 0)
			start = 0;
		for (int r = start; r < end && r < p->rows; r++)
			p->row_dirty[r] = 1;
	}
	p->dirty = true;
}

void vtpane_touch(struct vtpane *p)
{
	p->all_dirty = true;
	p->dirty = true;
}

static int on_damage(VTermRect rect, void *user)
{
	mark_rows(user, rect.start_row, rect.end_row);
	return 1;
}

static int on_movecursor(VTermPos pos, VTermPos old, int visible, void *user)
{
	struct vtpane *p = user;

	p->cursor = pos;
	p->cursor_visible = visible != 0;
	p->dirty = true;
	return 1;
}

static int on_settermprop(VTermProp prop, VTermValue *val, void *user)
{
	struct vtpane *p = user;

	switch (prop) {
	case VTERM_PROP_TITLE: {
		size_t n = val->string ? strlen(val->string) : 0;
		if (n >= sizeof(p->title))
			n = sizeof(p->title) - 1;
		memcpy(p->title, val->string ? val->string : "", n);
		p->title[n] = '\0';
		break;
	}
	case VTERM_PROP_CURSORVISIBLE: p->cursor_visible = val->boolean != 0; break;
	case VTERM_PROP_CURSORBLINK: p->cursor_blink = val->boolean != 0; break;
	case VTERM_PROP_CURSORSHAPE: p->cursor_shape = val->number; break;
	case VTERM_PROP_ALTSCREEN: p->altscreen = val->boolean != 0; break;
	case VTERM_PROP_REVERSE: p->all_dirty = true; break; /* the screen's cells carry it */
	default: break;
	}
	p->dirty = true;
	return 1;
}

static int on_bell(void *user)
{
	((struct vtpane *)user)->bell = true; /* one beep per draw, however many came */
	return 1;
}

static uint16_t pack_attrs(VTermScreenCellAttrs a)
{
	return (uint16_t)(a.bold | a.underline << 1 | a.italic << 3 | a.blink << 4 | a.reverse << 5 |
			  a.strike << 6 | a.font << 7 | a.dwl << 11 | a.dhl << 12);
}

static VTermScreenCellAttrs unpack_attrs(uint16_t v)
{
	VTermScreenCellAttrs a = {0};

	a.bold = v & 1;
	a.underline = (v >> 1) & 3;
	a.italic = (v >> 3) & 1;
	a.blink = (v >> 4) & 1;
	a.reverse = (v >> 5) & 1;
	a.strike = (v >> 6) & 1;
	a.font = (v >> 7) & 15;
	a.dwl = (v >> 11) & 1;
	a.dhl = (v >> 12) & 3;
	return a;
}

static void blank_cell(VTermScreenCell *c)
{
	memset(c, 0, sizeof(*c));
	c->width = 1;
	c->fg.type = VTERM_COLOR_DEFAULT_FG;
	c->bg.type = VTERM_COLOR_DEFAULT_BG;
}

static bool is_blank(const VTermScreenCell *c)
{
	VTermScreenCellAttrs none = {0};

	return c->chars[0] == 0 && VTERM_COLOR_IS_DEFAULT_FG(&c->fg) &&
	       VTERM_COLOR_IS_DEFAULT_BG(&c->bg) && memcmp(&c->attrs, &none, sizeof(none)) == 0;
}

static uint32_t pack_char(uint32_t ch)
{
	if (ch == (uint32_t)-1)
		return CH_MASK; /* the second half of a wide character */
	return ch > 0x10ffff ? 0xfffd : ch;
}

static struct vtline *sb_at(const struct vtpane *p, size_t i) /* 0 = oldest */
{
	return &p->sb[(p->sb_head + i) % p->sb_cap];
}

/* Stores a line in a ring slot, reusing the slot's memory. */
static void line_store(struct vtline *l, int cols, const VTermScreenCell *cells)
{
	int len = cols, nextra = 0, k = 0;

	while (len > 0 && is_blank(&cells[len - 1]))
		len--;
	for (int i = 0; i < len; i++)
		for (int j = 1; j < VTERM_MAX_CHARS_PER_CELL && cells[i].chars[0] != (uint32_t)-1 &&
				cells[i].chars[j];
		     j++)
			nextra++;
	if (len > l->cap || len < l->cap / 4) { /* grow, or give back most of a long line's room */
		l->cap = len;
		l->cells = len ? xreallocarray(l->cells, (size_t)len, sizeof(*l->cells))
			       : (free(l->cells), NULL);
	}
	if (l->extra || nextra) {
		free(l->extra);
		l->extra = nextra ? xcalloc((size_t)nextra, sizeof(*l->extra)) : NULL;
	}
	for (int i = 0; i < len; i++) {
		const VTermScreenCell *c = &cells[i];
		struct vtcell *d = &l->cells[i];
		uint32_t n = 0;

		d->extra_at = (uint16_t)(k > 0xffff ? 0xffff : k);
		for (int j = 1; j < VTERM_MAX_CHARS_PER_CELL && c->chars[0] != (uint32_t)-1 && c->chars[j];
		     j++) {
			if (k <= 0xffff && n < 7) {
				l->extra[k++] = pack_char(c->chars[j]);
				n++;
			}
		}
		d->ch = pack_char(c->chars[0]) | (uint32_t)(c->width & 3) << 21 | n << 23;
		d->fg = c->fg;
		d->bg = c->bg;
		d->attrs = pack_attrs(c->attrs);
	}
	l->cols = cols;
	l->len = len;
}

static void line_cell(const struct vtline *l, int col, VTermScreenCell *c)
{
	const struct vtcell *s;
	uint32_t ch;

	if (col >= l->len) {
		blank_cell(c);
		return;
	}
	s = &l->cells[col];
	ch = s->ch & CH_MASK;
	memset(c->chars, 0, sizeof(c->chars));
	c->chars[0] = ch == CH_MASK ? (uint32_t)-1 : ch;
	for (uint32_t j = 0; j < CH_NEXTRA(s->ch) && j + 1 < VTERM_MAX_CHARS_PER_CELL; j++)
		c->chars[j + 1] = l->extra[s->extra_at + j];
	c->width = (char)CH_WIDTH(s->ch);
	c->attrs = unpack_attrs(s->attrs);
	c->fg = s->fg;
	c->bg = s->bg;
}

static bool line_is_wide(const struct vtline *l, int col)
{
	return col < l->len && CH_WIDTH(l->cells[col].ch) == 2;
}

static void shift_lines(struct vtpane *p) /* the oldest line is gone */
{
	p->match_line--;
	p->cur_line--;
	p->anchor_line--;
	if (p->match && p->match_line < 0)
		p->match = false;
	if (p->cur_line < 0)
		p->cur_line = 0;
	if (p->anchor_line < 0)
		p->anchor_line = 0;
}

static int on_sb_pushline(int cols, const VTermScreenCell *cells, void *user)
{
	struct vtpane *p = user;

	if (p->sb_cap == 0)
		return 1;
	if (p->sb_len == p->sb_cap) {
		p->sb_head = (p->sb_head + 1) % p->sb_cap; /* the oldest slot becomes the newest */
		p->sb_len--;
		shift_lines(p);
	}
	line_store(sb_at(p, p->sb_len), cols, cells);
	p->sb_len++;
	if (p->offset > 0 && (size_t)p->offset < p->sb_len)
		p->offset++; /* keep the view on the same lines while reading back */
	return 1;
}

static int on_sb_popline(int cols, VTermScreenCell *cells, void *user)
{
	struct vtpane *p = user;
	struct vtline *l;

	if (p->sb_len == 0)
		return 0;
	l = sb_at(p, p->sb_len - 1);
	for (int i = 0; i < cols; i++) {
		line_cell(l, i, &cells[i]);
		/* libvterm 0.1.4 steps by the width and marks the cell after a
		 * wide one: a wide character in the last column (the line was
		 * wider) would be marked past the row. */
		if (cells[i].width != 2 || i == cols - 1)
			cells[i].width = 1;
		if (cells[i].width == 1 && i == cols - 1 && line_is_wide(l, i))
			blank_cell(&cells[i]);
	}
	p->sb_len--;
	if ((size_t)p->offset > p->sb_len)
		p->offset = (int)p->sb_len;
	return 1;
}

static const VTermScreenCallbacks callbacks = {
	.damage = on_damage,
	.movecursor = on_movecursor,
	.settermprop = on_settermprop,
	.bell = on_bell,
	.sb_pushline = on_sb_pushline,
	.sb_popline = on_sb_popline,
};

static void on_output(const char *s, size_t len, void *user)
{
	struct vtpane *p = user;

	if (p->out)
		p->out(p->ctx, s, len);
}

void vtpane_paste(struct vtpane *p, const char *text, size_t len)
{
	size_t start = 0;

	vterm_keyboard_start_paste(p->vt);
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] != '\n' && text[i] != 0x1b)
			continue;
		if (i > start)
			on_output(text + start, i - start, p);
		if (i < len && text[i] == '\n')
			on_output("\r", 1, p);
		start = i + 1;
	}
	vterm_keyboard_end_paste(p->vt);
}

struct vtpane *vtpane_new(int rows, int cols, size_t scrollback_lines, vtpane_output_fn out,
			  void *ctx)
{
	struct vtpane *p = xcalloc(1, sizeof(*p));

	p->rows = rows < 1 ? 1 : rows;
	p->cols = cols < 2 ? 2 : cols; /* see vtpane_resize */
	p->row_dirty = xcalloc((size_t)p->rows, 1);
	p->vt = vterm_new(p->rows, p->cols);
	vterm_set_utf8(p->vt, 1);
	p->screen = vtscreen_new(p->vt);
	vtscreen_set_callbacks(p->screen, &callbacks, p);
	vtscreen_enable_altscreen(p->screen, 1);
	vtscreen_reset(p->screen, 1);
	vterm_output_set_callback(p->vt, on_output, p);
	p->sb_cap = scrollback_lines;
	p->sb = scrollback_lines ? xcalloc(scrollback_lines, sizeof(*p->sb)) : NULL;
	p->cursor_visible = true;
	p->cursor_blink = true;
	p->cursor_shape = VTPANE_CURSOR_BLOCK;
	p->out = out;
	p->ctx = ctx;
	p->search_dir = VTPANE_OLDER;
	vtpane_touch(p);
	return p;
}

void vtpane_free(struct vtpane *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->sb_cap; i++) {
		free(p->sb[i].cells);
		free(p->sb[i].extra);
	}
	free(p->sb);
	free(p->row_dirty);
	free(p->search_text);
	vtscreen_free(p->screen);
	vterm_free(p->vt);
	free(p);
}

/* Guest output goes through the guard against libvterm's flaws (see
 * src/vmm/vtguard.h) here too: the pane may be fed from anywhere. */
void vtpane_feed(struct vtpane *p, const char *bytes, size_t len)
{
	uint8_t buf[4096];

	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		size_t m = vtguard_filter(&p->guard, (const uint8_t *)bytes, n, buf);

		vterm_input_write(p->vt, (const char *)buf, m);
		bytes += n;
		len -= n;
	}
	vtscreen_flush_damage(p->screen);
}

void vtpane_feed_sync(struct vtpane *p, const char *bytes, size_t len)
{
	long lines = vtpane_lines(p);
	long cur = lines - p->cur_line, anchor = lines - p->anchor_line;
	int offset = p->offset;

	vtpane_feed(p, bytes, len);
	lines = vtpane_lines(p);
	p->cur_line = MAX(lines - cur, 0L);
	p->anchor_line = MAX(lines - anchor, 0L);
	if (p->offset != offset) {
		p->offset = (int)MIN((size_t)offset, p->sb_len);
		vtpane_touch(p);
	}
}

/* libvterm 0.1.4 moves the cursor up by the lines a shrinking screen
 * pushes into the scrollback, past the top when the cursor was above them
 * (after DECALN filled the screen, say), and its next erase writes outside
 * the screen; and its saved cursor (DECSC) keeps a place the screen may no
 * longer have, which DECRC would bring back. The cursor goes back inside,
 * and is saved there. */
static void keep_cursor_inside(struct vtpane *p)
{
	VTermPos pos;
	char cup[32];
	int n;

	vterm_state_get_cursorpos(vterm_obtain_state(p->vt), &pos);
	if (pos.row >= 0 && pos.row < p->rows && pos.col >= 0 && pos.col < p->cols) {
		vterm_input_write(p->vt, "\0337", 2);
		return;
	}
	pos.row = pos.row < 0 ? 0 : pos.row >= p->rows ? p->rows - 1 : pos.row;
	pos.col = pos.col < 0 ? 0 : pos.col >= p->cols ? p->cols - 1 : pos.col;
	n = snprintf(cup, sizeof(cup), "\033[%d;%dH\0337", pos.row + 1, pos.col + 1);
	vterm_input_write(p->vt, cup, (size_t)n);
}

void vtpane_resize(struct vtpane *p, int rows, int cols)
{
	/* The scroll region and margins go back to the whole screen first, as
	 * xterm does on a resize: libvterm 0.1.4 keeps a region below the new
	 * last row, and its next scroll moves a negative number of lines. The
	 * cursor is saved and restored around it. */
	static const char full_region[] = "\0337\033[s\033[r\0338";

	if (rows < 1 || cols < 1)
		return;
	if (cols < 2)
		cols = 2; /* libvterm 0.1.4 writes a wide character past a 1-column screen */
	if (rows == p->rows && cols == p->cols)
		return;
	vterm_input_write(p->vt, full_region, sizeof(full_region) - 1);
	p->rows = rows;
	p->cols = cols;
	free(p->row_dirty);
	p->row_dirty = xcalloc((size_t)rows, 1);
	vterm_set_size(p->vt, rows, cols);
	keep_cursor_inside(p);
	vtscreen_flush_damage(p->screen);
	if ((size_t)p->offset > p->sb_len)
		p->offset = (int)p->sb_len;
	if (p->cur_line >= vtpane_lines(p))
		p->cur_line = vtpane_lines(p) - 1;
	if (p->anchor_line >= vtpane_lines(p))
		p->anchor_line = vtpane_lines(p) - 1;
	if (p->match && p->match_line >= vtpane_lines(p))
		p->match = false;
	vtpane_touch(p);
}

void vtpane_key(struct vtpane *p, unsigned ch, bool is_key)
{
	const VTermModifier mod = VTERM_MOD_NONE;

	if (!is_key) {
		if (ch == '\r' || ch == '\n')
			vterm_keyboard_key(p->vt, VTERM_KEY_ENTER, mod);
		else if (ch == '\t')
			vterm_keyboard_key(p->vt, VTERM_KEY_TAB, mod);
		else if (ch == 0x7f || ch == 0x08)
			vterm_keyboard_key(p->vt, VTERM_KEY_BACKSPACE, mod);
		else if (ch == 0x1b)
			vterm_keyboard_key(p->vt, VTERM_KEY_ESCAPE, mod);
		else if (ch < 0x20) /* control characters go through as they are */
			on_output((const char[]){(char)ch}, 1, p);
		else
			vterm_keyboard_unichar(p->vt, ch, mod);
		return;
	}
	switch (ch) {
	case KEY_UP: vterm_keyboard_key(p->vt, VTERM_KEY_UP, mod); break;
	case KEY_DOWN: vterm_keyboard_key(p->vt, VTERM_KEY_DOWN, mod); break;
	case KEY_LEFT: vterm_keyboard_key(p->vt, VTERM_KEY_LEFT, mod); break;
	case KEY_RIGHT: vterm_keyboard_key(p->vt, VTERM_KEY_RIGHT, mod); break;
	case KEY_HOME: vterm_keyboard_key(p->vt, VTERM_KEY_HOME, mod); break;
	case KEY_END: vterm_keyboard_key(p->vt, VTERM_KEY_END, mod); break;
	case KEY_IC: vterm_keyboard_key(p->vt, VTERM_KEY_INS, mod); break;
	case KEY_DC: vterm_keyboard_key(p->vt, VTERM_KEY_DEL, mod); break;
	case KEY_PPAGE: vterm_keyboard_key(p->vt, VTERM_KEY_PAGEUP, mod); break;
	case KEY_NPAGE: vterm_keyboard_key(p->vt, VTERM_KEY_PAGEDOWN, mod); break;
	case KEY_BACKSPACE: vterm_keyboard_key(p->vt, VTERM_KEY_BACKSPACE, mod); break;
	case KEY_ENTER: vterm_keyboard_key(p->vt, VTERM_KEY_ENTER, mod); break;
	case KEY_BTAB: vterm_keyboard_key(p->vt, VTERM_KEY_TAB, VTERM_MOD_SHIFT); break;
	default:
		if (ch >= (unsigned)KEY_F(1) && ch <= (unsigned)KEY_F(12))
			vterm_keyboard_key(p->vt, VTERM_KEY_FUNCTION(ch - (unsigned)KEY_F(0)), mod);
		break;
	}
}

/* Wheel steps and page keys both land here: the view stops at the oldest
 * line and at the live screen, and only a real move asks for a draw. */
void vtpane_scroll(struct vtpane *p, int lines)
{
	long off = (long)p->offset + lines;

	if (off < 0)
		off = 0;
	if ((size_t)off > p->sb_len)
		off = (long)p->sb_len;
	if (off != p->offset) {
		p->offset = (int)off;
		vtpane_touch(p);
	}
}

void vtpane_scroll_reset(struct vtpane *p)
{
	vtpane_scroll(p, -p->offset);
}

int vtpane_scroll_offset(const struct vtpane *p)
{
	return p->offset;
}

size_t vtpane_scrollback_len(const struct vtpane *p)
{
	return p->sb_len;
}

long vtpane_lines(const struct vtpane *p)
{
	return (long)p->sb_len + p->rows;
}

int vtpane_line_cols(const struct vtpane *p, long line)
{
	if (line >= 0 && (size_t)line < p->sb_len)
		return sb_at(p, (size_t)line)->cols;
	return p->cols;
}

void vtpane_cell(const struct vtpane *p, long line, int col, VTermScreenCell *cell)
{
	if (line < 0 || line >= vtpane_lines(p) || col < 0) {
		blank_cell(cell);
	} else if ((size_t)line < p->sb_len) {
		line_cell(sb_at(p, (size_t)line), col, cell);
	} else if (col >= p->cols ||
		   !vtscreen_get_cell(p->screen, (VTermPos){(int)(line - (long)p->sb_len), col}, cell)) {
		blank_cell(cell);
	}
}

long vtpane_view_top(const struct vtpane *p)
{
	return (long)p->sb_len - p->offset;
}

void vtpane_show_line(struct vtpane *p, long line)
{
	long top = vtpane_view_top(p);

	if (line >= top && line < top + p->rows)
		return;
	top = line - p->rows / 2;
	if (top < 0)
		top = 0;
	if (top > (long)p->sb_len)
		top = (long)p->sb_len;
	p->offset = (int)((long)p->sb_len - top);
	vtpane_touch(p);
}

short vtpane_color_index(const VTermColor *c)
{
	int v = vtcolor_map(c, vtcolor_class_detect());

	return (short)(v > 32767 ? 32767 : v);
}

static bool in_selection(const struct vtpane *p, long line, int col, int width)
{
	long l0, l1;
	int c0, c1;

	if (!vtpane_selection_range(p, &l0, &c0, &l1, &c1))
		return false;
	if (line < l0 || line > l1)
		return false;
	if (p->sel == VTPANE_SELECT_LINES)
		return true;
	return (line > l0 || col + width - 1 >= c0) && (line < l1 || col <= c1);
}

/* What ncurses needs for one cell: its characters as wide characters (a
 * blank for what it could not show in the cell's width), attributes, pair. */
static void make_cchar(const struct vtpane *p, const VTermScreenCell *c, int width, bool hl,
		       cchar_t *cc, int *last_fg, int *last_bg, short *last_pair)
{
	wchar_t wc[CCHARW_MAX + 1];
	attr_t attr = A_NORMAL;
	short pair = 0;
	int n = 0;
	uint32_t ch = c->chars[0];

	if (ch == 0 || ch == (uint32_t)-1 || ch > 0x10ffff) {
		wc[n++] = L' ';
	} else if (ch >= 0x20 && ch < 0x7f) {
		wc[n++] = (wchar_t)ch;
	} else {
		int w = wcwidth((wchar_t)ch);
		if (w < 1 || w > width)
			wc[n++] = L' '; /* unprintable here, or wider than libvterm's cell */
		else
			wc[n++] = (wchar_t)ch;
	}
	for (int i = 1; i < VTERM_MAX_CHARS_PER_CELL && c->chars[i] && n < CCHARW_MAX && wc[0] != L' '; i++)
		if (c->chars[i] <= 0x10ffff && wcwidth((wchar_t)c->chars[i]) == 0)
			wc[n++] = (wchar_t)c->chars[i];
	wc[n] = L'\0';
	if (c->attrs.bold)
		attr |= A_BOLD;
	if (c->attrs.underline)
		attr |= A_UNDERLINE;
#ifdef A_ITALIC
	if (c->attrs.italic)
		attr |= A_ITALIC;
#endif
	if (c->attrs.blink)
		attr |= A_BLINK;
	if ((c->attrs.reverse != 0) != hl)
		attr |= A_REVERSE;
	if (p->cls != VTCOLOR_NONE) {
		int fg = vtcolor_map(&c->fg, p->cls), bg = vtcolor_map(&c->bg, p->cls);
		if (fg != *last_fg || bg != *last_bg) {
			*last_fg = fg;
			*last_bg = bg;
			*last_pair = vtcolor_pair(fg, bg);
		}
		pair = *last_pair;
	}
	if (setcchar(cc, wc, attr, pair, NULL) != OK)
		setcchar(cc, L" ", attr, pair, NULL);
}

static void draw_row(struct vtpane *p, WINDOW *w, int y0, int row, int maxx, int *last_fg,
		     int *last_bg, short *last_pair)
{
	long line = vtpane_view_top(p) + row;
	int cols = vtpane_line_cols(p, line), col = 0;

	if (cols > maxx)
		cols = maxx;
	while (col < cols) {
		VTermScreenCell c;
		cchar_t cc;
		int width;
		bool hl;

		vtpane_cell(p, line, col, &c);
		width = c.width == 2 && c.chars[0] != (uint32_t)-1 ? 2 : 1;
		if (col + width > cols)
			width = 1; /* a wide character cut by the edge: a blank */
		hl = in_selection(p, line, col, width) ||
		     (p->match && line == p->match_line && col + width > p->match_col && col < p->match_end);
		if (width == 1 && c.width == 2)
			c.chars[0] = ' ';
		make_cchar(p, &c, width, hl, &cc, last_fg, last_bg, last_pair);
		mvwadd_wch(w, y0 + row, col, &cc);
		col += width;
	}
	if (col < maxx) {
		wmove(w, y0 + row, col);
		wclrtoeol(w);
	}
}

static void place_cursor(struct vtpane *p, WINDOW *w, int y0, int maxy, int maxx)
{
	int row = -1, col = 0;

	if (p->copy)
		vtpane_copy_cursor(p, &row, &col);
	else if (p->offset == 0 && p->cursor_visible)
		row = p->cursor.row, col = p->cursor.col;
	if (row >= 0 && row < maxy && col < maxx) {
		wmove(w, y0 + row, col);
		curs_set(1);
	} else {
		curs_set(0);
	}
}

void vtpane_draw_at(struct vtpane *p, WINDOW *w, int y0)
{
	int maxy, maxx, last_fg = -2, last_bg = -2;
	short last_pair = 0;
	bool full = p->all_dirty;
	enum vtcolor_class cls = vtcolor_class_detect();

	getmaxyx(w, maxy, maxx);
	y0 = MAX(y0, 0);
	maxy = MAX(maxy - y0, 0);
	if (w != p->last_win || y0 != p->last_y0 || maxy != p->last_maxy || maxx != p->last_maxx ||
	    cls != p->cls)
		full = true;
	p->cls = cls;
	if (cls != VTCOLOR_NONE && (vtcolor_make_room() || vtcolor_generation() != p->color_gen))
		full = true;
	for (int row = 0; row < maxy; row++) {
		if (!full && !is_linetouched(w, y0 + row) && (row >= p->rows || !p->row_dirty[row]))
			continue;
		if (row < p->rows) {
			draw_row(p, w, y0, row, maxx, &last_fg, &last_bg, &last_pair);
		} else {
			wmove(w, y0 + row, 0);
			wclrtoeol(w);
		}
	}
	memset(p->row_dirty, 0, (size_t)p->rows);
	p->color_gen = vtcolor_generation();
	p->last_win = w;
	p->last_y0 = y0;
	p->last_maxy = maxy;
	p->last_maxx = maxx;
	p->all_dirty = false;
	p->dirty = false;
	place_cursor(p, w, y0, maxy, maxx);
	if (p->bell) {
		beep();
		p->bell = false;
	}
}

void vtpane_draw(struct vtpane *p, WINDOW *w)
{
	vtpane_draw_at(p, w, 0);
}

bool vtpane_dirty(const struct vtpane *p)
{
	return p->dirty || (p->cls != VTCOLOR_NONE && p->color_gen != vtcolor_generation());
}

const char *vtpane_title(const struct vtpane *p)
{
	return p->title;
}

enum vtpane_cursor vtpane_cursor_shape(const struct vtpane *p, bool *blink)
{
	if (blink)
		*blink = p->cursor_blink;
	switch (p->cursor_shape) {
	case VTERM_PROP_CURSORSHAPE_UNDERLINE: return VTPANE_CURSOR_UNDERLINE;
	case VTERM_PROP_CURSORSHAPE_BAR_LEFT: return VTPANE_CURSOR_BAR;
	default: return VTPANE_CURSOR_BLOCK;
	}
}

bool vtpane_altscreen(const struct vtpane *p)
{
	return p->altscreen;
}

size_t vtpane_line_bytes(int cols)
{
	return (size_t)(cols > 0 ? cols : 1) * VTERM_MAX_CHARS_PER_CELL * 4 + 1;
}

size_t vtpane_line_utf8(const struct vtpane *p, long line, int first, int last, char *buf,
			int *col_of)
{
	int cols = vtpane_line_cols(p, line);
	size_t n = 0, keep = 0;
	int keep_col = first;

	if (last >= cols)
		last = cols - 1;
	for (int col = first < 0 ? 0 : first; col <= last;) {
		VTermScreenCell c;
		mbstate_t st;
		size_t start = n;
		int width;

		vtpane_cell(p, line, col, &c);
		width = c.width == 2 && c.chars[0] != (uint32_t)-1 ? 2 : 1;
		memset(&st, 0, sizeof(st));
		if (c.chars[0] == 0 || c.chars[0] == (uint32_t)-1) {
			buf[n++] = ' ';
		} else {
			for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && c.chars[i]; i++) {
				size_t k = c.chars[i] <= 0x10ffff ? wcrtomb(buf + n, (wchar_t)c.chars[i], &st)
								 : (size_t)-1;
				if (k != (size_t)-1)
					n += k;
			}
			if (n == start)
				buf[n++] = '?';
		}
		if (col_of)
			for (size_t b = start; b < n; b++)
				col_of[b] = col;
		if (c.chars[0] != 0 && c.chars[0] != ' ' && c.chars[0] != (uint32_t)-1) {
			keep = n;
			keep_col = col + width;
		}
		col += width;
	}
	buf[keep] = '\0';
	if (col_of)
		col_of[keep] = keep_col;
	return keep;
}

size_t vtpane_row_text(const struct vtpane *p, int row, char *buf, size_t len)
{
	long line = vtpane_view_top(p) + row;
	int cols = vtpane_line_cols(p, line);
	size_t need = vtpane_line_bytes(cols), n;
	char *tmp;

	if (len == 0)
		return 0;
	if (row < 0 || row >= p->rows) {
		buf[0] = '\0';
		return 0;
	}
	tmp = xmalloc(need);
	n = vtpane_line_utf8(p, line, 0, cols - 1, tmp, NULL);
	if (n >= len) { /* cut at a character boundary */
		n = len - 1;
		while (n > 0 && ((unsigned char)tmp[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	free(tmp);
	return n;
}
