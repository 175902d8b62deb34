/* Global settings (termvisor.conf, see termvisor.conf(5)): what the commands
 * themselves need. A missing file means the defaults. */
#ifndef TV_SETTINGS_H
#define TV_SETTINGS_H

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

/* "^]" -> 0x1d: a caret and a letter or one of @[\]^_; -1 otherwise. */
int settings_parse_escape(const char *text);

#define SETTINGS_KEEP_AUTOMATIC_MAX 1000

#endif
