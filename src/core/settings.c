#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/core/cfgfile.h"
#include "src/core/settings.h"
#include "src/core/snapstore.h"
#include "common/util.h"

void settings_defaults(struct tv_settings *s)
{
	s->console_escape = 0x1d; /* ^] */
	s->snapshot_keep_automatic = SNAP_KEEP_AUTOMATIC_DEFAULT;
}

int settings_parse_escape(const char *text)
{
	unsigned char c;

	if (text[0] != '^' || text[1] == '\0' || text[2] != '\0')
		return -1;
	c = (unsigned char)toupper((unsigned char)text[1]);
	if (c < '@' || c > '_')
		return -1;
	return c - '@';
}

int settings_load(const struct tv_paths *p, struct tv_settings *s, struct tv_err *err)
{
	char *file = paths_settings_file(p);
	config_setting_t *set;
	config_t cfg;
	int rc = 0;

	settings_defaults(s);
	if (access(file, F_OK) < 0 && errno == ENOENT) {
		free(file);
		return 0;
	}
	config_init(&cfg);
	if (cfgfile_read(&cfg, file, err) < 0) {
		rc = -1;
		goto out;
	}
	set = config_lookup(&cfg, "console_escape");
	if (set != NULL) {
		const char *v = config_setting_get_string(set);
		int c = v ? settings_parse_escape(v) : -1;
		if (c < 0) {
			rc = tv_errf(err,
				     "%s:%d: console_escape: expected ^ and a letter or one of "
				     "@[\\]^_, like \"^]\"",
				     file, config_setting_source_line(set));
			goto out;
		}
		s->console_escape = (unsigned char)c;
	}
	set = config_lookup(&cfg, "snapshot_keep_automatic");
	if (set != NULL) {
		int v = config_setting_type(set) == CONFIG_TYPE_INT ? config_setting_get_int(set) : -1;
		if (v < 0 || v > SETTINGS_KEEP_AUTOMATIC_MAX) {
			rc = tv_errf(err,
				     "%s:%d: snapshot_keep_automatic: expected a whole number from 0 "
				     "to %d, like 5",
				     file, config_setting_source_line(set), SETTINGS_KEEP_AUTOMATIC_MAX);
			goto out;
		}
		s->snapshot_keep_automatic = (unsigned)v;
	}
out:
	config_destroy(&cfg);
	free(file);
	return rc;
}

static int group_entry(config_setting_t *e, const char *file, const char *group,
		       const char *section, settings_entry_fn fn, void *ctx, struct tv_err *err)
{
	char where[PATH_MAX + 16];
	const char *v = config_setting_get_string(e);

	snprintf(where, sizeof(where), "%s:%d", file, config_setting_source_line(e));
	if (v == NULL)
		return tv_errf(err, "%s: %s.%s%s%s: expected a string in quotes", where, group,
			       section ? section : "", section ? "." : "", config_setting_name(e));
	return fn(ctx, section, config_setting_name(e), v, where, err);
}

int settings_group(const char *file, const char *group, bool sections, settings_entry_fn fn,
		   void *ctx, struct tv_err *err)
{
	config_setting_t *g;
	config_t cfg;
	int rc = 0;

	if (access(file, F_OK) < 0 && errno == ENOENT)
		return 0;
	config_init(&cfg);
	if (cfgfile_read(&cfg, file, err) < 0) {
		config_destroy(&cfg);
		return -1;
	}
	g = config_lookup(&cfg, group);
	if (g != NULL && !config_setting_is_group(g))
		rc = tv_errf(err, "%s:%d: %s: expected a group { ... }", file,
			     config_setting_source_line(g), group);
	for (int i = 0; rc == 0 && g != NULL && i < config_setting_length(g); i++) {
		config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
		if (!sections) {
			rc = group_entry(e, file, group, NULL, fn, ctx, err);
			continue;
		}
		if (!config_setting_is_group(e)) {
			rc = tv_errf(err, "%s:%d: %s.%s: expected a group { ... }", file,
				     config_setting_source_line(e), group, config_setting_name(e));
			break;
		}
		for (int j = 0; rc == 0 && j < config_setting_length(e); j++)
			rc = group_entry(config_setting_get_elem(e, (unsigned)j), file, group,
					 config_setting_name(e), fn, ctx, err);
	}
	config_destroy(&cfg);
	return rc;
}
