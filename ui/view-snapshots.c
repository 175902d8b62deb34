/* The snapshot tree of one VM (view "snapshots"): its rows from ui/snaptree.c,
 * re-read whenever the model says the VM changed (a snapshot event, the index
 * file changed), and the actions of the tree: move, take, roll back, delete,
 * rename, clone, close. Every action asks through an overlay and runs as a
 * verb or a job (ui/snapops.h): the screen never waits. */
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "common/util.h"
#include "src/core/paths.h"
#include "src/core/protocol.h"
#include "src/core/snapstore.h"
#include "src/core/vmops.h"
#include "ui/app.h"
#include "ui/overlay.h"
#include "ui/snapops.h"
#include "ui/snaptree.h"
#include "ui/view.h"

/* Lets an operation that ends after the view was closed find that out. */
struct tree_handle {
	struct tree *t; /* NULL once the view is freed */
	unsigned refs;
};

struct tree {
	struct view view;
	struct tree_handle *h;
	char vm[80];
	struct snaptree rows;
	uint64_t seen;          /* the model's generation the rows were built from */
	bool loaded;
	char error[TV_ERR_MAX];  /* the store could not be read */
	int cursor, top;
	char want[SNAP_TAG_MAX + 1]; /* the tag to put the cursor on at the next build */
	bool dirty;
	int rows_shown;         /* rows of the list at the last draw */
	bool utf8;
};

static struct tree_handle *handle_get(struct tree *t)
{
	t->h->refs++;
	return t->h;
}

static void handle_put(struct tree_handle *h)
{
	if (--h->refs == 0)
		free(h);
}

/* ---- the rows ---- */

static uint64_t vm_generation(struct tree *t)
{
	struct model *m = app_model(t->view.app);
	const struct model_vm *vm = model_find(m, t->vm);

	return vm ? vm->generation : model_generation(m);
}

static void rebuild(struct tree *t)
{
	struct tv_err err = {{0}};
	const struct snapstore *st = model_snapshots(app_model(t->view.app), t->vm, &err);
	char keep[SNAP_TAG_MAX + 1] = "";
	int r;

	if (t->want[0])
		snprintf(keep, sizeof(keep), "%s", t->want);
	else if (t->cursor >= 0 && (size_t)t->cursor < t->rows.n)
		snprintf(keep, sizeof(keep), "%s", t->rows.rows[t->cursor].tag);
	snaptree_free(&t->rows);
	t->error[0] = '\0';
	if (st != NULL)
		snaptree_build(&t->rows, st, SNAPTREE_SIZES | (t->utf8 ? SNAPTREE_UTF8 : 0));
	else if (err.msg[0])
		snprintf(t->error, sizeof(t->error), "%s", err.msg);
	r = snaptree_find(&t->rows, keep);
	if (r < 0 && !t->loaded)
		r = snaptree_here(&t->rows);
	if (r < 0)
		r = t->cursor < (int)t->rows.n ? t->cursor : (int)t->rows.n - 1;
	t->cursor = r < 0 ? 0 : r;
	/* A wanted tag not there yet (the model re-reads on the event) stays wanted. */
	if (t->want[0] && snaptree_find(&t->rows, t->want) >= 0)
		t->want[0] = '\0';
	t->seen = vm_generation(t);
	t->loaded = true;
	t->dirty = true;
}

static const struct snaptree_row *current(struct tree *t)
{
	if (t->cursor < 0 || (size_t)t->cursor >= t->rows.n)
		return NULL;
	return &t->rows.rows[t->cursor];
}

static void cursor_to(struct tree *t, int to)
{
	if (t->rows.n == 0)
		return;
	if (to < 0)
		to = 0;
	if (to >= (int)t->rows.n)
		to = (int)t->rows.n - 1;
	t->cursor = to;
	t->dirty = true;
}

/* ---- drawing ---- */

