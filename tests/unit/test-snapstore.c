/* The snapshot tree on disk (src/core/snapstore.c): what a crash leaves,
 * what the index holds, what a damaged index says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "src/core/snapstore.h"
#include "src/core/fsutil.h"
#include "vm/block/block.h"
#include "vm/memimg.h"
#include "common/util.h"

struct fixture {
	char dir[64];   /* the VM's data directory */
	char *snapdir;  /* dir/snapshots */
	char *disk;     /* dir/disk.qcow2 */
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/tv-snapstore.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->snapdir = xasprintf("%s/snapshots", f->dir);
	f->disk = xasprintf("%s/disk.qcow2", f->dir);
	assert_int_equal(blk_create(f->disk, "qcow2", 1 << 20, NULL, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	remove_tree(f->dir);
	free(f->snapdir);
	free(f->disk);
	free(f);
	return 0;
}

static bool exists(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	bool yes = access(p, F_OK) == 0;
	free(p);
	return yes;
}

/* How many entries of dir start with prefix. */
static int count_entries(const char *dir, const char *prefix)
{
	char *cmd = xasprintf("ls -A '%s' | grep -c '^%s' || true", dir, prefix);
	FILE *p = popen(cmd, "r");
	int n = -1;

	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	free(cmd);
	return n;
}

static bool disk_has_snapshot(const char *disk, const char *tag)
{
	struct blk_snapshot *list;
	struct blk *b;
	int n;
	bool found = false;

	assert_int_equal(blk_open(&b, disk, "qcow2", BLK_READONLY, NULL), 0);
	assert_int_equal(blk_snapshot_list(b, &list, &n, NULL), 0);
	for (int i = 0; i < n; i++)
		found |= strcmp(list[i].name, tag) == 0;
	blk_snapshot_list_free(list, n);
	blk_close(b, NULL);
	return found;
}

static void disk_snapshot(const char *disk, const char *tag)
{
	struct blk *b;
	struct tv_err err;

	assert_int_equal(blk_open(&b, disk, "qcow2", 0, &err), 0);
	assert_int_equal(blk_snapshot_create(b, tag, 0, 0, &err), 0);
	assert_int_equal(blk_close(b, &err), 0);
}

/* Takes tag under the lock: a file in the snapshot's directory, and the
 * disk's internal snapshot when disk is given. Returns its id. */
static uint64_t take(struct snapstore *st, const char *tag, const char *desc, bool memory,
		     bool automatic, const char *disk)
{
	struct snap_txn t;
	struct tv_err err;
	const char *disks[1] = {disk};

	if (snapstore_begin(st, tag, desc, memory, automatic, disks, disk ? 1 : 0, &t, &err) < 0)
		fail_msg("begin %s: %s", tag, err.msg);
	char *file = xasprintf("%s/state", t.dir);
	FILE *fp = fopen(file, "w");
	fputs("x", fp);
	fclose(fp);
	free(file);
	if (disk)
		disk_snapshot(disk, tag);
	uint64_t id = t.rec.id;
	if (snapstore_commit(&t, &err) < 0)
		fail_msg("commit %s: %s", tag, err.msg);
	return id;
}

static void open_locked(struct fixture *f, struct snapstore *st)
{
	struct tv_err err;

	if (snapstore_open(st, f->dir, SNAPSTORE_LOCK, NULL, &err) < 0)
		fail_msg("open: %s", err.msg);
}

/* Commit makes ID/ and the record, here = it; the record survives a reopen
 * field by field, the description's spaces, newlines and '%' included. */
static void test_commit_round_trip(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;
	const char *desc = "before the upgrade: 100% sure\nsecond line\ttab é";

	open_locked(f, &st);
	assert_int_equal(st.nrecs, 0);
	uint64_t a = take(&st, "base", desc, false, false, f->disk);
	uint64_t b = take(&st, "auto-1", NULL, true, true, NULL);
	assert_int_equal(st.here, b);
	assert_int_equal(count_entries(f->snapdir, ".tmp-"), 0);
	char *pa = snapstore_path(&st, a);
	assert_int_equal(access(pa, F_OK), 0);
	assert_false(exists(pa, "journal")); /* removed once committed */
	assert_true(exists(pa, "state"));
	free(pa);
	snapstore_close(&st);

	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_int_equal(st.nrecs, 2);
	const struct snap_record *r = snapstore_find(&st, "base");
	assert_non_null(r);
	assert_int_equal(r->id, a);
	assert_int_equal(r->parent, 0);
	assert_string_equal(r->description, desc);
	assert_false(r->memory);
	assert_false(r->automatic);
	assert_true(r->created > 1700000000);
	r = snapstore_find(&st, "auto-1");
	assert_non_null(r);
	assert_int_equal(r->parent, a);
	assert_string_equal(r->description, "");
	assert_true(r->memory);
	assert_true(r->automatic);
	assert_int_equal(st.here, b);
	assert_int_equal(st.pending_restore, 0);
	assert_null(snapstore_find(&st, "nothing"));
	assert_int_equal(snapstore_count(f->dir, &err), 2);
	snapstore_close(&st);
}

/* Abort removes the directory and the disk's snapshot; the tree is as before. */
static void test_abort(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct snap_txn t;
	struct tv_err err;
	const char *disks[] = {f->disk};

	open_locked(f, &st);
	take(&st, "kept", NULL, false, false, f->disk);
	assert_int_equal(snapstore_begin(&st, "dropped", NULL, false, false, disks, 1, &t, &err), 0);
	disk_snapshot(f->disk, "dropped");
	assert_true(exists(t.dir, "journal"));
	snapstore_abort(&t);
	assert_false(disk_has_snapshot(f->disk, "dropped"));
	assert_true(disk_has_snapshot(f->disk, "kept"));
	assert_int_equal(count_entries(f->snapdir, ".tmp-"), 0);
	assert_int_equal(st.nrecs, 1);
	snapstore_close(&st);
	assert_int_equal(snapstore_count(f->dir, &err), 1);
}

/* A writer killed after begin (disk snapshot made) and one killed after the
 * rename but before the index: the next lock removes both directories and
 * their disk snapshots, and lists only the whole snapshot. */
static void test_recovery(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;
	const char *disks[] = {f->disk};

	open_locked(f, &st);
	take(&st, "whole", NULL, false, false, f->disk);
	snapstore_close(&st);

	for (int stage = 0; stage < 2; stage++) {
		const char *tag = stage == 0 ? "half" : "renamed";
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct snap_txn t;
			open_locked(f, &st);
			if (snapstore_begin(&st, tag, NULL, false, false, disks, 1, &t, &err) < 0)
				_exit(1);
			disk_snapshot(f->disk, tag);
			if (stage == 1) {
				char *final = snapstore_path(&st, t.rec.id);
				if (rename(t.dir, final) < 0)
					_exit(1);
			}
			_exit(0); /* dies holding the lock, before the index */
		}
		int ws;
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
		assert_true(disk_has_snapshot(f->disk, tag));
		assert_int_equal(count_entries(f->snapdir, ".tmp-"), stage == 0 ? 1 : 0);
		assert_int_equal(count_entries(f->snapdir, "0000"), stage == 0 ? 1 : 2);

		/* Reading without the lock changes nothing and lists only what is whole. */
		assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
		assert_int_equal(st.nrecs, 1);
		snapstore_close(&st);
		assert_true(disk_has_snapshot(f->disk, tag));

		open_locked(f, &st);
		assert_int_equal(st.nrecs, 1);
		assert_non_null(snapstore_find(&st, "whole"));
		assert_int_equal(count_entries(f->snapdir, ".tmp-"), 0);
		assert_int_equal(count_entries(f->snapdir, "0000"), 1);
		assert_false(disk_has_snapshot(f->disk, tag));
		assert_true(disk_has_snapshot(f->disk, "whole"));
		if (stage == 0)
			snapstore_close(&st);
	}
	/* The tags are free again. */
	take(&st, "half", NULL, false, false, f->disk);
	snapstore_close(&st);
}

