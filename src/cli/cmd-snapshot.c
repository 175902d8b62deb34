/* `termvisor snapshot take|list|rollback|delete|rename|show`: a running VM's
 * snapshots go through its control socket (the VM process does the work); a
 * stopped VM's are disk-only and made here, on its qcow2 images. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/client.h"
#include "src/core/json.h"
#include "src/core/paths.h"
#include "src/core/protocol.h"
#include "src/core/runtime.h"
#include "src/core/settings.h"
#include "src/core/snapstore.h"
#include "src/core/vmdef.h"
#include "src/core/vmops.h"
#include "vm/block/block.h"
#include "vm/memimg.h"
#include "vm/snapshot.h"
#include "common/util.h"

/* The VM a subcommand works on. */
struct snap_vm {
	const char *name;
	struct tv_paths paths;
	char *datadir;
	struct vmdef def;
	bool have_def;
	bool live;
	char **disks; /* its writable qcow2 disks, absolute */
	size_t ndisks;
	char *raw;    /* the first writable raw disk, or NULL */
};

static void vm_done(struct snap_vm *v)
{
	for (size_t i = 0; i < v->ndisks; i++)
		free(v->disks[i]);
	free(v->disks);
	free(v->raw);
	if (v->have_def)
		vmdef_free(&v->def);
	free(v->datadir);
	paths_free(&v->paths);
}

static char *absolute(char *path)
{
	char cwd[4096];

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return path;
	char *abs = xasprintf("%s/%s", cwd, path);
	free(path);
	return abs;
}

static int vm_load(struct snap_vm *v, const char *name, struct tv_err *err)
{
	memset(v, 0, sizeof(*v));
	v->name = name;
	if (vm_name_check(name, err) < 0 || paths_init(&v->paths, err) < 0)
		return -1;
	if (!vm_exists(&v->paths, name))
		return tv_errf(err, "no VM named '%s' (termvisor list shows them)", name);
	char *conf = paths_vm_conf(&v->paths, name);
	v->datadir = absolute(paths_vm_data(&v->paths, name));
	int rc = vmdef_load(conf, v->datadir, &v->def, NULL, NULL, err);
	free(conf);
	if (rc < 0)
		return -1;
	v->have_def = true;
	v->live = vm_is_live(&v->paths, name);
	v->disks = xcalloc(v->def.ndisks + 1, sizeof(char *));
	for (size_t i = 0; i < v->def.ndisks; i++) {
		const struct vmdef_disk *d = &v->def.disks[i];
		if (d->readonly) /* the guest cannot change it: nothing to keep */
			continue;
		char *path = absolute(vmdef_path(&v->def, d->file));
		if (d->format == DISK_FORMAT_RAW) {
			if (v->raw == NULL)
				v->raw = path;
			else
				free(path);
			continue;
		}
		v->disks[v->ndisks++] = path;
	}
	return 0;
}

static const char *const *disk_list(const struct snap_vm *v)
{
	return (const char *const *)v->disks;
}

static int open_store(struct snap_vm *v, struct snapstore *st, bool lock, struct tv_err *err)
{
	return snapstore_open(st, v->datadir, lock ? SNAPSTORE_LOCK : 0, NULL, err);
}

static const struct snap_record *find_tag(const struct snap_vm *v, const struct snapstore *st,
					  const char *tag, struct tv_err *err)
{
	const struct snap_record *r = snapstore_find(st, tag);

	if (r == NULL)
		tv_errf(err, "VM %s has no snapshot named '%s' (termvisor snapshot list %s)", v->name,
			tag, v->name);
	return r;
}

/* ---- a stopped VM's disks ---- */

enum disk_op { DISK_CREATE, DISK_APPLY };

