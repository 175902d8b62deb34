/* The interface's application object: the model, the views and their layout,
 * the key table, overlays, background jobs and the one event loop. */
#ifndef TV_UI_APP_H
#define TV_UI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/paths.h"
#include "ui/keys.h"
#include "ui/model.h"

struct app;
struct view;

struct model *app_model(struct app *a);
const struct tv_paths *app_paths(struct app *a);
const struct keytable *app_keys(struct app *a);

/* The VM selected in the list, or NULL. */
const char *app_selected(struct app *a);
void app_select(struct app *a, const char *name);

/* The main pane: open v as a tab and focus it (the app owns v). A console
 * or tree of the same VM already open is focused instead (v is freed). */
void app_open_tab(struct app *a, struct view *v);
void app_close_tab(struct app *a, struct view *v);
/* The console tab of a VM, opened when missing. */
struct view *app_console(struct app *a, const char *name);

/* A line in the message bar (kept until the next one or a key). */
void app_message(struct app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void app_dirty(struct app *a);

/* Copy mode's clipboard: text (len bytes) goes to the user's terminal as an
 * OSC 52 sequence (its clipboard, through SSH too; inside tmux both plain,
 * which tmux takes into a buffer with set-clipboard on, and wrapped for its
 * passthrough) and is kept for app_pasted. */
void app_copy(struct app *a, const char *text, size_t len);
/* The text copied last (NULL before any), and its length. */
const char *app_pasted(const struct app *a, size_t *len);

/* Hands the terminal to a foreground child ($EDITOR: endwin, the consoles keep
 * being read into their panes) and takes it back, redrawing everything. */
void app_suspend(struct app *a);
void app_resume(struct app *a);

/* Background jobs: a termvisor subcommand (argv without the program name)
 * run as a child process while the interface goes on; its last output line is
 * shown as progress in the message bar. done gets the exit status and all of
 * its output (NUL-terminated). */
typedef void (*app_job_done_fn)(void *ctx, int status, const char *output);
int app_job(struct app *a, const char *label, const char *const *argv, app_job_done_fn done,
	    void *ctx);

/* A verb to a live VM, without waiting: done gets the reply (status 0 and
 * the typed reply's payload, or -1 and the error text). */
typedef void (*app_reply_fn)(void *ctx, int status, const uint8_t *payload, size_t len,
			     const char *error);
int app_verb(struct app *a, const char *name, uint16_t type, const void *payload, size_t len,
	     app_reply_fn done, void *ctx);

#endif
