/* TEMPORARY, until the store (src/core/snapstore.c, branch m-store) and the
 * engine (vm/snapshot.c, vm/memimg.c, branches e-state and e-mem) land: the
 * functions snap.c calls, each refusing with a message that says so. Removed
 * by the merge that brings the real ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/snapstore.h"
#include "vm/memimg.h"
#include "vm/snapshot.h"

#define NOT_YET(err) tv_errf(err, "snapshots are not built into this termvisor yet")

int snapstore_open(struct snapstore *st, const char *vm_datadir, int flags,
		   const struct snapstore_disk_ops *ops, struct tv_err *err)
{
	(void)vm_datadir, (void)flags, (void)ops;
	memset(st, 0, sizeof(*st));
	return NOT_YET(err);
}
void snapstore_close(struct snapstore *st) { (void)st; }
const struct snap_record *snapstore_find(const struct snapstore *st, const char *tag)
{
	(void)st, (void)tag;
	return NULL;
}
const struct snap_record *snapstore_get(const struct snapstore *st, uint64_t id)
{
	(void)st, (void)id;
	return NULL;
}
char *snapstore_path(const struct snapstore *st, uint64_t id)
{
	(void)st;
	return xasprintf("/nonexistent/%016llx", (unsigned long long)id);
}
void snapstore_id_text(uint64_t id, char *buf) { sprintf(buf, "%016llx", (unsigned long long)id); }
int snapstore_tag_check(const char *tag, struct tv_err *err) { (void)tag; return NOT_YET(err); }
void snapstore_propose_tag(const struct snapstore *st, const char *prefix, char *buf, size_t len)
{
	(void)st;
	snprintf(buf, len, "%s-1", prefix);
}
int snapstore_begin(struct snapstore *st, const char *tag, const char *description, bool memory,
		    bool automatic, const char *const *disks, size_t ndisks, struct snap_txn *t,
		    struct tv_err *err)
{
	(void)st, (void)tag, (void)description, (void)memory, (void)automatic, (void)disks, (void)ndisks;
	memset(t, 0, sizeof(*t));
	return NOT_YET(err);
}
int snapstore_commit(struct snap_txn *t, struct tv_err *err) { (void)t; return NOT_YET(err); }
void snapstore_abort(struct snap_txn *t) { (void)t; }
int snapstore_set_here(struct snapstore *st, uint64_t id, bool pending, struct tv_err *err)
{
	(void)st, (void)id, (void)pending;
	return NOT_YET(err);
}
int snapstore_rename(struct snapstore *st, const char *tag, const char *new_tag, struct tv_err *err)
{
	(void)st, (void)tag, (void)new_tag;
	return NOT_YET(err);
}
int snapstore_delete(struct snapstore *st, const char *tag, const char *const *disks, size_t ndisks,
		     struct tv_err *err)
{
	(void)st, (void)tag, (void)disks, (void)ndisks;
	return NOT_YET(err);
}
int snapstore_prune_automatic(struct snapstore *st, unsigned keep, const char *const *disks,
			      size_t ndisks, struct tv_err *err)
{
	(void)st, (void)keep, (void)disks, (void)ndisks;
	return NOT_YET(err);
}
int snapstore_du(const struct snapstore *st, uint64_t id, uint64_t *bytes, struct tv_err *err)
{
	(void)st, (void)id, (void)bytes;
	return NOT_YET(err);
}
int vm_snapshot_take(struct vm *vm, const char *dir, const char *disk_tag,
		     struct vm_snapshot_stats *st, struct tv_err *err)
{
	(void)vm, (void)dir, (void)disk_tag, (void)st;
	return NOT_YET(err);
}
int vm_snapshot_check(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err)
{
	(void)vm, (void)dir, (void)disk_tag;
	return NOT_YET(err);
}
int vm_snapshot_restore(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err)
{
	(void)vm, (void)dir, (void)disk_tag;
	return NOT_YET(err);
}
int vm_disk_snapshot(struct vm *vm, enum vm_disk_snap_op op, const char *tag, const char *new_tag,
		     struct tv_err *err)
{
	(void)vm, (void)op, (void)tag, (void)new_tag;
	return NOT_YET(err);
}
int memimg_base_deleted(struct vm *vm, struct tv_err *err) { (void)vm; return NOT_YET(err); }
void memimg_forget_base(struct vm *vm) { (void)vm; }
