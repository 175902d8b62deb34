/* The VM list: one row per definition with its state, size and snapshots,
 * and the actions on the selected VM (start, stop, pause, create, delete and
 * the snapshot keys). None of them waits: they open overlays, start jobs or
 * send verbs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/protocol.h"
#include "src/core/template.h"
#include "src/core/vmops.h"
#include "ui/actions.h"
#include "ui/app-int.h"
#include "common/util.h"

struct list_view {
	struct view v;
	int rows, cols;
	int first; /* the first row shown */
	bool dirty;
	char **templates; /* the form's choices, NULL-terminated */
};

static struct list_view *lv(struct view *v)
{
	return v->priv;
}

static int selected_index(struct app *a)
{
	const char *name = app_selected(a);
	struct model *m = app_model(a);

	for (size_t i = 0; name && i < model_count(m); i++)
		if (strcmp(model_vm(m, i)->name, name) == 0)
			return (int)i;
	return -1;
}

static void select_index(struct view *v, int i)
{
	struct model *m = app_model(v->app);
	int n = (int)model_count(m);

	if (n == 0)
		return;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	app_select(v->app, model_vm(m, (size_t)i)->name);
	lv(v)->dirty = true;
}

/* Columns, dropped from the right when the list is narrow. */
static void list_draw(struct view *v, WINDOW *w, bool focused)
{
	struct app *a = v->app;
	struct model *m = app_model(a);
	struct list_view *l = lv(v);
	int rows = getmaxy(w), cols = getmaxx(w), sel = selected_index(a);
	int namew = cols >= 60 ? 16 : cols >= 36 ? 12 : cols > 20 ? cols - 20 : 6;
	char line[512];

	l->dirty = false;
	if (rows < 1)
		return;
	snprintf(line, sizeof(line), " %-*s %-8s %4s %6s %6s %5s %s", namew, "NAME", "STATE", "CPUS",
		 "MEMORY", "DISK", "SNAPS", "HERE");
	wattron(w, A_BOLD);
	mvwaddnstr(w, 0, 0, line, cols);
	wattroff(w, A_BOLD);
	if (model_count(m) == 0 && rows > 2) {
		mvwaddnstr(w, 2, 2, "No VMs yet: press n to create one.", cols - 2);
		return;
	}
	if (sel >= 0 && sel < l->first)
		l->first = sel;
	if (sel >= l->first + rows - 1)
		l->first = sel - (rows - 2);
	if (l->first < 0)
		l->first = 0;
	for (int r = 0; r < rows - 1 && l->first + r < (int)model_count(m); r++) {
		const struct model_vm *vm = model_vm(m, (size_t)(l->first + r));
		char mem[16] = "-", disk[16] = "-", snaps[16] = "-";
		int y = r + 1;
		bool is_sel = l->first + r == sel;
		int sel_attr = is_sel ? (focused ? A_REVERSE : A_BOLD | A_UNDERLINE) : 0;

		if (vm->state != MODEL_BROKEN) {
			format_size(vm->memory, mem, sizeof(mem));
			if (vm->disk_bytes)
				format_size(vm->disk_bytes, disk, sizeof(disk));
			snprintf(snaps, sizeof(snaps), "%u", vm->snapshots);
		}
		wattron(w, sel_attr);
		mvwhline(w, y, 0, ' ', cols);
		snprintf(line, sizeof(line), " %-*.*s ", namew, namew, vm->name);
		mvwaddnstr(w, y, 0, line, cols);
		wattron(w, app_state_attr(a, (int)vm->state));
		snprintf(line, sizeof(line), "%-8s", app_state_name((int)vm->state));
		if (namew + 2 < cols)
			waddnstr(w, line, cols - namew - 2);
		wattroff(w, app_state_attr(a, (int)vm->state));
		if (vm->state != MODEL_BROKEN) {
			snprintf(line, sizeof(line), " %4u %6s %6s %5s %s", vm->cpus, mem, disk, snaps,
				 vm->here);
			if (namew + 10 < cols)
				waddnstr(w, line, cols - namew - 10);
		}
		wattroff(w, sel_attr);
	}
}

static bool list_dirty(struct view *v)
{
	return lv(v)->dirty;
}

