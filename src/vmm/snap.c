/* Machine snapshots of a live VM, the VM process's side: the verbs take,
 * rollback, delete and rename (termvisor-protocol(7)), and the restore at
 * start-up of a VM rolled back while it was stopped.
 *
 * The VM process is the only writer of a running VM's tree: the command line
 * sends it these verbs and works on the files itself only when the VM is
 * stopped. Each verb takes the tree's lock (without waiting: the main loop
 * must not block), works, and lets it go. The engine (vm/snapshot.h) saves and
 * restores the machine and the disks' internal snapshots; the store
 * (src/core/snapstore.h) gives the directory, the journal and the index whose
 * rewrite is the commit point; this file adds the console screens (the file
 * `console`, console-buf.h) and the order of the steps:
 *
 *   take      begin (.tmp-ID/ and its journal), pause, drain the guest's
 *             output, engine take (state, memory, disk snapshots), console
 *             file, resume, commit. Any failure aborts: the directory goes and
 *             the disks' snapshots are dropped again.
 *   rollback  everything about the target checked first (the engine's check,
 *             the console file), so a bad snapshot leaves the VM untouched;
 *             then an automatic snapshot of the current state (unless
 *             discard=1), pause, restore, the screens replaced and redrawn for
 *             every client, resume, "here" moved. A disk-only target reverts
 *             the disks and boots the guest afresh.
 *   delete    the memory's base let go first when it is the one deleted;
 *             the store re-parents the children and drops the disks'
 *             snapshots through the engine, which has the images open.
 *   rename    the disks' snapshots, then the index (undone when that fails). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/json.h"
#include "src/core/snapstore.h"
#include "src/vmm/control.h"
#include "src/vmm/verbs.h"
#include "src/vmm/vmm-int.h"
#include "vm/block/block.h"
#include "vm/memimg.h"
#include "vm/snapshot.h"

#define CONSOLE_FILE "console"

/* The VM's writable disks as the journal names them: absolute, resolved. */
struct snap_disks {
	char *path[VMDEF_MAX_DISKS];
	const char *cpath[VMDEF_MAX_DISKS];
	size_t n;
};

static void disks_get(const struct vmm *v, struct snap_disks *d)
{
	d->n = 0;
	for (size_t i = 0; i < v->o->cfg.ndisks && i < VMDEF_MAX_DISKS; i++) {
		if (v->o->disks[i].readonly)
			continue; /* the guest cannot change it: nothing to keep */
		char *r = realpath(v->o->disks[i].path, NULL);
		d->path[d->n] = r ? r : xstrdup(v->o->disks[i].path);
		d->cpath[d->n] = d->path[d->n];
		d->n++;
	}
}

static void disks_free(struct snap_disks *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->path[i]);
	d->n = 0;
}

/* Whether the image at disk holds an internal snapshot named tag, read
 * without a lock beside the engine's open image (its snapshot table only
 * changes in these verbs, which run here, one at a time). When it cannot be
 * read, true: the engine's delete then says what is wrong. */
static bool disk_has_snapshot(const char *disk, const char *tag)
{
	struct blk_snapshot *list = NULL;
	struct blk *b;
	bool has = true;
	int n = 0;

	if (blk_open(&b, disk, "qcow2", BLK_SHARE, NULL) < 0)
		return true;
	if (blk_snapshot_list(b, &list, &n, NULL) == 0) {
		has = false;
		for (int i = 0; i < n && !has; i++)
			has = strcmp(list[i].name, tag) == 0;
		blk_snapshot_list_free(list, n);
	}
	blk_close(b, NULL);
	return has;
}

/* The store drops a disk snapshot (abort, recovery, delete, prune): the
 * engine has the VM's images open and drops it on all of them at once, so
 * one call per tag does it and the journal's later disks are no-ops. A disk
 * without it (a take that failed took its own back) is no error, or a
 * half-made snapshot could never be cleared while the VM runs. */
static int drop_disk_snapshot(void *ctx, const char *disk, const char *tag, struct tv_err *err)
{
	struct vmm *v = ctx;

	if (v->vm == NULL || strcmp(v->dropped, tag) == 0 || !disk_has_snapshot(disk, tag))
		return 0;
	snprintf(v->dropped, sizeof(v->dropped), "%s", tag);
	return vm_disk_snapshot(v->vm, VM_DISK_SNAP_DELETE, tag, NULL, err);
}

