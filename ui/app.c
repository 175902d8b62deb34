/* The interface's one event loop (ui/app.h): poll over the terminal, the
 * model's descriptors, every tab's and every child's; keys through the key
 * table to the focused view; only what changed is drawn again, at most once
 * a frame while output keeps coming (at once after a key), and nothing
 * wakes the loop while nothing happens. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/core/client.h"
#include "src/core/datadir.h"
#include "src/core/vmops.h"
#include "ui/app-int.h"
#include "ui/ui.h"
#include "ui/vtpane.h"
#include "common/util.h"

#define MAX_POLL 256
#define KEY_ESC 27
/* Output that keeps coming (a guest flooding its console) is drawn at most
 * once a frame, so that the screen's work follows the frame rate and not the
 * number of reads; for a while after a key every change is drawn at once, so
 * that what the key brings (the guest's echo) waits for no frame. */
#define FRAME_NS  (8 * 1000000ull)
#define TYPING_NS (250 * 1000000ull)

static struct app *the_app; /* for the SIGWINCH handler only */

struct model *app_model(struct app *a)
{
	return a->model;
}

const struct tv_paths *app_paths(struct app *a)
{
	return &a->paths;
}

const struct keytable *app_keys(struct app *a)
{
	return &a->keys;
}

void app_dirty(struct app *a)
{
	a->all_dirty = true;
}

void app_message(struct app *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	/* One line: what follows a newline is in the job's output. */
	a->message[strcspn(a->message, "\n")] = '\0';
	a->chrome_dirty = true;
}

void app_copy(struct app *a, const char *text, size_t len)
{
	char *seq;

	free(a->copied);
	a->copied = xmalloc(len + 1);
	memcpy(a->copied, text, len);
	a->copied[len] = '\0';
	a->copied_len = len;
	/* Between two draws: ncurses has nothing pending, and the sequence
	 * moves no cursor. */
	fflush(stdout);
	seq = vtpane_osc52(text, len, false);
	(void)write_full(STDOUT_FILENO, seq, strlen(seq));
	free(seq);
	if (getenv("TMUX") != NULL) {
		seq = vtpane_osc52(text, len, true);
		(void)write_full(STDOUT_FILENO, seq, strlen(seq));
		free(seq);
	}
}

const char *app_pasted(const struct app *a, size_t *len)
{
	*len = a->copied_len;
	return a->copied;
}

static struct view *shown(const struct app *a)
{
	return a->cur >= 0 && (size_t)a->cur < a->ntabs ? a->tabs[a->cur] : a->details;
}

static bool is_console(const struct view *v)
{
	return v && strcmp(v->ops->name, "console") == 0;
}

const char *app_context(const struct app *a)
{
	const struct view *v = shown(a);

	if (!a->focus_pane || a->cur < 0)
		return "list";
	return v->ops->context ? v->ops->context((struct view *)v) : v->ops->name;
}

/* Tabs. */

static void follow_selection(struct app *a);

static int tab_index(const struct app *a, const char *kind, const char *title)
{
	for (size_t i = 0; i < a->ntabs; i++)
		if (strcmp(a->tabs[i]->ops->name, kind) == 0 &&
		    strcmp(a->tabs[i]->title, title) == 0)
			return (int)i;
	return -1;
}

static void show_tab(struct app *a, int i)
{
	if (i == a->cur)
		return;
	if (a->cur >= 0)
		a->last = a->cur;
	a->cur = i;
	if (i >= 0 && is_console(a->tabs[i]))
		snprintf(a->selected, sizeof(a->selected), "%s", a->tabs[i]->title);
	if (i < 0)
		a->focus_pane = false;
	a->all_dirty = true;
}

static int tab_add(struct app *a, struct view *v)
{
	int i = tab_index(a, v->ops->name, v->title);

	if (i >= 0) {
		v->ops->free(v);
		return i;
	}
	a->tabs = xreallocarray(a->tabs, a->ntabs + 1, sizeof(*a->tabs));
	a->tabs[a->ntabs] = v;
	a->all_dirty = true;
	return (int)a->ntabs++;
}

void app_open_tab(struct app *a, struct view *v)
{
	if (v == NULL)
		return;
	show_tab(a, tab_add(a, v));
	a->focus_pane = true;
}

