/* A live console in the pane: attached over the VM's control socket, its
 * screen in a vtpane (ui/vtpane.h), the pane's size sent as the console's
 * (PROTO_WINSIZE). A VM that ends leaves the pane readable with the reason;
 * one that starts again is attached again.
 *
 * Copy mode (key-table context "copy", like tmux's): a cursor over the
 * scrollback, a selection, searches typed on the title line (context
 * "search"); a copy goes to the user's clipboard (app_copy) and a paste key
 * types it into a guest. */
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <wchar.h>

#include "src/core/client.h"
#include "ui/app-int.h"
#include "ui/vtpane.h"
#include "common/util.h"

#define CONSOLE_SCROLLBACK 5000

struct console_view {
	struct view v;
	int console; /* enum proto_console */
	struct tv_client *c;
	struct vtpane *pane;
	int rows, cols; /* the pane's screen, without the title line */
	uint32_t pid;   /* the VM process attached to */
	uint64_t failed_gen; /* the model's generation when attaching failed: not
			      * again until the model changes (its own connection
			      * is made once the VM's socket answers) */
	bool ended;
	bool paced; /* what the VM process was last asked (PROTO_PACE) */
	char reason[TV_ERR_MAX + 16];
	bool dirty;
	int cy, cx; /* the cursor after the last draw */

	/* Copy mode's search being typed, and its last word ("not found"). */
	bool prompting;
	int prompt_dir; /* VTPANE_OLDER or VTPANE_NEWER */
	char prompt[128];
	size_t prompt_len;
	int prompt_col; /* where the title line's cursor goes */
	char note[64];
};

static struct console_view *cv(struct view *v)
{
	return v->priv;
}

static void to_guest(void *ctx, const char *bytes, size_t len)
{
	struct console_view *c = ctx;
	struct tv_err err;

	if (c->c && !c->ended && client_input(c->c, bytes, len, &err) < 0) {
		c->ended = true;
		snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
		c->dirty = true;
	}
}

static void on_console(void *ctx, const uint8_t *bytes, size_t len)
{
	vtpane_feed(cv(ctx)->pane, (const char *)bytes, len);
}

static void on_sync(void *ctx, const uint8_t *bytes, size_t len)
{
	vtpane_feed_sync(cv(ctx)->pane, (const char *)bytes, len);
}

static void on_event(void *ctx, uint8_t event, const char *text)
{
	struct console_view *c = cv(ctx);

	if (event == PROTO_EV_EXITED) {
		c->ended = true;
		snprintf(c->reason, sizeof(c->reason), "VM ended: %s", text);
		c->dirty = true;
	} else if (event == PROTO_EV_SNAPSHOT) {
		c->dirty = true;
	}
}

static const struct client_handlers handlers = {on_console, on_event, on_sync};

static void hang_up(struct console_view *c)
{
	if (c->c)
		client_close(c->c);
	c->c = NULL;
}

static void attach(struct console_view *c, const struct model_vm *vm)
{
	struct tv_err err;

	hang_up(c);
	c->c = client_connect(app_paths(c->v.app), c->v.title, &err);
	if (c->c == NULL)
		goto fail;
	client_set_handlers(c->c, &handlers, &c->v);
	if (client_attach(c->c, false, (uint8_t)c->console, (uint16_t)c->rows, (uint16_t)c->cols,
			  &err) < 0)
		goto fail;
	c->paced = false;
	c->pid = vm->pid;
	c->failed_gen = 0;
	c->ended = false;
	c->reason[0] = '\0';
	c->dirty = true;
	return;
fail:
	hang_up(c);
	c->failed_gen = model_generation(app_model(c->v.app));
	c->ended = true;
	snprintf(c->reason, sizeof(c->reason), "%s", err.msg);
	c->dirty = true;
}

/* Attached to the live VM process, whichever it is now. */
static void follow_vm(struct console_view *c)
{
	const struct model_vm *vm = model_find(app_model(c->v.app), c->v.title);
	bool up = vm && (vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED);

	/* c->pid is set when an attach works: a new VM process is attached
	 * to, an attach that failed is tried again once the model changed. */
	if (up && vm->pid && vm->pid != c->pid &&
	    c->failed_gen != model_generation(app_model(c->v.app)))
		attach(c, vm);
}