/* Verbs: the reply becomes the message line. */
struct verb_ctx {
	struct app *a;
	char name[80];
	char done[64];
};

static void verb_done(void *ctx, int status, const uint8_t *payload, size_t len, const char *error)
{
	struct verb_ctx *c = ctx;

	if (status < 0)
		app_message(c->a, "%s", error);
	else
		app_message(c->a, "%s: %s", c->name, c->done);
	model_refresh(app_model(c->a), c->name);
	free(c);
}

static void send_verb(struct app *a, const char *name, uint16_t type, const void *payload,
		      size_t len, const char *done)
{
	struct verb_ctx *c = xcalloc(1, sizeof(*c));

	c->a = a;
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->done, sizeof(c->done), "%s", done);
	if (app_verb(a, name, type, payload, len, verb_done, c) < 0)
		free(c);
}

static void stop_confirmed(void *ctx, bool yes)
{
	struct verb_ctx *c = ctx;

	if (yes)
		send_verb(c->a, c->name, PROTO_STOP, (const uint8_t[4]){0}, 4,
			  "power button pressed");
	free(c);
}

static void force_confirmed(void *ctx, bool yes)
{
	struct verb_ctx *c = ctx;

	if (yes)
		send_verb(c->a, c->name, PROTO_FORCE_OFF, NULL, 0, "forced off");
	free(c);
}

static struct verb_ctx *ctx_for(struct app *a, const char *name)
{
	struct verb_ctx *c = xcalloc(1, sizeof(*c));

	c->a = a;
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

/* Jobs that change the definitions: the model sees the change through
 * inotify; the output's last line is the message, a failure a box. */
struct job_ctx {
	struct app *a;
	char name[80];
	char failed[64];
};

static void job_done(void *ctx, int status, const char *output)
{
	struct job_ctx *j = ctx;
	const char *s = output;

	model_refresh(app_model(j->a), j->name);
	if (status != 0) {
		const char *colon = strstr(s, ": ");
		if (strncmp(s, "termvisor ", 10) == 0 && colon)
			s = colon + 2;
		overlay_message(j->a, j->failed, *s ? s : "the command failed");
	} else {
		app_select(j->a, j->name);
		app_message(j->a, "%s", output);
	}
	free(j);
}

static void run_job(struct app *a, const char *name, const char *label, const char *failed,
		    const char *const *argv)
{
	struct job_ctx *j = xcalloc(1, sizeof(*j));

	j->a = a;
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->failed, sizeof(j->failed), "%s", failed);
	if (app_job(a, label, argv, job_done, j) < 0)
		free(j);
}

static void delete_confirmed(void *ctx, bool yes)
{
	struct verb_ctx *c = ctx;
	const char *argv[] = {"delete", c->name, "--yes", NULL};

	if (yes)
		run_job(c->a, c->name, "deleting", "Not deleted", argv);
	else
		app_message(c->a, "%s kept", c->name);
	free(c);
}

/* The form of a new VM. */
enum { F_NAME, F_TEMPLATE, F_CPUS, F_MEMORY, F_DISK, F_KERNEL, F_CMDLINE, F_COUNT };

#define NO_TEMPLATE "(none)"

static void template_defaults(struct app *a, struct overlay_field *f)
{
	struct template t;
	struct tv_err err;

	if (strcmp(f[F_TEMPLATE].value, NO_TEMPLATE) == 0 ||
	    template_load(app_paths(a), f[F_TEMPLATE].value, &t, &err) < 0)
		return;
	snprintf(f[F_CPUS].value, sizeof(f[F_CPUS].value), "%u", t.cpus);
	format_size(t.memory, f[F_MEMORY].value, sizeof(f[F_MEMORY].value));
	if (t.disk_size)
		format_size(t.disk_size, f[F_DISK].value, sizeof(f[F_DISK].value));
	else
		f[F_DISK].value[0] = '\0';
	f[F_KERNEL].value[0] = '\0';
	snprintf(f[F_CMDLINE].value, sizeof(f[F_CMDLINE].value), "%s", t.cmdline ? t.cmdline : "");
	template_free(&t);
}