void app_close_tab(struct app *a, struct view *v)
{
	for (size_t i = 0; i < a->ntabs; i++) {
		if (a->tabs[i] != v)
			continue;
		memmove(&a->tabs[i], &a->tabs[i + 1], (a->ntabs - i - 1) * sizeof(*a->tabs));
		a->ntabs--;
		if (is_console(v))
			snprintf(a->closed, sizeof(a->closed), "%s", v->title);
		if (a->drawn_pane == v)
			a->drawn_pane = NULL;
		v->ops->free(v);
		if (a->last >= (int)i)
			a->last--;
		if (a->cur == (int)i) {
			/* Back to what the list's selection shows. */
			a->cur = -1;
			a->focus_pane = false;
			follow_selection(a);
		} else if (a->cur > (int)i) {
			a->cur--;
		}
		if (a->cur < 0)
			a->focus_pane = false;
		if (a->ntabs == 0)
			a->zoom = false;
		a->all_dirty = true;
		return;
	}
}

static int console_tab(struct app *a, const char *name)
{
	int i = tab_index(a, "console", name);
	struct view *v;

	if (i >= 0)
		return i;
	v = view_console_new(a, name, PROTO_CONSOLE_PRIMARY);
	return v ? tab_add(a, v) : -1;
}

struct view *app_console(struct app *a, const char *name)
{
	int i = console_tab(a, name);

	return i >= 0 ? a->tabs[i] : NULL;
}

const char *app_selected(struct app *a)
{
	return model_find(a->model, a->selected) ? a->selected : NULL;
}

static bool live(const struct model_vm *vm)
{
	return vm && (vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED ||
		      vm->state == MODEL_STOPPING || vm->state == MODEL_STARTING);
}

/* The pane follows the list: the selected VM's console when it has one or
 * runs, else its details. */
static void follow_selection(struct app *a)
{
	const char *name = app_selected(a);
	int i = name ? tab_index(a, "console", name) : -1;

	const struct model_vm *vm = name ? model_find(a->model, name) : NULL;

	if (a->closed[0] && (name == NULL || strcmp(a->closed, name) != 0 || !live(vm)))
		a->closed[0] = '\0'; /* moved away, or it stopped: its console opens again */
	if (i < 0 && vm && (vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED) &&
	    !a->closed[0])
		i = console_tab(a, name);
	if (a->focus_pane && a->cur >= 0 && !is_console(a->tabs[a->cur]))
		return; /* a tree or the help keeps the pane */
	show_tab(a, i);
}

void app_select(struct app *a, const char *name)
{
	if (name == NULL || strcmp(a->selected, name) == 0)
		return;
	snprintf(a->selected, sizeof(a->selected), "%s", name);
	a->all_dirty = true;
	follow_selection(a);
}

void app_focus_pane(struct app *a)
{
	if (a->cur < 0)
		return;
	a->focus_pane = true;
	a->all_dirty = true;
}

void app_scroll_pane(struct app *a, int dir)
{
	struct view *v = shown(a);

	if (v->ops->action)
		v->ops->action(v, dir > 0 ? "scroll-up" : "scroll-down");
}

/* Children: jobs and verbs. */

static void child_add(struct app *a, pid_t pid, int fd, const char *label, app_job_done_fn job,
		      app_reply_fn verb, void *ctx)
{
	struct app_child *c;

	a->children = xreallocarray(a->children, a->nchildren + 1, sizeof(*a->children));
	c = &a->children[a->nchildren++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->fd = fd;
	snprintf(c->label, sizeof(c->label), "%s", label);
	c->job_done = job;
	c->verb_done = verb;
	c->ctx = ctx;
	c->out = xmalloc(1);
	c->out[0] = '\0';
	a->chrome_dirty = true;
}

/* A child with its output on a pipe; returns the pid (0 in the child). */
static pid_t fork_piped(int *fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGWINCH, SIG_DFL);
		return 0;
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*fd = p[0];
	return pid;
}

