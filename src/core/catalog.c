#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/catalog.h"
#include "common/util.h"

static void add_warning(void *ctx, const char *msg)
{
	struct catalog_entry *e = ctx;

	e->warnings = xreallocarray(e->warnings, e->nwarnings + 1, sizeof(char *));
	e->warnings[e->nwarnings++] = xstrdup(msg);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct catalog_entry *)a)->name,
		      ((const struct catalog_entry *)b)->name);
}

int catalog_load(const struct tv_paths *p, struct catalog *c, struct tv_err *err)
{
	DIR *d = opendir(p->vms_dir);
	struct dirent *de;

	memset(c, 0, sizeof(*c));
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return tv_errno(err, "%s: cannot read the VM directory", p->vms_dir);
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct catalog_entry *e;
		struct tv_err lerr;
		char *datadir;

		if (len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0 || de->d_name[0] == '.')
			continue;
		c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
		e = &c->v[c->n++];
		memset(e, 0, sizeof(*e));
		e->name = xstrndup_len(de->d_name, len - 5);
		e->file = xasprintf("%s/%s", p->vms_dir, de->d_name);
		datadir = paths_vm_data(p, e->name);
		if (vmdef_load(e->file, datadir, &e->def, add_warning, e, &lerr) == 0) {
			e->ok = true;
		} else {
			e->error = xstrdup(lerr.msg);
			vmdef_free(&e->def);
			c->nbroken++;
		}
		free(datadir);
	}
	closedir(d);
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), by_name);
	return 0;
}

void catalog_free(struct catalog *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct catalog_entry *e = &c->v[i];
		free(e->name);
		free(e->file);
		free(e->error);
		if (e->ok)
			vmdef_free(&e->def);
		for (size_t j = 0; j < e->nwarnings; j++)
			free(e->warnings[j]);
		free(e->warnings);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}
