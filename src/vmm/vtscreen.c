/* A terminal screen on libvterm's state layer, rows kept by pointer (see
 * vtscreen.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/vmm/vtscreen.h"
#include "common/util.h"

/* A cell's look, kept in the form a VTermScreenCell carries it, so that
 * reading a cell copies it whole. */
struct pen {
	VTermColor fg, bg;
	VTermScreenCellAttrs attrs; /* reverse before the screen's global reverse */
	bool protected_cell;
};

struct cell {
	uint32_t chars[VTERM_MAX_CHARS_PER_CELL];
	struct pen pen;
};

/* One screen's cells: one block, and the rows in display order as pointers
 * into it. A scroll permutes the pointers. */
struct buffer {
	struct cell *block;
	struct cell **row;
};

struct vtscreen {
	VTerm *vt;
	VTermState *state;
	const VTermScreenCallbacks *cb;
	void *user;
	int rows, cols;
	int state_rows; /* rows the state has line info for (ahead of rows in a resize) */
	bool global_reverse;
	struct buffer buf[2]; /* main, alternate (block NULL until enabled) */
	int cur;
	struct pen pen;
	VTermScreenCell *sb_row; /* one row of cells for the scrollback callbacks */
	uint8_t *damaged;	 /* per row */
	bool any_damage;
};

static struct cell *cellp(const struct vtscreen *s, int row, int col)
{
	if (row < 0 || row >= s->rows || col < 0 || col >= s->cols)
		return NULL;
	return &s->buf[s->cur].row[row][col];
}

static void damage_rows(struct vtscreen *s, int start, int end)
{
	if (start < 0)
		start = 0;
	if (end > s->rows)
		end = s->rows;
	if (start >= end)
		return;
	memset(s->damaged + start, 1, (size_t)(end - start));
	s->any_damage = true;
}

/* Clips r to the screen; false when nothing is left. */
static bool clip(const struct vtscreen *s, VTermRect *r)
{
	if (r->start_row < 0)
		r->start_row = 0;
	if (r->start_col < 0)
		r->start_col = 0;
	if (r->end_row > s->rows)
		r->end_row = s->rows;
	if (r->end_col > s->cols)
		r->end_col = s->cols;
	return r->start_row < r->end_row && r->start_col < r->end_col;
}

/* An erased cell: no character, the pen's colours (xterm's background
 * colour erase), no other attribute; the line's double width or height. */
static struct cell blank_for(const struct vtscreen *s, int row)
{
	struct cell c = {.pen = {.fg = s->pen.fg, .bg = s->pen.bg}};

	if (row >= 0 && row < s->state_rows) {
		const VTermLineInfo *info = vterm_state_get_lineinfo(s->state, row);
		c.pen.attrs.dwl = info->doublewidth;
		c.pen.attrs.dhl = info->doubleheight;
	}
	return c;
}

static void blank(const struct vtscreen *s, struct cell *c, int row)
{
	*c = blank_for(s, row);
}

static void blank_row(const struct vtscreen *s, int row, int start_col, int end_col)
{
	struct cell *r = s->buf[s->cur].row[row];
	const struct cell b = blank_for(s, row);

	for (int col = start_col; col < end_col; col++)
		r[col] = b;
}

static void alloc_buffer(struct buffer *b, int rows, int cols)
{
	b->block = xcalloc((size_t)rows * (size_t)cols, sizeof(*b->block));
	b->row = xcalloc((size_t)rows, sizeof(*b->row));
	for (int r = 0; r < rows; r++)
		b->row[r] = b->block + (size_t)r * (size_t)cols;
}

static void free_buffer(struct buffer *b)
{
	free(b->block);
	free(b->row);
	b->block = NULL;
	b->row = NULL;
}

/* A new rows x cols buffer with the old one's top-left corner in it, the
 * rest blank in the current pen (as libvterm's screen fills it). */
static void resize_buffer(struct vtscreen *s, struct buffer *b, int rows, int cols)
{
	struct buffer nb;

	alloc_buffer(&nb, rows, cols);
	for (int r = 0; r < rows; r++) {
		for (int c = 0; c < cols; c++) {
			struct cell *d = &nb.row[r][c];

			if (r < s->rows && c < s->cols) {
				*d = b->row[r][c];
			} else {
				d->chars[0] = 0;
				d->pen = s->pen;
			}
		}
		/* A wide character cut in half by the new right edge. */
		if (cols < s->cols && r < s->rows && b->row[r][cols].chars[0] == (uint32_t)-1)
			blank(s, &nb.row[r][cols - 1], r);
	}
	free_buffer(b);
	*b = nb;
}