static int disks_do(const struct snap_vm *v, enum disk_op op, const char *tag, struct tv_err *err)
{
	for (size_t i = 0; i < v->ndisks; i++) {
		struct blk *b;
		int rc;
		if (blk_open(&b, v->disks[i], "qcow2", 0, err) < 0)
			return -1;
		rc = op == DISK_CREATE ? blk_snapshot_create(b, tag, 0, 0, err)
				       : blk_snapshot_apply(b, tag, err);
		if (blk_close(b, rc < 0 ? NULL : err) < 0 || rc < 0)
			return tv_err_prefix(err, "%s: ", v->disks[i]);
	}
	return 0;
}

static int need_qcow2(const struct snap_vm *v, struct tv_err *err)
{
	if (v->raw)
		return tv_errf(err,
			       "VM %s: disk %s is raw; snapshots live inside qcow2 images. Convert "
			       "it (termvisor img convert -O qcow2 OLD NEW) and name the new file in "
			       "the VM's definition",
			       v->name, v->raw);
	if (v->ndisks == 0)
		return tv_errf(err,
			       "VM %s is stopped and has no writable disk: a stopped VM's snapshot "
			       "holds only its disks. Start it to snapshot its memory",
			       v->name);
	return 0;
}

/* A tag that some disk already uses (a snapshot made with another tool) is
 * refused: undoing a failed take drops the tag from every disk. */
