/* Inside the VM process: its state, shared by the main loop (vmm.c) and the
 * verbs' handlers (verbs.c). */
#ifndef TV_VMM_INT_H
#define TV_VMM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <termios.h>
#include <time.h>

#include "src/core/protocol.h"
#include "src/core/snapstore.h"
#include "src/vmm/console-buf.h"
#include "src/vmm/control.h"
#include "src/vmm/vmm.h"
#include "src/vmm/vtguard.h"

/* The guest's output moves from the vCPU threads to the main loop in reads
 * of this size. */
#define VMM_OUTPUT_CHUNK 65536
/* What the pipe between them holds: a flooding guest waits for the main loop
 * beyond it, so a key's echo is never more than this behind on its way out
 * (64 KiB, the default, was 200 ms of a flood in the nested test machine). */
#define VMM_OUTPUT_PIPE 16384
/* Output put aside while the main loop waits for the vCPUs (vmm_wait_begin),
 * per console, beyond which it is dropped. */
#define VMM_HELD_MAX (16u * VMM_OUTPUT_CHUNK)
/* What the guest goes on handing its consoles while its machine is freed
 * (a reset, the end) is passed on for at most this long, then dropped: a
 * guest that resets in the middle of a flood must not keep the main loop,
 * and the control socket behind it, away for as long as the flood takes. */
#define VMM_FREE_DRAIN_NS (200 * 1000000ull)

/* One of the VM's consoles (vm/console.h: ttyS0, hvc0). */
struct vmm_console {
	int pipe[2];            /* its output: vCPU and device threads -> main loop */
	struct vtguard guard;   /* the one guard on its output */
	struct console_buf *cb; /* its screen: always for a named VM (clients
				 * attach to it), else from the first switch */
	struct proto_buf input; /* typed, not yet taken by the guest */
	struct proto_buf held;  /* output that did not fit in the full pipe
				 * while the main loop waited for the vCPUs;
				 * it comes after the pipe's (held_lock) */
	bool used;              /* the guest has written to it */
	int rows, cols;         /* the size its guest was told (a read-write
				 * client's window, the foreground terminal);
				 * 0: none yet */
};

/* The terminal of a foreground VM. */
struct vmm_term {
	bool on;          /* foreground: stdin/stdout are the console */
	unsigned shown;   /* the console on the terminal (Ctrl-a c switches) */
	bool tty;         /* stdin is a terminal: raw mode and Ctrl-a keys */
	bool raw;
	bool escape;      /* Ctrl-a seen, waiting for the command key */
	bool stdin_open;
	struct termios saved;
};

struct vmm {
	struct vmm_opts *o;
	const char *name;     /* for messages: the VM's name, or "run" */
	struct tv_paths paths;
	bool have_paths;
	struct vm *vm;
	struct vmm_console con[CONSOLE_NPORTS];
	unsigned primary;       /* the kernel's console: hvc0 when the command
				 * line's last console= names it, else ttyS0 */
	struct control *ctl;    /* named VMs */
	char *sock;
	int lock_fd;
	atomic_bool dropping;   /* tearing the VM down: output that does not fit
				 * in the pipe is dropped instead of waited for */
	atomic_bool main_waits; /* the main loop waits for the vCPU threads:
				 * output that does not fit in the pipe is put
				 * aside (con[].held) instead of waited for */
	pthread_mutex_t held_lock;
	int sigfd;
	int log_fd;             /* detached: vm.log; else -1 */
	size_t log_console;
	struct vmm_term term;
	time_t started;
	uint64_t started_ns;
	bool stopping;
	uint64_t stop_deadline_ns;
	int signal;             /* foreground: the signal that ends the run */
	bool quit;              /* foreground: Ctrl-a x */
	bool ended;             /* a verb ended the run (the machine is gone) */
	/* Snapshots (snap.c). */
	char dropped[SNAP_TAG_MAX + 1]; /* the disk snapshot tag last dropped in
				 * this verb (the engine drops on every disk at once) */
	char *restore_dir;      /* restore from this snapshot before the start */
	char *restore_tag;      /* its disks' snapshot to revert to, or NULL */
	uint64_t pending_restore; /* the store's pending restore being done, or 0 */
	bool sandboxed;         /* the sandbox is installed (sandbox.h) */
	bool selftest;          /* TERMVISOR_SANDBOX_SELFTEST=1 at start-up */
};

void vmm_log(struct vmm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint8_t vmm_state(void *vm);
/* Presses the power button and forces the VM off timeout_ms later (0: the
 * default); without a button to press, forces it off now. */
int vmm_begin_stop(struct vmm *v, uint32_t timeout_ms, struct tv_err *err);
/* Bytes for one of the guest's consoles: what it does not take now waits,
 * bounded. */
void vmm_input(struct vmm *v, unsigned port, const void *bytes, size_t len);
/* A client's console choice (enum proto_console) as a port. */
unsigned vmm_port(const struct vmm *v, uint8_t console);
/* Reads everything the guest printed so far onto the screens and clients. */
void vmm_drain_output(struct vmm *v);
/* Around a call of the main loop that may wait for a vCPU thread (for the
 * vCPUs to park, or for a device's lock): a vCPU thread held up by the full
 * output pipe puts its bytes aside meanwhile rather than wait for the main
 * loop, which cannot read the pipe while it waits; the end passes them on. */
void vmm_wait_begin(struct vmm *v);
void vmm_wait_end(struct vmm *v);
/* vm_pause between the two. */
int vmm_pause(struct vmm *v, struct tv_err *err);
/* Every client attached to a console, and the terminal of a foreground VM,
 * gets its console drawn again from the screen (after a rollback). */
void vmm_redraw(struct vmm *v);
/* A new machine from the configuration in place of the old one: not started
 * (rebuild), or started (restart, as after a guest reset). */
int vmm_machine_rebuild(struct vmm *v, struct tv_err *err);
int vmm_machine_restart(struct vmm *v, struct tv_err *err);
/* The guest is told each console's size again where it can be (hvc0): a new
 * machine, or one restored from a snapshot taken at another size. */
void vmm_console_sizes(struct vmm *v);

/* Snapshots (snap.c): the verbs, and the restore at start-up (before the
 * machine is built, then before it starts). */
enum verb_result vmm_verb_snapshot_take(struct verb_call *call);
enum verb_result vmm_verb_snapshot_rollback(struct verb_call *call);
enum verb_result vmm_verb_snapshot_delete(struct verb_call *call);
enum verb_result vmm_verb_snapshot_rename(struct verb_call *call);
int vmm_snapshot_startup(struct vmm *v, struct tv_err *err);
int vmm_snapshot_pending(struct vmm *v, struct tv_err *err);

#endif