static int store_open(struct vmm *v, struct snapstore *st, struct tv_err *err)
{
	struct snapstore_disk_ops ops = {.drop = drop_disk_snapshot, .ctx = v};
	char *data = paths_vm_data(&v->paths, v->name);
	int rc;

	v->dropped[0] = '\0';
	rc = snapstore_open(st, data, SNAPSTORE_LOCK | SNAPSTORE_NOWAIT, &ops, err);
	free(data);
	return rc;
}

/* ---- the reply ---- */

struct reply {
	char *text;
	size_t len;
	FILE *f;
};

static void reply_begin(struct reply *r, const char *op)
{
	r->text = NULL;
	r->len = 0;
	r->f = open_memstream(&r->text, &r->len);
	if (r->f == NULL)
		abort();
	fprintf(r->f, "{\"op\": \"%s\"", op);
}

static void reply_str(struct reply *r, const char *key, const char *value)
{
	fprintf(r->f, ", \"%s\": ", key);
	json_string(r->f, value);
}

static void reply_u64(struct reply *r, const char *key, uint64_t value)
{
	fprintf(r->f, ", \"%s\": %llu", key, (unsigned long long)value);
}

static void reply_bool(struct reply *r, const char *key, bool value)
{
	fprintf(r->f, ", \"%s\": %s", key, value ? "true" : "false");
}

static void reply_id(struct reply *r, const char *key, uint64_t id)
{
	char text[SNAP_ID_DIGITS + 1];

	if (id == 0) {
		fprintf(r->f, ", \"%s\": null", key);
		return;
	}
	snapstore_id_text(id, text);
	reply_str(r, key, text);
}

static enum verb_result reply_send(struct reply *r, struct verb_call *call)
{
	fputs("}", r->f);
	fclose(r->f);
	proto_put_frame(call->out, PROTO_SNAPSHOT_REPLY, r->text, r->len);
	free(r->text);
	return VERB_REPLIED;
}

/* ---- the event ---- */

/* Every subscribed or attached client hears that the tree changed (after the
 * asker's reply, which is queued first): "take TAG", "rollback TAG",
 * "delete TAG", "rename OLD NEW". */
static void tree_changed(struct vmm *v, const char *op, const char *tag, const char *new_tag)
{
	char text[16 + 2 * (SNAP_TAG_MAX + 1)];

	if (v->ctl == NULL)
		return;
	snprintf(text, sizeof(text), "%s %s%s%s", op, tag, new_tag ? " " : "",
		 new_tag ? new_tag : "");
	control_event(v->ctl, PROTO_EV_SNAPSHOT, text);
}

/* ---- the payload ---- */

/* A key's value; "" when absent. -1 with a message when it does not fit. */
static int kv(const struct verb_call *call, const char *key, char *buf, size_t len,
	      struct tv_err *err)
{
	int n = proto_kv_get(call->f->payload, call->f->len, key, buf, len);

	if (n == -2)
		return tv_errf(err, "%s: the value of %s is too long (at most %zu bytes) or holds a NUL",
			       verb_find(vmm_verbs, call->f->type)->name, key, len - 1);
	if (n < 0)
		buf[0] = '\0';
	return 0;
}

static bool kv_flag(const struct verb_call *call, const char *key)
{
	char buf[8];

	return proto_kv_get(call->f->payload, call->f->len, key, buf, sizeof(buf)) > 0 &&
	       strcmp(buf, "1") == 0;
}

/* The snapshot a verb names (tag=), in the store opened and locked for it;
 * NULL with the message (the store closed again) when there is none. */
/* A disk holding requests (a full disk) keeps its queue busy until the VM
 * is resumed: the snapshot could not wait for it to settle. */
static int refuse_held(struct verb_call *call)
{
	struct vmm *v = call->vm;
	char why[PROTO_REASON_MAX + 1];

	if (v->vm == NULL || !vm_hold_reason(v->vm, why, sizeof(why)))
		return 0;
	return tv_errf(&call->err,
		       "VM %s is paused (%s): free space on the host and resume it first",
		       v->name, why);
}

