/* The foreground engine behind `termvisor run`: one VM with its serial
 * console on stdin/stdout, restarted on a guest reset unless told to exit.
 *
 * When termvisor is linked against shared libraries, the VM runs in its own
 * small program, termvisor-engine (installed in pkglibexecdir), which links
 * the engine and the decompressors but none of the interface's libraries:
 * `termvisor run` settles the command line (a VM's definition, the kernel
 * cache) and replaces itself with that program, so the VM process stays
 * small. runvm_exec builds its command line and runvm_main reads it back;
 * both sides live here so they cannot drift. */
#ifndef TV_RUNVM_H
#define TV_RUNVM_H

#include <stdbool.h>

#include "src/core/vmdef.h"
#include "vm/vm.h"

struct runvm_opts {
	struct vm_config cfg; /* cfg.disks points at disks[] */
	struct vm_disk disks[VMDEF_MAX_DISKS];
	bool reboot_exit; /* a guest reset ends the run (status 5) */
};

/* Runs the VM in this process until it ends; returns the exit status
 * documented in termvisor(1) (0 powered off, 3 triple fault, ...). */
int runvm(struct runvm_opts *o);

/* Replaces this process with termvisor-engine running o. Returns at once
 * when this program is linked statically (it is as small then), or when
 * termvisor-engine cannot be started: the caller then calls runvm itself.
 * $TERMVISOR_ENGINE names another program to use, even then. */
void runvm_exec(const struct runvm_opts *o);

/* The path of termvisor-engine: next to this executable (the build tree, or
 * an install keeping both in one folder), else in pkglibexecdir. Free it. */
char *runvm_engine_path(void);

/* termvisor-engine's main: reads the command line runvm_exec wrote. */
int runvm_main(int argc, char **argv);

#endif