/* Writes s (UTF-8) in at most cols columns; returns the columns used. */
static int put_cols(WINDOW *w, const char *s, int cols)
{
	mbstate_t ps;
	int used = 0;

	memset(&ps, 0, sizeof(ps));
	while (*s && used < cols) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &ps);
		int wd;
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&ps, 0, sizeof(ps));
			waddch(w, '?');
			used++;
			s++;
			continue;
		}
		wd = wcwidth(wc);
		if (wd < 0)
			wd = 1;
		if (used + wd > cols)
			break;
		waddnstr(w, s, (int)n);
		used += wd;
		s += n;
	}
	return used;
}

static void pad(WINDOW *w, int n)
{
	while (n-- > 0)
		waddch(w, ' ');
}

/* The words beside the tag of the "you are here" row. */
static const char *here_mark(const struct snaptree_row *r)
{
	return r->pending ? " (here, restored at start)" : " (you are here)";
}

/* The columns that fit, dropped in this order as the window narrows:
 * description, auto, size, the date's year; then the tags' column narrows
 * down to TAG_MIN; then kind and the date go. */
struct columns {
	int tag, date, kind, autom, size, desc;
	bool long_date;
};

#define TAG_MIN 14

static void columns_fit(const struct tree *t, int cols, struct columns *c)
{
	int want = 0;

	for (size_t i = 0; i < t->rows.n; i++) {
		const struct snaptree_row *r = &t->rows.rows[i];
		int n = r->prefix_cols + (int)strlen(r->tag) +
			(r->here ? (int)strlen(here_mark(r)) : 0);
		if (n > want)
			want = n;
	}
	want = MAX(want, TAG_MIN);
	*c = (struct columns){.tag = want, .date = 16, .kind = 9, .autom = 4, .size = 7,
			      .long_date = true};
	cols -= 2; /* the marker */
	/* Each column takes a blank before it. */
#define FIXED() (c->tag + (c->date ? c->date + 1 : 0) + (c->kind ? c->kind + 1 : 0) + \
		 (c->autom ? c->autom + 1 : 0) + (c->size ? c->size + 1 : 0))
	if (FIXED() > cols)
		c->autom = 0;
	if (FIXED() > cols)
		c->size = 0;
	if (FIXED() > cols) {
		c->date = 11;
		c->long_date = false;
	}
	/* Then the tags' column narrows (the mark shortens to "(here)"). */
	if (FIXED() > cols)
		c->tag = MAX(TAG_MIN, cols - (FIXED() - c->tag));
	if (FIXED() > cols)
		c->kind = 0;
	if (FIXED() > cols)
		c->date = 0;
	if (FIXED() > cols)
		c->tag = MAX(1, cols);
	c->desc = cols - FIXED() - 2;
	if (c->desc < 8)
		c->desc = 0;
#undef FIXED
}

static void draw_header(WINDOW *w, const struct columns *c)
{
	wattron(w, A_BOLD);
	wmove(w, 0, 0);
	waddstr(w, "  ");
	put_cols(w, "SNAPSHOT", c->tag);
	pad(w, c->tag - 8);
	if (c->date) {
		waddch(w, ' ');
		put_cols(w, "TAKEN", c->date);
		pad(w, c->date - 5);
	}
	if (c->kind) {
		waddstr(w, " KIND     ");
	}
	if (c->autom)
		waddstr(w, " AUTO");
	if (c->size)
		waddstr(w, "    SIZE");
	if (c->desc)
		waddstr(w, "  DESCRIPTION");
	wattroff(w, A_BOLD);
}