/* A cell as a VTermScreenCell; next is the cell to its right (NULL at the
 * row's end), which says whether it is wide. */
static void cell_out(const struct vtscreen *s, const struct cell *c, const struct cell *next,
		     VTermScreenCell *cell)
{
	/* Characters after the first 0 (or after the -1 of a wide character's
	 * second half) are 0 in every cell: each writer clears them. */
	memcpy(cell->chars, c->chars, sizeof(cell->chars));
	cell->attrs = c->pen.attrs;
	cell->attrs.reverse ^= s->global_reverse;
	cell->fg = c->pen.fg;
	cell->bg = c->pen.bg;
	cell->width = next && next->chars[0] == (uint32_t)-1 && c->chars[0] != (uint32_t)-1 ? 2 : 1;
}

int vtscreen_get_cell(const struct vtscreen *s, VTermPos pos, VTermScreenCell *cell)
{
	const struct cell *c = cellp(s, pos.row, pos.col);

	if (c == NULL)
		return 0;
	cell_out(s, c, pos.col + 1 < s->cols ? c + 1 : NULL, cell);
	return 1;
}

int vtscreen_get_cell_of(const struct vtscreen *s, int alt, VTermPos pos, VTermScreenCell *cell)
{
	const struct buffer *b = &s->buf[alt ? 1 : 0];
	const struct cell *c;

	if (b->block == NULL || pos.row < 0 || pos.row >= s->rows || pos.col < 0 || pos.col >= s->cols)
		return 0;
	c = &b->row[pos.row][pos.col];
	cell_out(s, c, pos.col + 1 < s->cols ? c + 1 : NULL, cell);
	return 1;
}

bool vtscreen_alt_shown(const struct vtscreen *s)
{
	return s->cur == 1;
}

/* The reverse of vtscreen_get_cell, for lines coming back from the
 * scrollback. */
static void set_cell(struct vtscreen *s, VTermPos pos, const VTermScreenCell *cell)
{
	struct cell *c = cellp(s, pos.row, pos.col);
	struct cell *next;

	if (c == NULL)
		return;
	for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL; i++) {
		c->chars[i] = cell->chars[i];
		if (cell->chars[i] == 0 || cell->chars[0] == (uint32_t)-1)
			break;
	}
	for (int i = 1; i < VTERM_MAX_CHARS_PER_CELL; i++)
		if (c->chars[i - 1] == 0 || c->chars[i - 1] == (uint32_t)-1)
			c->chars[i] = 0;
	c->pen = (struct pen){.fg = cell->fg, .bg = cell->bg};
	c->pen.attrs = cell->attrs;
	c->pen.attrs.reverse ^= s->global_reverse;
	c->pen.attrs.dwl = 0; /* the line's, not the line's it came from */
	c->pen.attrs.dhl = 0;
	next = cellp(s, pos.row, pos.col + 1);
	if (cell->width == 2 && next) {
		memset(next->chars, 0, sizeof(next->chars));
		next->chars[0] = (uint32_t)-1;
	}
}

static void push_rows(struct vtscreen *s, int n)
{
	if (s->cur != 0 || s->cb == NULL || s->cb->sb_pushline == NULL)
		return;
	for (int row = 0; row < n; row++) {
		const struct cell *r = s->buf[s->cur].row[row];

		for (int col = 0; col < s->cols; col++)
			cell_out(s, &r[col], col + 1 < s->cols ? &r[col + 1] : NULL, &s->sb_row[col]);
		s->cb->sb_pushline(s->cols, s->sb_row, s->user);
	}
}

static void reverse_rows(struct cell **row, int a, int b) /* [a, b) */
{
	for (b--; a < b; a++, b--) {
		struct cell *t = row[a];
		row[a] = row[b];
		row[b] = t;
	}
}

/* Whole rows start..end-1 move up by n (n < 0: down), the uncovered ones
 * blank; pointers only. */
