/* Editing a VM's definition in $EDITOR the way visudo edits sudoers, apart
 * from the screen (ui/editdef.c hands the terminal over and asks through an
 * overlay; tests drive it with a script as the editor):
 *
 *   - the editor gets a copy (DIR/NAME.conf in a private temporary directory,
 *     so the definition's name still matches its file's);
 *   - after it exits, the copy is loaded as a definition (vmdef_load); an
 *     error names the real file and the line, and the user chooses between
 *     editing again and discarding;
 *   - the definition is replaced (written beside it, fsynced, renamed) only
 *     when the copy changed and is valid; an invalid one is never saved, and
 *     giving up leaves the file as it was;
 *   - when another program changed the file meanwhile, nothing is
 *     overwritten: the edited copy is kept and named. */
#ifndef TV_UI_EDITLOOP_H
#define TV_UI_EDITLOOP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

enum editdef_result {
	EDITDEF_SAVED,     /* changed and valid: the definition was replaced */
	EDITDEF_UNCHANGED, /* the copy is as it was */
	EDITDEF_INVALID,   /* changed, does not load: err says where and why */
	EDITDEF_DISCARDED, /* the user gave up on an invalid copy, or the editor
			    * failed (err says so): the file is as it was */
	EDITDEF_FAILED,    /* could not be saved (err), the file is as it was */
};

enum editdef_answer { EDITDEF_EDIT_AGAIN, EDITDEF_DISCARD };

struct editdef {
	char *conf;     /* the definition */
	char *datadir;  /* where its relative paths point */
	char *dir;      /* the private temporary directory */
	char *copy;     /* DIR/NAME.conf: what the editor edits */
	char *orig;     /* the definition's bytes when the edit began */
	size_t orig_len;
	bool keep;      /* leave the copy (it holds the user's work) */
};

/* Copies conf for editing. */
int editdef_begin(struct editdef *e, const char *conf, const char *datadir, struct tv_err *err);
/* After the editor: loads the copy, and saves it when it changed and is valid. */
enum editdef_result editdef_check(struct editdef *e, struct tv_err *err);
/* Removes the copy (unless it was kept) and frees e. */
void editdef_end(struct editdef *e);

/* $VISUAL, else $EDITOR, else vi. */
const char *editdef_editor(void);
/* Runs the editor on file (through sh, so "emacs -nw" works) and waits for
 * it; -1 when it could not start or exited with an error (taken as giving up). */
int editdef_run_editor(const char *file, struct tv_err *err);

/* The whole loop with the screen's parts as callbacks: edit runs the editor
 * on a file (-1: the user gave up), ask puts the error to the user. */
struct editdef_ops {
	int (*edit)(void *ctx, const char *file, struct tv_err *err);
	enum editdef_answer (*ask)(void *ctx, const char *error);
	void *ctx;
};
enum editdef_result editdef_loop(const char *conf, const char *datadir,
				 const struct editdef_ops *ops, struct tv_err *err);

#endif