static const struct snap_record *target(struct verb_call *call, struct snapstore *st, char *tag,
					size_t len)
{
	struct vmm *v = call->vm;
	const struct snap_record *rec;

	if (refuse_held(call) < 0 || kv(call, "tag", tag, len, &call->err) < 0)
		return NULL;
	if (*tag == '\0')
		return tv_errf(&call->err, "%s: which snapshot? (tag=)",
			       verb_find(vmm_verbs, call->f->type)->name),
		       NULL;
	if (store_open(v, st, &call->err) < 0)
		return NULL;
	rec = snapstore_find(st, tag);
	if (rec == NULL) {
		tv_errf(&call->err, "VM %s has no snapshot %s", v->name, tag);
		snapstore_close(st);
	}
	return rec;
}

/* ---- the consoles ---- */

static void screens(struct vmm *v, struct console_buf *cbs[CONSOLE_NPORTS])
{
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		cbs[i] = v->con[i].cb;
}

/* The restored screens take the place of the old ones: at the size the
 * consoles have now (their clients' windows did not change), the guards and
 * the keys not yet taken start afresh, and everyone who shows a console gets
 * it redrawn, as on a new attach. */
static void screens_restore(struct vmm *v, const struct console_file *cf)
{
	struct console_buf *cbs[CONSOLE_NPORTS];
	int rows[CONSOLE_NPORTS], cols[CONSOLE_NPORTS];

	screens(v, cbs);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		if (cbs[i])
			console_buf_size(cbs[i], &rows[i], &cols[i]);
	console_file_apply(cf, cbs, CONSOLE_NPORTS);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++) {
		if (cbs[i])
			console_buf_resize(cbs[i], rows[i], cols[i]);
		memset(&v->con[i].guard, 0, sizeof(v->con[i].guard));
		v->con[i].input.len = 0;
	}
	vmm_redraw(v);
}

/* ---- take ---- */

struct take_result {
	uint64_t id;
	char tag[SNAP_TAG_MAX + 1];
	bool memory;
	uint64_t pause_ns, total_ns;
	struct vm_snapshot_stats st;
};

/* Takes a snapshot into the locked store st: tag NULL proposes one. */
static int take(struct vmm *v, struct snapstore *st, const char *tag, const char *description,
		bool automatic, struct take_result *res, struct tv_err *err)
{
	uint64_t t0 = monotonic_ns(), p0 = 0;
	struct console_buf *cbs[CONSOLE_NPORTS];
	struct snap_disks d;
	struct snap_txn t;
	char proposed[SNAP_TAG_MAX + 1];
	bool was_running = !vm_paused(v->vm), took = false;
	char *console = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (tag == NULL || *tag == '\0') {
		snapstore_propose_tag(st, automatic ? "auto" : "snap", proposed, sizeof(proposed));
		tag = proposed;
	}
	disks_get(v, &d);
	if (snapstore_begin(st, tag, description, true, automatic, d.cpath, d.n, &t, err) < 0) {
		disks_free(&d);
		return -1;
	}
	/* Held from here to the resume: the guest's output up to this point
	 * lands on the screens that are saved with it. */
	p0 = monotonic_ns();
	if (was_running && vmm_pause(v, err) < 0)
		goto out;
	vmm_drain_output(v);
	if (vm_snapshot_take(v->vm, t.dir, d.n ? t.rec.tag : NULL, &res->st, err) < 0)
		goto out;
	took = true;
	console = xasprintf("%s/" CONSOLE_FILE, t.dir);
	screens(v, cbs);
	if (console_buf_save_file(cbs, CONSOLE_NPORTS, console, err) < 0)
		goto out;
	if (was_running && vm_resume(v->vm, err) < 0)
		goto out;
	res->pause_ns = monotonic_ns() - p0;
	p0 = 0;
	res->id = t.rec.id; /* the commit frees t */
	snprintf(res->tag, sizeof(res->tag), "%s", t.rec.tag);
	res->memory = true;
	if (snapstore_commit(&t, err) < 0) {
		res->id = 0;
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && took)
		memimg_forget_base(v->vm); /* its image goes with the directory */
	if (p0 != 0 && was_running && vm_paused(v->vm)) {
		struct tv_err e2;
		if (vm_resume(v->vm, &e2) < 0)
			vmm_log(v, "snapshot %s: cannot resume the VM: %s", tag, e2.msg);
	}
	snapstore_abort(&t); /* after a commit: only frees */
	free(console);
	disks_free(&d);
	res->total_ns = monotonic_ns() - t0;
	return rc;
}

