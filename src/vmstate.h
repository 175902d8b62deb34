/* What a VM is doing right now, worked out from its runtime files: a VM process
 * writes NAME.pid in the runtime directory while it runs and removes it when it
 * ends cleanly, so a pid file whose process is gone means the VM crashed. */
#ifndef TV_VMSTATE_H
#define TV_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/paths.h"

enum vm_state { VM_STOPPED, VM_RUNNING, VM_PAUSED, VM_CRASHED };

struct vm_status {
	enum vm_state state;
	pid_t pid;          /* when running or paused */
	uint64_t uptime_s;  /* when running or paused */
};

const char *vm_state_name(enum vm_state s);

/* Probes the runtime files of VM name; never fails (unreadable files read as
 * stopped). */
void vm_status_probe(const struct tv_paths *p, const char *name, struct vm_status *st);

/* True when the VM has a live process (running or paused). */
bool vm_is_live(const struct tv_paths *p, const char *name);

#endif
