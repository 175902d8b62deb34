/* The snapshot tree view, the snapshot actions and the definition editor
 * (ui/view-snapshots.c, ui/actions-snap.c, ui/editdef.c) against stand-ins
 * for the application object, the overlays and the model: what the tree
 * draws at 80 and 40 columns, how the cursor moves, and what each action
 * asks and sends (the verb and its payload for a running VM, the command for
 * a stopped one), with the replies fed back as the VM process or the command
 * would give them. The stand-ins record; the tests answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/fsutil.h"
#include "src/core/paths.h"
#include "src/core/protocol.h"
#include "src/core/snapstore.h"
#include "ui/actions.h"
#include "ui/app.h"
#include "ui/overlay.h"
#include "ui/view.h"

/* ---- stand-ins ---- */

struct model {
	struct model_vm vm;
	struct snapstore st;
	bool have_store;
	uint64_t generation;
	int refreshes;
};

struct app {
	struct model model;
	struct tv_paths paths;
	char message[1024];
	struct view *tab;   /* the last tab opened */
	int tabs_opened, tabs_closed, consoles, suspends, resumes;
	/* The overlay asked last. */
	enum { OV_NONE, OV_FORM, OV_CONFIRM, OV_MESSAGE } ov;
	char question[1024];
	char yes_key[16];
	struct overlay_field fields[4];
	size_t nfields;
	overlay_validate_fn validate;
	overlay_form_done_fn form_done;
	overlay_confirm_fn confirm_done;
	void *ov_ctx;
	/* The verb or job started last. */
	uint16_t verb;
	char payload[1024];
	app_reply_fn reply;
	char argv[1024];
	app_job_done_fn job;
	void *op_ctx;
};

static struct app A;

struct model *app_model(struct app *a) { return &a->model; }
const struct tv_paths *app_paths(struct app *a) { return &a->paths; }
void app_dirty(struct app *a) {}
void app_suspend(struct app *a) { a->suspends++; }
void app_resume(struct app *a) { a->resumes++; }

void app_message(struct app *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
}

void app_open_tab(struct app *a, struct view *v)
{
	if (a->tab && a->tab != v)
		a->tab->ops->free(a->tab);
	a->tab = v;
	a->tabs_opened++;
}

void app_close_tab(struct app *a, struct view *v)
{
	a->tabs_closed++;
}

struct view *view_console_new(struct app *a, const char *name, int console)
{
	a->consoles++;
	return NULL; /* no VM process here: nothing to attach to */
}

int app_job(struct app *a, const char *label, const char *const *argv, app_job_done_fn done,
	    void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; argv[i]; i++)
		n += (size_t)snprintf(a->argv + n, sizeof(a->argv) - n, "%s%s", i ? " " : "",
				      argv[i]);
	a->job = done;
	a->op_ctx = ctx;
	return 0;
}

int app_verb(struct app *a, const char *name, uint16_t type, const void *payload, size_t len,
	     app_reply_fn done, void *ctx)
{
	a->verb = type;
	snprintf(a->payload, sizeof(a->payload), "%.*s", (int)len, (const char *)payload);
	a->reply = done;
	a->op_ctx = ctx;
	return 0;
}

void overlay_form(struct app *a, const char *title, const struct overlay_field *f, size_t n,
		  overlay_validate_fn validate, overlay_form_done_fn done, void *ctx)
{
	a->ov = OV_FORM;
	snprintf(a->question, sizeof(a->question), "%s", title);
	memcpy(a->fields, f, n * sizeof(*f));
	a->nfields = n;
	a->validate = validate;
	a->form_done = done;
	a->ov_ctx = ctx;
}

void overlay_confirm(struct app *a, const char *question, const char *yes_key,
		     overlay_confirm_fn done, void *ctx)
{
	a->ov = OV_CONFIRM;
	snprintf(a->question, sizeof(a->question), "%s", question);
	snprintf(a->yes_key, sizeof(a->yes_key), "%s", yes_key);
	a->confirm_done = done;
	a->ov_ctx = ctx;
}

void overlay_message(struct app *a, const char *title, const char *text)
{
	a->ov = OV_MESSAGE;
	snprintf(a->question, sizeof(a->question), "%s: %s", title, text);
}

bool overlay_active(const struct app *a)
{
	return a->ov != OV_NONE;
}

const struct model_vm *model_find(const struct model *m, const char *name)
{
	return strcmp(name, m->vm.name) == 0 ? &m->vm : NULL;
}