static void reply_take(struct reply *r, const struct take_result *res)
{
	reply_id(r, "id", res->id);
	reply_str(r, "tag", res->tag);
	reply_bool(r, "memory", res->memory);
	reply_bool(r, "full", res->st.mem.full);
	reply_u64(r, "depth", res->st.mem.depth);
	reply_u64(r, "pause_ns", res->pause_ns);
	reply_u64(r, "engine_pause_ns", res->st.pause_ns);
	reply_u64(r, "memory_pages", res->st.mem.pages_written);
	reply_u64(r, "memory_bytes", res->st.mem.pages_written * 4096);
	reply_u64(r, "memory_disk_bytes", res->st.mem.disk_bytes);
	reply_u64(r, "state_bytes", res->st.state_bytes);
	reply_u64(r, "total_ns", res->total_ns);
}

/* snapshot_keep_automatic in termvisor.conf, as the launcher read it (the
 * engine does not link the settings' parser). */
static unsigned keep_automatic(struct vmm *v)
{
	return v->o->keep_automatic_set ? v->o->keep_automatic : SNAP_KEEP_AUTOMATIC_DEFAULT;
}

/* Returns how many automatic snapshots went. */
static unsigned prune(struct vmm *v, struct snapstore *st)
{
	struct snap_disks d;
	struct tv_err err;
	int n;

	disks_get(v, &d);
	n = snapstore_prune_automatic(st, keep_automatic(v), d.cpath, d.n, &err);
	if (n < 0)
		vmm_log(v, "pruning automatic snapshots: %s", err.msg);
	else if (n > 0)
		vmm_log(v, "%d automatic snapshot%s pruned", n, n == 1 ? "" : "s");
	disks_free(&d);
	return n > 0 ? (unsigned)n : 0;
}

enum verb_result vmm_verb_snapshot_take(struct verb_call *call)
{
	struct vmm *v = call->vm;
	char tag[SNAP_TAG_MAX + 1], desc[SNAP_DESC_MAX + 1];
	bool automatic = kv_flag(call, "automatic");
	struct take_result res;
	struct snapstore st;
	struct reply r;
	unsigned pruned = 0;
	int rc;

	if (refuse_held(call) < 0 || kv(call, "tag", tag, sizeof(tag), &call->err) < 0 ||
	    kv(call, "description", desc, sizeof(desc), &call->err) < 0)
		return VERB_ERROR;
	if (*tag && snapstore_tag_check(tag, &call->err) < 0)
		return VERB_ERROR;
	if (store_open(v, &st, &call->err) < 0)
		return VERB_ERROR;
	rc = take(v, &st, tag, desc, automatic, &res, &call->err);
	if (rc == 0 && automatic)
		pruned = prune(v, &st);
	snapstore_close(&st);
	if (rc < 0) {
		tv_err_prefix(&call->err, "snapshot of VM %s not taken: ", v->name);
		vmm_log(v, "%s", call->err.msg);
		return VERB_ERROR;
	}
	vmm_log(v, "snapshot %s taken (%s image, guest paused %.1f ms)", res.tag,
		res.st.mem.full ? "full" : "diff", res.pause_ns / 1e6);
	reply_begin(&r, "take");
	reply_take(&r, &res);
	reply_u64(&r, "pruned", pruned);
	reply_send(&r, call);
	tree_changed(v, "take", res.tag, NULL);
	return VERB_REPLIED;
}

/* ---- rollback ---- */