static void scroll_rows(struct vtscreen *s, int start, int end, int n)
{
	struct cell **row = s->buf[s->cur].row;
	int height = end - start, k = n < 0 ? -n : n;

	if (k >= height) {
		for (int r = start; r < end; r++)
			blank_row(s, r, 0, s->cols);
	} else {
		int split = n > 0 ? start + k : end - k;

		/* A rotation: reverse both parts, then the whole. */
		reverse_rows(row, start, split);
		reverse_rows(row, split, end);
		reverse_rows(row, start, end);
		if (n > 0)
			for (int r = end - k; r < end; r++)
				blank_row(s, r, 0, s->cols);
		else
			for (int r = start; r < start + k; r++)
				blank_row(s, r, 0, s->cols);
	}
	damage_rows(s, start, end);
}

static int on_scrollrect(VTermRect rect, int downward, int rightward, void *user)
{
	struct vtscreen *s = user;

	if (rightward != 0 || rect.start_col != 0 || rect.end_col != s->cols)
		return 0; /* libvterm moves and erases the cells (on_moverect, on_erase) */
	if (!clip(s, &rect) || downward == 0)
		return 1;
	/* Rows leaving the top of a region that starts at the top of the main
	 * screen go to the scrollback, as in libvterm's screen; a scroll by the
	 * region's whole height only erases it, as there. */
	if (downward > 0 && rect.start_row == 0 && downward < rect.end_row)
		push_rows(s, downward);
	scroll_rows(s, rect.start_row, rect.end_row, downward);
	return 1;
}

static int on_moverect(VTermRect dest, VTermRect src, void *user)
{
	struct vtscreen *s = user;
	int dy = src.start_row - dest.start_row, dx = src.start_col - dest.start_col;
	VTermRect d = dest;

	/* Keep the part of dest whose source is on the screen too. */
	if (!clip(s, &d))
		return 1;
	if (d.start_row + dy < 0)
		d.start_row = -dy;
	if (d.end_row + dy > s->rows)
		d.end_row = s->rows - dy;
	if (d.start_col + dx < 0)
		d.start_col = -dx;
	if (d.end_col + dx > s->cols)
		d.end_col = s->cols - dx;
	if (d.start_row >= d.end_row || d.start_col >= d.end_col)
		return 1;
	{
		struct cell **row = s->buf[s->cur].row;
		size_t bytes = (size_t)(d.end_col - d.start_col) * sizeof(struct cell);

		if (dy > 0)
			for (int r = d.start_row; r < d.end_row; r++)
				memmove(&row[r][d.start_col], &row[r + dy][d.start_col + dx], bytes);
		else
			for (int r = d.end_row - 1; r >= d.start_row; r--)
				memmove(&row[r][d.start_col], &row[r + dy][d.start_col + dx], bytes);
	}
	damage_rows(s, d.start_row, d.end_row);
	return 1;
}

static int on_erase(VTermRect rect, int selective, void *user)
{
	struct vtscreen *s = user;

	if (!clip(s, &rect))
		return 1;
	for (int r = rect.start_row; r < rect.end_row; r++) {
		struct cell *row = s->buf[s->cur].row[r];
		const struct cell b = blank_for(s, r);

		for (int c = rect.start_col; c < rect.end_col; c++)
			if (!selective || !row[c].pen.protected_cell)
				row[c] = b;
	}
	damage_rows(s, rect.start_row, rect.end_row);
	return 1;
}

static int on_putglyph(VTermGlyphInfo *info, VTermPos pos, void *user)
{
	struct vtscreen *s = user;
	struct cell *c = cellp(s, pos.row, pos.col);
	int i;

	if (c == NULL)
		return 1;
	for (i = 0; i < VTERM_MAX_CHARS_PER_CELL && info->chars[i]; i++)
		c->chars[i] = info->chars[i];
	for (; i < VTERM_MAX_CHARS_PER_CELL; i++)
		c->chars[i] = 0; /* so that a cell's characters are read whole */
	c->pen = s->pen;
	c->pen.protected_cell = info->protected_cell;
	c->pen.attrs.dwl = info->dwl;
	c->pen.attrs.dhl = info->dhl;
	for (int k = 1; k < info->width; k++) {
		struct cell *n = cellp(s, pos.row, pos.col + k);

		if (n == NULL)
			break;
		memset(n->chars, 0, sizeof(n->chars));
		n->chars[0] = (uint32_t)-1;
		n->pen = c->pen;
	}
	s->damaged[pos.row] = 1;
	s->any_damage = true;
	return 1;
}

