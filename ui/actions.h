/* Actions on a VM that the list and the snapshot tree share (ui/view-snapshots.c,
 * ui/editdef.c). None blocks: each opens an overlay or starts a job/verb and
 * reports through app_message. */
#ifndef TV_UI_ACTIONS_H
#define TV_UI_ACTIONS_H

struct app;

/* `t`: a form proposing a tag (Enter accepts) and an optional description,
 * then the snapshot is taken (the verb on a live VM, `termvisor snapshot take`
 * as a job on a stopped one). */
void action_snapshot_take(struct app *a, const char *vm);
/* `T`: the tree view of vm ("you are here" under the cursor). */
void action_snapshot_tree(struct app *a, const char *vm);
/* `r` from the list: the tree with the cursor on the newest snapshot. */
void action_snapshot_rollback(struct app *a, const char *vm);
/* `e`: the definition in $EDITOR (the terminal handed over and back), checked
 * on save and reopened on an error, the way visudo does; unchanged when the
 * user gives up. */
void action_edit(struct app *a, const char *vm);

#endif
