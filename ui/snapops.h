/* Snapshot operations as the interface runs them (ui/actions-snap.c), shared
 * by the list's actions and the tree view: a running or paused VM gets the
 * verb (the VM process does the work, PROTO_SNAPSHOT_*), a stopped one a
 * `termvisor snapshot ...` job; neither blocks the screen. When it ends, what
 * was done (with the reply's figures) goes to the message bar, the model
 * re-reads the tree, and done (may be NULL) learns the outcome. */
#ifndef TV_UI_SNAPOPS_H
#define TV_UI_SNAPOPS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct app;

enum snapop_kind { SNAPOP_TAKE, SNAPOP_ROLLBACK, SNAPOP_DELETE, SNAPOP_RENAME };

struct snapop_args {
	enum snapop_kind kind;
	const char *tag;         /* the snapshot (take: the new one's) */
	const char *new_tag;     /* rename */
	const char *description; /* take; may be NULL */
	bool discard;            /* rollback: do not save the current state first */
};

/* ok: it was done; tag: the snapshot to show under the cursor now (the one
 * taken, rolled back to or renamed; "" after a delete). */
typedef void (*snapop_done_fn)(void *ctx, bool ok, const char *tag);

/* Whether vm runs (*live: its VM process does the work); -1 with a message
 * for a VM that is starting or stopping, which neither way can work on. */
int snapop_is_live(struct app *a, const char *vm, bool *live, struct tv_err *err);
/* Starts the operation; -1 (err says why) when it cannot be started. */
int snapop_run(struct app *a, const char *vm, const struct snapop_args *op, snapop_done_fn done,
	       void *ctx, struct tv_err *err);
/* Starts `termvisor clone VM NEW --snapshot TAG [--linked]` as a job. */
int snapop_clone(struct app *a, const char *vm, const char *tag, const char *new_vm, bool linked,
		 struct tv_err *err);
/* The form of `t` (a proposed name that Enter accepts; a description may
 * follow it after a space), then the take; done hears of the outcome, once,
 * whatever it is (cancelled and refused included). */
void snapop_take_form(struct app *a, const char *vm, snapop_done_fn done, void *ctx);
/* A tag for a new snapshot of vm: snap-N, N one more than any in use. */
void snapop_propose_tag(struct app *a, const char *vm, char *buf, size_t len);

#endif