static int on_movecursor(VTermPos pos, VTermPos oldpos, int visible, void *user)
{
	struct vtscreen *s = user;

	if (s->cb && s->cb->movecursor)
		return s->cb->movecursor(pos, oldpos, visible, s->user);
	return 0;
}

static int on_setpenattr(VTermAttr attr, VTermValue *val, void *user)
{
	struct vtscreen *s = user;

	switch (attr) {
	case VTERM_ATTR_BOLD: s->pen.attrs.bold = val->boolean != 0; return 1;
	case VTERM_ATTR_UNDERLINE: s->pen.attrs.underline = (unsigned)val->number & 3; return 1;
	case VTERM_ATTR_ITALIC: s->pen.attrs.italic = val->boolean != 0; return 1;
	case VTERM_ATTR_BLINK: s->pen.attrs.blink = val->boolean != 0; return 1;
	case VTERM_ATTR_REVERSE: s->pen.attrs.reverse = val->boolean != 0; return 1;
	case VTERM_ATTR_STRIKE: s->pen.attrs.strike = val->boolean != 0; return 1;
	case VTERM_ATTR_FONT: s->pen.attrs.font = (unsigned)val->number & 15; return 1;
	case VTERM_ATTR_FOREGROUND: s->pen.fg = val->color; return 1;
	case VTERM_ATTR_BACKGROUND: s->pen.bg = val->color; return 1;
	default: return 0;
	}
}

static int on_settermprop(VTermProp prop, VTermValue *val, void *user)
{
	struct vtscreen *s = user;

	switch (prop) {
	case VTERM_PROP_ALTSCREEN:
		if (val->boolean && s->buf[1].block == NULL)
			return 0; /* no alternate screen: the state stays on the main one */
		s->cur = val->boolean ? 1 : 0;
		damage_rows(s, 0, s->rows);
		break;
	case VTERM_PROP_REVERSE:
		s->global_reverse = val->boolean != 0;
		damage_rows(s, 0, s->rows);
		break;
	default: break;
	}
	if (s->cb && s->cb->settermprop)
		return s->cb->settermprop(prop, val, s->user);
	return 1;
}

static int on_bell(void *user)
{
	struct vtscreen *s = user;

	if (s->cb && s->cb->bell)
		return s->cb->bell(s->user);
	return 0;
}

static bool row_is_blank(const struct vtscreen *s, int row)
{
	for (int c = 0; c < s->cols; c++)
		if (s->buf[s->cur].row[row][c].chars[0] != 0)
			return false;
	return true;
}

static int on_resize(int new_rows, int new_cols, VTermPos *delta, void *user)
{
	struct vtscreen *s = user;
	bool alt = s->cur == 1;
	int old_rows = s->rows;

	s->state_rows = new_rows;
	if (!alt && new_rows < old_rows) {
		/* Fewer rows: the blank rows below the cursor go first; if that is
		 * not enough, the top rows go to the scrollback, but never the
		 * cursor's own row (libvterm 0.1.4 moved the cursor above the
		 * screen there). */
		VTermPos cursor;
		int last = old_rows - 1, k;

		vterm_state_get_cursorpos(s->state, &cursor);
		while (last >= new_rows && last != cursor.row && row_is_blank(s, last))
			last--;
		k = last + 1 - new_rows;
		if (k > cursor.row)
			k = cursor.row > 0 ? cursor.row : 0;
		if (k > 0) {
			push_rows(s, k);
			scroll_rows(s, 0, old_rows, k);
			delta->row -= k;
		}
	}
	resize_buffer(s, &s->buf[0], new_rows, new_cols);
	if (s->buf[1].block)
		resize_buffer(s, &s->buf[1], new_rows, new_cols);
	s->rows = new_rows;
	s->cols = new_cols;
	free(s->sb_row);
	s->sb_row = xcalloc((size_t)new_cols, sizeof(*s->sb_row));
	free(s->damaged);
	s->damaged = xcalloc((size_t)new_rows, 1);
	damage_rows(s, 0, new_rows);

	if (!alt && new_rows > old_rows && s->cb && s->cb->sb_popline) {
		/* More rows: lines come back from the scrollback above. */
		for (int n = new_rows - old_rows; n > 0; n--) {
			memset(s->sb_row, 0, (size_t)new_cols * sizeof(*s->sb_row));
			if (!s->cb->sb_popline(new_cols, s->sb_row, s->user))
				break;
			scroll_rows(s, 0, new_rows, -1);
			for (int col = 0; col < new_cols; col++)
				set_cell(s, (VTermPos){0, col}, &s->sb_row[col]);
			delta->row++;
		}
	}
	if (s->cb && s->cb->resize)
		return s->cb->resize(new_rows, new_cols, s->user);
	return 1;
}