/* The lock excludes a second writer (NOWAIT says so at once). */
static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct snapstore a, b;
	struct tv_err err;

	open_locked(f, &a);
	assert_int_equal(snapstore_open(&b, f->dir, SNAPSTORE_LOCK | SNAPSTORE_NOWAIT, NULL, &err),
			 -1);
	assert_non_null(strstr(err.msg, "being changed by another process"));
	struct snap_txn t;
	/* Without the lock, nothing may change. */
	assert_int_equal(snapstore_open(&b, f->dir, 0, NULL, &err), 0);
	assert_int_equal(snapstore_begin(&b, "x", NULL, false, false, NULL, 0, &t, &err), -1);
	snapstore_close(&b);
	snapstore_close(&a);
	assert_int_equal(snapstore_open(&b, f->dir, SNAPSTORE_LOCK | SNAPSTORE_NOWAIT, NULL, &err),
			 0);
	snapstore_close(&b);
}

static char *read_index_file(struct fixture *f)
{
	char *p = xasprintf("%s/index", f->snapdir);
	FILE *fp = fopen(p, "r");
	char *buf = xcalloc(1, 65536);

	assert_non_null(fp);
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = 0;
	fclose(fp);
	free(p);
	return buf;
}

/* Writes body as the index, with a right checksum when sum is true. */
static void write_index_file(struct fixture *f, const char *body, bool sum)
{
	char *p = xasprintf("%s/index", f->snapdir);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fputs(body, fp);
	if (sum)
		fprintf(fp, "checksum %08lx\n",
			(unsigned long)crc32(crc32(0, Z_NULL, 0), (const Bytef *)body,
					     (uInt)strlen(body)));
	fclose(fp);
	free(p);
}