uint64_t model_generation(const struct model *m)
{
	return m->generation;
}

const struct snapstore *model_snapshots(struct model *m, const char *name, struct tv_err *err)
{
	if (strcmp(name, m->vm.name) != 0 || !m->have_store)
		return tv_errf(err, "no snapshots"), NULL;
	return &m->st;
}

void model_refresh(struct model *m, const char *name)
{
	struct tv_err err;

	snapstore_reload(&m->st, &err);
	m->generation++;
	m->vm.generation++;
	m->refreshes++;
}

/* ---- the fixture ---- */

static char home[64];

static char *data_dir(void)
{
	return xasprintf("%s/data/lab", home);
}

/* Takes tag under here (or under parent when given), in the store's own
 * locked handle, then lets the model see it. */
static void take(const char *tag, bool memory, bool automatic, const char *parent)
{
	struct snapstore st;
	struct snap_txn t;
	struct tv_err err;
	char *data = data_dir();

	assert_int_equal(snapstore_open(&st, data, SNAPSTORE_LOCK, NULL, &err), 0);
	if (parent)
		assert_int_equal(snapstore_set_here(&st, snapstore_find(&st, parent)->id, false,
						    &err),
				 0);
	assert_int_equal(snapstore_begin(&st, tag, "", memory, automatic, NULL, 0, &t, &err), 0);
	assert_int_equal(snapstore_commit(&t, &err), 0);
	snapstore_close(&st);
	free(data);
	model_refresh(&A.model, "lab");
}

static void store_do(int (*fn)(struct snapstore *, const char *, const char *), const char *a1,
		     const char *a2)
{
	struct snapstore st;
	struct tv_err err;
	char *data = data_dir();

	assert_int_equal(snapstore_open(&st, data, SNAPSTORE_LOCK, NULL, &err), 0);
	assert_int_equal(fn(&st, a1, a2), 0);
	snapstore_close(&st);
	free(data);
}

static int do_delete(struct snapstore *st, const char *tag, const char *unused)
{
	struct tv_err err;

	return snapstore_delete(st, tag, NULL, 0, &err);
}

static int do_rename(struct snapstore *st, const char *tag, const char *new_tag)
{
	struct tv_err err;

	return snapstore_rename(st, tag, new_tag, &err);
}

static int setup(void **state)
{
	struct tv_err err;
	char *data, *vms, *conf;

	memset(&A, 0, sizeof(A));
	snprintf(home, sizeof(home), "/tmp/tv-viewsnap.XXXXXX");
	if (mkdtemp(home) == NULL)
		return -1;
	setenv("TERMVISOR_HOME", home, 1);
	if (paths_init(&A.paths, &err) < 0)
		return -1;
	data = data_dir();
	vms = xasprintf("%s/vms", home);
	conf = xasprintf("%s/lab.conf", vms);
	mkdir(vms, 0700);
	paths_mkdir(data, 0700, &err);
	FILE *f = fopen(conf, "w");
	fputs("cpus = 1;\nmemory = \"64M\";\n", f);
	fclose(f);
	snprintf(A.model.vm.name, sizeof(A.model.vm.name), "lab");
	A.model.vm.state = MODEL_RUNNING;
	/* The model reads the store without its lock, as the interface does. */
	struct snapstore st;
	assert_int_equal(snapstore_open(&st, data, SNAPSTORE_LOCK, NULL, &err), 0);
	snapstore_close(&st);
	assert_int_equal(snapstore_open(&A.model.st, data, 0, NULL, &err), 0);
	A.model.have_store = true;
	free(data);
	free(vms);
	free(conf);
	return 0;
}

static int teardown(void **state)
{
	if (A.tab)
		A.tab->ops->free(A.tab);
	snapstore_close(&A.model.st);
	paths_free(&A.paths);
	remove_tree(home);
	return 0;
}

/*	base
 *	s1
 *	|- a
 *	|  a2
 *	`- b     (here)
 */
static void branches(void)
{
	take("base", true, false, NULL);
	take("s1", true, false, NULL);
	take("a", true, false, NULL);
	take("a2", false, false, NULL);
	take("b", true, false, "s1");
}

static struct view *open_tree(const char *tag)
{
	struct view *v = view_snapshots_new(&A, "lab", tag);

	assert_non_null(v);
	app_open_tab(&A, v);
	return v;
}