static int disks_lack_tag(const struct snap_vm *v, const char *tag, struct tv_err *err)
{
	for (size_t i = 0; i < v->ndisks; i++) {
		struct blk_snapshot *list = NULL;
		struct blk *b;
		int n = 0, rc;
		if (blk_open(&b, v->disks[i], "qcow2", BLK_READONLY, err) < 0)
			return -1;
		rc = blk_snapshot_list(b, &list, &n, err);
		for (int k = 0; rc == 0 && k < n; k++)
			if (strcmp(list[k].name, tag) == 0)
				rc = tv_errf(err,
					     "%s already holds an internal snapshot named '%s' "
					     "that is not one of termvisor's; pick another tag, or "
					     "delete it (qemu-img snapshot -d %s %s)",
					     v->disks[i], tag, tag, v->disks[i]);
		blk_snapshot_list_free(list, n);
		blk_close(b, NULL);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* A disk-only snapshot of a stopped VM, under the store's lock. */
static int take_stopped(struct snap_vm *v, struct snapstore *st, const char *tag,
			const char *desc, bool automatic, struct tv_err *err)
{
	struct snap_txn t;

	if (snapstore_find(st, tag) == NULL && disks_lack_tag(v, tag, err) < 0)
		return -1;
	if (snapstore_begin(st, tag, desc, false, automatic, disk_list(v), v->ndisks, &t, err) < 0)
		return -1;
	if (disks_do(v, DISK_CREATE, tag, err) < 0 || snapstore_commit(&t, err) < 0) {
		snapstore_abort(&t);
		return -1;
	}
	return 0;
}

/* ---- a running VM: one verb and its JSON reply ---- */

static bool json_num(const char *js, size_t len, const char *key, double *v)
{
	char buf[64], *end;

	if (json_flat_get(js, len, key, buf, sizeof(buf)) < 0)
		return false;
	*v = strtod(buf, &end);
	return *end == 0 && end != buf;
}

static void human_bytes(double b, char *buf, size_t len)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f bytes", b);
	else
		snprintf(buf, len, "%.1f %s", b, units[u]);
}

/* What the VM process did, from its reply (keys in src/core/snapstore.h);
 * absent figures are left out. */
static void print_reply(const struct snap_vm *v, uint16_t type, const char *js, size_t len)
{
	char tag[SNAP_TAG_MAX + 1] = "?", text[256], size[32];
	double x, y;

	json_flat_get(js, len, "tag", tag, sizeof(tag));
	switch (type) {
	case PROTO_SNAPSHOT_TAKE:
		printf("took snapshot '%s' of VM %s", tag, v->name);
		if (json_num(js, len, "memory_bytes", &x)) {
			human_bytes(x, size, sizeof(size));
			printf(": %s of memory written", size);
			if (json_flat_get(js, len, "full", text, sizeof(text)) == 0)
				printf(" (%s)", strcmp(text, "true") == 0 ? "a full image"
									  : "the pages changed since");
			if (json_num(js, len, "pause_ns", &y))
				printf(", guest paused %.1f ms", y / 1e6);
		}
		break;
	case PROTO_SNAPSHOT_ROLLBACK:
		printf("rolled back VM %s to snapshot '%s'", v->name, tag);
		if (json_num(js, len, "total_ns", &x))
			printf(" in %.1f ms", x / 1e6);
		if (json_num(js, len, "pause_ns", &y))
			printf(" (guest paused %.1f ms)", y / 1e6);
		if (json_flat_get(js, len, "automatic", text, sizeof(text)) == 0 &&
		    strcmp(text, "null") != 0)
			printf("; the state before was saved as '%s'", text);
		if (json_flat_get(js, len, "rebooted", text, sizeof(text)) == 0 &&
		    strcmp(text, "true") == 0)
			printf("; a disk-only snapshot: the disks were reverted and the guest booted "
			       "afresh");
		break;
	case PROTO_SNAPSHOT_DELETE:
		printf("deleted snapshot '%s' of VM %s", tag, v->name);
		if (json_num(js, len, "freed_bytes", &x)) {
			human_bytes(x, size, sizeof(size));
			printf(" (%s freed)", size);
		}
		break;
	case PROTO_SNAPSHOT_RENAME:
		json_flat_get(js, len, "old_tag", text, sizeof(text));
		printf("renamed snapshot '%s' of VM %s to '%s'", text, v->name, tag);
		break;
	}
	if (json_num(js, len, "pruned", &x) && x > 0)
		printf("; %.0f old automatic snapshot%s deleted", x, x == 1 ? "" : "s");
	printf("\n");
}

/* Sends the verb and prints what the reply says was done. */
static int send_verb(struct snap_vm *v, uint16_t type, struct proto_buf *payload,
		     struct tv_err *err)
{
	struct tv_client *c = client_connect(&v->paths, v->name, err);
	struct proto_frame reply;
	uint8_t *rp = NULL;
	int rc;

	if (c == NULL)
		return -1;
	rc = client_request_timeout(c, type, payload->data, payload->len,
				    CLIENT_SNAPSHOT_TIMEOUT_MS, &reply, &rp, err);
	client_close(c);
	if (rc < 0)
		return -1;
	if (reply.type != PROTO_SNAPSHOT_REPLY) {
		free(rp);
		return tv_errf(err, "VM %s answered with %s, not a snapshot reply", v->name,
			       proto_type_name(reply.type));
	}
	print_reply(v, type, (const char *)rp, reply.len);
	free(rp);
	return 0;
}

static int live_verb(struct snap_vm *v, uint16_t type, const char *const *kv, struct tv_err *err)
{
	struct proto_buf b = {0};
	int rc = 0;

	for (size_t i = 0; kv[i] != NULL && rc == 0; i += 2)
		if (kv[i + 1] != NULL && proto_kv_put(&b, kv[i], kv[i + 1]) < 0)
			rc = tv_errf(err, "%s: must be one line", kv[i]);
	if (rc == 0)
		rc = send_verb(v, type, &b, err);
	proto_buf_free(&b);
	return rc;
}

/* ---- subcommands ---- */

struct snap_opts {
	const char *description;
	bool tree, json, discard;
};

static int snap_take(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		     struct tv_err *err)
{
	const char *tag = argc > 1 ? argv[1] : NULL;
	char proposed[SNAP_TAG_MAX + 1];
	struct snapstore st;

	if (argc > 2)
		return tv_errf(err, "take: expected NAME [TAG]");
	if (tag && snapstore_tag_check(tag, err) < 0)
		return -1;
	if (o->description && strlen(o->description) > SNAP_DESC_MAX)
		return tv_errf(err, "--description: longer than %d bytes", SNAP_DESC_MAX);
	if (v->live) {
		/* No tag: the VM process proposes one under its lock. */
		const char *kv[] = {"tag", tag, "description", o->description, NULL};
		return live_verb(v, PROTO_SNAPSHOT_TAKE, kv, err);
	}
	if (need_qcow2(v, err) < 0 || open_store(v, &st, true, err) < 0)
		return -1;
	if (tag == NULL) {
		snapstore_propose_tag(&st, "snap", proposed, sizeof(proposed));
		tag = proposed;
	}
	int rc = take_stopped(v, &st, tag, o->description, false, err);
	snapstore_close(&st);
	if (rc == 0)
		printf("took disk-only snapshot '%s' of stopped VM %s (%zu disk%s)\n", tag, v->name,
		       v->ndisks, v->ndisks == 1 ? "" : "s");
	return rc;
}

static int snap_rollback(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
			 struct tv_err *err)
{
	char autotag[SNAP_TAG_MAX + 1] = "";
	struct tv_settings set;
	struct snapstore st;
	int pruned = 0, rc = -1;

	if (argc != 2)
		return tv_errf(err, "rollback: expected NAME TAG");
	if (v->live) {
		const char *kv[] = {"tag", argv[1], "discard", o->discard ? "1" : NULL, NULL};
		return live_verb(v, PROTO_SNAPSHOT_ROLLBACK, kv, err);
	}
	if (settings_load(&v->paths, &set, err) < 0 || need_qcow2(v, err) < 0 ||
	    open_store(v, &st, true, err) < 0)
		return -1;
	const struct snap_record *r = find_tag(v, &st, argv[1], err);
	if (r == NULL)
		goto out;
	uint64_t id = r->id;
	bool memory = r->memory;
	if (!o->discard) {
		snapstore_propose_tag(&st, "auto", autotag, sizeof(autotag));
		char *desc = xasprintf("before rollback to '%s'", argv[1]);
		rc = take_stopped(v, &st, autotag, desc, true, err);
		free(desc);
		if (rc < 0)
			goto out;
		rc = -1;
	}
	if (disks_do(v, DISK_APPLY, argv[1], err) < 0 ||
	    snapstore_set_here(&st, id, memory, err) < 0)
		goto out;
	rc = 0;
	pruned = snapstore_prune_automatic(&st, set.snapshot_keep_automatic, disk_list(v),
					   v->ndisks, err);
	printf("rolled back the disks of stopped VM %s to snapshot '%s'", v->name, argv[1]);
	if (autotag[0] && snapstore_find(&st, autotag))
		printf("; the state before was saved as '%s'", autotag);
	if (pruned > 0)
		printf("; %d old automatic snapshot%s deleted", pruned, pruned == 1 ? "" : "s");
	printf("\n");
	if (memory)
		printf("the machine state '%s' holds is restored when %s next starts\n", argv[1],
		       v->name);
	if (pruned < 0)
		fprintf(stderr, "termvisor snapshot: pruning automatic snapshots: %s\n", err->msg);
out:
	snapstore_close(&st);
	return rc;
}

static int snap_delete(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		       struct tv_err *err)
{
	struct snapstore st;
	int rc = -1;

	if (argc != 2)
		return tv_errf(err, "delete: expected NAME TAG");
	if (v->live) {
		const char *kv[] = {"tag", argv[1], NULL};
		return live_verb(v, PROTO_SNAPSHOT_DELETE, kv, err);
	}
	if (open_store(v, &st, true, err) < 0)
		return -1;
	const struct snap_record *r = find_tag(v, &st, argv[1], err);
	if (r == NULL)
		goto out;
	size_t kids = snapstore_children(&st, r->id, NULL, 0);
	const struct snap_record *parent = snapstore_get(&st, r->parent);
	char ptag[SNAP_TAG_MAX + 1];
	snprintf(ptag, sizeof(ptag), "%s", parent ? parent->tag : "");
	if (snapstore_delete(&st, argv[1], disk_list(v), v->ndisks, err) < 0)
		goto out;
	rc = 0;
	printf("deleted snapshot '%s' of VM %s", argv[1], v->name);
	if (kids)
		printf(" (its %zu child%s now descend%s from %s%s%s)", kids, kids == 1 ? "" : "ren",
		       kids == 1 ? "s" : "", ptag[0] ? "'" : "", ptag[0] ? ptag : "no snapshot",
		       ptag[0] ? "'" : "");
	printf("\n");
out:
	snapstore_close(&st);
	return rc;
}

static int snap_rename(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		       struct tv_err *err)
{
	struct snapstore st;
	int rc = -1;

	if (argc != 3)
		return tv_errf(err, "rename: expected NAME OLD NEW");
	if (snapstore_tag_check(argv[2], err) < 0)
		return -1;
	if (v->live) {
		const char *kv[] = {"tag", argv[1], "new", argv[2], NULL};
		return live_verb(v, PROTO_SNAPSHOT_RENAME, kv, err);
	}
	if (open_store(v, &st, true, err) < 0)
		return -1;
	if (find_tag(v, &st, argv[1], err) == NULL)
		goto out;
	if (snapstore_find(&st, argv[2]) != NULL) {
		tv_errf(err, "VM %s already has a snapshot named '%s'", v->name, argv[2]);
		goto out;
	}
	rc = snapstore_rename_disks(&st, argv[1], argv[2], disk_list(v), v->ndisks, err);
	if (rc == 0)
		printf("renamed snapshot '%s' of VM %s to '%s'\n", argv[1], v->name, argv[2]);
out:
	snapstore_close(&st);
	return rc;
}

/* ---- list and show ---- */

static void format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static void format_time_iso(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static uint64_t rec_size(const struct snapstore *st, const struct snap_record *r)
{
	uint64_t bytes = 0;

	snapstore_du(st, r->id, &bytes, NULL);
	return bytes;
}

static const char *kind(const struct snap_record *r)
{
	return r->memory ? "machine" : "disk-only";
}

static void json_record(const struct snapstore *st, const struct snap_record *r, bool details)
{
	const struct snap_record *p = snapstore_get(st, r->parent);
	char id[SNAP_ID_DIGITS + 1], when[32];

	snapstore_id_text(r->id, id);
	format_time_iso(r->created, when, sizeof(when));
	printf("{\"tag\": ");
	json_string(stdout, r->tag);
	printf(", \"id\": \"%s\", \"parent\": ", id);
	json_string(stdout, p ? p->tag : NULL);
	printf(", \"created\": \"%s\", \"created_unix\": %lld, \"memory\": %s, \"automatic\": %s, "
	       "\"here\": %s, \"pending_restore\": %s, \"size_bytes\": %" PRIu64 ", \"description\": ",
	       when, (long long)r->created, r->memory ? "true" : "false",
	       r->automatic ? "true" : "false", st->here == r->id ? "true" : "false",
	       st->pending_restore == r->id ? "true" : "false", rec_size(st, r));
	json_string(stdout, r->description);
	if (details) {
		size_t n = snapstore_children(st, r->id, NULL, 0);
		const struct snap_record **kids = xcalloc(n + 1, sizeof(*kids));
		snapstore_children(st, r->id, kids, n);
		printf(", \"children\": [");
		for (size_t i = 0; i < n; i++) {
			printf(i ? ", " : "");
			json_string(stdout, kids[i]->tag);
		}
		printf("]");
		free(kids);
		char *dir = snapstore_path(st, r->id);
		printf(", \"directory\": ");
		json_string(stdout, dir);
		free(dir);
	}
	/* The caller closes the object (show adds the disks). */
}

static void line_record(const struct snapstore *st, const struct snap_record *r)
{
	char when[32], size[32];

	format_time(r->created, when, sizeof(when));
	format_size(rec_size(st, r), size, sizeof(size));
	printf("%s, %s%s, %s", when, kind(r), r->automatic ? ", automatic" : "", size);
	if (r->description[0]) {
		printf(": ");
		for (const char *s = r->description; *s && *s != '\n'; s++)
			putchar((unsigned char)*s < 0x20 ? ' ' : *s);
	}
}

static void tree_walk(const struct snapstore *st, uint64_t id, char *prefix, size_t plen)
{
	size_t n = snapstore_children(st, id, NULL, 0);
	const struct snap_record **kids = xcalloc(n + 1, sizeof(*kids));

	snapstore_children(st, id, kids, n);
	for (size_t i = 0; i < n; i++) {
		bool last = i + 1 == n;
		printf("%s%s%s  (", prefix, id == 0 ? "" : last ? "`-- " : "|-- ", kids[i]->tag);
		line_record(st, kids[i]);
		printf(")%s%s\n", st->here == kids[i]->id ? "  <- you are here" : "",
		       st->here == kids[i]->id && st->pending_restore == st->here
			       ? " (its machine state is restored at the next start)"
			       : "");
		/* Each level adds 4 columns; very deep trees stop growing at 200. */
		size_t add = id == 0 ? 0 : 4;
		if (plen + add < 200) {
			memcpy(prefix + plen, last ? "    " : "|   ", add);
			prefix[plen + add] = 0;
			tree_walk(st, kids[i]->id, prefix, plen + add);
			prefix[plen] = 0;
		} else {
			tree_walk(st, kids[i]->id, prefix, plen);
		}
	}
	free(kids);
}

static int snap_list(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		     struct tv_err *err)
{
	struct snapstore st;

	if (argc != 1)
		return tv_errf(err, "list: expected NAME");
	if (open_store(v, &st, false, err) < 0)
		return -1;
	if (o->json) {
		const struct snap_record *h = snapstore_get(&st, st.here);
		printf("{\"vm\": ");
		json_string(stdout, v->name);
		printf(", \"here\": ");
		json_string(stdout, h ? h->tag : NULL);
		printf(", \"snapshots\": [");
		for (size_t i = 0; i < st.nrecs; i++) {
			printf(i ? ",\n  " : "\n  ");
			json_record(&st, &st.recs[i], false);
			printf("}");
		}
		printf("%s]}\n", st.nrecs ? "\n" : "");
	} else if (st.nrecs == 0) {
		printf("VM %s has no snapshots\n", v->name);
	} else if (o->tree) {
		char prefix[256] = "";
		tree_walk(&st, 0, prefix, 0);
		if (st.here == 0)
			printf("(you are here: the current state descends from no snapshot)\n");
	} else {
		printf("%-3s %-24s %-16s %-9s %-4s %7s  %s\n", "", "TAG", "CREATED", "KIND", "AUTO",
		       "SIZE", "PARENT");
		for (size_t i = 0; i < st.nrecs; i++) {
			const struct snap_record *r = &st.recs[i], *p = snapstore_get(&st, r->parent);
			char when[32], size[32];
			format_time(r->created, when, sizeof(when));
			format_size(rec_size(&st, r), size, sizeof(size));
			printf("%-3s %-24s %-16s %-9s %-4s %7s  %s\n", st.here == r->id ? "*" : "",
			       r->tag, when, kind(r), r->automatic ? "yes" : "no", size,
			       p ? p->tag : "-");
		}
	}
	snapstore_close(&st);
	return 0;
}

/* Whether each disk holds an internal snapshot named tag (read without a
 * lock, so it works while the VM runs). */
static void show_disks(const struct snap_vm *v, const char *tag, bool json)
{
	for (size_t i = 0; i < v->ndisks; i++) {
		struct blk_snapshot *list = NULL;
		struct blk *b;
		struct tv_err e;
		int n = 0;
		const char *state = "absent";
		if (blk_open(&b, v->disks[i], "qcow2", BLK_SHARE, &e) < 0) {
			state = "unreadable";
		} else {
			if (blk_snapshot_list(b, &list, &n, &e) == 0)
				for (int k = 0; k < n; k++)
					if (strcmp(list[k].name, tag) == 0)
						state = "present";
			blk_snapshot_list_free(list, n);
			blk_close(b, NULL);
		}
		if (json) {
			printf(i ? ", {\"file\": " : "{\"file\": ");
			json_string(stdout, v->disks[i]);
			printf(", \"internal_snapshot\": \"%s\"}", state);
		} else {
			printf("  disk %s: internal snapshot '%s' %s\n", v->disks[i], tag, state);
		}
	}
}

/* What a machine snapshot's state file and memory image say (read and
 * checked, no VM needed); a damaged file is reported, not fatal to show. */
static void show_machine(const struct snapstore *st, const struct snap_record *r, bool json)
{
	char *dir = snapstore_path(st, r->id), *mem = xasprintf("%s/%s", dir, VM_SNAPSHOT_MEMORY);
	struct vm_snapshot_info si;
	struct memimg_info mi;
	struct tv_err e1, e2;
	bool have_state = vm_snapshot_read_info(dir, &si, &e1) == 0;
	bool have_mem = memimg_info(mem, &mi, &e2) == 0;
	char size[32];

	if (json) {
		printf(", \"machine\": ");
		if (have_state)
			printf("{\"version\": %u, \"cpus\": %u, \"memory_bytes\": %" PRIu64
			       ", \"devices\": %u, \"disks\": %u}",
			       si.version, si.cpus, si.memory, si.ndevices, si.ndisks);
		else
			json_string(stdout, e1.msg);
		printf(", \"memory_image\": ");
		if (have_mem)
			printf("{\"pages\": %" PRIu64 ", \"disk_bytes\": %" PRIu64
			       ", \"layered\": %s}",
			       mi.pages, mi.disk_bytes, mi.has_parent ? "true" : "false");
		else
			json_string(stdout, e2.msg);
	} else {
		if (have_state) {
			format_size(si.memory, size, sizeof(size));
			printf("  machine     %u vCPU%s, %s of RAM, %u devices, %u disk%s (state file "
			       "version %u)\n",
			       si.cpus, si.cpus == 1 ? "" : "s", size, si.ndevices, si.ndisks,
			       si.ndisks == 1 ? "" : "s", si.version);
		} else {
			printf("  machine     unreadable: %s\n", e1.msg);
		}
		if (have_mem) {
			format_size(mi.disk_bytes, size, sizeof(size));
			printf("  memory      %" PRIu64 " pages held, %s on disk, %s\n", mi.pages, size,
			       mi.has_parent ? "layered on an older snapshot's image"
					     : "a full image");
		} else {
			printf("  memory      unreadable: %s\n", e2.msg);
		}
	}
	free(mem);
	free(dir);
}

static int snap_show(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		     struct tv_err *err)
{
	struct snapstore st;

	if (argc != 2)
		return tv_errf(err, "show: expected NAME TAG");
	if (open_store(v, &st, false, err) < 0)
		return -1;
	const struct snap_record *r = find_tag(v, &st, argv[1], err);
	if (r == NULL) {
		snapstore_close(&st);
		return -1;
	}
	if (o->json) {
		json_record(&st, r, true);
		if (r->memory)
			show_machine(&st, r, true);
		printf(", \"disks\": [");
		show_disks(v, r->tag, true);
		printf("]}\n");
	} else {
		const struct snap_record *p = snapstore_get(&st, r->parent);
		char when[32], size[32], id[SNAP_ID_DIGITS + 1];
		char *dir = snapstore_path(&st, r->id);
		size_t n = snapstore_children(&st, r->id, NULL, 0);
		const struct snap_record **kids = xcalloc(n + 1, sizeof(*kids));
		snapstore_children(&st, r->id, kids, n);
		format_time(r->created, when, sizeof(when));
		format_size(rec_size(&st, r), size, sizeof(size));
		snapstore_id_text(r->id, id);
		printf("snapshot '%s' of VM %s\n", r->tag, v->name);
		printf("  id          %s\n  created     %s\n", id, when);
		printf("  kind        %s%s\n", r->memory ? "machine (state, memory and disks)"
						      : "disk-only",
		       r->automatic ? ", automatic" : "");
		printf("  parent      %s\n", p ? p->tag : "-");
		printf("  children    ");
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i ? ", " : "", kids[i]->tag);
		printf("%s\n", n ? "" : "-");
		printf("  here        %s\n",
		       st.here != r->id		       ? "no"
		       : st.pending_restore == r->id ? "yes (machine state restored at next start)"
						     : "yes");
		printf("  size        %s (its directory %s)\n", size, dir);
		printf("  description %s\n", r->description[0] ? r->description : "-");
		if (r->memory)
			show_machine(&st, r, false);
		show_disks(v, r->tag, false);
		free(kids);
		free(dir);
	}
	snapstore_close(&st);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct snap_vm *v, int argc, char **argv, const struct snap_opts *o,
		  struct tv_err *err);
} subcommands[] = {
	{"take", snap_take},	     {"list", snap_list},     {"rollback", snap_rollback},
	{"delete", snap_delete},     {"rename", snap_rename}, {"show", snap_show},
};

