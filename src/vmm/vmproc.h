/* The background VM process: one per running VM. `termvisor start` forks it;
 * it leaves the terminal's session, writes its output and the guest's console
 * to vm.log in the VM's data directory, holds the VM's lock, owns the engine,
 * the disks and the console, and serves the control socket until the guest
 * powers off or is forced off.
 *
 * Start-up errors (bad kernel, disk locked, no /dev/kvm, already running) are
 * sent back to the starting process through a pipe before it returns, so the
 * caller reports them with a non-zero exit status; once vmproc_start returns
 * 0 the VM runs. */
#ifndef TV_VMPROC_H
#define TV_VMPROC_H

#include <stdint.h>
#include <sys/types.h>

#include "src/core/paths.h"
#include "src/core/vmdef.h"

/* How long a graceful stop waits for the guest before forcing it off. */
#define VMPROC_STOP_TIMEOUT_MS 30000

/* Starts def in its own process and waits for it to run or fail. On success
 * *pid is the VM process. */
int vmproc_start(const struct tv_paths *p, const struct vmdef *def, pid_t *pid,
		 struct tv_err *err);

/* Loads VM name's definition and starts it: what `termvisor start` and the
 * interface call. A VM that already runs is an error naming its pid. */
int vmproc_start_name(const struct tv_paths *p, const char *name, pid_t *pid,
		      struct tv_err *err);

#endif