static void expect_corrupt(struct fixture *f, const char *body, bool sum, const char *want)
{
	struct snapstore st;
	struct tv_err err;
	char *file = xasprintf("%s/index", f->snapdir);
	char *full = xasprintf("%s%s", file, want);

	write_index_file(f, body, sum);
	if (snapstore_open(&st, f->dir, 0, NULL, &err) == 0)
		fail_msg("accepted: %s", body);
	if (strstr(err.msg, full) == NULL)
		fail_msg("'%s' lacks '%s'", err.msg, full);
	/* A locked open refuses it too, and leaves the file as it was. */
	assert_int_equal(snapstore_open(&st, f->dir, SNAPSTORE_LOCK, NULL, &err), -1);
	free(file);
	free(full);
}

#define HEAD "termvisor-snapshots 1\nnext 0000000000000003\nhere 0000000000000002\n"
#define REC1                                                                                      \
	"snapshot id=0000000000000001 parent=- created=1700000000 memory=no automatic=no "        \
	"tag=a description=\n"
#define REC2                                                                                      \
	"snapshot id=0000000000000002 parent=0000000000000001 created=1700000001 memory=yes "     \
	"automatic=no tag=b description=two%20words\n"

/* A damaged index is refused with the file and line; a good one written by
 * hand (fields in another order, an unknown field) is read. */
static void test_corrupt_index(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;

	open_locked(f, &st);
	take(&st, "a", NULL, false, false, NULL);
	snapstore_close(&st);

	/* One byte changed: the checksum line names it. */
	char *good = read_index_file(f);
	char *bad = xstrdup(good);
	char *t = strstr(bad, "tag=a");
	t[4] = 'b';
	expect_corrupt(f, bad, false, ":6: checksum: the file says");
	/* Cut short in the middle of the record. */
	*strstr(bad, "created=") = 0;
	expect_corrupt(f, bad, false, ":5: the last line has no newline (cut short?)");
	free(bad);

	expect_corrupt(f, "termvisor-snapshots 2\n", true, ":1: version 2 is newer");
	expect_corrupt(f, "something else 1\n", true, ":1: not a snapshot index");
	expect_corrupt(f, HEAD REC1, false, ":4: the checksum line is missing");
	expect_corrupt(f, HEAD REC1 "snapshot id=0000000000000002 parent=- created=1 memory=no tag=b\n",
		       true, ":5: snapshot: the field automatic is missing");
	expect_corrupt(f, HEAD REC1 REC1, true, ":5: id: 0000000000000001 is used twice");
	expect_corrupt(f,
		       HEAD REC1
		       "snapshot id=0000000000000002 parent=- created=1 memory=no automatic=no "
		       "tag=a\n",
		       true, ":5: tag: 'a' is used twice");
	expect_corrupt(f,
		       HEAD REC1
		       "snapshot id=0000000000000002 parent=- created=1 memory=maybe automatic=no "
		       "tag=c\n",
		       true, ":5: memory: 'maybe' is not yes or no");
	expect_corrupt(f,
		       HEAD REC1
		       "snapshot id=0000000000000002 parent=- created=1 memory=no automatic=no "
		       "tag=../x\n",
		       true, ":5: tag: snapshot tag '../x' must not start");
	expect_corrupt(f,
		       HEAD REC1
		       "snapshot id=0000000000000002 parent=0000000000000005 created=1 memory=no "
		       "automatic=no tag=c\n",
		       true, ":5: parent: a parent is older than its child");
	expect_corrupt(f, HEAD REC1 "snapshot id=0000000000000009 parent=- created=1 memory=no "
				    "automatic=no tag=c\n",
		       true, ":5: id: 0000000000000009 is used twice or not below next");
	expect_corrupt(f, HEAD REC1, true, ":3: here: no snapshot has that id");
	expect_corrupt(f, HEAD REC1 REC2 "bogus line\n", true, ":6: unknown line 'bogus'");
	expect_corrupt(f, HEAD REC1 "snapshot id=0000000000000002 parent=- created=1 memory=no "
				    "automatic=no tag=c description=%4\n",
		       true, ":5: description: malformed %XX escape");

	/* Written by hand, fields in any order, an unknown one ignored. */
	write_index_file(f,
			 HEAD REC1
			 "snapshot tag=b memory=yes colour=blue automatic=no parent=0000000000000001 "
			 "created=5 id=0000000000000002 description=two%20words\n",
			 true);
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_int_equal(st.nrecs, 2);
	assert_string_equal(snapstore_find(&st, "b")->description, "two words");
	assert_int_equal(st.here, 2);
	snapstore_close(&st);

	/* And what termvisor writes reads back. */
	write_index_file(f, good, false);
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_non_null(snapstore_find(&st, "a"));
	snapstore_close(&st);
	free(good);
}

