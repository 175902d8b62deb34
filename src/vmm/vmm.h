/* The VM process: one program and one main loop for every VM.
 *
 * A VM always runs in a process of its own, started from a fresh exec of
 * termvisor-engine (installed in pkglibexecdir, beside termvisor in the build
 * tree), which links the engine and none of the interface's libraries:
 *
 *   termvisor start NAME, autostart, the interface   vmm_start: fork, leave the
 *       terminal's session, exec the engine with --detach; it writes vm.log,
 *       serves the control socket and reports its start-up through a pipe
 *   termvisor run [NAME]                              vmm_run: exec the engine in
 *       the foreground, its console on this terminal (a statically linked
 *       termvisor runs the same loop in its own process: it maps only what it
 *       uses, and skipping the exec saves a millisecond)
 *
 * Either way vmm_main runs: signals, the guest's output (through the guard,
 * once, to the console screen, the clients, the terminal and the log), the
 * input backlog, the control socket's verbs (verbs.h), guest resets, and the
 * account of how the run ended all live in src/vmm/vmm.c. A named VM holds its
 * lock and serves its control socket in the foreground too, so `termvisor
 * console`, `status` and `pause` reach a VM however it was started.
 *
 * Exit status (termvisor(1)): 0 the guest powered off, was forced off or quit
 * from the console; 1 host error; 3 triple fault; 4 guest crash; 5 guest reset
 * with reboot_exit; 6 a forbidden system call (sandbox.h); 64+v debug-exit
 * value v; 128+n stopped by signal n. */
#ifndef TV_VMM_H
#define TV_VMM_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "vm/vm.h"

enum {
	VMM_EXIT_TRIPLE_FAULT = 3,
	VMM_EXIT_CRASH = 4,
	VMM_EXIT_REBOOT = 5,
	VMM_EXIT_DEBUG_BASE = 64,
};

/* How long a graceful stop waits for the guest before forcing it off. */
#define VMM_STOP_TIMEOUT_MS 30000

struct vmm_opts {
	struct vm_config cfg; /* cfg.disks points at disks[] */
	struct vm_disk disks[VMDEF_MAX_DISKS];
	struct vm_nic nics[NET_NICS_MAX]; /* cfg.nics points here */
	const char *name;  /* a defined VM: its lock, runtime files and control
			    * socket; NULL for a VM without a definition */
	bool detach;       /* in the background: output to vm.log, start-up
			    * reported on report_fd ("0", or "1" and the message) */
	int report_fd;
	bool reboot_exit;  /* a guest reset ends the run (status 5) */
	const char *restore_dir; /* a snapshot directory (termvisor-snapshot(5))
			    * to restore the machine from instead of booting */
	const char *restore_tag; /* its disks' internal snapshot to revert
			    * them to; NULL: the disks are as they should be */
	bool keep_automatic_set; /* else SNAP_KEEP_AUTOMATIC_DEFAULT */
	unsigned keep_automatic; /* automatic snapshots kept: snapshot_keep_automatic
			    * in termvisor.conf, which the launcher reads */
	bool no_sandbox;   /* run unconfined (sandbox.h): --no-sandbox, or
			    * sandbox = false in the definition */
};

/* Runs the VM in this process until it ends; returns the exit status. */
int vmm_main(struct vmm_opts *o);

/* The command line between the launcher and termvisor-engine (args.c):
 * vmm_argv writes every setting as its own argument, vmm_args_parse reads
 * them back. */
char **vmm_argv(const struct vmm_opts *o, const char *prog);
void vmm_argv_free(char **argv);
int vmm_args_parse(int argc, char **argv, struct vmm_opts *o, struct tv_err *err);
/* A NIC as `run --net` and the engine's command line write it:
 * MODE[,mac=M][,forward=F]...[,name=LAB][,ifname=TAP][,bridge=BR], e.g.
 * "user,forward=tcp::2222:22". Without mac= a fresh MAC is made. Errors name
 * the part that is wrong. */
int vmm_net_parse(const char *text, struct vm_nic *nic, struct tv_err *err);
/* The same text, mac= always written. Free it. */
char *vmm_net_format(const struct vm_nic *nic);

/* termvisor-engine: $TERMVISOR_ENGINE, else beside this executable, else in
 * pkglibexecdir. Free it. */
char *vmm_engine_path(void);

/* Foreground: replaces this process with termvisor-engine running o, or runs
 * o here (statically linked, or when the engine cannot be started). Returns
 * the exit status. */
int vmm_run(struct vmm_opts *o);

/* Background: starts def in its own process and waits until it runs or
 * failed (the message is the VM process's). *pid is the VM process. */
int vmm_start(const struct tv_paths *p, const struct vmdef *def, pid_t *pid, struct tv_err *err);
/* Loads VM name's definition and starts it: `termvisor start`, the
 * interface. A VM that already runs is an error naming its pid. */
int vmm_start_name(const struct tv_paths *p, const char *name, pid_t *pid, struct tv_err *err);
/* The same; with no_sandbox (`start --no-sandbox`) the VM runs unconfined
 * whatever its definition says. */
int vmm_start_name_opts(const struct tv_paths *p, const char *name, bool no_sandbox, pid_t *pid,
			struct tv_err *err);

#endif