/* The view drawn into a window of rows x cols, as text. */
static char screen[64][256];

static void draw(struct view *v, int rows, int cols)
{
	WINDOW *w = newpad(rows, cols);

	assert_non_null(w);
	v->ops->draw(v, w, true);
	for (int y = 0; y < rows; y++) {
		mvwinnstr(w, y, 0, screen[y], cols);
		/* Trailing blanks off. */
		for (int x = (int)strlen(screen[y]); x > 0 && screen[y][x - 1] == ' '; x--)
			screen[y][x - 1] = '\0';
	}
	delwin(w);
}

static int line_with(const char *text, int rows)
{
	for (int y = 0; y < rows; y++)
		if (strstr(screen[y], text))
			return y;
	return -1;
}

static void assert_line(const char *text, int rows)
{
	if (line_with(text, rows) < 0) {
		for (int y = 0; y < rows; y++)
			fprintf(stderr, "  |%s|\n", screen[y]);
		fail_msg("no line holds '%s'", text);
	}
}

/* The row the cursor is on: the one drawn reversed. */
static const char *cursor_tag(struct view *v, int rows, int cols)
{
	static char tag[64];
	WINDOW *w = newpad(rows, cols);

	v->ops->draw(v, w, true);
	tag[0] = '\0';
	for (int y = 1; y < rows; y++) {
		chtype c = mvwinch(w, y, 3);
		if (c & A_REVERSE) {
			char line[256];
			mvwinnstr(w, y, 2, line, cols - 2);
			sscanf(line, "%*[|`- ]%63s", tag);
			if (tag[0] == '\0')
				sscanf(line, "%63s", tag);
		}
	}
	delwin(w);
	return tag;
}

/* ---- the tests ---- */

static void test_draw_80(void **state)
{
	struct view *v;

	branches();
	v = open_tree(NULL);
	assert_string_equal(v->ops->name, "snapshots");
	assert_non_null(strstr(v->title, "lab"));
	draw(v, 24, 80);
	assert_line("SNAPSHOT", 1);
	assert_line("TAKEN", 1);
	assert_line("KIND", 1);
	assert_line("SIZE", 1);
	assert_int_equal(line_with("base", 24), 1);
	assert_int_equal(line_with("s1", 24), 2);
	assert_true(strstr(screen[3], "|- a") != NULL);
	assert_true(strstr(screen[4], "|  a2") != NULL);
	assert_true(strstr(screen[4], "disk-only") != NULL);
	/* The mark: an arrow in the margin and the words beside the tag. */
	assert_true(strncmp(screen[5], "> `- b (you are here)", 21) == 0);
	assert_true(strstr(screen[5], "machine") != NULL);
	/* The date with its year, e.g. 2026-12-06 13:11. */
	assert_non_null(strstr(screen[1], "-"));
	assert_line("5 snapshots; you are here: b", 24);
	/* Every line fits. */
	for (int y = 0; y < 24; y++)
		assert_true(strlen(screen[y]) <= 80);
	/* Opened without a tag, the cursor is on here. */
	assert_string_equal(cursor_tag(v, 24, 80), "b");
}