int app_job(struct app *a, const char *label, const char *const *argv, app_job_done_fn done,
	    void *ctx)
{
	size_t n = 0;
	int fd;
	pid_t pid;

	while (argv[n])
		n++;
	pid = fork_piped(&fd);
	if (pid < 0) {
		app_message(a, "%s: cannot start a process: %s", label, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char **av = xcalloc(n + 2, sizeof(*av));
		av[0] = (char *)"termvisor";
		for (size_t i = 0; i < n; i++)
			av[i + 1] = (char *)argv[i];
		execv("/proc/self/exe", av);
		fprintf(stderr, "cannot run termvisor: %s\n", strerror(errno));
		_exit(127);
	}
	child_add(a, pid, fd, label, done, NULL, ctx);
	return 0;
}

/* The verb runs in a child that waits for the reply and writes it back:
 * 'O' and the reply's payload, or 'E' and the error. */
int app_verb(struct app *a, const char *name, uint16_t type, const void *payload, size_t len,
	     app_reply_fn done, void *ctx)
{
	int fd;
	pid_t pid = fork_piped(&fd);

	if (pid < 0) {
		app_message(a, "%s: cannot start a process: %s", name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		struct tv_err err;
		struct proto_frame reply = {0};
		uint8_t *rp = NULL;
		bool snap = type >= PROTO_SNAPSHOT_FIRST && type <= PROTO_SNAPSHOT_LAST;
		struct tv_client *c = client_connect(&a->paths, name, &err);
		int rc = c ? client_request_timeout(c, type, payload, len,
						    snap ? CLIENT_SNAPSHOT_TIMEOUT_MS
							 : CLIENT_REPLY_TIMEOUT_MS,
						    &reply, &rp, &err)
			   : -1;
		if (rc < 0) {
			write_full(1, "E", 1);
			write_full(1, err.msg, strlen(err.msg));
		} else {
			write_full(1, "O", 1);
			if (rp && reply.len)
				write_full(1, rp, reply.len);
		}
		_exit(0);
	}
	child_add(a, pid, fd, name, NULL, done, ctx);
	return 0;
}

static void child_finish(struct app *a, size_t i)
{
	struct app_child c = a->children[i];
	int st = 0;

	memmove(&a->children[i], &a->children[i + 1], (a->nchildren - i - 1) * sizeof(c));
	a->nchildren--;
	close(c.fd);
	while (waitpid(c.pid, &st, 0) < 0 && errno == EINTR)
		;
	a->chrome_dirty = true;
	if (c.job_done) {
		c.job_done(c.ctx, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), c.out);
	} else if (c.verb_done) {
		if (c.len && c.out[0] == 'O')
			c.verb_done(c.ctx, 0, (uint8_t *)c.out + 1, c.len - 1, NULL);
		else
			c.verb_done(c.ctx, -1, NULL, 0,
				    c.len ? c.out + 1 : "the request's process failed");
	}
	free(c.out);
}

static void child_read(struct app *a, size_t i)
{
	struct app_child *c = &a->children[i];
	char buf[4096];
	ssize_t n;

	while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
		c->out = xrealloc(c->out, c->len + (size_t)n + 1);
		memcpy(c->out + c->len, buf, (size_t)n);
		c->len += (size_t)n;
		c->out[c->len] = '\0';
		a->chrome_dirty = true;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		child_finish(a, i);
}

/* The last line a job printed: its progress. */
static void child_progress(const struct app_child *c, char *buf, size_t len)
{
	const char *end = c->out + c->len, *s;

	while (end > c->out && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	s = end;
	while (s > c->out && s[-1] != '\n' && s[-1] != '\r')
		s--;
	snprintf(buf, len, "%s%s%.*s", c->label, s < end ? ": " : "...", (int)(end - s), s);
}

/* Starting a VM: a job, the VM shown as starting meanwhile. */
struct start_ctx {
	struct app *a;
	char name[80];
};

static void start_done(void *ctx, int status, const char *output)
{
	struct start_ctx *s = ctx;
	struct app *a = s->a;

	model_set_starting(a->model, s->name, false);
	if (status != 0) {
		char title[128];
		const char *msg = output;
		/* "termvisor start: " says nothing the box's title does not. */
		if (strncmp(msg, "termvisor start: ", 17) == 0)
			msg += 17;
		snprintf(title, sizeof(title), "%s not started", s->name);
		overlay_message(a, title, *msg ? msg : "the start failed");
		app_message(a, "%s not started", s->name);
	}
	/* A start that worked shows in the list (and leaves the message line,
	 * a welcome say, alone). */
	free(s);
}

void app_start_vm(struct app *a, const char *name, bool open_console)
{
	struct start_ctx *s = xcalloc(1, sizeof(*s));
	const char *argv[] = {"start", name, NULL};
	char label[96];

	s->a = a;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(label, sizeof(label), "starting %s", name);
	model_set_starting(a->model, name, true);
	if (app_job(a, label, argv, start_done, s) < 0) {
		model_set_starting(a->model, name, false);
		free(s);
		return;
	}
	if (open_console) {
		show_tab(a, console_tab(a, name));
		app_focus_pane(a);
	}
}

/* Terminal. */

void app_suspend(struct app *a)
{
	def_prog_mode();
	endwin();
}

void app_resume(struct app *a)
{
	reset_prog_mode();
	clearok(curscr, TRUE);
	a->all_dirty = true;
}

static void on_winch(int sig)
{
	int e = errno;

	if (the_app)
		(void)!write(the_app->winch_pipe[1], "w", 1);
	errno = e;
}

static void free_windows(struct app *a)
{
	WINDOW **ws[] = {&a->w_header, &a->w_tabs, &a->w_list, &a->w_sep, &a->w_pane, &a->w_footer};

	for (size_t i = 0; i < ARRAY_SIZE(ws); i++) {
		if (*ws[i])
			delwin(*ws[i]);
		*ws[i] = NULL;
	}
}

static WINDOW *region(const struct rect *r)
{
	return r->rows > 0 ? newwin(r->rows, r->cols, r->y, r->x) : NULL;
}

static void relayout(struct app *a)
{
	enum layout_kind kind = a->zoom ? LAYOUT_ZOOM : LAYOUT_AUTO;
	bool zoom_list = a->cur < 0;

	free_windows(a);
	layout_compute(&a->lay, kind, LINES, COLS, (int)a->ntabs, zoom_list);
	a->w_header = region(&a->lay.header);
	a->w_tabs = region(&a->lay.tabs);
	a->w_list = region(&a->lay.list);
	a->w_pane = region(&a->lay.pane);
	a->w_footer = region(&a->lay.footer);
	if (a->lay.used == LAYOUT_SIDE && a->lay.list.rows > 0) {
		struct rect sep = {a->lay.list.y, a->lay.list.cols, a->lay.list.rows, 1};
		a->w_sep = region(&sep);
	}
	if (a->list->ops->resize)
		a->list->ops->resize(a->list, a->lay.list.rows, a->lay.list.cols);
	for (size_t i = 0; i < a->ntabs; i++)
		if (a->tabs[i]->ops->resize && a->lay.pane.rows > 0)
			a->tabs[i]->ops->resize(a->tabs[i], a->lay.pane.rows, a->lay.pane.cols);
	if (a->details->ops->resize)
		a->details->ops->resize(a->details, a->lay.pane.rows, a->lay.pane.cols);
}

static void on_resize(struct app *a)
{
	struct winsize ws;
	char c[64];

	while (read(a->winch_pipe[0], c, sizeof(c)) > 0)
		;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
		resizeterm(ws.ws_row, ws.ws_col);
	a->all_dirty = true;
}

/* Drawing. */

static void draw_header(struct app *a)
{
	WINDOW *w = a->w_header;
	size_t live_n = 0, n = model_count(a->model);
	char progress[256] = "";

	if (w == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		live_n += live(model_vm(a->model, i));
	if (a->nchildren)
		child_progress(&a->children[a->nchildren - 1], progress, sizeof(progress));
	werase(w);
	wbkgd(w, A_REVERSE | app_color(a, COLOR_TITLE));
	wattron(w, A_BOLD);
	mvwaddnstr(w, 0, 1, "termvisor", COLS - 1);
	wattroff(w, A_BOLD);
	mvwprintw(w, 0, 12, "%zu VM%s, %zu running", n, n == 1 ? "" : "s", live_n);
	if (progress[0] && COLS > 40)
		mvwaddnstr(w, 0, 34, progress, COLS - 35);
	wnoutrefresh(w);
}

static void draw_tabs(struct app *a)
{
	WINDOW *w = a->w_tabs;

	if (w == NULL)
		return;
	werase(w);
	wmove(w, 0, 0);
	for (size_t i = 0; i < a->ntabs; i++) {
		int attr = (int)i == a->cur ? A_REVERSE | A_BOLD : 0;
		wattron(w, attr);
		wprintw(w, " %zu:%s ", i + 1, a->tabs[i]->title);
		wattroff(w, attr);
		waddch(w, ' ');
	}
	wnoutrefresh(w);
}

static void draw_footer(struct app *a)
{
	WINDOW *w = a->w_footer;
	char buf[512];

	if (w == NULL)
		return;
	werase(w);
	if (a->message[0]) {
		wattron(w, A_BOLD);
		mvwaddnstr(w, 0, 1, a->message, COLS - 2);
		wattroff(w, A_BOLD);
	} else {
		keys_footer(&a->keys, app_context(a), COLS - 2, buf, sizeof(buf));
		mvwaddnstr(w, 0, 1, buf, COLS - 2);
	}
	wnoutrefresh(w);
}

static void draw_view(struct view *v, WINDOW *w, bool focused, bool fresh)
{
	if (w == NULL)
		return;
	if (fresh || !v->ops->paints_all)
		werase(w);
	v->ops->draw(v, w, focused);
	wnoutrefresh(w);
}

/* Draws what changed; false when nothing had. */
static bool draw(struct app *a)
{
	struct view *pane = shown(a);
	bool list_dirty, pane_dirty, any;
	uint64_t gen = model_generation(a->model);

	if (a->all_dirty) {
		relayout(a);
		a->chrome_dirty = true;
	}
	/* dirty() first: a console attaches there when its VM has come up. */
	list_dirty = a->list->ops->dirty(a->list) || a->all_dirty || gen != a->model_gen;
	pane_dirty = pane->ops->dirty(pane) || a->all_dirty ||
		     (pane == a->details && gen != a->model_gen);
	if (gen != a->model_gen)
		a->chrome_dirty = true;
	any = list_dirty || pane_dirty || a->chrome_dirty;
	if (!any)
		return false;
	if (a->all_dirty) { /* what no region covers any more is blanked */
		werase(stdscr);
		wnoutrefresh(stdscr);
	}
	if (a->chrome_dirty) {
		draw_header(a);
		draw_tabs(a);
		draw_footer(a);
		if (a->w_sep) {
			werase(a->w_sep);
			wbkgd(a->w_sep, 0);
			mvwvline(a->w_sep, 0, 0, ACS_VLINE, a->lay.list.rows);
			wnoutrefresh(a->w_sep);
		}
	}
	if (list_dirty && a->w_list)
		draw_view(a->list, a->w_list, !a->focus_pane, true);
	if (pane_dirty && a->w_pane) {
		/* The window is new after a relayout (all_dirty) and held another
		 * view's cells after a switch of tabs. */
		draw_view(pane, a->w_pane, a->focus_pane, a->all_dirty || pane != a->drawn_pane);
		a->drawn_pane = pane;
	}
	a->model_gen = gen;
	a->all_dirty = a->chrome_dirty = false;
	if (a->ov) {
		overlay_draw(a);
	} else {
		int r, c;
		if (a->focus_pane && a->w_pane && pane->ops->cursor && pane->ops->cursor(pane, &r, &c)) {
			wmove(a->w_pane, r, c);
			wnoutrefresh(a->w_pane);
			curs_set(1);
		} else {
			curs_set(0);
		}
	}
	doupdate();
	return true;
}

/* Draws when a frame has passed since the last draw, a key came lately or the
 * whole screen changed; otherwise returns the milliseconds until the next
 * frame (-1: nothing to wait for). */
static int draw_paced(struct app *a)
{
	uint64_t now = monotonic_ns();

	if (a->all_dirty || now - a->key_ns < TYPING_NS || now - a->drawn_ns >= FRAME_NS) {
		if (draw(a))
			a->drawn_ns = now;
		return -1;
	}
	return (int)((a->drawn_ns + FRAME_NS - now + 999999) / 1000000);
}

/* Keys. */

static void app_action(struct app *a, const char *action, struct view *target)
{
	if (strcmp(action, "quit") == 0) {
		a->quit = true;
	} else if (strcmp(action, "help") == 0) {
		int i = tab_index(a, "help", "help");
		if (i >= 0)
			show_tab(a, i), a->focus_pane = true;
		else
			app_open_tab(a, view_help_new(a));
	} else if (strcmp(action, "next-tab") == 0 || strcmp(action, "prev-tab") == 0) {
		int n = (int)a->ntabs, d = action[0] == 'n' ? 1 : -1;
		if (n)
			show_tab(a, a->cur < 0 ? (d > 0 ? 0 : n - 1) : (a->cur + d + n) % n);
	} else if (strncmp(action, "tab-", 4) == 0) {
		int i = atoi(action + 4) - 1;
		if (i >= 0 && i < (int)a->ntabs)
			show_tab(a, i);
		else
			app_message(a, "no tab %d", i + 1);
	} else if (strcmp(action, "last-tab") == 0) {
		if (a->last >= 0 && a->last < (int)a->ntabs)
			show_tab(a, a->last);
	} else if (strcmp(action, "close-tab") == 0) {
		if (a->cur >= 0)
			app_close_tab(a, a->tabs[a->cur]);
	} else if (strcmp(action, "zoom") == 0) {
		a->zoom = !a->zoom;
		if (a->zoom && a->cur >= 0)
			a->focus_pane = true;
		a->all_dirty = true;
	} else if (strcmp(action, "focus") == 0) {
		app_focus_pane(a);
	} else if (strcmp(action, "release") == 0) {
		a->focus_pane = false;
		a->zoom = false;
		a->all_dirty = true;
	} else if (strcmp(action, "resize-send") == 0) {
		if (is_console(shown(a)))
			shown(a)->ops->action(shown(a), action);
		else
			app_message(a, "no console shown");
	} else if (target->ops->action) {
		target->ops->action(target, action);
	}
}

static void on_key(struct app *a, int key, wint_t ch, bool is_key)
{
	struct view *target = a->focus_pane && a->cur >= 0 ? shown(a) : a->list;
	const char *ctx = app_context(a), *action;
	int lk = key;

	if (a->message[0]) {
		a->message[0] = '\0';
		a->chrome_dirty = true;
	}
	if ((key & KEYS_META) && (a->ov || (!keys_lookup(&a->keys, ctx, key) && !is_console(target)))) {
		/* Esc typed just before a key, not Alt: each on its own. */
		on_key(a, KEY_ESC, KEY_ESC, false);
		on_key(a, key & ~KEYS_META, ch, is_key);
		return;
	}
	if (a->ov) {
		overlay_key(a, (int)ch, is_key);
		return;
	}
	/* Enter is Enter however the terminal sends it. */
	if (key == '\n' || key == (KEY_ENTER | KEYS_NC))
		lk = '\r';
	action = keys_lookup(&a->keys, ctx, lk);
	if (action) {
		app_action(a, action, target);
		return;
	}
	if (target->ops->key) {
		if (key & KEYS_META)
			target->ops->key(target, KEY_ESC, false);
		target->ops->key(target, (int)ch, is_key);
	}
}

static void on_mouse(struct app *a)
{
	MEVENT me;
	const struct rect *l = &a->lay.list, *p = &a->lay.pane;

	if (getmouse(&me) != OK || a->ov)
		return;
	if (me.y >= l->y && me.y < l->y + l->rows && me.x >= l->x && me.x < l->x + l->cols) {
		if (a->list->ops->mouse)
			a->list->ops->mouse(a->list, me.y - l->y, me.x - l->x, me.bstate);
		if (me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)) {
			a->focus_pane = false;
			a->all_dirty = true;
		}
	} else if (me.y >= p->y && me.y < p->y + p->rows && me.x >= p->x &&
		   me.x < p->x + p->cols) {
		struct view *v = shown(a);
		if (v->ops->mouse)
			v->ops->mouse(v, me.y - p->y, me.x - p->x, me.bstate);
		if (me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED))
			app_focus_pane(a);
	} else if (a->lay.tabs.rows && me.y == a->lay.tabs.y &&
		   (me.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED))) {
		int x = 0;
		for (size_t i = 0; i < a->ntabs; i++) {
			int w = snprintf(NULL, 0, " %zu:%s  ", i + 1, a->tabs[i]->title);
			if (me.x >= x && me.x < x + w)
				show_tab(a, (int)i);
			x += w;
		}
	}
}

