/* Every VM definition in the VM directory, the broken ones included, so one bad
 * file never hides the others. */
#ifndef TV_CATALOG_H
#define TV_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "src/core/paths.h"
#include "src/core/vmdef.h"

struct catalog_entry {
	char *name;
	char *file;
	bool ok;           /* def is valid */
	struct vmdef def;  /* when ok */
	char *error;       /* when not ok: "FILE:LINE: field: expected ..." */
	char **warnings;
	size_t nwarnings;
};

struct catalog {
	struct catalog_entry *v;
	size_t n;
	size_t nbroken;
};

/* Loads every NAME.conf, sorted by name. A missing directory is an empty catalog;
 * an unreadable one is an error. */
int catalog_load(const struct tv_paths *p, struct catalog *c, struct tv_err *err);
void catalog_free(struct catalog *c);

#endif
