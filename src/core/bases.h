/* The read-only base images of linked clones, kept in DATA/.bases/ (see
 * `termvisor clone --linked`). A base lives while any VM's disk names it as
 * its backing file; deleting the last VM that uses it removes it. */
#ifndef TV_BASES_H
#define TV_BASES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "src/core/paths.h"

#define BASES_DIR ".bases" /* VM names never start with '.' */

/* DATA/.bases, created when missing (mode 0755). */
char *bases_dir(const struct tv_paths *p, struct tv_err *err);

/* Holds the bases still while a clone makes one and the overlay that names
 * it (shared), or while unused bases are removed (exclusive). Returns the
 * lock's descriptor, to be given to bases_unlock, or -1. */
int bases_lock(const struct tv_paths *p, bool exclusive, struct tv_err *err);
void bases_unlock(int fd);

/* Removes every base that no VM's disk uses any more, and leftovers of
 * clones that died while making one. Every definition must load, and every
 * qcow2 image in every VM's directory is read, so that nothing in use is
 * ever removed: when one cannot be read, nothing is removed and err says
 * which (returns -1). removed (may be NULL) gets the names removed, count in
 * *n; free with bases_names_free. */
int bases_gc(const struct tv_paths *p, char ***removed, size_t *n, struct tv_err *err);
void bases_names_free(char **names, size_t n);

#endif