/* Columns of UTF-8 text (a typed search may have any character). */
static int text_cols(const char *s)
{
	mbstate_t st;
	int n = 0;

	memset(&st, 0, sizeof(st));
	while (*s) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, MB_CUR_MAX, &st);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof(st));
			k = 1;
			wc = L'?';
		}
		n += wcwidth(wc) > 0 ? wcwidth(wc) : 0;
		s += k;
	}
	return n;
}

static void console_draw(struct view *v, WINDOW *w, bool focused)
{
	struct console_view *c = cv(v);
	const struct model_vm *vm = model_find(app_model(v->app), v->title);
	int cols = getmaxx(w), rows = getmaxy(w);
	char title[700], kn[32];

	c->dirty = false;
	if (rows < 1)
		return;
	/* Copy mode first: it has the keys, whether the VM runs or not. */
	if (c->prompting)
		snprintf(title, sizeof(title), " %s  search %s: %s", v->title,
			 c->prompt_dir < 0 ? "back" : "forward", c->prompt);
	else if (vtpane_copy_active(c->pane) && vtpane_scroll_offset(c->pane) > 0)
		snprintf(title, sizeof(title), " %s  [copy mode, %d lines back] %s", v->title,
			 vtpane_scroll_offset(c->pane), c->note);
	else if (vtpane_copy_active(c->pane))
		snprintf(title, sizeof(title), " %s  [copy mode] %s", v->title, c->note);
	else if (c->ended)
		snprintf(title, sizeof(title), " %s  %s", v->title, c->reason);
	else if (c->c == NULL)
		snprintf(title, sizeof(title), " %s  %s", v->title,
			 vm && vm->state == MODEL_STARTING ? "starting..." : "not running");
	else if (vtpane_scroll_offset(c->pane) > 0)
		snprintf(title, sizeof(title), " %s  [scrolled back %d lines]", v->title,
			 vtpane_scroll_offset(c->pane));
	else if (focused)
		snprintf(title, sizeof(title), " %s  console: keys go to the guest, %s gives them back",
			 v->title,
			 keys_name(keys_key_of(app_keys(v->app), "console", "release"), kn,
				   sizeof(kn)));
	else
		snprintf(title, sizeof(title), " %s  console  %s", v->title,
			 vm ? app_state_name((int)vm->state) : "");
	wattron(w, focused ? A_REVERSE | A_BOLD : A_REVERSE);
	mvwhline(w, 0, 0, ' ', cols);
	mvwaddnstr(w, 0, 0, title, cols);
	c->prompt_col = text_cols(title) < cols ? text_cols(title) : cols - 1;
	wattroff(w, A_REVERSE | A_BOLD);
	if (rows < 2)
		return;
	vtpane_draw_at(c->pane, w, 1);
	getyx(w, c->cy, c->cx);
}

static bool console_cursor(struct view *v, int *row, int *col)
{
	struct console_view *c = cv(v);

	if (c->prompting) {
		*row = 0;
		*col = c->prompt_col;
		return true;
	}
	if (vtpane_copy_active(c->pane)) {
		int r, cc;
		vtpane_copy_cursor(c->pane, &r, &cc);
		if (r < 0 || r + 1 > c->rows)
			return false;
		*row = r + 1;
		*col = cc;
		return true;
	}
	if (c->ended || c->c == NULL || vtpane_scroll_offset(c->pane) > 0)
		return false;
	*row = c->cy;
	*col = c->cx;
	return true;
}

static const char *console_context(struct view *v)
{
	struct console_view *c = cv(v);

	if (c->prompting)
		return "search";
	return vtpane_copy_active(c->pane) ? "copy" : "console";
}

/* Entering or leaving a mode changes the footer's keys too. */
static void mode_changed(struct console_view *c)
{
	c->dirty = true;
	app_dirty(c->v.app);
}

static void copy_start(struct console_view *c)
{
	if (!vtpane_copy_active(c->pane))
		vtpane_copy_start(c->pane);
	c->note[0] = '\0';
	mode_changed(c);
}

static void copy_leave(struct console_view *c)
{
	vtpane_copy_end(c->pane);
	c->prompting = false;
	mode_changed(c);
}

static void prompt_open(struct console_view *c, int dir)
{
	c->prompting = true;
	c->prompt_dir = dir;
	c->prompt_len = 0;
	c->prompt[0] = '\0';
	mode_changed(c);
}

static void search_note(struct console_view *c, enum vtpane_found found)
{
	snprintf(c->note, sizeof(c->note), "%s",
		 found == VTPANE_NOT_FOUND ? "not found"
		 : found == VTPANE_WRAPPED ? "search wrapped"
					   : "");
}

