/* The snapshot actions of the list and the tree (ui/actions.h, ui/snapops.h):
 * a running VM's snapshots through its verbs, a stopped VM's through
 * `termvisor snapshot` run as a job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/json.h"
#include "src/core/paths.h"
#include "src/core/protocol.h"
#include "src/core/snapstore.h"
#include "ui/actions.h"
#include "ui/app.h"
#include "ui/overlay.h"
#include "ui/snapops.h"
#include "ui/snaptree.h"
#include "ui/view.h"

/* One operation in flight: what the callbacks need once it ends. */
struct snapop {
	struct app *app;
	char vm[80];
	enum snapop_kind kind;
	char tag[SNAP_TAG_MAX + 1];
	char new_tag[SNAP_TAG_MAX + 1];
	bool live;
	snapop_done_fn done;
	void *ctx;
};

int snapop_is_live(struct app *a, const char *vm, bool *live, struct tv_err *err)
{
	const struct model_vm *m = model_find(app_model(a), vm);

	if (m == NULL)
		return tv_errf(err, "no VM named '%s'", vm);
	switch (m->state) {
	case MODEL_RUNNING:
	case MODEL_PAUSED:
		*live = true;
		return 0;
	case MODEL_STARTING:
		return tv_errf(err, "VM %s is starting: its snapshots can be changed once it runs",
			       vm);
	case MODEL_STOPPING:
		return tv_errf(err, "VM %s is stopping: its snapshots can be changed once it has "
				    "stopped",
			       vm);
	default:
		*live = false;
		return 0;
	}
}

void snapop_propose_tag(struct app *a, const char *vm, char *buf, size_t len)
{
	struct tv_err err;
	const struct snapstore *st = model_snapshots(app_model(a), vm, &err);

	if (st != NULL)
		snapstore_propose_tag(st, "snap", buf, len);
	else
		snprintf(buf, len, "snap-1");
}

