/* The one key table: context, key, action, help. The footer and the help view
 * are generated from it, and termvisor.conf rebinds any key:
 *
 *	keys = { list = { take = "t"; rollback = "r"; }; console = { release = "C-g"; }; };
 *
 * Contexts: global, list, console, copy (a console's copy mode), snapshots,
 * help; "search" (a search being typed in copy mode) has no bindings: every
 * key goes to the view.
 *
 * Key names: a character ("t", "T", "/"), "C-x" (control), "M-x" (alt),
 * "Enter", "Esc", "Tab", "BTab", "Space", "Up", "Down", "Left", "Right",
 * "PgUp", "PgDn", "S-PgUp", "S-PgDn", "Home", "End", "Del", "F1".."F12". */
#ifndef TV_UI_KEYS_H
#define TV_UI_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct binding {
	const char *context; /* a view's name, "global" (any view but a focused
			      * console), "copy" (a console's copy mode) */
	int key;             /* a character, or KEY_* | KEYS_NC; see keys_parse */
	const char *action;  /* what the view's action() receives; where a
			      * control-socket verb exists, the verb's name */
	const char *help;    /* short text for the footer and the help view */
	bool footer;         /* shown in the footer */
};

/* Key codes: characters are themselves; ncurses KEY_* are ORed with KEYS_NC;
 * Alt (Esc prefix) is ORed with KEYS_META. */
#define KEYS_NC 0x100000
#define KEYS_META 0x200000
/* An action whose key was given to another by termvisor.conf. */
#define KEYS_UNBOUND (-1)

struct keytable {
	struct binding *b;
	size_t n;
};

/* The defaults. */
void keys_defaults(struct keytable *t);
void keys_free(struct keytable *t);
/* Rebinds action in context to key name; fails naming the key or action. */
int keys_bind(struct keytable *t, const char *context, const char *action, const char *key,
	      struct tv_err *err);
/* The action bound to key in context (then "global" unless the context is
 * "console", "copy" or "search", which keep their other keys), or NULL. */
const char *keys_lookup(const struct keytable *t, const char *context, int key);
/* "t", "C-g", "Enter"... for help text. */
const char *keys_name(int key, char *buf, size_t len);
int keys_parse(const char *name, int *key, struct tv_err *err);
/* The footer for a context: "t take  r rollback ..." cut to cols. */
void keys_footer(const struct keytable *t, const char *context, int cols, char *buf,
		 size_t len);

/* termvisor.conf's keys group (src/core/settings.h), then keys_check;
 * errors name the file, line, key or action. A missing file changes nothing. */
int keys_load(struct keytable *t, const char *file, struct tv_err *err);
/* Every default action still has a key, and no key has two actions in one
 * context. */
int keys_check(const struct keytable *t, struct tv_err *err);
/* The first key of action in context, or -1. */
int keys_key_of(const struct keytable *t, const char *context, const char *action);
/* Walks the table by context: fn(title, NULL, NULL) opens a context, then
 * fn(title, keys, b) for each action once, keys naming all of its keys
 * ("Up, k"). */
typedef void (*keys_each_fn)(void *ctx, const char *title, const char *keys,
			     const struct binding *b);
void keys_each_action(const struct keytable *t, keys_each_fn fn, void *ctx);
/* Every binding by context, for the help view and termvisor(1) (free it). */
char *keys_help_text(const struct keytable *t);

#endif
