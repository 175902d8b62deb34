/* Stand-ins for the snapshot tree and the definition editor (ui/actions.h,
 * view_snapshots_new), so this tree links and runs without them: the real
 * ones are ui/view-snapshots.c and ui/editdef.c. Delete this file when they
 * are merged. */
#include "ui/actions.h"
#include "ui/app.h"
#include "ui/view.h"

void action_snapshot_take(struct app *a, const char *vm)
{
	app_message(a, "taking a snapshot of %s: not built in this tree", vm);
}

void action_snapshot_tree(struct app *a, const char *vm)
{
	app_message(a, "the snapshot tree of %s: not built in this tree", vm);
}

void action_snapshot_rollback(struct app *a, const char *vm)
{
	app_message(a, "rolling %s back: not built in this tree", vm);
}

void action_edit(struct app *a, const char *vm)
{
	app_message(a, "editing %s: not built in this tree", vm);
}

struct view *view_snapshots_new(struct app *app, const char *name, const char *tag)
{
	app_message(app, "the snapshot tree of %s: not built in this tree", name);
	return NULL;
}
