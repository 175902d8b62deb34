/* The VM process's view of the engine (vm/vm.h): the few operations the
 * control socket needs, with the engine's threads behind them. */
#ifndef TV_VMPROC_ENGINE_H
#define TV_VMPROC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "common/err.h"

struct vm_engine;

/* Guest serial output; called from an engine thread. */
typedef void (*engine_output_fn)(void *ctx, const void *bytes, size_t len);

/* Creates the VM (opens /dev/kvm, loads the kernel, opens and locks the disks):
 * every start-up error happens here, before the VM process detaches. */
struct vm_engine *engine_open(const struct tv_paths *p, const struct vmdef *def,
			      engine_output_fn out, void *ctx, struct tv_err *err);
/* Starts the vCPUs. */
int engine_start(struct vm_engine *e, struct tv_err *err);
/* Becomes readable once the VM has ended (powered off, forced off, failed). */
int engine_exit_fd(const struct vm_engine *e);
/* Why it ended, in one line ("the guest powered off", ...); returns 0 for an
 * orderly end (powered off, forced off), 1 for a crash of the guest or engine. */
int engine_exit_reason(const struct vm_engine *e, char *buf, size_t len);
/* Everything the engine said about the end (a register dump after a triple
 * fault), for the log. */
const char *engine_exit_details(const struct vm_engine *e);
/* The guest asked for a reset: engine_restart boots it again, as a machine
 * would. */
bool engine_wants_restart(const struct vm_engine *e);
int engine_restart(struct vm_engine *e, struct tv_err *err);

int engine_pause(struct vm_engine *e, struct tv_err *err);
int engine_resume(struct vm_engine *e, struct tv_err *err);
bool engine_paused(const struct vm_engine *e);
/* Presses the ACPI power button: the guest decides. */
int engine_power_button(struct vm_engine *e, struct tv_err *err);
/* Ends the VM now, like pulling the plug; the exit fd follows. */
void engine_force_off(struct vm_engine *e);
/* Bytes typed at the console, for the guest's serial port. What the guest
 * does not take at once is kept (bounded) and offered again by
 * engine_input_flush while engine_input_pending. */
void engine_input(struct vm_engine *e, const void *bytes, size_t len);
void engine_input_flush(struct vm_engine *e);
bool engine_input_pending(const struct vm_engine *e);
/* Stops the threads and closes the disks. */
void engine_close(struct vm_engine *e);

#endif