static void read_keys(struct app *a)
{
	wint_t ch;
	int kind;

	while (!a->quit && (kind = get_wch(&ch)) != ERR) {
		bool is_key = kind == KEY_CODE_YES;
		int key = is_key ? (int)ch | KEYS_NC : (int)ch;

		a->key_ns = monotonic_ns();
		if (is_key && ch == KEY_RESIZE) {
			a->all_dirty = true;
			continue;
		}
		if (is_key && ch == KEY_MOUSE) {
			on_mouse(a);
			continue;
		}
		if (!is_key && ch == KEY_ESC) {
			wint_t c2;
			int k2 = get_wch(&c2);
			if (k2 == OK && c2 != KEY_ESC) {
				key = KEYS_META | (int)c2;
				ch = c2;
			} else if (k2 == KEY_CODE_YES) {
				ungetch((int)c2);
			} else if (k2 == OK) {
				unget_wch(c2);
			}
		}
		on_key(a, key, ch, is_key);
	}
}

/* The loop. */

struct poll_owner {
	struct view *v; /* a tab, or NULL */
	int kind;       /* 0 terminal, 1 winch, 2 model, 3 view, 4 child */
};

/* One poll, for at most wait_ms when that is not -1 (the next frame). */
static void loop_once(struct app *a, int wait_ms)
{
	struct pollfd pfd[MAX_POLL];
	struct poll_owner own[MAX_POLL];
	int n = 0, m, timeout, rc;

	pfd[n] = (struct pollfd){.fd = 0, .events = POLLIN};
	own[n++].kind = 0;
	pfd[n] = (struct pollfd){.fd = a->winch_pipe[0], .events = POLLIN};
	own[n++].kind = 1;
	m = model_pollfds(a->model, pfd + n, MAX_POLL / 2 - n);
	for (int i = 0; i < m; i++)
		own[n + i].kind = 2;
	n += m;
	for (size_t t = 0; t < a->ntabs; t++) {
		struct view *v = a->tabs[t];
		m = v->ops->pollfds ? v->ops->pollfds(v, pfd + n, MAX_POLL - 64 - n) : 0;
		for (int i = 0; i < m; i++)
			own[n + i] = (struct poll_owner){v, 3};
		n += m;
	}
	for (size_t c = 0; c < a->nchildren && n < MAX_POLL; c++) {
		pfd[n] = (struct pollfd){.fd = a->children[c].fd, .events = POLLIN};
		own[n++].kind = 4;
	}
	timeout = model_timeout(a->model);
	if (wait_ms >= 0 && (timeout < 0 || wait_ms < timeout))
		timeout = wait_ms;
	rc = poll(pfd, (nfds_t)n, timeout);
	if (rc < 0 && errno != EINTR) {
		a->quit = true;
		return;
	}
	if (rc <= 0) {
		if (rc == 0)
			model_tick(a->model);
		return;
	}
	/* The views first (a key may close a tab), each with its own entries. */
	for (int i = 0; i < n;) {
		int j = i;
		while (j < n && own[j].kind == own[i].kind && own[j].v == own[i].v)
			j++;
		if (own[i].kind == 3 && own[i].v->ops->ready)
			own[i].v->ops->ready(own[i].v, pfd + i, j - i);
		else if (own[i].kind == 2)
			model_ready(a->model, pfd + i, j - i);
		i = j;
	}
	if (model_timeout(a->model) == 0)
		model_tick(a->model);
	/* Children by descriptor: one that ends leaves the array. */
	for (int i = 0; i < n; i++)
		if (own[i].kind == 4 && pfd[i].revents)
			for (size_t c = 0; c < a->nchildren; c++)
				if (a->children[c].fd == pfd[i].fd) {
					child_read(a, c);
					break;
				}
	if (pfd[1].revents)
		on_resize(a);
	if (pfd[0].revents)
		read_keys(a);
}