static void draw_row(struct tree *t, WINDOW *w, int y, const struct snaptree_row *r,
		     const struct columns *c, bool selected)
{
	char text[64];
	int used;

	wmove(w, y, 0);
	if (selected)
		wattron(w, A_REVERSE);
	if (r->here)
		wattron(w, A_BOLD);
	if (r->automatic && !r->here && !selected)
		wattron(w, A_DIM);
	/* The "you are here" mark, and a word beside the tag when it fits. */
	put_cols(w, r->here ? (t->utf8 ? "\u25b6 " : "> ") : "  ", 2);
	used = put_cols(w, r->prefix, c->tag);
	used += put_cols(w, r->tag, c->tag - used);
	if (r->here) {
		const char *mark = here_mark(r);
		if (used + (int)strlen(mark) <= c->tag)
			used += put_cols(w, mark, c->tag - used);
		else if (used + 7 <= c->tag)
			used += put_cols(w, " (here)", c->tag - used);
	}
	pad(w, c->tag - used);
	if (c->date) {
		time_t when = (time_t)r->created;
		struct tm tm;
		if (localtime_r(&when, &tm) == NULL ||
		    strftime(text, sizeof(text), c->long_date ? "%Y-%m-%d %H:%M" : "%m-%d %H:%M",
			     &tm) == 0)
			snprintf(text, sizeof(text), "?");
		waddch(w, ' ');
		pad(w, c->date - put_cols(w, text, c->date));
	}
	if (c->kind) {
		waddch(w, ' ');
		pad(w, c->kind - put_cols(w, snaptree_kind(r), c->kind));
	}
	if (c->autom) {
		waddch(w, ' ');
		pad(w, c->autom - put_cols(w, r->automatic ? "auto" : "", c->autom));
	}
	if (c->size) {
		char size[32];
		format_size(r->size, size, sizeof(size));
		snprintf(text, sizeof(text), "%*s", c->size, r->memory || r->size ? size : "-");
		waddch(w, ' ');
		put_cols(w, text, c->size);
	}
	if (c->desc && r->description[0]) {
		waddstr(w, "  ");
		put_cols(w, r->description, c->desc);
	}
	wattrset(w, A_NORMAL);
}

static void tree_draw(struct view *v, WINDOW *w, bool focused)
{
	struct tree *t = v->priv;
	int rows = getmaxy(w), cols = getmaxx(w), list;
	struct columns c;
	char status[256];

	if (!t->loaded || t->seen != vm_generation(t))
		rebuild(t);
	werase(w);
	t->dirty = false;
	if (rows < 1 || cols < 1)
		return;
	if (t->rows.n == 0) {
		wmove(w, 0, 1);
		put_cols(w, t->error[0] ? t->error : "no snapshots yet: t takes one", cols - 1);
		return;
	}
	columns_fit(t, cols, &c);
	draw_header(w, &c);
	list = rows - 2; /* the header and the status line */
	if (list < 1)
		list = rows - 1;
	t->rows_shown = MAX(list, 1);
	if (t->cursor < t->top)
		t->top = t->cursor;
	if (t->cursor >= t->top + t->rows_shown)
		t->top = t->cursor - t->rows_shown + 1;
	if (t->top > 0 && t->top + t->rows_shown > (int)t->rows.n)
		t->top = MAX(0, (int)t->rows.n - t->rows_shown);
	for (int i = 0; i < t->rows_shown && t->top + i < (int)t->rows.n; i++)
		draw_row(t, w, 1 + i, &t->rows.rows[t->top + i], &c,
			 focused && t->top + i == t->cursor);
	if (rows >= 3) {
		const struct snaptree_row *r = current(t);
		int here = snaptree_here(&t->rows);
		int n = snprintf(status, sizeof(status), "%zu snapshot%s; you are here: %s",
				 t->rows.n, t->rows.n == 1 ? "" : "s",
				 here >= 0 ? t->rows.rows[here].tag : "no snapshot");
		if (r != NULL && r->description[0] && c.desc == 0 && n > 0 &&
		    (size_t)n < sizeof(status))
			snprintf(status + n, sizeof(status) - (size_t)n, "; %s: %s", r->tag,
				 r->description);
		wmove(w, rows - 1, 1);
		wattron(w, A_DIM);
		put_cols(w, status, cols - 1);
		wattroff(w, A_DIM);
	}
}

/* ---- actions ---- */

/* An operation's end, back in the view if it is still open. */
static void op_done(void *ctx, bool ok, const char *tag)
{
	struct tree_handle *h = ctx;

	if (h->t != NULL) {
		/* After a delete the cursor was told where to go beforehand. */
		if (!ok || tag[0])
			snprintf(h->t->want, sizeof(h->t->want), "%s", ok ? tag : "");
		h->t->loaded = false; /* rebuilt at the next draw */
		h->t->dirty = true;
	}
	handle_put(h);
}