static bool create_validate(void *ctx, struct overlay_field *f, size_t n, int field, char *msg,
			    size_t len)
{
	struct view *v = ctx;
	struct tv_err err;
	uint64_t size;
	char *end;
	long cpus;

	if (field == F_TEMPLATE)
		template_defaults(v->app, f);
	if ((field < 0 || field == F_NAME) && vm_name_check(f[F_NAME].value, &err) < 0) {
		/* An empty name is only refused when the form is sent. */
		if (field < 0 || f[F_NAME].value[0])
			snprintf(msg, len, "%s", err.msg);
		return false;
	}
	if ((field < 0 || field == F_NAME) && vm_exists(app_paths(v->app), f[F_NAME].value)) {
		snprintf(msg, len, "a VM named %s exists already", f[F_NAME].value);
		return false;
	}
	cpus = strtol(f[F_CPUS].value, &end, 10);
	if ((field < 0 || field == F_CPUS) && f[F_CPUS].value[0] &&
	    (*end || cpus < 1 || cpus > 64)) {
		snprintf(msg, len, "vCPUs: expected a number from 1 to 64");
		return false;
	}
	if ((field < 0 || field == F_MEMORY) && f[F_MEMORY].value[0] &&
	    parse_size(f[F_MEMORY].value, &size) < 0) {
		snprintf(msg, len, "memory: expected a size like 512M or 2G");
		return false;
	}
	if ((field < 0 || field == F_DISK) && f[F_DISK].value[0] &&
	    parse_size(f[F_DISK].value, &size) < 0) {
		snprintf(msg, len, "disk: expected a size like 10G, or nothing for no disk");
		return false;
	}
	return true;
}

static void create_done(void *ctx, bool ok, struct overlay_field *f, size_t n)
{
	struct view *v = ctx;
	const char *argv[16];
	size_t k = 0;
	static const char *const opt[F_COUNT] = {
		NULL, "--template", "--cpus", "--memory", "--disk", "--kernel", "--cmdline"};

	if (!ok)
		return;
	argv[k++] = "create";
	argv[k++] = f[F_NAME].value;
	for (int i = F_TEMPLATE; i < F_COUNT; i++) {
		if (!f[i].value[0] || (i == F_TEMPLATE && strcmp(f[i].value, NO_TEMPLATE) == 0))
			continue;
		argv[k++] = opt[i];
		argv[k++] = f[i].value;
	}
	argv[k] = NULL;
	run_job(v->app, f[F_NAME].value, "creating", "Not created", argv);
}

static void create_form(struct view *v)
{
	struct list_view *l = lv(v);
	struct overlay_field f[F_COUNT] = {
		[F_NAME] = {"Name", "", "letters, digits, - _ ."},
		[F_TEMPLATE] = {"Template", NO_TEMPLATE, "Left/Right"},
		[F_CPUS] = {"vCPUs", "1", "1 to 64"},
		[F_MEMORY] = {"Memory", "512M", "like 512M or 2G"},
		[F_DISK] = {"Disk", "8G", "qcow2 disk size; empty for none"},
		[F_KERNEL] = {"Kernel", "", "bzImage, vmlinux or PVH ELF"},
		[F_CMDLINE] = {"Cmdline", "console=ttyS0", ""},
	};
	struct template *t = NULL;
	struct tv_err err;
	size_t n = 0;

	if (l->templates == NULL) {
		if (template_list(app_paths(v->app), &t, &n, &err) < 0)
			n = 0;
		l->templates = xcalloc(n + 2, sizeof(*l->templates));
		l->templates[0] = xstrdup(NO_TEMPLATE);
		for (size_t i = 0; i < n; i++)
			l->templates[i + 1] = xstrdup(t[i].name);
		if (t)
			template_list_free(t, n);
	}
	f[F_TEMPLATE].choices = (const char *const *)l->templates;
	overlay_form(v->app, "New VM", f, F_COUNT, create_validate, create_done, v);
}

