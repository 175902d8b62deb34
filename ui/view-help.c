/* The help view: every binding of the key table (ui/keys.c), as rebound by
 * termvisor.conf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/app-int.h"
#include "common/util.h"

struct help_view {
	struct view v;
	char *text;
	int top, rows, lines;
	bool dirty;
};

static struct help_view *hv(struct view *v)
{
	return v->priv;
}

static void help_draw(struct view *v, WINDOW *w, bool focused)
{
	struct help_view *h = hv(v);
	const char *s = h->text;
	int y = 1, n = 0, cols = getmaxx(w);

	h->dirty = false;
	h->rows = getmaxy(w) - 1;
	wattron(w, A_REVERSE);
	mvwhline(w, 0, 0, ' ', cols);
	mvwaddnstr(w, 0, 1, "Keys (rebind them in termvisor.conf, see termvisor.conf(5))", cols - 1);
	wattroff(w, A_REVERSE);
	while (*s) {
		const char *e = strchr(s, '\n');
		int len = e ? (int)(e - s) : (int)strlen(s);
		if (n >= h->top && y <= h->rows)
			mvwaddnstr(w, y++, 0, s, len < cols ? len : cols);
		n++;
		s += len + (e ? 1 : 0);
	}
	h->lines = n;
}

static bool help_action(struct view *v, const char *action)
{
	struct help_view *h = hv(v);

	if (strcmp(action, "up") == 0 && h->top > 0)
		h->top--;
	else if (strcmp(action, "down") == 0 && h->top + h->rows < h->lines)
		h->top++;
	else if (strcmp(action, "close") == 0) {
		app_close_tab(v->app, v); /* frees v: nothing of it is touched after */
		return true;
	} else
		return false;
	h->dirty = true;
	return true;
}

static bool help_dirty(struct view *v)
{
	return hv(v)->dirty;
}

static void help_free(struct view *v)
{
	free(hv(v)->text);
	free(hv(v));
}

static const struct view_ops help_ops = {
	.name = "help",
	.draw = help_draw,
	.action = help_action,
	.dirty = help_dirty,
	.free = help_free,
};

struct view *view_help_new(struct app *app)
{
	struct help_view *h = xcalloc(1, sizeof(*h));

	h->v.ops = &help_ops;
	h->v.app = app;
	h->v.priv = h;
	snprintf(h->v.title, sizeof(h->v.title), "help");
	h->text = keys_help_text(app_keys(app));
	h->dirty = true;
	return &h->v;
}