static void test_draw_narrow(void **state)
{
	struct view *v;
	char year[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(year, sizeof(year), "%Y-", &tm);

	branches();
	v = open_tree(NULL);
	draw(v, 10, 40);
	/* Size and year go first; the kind stays. */
	assert_line("KIND", 1);
	assert_int_equal(line_with("SIZE", 1), -1);
	assert_true(strstr(screen[4], "disk-only") != NULL);
	assert_line("`- b (here)", 10);
	for (int y = 0; y < 10; y++) {
		assert_true(strlen(screen[y]) <= 40);
		assert_null(strstr(screen[y], year));
	}
	/* Narrower still: the tags and the mark stay. */
	draw(v, 10, 20);
	assert_line("`- b (here)", 10);
	assert_line("|  a2", 10);
	assert_int_equal(line_with("KIND", 1), -1);
}

static void test_empty_tree(void **state)
{
	struct view *v = open_tree(NULL);

	draw(v, 24, 80);
	assert_line("no snapshots yet: t takes one", 24);
	/* Actions on no row do nothing, and say nothing wrong. */
	assert_true(v->ops->action(v, "down"));
	assert_true(v->ops->action(v, "rollback"));
	assert_int_equal(A.ov, OV_NONE);
}

static void test_cursor_moves_and_scrolls(void **state)
{
	struct view *v;
	char tag[16];

	for (int i = 0; i < 40; i++) {
		snprintf(tag, sizeof(tag), "s%d", i);
		take(tag, true, false, NULL);
	}
	v = open_tree("s3");
	assert_string_equal(cursor_tag(v, 10, 80), "s3");
	v->ops->action(v, "up");
	assert_string_equal(cursor_tag(v, 10, 80), "s2");
	v->ops->action(v, "end");
	assert_string_equal(cursor_tag(v, 10, 80), "s39");
	/* Scrolled: the last row is on the screen, the first is not. */
	draw(v, 10, 80);
	assert_true(line_with("s39", 10) > 0);
	assert_int_equal(line_with(" s0 ", 10), -1);
	v->ops->action(v, "home");
	assert_string_equal(cursor_tag(v, 10, 80), "s0");
	v->ops->action(v, "page-down");
	assert_string_equal(cursor_tag(v, 10, 80), "s7");
	/* Keys no binding took still move it. */
	assert_true(v->ops->key(v, KEY_DOWN, true));
	assert_string_equal(cursor_tag(v, 10, 80), "s8");
	assert_false(v->ops->key(v, 'x', false));
	assert_false(v->ops->action(v, "no-such-action"));
	assert_true(v->ops->action(v, "close"));
	assert_int_equal(A.tabs_closed, 1);
}

/* `r` on a running VM: the question says the state is saved first, `y`
 * sends the verb, the reply's figures reach the message bar, the tree is
 * re-read and the console is shown. */
static void test_rollback_live(void **state)
{
	static const char reply[] = "{\"op\": \"rollback\", \"id\": \"0000000000000002\", \"tag\": "
				    "\"s1\", \"automatic\": \"auto-1\", \"total_ns\": 12300000, "
				    "\"pause_ns\": 4100000}";
	struct view *v;

	branches();
	v = open_tree("s1");
	assert_true(v->ops->action(v, "rollback"));
	assert_int_equal(A.ov, OV_CONFIRM);
	assert_string_equal(A.yes_key, "y");
	assert_non_null(strstr(A.question, "Roll lab back to 's1'"));
	assert_non_null(strstr(A.question, "saved first as an automatic snapshot"));
	/* No: nothing is sent. */
	A.confirm_done(A.ov_ctx, false);
	assert_int_equal(A.verb, 0);
	assert_non_null(strstr(A.message, "no rollback"));

	v->ops->action(v, "rollback");
	A.confirm_done(A.ov_ctx, true);
	assert_int_equal(A.verb, PROTO_SNAPSHOT_ROLLBACK);
	assert_string_equal(A.payload, "tag=s1\n");
	int refreshes = A.model.refreshes;
	A.reply(A.op_ctx, 0, (const uint8_t *)reply, strlen(reply), NULL);
	assert_string_equal(A.message, "rolled lab back to 's1'; the state before is 'auto-1' "
				       "(12.3 ms, guest paused 4.1 ms)");
	assert_int_equal(A.model.refreshes, refreshes + 1);
	assert_int_equal(A.consoles, 1);

	/* Discarding says so, and sends discard=1. */
	v->ops->action(v, "rollback-discard");
	assert_non_null(strstr(A.question, "NOT saved"));
	A.confirm_done(A.ov_ctx, true);
	assert_string_equal(A.payload, "tag=s1\ndiscard=1\n");
	/* A refusal reaches the message bar as it came. */
	A.reply(A.op_ctx, -1, NULL, 0, "VM lab: rollback refused");
	assert_string_equal(A.message, "VM lab: rollback refused");
	assert_int_equal(A.consoles, 1);
}

/* A stopped VM's delete runs the command; the question says what happens
 * to the children; the cursor lands on the row under the deleted one. */
static void test_delete_stopped(void **state)
{
	struct view *v;

	branches();
	A.model.vm.state = MODEL_STOPPED;
	v = open_tree("s1");
	v->ops->action(v, "delete");
	assert_int_equal(A.ov, OV_CONFIRM);
	assert_non_null(strstr(A.question, "Delete snapshot 's1' of lab"));
	assert_non_null(strstr(A.question, "Its 2 children stay whole and descend from 'base'"));
	A.confirm_done(A.ov_ctx, true);
	assert_string_equal(A.argv, "snapshot delete lab s1");
	store_do(do_delete, "s1", NULL);
	A.job(A.op_ctx, 0, "deleted snapshot 's1' of VM lab (its 2 children now descend from "
			   "'base')\n");
	assert_non_null(strstr(A.message, "deleted snapshot 's1'"));
	draw(v, 24, 80);
	assert_int_equal(line_with(" s1 ", 24), -1);
	assert_string_equal(cursor_tag(v, 24, 80), "a");
	/* A failed command's error is what the message bar shows. */
	v->ops->action(v, "delete");
	assert_non_null(strstr(A.question, "Its 1 child stays whole and descends from 'base'"));
	A.confirm_done(A.ov_ctx, true);
	A.job(A.op_ctx, 1, "termvisor snapshot delete: it went wrong\n");
	assert_string_equal(A.message, "termvisor snapshot delete: it went wrong");
}

static void test_rename(void **state)
{
	struct view *v;
	char msg[256];

	branches();
	v = open_tree("a");
	v->ops->action(v, "rename");
	assert_int_equal(A.ov, OV_FORM);
	assert_string_equal(A.fields[0].value, "a");
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "bad name");
	assert_false(A.validate(A.ov_ctx, A.fields, 1, -1, msg, sizeof(msg)));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "base");
	assert_false(A.validate(A.ov_ctx, A.fields, 1, -1, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "already has a snapshot named 'base'"));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "alpha");
	assert_true(A.validate(A.ov_ctx, A.fields, 1, -1, msg, sizeof(msg)));
	A.form_done(A.ov_ctx, true, A.fields, 1);
	assert_int_equal(A.verb, PROTO_SNAPSHOT_RENAME);
	assert_string_equal(A.payload, "tag=a\nnew=alpha\n");
	/* The VM process renames it; the cursor follows the new name. */
	store_do(do_rename, "a", "alpha");
	A.reply(A.op_ctx, 0, (const uint8_t *)"{\"tag\": \"alpha\"}", 16, NULL);
	assert_string_equal(A.message, "renamed snapshot 'a' of lab to 'alpha'");
	assert_string_equal(cursor_tag(v, 24, 80), "alpha");
}