static void run(struct tree *t, const struct snapop_args *args)
{
	struct tv_err err;
	struct tree_handle *h = handle_get(t);

	if (snapop_run(t->view.app, t->vm, args, op_done, h, &err) < 0) {
		app_message(t->view.app, "%s", err.msg);
		handle_put(h);
	}
}

/* What a confirmation is about, kept until it is answered. */
struct ask {
	struct tree_handle *h;
	struct app *app;
	char vm[80];
	char tag[SNAP_TAG_MAX + 1];
	char after[SNAP_TAG_MAX + 1]; /* delete: where the cursor goes */
	bool discard;
};

static struct ask *ask_new(struct tree *t, const struct snaptree_row *r)
{
	struct ask *q = xcalloc(1, sizeof(*q));

	q->h = handle_get(t);
	q->app = t->view.app;
	snprintf(q->vm, sizeof(q->vm), "%s", t->vm);
	snprintf(q->tag, sizeof(q->tag), "%s", r->tag);
	return q;
}

static void ask_free(struct ask *q)
{
	handle_put(q->h);
	free(q);
}

static void rollback_answered(void *ctx, bool yes)
{
	struct ask *q = ctx;
	struct snapop_args args = {.kind = SNAPOP_ROLLBACK, .tag = q->tag, .discard = q->discard};

	if (yes && q->h->t != NULL)
		run(q->h->t, &args);
	else if (!yes)
		app_message(q->app, "no rollback: %s is as it was", q->vm);
	ask_free(q);
}

static void ask_rollback(struct tree *t, bool discard)
{
	const struct snaptree_row *r = current(t);
	struct tv_err err;
	struct ask *q;
	char text[512];
	bool live;

	if (r == NULL)
		return;
	if (snapop_is_live(t->view.app, t->vm, &live, &err) < 0) {
		app_message(t->view.app, "%s", err.msg);
		return;
	}
	q = ask_new(t, r);
	q->discard = discard;
	snprintf(text, sizeof(text), "Roll %s back to '%s' (%s, %s)? %s%s y rolls back, any other key "
				     "cancels.",
		 t->vm, r->tag, snaptree_kind(r), r->here ? "where you are" : "taken earlier",
		 discard ? "The current state is NOT saved: it is lost."
		 : live	 ? "The current state is saved first as an automatic snapshot."
			 : "The disks as they are now are saved first as an automatic snapshot.",
		 !live && r->memory ? " The machine state it holds is restored when the VM starts."
		 : live && !r->memory
			 ? " It holds only the disks: the guest boots afresh on them."
			 : "");
	overlay_confirm(t->view.app, text, "y", rollback_answered, q);
}

static void delete_answered(void *ctx, bool yes)
{
	struct ask *q = ctx;
	struct snapop_args args = {.kind = SNAPOP_DELETE, .tag = q->tag};
	struct tree *t = q->h->t;

	if (yes && t != NULL) {
		/* The cursor goes to the row under it once the tree is re-read. */
		snprintf(t->want, sizeof(t->want), "%s", q->after);
		run(t, &args);
	} else if (!yes) {
		app_message(q->app, "snapshot '%s' kept", q->tag);
	}
	ask_free(q);
}

static void ask_delete(struct tree *t)
{
	const struct snaptree_row *r = current(t);
	char text[512], size[32], kids[160];
	struct ask *q;

	if (r == NULL)
		return;
	q = ask_new(t, r);
	snaptree_after_delete(&t->rows, t->cursor, q->after);
	format_size(r->size, size, sizeof(size));
	if (r->nchildren)
		snprintf(kids, sizeof(kids), " Its %zu child%s stay%s whole and descend%s from %s%s%s.",
			 r->nchildren, r->nchildren == 1 ? "" : "ren", r->nchildren == 1 ? "s" : "",
			 r->nchildren == 1 ? "s" : "", r->parent_tag[0] ? "'" : "",
			 r->parent_tag[0] ? r->parent_tag : "no snapshot",
			 r->parent_tag[0] ? "'" : "");
	else
		snprintf(kids, sizeof(kids), " It has no children.");
	snprintf(text, sizeof(text), "Delete snapshot '%s' of %s (%s%s%s)?%s%s y deletes it.", r->tag,
		 t->vm, snaptree_kind(r), r->size ? ", " : "", r->size ? size : "", kids,
		 r->here ? " You are here: here moves to its parent." : "");
	overlay_confirm(t->view.app, text, "y", delete_answered, q);
}

