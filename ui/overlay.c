/* Overlays (ui/overlay.h): forms, confirmations, pickers and messages drawn
 * over the views by the event loop. Each is a state and a callback; nothing
 * here waits for a key. Overlays opened while one is shown wait behind it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/app-int.h"
#include "common/util.h"

#define KEY_ESC 27
#define BOX_MAX_COLS 76

enum overlay_kind { OV_FORM, OV_CONFIRM, OV_MESSAGE, OV_PICK };

struct overlay {
	enum overlay_kind kind;
	char title[96];
	char *text; /* message, question */
	char yes_key[96];
	struct overlay_field *f;
	size_t n, cur;
	bool fresh; /* typing into a field just entered replaces its value */
	char msg[256];
	char **items;
	overlay_validate_fn validate;
	overlay_form_done_fn form_done;
	overlay_confirm_fn confirm_done;
	overlay_pick_fn pick_done;
	void *ctx;
	WINDOW *w;
	struct overlay *next;
};

static void push(struct app *a, struct overlay *o)
{
	struct overlay **pp = &a->ov;

	while (*pp)
		pp = &(*pp)->next;
	*pp = o;
	a->all_dirty = true;
}

static void overlay_free(struct overlay *o)
{
	if (o->w)
		delwin(o->w);
	free(o->text);
	free(o->f);
	for (size_t i = 0; o->items && o->items[i]; i++)
		free(o->items[i]);
	free(o->items);
	free(o);
}

/* Takes the shown overlay off the screen; the caller runs its callback, then
 * frees it. */
static struct overlay *pop(struct app *a)
{
	struct overlay *o = a->ov;

	a->ov = o->next;
	a->all_dirty = true;
	return o;
}

void overlay_free_all(struct app *a)
{
	while (a->ov)
		overlay_free(pop(a));
}

bool overlay_active(const struct app *a)
{
	return a->ov != NULL;
}

void overlay_form(struct app *a, const char *title, const struct overlay_field *f, size_t n,
		  overlay_validate_fn validate, overlay_form_done_fn done, void *ctx)
{
	struct overlay *o = xcalloc(1, sizeof(*o));

	o->kind = OV_FORM;
	snprintf(o->title, sizeof(o->title), "%s", title);
	o->f = xcalloc(n, sizeof(*f));
	memcpy(o->f, f, n * sizeof(*f));
	o->n = n;
	o->fresh = true;
	o->validate = validate;
	o->form_done = done;
	o->ctx = ctx;
	push(a, o);
}

void overlay_confirm(struct app *a, const char *question, const char *yes_key,
		     overlay_confirm_fn done, void *ctx)
{
	struct overlay *o = xcalloc(1, sizeof(*o));

	o->kind = OV_CONFIRM;
	snprintf(o->title, sizeof(o->title), "Confirm");
	o->text = xstrdup(question);
	snprintf(o->yes_key, sizeof(o->yes_key), "%s", yes_key);
	/* A word to type is typed into a field. */
	if (strlen(yes_key) > 1) {
		o->f = xcalloc(1, sizeof(*o->f));
		o->f->label = "Name";
		o->n = 1;
	}
	o->confirm_done = done;
	o->ctx = ctx;
	push(a, o);
}

void overlay_message(struct app *a, const char *title, const char *text)
{
	struct overlay *o = xcalloc(1, sizeof(*o));

	o->kind = OV_MESSAGE;
	snprintf(o->title, sizeof(o->title), "%s", title);
	o->text = xstrdup(text);
	push(a, o);
}

void overlay_pick(struct app *a, const char *title, const char *const *items, size_t n,
		  overlay_pick_fn done, void *ctx)
{
	struct overlay *o = xcalloc(1, sizeof(*o));

	o->kind = OV_PICK;
	snprintf(o->title, sizeof(o->title), "%s", title);
	o->items = xcalloc(n + 1, sizeof(*o->items));
	for (size_t i = 0; i < n; i++)
		o->items[i] = xstrdup(items[i]);
	o->n = n;
	o->pick_done = done;
	o->ctx = ctx;
	push(a, o);
}

/* Word-wraps text to width columns; calls line() for each line (NULL: only
 * counts). Returns the number of lines. */