/* Theme and colours. */

static const char *const color_names[] = {"black", "red",     "green", "yellow",
					  "blue",  "magenta", "cyan",  "white"};

struct theme_entry {
	const char *name;
	enum app_color c;
	short fg;
};

static struct theme_entry theme[] = {
	{"running", COLOR_RUNNING, COLOR_GREEN}, {"paused", COLOR_PAUSED, COLOR_YELLOW},
	{"starting", COLOR_STARTING, COLOR_CYAN}, {"stopped", COLOR_STOPPED, -1},
	{"crashed", COLOR_CRASHED, COLOR_RED},   {"broken", COLOR_BROKEN, COLOR_RED},
	{"title", COLOR_TITLE, -1},              {"error", COLOR_ERROR, COLOR_RED},
};

static int theme_entry(void *ctx, const char *section, const char *name, const char *value,
		       const char *where, struct tv_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(theme); i++) {
		if (strcmp(theme[i].name, name) != 0)
			continue;
		if (strcmp(value, "default") == 0) {
			theme[i].fg = -1;
			return 0;
		}
		for (size_t c = 0; c < ARRAY_SIZE(color_names); c++)
			if (strcmp(value, color_names[c]) == 0) {
				theme[i].fg = (short)c;
				return 0;
			}
		return tv_errf(err, "%s: theme.%s: unknown colour \"%s\": expected default, black, "
				    "red, green, yellow, blue, magenta, cyan or white",
			       where, name, value);
	}
	return tv_errf(err, "%s: theme.%s: unknown element: expected running, paused, starting, "
			    "stopped, crashed, broken, title or error",
		       where, name);
}