static bool rename_validate(void *ctx, struct overlay_field *f, size_t n, int field, char *msg,
			    size_t len)
{
	struct ask *q = ctx;
	struct tv_err err;
	const struct snapstore *st;

	if (field >= 0 && f[0].value[0] == '\0')
		return true; /* still typing */
	if (snapstore_tag_check(f[0].value, &err) < 0) {
		snprintf(msg, len, "%s", err.msg);
		return false;
	}
	st = model_snapshots(app_model(q->app), q->vm, &err);
	if (st != NULL && strcmp(f[0].value, q->tag) != 0 && snapstore_find(st, f[0].value)) {
		snprintf(msg, len, "VM %s already has a snapshot named '%s'", q->vm, f[0].value);
		return false;
	}
	return true;
}

static void rename_submitted(void *ctx, bool ok, struct overlay_field *f, size_t n)
{
	struct ask *q = ctx;
	struct snapop_args args = {.kind = SNAPOP_RENAME, .tag = q->tag, .new_tag = f[0].value};

	if (ok && strcmp(f[0].value, q->tag) != 0 && q->h->t != NULL)
		run(q->h->t, &args);
	ask_free(q);
}

static void ask_rename(struct tree *t)
{
	const struct snaptree_row *r = current(t);
	struct overlay_field f = {.label = "New name",
				  .hint = "letters, digits, '-', '_', '.'; at most 64"};
	char title[192];

	if (r == NULL)
		return;
	snprintf(f.value, sizeof(f.value), "%s", r->tag);
	snprintf(title, sizeof(title), "Rename snapshot '%s' of %s", r->tag, t->vm);
	overlay_form(t->view.app, title, &f, 1, rename_validate, rename_submitted, ask_new(t, r));
}

static const char *const clone_kinds[] = {"full", "linked", NULL};

static bool clone_validate(void *ctx, struct overlay_field *f, size_t n, int field, char *msg,
			   size_t len)
{
	struct ask *q = ctx;
	struct tv_err err;

	if (field == 1)
		return true;
	if (vm_name_check(f[0].value, &err) < 0) {
		snprintf(msg, len, "%s", err.msg);
		return false;
	}
	if (model_find(app_model(q->app), f[0].value) != NULL ||
	    vm_exists(app_paths(q->app), f[0].value)) {
		snprintf(msg, len, "VM '%s' already exists", f[0].value);
		return false;
	}
	return true;
}

static void clone_submitted(void *ctx, bool ok, struct overlay_field *f, size_t n)
{
	struct ask *q = ctx;
	struct tv_err err;

	if (ok) {
		bool linked = strcmp(f[1].value, "linked") == 0;
		if (snapop_clone(q->app, q->vm, q->tag, f[0].value, linked, &err) < 0)
			app_message(q->app, "%s", err.msg);
		else
			app_message(q->app, "cloning %s at '%s' into %s...", q->vm, q->tag,
				    f[0].value);
	}
	ask_free(q);
}

static void ask_clone(struct tree *t)
{
	const struct snaptree_row *r = current(t);
	struct overlay_field f[2] = {
		{.label = "New VM", .hint = "the clone's name"},
		{.label = "Disks",
		 .hint = "full: copies; linked: overlays on a shared read-only base",
		 .choices = clone_kinds},
	};
	char title[192];

	if (r == NULL)
		return;
	snprintf(f[0].value, sizeof(f[0].value), "%.40s-%.30s", t->vm, r->tag);
	snprintf(f[1].value, sizeof(f[1].value), "full");
	snprintf(title, sizeof(title), "Clone %s at snapshot '%s'", t->vm, r->tag);
	overlay_form(t->view.app, title, f, 2, clone_validate, clone_submitted, ask_new(t, r));
}