static int on_setlineinfo(int row, const VTermLineInfo *newinfo, const VTermLineInfo *oldinfo,
			  void *user)
{
	struct vtscreen *s = user;

	if (row < 0 || row >= s->rows)
		return 1;
	if (newinfo->doublewidth != oldinfo->doublewidth ||
	    newinfo->doubleheight != oldinfo->doubleheight) {
		struct cell *r = s->buf[s->cur].row[row];

		for (int c = 0; c < s->cols; c++) {
			r[c].pen.attrs.dwl = newinfo->doublewidth;
			r[c].pen.attrs.dhl = newinfo->doubleheight;
		}
		if (newinfo->doublewidth)
			blank_row(s, row, s->cols / 2, s->cols); /* the right half is not shown */
		damage_rows(s, row, row + 1);
	}
	return 1;
}

static const VTermStateCallbacks state_cbs = {
	.putglyph = on_putglyph,
	.movecursor = on_movecursor,
	.scrollrect = on_scrollrect,
	.moverect = on_moverect,
	.erase = on_erase,
	.setpenattr = on_setpenattr,
	.settermprop = on_settermprop,
	.bell = on_bell,
	.resize = on_resize,
	.setlineinfo = on_setlineinfo,
};

struct vtscreen *vtscreen_new(VTerm *vt)
{
	struct vtscreen *s = xcalloc(1, sizeof(*s));
	int rows, cols;

	vterm_get_size(vt, &rows, &cols);
	s->vt = vt;
	s->state = vterm_obtain_state(vt);
	s->rows = rows;
	s->cols = cols;
	s->state_rows = rows;
	s->pen.fg.type = VTERM_COLOR_DEFAULT_FG;
	s->pen.bg.type = VTERM_COLOR_DEFAULT_BG;
	alloc_buffer(&s->buf[0], rows, cols);
	for (int r = 0; r < rows; r++)
		blank_row(s, r, 0, cols);
	s->sb_row = xcalloc((size_t)cols, sizeof(*s->sb_row));
	s->damaged = xcalloc((size_t)rows, 1);
	vterm_state_set_callbacks(s->state, &state_cbs, s);
	return s;
}

void vtscreen_free(struct vtscreen *s)
{
	if (s == NULL)
		return;
	vterm_state_set_callbacks(s->state, NULL, NULL);
	free_buffer(&s->buf[0]);
	free_buffer(&s->buf[1]);
	free(s->sb_row);
	free(s->damaged);
	free(s);
}

void vtscreen_set_callbacks(struct vtscreen *s, const VTermScreenCallbacks *cb, void *user)
{
	s->cb = cb;
	s->user = user;
}

void vtscreen_enable_altscreen(struct vtscreen *s, int enable)
{
	if (enable && s->buf[1].block == NULL) {
		alloc_buffer(&s->buf[1], s->rows, s->cols);
		for (int r = 0; r < s->rows; r++)
			for (int c = 0; c < s->cols; c++)
				blank(s, &s->buf[1].row[r][c], r);
	}
}

void vtscreen_reset(struct vtscreen *s, int hard)
{
	vterm_state_reset(s->state, hard);
	vtscreen_flush_damage(s);
}

void vtscreen_flush_damage(struct vtscreen *s)
{
	int r = 0;

	if (!s->any_damage)
		return;
	s->any_damage = false;
	while (r < s->rows) {
		int start;

		if (!s->damaged[r]) {
			r++;
			continue;
		}
		start = r;
		while (r < s->rows && s->damaged[r])
			s->damaged[r++] = 0;
		if (s->cb && s->cb->damage)
			s->cb->damage((VTermRect){.start_row = start, .end_row = r, .start_col = 0,
						  .end_col = s->cols},
				      s->user);
	}
}