struct drops {
	char calls[16][128];
	int n;
};

static int record_drop(void *ctx, const char *disk, const char *tag, struct tv_err *err)
{
	struct drops *d = ctx;

	if (d->n < 16)
		snprintf(d->calls[d->n++], 128, "%s %s", strrchr(disk, '/') + 1, tag);
	return 0;
}

/* a -> b -> c, a -> d: deleting b leaves c under a; deleting c (here) moves
 * here to a; the disks' snapshots go through the disk ops, on disk and
 * recovery alike. */
static void test_delete_reparents(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct drops drops = {0};
	struct snapstore_disk_ops ops = {.drop = record_drop, .ctx = &drops};
	struct tv_err err;
	const char *disks[] = {"/vm/disk0.qcow2", "/vm/disk1.qcow2"};

	assert_int_equal(snapstore_open(&st, f->dir, SNAPSTORE_LOCK, &ops, &err), 0);
	uint64_t a = take(&st, "a", NULL, false, false, NULL);
	uint64_t b = take(&st, "b", NULL, false, false, NULL);
	uint64_t c = take(&st, "c", NULL, false, false, NULL);
	assert_int_equal(snapstore_set_here(&st, a, false, &err), 0);
	uint64_t d = take(&st, "d", NULL, false, false, NULL);
	assert_int_equal(snapstore_get(&st, d)->parent, a);
	assert_int_equal(snapstore_set_here(&st, c, false, &err), 0);

	assert_int_equal(snapstore_delete(&st, "b", disks, 2, &err), 0);
	assert_null(snapstore_find(&st, "b"));
	assert_null(snapstore_get(&st, b));
	assert_int_equal(snapstore_get(&st, c)->parent, a);
	assert_int_equal(st.here, c);
	assert_int_equal(drops.n, 2);
	assert_string_equal(drops.calls[0], "disk0.qcow2 b");
	assert_string_equal(drops.calls[1], "disk1.qcow2 b");
	char *pb = snapstore_path(&st, b);
	assert_int_equal(access(pb, F_OK), -1);
	free(pb);
	const struct snap_record *kids[4];
	assert_int_equal(snapstore_children(&st, a, kids, 4), 2);
	assert_int_equal(kids[0]->id, c);
	assert_int_equal(kids[1]->id, d);

	assert_int_equal(snapstore_delete(&st, "c", disks, 1, &err), 0);
	assert_int_equal(st.here, a);
	assert_int_equal(snapstore_delete(&st, "nope", disks, 1, &err), -1);
	assert_non_null(strstr(err.msg, "no snapshot named 'nope'"));
	snapstore_close(&st);

	/* As it is on disk. */
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_int_equal(st.nrecs, 2);
	assert_int_equal(st.here, a);
	assert_int_equal(snapstore_get(&st, d)->parent, a);
	/* IDs are never reused. */
	assert_true(st.next_id > d);
	snapstore_close(&st);
}