/* `t` from the list: a proposed name that Enter accepts; what follows a
 * blank is the description. */
static void test_take(void **state)
{
	static const char reply[] = "{\"op\": \"take\", \"tag\": \"mine\", \"memory_bytes\": 2097152, "
				    "\"pause_ns\": 1500000}";
	struct view *v;
	char msg[256];

	take("snap-1", true, false, NULL);
	action_snapshot_take(&A, "lab");
	assert_int_equal(A.ov, OV_FORM);
	assert_int_equal(A.nfields, 1);
	assert_string_equal(A.fields[0].value, "snap-2");
	assert_non_null(strstr(A.question, "whole machine"));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "snap-1");
	assert_false(A.validate(A.ov_ctx, A.fields, 1, -1, msg, sizeof(msg)));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "mine before the upgrade");
	assert_true(A.validate(A.ov_ctx, A.fields, 1, -1, msg, sizeof(msg)));
	A.form_done(A.ov_ctx, true, A.fields, 1);
	assert_int_equal(A.verb, PROTO_SNAPSHOT_TAKE);
	assert_string_equal(A.payload, "tag=mine\ndescription=before the upgrade\n");
	A.reply(A.op_ctx, 0, (const uint8_t *)reply, strlen(reply), NULL);
	assert_string_equal(A.message,
			    "took snapshot 'mine' of lab: 2M of memory written, guest paused 1.5 ms");

	/* From the tree of a stopped VM: the command, and the cursor on the new one. */
	A.model.vm.state = MODEL_STOPPED;
	v = open_tree(NULL);
	v->ops->action(v, "take");
	assert_non_null(strstr(A.question, "Disk-only"));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "mine before the upgrade");
	A.form_done(A.ov_ctx, true, A.fields, 1);
	assert_string_equal(A.argv,
			    "snapshot take --description before the upgrade lab mine");
	take("mine", false, false, NULL);
	A.job(A.op_ctx, 0, "took disk-only snapshot 'mine' of stopped VM lab (1 disk)\n");
	assert_string_equal(A.message, "took disk-only snapshot 'mine' of stopped VM lab (1 disk)");
	assert_string_equal(cursor_tag(v, 24, 80), "mine");

	/* A cancelled form does nothing. */
	v->ops->action(v, "take");
	A.form_done(A.ov_ctx, false, A.fields, 1);
	/* A VM that is starting is refused at once. */
	A.model.vm.state = MODEL_STARTING;
	A.ov = OV_NONE;
	action_snapshot_take(&A, "lab");
	assert_int_equal(A.ov, OV_NONE);
	assert_non_null(strstr(A.message, "starting"));
}