/* The last line a command printed that says something. */
static void last_line(const char *output, char *buf, size_t len)
{
	const char *end = output + strlen(output), *start;

	while (end > output && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	for (start = end; start > output && start[-1] != '\n';)
		start--;
	snprintf(buf, len, "%.*s", (int)(end - start), start);
}

static void finish(struct snapop *op, bool ok)
{
	model_refresh(app_model(op->app), op->vm);
	if (op->done)
		op->done(op->ctx, ok,
			 !ok || op->kind == SNAPOP_DELETE ? ""
			 : op->kind == SNAPOP_RENAME	 ? op->new_tag
							 : op->tag);
	/* The restored screen is the point of a rollback: show the console. */
	if (ok && op->live && op->kind == SNAPOP_ROLLBACK) {
		struct view *c = view_console_new(op->app, op->vm, PROTO_CONSOLE_PRIMARY);
		if (c != NULL)
			app_open_tab(op->app, c);
	}
	free(op);
}

static void job_done(void *ctx, int status, const char *output)
{
	struct snapop *op = ctx;
	char line[256];

	last_line(output ? output : "", line, sizeof(line));
	if (status == 0)
		app_message(op->app, "%s", line[0] ? line : "done");
	else
		app_message(op->app, "%s", line[0] ? line : "the snapshot command failed");
	finish(op, status == 0);
}

/* A figure of the reply, or -1. */
static double figure(const char *js, size_t len, const char *key)
{
	char buf[64], *end;
	double v;

	if (json_flat_get(js, len, key, buf, sizeof(buf)) < 0)
		return -1;
	v = strtod(buf, &end);
	return end != buf && *end == '\0' ? v : -1;
}

/* What the VM process did, in one line of the message bar. */
static void reply_text(const struct snapop *op, const char *js, size_t len, char *buf,
		       size_t cap)
{
	char tag[SNAP_TAG_MAX + 1], other[SNAP_TAG_MAX + 1], size[32];
	double x, y;
	size_t n = 0;

#define ADD(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
	if (json_flat_get(js, len, "tag", tag, sizeof(tag)) < 0)
		snprintf(tag, sizeof(tag), "%s", op->tag);
	switch (op->kind) {
	case SNAPOP_TAKE:
		ADD("took snapshot '%s' of %s", tag, op->vm);
		if ((x = figure(js, len, "memory_bytes")) >= 0) {
			format_size((uint64_t)x, size, sizeof(size));
			ADD(": %s of memory written", size);
		}
		if ((y = figure(js, len, "pause_ns")) >= 0)
			ADD(", guest paused %.1f ms", y / 1e6);
		break;
	case SNAPOP_ROLLBACK:
		/* What matters first: the message bar may be 80 columns. */
		ADD("rolled %s back to '%s'", op->vm, tag);
		if (json_flat_get(js, len, "automatic", other, sizeof(other)) == 0 &&
		    strcmp(other, "null") != 0)
			ADD("; the state before is '%s'", other);
		if (json_flat_get(js, len, "rebooted", other, sizeof(other)) == 0 &&
		    strcmp(other, "true") == 0)
			ADD("; disk-only: the guest booted afresh");
		if ((x = figure(js, len, "total_ns")) >= 0)
			ADD(" (%.1f ms", x / 1e6);
		if (x >= 0 && (y = figure(js, len, "pause_ns")) >= 0)
			ADD(", guest paused %.1f ms", y / 1e6);
		if (x >= 0)
			ADD(")");
		break;
	case SNAPOP_DELETE:
		ADD("deleted snapshot '%s' of %s", tag, op->vm);
		if ((x = figure(js, len, "freed_bytes")) >= 0) {
			format_size((uint64_t)x, size, sizeof(size));
			ADD(" (%s freed)", size);
		}
		break;
	case SNAPOP_RENAME:
		ADD("renamed snapshot '%s' of %s to '%s'", op->tag, op->vm, tag);
		break;
	}
	if ((x = figure(js, len, "pruned")) > 0)
		ADD("; %.0f old automatic snapshot%s deleted", x, x == 1 ? "" : "s");
#undef ADD
}

static void verb_done(void *ctx, int status, const uint8_t *payload, size_t len, const char *error)
{
	struct snapop *op = ctx;
	char text[512];

	if (status != 0) {
		app_message(op->app, "%s", error ? error : "the VM refused");
		finish(op, false);
		return;
	}
	reply_text(op, (const char *)payload, len, text, sizeof(text));
	/* A take without a tag was named by the VM process. */
	if (op->kind == SNAPOP_TAKE)
		json_flat_get((const char *)payload, len, "tag", op->tag, sizeof(op->tag));
	app_message(op->app, "%s", text);
	finish(op, true);
}

static int run_verb(struct snapop *op, const struct snapop_args *args, struct tv_err *err)
{
	static const uint16_t types[] = {
		[SNAPOP_TAKE] = PROTO_SNAPSHOT_TAKE,
		[SNAPOP_ROLLBACK] = PROTO_SNAPSHOT_ROLLBACK,
		[SNAPOP_DELETE] = PROTO_SNAPSHOT_DELETE,
		[SNAPOP_RENAME] = PROTO_SNAPSHOT_RENAME,
	};
	struct proto_buf b = {0};
	int rc = 0;

	if (args->tag && args->tag[0])
		rc |= proto_kv_put(&b, "tag", args->tag);
	if (args->kind == SNAPOP_RENAME)
		rc |= proto_kv_put(&b, "new", args->new_tag);
	if (args->kind == SNAPOP_TAKE && args->description && args->description[0])
		rc |= proto_kv_put(&b, "description", args->description);
	if (args->kind == SNAPOP_ROLLBACK && args->discard)
		rc |= proto_kv_put(&b, "discard", "1");
	if (rc != 0)
		rc = tv_errf(err, "a snapshot's name and description are one line each");
	else if (app_verb(op->app, op->vm, types[args->kind], b.data, b.len, verb_done, op) < 0)
		rc = tv_errf(err, "VM %s: the request could not be sent", op->vm);
	proto_buf_free(&b);
	return rc;
}

static int run_job(struct snapop *op, const struct snapop_args *args, struct tv_err *err)
{
	const char *argv[10];
	char label[128];
	size_t n = 0;

	argv[n++] = "snapshot";
	switch (args->kind) {
	case SNAPOP_TAKE:
		argv[n++] = "take";
		if (args->description && args->description[0]) {
			argv[n++] = "--description";
			argv[n++] = args->description;
		}
		argv[n++] = op->vm;
		argv[n++] = args->tag;
		break;
	case SNAPOP_ROLLBACK:
		argv[n++] = "rollback";
		if (args->discard)
			argv[n++] = "--discard";
		argv[n++] = op->vm;
		argv[n++] = args->tag;
		break;
	case SNAPOP_DELETE:
		argv[n++] = "delete";
		argv[n++] = op->vm;
		argv[n++] = args->tag;
		break;
	case SNAPOP_RENAME:
		argv[n++] = "rename";
		argv[n++] = op->vm;
		argv[n++] = args->tag;
		argv[n++] = args->new_tag;
		break;
	}
	argv[n] = NULL;
	snprintf(label, sizeof(label), "snapshot %s %s %s", argv[1], op->vm, args->tag);
	if (app_job(op->app, label, argv, job_done, op) < 0)
		return tv_errf(err, "%s: the command could not be started", label);
	return 0;
}

int snapop_run(struct app *a, const char *vm, const struct snapop_args *args, snapop_done_fn done,
	       void *ctx, struct tv_err *err)
{
	struct snapop *op;
	bool live;
	int rc;

	if (snapop_is_live(a, vm, &live, err) < 0)
		return -1;
	if (args->kind != SNAPOP_TAKE && (args->tag == NULL || args->tag[0] == '\0'))
		return tv_errf(err, "which snapshot?");
	if (args->kind == SNAPOP_RENAME && snapstore_tag_check(args->new_tag, err) < 0)
		return -1;
	op = xcalloc(1, sizeof(*op));
	op->app = a;
	snprintf(op->vm, sizeof(op->vm), "%s", vm);
	op->kind = args->kind;
	snprintf(op->tag, sizeof(op->tag), "%s", args->tag ? args->tag : "");
	snprintf(op->new_tag, sizeof(op->new_tag), "%s", args->new_tag ? args->new_tag : "");
	op->live = live;
	op->done = done;
	op->ctx = ctx;
	rc = live ? run_verb(op, args, err) : run_job(op, args, err);
	if (rc < 0)
		free(op);
	return rc;
}

static void clone_done(void *ctx, int status, const char *output)
{
	struct app *a = ctx;
	char line[256];

	last_line(output ? output : "", line, sizeof(line));
	app_message(a, "%s", line[0] ? line : status == 0 ? "cloned" : "the clone failed");
}

int snapop_clone(struct app *a, const char *vm, const char *tag, const char *new_vm, bool linked,
		 struct tv_err *err)
{
	const char *argv[] = {"clone", "--snapshot", tag, vm, new_vm, linked ? "--linked" : NULL,
			      NULL};
	char label[160];

	snprintf(label, sizeof(label), "clone %s %s", vm, new_vm);
	if (app_job(a, label, argv, clone_done, a) < 0)
		return tv_errf(err, "%s: the command could not be started", label);
	return 0;
}

/* ---- `t`: take ---- */

struct take_form {
	struct app *app;
	char vm[80];
	snapop_done_fn done;
	void *ctx;
};

/* "TAG [description]": the name Enter accepts, and what follows it. */
static void take_split(const char *value, char *tag, size_t taglen, const char **desc)
{
	size_t n = strcspn(value, " ");

	snprintf(tag, taglen, "%.*s", (int)n, value);
	for (value += n; *value == ' '; value++)
		;
	*desc = value;
}

static bool take_validate(void *ctx, struct overlay_field *f, size_t n, int field, char *msg,
			  size_t len)
{
	struct take_form *tf = ctx;
	char tag[OVERLAY_FIELD_MAX];
	const char *desc;
	struct tv_err err;
	const struct snapstore *st;

	take_split(f[0].value, tag, sizeof(tag), &desc);
	if (tag[0] == '\0' && field >= 0)
		return true; /* still typing */
	if (snapstore_tag_check(tag, &err) < 0) {
		snprintf(msg, len, "%s", err.msg);
		return false;
	}
	st = model_snapshots(app_model(tf->app), tf->vm, &err);
	if (st != NULL && snapstore_find(st, tag) != NULL) {
		snprintf(msg, len, "VM %s already has a snapshot named '%s'", tf->vm, tag);
		return false;
	}
	return true;
}

static void take_submitted(void *ctx, bool ok, struct overlay_field *f, size_t n)
{
	struct take_form *tf = ctx;
	char tag[OVERLAY_FIELD_MAX];
	struct snapop_args args = {.kind = SNAPOP_TAKE, .tag = tag};
	struct tv_err err;

	bool started = false;

	if (ok) {
		take_split(f[0].value, tag, sizeof(tag), &args.description);
		started = snapop_run(tf->app, tf->vm, &args, tf->done, tf->ctx, &err) == 0;
		if (started)
			app_message(tf->app, "taking snapshot '%s' of %s...", tag, tf->vm);
		else
			app_message(tf->app, "snapshot of %s not taken: %s", tf->vm, err.msg);
	}
	if (!started && tf->done)
		tf->done(tf->ctx, false, "");
	free(tf);
}

void snapop_take_form(struct app *a, const char *vm, snapop_done_fn done, void *ctx)
{
	struct overlay_field f = {
		.label = "Snapshot",
		.hint = "Enter takes it; a description may follow the name after a space",
	};
	struct take_form *tf;
	struct tv_err err;
	bool live;
	char title[160];

	if (snapop_is_live(a, vm, &live, &err) < 0) {
		app_message(a, "%s", err.msg);
		if (done)
			done(ctx, false, "");
		return;
	}
	tf = xcalloc(1, sizeof(*tf));
	tf->app = a;
	snprintf(tf->vm, sizeof(tf->vm), "%s", vm);
	tf->done = done;
	tf->ctx = ctx;
	snapop_propose_tag(a, vm, f.value, sizeof(f.value));
	snprintf(title, sizeof(title), "%s of %s", live ? "Snapshot the whole machine" :
							  "Disk-only snapshot (stopped)", vm);
	overlay_form(a, title, &f, 1, take_validate, take_submitted, tf);
}

void action_snapshot_take(struct app *a, const char *vm)
{
	if (vm == NULL) {
		app_message(a, "no VM selected");
		return;
	}
	snapop_take_form(a, vm, NULL, NULL);
}

/* ---- `T` and `r` from the list: the tree ---- */

static void open_tree(struct app *a, const char *vm, const char *tag)
{
	struct view *v;

	if (vm == NULL) {
		app_message(a, "no VM selected");
		return;
	}
	v = view_snapshots_new(a, vm, tag);
	if (v != NULL)
		app_open_tab(a, v);
}

void action_snapshot_tree(struct app *a, const char *vm)
{
	open_tree(a, vm, NULL);
}

void action_snapshot_rollback(struct app *a, const char *vm)
{
	struct tv_err err;
	const struct snapstore *st;
	struct snaptree t;
	char tag[SNAP_TAG_MAX + 1] = "";
	int r;

	if (vm == NULL) {
		app_message(a, "no VM selected");
		return;
	}
	st = model_snapshots(app_model(a), vm, &err);
	if (st == NULL || st->nrecs == 0) {
		app_message(a, "VM %s has no snapshot to roll back to (t takes one)", vm);
		return;
	}
	snaptree_build(&t, st, 0);
	r = snaptree_newest(&t);
	if (r >= 0)
		snprintf(tag, sizeof(tag), "%s", t.rows[r].tag);
	snaptree_free(&t);
	open_tree(a, vm, tag[0] ? tag : NULL);
	app_message(a, "r again rolls %s back to the snapshot under the cursor", vm);
}