/* A delete killed after its commit point (the index without it) leaves its
 * directory with a journal; the next lock drops the disk snapshots it names. */
static void test_delete_recovery(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;

	open_locked(f, &st);
	uint64_t a = take(&st, "a", NULL, false, false, f->disk);
	char *dir = snapstore_path(&st, a);
	char *journal = xasprintf("%s/journal", dir);
	FILE *fp = fopen(journal, "w");
	fprintf(fp, "termvisor-snapshot-journal 1\ntag a\ndisk %s\n", f->disk);
	fclose(fp);
	/* The index without it, as the delete's commit writes it. */
	write_index_file(f, "termvisor-snapshots 1\nnext 0000000000000002\nhere -\n", true);
	snapstore_close(&st);
	assert_true(disk_has_snapshot(f->disk, "a"));

	open_locked(f, &st);
	assert_int_equal(st.nrecs, 0);
	assert_int_equal(access(dir, F_OK), -1);
	assert_false(disk_has_snapshot(f->disk, "a"));
	snapstore_close(&st);
	free(dir);
	free(journal);
}

/* Pruning keeps the newest automatic snapshots, never here, never a manual one. */
static void test_prune(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;

	open_locked(f, &st);
	take(&st, "manual", NULL, false, false, f->disk);
	for (int i = 1; i <= 5; i++) {
		char tag[32];
		snprintf(tag, sizeof(tag), "auto-%d", i);
		take(&st, tag, NULL, false, true, f->disk);
	}
	/* here is auto-5 (the newest); make auto-1 here to see it kept. */
	assert_int_equal(snapstore_set_here(&st, snapstore_find(&st, "auto-1")->id, false, &err), 0);
	const char *disks[] = {f->disk};
	assert_int_equal(snapstore_prune_automatic(&st, 2, disks, 1, &err), 3);
	assert_non_null(snapstore_find(&st, "manual"));
	assert_non_null(snapstore_find(&st, "auto-1")); /* here */
	assert_null(snapstore_find(&st, "auto-2"));
	assert_null(snapstore_find(&st, "auto-3"));
	assert_null(snapstore_find(&st, "auto-4"));
	assert_non_null(snapstore_find(&st, "auto-5"));
	assert_false(disk_has_snapshot(f->disk, "auto-3"));
	assert_true(disk_has_snapshot(f->disk, "auto-5"));
	assert_int_equal(snapstore_prune_automatic(&st, 2, disks, 1, &err), 0);
	assert_int_equal(snapstore_prune_automatic(&st, 0, disks, 1, &err), 1);
	assert_non_null(snapstore_find(&st, "auto-1"));
	snapstore_close(&st);
}

/* Proposed names follow the highest snap-N; tags are checked and unique. */
static void test_names(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct snap_txn t;
	struct tv_err err;
	char tag[SNAP_TAG_MAX + 1];

	open_locked(f, &st);
	snapstore_propose_tag(&st, "snap", tag, sizeof(tag));
	assert_string_equal(tag, "snap-1");
	take(&st, tag, NULL, false, false, NULL);
	snapstore_propose_tag(&st, "snap", tag, sizeof(tag));
	assert_string_equal(tag, "snap-2");
	take(&st, "snap-7", NULL, false, false, NULL);
	take(&st, "snap-x", NULL, false, false, NULL);
	take(&st, "snap-07b", NULL, false, false, NULL);
	snapstore_propose_tag(&st, "snap", tag, sizeof(tag));
	assert_string_equal(tag, "snap-8");
	snapstore_propose_tag(&st, "auto", tag, sizeof(tag));
	assert_string_equal(tag, "auto-1");

	assert_int_equal(snapstore_begin(&st, "snap-7", NULL, false, false, NULL, 0, &t, &err), -1);
	assert_non_null(strstr(err.msg, "'snap-7' already exists"));
	const char *bad[] = {"", ".hidden", "-x", "a b", "a/b", "ü",
			     "01234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(snapstore_tag_check(bad[i], &err), -1);
		assert_int_equal(snapstore_begin(&st, bad[i], NULL, false, false, NULL, 0, &t, &err),
				 -1);
	}
	assert_int_equal(
		snapstore_tag_check("0123456789012345678901234567890123456789012345678901234567890123",
				    &err),
		0);

	/* Rename: the new tag is checked, unique, and reads back. */
	assert_int_equal(snapstore_rename(&st, "snap-x", "snap-7", &err), -1);
	assert_int_equal(snapstore_rename(&st, "snap-x", "a b", &err), -1);
	assert_int_equal(snapstore_rename(&st, "missing", "m2", &err), -1);
	assert_int_equal(snapstore_rename(&st, "snap-x", "before-upgrade", &err), 0);
	snapstore_close(&st);
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_non_null(snapstore_find(&st, "before-upgrade"));
	assert_null(snapstore_find(&st, "snap-x"));
	snapstore_close(&st);
}

