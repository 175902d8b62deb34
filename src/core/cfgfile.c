#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "src/core/cfgfile.h"

#define CFGFILE_MAX_DEPTH 10

static int check_includes(const char *file, const char *dir, int depth, struct tv_err *err);

/* The file an @include names, as libconfig will open it (include dir set). */
static int check_one(const char *from, int line, const char *name, const char *dir, int depth,
		     struct tv_err *err)
{
	char *path = name[0] == '/' ? xstrdup(name) : xasprintf("%s/%s", dir, name);
	struct stat st;
	int rc = 0;

	if (depth >= CFGFILE_MAX_DEPTH)
		rc = tv_errf(err, "%s:%d: @include \"%s\": includes nested more than %d deep", from,
			     line, name, CFGFILE_MAX_DEPTH);
	else if (stat(path, &st) < 0)
		rc = tv_errno(err, "%s:%d: @include \"%s\"", from, line, name);
	else if (!S_ISREG(st.st_mode))
		rc = tv_errf(err, "%s:%d: @include \"%s\": expected a regular file", from, line, name);
	else
		rc = check_includes(path, dir, depth + 1, err);
	free(path);
	return rc;
}

/* Scans file for lines `@include "NAME"` (libconfig's syntax: at the start of
 * a line after blanks; the name a string without escapes here, since a name
 * with one is refused as libconfig would not find it either). */
static int check_includes(const char *file, const char *dir, int depth, struct tv_err *err)
{
	FILE *f = fopen(file, "r");
	char *buf = NULL;
	size_t cap = 0;
	int line = 0, rc = 0;

	if (f == NULL)
		return tv_errno(err, "%s: cannot read", file);
	while (rc == 0 && getline(&buf, &cap, f) >= 0) {
		const char *p = buf, *end;

		line++;
		p += strspn(p, " \t");
		if (strncmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
			continue;
		p += 8 + strspn(p + 8, " \t");
		if (*p != '"' || (end = strchr(p + 1, '"')) == NULL || memchr(p + 1, '\\', (size_t)(end - p - 1))) {
			rc = tv_errf(err, "%s:%d: @include: expected a file name in double quotes", file,
				     line);
			break;
		}
		char *name = xstrndup_len(p + 1, (size_t)(end - p - 1));
		rc = check_one(file, line, name, dir, depth, err);
		free(name);
	}
	free(buf);
	fclose(f);
	return rc;
}

int cfgfile_read(config_t *cfg, const char *file, struct tv_err *err)
{
	char *copy = xstrdup(file);
	const char *dir = dirname(copy);
	int rc = check_includes(file, dir, 0, err);

	if (rc == 0) {
		config_set_include_dir(cfg, dir);
		if (config_read_file(cfg, file) != CONFIG_TRUE) {
			if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
				rc = tv_errno(err, "%s: cannot read", file);
			else
				rc = tv_errf(err, "%s:%d: %s",
					     config_error_file(cfg) ? config_error_file(cfg) : file,
					     config_error_line(cfg), config_error_text(cfg));
		}
	}
	free(copy);
	return rc;
}