/* The selection to the user's clipboard, and out of copy mode (tmux's
 * copy-selection-and-cancel). */
static void copy_selection(struct console_view *c)
{
	char *text = vtpane_selection_text(c->pane);
	char kn[32];
	size_t len;

	if (text == NULL) {
		snprintf(c->note, sizeof(c->note), "select first: %s",
			 keys_name(keys_key_of(app_keys(c->v.app), "copy", "select"), kn,
				   sizeof(kn)));
		return;
	}
	len = strlen(text);
	app_copy(c->v.app, text, len);
	free(text);
	copy_leave(c);
	app_message(c->v.app, "copied %zu bytes (to your terminal's clipboard); %s types them", len,
		    keys_name(keys_key_of(app_keys(c->v.app), "console", "paste"), kn, sizeof(kn)));
}

static void paste(struct console_view *c)
{
	size_t len;
	const char *text = app_pasted(c->v.app, &len);

	if (text == NULL)
		app_message(c->v.app, "nothing copied yet (copy mode: select, then copy)");
	else if (c->c == NULL || c->ended)
		app_message(c->v.app, "%s is not running", c->v.title);
	else
		vtpane_paste(c->pane, text, len);
}

/* Copy mode's actions (context "copy"); false for others. */
static bool copy_action(struct console_view *c, const char *action)
{
	if (vtpane_copy_action(c->pane, action)) {
		c->note[0] = '\0';
	} else if (strcmp(action, "search-back") == 0) {
		prompt_open(c, VTPANE_OLDER);
	} else if (strcmp(action, "search-forward") == 0) {
		prompt_open(c, VTPANE_NEWER);
	} else if (strcmp(action, "search-next") == 0 || strcmp(action, "search-prev") == 0) {
		search_note(c, vtpane_search_again(c->pane, action[7] == 'p'));
	} else if (strcmp(action, "copy") == 0) {
		copy_selection(c);
	} else if (strcmp(action, "leave") == 0) {
		copy_leave(c);
	} else {
		return false;
	}
	return true;
}

/* A key while a search is typed: Enter searches, Esc cancels, Backspace
 * takes the last character back. */
static void prompt_key(struct console_view *c, int ch, bool is_key)
{
	if ((!is_key && (ch == '\r' || ch == '\n')) || (is_key && ch == KEY_ENTER)) {
		c->prompting = false;
		if (c->prompt_len > 0)
			search_note(c, vtpane_search(c->pane, c->prompt, c->prompt_dir));
		mode_changed(c);
	} else if (!is_key && ch == 27) {
		c->prompting = false;
		mode_changed(c);
	} else if ((!is_key && (ch == 127 || ch == 8)) || (is_key && ch == KEY_BACKSPACE)) {
		/* A whole UTF-8 character. */
		while (c->prompt_len > 0 &&
		       ((unsigned char)c->prompt[--c->prompt_len] & 0xC0) == 0x80)
			;
		c->prompt[c->prompt_len] = '\0';
	} else if (!is_key && ch >= 32 && ch != 127) {
		char mb[MB_LEN_MAX];
		mbstate_t st;
		size_t n;

		memset(&st, 0, sizeof(st));
		n = wcrtomb(mb, (wchar_t)ch, &st);
		if (n != (size_t)-1 && c->prompt_len + n < sizeof(c->prompt)) {
			memcpy(c->prompt + c->prompt_len, mb, n);
			c->prompt_len += n;
			c->prompt[c->prompt_len] = '\0';
		}
	}
	c->dirty = true;
}

/* While the guest floods, the VM process sends the pane its screen once a
 * frame rather than every byte, and the lines it missed afterwards: the pane
 * shows the same at a fraction of the work. A user reading the scrollback
 * (scrolled back, copy mode, a search) wants every line at once. */
static void pace(struct console_view *c)
{
	bool want = !vtpane_copy_active(c->pane) && !c->prompting &&
		    vtpane_scroll_offset(c->pane) == 0;
	struct tv_err err;

	if (c->c == NULL || c->ended || want == c->paced)
		return;
	c->paced = want;
	(void)client_pace(c->c, want, &err); /* a lost connection shows on the next read */
}

static bool console_dirty(struct view *v)
{
	struct console_view *c = cv(v);

	follow_vm(c);
	pace(c);
	return c->dirty || vtpane_dirty(c->pane);
}