/* Pending restore is written, read back, and cleared by the next take. */
static void test_pending_restore(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;

	open_locked(f, &st);
	uint64_t a = take(&st, "a", NULL, true, false, NULL);
	take(&st, "b", NULL, true, false, NULL);
	assert_int_equal(snapstore_set_here(&st, a, true, &err), 0);
	snapstore_close(&st);
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_int_equal(st.pending_restore, a);
	assert_int_equal(st.here, a);
	snapstore_close(&st);
	open_locked(f, &st);
	uint64_t c = take(&st, "c", NULL, true, false, NULL);
	assert_int_equal(st.pending_restore, 0);
	assert_int_equal(snapstore_get(&st, c)->parent, a);
	/* Deleting another snapshot keeps it; deleting it clears it. */
	assert_int_equal(snapstore_set_here(&st, a, true, &err), 0);
	assert_int_equal(snapstore_delete(&st, "c", NULL, 0, &err), 0);
	assert_int_equal(st.pending_restore, a);
	uint64_t b = snapstore_find(&st, "b")->id;
	assert_int_equal(snapstore_set_here(&st, b, true, &err), 0);
	assert_int_equal(snapstore_delete(&st, "b", NULL, 0, &err), 0);
	assert_int_equal(st.pending_restore, 0);
	assert_int_equal(st.here, a);
	snapstore_close(&st);
}

/* du counts the blocks of ID/'s files. */
static void test_du(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;
	uint64_t bytes;

	open_locked(f, &st);
	uint64_t a = take(&st, "a", NULL, false, false, NULL);
	assert_int_equal(snapstore_du(&st, a, &bytes, &err), 0);
	uint64_t before = bytes;
	char *p = xasprintf("%s/%016llx/memory", f->snapdir, (unsigned long long)a);
	FILE *fp = fopen(p, "w");
	char block[65536];
	memset(block, 1, sizeof(block));
	fwrite(block, 1, sizeof(block), fp);
	fclose(fp);
	free(p);
	assert_int_equal(snapstore_du(&st, a, &bytes, &err), 0);
	assert_true(bytes >= before + 65536);
	snapstore_close(&st);
}

/* Rename carries the disks' snapshots along; one cut short after the
 * journal and the disk (before the index) is finished by the next lock. */