static bool list_action(struct view *v, const char *action)
{
	struct app *a = v->app;
	struct model *m = app_model(a);
	int sel = selected_index(a);
	const char *name = app_selected(a);
	const struct model_vm *vm = name ? model_find(m, name) : NULL;
	bool is_live = vm && (vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED ||
			      vm->state == MODEL_STOPPING);
	char q[256];

	if (strcmp(action, "up") == 0)
		select_index(v, sel - 1);
	else if (strcmp(action, "down") == 0)
		select_index(v, sel + 1);
	else if (strcmp(action, "first") == 0)
		select_index(v, 0);
	else if (strcmp(action, "last") == 0)
		select_index(v, (int)model_count(m) - 1);
	else if (strcmp(action, "create") == 0)
		create_form(v);
	else if (strcmp(action, "scroll-up") == 0 || strcmp(action, "scroll-down") == 0)
		app_scroll_pane(a, action[7] == 'u' ? 1 : -1);
	else if (vm == NULL)
		app_message(a, "no VM selected");
	else if (vm->state == MODEL_BROKEN && strcmp(action, "delete") != 0 &&
		 strcmp(action, "edit") != 0)
		app_message(a, "%s", vm->error);
	else if (strcmp(action, "console") == 0) {
		if (is_live || vm->state == MODEL_STARTING)
			app_open_tab(a, view_console_new(a, name, PROTO_CONSOLE_PRIMARY));
		else
			app_start_vm(a, name, true);
	} else if (strcmp(action, "start") == 0) {
		if (is_live || vm->state == MODEL_STARTING)
			app_message(a, "%s is %s", name, app_state_name((int)vm->state));
		else
			app_start_vm(a, name, false);
	} else if (strcmp(action, "delete") == 0) {
		if (is_live) {
			app_message(a, "%s runs: stop it first", name);
		} else {
			snprintf(q, sizeof(q),
				 "Delete VM '%s' with its disks and %u snapshot%s? Type its name "
				 "to confirm.",
				 name, vm->snapshots, vm->snapshots == 1 ? "" : "s");
			overlay_confirm(a, q, name, delete_confirmed, ctx_for(a, name));
		}
	} else if (strcmp(action, "take") == 0)
		action_snapshot_take(a, name);
	else if (strcmp(action, "tree") == 0)
		action_snapshot_tree(a, name);
	else if (strcmp(action, "rollback") == 0)
		action_snapshot_rollback(a, name);
	else if (strcmp(action, "edit") == 0)
		action_edit(a, name);
	else if (!is_live)
		app_message(a, "%s is not running", name);
	else if (strcmp(action, "stop") == 0) {
		snprintf(q, sizeof(q),
			 "Stop VM '%s'? Its power button is pressed; it is forced off after 30 s.",
			 name);
		overlay_confirm(a, q, "y", stop_confirmed, ctx_for(a, name));
	} else if (strcmp(action, "force-off") == 0) {
		snprintf(q, sizeof(q), "Force the VM '%s' off now, like pulling the plug?", name);
		overlay_confirm(a, q, "y", force_confirmed, ctx_for(a, name));
	} else if (strcmp(action, "pause") == 0) {
		if (vm->state == MODEL_PAUSED)
			send_verb(a, name, PROTO_RESUME, NULL, 0, "resumed");
		else
			send_verb(a, name, PROTO_PAUSE, NULL, 0, "paused");
	} else {
		return false;
	}
	lv(v)->dirty = true;
	return true;
}

static void list_mouse(struct view *v, int row, int col, unsigned long bstate)
{
	if (row >= 1 && (bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED)))
		select_index(v, lv(v)->first + row - 1);
	else if (bstate & BUTTON4_PRESSED)
		list_action(v, "up");
	else if (bstate & BUTTON5_PRESSED)
		list_action(v, "down");
}

static void list_resize(struct view *v, int rows, int cols)
{
	lv(v)->rows = rows;
	lv(v)->cols = cols;
	lv(v)->dirty = true;
}

static void list_free(struct view *v)
{
	struct list_view *l = lv(v);

	for (size_t i = 0; l->templates && l->templates[i]; i++)
		free(l->templates[i]);
	free(l->templates);
	free(l);
}

static const struct view_ops list_ops = {
	.name = "list",
	.draw = list_draw,
	.action = list_action,
	.mouse = list_mouse,
	.resize = list_resize,
	.dirty = list_dirty,
	.free = list_free,
};

struct view *view_list_new(struct app *app)
{
	struct list_view *l = xcalloc(1, sizeof(*l));

	l->v.ops = &list_ops;
	l->v.app = app;
	l->v.priv = l;
	snprintf(l->v.title, sizeof(l->v.title), "VMs");
	l->dirty = true;
	return &l->v;
}