static int wrap(const char *text, int width, void (*line)(void *, int, const char *, int),
		void *ctx)
{
	int n = 0;

	if (width < 1)
		width = 1;
	while (*text) {
		const char *nl = strchr(text, '\n');
		int len = nl ? (int)(nl - text) : (int)strlen(text);
		int take = len;
		if (take > width) {
			take = width;
			/* Break at the last blank that fits. */
			for (int i = width; i > 0; i--)
				if (text[i] == ' ') {
					take = i;
					break;
				}
		}
		if (line)
			line(ctx, n, text, take);
		n++;
		text += take;
		if (take == len && nl)
			text++;
		else
			while (*text == ' ')
				text++;
	}
	return n;
}

struct wrap_at {
	WINDOW *w;
	int y, x, max_y;
};

static void wrap_line(void *ctx, int i, const char *s, int len)
{
	struct wrap_at *at = ctx;

	if (at->y + i < at->max_y)
		mvwaddnstr(at->w, at->y + i, at->x, s, len);
}

static int box_cols(void)
{
	int c = COLS - 2;

	return c > BOX_MAX_COLS ? BOX_MAX_COLS : c < 10 ? (COLS < 10 ? COLS : 10) : c;
}

static WINDOW *place(struct overlay *o, int h, int w)
{
	if (h > LINES)
		h = LINES;
	if (w > COLS)
		w = COLS;
	if (h < 1)
		h = 1;
	if (w < 1)
		w = 1;
	if (o->w)
		delwin(o->w);
	o->w = newwin(h, w, (LINES - h) / 2, (COLS - w) / 2);
	werase(o->w);
	box(o->w, 0, 0);
	wattron(o->w, A_BOLD);
	mvwaddnstr(o->w, 0, 2, o->title, w - 4);
	wattroff(o->w, A_BOLD);
	return o->w;
}

static int field_rows(const struct overlay *o)
{
	return LINES >= (int)o->n * 2 + 8 ? 2 : 1;
}

static void draw_fields(struct app *a, struct overlay *o, WINDOW *w, int y0, int cols)
{
	int step = field_rows(o), vx = 15, vw = cols - vx - 2;

	if (vw > 28)
		vw = 28;
	if (cols < 30) { /* too narrow for labels */
		vx = 2;
		vw = cols - 4;
	}
	for (size_t i = 0; i < o->n; i++) {
		int y = y0 + (int)i * step;
		const char *v = o->f[i].value;
		int len = (int)strlen(v), from = len > vw ? len - vw : 0;
		if (y >= getmaxy(w) - 1)
			break; /* a screen too small for the form */
		if (vx > 2)
			mvwaddnstr(w, y, 2, o->f[i].label, vx - 3);
		wattron(w, i == o->cur ? A_REVERSE : A_UNDERLINE);
		mvwprintw(w, y, vx, "%-*.*s", vw, vw, v + from);
		wattroff(w, i == o->cur ? A_REVERSE : A_UNDERLINE);
		if (o->f[i].choices)
			mvwaddnstr(w, y, vx + vw + 1, "<>", cols - vx - vw - 2);
		else if (o->f[i].hint && cols - vx - vw - 3 > 4)
			mvwaddnstr(w, y, vx + vw + 1, o->f[i].hint, cols - vx - vw - 3);
	}
}

static void cursor_in_field(struct overlay *o, int y0, int cols)
{
	int vx = cols < 30 ? 2 : 15, vw = cols - vx - 2;
	int len = (int)strlen(o->f[o->cur].value);

	if (vw > 28 && cols >= 30)
		vw = 28;
	wmove(o->w, y0 + (int)o->cur * field_rows(o), vx + (len < vw ? len : vw));
}

static void draw_form(struct app *a, struct overlay *o)
{
	int cols = box_cols(), inner = cols - 4;
	int msgl = o->msg[0] ? wrap(o->msg, inner, NULL, NULL) : 0;
	int h = 3 + (int)o->n * field_rows(o) + 1 + msgl;
	WINDOW *w = place(o, h, cols);
	int y = 2 + (int)o->n * field_rows(o);

	draw_fields(a, o, w, field_rows(o) == 2 ? 2 : 1, cols);
	if (y < getmaxy(w) - 1)
		mvwaddnstr(w, y - (field_rows(o) == 2 ? 0 : 1), 2,
			   "Enter: next/done  Tab/Up/Down: move  C-u: clear  Esc: cancel", inner);
	if (msgl) {
		struct wrap_at at = {w, y + 1 - (field_rows(o) == 2 ? 0 : 1), 2, getmaxy(w) - 1};
		wattron(w, A_BOLD | app_color(a, COLOR_ERROR));
		wrap(o->msg, inner, wrap_line, &at);
		wattroff(w, A_BOLD | app_color(a, COLOR_ERROR));
	}
	cursor_in_field(o, field_rows(o) == 2 ? 2 : 1, cols);
}

