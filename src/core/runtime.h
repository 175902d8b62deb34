/* What a VM is doing right now, worked out from its runtime files (in the
 * runtime directory, see paths.h):
 *
 *   NAME.lock     the VM process holds an exclusive flock(2) on it for its
 *                 whole life: the lock, not a pid, says whether the VM is live
 *   NAME.pid      "PID\n", written once the VM runs, removed on a clean exit
 *   NAME.sock     the control socket (termvisor-protocol(7))
 *   NAME.paused   present while the vCPUs are paused; holds why when the VM
 *                 paused itself (a full disk), else empty
 *   NAME.crashed  left when a VM process died without cleaning up: the stale
 *                 pid file is renamed to it, so the crash is remembered until
 *                 the next start
 *
 * The VM process's own output and the guest's console go to vm.log in the
 * VM's data directory. */
#ifndef TV_RUNTIME_H
#define TV_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/core/paths.h"
#include "src/core/protocol.h"

enum vm_state { VM_STOPPED, VM_RUNNING, VM_PAUSED, VM_CRASHED };

struct vm_status {
	enum vm_state state;
	pid_t pid;          /* when running or paused */
	uint64_t uptime_s;  /* when running or paused */
	char reason[PROTO_REASON_MAX + 1]; /* paused: why the VM paused itself, or "" */
};

const char *vm_state_name(enum vm_state s);

/* Probes the runtime files of VM name; never fails (unreadable files read as
 * stopped). A crashed VM's stale pid file, socket and pause marker are
 * cleaned up on the way. */
void vm_status_probe(const struct tv_paths *p, const char *name, struct vm_status *st);

/* True when the VM has a live process (running or paused). */
bool vm_is_live(const struct tv_paths *p, const char *name);

/* The VM process's log: DATA/NAME/vm.log. */
char *vm_log_path(const struct tv_paths *p, const char *name);
/* The last n lines of the log, control characters replaced, or NULL. */
char *vm_log_tail(const struct tv_paths *p, const char *name, int n);

/* For the VM process. Takes NAME.lock for the life of the process; returns
 * the descriptor, or -1 when another process holds it (the VM runs or is
 * starting: the message says so) or on error. Keep the descriptor open. */
int vm_lock_take(const struct tv_paths *p, const char *name, struct tv_err *err);
/* Removes what a crash left (under the lock) and writes NAME.pid. */
int vm_runtime_begin(const struct tv_paths *p, const char *name, struct tv_err *err);
void vm_runtime_set_paused(const struct tv_paths *p, const char *name, bool paused);
/* Paused by the VM itself, with why (one line). */
void vm_runtime_set_paused_why(const struct tv_paths *p, const char *name, const char *why);
/* Forgets a VM that is not live (its definition is being deleted): the crash
 * marker and the lock file go too, so a new VM of that name starts clean. */
void vm_runtime_forget(const struct tv_paths *p, const char *name);

/* Removes NAME.sock and NAME.paused and NAME.pid: the end of a VM process.
 * With crashed (the guest or the engine failed), the pid file becomes the
 * crash marker. */
void vm_runtime_end(const struct tv_paths *p, const char *name, bool crashed);

#endif
