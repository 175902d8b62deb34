/* Global settings (termvisor.conf, see termvisor.conf(5)): what the commands
 * themselves need. A missing file means the defaults. */
#ifndef TV_SETTINGS_H
#define TV_SETTINGS_H

#include <stdbool.h>

#include "src/core/paths.h"

struct tv_settings {
	unsigned char console_escape; /* the byte that detaches a console, ^] by default */
	/* Automatic snapshots (taken by a rollback) kept per VM; older ones are
	 * deleted. SNAP_KEEP_AUTOMATIC_DEFAULT unless set. */
	unsigned snapshot_keep_automatic;
};

void settings_defaults(struct tv_settings *s);
/* Reads the settings file; errors name the file, line and setting. Unknown
 * settings are left to the programs that use them. */
int settings_load(const struct tv_paths *p, struct tv_settings *s, struct tv_err *err);

/* The interface's groups of named strings (termvisor.conf(5): keys, theme):
 * fn gets each string setting of group, with its section for a group of
 * groups ("keys = { list = { take = "t"; }; };": section "list", name
 * "take", value "t") or NULL for a flat one ("theme = { running = "green"; };"),
 * and where it is ("FILE:LINE"). A value that is not a string, or a section
 * where none is expected, is an error naming it; so is an fn that fails. A
 * missing file or group calls nothing. */
typedef int (*settings_entry_fn)(void *ctx, const char *section, const char *name,
				 const char *value, const char *where, struct tv_err *err);
int settings_group(const char *file, const char *group, bool sections, settings_entry_fn fn,
		   void *ctx, struct tv_err *err);

/* "^]" -> 0x1d: a caret and a letter or one of @[\]^_; -1 otherwise. */
int settings_parse_escape(const char *text);

#define SETTINGS_KEEP_AUTOMATIC_MAX 1000

#endif