static void test_clone(void **state)
{
	struct view *v;
	char msg[256];

	branches();
	v = open_tree("a");
	v->ops->action(v, "clone");
	assert_int_equal(A.nfields, 2);
	assert_string_equal(A.fields[0].value, "lab-a");
	assert_string_equal(A.fields[1].value, "full");
	assert_string_equal(A.fields[1].choices[1], "linked");
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "lab");
	assert_false(A.validate(A.ov_ctx, A.fields, 2, -1, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "already exists"));
	snprintf(A.fields[0].value, sizeof(A.fields[0].value), "twin");
	snprintf(A.fields[1].value, sizeof(A.fields[1].value), "linked");
	assert_true(A.validate(A.ov_ctx, A.fields, 2, -1, msg, sizeof(msg)));
	A.form_done(A.ov_ctx, true, A.fields, 2);
	assert_string_equal(A.argv, "clone --snapshot a lab twin --linked");
	A.job(A.op_ctx, 0, "cloned VM lab at snapshot 'a' into twin (linked: ...)\n");
	assert_non_null(strstr(A.message, "cloned VM lab"));
}

/* `r` from the list: the tree, on the newest snapshot the user took. */
static void test_rollback_from_list(void **state)
{
	branches();
	take("auto-1", true, true, NULL);
	action_snapshot_rollback(&A, "lab");
	assert_non_null(A.tab);
	assert_string_equal(cursor_tag(A.tab, 24, 80), "b");
	action_snapshot_tree(&A, "lab");
	assert_int_equal(A.tabs_opened, 2);
}

/* The view closed while its verb is on the way: the reply is still reported
 * and nothing touches the freed view. */
static void test_closed_before_reply(void **state)
{
	struct view *v;

	branches();
	v = open_tree("a");
	v->ops->action(v, "rollback");
	A.confirm_done(A.ov_ctx, true);
	v->ops->free(v);
	A.tab = NULL;
	A.reply(A.op_ctx, 0, (const uint8_t *)"{\"tag\": \"a\"}", 12, NULL);
	assert_non_null(strstr(A.message, "rolled lab back to 'a'"));
}

/* `e`: the editor gets the terminal; an invalid edit is asked about, e
 * reopens the editor, and the fixed file is saved. */
static void test_edit(void **state)
{
	char *script = xasprintf("%s/ed.sh", home), *conf = xasprintf("%s/vms/lab.conf", home);
	FILE *f = fopen(script, "w");
	char text[256] = "";

	fprintf(f, "#!/bin/sh\nif [ -e %s/once ]; then sed -i 's/lots/128M/' \"$1\"; else "
		   "touch %s/once; sed -i 's/64M/lots/' \"$1\"; fi\n",
		home, home);
	fclose(f);
	chmod(script, 0755);
	setenv("EDITOR", script, 1);
	unsetenv("VISUAL");
	action_edit(&A, "lab");
	assert_int_equal(A.suspends, 1);
	assert_int_equal(A.resumes, 1);
	assert_int_equal(A.ov, OV_CONFIRM);
	assert_string_equal(A.yes_key, "e");
	assert_non_null(strstr(A.question, "lab.conf:2: memory"));
	assert_non_null(strstr(A.question, conf));
	A.confirm_done(A.ov_ctx, true);
	assert_int_equal(A.suspends, 2);
	assert_non_null(strstr(A.message, "saved"));
	f = fopen(conf, "r");
	(void)!fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	assert_non_null(strstr(text, "memory = \"128M\""));
	free(script);
	free(conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_draw_80, setup, teardown),
		cmocka_unit_test_setup_teardown(test_draw_narrow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_moves_and_scrolls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_from_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_before_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit, setup, teardown),
	};
	FILE *null = fopen("/dev/null", "w");
	int rc;

	/* ASCII drawing (the C locale), on a terminal that goes nowhere. */
	setlocale(LC_ALL, "C");
	if (newterm("xterm", null, stdin) == NULL) {
		fprintf(stderr, "no terminfo entry for xterm\n");
		return 77;
	}
	rc = cmocka_run_group_tests_name("view-snapshots", tests, NULL, NULL);
	endwin();
	return rc;
}