static void draw_text_box(struct app *a, struct overlay *o, const char *footer)
{
	int cols = box_cols(), inner = cols - 4;
	int lines = wrap(o->text, inner, NULL, NULL);
	int extra = o->kind == OV_CONFIRM && o->n ? 2 : 0;
	int h = lines + 4 + extra;
	WINDOW *w;

	/* A short message gets a box of its own width. */
	if (lines == 1 && (int)strlen(o->text) + 4 < cols) {
		cols = (int)strlen(o->text) + 4;
		if (cols < (int)strlen(footer) + 4)
			cols = (int)strlen(footer) + 4;
		if (cols > box_cols())
			cols = box_cols();
		inner = cols - 4;
	}
	w = place(o, h, cols);
	struct wrap_at at = {w, 1, 2, getmaxy(w) - 1};
	wrap(o->text, inner, wrap_line, &at);
	if (extra)
		draw_fields(a, o, w, lines + 2, cols);
	if (h <= LINES)
		mvwaddnstr(w, h - 2, 2, footer, inner);
	if (extra)
		cursor_in_field(o, lines + 2, cols);
}

static void draw_pick(struct app *a, struct overlay *o)
{
	int cols = box_cols(), h = (int)o->n + 3;
	WINDOW *w = place(o, h, cols);
	int rows = getmaxy(w) - 3, first = 0;

	if (rows < 1)
		rows = 1;
	if ((int)o->cur >= rows)
		first = (int)o->cur - rows + 1;
	for (int i = 0; i < rows && first + i < (int)o->n; i++) {
		if ((size_t)(first + i) == o->cur)
			wattron(w, A_REVERSE);
		mvwprintw(w, 1 + i, 2, "%-*.*s", cols - 4, cols - 4, o->items[first + i]);
		wattroff(w, A_REVERSE);
	}
	mvwaddnstr(w, getmaxy(w) - 2, 2, "Enter: pick  Esc: cancel", cols - 4);
}

void overlay_draw(struct app *a)
{
	struct overlay *o = a->ov;

	if (o == NULL)
		return;
	switch (o->kind) {
	case OV_FORM:
		draw_form(a, o);
		break;
	case OV_CONFIRM:
		draw_text_box(a, o, o->n ? "Enter: confirm  Esc: cancel"
					 : "y: yes   any other key: no");
		break;
	case OV_MESSAGE:
		draw_text_box(a, o, "press a key");
		break;
	case OV_PICK:
		draw_pick(a, o);
		break;
	}
	curs_set(o->kind == OV_FORM || (o->kind == OV_CONFIRM && o->n) ? 1 : 0);
	wnoutrefresh(o->w);
}

/* Left/Right (or a letter: the next choice starting with it) on a picker field. */
static void cycle_choice(struct overlay_field *f, int dir, int letter)
{
	size_t n = 0, at = 0;

	while (f->choices[n])
		n++;
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (strcmp(f->choices[i], f->value) == 0)
			at = i;
	for (size_t step = 1; step <= n; step++) {
		size_t i = (at + n + (dir < 0 ? n - step : step)) % n;
		if (letter == 0 || f->choices[i][0] == letter) {
			snprintf(f->value, sizeof(f->value), "%s", f->choices[i]);
			return;
		}
	}
}