enum verb_result vmm_verb_snapshot_rollback(struct verb_call *call)
{
	struct vmm *v = call->vm;
	char tag[SNAP_TAG_MAX + 1], desc[SNAP_TAG_MAX + 64];
	bool discard = kv_flag(call, "discard"), was_running, rebooted = false;
	unsigned pruned = 0;
	const struct snap_record *rec;
	struct console_file *cf = NULL;
	struct take_result autotake = {0};
	uint64_t t0 = monotonic_ns(), p0, restore_ns = 0, pause_ns = 0, id;
	struct snapstore st;
	struct snap_disks d = {.n = 0};
	char *dir = NULL, *console = NULL;
	struct reply r;
	enum verb_result vr = VERB_ERROR;

	if ((rec = target(call, &st, tag, sizeof(tag))) == NULL)
		return VERB_ERROR;
	id = rec->id;
	disks_get(v, &d);
	dir = snapstore_path(&st, id);
	/* The vCPUs are held from the check to the end: the engine's check
	 * reads the vCPUs' capabilities, which waits for a running vCPU to
	 * leave the guest (forever, when the guest halts with no timer). */
	was_running = !vm_paused(v->vm);
	p0 = monotonic_ns();
	if (was_running && vmm_pause(v, &call->err) < 0)
		goto refused;
	/* Everything about the target is checked before anything changes. */
	if (rec->memory) {
		if (vm_snapshot_check(v->vm, dir, d.n ? tag : NULL, &call->err) < 0)
			goto refused;
		console = xasprintf("%s/" CONSOLE_FILE, dir);
		if (access(console, F_OK) == 0 &&
		    (cf = console_file_read(console, CONSOLE_NPORTS, &call->err)) == NULL)
			goto refused;
	}
	if (!discard) {
		snprintf(desc, sizeof(desc), "before rollback to '%s'", tag);
		if (take(v, &st, NULL, desc, true, &autotake, &call->err) < 0) {
			tv_err_prefix(&call->err, "the automatic snapshot before the rollback failed "
						  "(discard=1 skips it): ");
			goto refused;
		}
		rec = snapstore_get(&st, id); /* the index was rewritten */
		if (rec == NULL) {
			tv_errf(&call->err, "snapshot %s left the index", tag);
			goto refused;
		}
	}
	if (!rec->memory) {
		/* Disks only: as they were, and the guest boots afresh on them. */
		if (d.n > 0 && vm_disk_snapshot(v->vm, VM_DISK_SNAP_APPLY, tag, NULL, &call->err) < 0)
			goto refused;
		vmm_log(v, "rollback to %s (disks only): the guest boots again", tag);
		if (vmm_machine_restart(v, &call->err) < 0) {
			tv_err_prefix(&call->err, "the disks were reverted to %s, but the guest "
						  "cannot boot again: ", tag);
			v->ended = true;
			goto out;
		}
		rebooted = true;
	} else {
		vmm_drain_output(v);
		uint64_t r0 = monotonic_ns();
		if (vm_snapshot_restore(v->vm, dir, d.n ? tag : NULL, &call->err) < 0) {
			/* Checked and still failed: the machine is not whole any more. */
			tv_err_prefix(&call->err, "rollback to %s failed after it began; the VM is "
						  "stopped%s: ",
				      tag, autotake.id ? " (its state before is the automatic snapshot)"
						       : "");
			vmm_log(v, "%s", call->err.msg);
			vm_request_stop(v->vm);
			goto out;
		}
		restore_ns = monotonic_ns() - r0;
		if (cf != NULL)
			screens_restore(v, cf);
		vmm_console_sizes(v);
		if (was_running && vm_resume(v->vm, &call->err) < 0) {
			vmm_log(v, "rollback to %s: %s", tag, call->err.msg);
			goto out;
		}
		pause_ns = monotonic_ns() - p0;
	}
	if (snapstore_set_here(&st, id, false, &call->err) < 0) {
		/* The machine is back; only the tree's mark could not be moved. */
		vmm_log(v, "rollback to %s: %s", tag, call->err.msg);
	}
	if (autotake.id)
		pruned = prune(v, &st);
	vmm_log(v, "rolled back to %s in %.1f ms (guest held %.1f ms)%s%s", tag,
		(monotonic_ns() - t0) / 1e6, pause_ns / 1e6,
		autotake.id ? "; the state before is " : "", autotake.id ? autotake.tag : "");
	reply_begin(&r, "rollback");
	reply_id(&r, "id", id);
	reply_str(&r, "tag", tag);
	reply_bool(&r, "memory", !rebooted);
	reply_bool(&r, "rebooted", rebooted);
	if (rebooted)
		reply_str(&r, "note", "a disk-only snapshot: the disks were reverted and the guest "
				      "booted afresh");
	reply_bool(&r, "console", cf != NULL);
	reply_id(&r, "automatic_id", autotake.id);
	reply_str(&r, "automatic", autotake.id ? autotake.tag : NULL);
	if (autotake.id) {
		reply_u64(&r, "automatic_pause_ns", autotake.pause_ns);
		reply_bool(&r, "automatic_full", autotake.st.mem.full);
		reply_u64(&r, "automatic_memory_bytes", autotake.st.mem.pages_written * 4096);
	}
	reply_u64(&r, "pruned", pruned);
	reply_u64(&r, "restore_ns", restore_ns);
	reply_u64(&r, "pause_ns", pause_ns);
	reply_u64(&r, "total_ns", monotonic_ns() - t0);
	vr = reply_send(&r, call);
	tree_changed(v, "rollback", tag, NULL);
	goto out;
refused:
	if (was_running && vm_paused(v->vm)) {
		struct tv_err e2;
		if (vm_resume(v->vm, &e2) < 0)
			vmm_log(v, "rollback to %s: cannot resume: %s", tag, e2.msg);
	}
	tv_err_prefix(&call->err, "rollback of VM %s to %s refused, the VM is as it was: ", v->name,
		      tag);
out:
	console_file_free(cf);
	free(console);
	free(dir);
	disks_free(&d);
	snapstore_close(&st);
	return vr;
}