/* The theme's pairs are the last ones, clear of those the console panes hand
 * out from 1 up (ui/vtpane.c). */
/* The theme's pairs are 1 to COLOR_COUNT - 1: the console panes allocate
 * theirs from 16 up (ui/vtcolor.h), so neither overwrites the other. */
static short theme_pair(enum app_color c)
{
	_Static_assert(COLOR_COUNT <= 16, "the theme's pairs must stay below the panes'");
	return (short)c;
}

int app_color(const struct app *a, enum app_color c)
{
	return a->color && c > 0 && c < COLOR_COUNT ? COLOR_PAIR(theme_pair(c)) : 0;
}

int app_state_attr(const struct app *a, int state)
{
	static const enum app_color by_state[] = {
		[MODEL_STOPPED] = COLOR_STOPPED,   [MODEL_STARTING] = COLOR_STARTING,
		[MODEL_RUNNING] = COLOR_RUNNING,   [MODEL_PAUSED] = COLOR_PAUSED,
		[MODEL_STOPPING] = COLOR_PAUSED,   [MODEL_CRASHED] = COLOR_CRASHED,
		[MODEL_BROKEN] = COLOR_BROKEN,
	};
	int attr = state >= 0 && state <= MODEL_BROKEN ? app_color(a, by_state[state]) : 0;

	/* Without colours the states that need a look stand out in bold. */
	if (!a->color && (state == MODEL_CRASHED || state == MODEL_BROKEN || state == MODEL_RUNNING))
		attr |= A_BOLD;
	return attr;
}