/* Editing keys of a text field; true when the key was one. */
static bool field_key(struct overlay *o, int ch, bool is_key)
{
	struct overlay_field *f = &o->f[o->cur];
	size_t len = strlen(f->value);

	if (f->choices) {
		if (is_key && (ch == KEY_LEFT || ch == KEY_RIGHT))
			cycle_choice(f, ch == KEY_LEFT ? -1 : 1, 0);
		else if (!is_key && ch == ' ')
			cycle_choice(f, 1, 0);
		else if (!is_key && ch > ' ' && ch < 0x7f)
			cycle_choice(f, 1, ch);
		else
			return false;
		return true;
	}
	if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 0x7f || ch == 0x08))) {
		if (len)
			f->value[len - 1] = '\0';
	} else if (!is_key && ch == 0x15) {
		f->value[0] = '\0';
	} else if (!is_key && ch >= 0x20 && ch < 0x7f) {
		if (o->fresh) {
			f->value[0] = '\0';
			len = 0;
		}
		if (len + 1 < sizeof(f->value)) {
			f->value[len] = (char)ch;
			f->value[len + 1] = '\0';
		}
	} else {
		return false;
	}
	o->fresh = false;
	return true;
}

static void form_done(struct app *a, bool ok)
{
	struct overlay *o = pop(a);

	o->form_done(o->ctx, ok, o->f, o->n);
	overlay_free(o);
}

static void form_key(struct app *a, struct overlay *o, int ch, bool is_key)
{
	bool enter = (!is_key && (ch == '\r' || ch == '\n')) || (is_key && ch == KEY_ENTER);
	size_t was = o->cur;

	if (!is_key && ch == KEY_ESC) {
		form_done(a, false);
		return;
	}
	if ((is_key && (ch == KEY_UP || ch == KEY_BTAB)))
		o->cur = o->cur ? o->cur - 1 : o->n - 1;
	else if ((is_key && ch == KEY_DOWN) || (!is_key && ch == '\t'))
		o->cur = (o->cur + 1) % o->n;
	else if (enter && o->cur + 1 < o->n)
		o->cur++;
	else if (enter || (is_key && ch == KEY_F(10))) {
		if (o->validate == NULL || o->validate(o->ctx, o->f, o->n, -1, o->msg, sizeof(o->msg)))
			form_done(a, true);
		return;
	} else if (field_key(o, ch, is_key)) {
		o->msg[0] = '\0';
		if (o->validate)
			o->validate(o->ctx, o->f, o->n, (int)o->cur, o->msg, sizeof(o->msg));
	}
	if (o->cur != was)
		o->fresh = true;
}

static void confirm_key(struct app *a, struct overlay *o, int ch, bool is_key)
{
	bool yes;

	if (o->n) { /* a word to type */
		bool enter = (!is_key && (ch == '\r' || ch == '\n')) || (is_key && ch == KEY_ENTER);
		if (!is_key && ch == KEY_ESC) {
			yes = false;
		} else if (enter) {
			yes = strcmp(o->f[0].value, o->yes_key) == 0;
		} else {
			o->fresh = false;
			field_key(o, ch, is_key);
			return;
		}
	} else {
		yes = !is_key && (unsigned)ch == (unsigned char)o->yes_key[0];
	}
	o = pop(a);
	o->confirm_done(o->ctx, yes);
	overlay_free(o);
}

static void pick_key(struct app *a, struct overlay *o, int ch, bool is_key)
{
	int picked;

	if (is_key && ch == KEY_UP && o->cur > 0)
		o->cur--;
	else if (is_key && ch == KEY_DOWN && o->cur + 1 < o->n)
		o->cur++;
	else if ((!is_key && (ch == '\r' || ch == '\n')) || (is_key && ch == KEY_ENTER) ||
		 (!is_key && ch == KEY_ESC)) {
		picked = !is_key && ch == KEY_ESC ? -1 : (int)o->cur;
		if (o->n == 0)
			picked = -1;
		o = pop(a);
		o->pick_done(o->ctx, picked);
		overlay_free(o);
	}
}

bool overlay_key(struct app *a, int ch, bool is_key)
{
	struct overlay *o = a->ov;

	if (o == NULL)
		return false;
	if (is_key && ch == KEY_RESIZE)
		return true;
	a->all_dirty = true;
	switch (o->kind) {
	case OV_FORM:
		form_key(a, o, ch, is_key);
		break;
	case OV_CONFIRM:
		confirm_key(a, o, ch, is_key);
		break;
	case OV_MESSAGE:
		overlay_free(pop(a));
		break;
	case OV_PICK:
		pick_key(a, o, ch, is_key);
		break;
	}
	return true;
}