/* ---- delete, rename ---- */

enum verb_result vmm_verb_snapshot_delete(struct verb_call *call)
{
	struct vmm *v = call->vm;
	char tag[SNAP_TAG_MAX + 1];
	const struct snap_record *rec;
	struct snap_disks d = {.n = 0};
	struct snapstore st;
	uint64_t id, bytes = 0;
	struct tv_err e2;
	struct reply r;
	enum verb_result vr = VERB_ERROR;

	if ((rec = target(call, &st, tag, sizeof(tag))) == NULL)
		return VERB_ERROR;
	id = rec->id;
	/* The memory's next diff must not name an image that is gone. */
	if (id == st.here && memimg_base_deleted(v->vm, &call->err) < 0)
		goto out;
	if (snapstore_du(&st, id, &bytes, &e2) < 0)
		bytes = 0;
	disks_get(v, &d);
	if (snapstore_delete(&st, tag, d.cpath, d.n, &call->err) < 0)
		goto out;
	vmm_log(v, "snapshot %s deleted", tag);
	reply_begin(&r, "delete");
	reply_id(&r, "id", id);
	reply_str(&r, "tag", tag);
	reply_u64(&r, "freed_bytes", bytes);
	reply_id(&r, "here", st.here);
	vr = reply_send(&r, call);
	tree_changed(v, "delete", tag, NULL);
out:
	disks_free(&d);
	snapstore_close(&st);
	return vr;
}

enum verb_result vmm_verb_snapshot_rename(struct verb_call *call)
{
	struct vmm *v = call->vm;
	char tag[SNAP_TAG_MAX + 1], new_tag[SNAP_TAG_MAX + 1];
	const struct snap_record *rec;
	struct snapstore st;
	struct tv_err e2;
	struct reply r;
	bool disks = v->o->cfg.ndisks > 0;
	uint64_t id;