static bool console_action(struct view *v, const char *action)
{
	struct console_view *c = cv(v);
	int half = c->rows / 2 > 0 ? c->rows / 2 : 1;

	if (strcmp(action, "scroll-up") == 0)
		vtpane_scroll(c->pane, half);
	else if (strcmp(action, "scroll-down") == 0)
		vtpane_scroll(c->pane, -half);
	else if (strcmp(action, "copy-mode") == 0)
		copy_start(c);
	else if (strcmp(action, "search") == 0) {
		copy_start(c);
		prompt_open(c, VTPANE_OLDER);
	} else if (strcmp(action, "paste") == 0)
		paste(c);
	else if (copy_action(c, action))
		;
	else if (strcmp(action, "resize-send") == 0) {
		char cmd[64];
		int n = snprintf(cmd, sizeof(cmd), "stty rows %d cols %d\r", c->rows, c->cols);
		if (c->c && !c->ended)
			to_guest(c, cmd, (size_t)n);
		else
			app_message(v->app, "%s is not running", v->title);
	} else
		return false;
	c->dirty = true;
	return true;
}

static bool console_key(struct view *v, int ch, bool is_key)
{
	struct console_view *c = cv(v);

	if (c->prompting) {
		prompt_key(c, ch, is_key);
		return true;
	}
	if (vtpane_copy_active(c->pane))
		return true; /* copy mode keeps its keys from the guest */
	if (c->ended || c->c == NULL)
		return false;
	vtpane_scroll_reset(c->pane);
	vtpane_key(c->pane, (unsigned)ch, is_key);
	return true;
}

static void console_mouse(struct view *v, int row, int col, unsigned long bstate)
{
	struct console_view *c = cv(v);

	if (bstate & BUTTON4_PRESSED)
		vtpane_scroll(c->pane, 3);
	else if (bstate & BUTTON5_PRESSED)
		vtpane_scroll(c->pane, -3);
	c->dirty = true;
}

static void console_resize(struct view *v, int rows, int cols)
{
	struct console_view *c = cv(v);
	struct tv_err err;

	rows = rows - 1 < PROTO_MIN_DIM ? PROTO_MIN_DIM : rows - 1;
	cols = cols < PROTO_MIN_DIM ? PROTO_MIN_DIM : cols;
	if (rows == c->rows && cols == c->cols)
		return;
	c->rows = rows;
	c->cols = cols;
	vtpane_resize(c->pane, rows, cols);
	if (c->c && !c->ended)
		client_winsize(c->c, (uint16_t)rows, (uint16_t)cols, &err);
	c->dirty = true;
}

static int console_pollfds(struct view *v, struct pollfd *pfd, int max)
{
	struct console_view *c = cv(v);

	if (c->c == NULL || max < 1)
		return 0;
	pfd[0] = (struct pollfd){.fd = client_fd(c->c), .events = POLLIN};
	return 1;
}

static void console_ready(struct view *v, const struct pollfd *pfd, int n)
{
	struct console_view *c = cv(v);
	struct tv_err err;

	if (n < 1 || pfd[0].revents == 0 || c->c == NULL)
		return;
	if (client_pump(c->c, &err) < 0) {
		if (!c->ended)
			snprintf(c->reason, sizeof(c->reason), "VM ended: %s", err.msg);
		c->ended = true;
		hang_up(c);
		c->dirty = true;
	}
}

static void console_free(struct view *v)
{
	struct console_view *c = cv(v);

	hang_up(c);
	vtpane_free(c->pane);
	free(c);
}

static const struct view_ops console_ops = {
	.name = "console",
	.draw = console_draw,
	.action = console_action,
	.key = console_key,
	.mouse = console_mouse,
	.resize = console_resize,
	.pollfds = console_pollfds,
	.ready = console_ready,
	.dirty = console_dirty,
	.cursor = console_cursor,
	.free = console_free,
	.context = console_context,
	.paints_all = true,
};

struct view *view_console_new(struct app *app, const char *name, int console)
{
	struct console_view *c = xcalloc(1, sizeof(*c));

	c->v.ops = &console_ops;
	c->v.app = app;
	c->v.priv = c;
	snprintf(c->v.title, sizeof(c->v.title), "%s", name);
	c->console = console;
	c->rows = 24;
	c->cols = 80;
	c->pane = vtpane_new(c->rows, c->cols, CONSOLE_SCROLLBACK, to_guest, c);
	c->dirty = true;
	return &c->v;
}