static int cmd_snapshot_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"description", required_argument, NULL, 'd'},
		{"tree", no_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"discard", no_argument, NULL, 'D'},
		{0},
	};
	struct snap_opts o = {0};
	struct snap_vm v;
	struct tv_err err;
	size_t i;
	int ch, rc;

	if (argc < 2)
		return cmd_usage_error(self, "expected a subcommand");
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			break;
	if (i == ARRAY_SIZE(subcommands))
		return cmd_usage_error(self, "unknown subcommand '%s'", argv[1]);
	argc--;
	argv++;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o.description = optarg;
			break;
		case 't':
			o.tree = true;
			break;
		case 'j':
			o.json = true;
			break;
		case 'D':
			o.discard = true;
			break;
		default:
			return cmd_usage_error(self, "%s: unknown option", argv[0]);
		}
	}
	/* Each option belongs to one subcommand. */
	const char *sub = subcommands[i].name;
	const char *wrong = o.description && strcmp(sub, "take")		? "--description"
			    : o.tree && strcmp(sub, "list")			? "--tree"
			    : o.json && strcmp(sub, "list") && strcmp(sub, "show") ? "--json"
			    : o.discard && strcmp(sub, "rollback")		? "--discard"
										: NULL;
	if (wrong)
		return cmd_usage_error(self, "%s does not take %s", sub, wrong);
	if (optind >= argc)
		return cmd_usage_error(self, "%s: expected a VM name", sub);
	if (vm_load(&v, argv[optind], &err) < 0) {
		fprintf(stderr, "termvisor snapshot %s: %s\n", sub, err.msg);
		vm_done(&v);
		return TV_EXIT_ERROR;
	}
	rc = subcommands[i].fn(&v, argc - optind, argv + optind, &o, &err);
	if (rc < 0)
		fprintf(stderr, "termvisor snapshot %s: %s\n", sub, err.msg);
	vm_done(&v);
	return rc < 0 ? TV_EXIT_ERROR : TV_EXIT_OK;
}

const struct cmd_entry cmd_snapshot_entry = {
	.name = "snapshot",
	.alias = "snap",
	.usage = "take|list|rollback|delete|rename|show NAME ...",
	.summary = "Take, list, roll back to, delete, rename and show a VM's snapshots.",
	.options =
		"  take NAME [TAG] [--description S]   a running VM: the whole machine; a\n"
		"                                      stopped one: its disks (disk-only);\n"
		"                                      no TAG: snap-1, snap-2, ...\n"
		"  list NAME [--tree] [--json]         the snapshots; --tree draws the tree with\n"
		"                                      the \"you are here\" mark\n"
		"  rollback NAME TAG [--discard]       back to TAG; the current state is saved\n"
		"                                      first as an automatic snapshot unless\n"
		"                                      --discard\n"
		"  delete NAME TAG                     its children keep working\n"
		"  rename NAME OLD NEW\n"
		"  show NAME TAG [--json]              one snapshot's details\n",
	.exec = cmd_snapshot_exec,
};