static bool tree_action(struct view *v, const char *action)
{
	struct tree *t = v->priv;
	int page = MAX(t->rows_shown - 1, 1);

	if (strcmp(action, "up") == 0)
		cursor_to(t, t->cursor - 1);
	else if (strcmp(action, "down") == 0)
		cursor_to(t, t->cursor + 1);
	else if (strcmp(action, "home") == 0)
		cursor_to(t, 0);
	else if (strcmp(action, "end") == 0)
		cursor_to(t, (int)t->rows.n - 1);
	else if (strcmp(action, "page-up") == 0)
		cursor_to(t, t->cursor - page);
	else if (strcmp(action, "page-down") == 0)
		cursor_to(t, t->cursor + page);
	else if (strcmp(action, "here") == 0)
		cursor_to(t, snaptree_here(&t->rows));
	else if (strcmp(action, "take") == 0)
		snapop_take_form(v->app, t->vm, op_done, handle_get(t));
	else if (strcmp(action, "rollback") == 0)
		ask_rollback(t, false);
	else if (strcmp(action, "rollback-discard") == 0)
		ask_rollback(t, true);
	else if (strcmp(action, "delete") == 0)
		ask_delete(t);
	else if (strcmp(action, "rename") == 0)
		ask_rename(t);
	else if (strcmp(action, "clone") == 0)
		ask_clone(t);
	else if (strcmp(action, "close") == 0)
		app_close_tab(v->app, v);
	else
		return false;
	return true;
}

/* Keys no binding claimed: the usual movement keys, whatever the key table
 * says (so the tree can always be moved through). */
static bool tree_key(struct view *v, int ch, bool is_key)
{
	if (!is_key)
		return false;
	switch (ch) {
	case KEY_UP:
		return tree_action(v, "up");
	case KEY_DOWN:
		return tree_action(v, "down");
	case KEY_HOME:
		return tree_action(v, "home");
	case KEY_END:
		return tree_action(v, "end");
	case KEY_PPAGE:
		return tree_action(v, "page-up");
	case KEY_NPAGE:
		return tree_action(v, "page-down");
	}
	return false;
}

static void tree_mouse(struct view *v, int row, int col, unsigned long bstate)
{
	struct tree *t = v->priv;

	if (bstate & BUTTON4_PRESSED)
		cursor_to(t, t->cursor - 3);
#ifdef BUTTON5_PRESSED
	else if (bstate & BUTTON5_PRESSED)
		cursor_to(t, t->cursor + 3);
#endif
	else if ((bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED)) && row >= 1 &&
		 t->top + row - 1 < (int)t->rows.n)
		cursor_to(t, t->top + row - 1);
}

static void tree_resize(struct view *v, int rows, int cols)
{
	((struct tree *)v->priv)->dirty = true;
}

static bool tree_dirty(struct view *v)
{
	struct tree *t = v->priv;

	return t->dirty || !t->loaded || t->seen != vm_generation(t);
}

static void tree_free(struct view *v)
{
	struct tree *t = v->priv;

	t->h->t = NULL;
	handle_put(t->h);
	snaptree_free(&t->rows);
	free(t);
}

static const struct view_ops tree_ops = {
	.name = "snapshots",
	.draw = tree_draw,
	.action = tree_action,
	.key = tree_key,
	.mouse = tree_mouse,
	.resize = tree_resize,
	.dirty = tree_dirty,
	.free = tree_free,
};

struct view *view_snapshots_new(struct app *app, const char *name, const char *tag)
{
	struct tree *t;
	const char *codeset = nl_langinfo(CODESET);

	if (model_find(app_model(app), name) == NULL) {
		app_message(app, "no VM named '%s'", name);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->view.ops = &tree_ops;
	t->view.app = app;
	t->view.priv = t;
	snprintf(t->view.title, sizeof(t->view.title), "%.60s snapshots", name);
	snprintf(t->vm, sizeof(t->vm), "%s", name);
	t->h = xcalloc(1, sizeof(*t->h));
	t->h->t = t;
	t->h->refs = 1;
	t->utf8 = codeset != NULL && strcmp(codeset, "UTF-8") == 0;
	if (tag != NULL)
		snprintf(t->want, sizeof(t->want), "%s", tag);
	rebuild(t);
	return &t->view;
}
