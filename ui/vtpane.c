#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui/vtpane.h"
#include "common/util.h"

struct sb_line {
	int cols;
	VTermScreenCell *cells;
};

struct vtpane {
	VTerm *vt;
	VTermScreen *screen;
	int rows, cols;
	/* Scrollback ring: lines pushed off the top, oldest first. */
	struct sb_line *sb;
	size_t sb_cap, sb_len, sb_head; /* head: index of the oldest line */
	int offset;                     /* rows scrolled back from the live view */
	VTermPos cursor;
	bool cursor_visible;
	bool dirty;
	char title[128];
	vtpane_output_fn out;
	void *ctx;
};

static struct sb_line *sb_at(struct vtpane *p, size_t i) /* 0 = oldest */
{
	return &p->sb[(p->sb_head + i) % p->sb_cap];
}

static int on_damage(VTermRect rect, void *user)
{
	((struct vtpane *)user)->dirty = true;
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
		size_t n = strlen(val->string);
		if (n >= sizeof(p->title))
			n = sizeof(p->title) - 1;
		memcpy(p->title, val->string, n);
		p->title[n] = '\0';
		break;
	}
	case VTERM_PROP_CURSORVISIBLE:
		p->cursor_visible = val->boolean != 0;
		break;
	default:
		break;
	}
	p->dirty = true;
	return 1;
}

static int on_bell(void *user)
{
	beep();
	return 1;
}

/* libvterm reuses the cells it hands over, so the line is copied. */
static int on_sb_pushline(int cols, const VTermScreenCell *cells, void *user)
{
	struct vtpane *p = user;
	struct sb_line *l;

	if (p->sb_cap == 0)
		return 1;
	if (p->sb_len == p->sb_cap) {
		l = sb_at(p, 0);
		p->sb_head = (p->sb_head + 1) % p->sb_cap;
		p->sb_len--;
	} else {
		l = sb_at(p, p->sb_len);
		l->cells = NULL;
	}
	free(l->cells);
	l->cells = xcalloc((size_t)cols, sizeof(*cells));
	memcpy(l->cells, cells, (size_t)cols * sizeof(*cells));
	l->cols = cols;
	p->sb_len++;
	if (p->offset > 0 && (size_t)p->offset < p->sb_len)
		p->offset++; /* keep the view on the same lines while reading back */
	return 1;
}

static int on_sb_popline(int cols, VTermScreenCell *cells, void *user)
{
	struct vtpane *p = user;
	struct sb_line *l;

	if (p->sb_len == 0)
		return 0;
	l = sb_at(p, p->sb_len - 1);
	for (int i = 0; i < cols; i++) {
		if (i < l->cols) {
			cells[i] = l->cells[i];
		} else {
			memset(&cells[i], 0, sizeof(cells[i]));
			cells[i].width = 1;
		}
	}
	free(l->cells);
	l->cells = NULL;
	p->sb_len--;
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

struct vtpane *vtpane_new(int rows, int cols, size_t scrollback_lines, vtpane_output_fn out,
			  void *ctx)
{
	struct vtpane *p = xcalloc(1, sizeof(*p));

	p->rows = rows < 1 ? 1 : rows;
	p->cols = cols < 1 ? 1 : cols;
	p->vt = vterm_new(p->rows, p->cols);
	vterm_set_utf8(p->vt, 1);
	p->screen = vterm_obtain_screen(p->vt);
	vterm_screen_set_callbacks(p->screen, &callbacks, p);
	vterm_screen_set_damage_merge(p->screen, VTERM_DAMAGE_SCROLL);
	vterm_screen_enable_altscreen(p->screen, 1);
	vterm_screen_reset(p->screen, 1);
	vterm_output_set_callback(p->vt, on_output, p);
	p->sb_cap = scrollback_lines;
	p->sb = scrollback_lines ? xcalloc(scrollback_lines, sizeof(*p->sb)) : NULL;
	p->cursor_visible = true;
	p->out = out;
	p->ctx = ctx;
	p->dirty = true;
	return p;
}

void vtpane_free(struct vtpane *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->sb_len; i++)
		free(sb_at(p, i)->cells);
	free(p->sb);
	vterm_free(p->vt);
	free(p);
}

void vtpane_feed(struct vtpane *p, const char *bytes, size_t len)
{
	vterm_input_write(p->vt, bytes, len);
	vterm_screen_flush_damage(p->screen);
}