	if (kv(call, "new", new_tag, sizeof(new_tag), &call->err) < 0 ||
	    snapstore_tag_check(new_tag, &call->err) < 0)
		return VERB_ERROR;
	if ((rec = target(call, &st, tag, sizeof(tag))) == NULL)
		return VERB_ERROR;
	if (snapstore_find(&st, new_tag) != NULL) {
		tv_errf(&call->err, "VM %s already has a snapshot %s", v->name, new_tag);
		goto fail;
	}
	id = rec->id;
	if (disks && vm_disk_snapshot(v->vm, VM_DISK_SNAP_RENAME, tag, new_tag, &call->err) < 0)
		goto fail;
	if (snapstore_rename(&st, tag, new_tag, &call->err) < 0) {
		if (disks && vm_disk_snapshot(v->vm, VM_DISK_SNAP_RENAME, new_tag, tag, &e2) < 0)
			vmm_log(v, "renaming the disks' snapshots %s back to %s: %s", new_tag, tag,
				e2.msg);
		goto fail;
	}
	snapstore_close(&st);
	vmm_log(v, "snapshot %s renamed %s", tag, new_tag);
	reply_begin(&r, "rename");
	reply_id(&r, "id", id);
	reply_str(&r, "tag", new_tag);
	reply_str(&r, "old_tag", tag);
	reply_send(&r, call);
	tree_changed(v, "rename", tag, new_tag);
	return VERB_REPLIED;
fail:
	snapstore_close(&st);
	return VERB_ERROR;
}

/* ---- start-up ---- */

/* Before the machine is built: a store left mid-change by a VM process that
 * died is recovered (its images are not open yet, so the store's own disk
 * ops do it), and a rollback made while the VM was stopped is looked up. */
int vmm_snapshot_startup(struct vmm *v, struct tv_err *err)
{
	struct snapstore st;
	char *data, *snaps;
	int rc = 0;

	if (v->o->restore_dir != NULL) {
		v->restore_dir = xstrdup(v->o->restore_dir);
		v->restore_tag = v->o->restore_tag ? xstrdup(v->o->restore_tag) : NULL;
		return 0;
	}
	if (v->o->name == NULL)
		return 0;
	data = paths_vm_data(&v->paths, v->name);
	snaps = xasprintf("%s/snapshots", data);
	if (access(snaps, F_OK) == 0) {
		rc = snapstore_open(&st, data, SNAPSTORE_LOCK, NULL, err);
		if (rc == 0) {
			if (st.pending_restore != 0) {
				v->pending_restore = st.pending_restore;
				v->restore_dir = snapstore_path(&st, st.pending_restore);
			}
			snapstore_close(&st);
		}
	}
	free(snaps);
	free(data);
	return rc;
}

/* The machine is built, not started: a pending restore puts it where the
 * snapshot was. An explicit --restore that fails fails the start; a pending
 * one is cleared whether it worked or not (a failure is logged and the guest
 * boots afresh), so a bad snapshot cannot keep the VM from starting. */
int vmm_snapshot_pending(struct vmm *v, struct tv_err *err)
{
	struct console_buf *cbs[CONSOLE_NPORTS];
	struct console_file *cf = NULL;
	struct tv_err e;
	char *console;
	int rc = 0;

	if (v->restore_dir == NULL)
		return 0;
	console = xasprintf("%s/" CONSOLE_FILE, v->restore_dir);
	if (access(console, F_OK) == 0)
		cf = console_file_read(console, CONSOLE_NPORTS, &e);
	if (access(console, F_OK) == 0 && cf == NULL)
		rc = -1;
	else
		rc = vm_snapshot_restore(v->vm, v->restore_dir, v->restore_tag, &e);
	if (rc == 0) {
		screens(v, cbs);
		if (cf != NULL)
			console_file_apply(cf, cbs, CONSOLE_NPORTS);
		vmm_console_sizes(v); /* the terminal's, not the snapshot's */
		vmm_redraw(v);
		vmm_log(v, "restored from the snapshot in %s", v->restore_dir);
	} else if (v->pending_restore == 0) {
		tv_errf(err, "cannot restore %s: %s", v->restore_dir, e.msg);
	} else {
		vmm_log(v, "the pending restore from %s failed, booting afresh: %s", v->restore_dir,
			e.msg);
		rc = vmm_machine_rebuild(v, err);
	}
	if (v->pending_restore != 0) {
		struct snapstore st;
		struct tv_err e2;
		if (store_open(v, &st, &e2) < 0) {
			vmm_log(v, "clearing the pending restore: %s", e2.msg);
		} else {
			if (snapstore_set_here(&st, v->pending_restore, false, &e2) < 0)
				vmm_log(v, "clearing the pending restore: %s", e2.msg);
			snapstore_close(&st);
		}
	}
	console_file_free(cf);
	free(console);
	return rc;
}