const char *app_state_name(int state)
{
	static const char *const names[] = {"stopped", "starting", "running", "paused",
					    "stopping", "crashed",  "broken"};

	return state >= 0 && state <= MODEL_BROKEN ? names[state] : "?";
}

static void colors_init(struct app *a)
{
	const char *nc = getenv("NO_COLOR");

	a->color = has_colors() && !(nc && *nc);
	if (!a->color)
		return;
	start_color();
	use_default_colors();
	if (COLOR_PAIRS < 2 * COLOR_COUNT) {
		a->color = false;
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(theme); i++)
		init_pair(theme_pair(theme[i].c), theme[i].fg, -1);
}

/* First run: with no VM defined at all, the demo VM is made and started so
 * there is something to look at right away. */
static void first_run(struct app *a)
{
	struct vm_create_args args = {.template = "demo"};
	struct tv_err err;
	char *kernel, kn[32];

	if (model_count(a->model) > 0)
		return;
	kernel = datadir_find("demo/demo.elf");
	if (kernel == NULL)
		return;
	free(kernel);
	if (vm_create(&a->paths, "demo", &args, &err) < 0) {
		app_message(a, "could not create the demo VM: %s", err.msg);
		return;
	}
	model_refresh(a->model, "demo");
	snprintf(a->selected, sizeof(a->selected), "demo");
	app_start_vm(a, "demo", true);
	app_message(a, "Welcome: the demo VM was made and started for you; %s gives the keyboard "
		       "back",
		    keys_name(keys_key_of(&a->keys, "console", "release"), kn, sizeof(kn)));
}

