/* TEMPORARY, until the engine's vm/snapshot.c (branch e-state) lands: the
 * functions snap.c calls, each refusing with a message that says so. Removed
 * by the merge that brings the real ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vm/snapshot.h"

#define NOT_YET(err) tv_errf(err, "snapshots are not built into this termvisor yet")

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