void vtpane_resize(struct vtpane *p, int rows, int cols)
{
	if (rows < 1 || cols < 1 || (rows == p->rows && cols == p->cols))
		return;
	p->rows = rows;
	p->cols = cols;
	vterm_set_size(p->vt, rows, cols);
	vterm_screen_flush_damage(p->screen);
	p->dirty = true;
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

void vtpane_scroll(struct vtpane *p, int lines)
{
	long off = (long)p->offset + lines;

	if (off < 0)
		off = 0;
	if ((size_t)off > p->sb_len)
		off = (long)p->sb_len;
	if (off != p->offset) {
		p->offset = (int)off;
		p->dirty = true;
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

/* The cell shown at a visible row, taking the scrollback view into account. */
static bool cell_at(const struct vtpane *p, int row, int col, VTermScreenCell *cell)
{
	int live_row = row - p->offset;

	if (live_row >= 0) {
		return vterm_screen_get_cell(p->screen, (VTermPos){live_row, col}, cell) != 0;
	} else {
		size_t idx = p->sb_len + (size_t)live_row; /* live_row < 0 */
		const struct sb_line *l = &p->sb[(p->sb_head + idx) % p->sb_cap];
		if (col >= l->cols) {
			memset(cell, 0, sizeof(*cell));
			cell->width = 1;
			vterm_color_indexed(&cell->fg, 7);
			cell->fg.type |= VTERM_COLOR_DEFAULT_FG;
			cell->bg.type = VTERM_COLOR_DEFAULT_BG;
			return true;
		}
		*cell = l->cells[col];
		return true;
	}
}

/* Nearest xterm-256 palette entry for an RGB colour. */
static short rgb_to_256(uint8_t r, uint8_t g, uint8_t b)
{
	int ri = (r * 5 + 127) / 255, gi = (g * 5 + 127) / 255, bi = (b * 5 + 127) / 255;

	if (r == g && g == b) {
		if (r < 8)
			return 16;
		if (r > 248)
			return 231;
		return (short)(232 + (r - 8) * 24 / 247);
	}
	return (short)(16 + 36 * ri + 6 * gi + bi);
}

short vtpane_color_index(const VTermColor *c)
{
	short idx;

	if (VTERM_COLOR_IS_DEFAULT_FG(c) || VTERM_COLOR_IS_DEFAULT_BG(c))
		return -1;
	if (VTERM_COLOR_IS_INDEXED(c))
		idx = c->indexed.idx;
	else
		idx = rgb_to_256(c->rgb.red, c->rgb.green, c->rgb.blue);
	if (COLORS >= 256 || idx < COLORS)
		return idx;
	if (idx < 16)
		return (short)(idx % 8);
	return 7;
}

/* ncurses colour pairs handed out on first use; pair 0 is the default. */
static short pair_for(short fg, short bg)
{
	static short fgs[1024], bgs[1024];
	static int used;

	if (fg == -1 && bg == -1)
		return 0;
	for (int i = 0; i < used; i++)
		if (fgs[i] == fg && bgs[i] == bg)
			return (short)(i + 1);
	if (used + 1 >= COLOR_PAIRS || used >= (int)ARRAY_SIZE(fgs))
		return 0;
	fgs[used] = fg;
	bgs[used] = bg;
	init_pair((short)(used + 1), fg, bg);
	return (short)(++used);
}

static void draw_cell(WINDOW *w, int row, int col, const VTermScreenCell *cell)
{
	wchar_t wc[VTERM_MAX_CHARS_PER_CELL + 1];
	attr_t attr = A_NORMAL;
	cchar_t cc;
	short pair = 0;
	int n = 0;

	for (; n < VTERM_MAX_CHARS_PER_CELL && cell->chars[n]; n++)
		wc[n] = (wchar_t)cell->chars[n];
	if (n == 0)
		wc[n++] = L' ';
	wc[n] = L'\0';
	if (cell->attrs.bold)
		attr |= A_BOLD;
	if (cell->attrs.underline)
		attr |= A_UNDERLINE;
	if (cell->attrs.italic)
		attr |= A_ITALIC;
	if (cell->attrs.blink)
		attr |= A_BLINK;
	if (cell->attrs.reverse)
		attr |= A_REVERSE;
	if (has_colors())
		pair = pair_for(vtpane_color_index(&cell->fg), vtpane_color_index(&cell->bg));
	if (setcchar(&cc, wc, attr, pair, NULL) == OK)
		mvwadd_wch(w, row, col, &cc);
}

void vtpane_draw(struct vtpane *p, WINDOW *w)
{
	int maxy, maxx;

	getmaxyx(w, maxy, maxx);
	for (int row = 0; row < p->rows && row < maxy; row++) {
		for (int col = 0; col < p->cols && col < maxx;) {
			VTermScreenCell cell;
			if (!cell_at(p, row, col, &cell)) {
				col++;
				continue;
			}
			draw_cell(w, row, col, &cell);
			col += cell.width > 1 ? cell.width : 1;
		}
	}
	if (p->offset == 0 && p->cursor_visible && p->cursor.row < maxy && p->cursor.col < maxx) {
		wmove(w, p->cursor.row, p->cursor.col);
		curs_set(1);
	} else {
		curs_set(0);
	}
	p->dirty = false;
}

bool vtpane_dirty(const struct vtpane *p)
{
	return p->dirty;
}

const char *vtpane_title(const struct vtpane *p)
{
	return p->title;
}

size_t vtpane_row_text(const struct vtpane *p, int row, char *buf, size_t len)
{
	size_t n = 0, keep = 0;

	if (len == 0)
		return 0;
	for (int col = 0; col < p->cols;) {
		VTermScreenCell cell;
		char u[8 * VTERM_MAX_CHARS_PER_CELL];
		size_t ulen = 0;
		mbstate_t st;

		if (!cell_at(p, row, col, &cell))
			break;
		memset(&st, 0, sizeof(st));
		if (cell.chars[0] == 0) {
			u[ulen++] = ' ';
		} else {
			for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i]; i++) {
				size_t k = wcrtomb(u + ulen, (wchar_t)cell.chars[i], &st);
				if (k != (size_t)-1)
					ulen += k;
			}
		}
		if (n + ulen >= len)
			break;
		memcpy(buf + n, u, ulen);
		n += ulen;
		if (cell.chars[0] != 0 && cell.chars[0] != ' ')
			keep = n;
		col += cell.width > 1 ? cell.width : 1;
	}
	buf[keep] = '\0';
	return keep;
}
