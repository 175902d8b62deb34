/* The model the views draw from, apart from drawing: the definitions (watched
 * with inotify, so a change from another terminal shows within a second), each
 * live VM's state from one subscribed control connection (PROTO_SUBSCRIBE:
 * events, not probes), and each VM's snapshot list, cached and reloaded on
 * PROTO_EV_SNAPSHOT or when its index file changes. */
#ifndef TV_UI_MODEL_H
#define TV_UI_MODEL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "src/core/catalog.h"
#include "src/core/paths.h"
#include "src/core/snapstore.h"

enum model_state {
	MODEL_STOPPED,
	MODEL_STARTING,
	MODEL_RUNNING,
	MODEL_PAUSED,
	MODEL_STOPPING,
	MODEL_CRASHED, /* the VM process ended on its own with an error */
	MODEL_BROKEN,  /* the definition does not load: see error */
};

struct model_vm {
	char name[80];
	enum model_state state;
	char error[256];    /* BROKEN: the definition's error; CRASHED: the last line */
	char reason[256];   /* why paused, when the VM says ("disk.qcow2: no space left on device") */
	unsigned cpus;
	uint64_t memory;    /* bytes */
	uint64_t disk_bytes;   /* on disk, read when the definition changed */
	uint32_t pid;
	uint64_t uptime_ms; /* at the last status */
	unsigned snapshots; /* count, from the cached list */
	char here[64];      /* the "you are here" snapshot's tag, or "" */
	uint64_t generation; /* bumped on any change of this VM */
};

struct model;

int model_open(struct model **mp, const struct tv_paths *p, struct tv_err *err);
void model_free(struct model *m);

size_t model_count(const struct model *m);
const struct model_vm *model_vm(const struct model *m, size_t i);
const struct model_vm *model_find(const struct model *m, const char *name);
/* Bumped whenever anything changed. */
uint64_t model_generation(const struct model *m);

/* The snapshot store of a VM, opened read-only and reloaded when it changed
 * (NULL when it has none or it could not be read; err says why). */
const struct snapstore *model_snapshots(struct model *m, const char *name, struct tv_err *err);

/* Re-read now (after an action this process did). */
void model_refresh(struct model *m, const char *name);

/* The definition as loaded (its error when broken), or NULL. */
const struct catalog_entry *model_entry(const struct model *m, const char *name);
/* This process is starting VM name (a job): shown as starting until the VM
 * runs or the start fails (on false). */
void model_set_starting(struct model *m, const char *name, bool starting);

int model_pollfds(struct model *m, struct pollfd *pfd, int max);
void model_ready(struct model *m, const struct pollfd *pfd, int n);
/* ms until model_tick wants to run (a VM starting, a retry), or -1. */
int model_timeout(const struct model *m);
void model_tick(struct model *m);

#endif