static int app_init(struct app *a, struct tv_err *err)
{
	char *conf;
	int rc;

	memset(a, 0, sizeof(*a));
	a->cur = a->last = -1;
	a->winch_pipe[0] = a->winch_pipe[1] = -1;
	if (paths_init(&a->paths, err) < 0)
		return -1;
	if (settings_load(&a->paths, &a->settings, err) < 0)
		return -1;
	keys_defaults(&a->keys);
	conf = paths_settings_file(&a->paths);
	rc = keys_load(&a->keys, conf, err);
	if (rc == 0)
		rc = settings_group(conf, "theme", false, theme_entry, NULL, err);
	free(conf);
	if (rc < 0)
		return -1;
	if (model_open(&a->model, &a->paths, err) < 0)
		return -1;
	if (pipe2(a->winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return tv_errno(err, "pipe");
	return 0;
}

static void app_free(struct app *a)
{
	overlay_free_all(a);
	while (a->ntabs)
		app_close_tab(a, a->tabs[a->ntabs - 1]);
	free(a->tabs);
	if (a->list)
		a->list->ops->free(a->list);
	if (a->details)
		a->details->ops->free(a->details);
	/* Jobs go on (a VM being started keeps starting); their pipes close. */
	for (size_t i = 0; i < a->nchildren; i++) {
		close(a->children[i].fd);
		free(a->children[i].out);
	}
	free(a->children);
	free_windows(a);
	model_free(a->model);
	keys_free(&a->keys);
	free(a->copied);
	for (int i = 0; i < 2; i++)
		if (a->winch_pipe[i] >= 0)
			close(a->winch_pipe[i]);
	paths_free(&a->paths);
}

static void screen_init(struct app *a)
{
	struct sigaction sa = {.sa_handler = on_winch};

	initscr();
	raw();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
	mouseinterval(0);
	colors_init(a);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int app_main(void)
{
	struct app *a = xcalloc(1, sizeof(*a));
	struct tv_err err;

	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "termvisor: the interface needs a terminal; "
				"'termvisor help' lists the commands\n");
		free(a);
		return 2;
	}
	setlocale(LC_ALL, "");
	if (app_init(a, &err) < 0) {
		fprintf(stderr, "termvisor: %s\n", err.msg);
		app_free(a);
		free(a);
		return 1;
	}
	the_app = a;
	screen_init(a);
	a->list = view_list_new(a);
	a->details = view_details_new(a);
	if (model_count(a->model))
		snprintf(a->selected, sizeof(a->selected), "%s", model_vm(a->model, 0)->name);
	/* Every running VM's console is a tab, as it was when the interface quit. */
	for (size_t i = 0; i < model_count(a->model); i++)
		if (live(model_vm(a->model, i)))
			console_tab(a, model_vm(a->model, i)->name);
	follow_selection(a);
	first_run(a);
	a->all_dirty = true;
	while (!a->quit) {
		loop_once(a, draw_paced(a));
		follow_selection(a);
	}
	endwin();
	the_app = NULL;
	app_free(a);
	free(a);
	return 0;
}

int ui_main(void)
{
	return app_main();
}
