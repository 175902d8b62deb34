/* Where termvisor keeps things (XDG base directories), or everything under one
 * directory when TERMVISOR_HOME is set:
 *
 *                    default                              TERMVISOR_HOME=DIR
 *   settings         $XDG_CONFIG_HOME/termvisor/termvisor.conf  DIR/termvisor.conf
 *   VM definitions   $XDG_CONFIG_HOME/termvisor/vms/NAME.conf   DIR/vms/NAME.conf
 *   disks, snapshots $XDG_DATA_HOME/termvisor/NAME/             DIR/data/NAME/
 *   kernel cache     $XDG_CACHE_HOME/termvisor/                 DIR/cache/
 *   sockets, pids    $XDG_RUNTIME_DIR/termvisor/                DIR/run/
 *                    (or /tmp/termvisor-UID when unset)
 */
#ifndef TV_PATHS_H
#define TV_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

struct tv_paths {
	char *config_dir;  /* holds termvisor.conf */
	char *vms_dir;     /* holds NAME.conf */
	char *data_dir;    /* holds NAME/ */
	char *cache_dir;   /* extracted kernels and other caches */
	char *runtime_dir; /* sockets and pid files, mode 0700 */
};

/* Works out the directories from the environment; creates nothing. */
int paths_init(struct tv_paths *p, struct tv_err *err);
void paths_free(struct tv_paths *p);

char *paths_settings_file(const struct tv_paths *p);
char *paths_vm_conf(const struct tv_paths *p, const char *name);
char *paths_vm_data(const struct tv_paths *p, const char *name);
char *paths_vm_runtime(const struct tv_paths *p, const char *name, const char *suffix);

/* Creates dir and its parents (like mkdir -p) with the given mode for new ones. */
int paths_mkdir(const char *dir, mode_t mode, struct tv_err *err);
/* Creates the runtime directory, 0700 and owned by us, refusing anything else. */
int paths_runtime_ensure(const struct tv_paths *p, struct tv_err *err);

/* path when absolute, else base/path. */
char *paths_resolve(const char *base, const char *path);

/* VM names: 1-64 characters of letters, digits, '-', '_' and '.', not starting
 * with '.' or '-'. Returns -1 with a message saying what is wrong. */
int vm_name_check(const char *name, struct tv_err *err);
/* The same rules for other names (what: "snapshot tag"), at most max long. */
int name_check(const char *what, const char *name, size_t max, struct tv_err *err);

#endif