static void test_rename_disks(void **state)
{
	struct fixture *f = *state;
	struct snapstore st;
	struct tv_err err;
	const char *disks[] = {f->disk};

	open_locked(f, &st);
	uint64_t a = take(&st, "a", NULL, false, false, f->disk);
	take(&st, "b", NULL, false, false, f->disk);
	assert_int_equal(snapstore_rename_disks(&st, "a", "b", disks, 1, &err), -1);
	assert_non_null(strstr(err.msg, "'b' already exists"));
	assert_int_equal(snapstore_rename_disks(&st, "a", "first", disks, 1, &err), 0);
	assert_true(disk_has_snapshot(f->disk, "first"));
	assert_false(disk_has_snapshot(f->disk, "a"));
	assert_string_equal(snapstore_get(&st, a)->tag, "first");
	char *dir = snapstore_path(&st, a);
	assert_false(exists(dir, "journal"));
	snapstore_close(&st);

	/* Cut short: the journal written, the disk renamed, the index not. */
	char *journal = xasprintf("%s/journal", dir);
	FILE *fp = fopen(journal, "w");
	fprintf(fp, "termvisor-snapshot-journal 1\ntag first\nnew renamed\ndisk %s\n", f->disk);
	fclose(fp);
	struct blk *b;
	assert_int_equal(blk_open(&b, f->disk, "qcow2", 0, &err), 0);
	assert_int_equal(blk_snapshot_rename(b, "first", "renamed", &err), 0);
	blk_close(b, NULL);
	assert_int_equal(snapstore_open(&st, f->dir, 0, NULL, &err), 0);
	assert_non_null(snapstore_find(&st, "first")); /* not finished by a reader */
	snapstore_close(&st);
	open_locked(f, &st);
	assert_null(snapstore_find(&st, "first"));
	assert_int_equal(snapstore_find(&st, "renamed")->id, a);
	assert_true(disk_has_snapshot(f->disk, "renamed"));
	assert_false(exists(dir, "journal"));

	/* Cut short before the disk: finished the same way. */
	fp = fopen(journal, "w");
	fprintf(fp, "termvisor-snapshot-journal 1\ntag renamed\nnew again\ndisk %s\n", f->disk);
	fclose(fp);
	snapstore_close(&st);
	open_locked(f, &st);
	assert_int_equal(snapstore_find(&st, "again")->id, a);
	assert_true(disk_has_snapshot(f->disk, "again"));
	assert_false(disk_has_snapshot(f->disk, "renamed"));
	snapstore_close(&st);
	free(journal);
	free(dir);
}

/* A memory image layered on the deleted snapshot's is made whole first: the
 * child's memory still checks and restores to what it held. */
static void test_delete_unparents_memory(void **state)
{
	struct fixture *f = *state;
	const uint64_t size = 4 << 20, pages = size / 4096;
	/* A mapping of its own, as guest RAM is: a restore maps over it. */
	uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *want = xmalloc(size);
	uint64_t *changed = xcalloc((pages + 63) / 64, 8);
	struct memimg_mem *m = memimg_mem_new(ram, size, false);
	struct snapstore st;
	struct snap_txn t;
	struct tv_err err;

	open_locked(f, &st);
	for (uint64_t pg = 0; pg < pages; pg += 3)
		ram[pg * 4096] = (uint8_t)(pg + 1);
	assert_int_equal(snapstore_begin(&st, "parent", NULL, true, false, NULL, 0, &t, &err), 0);
	char *path = xasprintf("%s/memory", t.dir);
	assert_int_equal(memimg_mem_save(m, path, NULL, NULL, &err), 0);
	free(path);
	assert_int_equal(snapstore_commit(&t, &err), 0);
	/* The child holds only the pages changed since. */
	for (uint64_t pg = 0; pg < pages; pg += 7) {
		ram[pg * 4096 + 1] = 0x5a;
		changed[pg / 64] |= 1ULL << (pg % 64);
	}
	memcpy(want, ram, size);
	assert_int_equal(snapstore_begin(&st, "child", NULL, true, false, NULL, 0, &t, &err), 0);
	uint64_t child = t.rec.id;
	path = xasprintf("%s/memory", t.dir);
	assert_int_equal(memimg_mem_save(m, path, changed, NULL, &err), 0);
	free(path);
	assert_int_equal(snapstore_commit(&t, &err), 0);
	path = xasprintf("%s/%016llx/memory", f->snapdir, (unsigned long long)child);
	struct memimg_info info;
	assert_int_equal(memimg_info(path, &info, &err), 0);
	assert_true(info.has_parent);

	if (snapstore_delete(&st, "parent", NULL, 0, &err) < 0)
		fail_msg("delete: %s", err.msg);
	assert_int_equal(memimg_info(path, &info, &err), 0);
	assert_false(info.has_parent);
	if (memimg_check(path, size, &err) < 0)
		fail_msg("check: %s", err.msg);
	memset(ram, 0, size);
	if (memimg_mem_restore(m, path, &err) < 0)
		fail_msg("restore: %s", err.msg);
	assert_memory_equal(ram, want, size);
	snapstore_close(&st);
	memimg_mem_free(m);
	free(path);
	free(changed);
	free(want);
	munmap(ram, size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_reparents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_du, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_disks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_unparents_memory, setup, teardown),
	};

	return cmocka_run_group_tests_name("snapstore", tests, NULL, NULL);
}
