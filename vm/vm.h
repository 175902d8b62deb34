/* The engine: one KVM virtual machine with its memory, vCPU threads, devices
 * and boot. The caller (`termvisor run`, the background VM process) owns the
 * struct vm and drives it from one control thread:
 *
 *	vm_new(&vm, &cfg, &err);      opens /dev/kvm, memory, vCPUs, devices, loads the kernel
 *	vm_start(vm, &err);              one thread per vCPU, the guest runs
 *	poll(vm_exit_fd(vm)) / vm_wait(vm);
 *	vm_exit_reason(vm), vm_exit_message(vm);
 *	vm_free(vm);
 *
 * A guest reset (i8042 0xFE, ACPI reset) ends the run with VM_EXIT_REBOOT;
 * restarting is the caller's choice: vm_free, then vm_new again.
 * Nothing a guest does aborts the host process: guest faults end the run with
 * a reason and a message.
 *
 * The engine takes SIGRTMIN (a no-op handler) to knock vCPU threads out of
 * KVM_RUN; the rest of the process must leave that signal alone. */
#ifndef TV_VM_H
#define TV_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vm/console.h"
#include "common/err.h"
#include "vm/mem.h"
#include "vm/net/net.h"

struct vm;

/* How a disk's data moves: io_uring submissions from each queue's thread, or
 * a few threads doing blocking I/O. */
enum vm_disk_aio {
	VM_AIO_DEFAULT = 0, /* the faster one measured (bench/RESULTS.md) */
	VM_AIO_THREADS,
	VM_AIO_IO_URING, /* falls back to threads where io_uring is unavailable */
};

/* What a disk does when the host refuses a write (a full file system:
 * ENOSPC, EDQUOT; or any I/O error): pause the VM and hold the request
 * until it is resumed, then try again (the guest never sees the failure), or
 * report the error to the guest. Failed reads are always reported. */
enum vm_disk_on_error {
	VM_ON_ERROR_PAUSE = 0,
	VM_ON_ERROR_REPORT,
};

/* A disk for the virtio-blk device(s), which consume cfg->disks in order in
 * their dev_machine[] create function (vm/dev/dev.h). */
struct vm_disk {
	const char *path;
	const char *format; /* "qcow2", "raw", or NULL to probe */
	bool readonly;
	enum vm_disk_aio aio;
	const char *serial; /* what the guest reads as the disk's serial (virtio-blk
			     * GET_ID, /dev/disk/by-id): at most VM_DISK_SERIAL_MAX
			     * printable characters; NULL: "tvdisk" and the disk's
			     * index, never anything of the host's path */
	enum vm_disk_on_error on_error;
};

#define VM_DISK_SERIAL_MAX 20
/* Whether s may be a disk serial: 1 to VM_DISK_SERIAL_MAX bytes, each
 * printable ASCII other than space and comma. (Here, not in virtio-blk.c,
 * because definitions and the command line check serials too.) */
static inline bool vm_disk_serial_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VM_DISK_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ',')
			return false;
	return true;
}

struct vm_config {
	unsigned cpus;           /* 1 .. LAYOUT_MAX_CPUS (and the host's limit) */
	uint64_t memory;         /* bytes of RAM, a multiple of 4 KiB, at least 2 MiB */
	const char *memory_file; /* NULL: anonymous memory; else RAM is this file,
				  * mapped shared (created and sized when needed),
				  * so a snapshot can map it */
	const char *kernel;      /* ELF with a PVH note, bzImage, or flat binary */
	const char *initrd;      /* or NULL */
	const char *cmdline;     /* or NULL */
	const char *kernel_cache; /* where vmlinux extracted from a bzImage is kept
				   * (by content hash); NULL: extract in memory */
	bool bzimage_entry;      /* boot a bzImage through its own 64-bit entry
				  * (the guest decompresses itself) */
	bool debug_exit;         /* the debug-exit port (LAYOUT_DEBUG_EXIT_PORT): a
				  * guest write ends the run; for test machines
				  * only, off by default */
	const struct vm_disk *disks;
	size_t ndisks;
	const struct vm_nic *nics; /* virtio-net devices, one per NIC (vm/net/net.h) */
	size_t nnics;
	struct console_sink console; /* guest serial output */
	int vcpu_nice;           /* added to the vCPU threads' nice value (0 .. 19),
				  * so that a guest busy on every vCPU yields the
				  * host's CPUs to its VM's control under contention */
	bool verbose;            /* engine notes (timings, exits) to stderr */
};

enum vm_exit_reason {
	VM_EXIT_NONE = 0,     /* still running (or never started) */
	VM_EXIT_POWEROFF,     /* the guest powered off (ACPI S5) */
	VM_EXIT_REBOOT,       /* the guest asked for a reset */
	VM_EXIT_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN: the message has a register dump */
	VM_EXIT_CRASH,        /* emulation/internal error, failed entry, guest panic */
	VM_EXIT_HOST_ERROR,   /* a host resource or ioctl failed */
	VM_EXIT_STOPPED,      /* vm_request_stop */
	VM_EXIT_DEBUG,        /* the debug-exit port (cfg.debug_exit): vm_exit_code is the byte */
};

const char *vm_exit_reason_name(enum vm_exit_reason r);

/* Validates cfg (counts, sizes, files) and builds the VM, ready to start.
 * Errors are one line naming what was wrong (the file, the value, /dev/kvm
 * and the kvm group). */
int vm_new(struct vm **vmp, const struct vm_config *cfg, struct tv_err *err);
int vm_start(struct vm *vm, struct tv_err *err);
/* Blocks until the run ended; returns the reason. */
enum vm_exit_reason vm_wait(struct vm *vm);
/* Readable (an eventfd) once the run has ended; do not read it. */
int vm_exit_fd(const struct vm *vm);
enum vm_exit_reason vm_exit_reason(const struct vm *vm);
int vm_exit_code(const struct vm *vm);       /* VM_EXIT_DEBUG: the byte */
const char *vm_exit_message(const struct vm *vm); /* one or more lines, or "" */
/* Stops the vCPUs (if running), frees devices, memory and fds. */
void vm_free(struct vm *vm);

/* From any thread but a vCPU's: every vCPU out of KVM_RUN and parked (so
 * their state and guest memory hold still), or running again. A vCPU's last
 * I/O exit is completed before it parks, so its registers can be saved as
 * they are. Pauses do not nest; pausing a paused VM is a no-op. */
int vm_pause(struct vm *vm, struct tv_err *err);
int vm_resume(struct vm *vm, struct tv_err *err);
bool vm_paused(const struct vm *vm);

/* For devices, from their own threads (never a vCPU's): a request the host
 * cannot carry out now (a disk write on a full file system) is held. The
 * VM pauses, why ("disk.qcow2: no space left on device") is kept, the hold
 * descriptor becomes readable, and the caller waits until the VM is resumed
 * (true: try the request again) or the run ends (false). */
bool vm_hold(struct vm *vm, const char *why);
/* Readable (an eventfd) once a device paused the VM with vm_hold; the
 * VM's owner reads it to clear it, then looks at vm_hold_reason. */
int vm_hold_fd(const struct vm *vm);
/* Why a device holds the VM paused, copied into buf; false (buf "") when
 * none does. vm_resume clears it. */
bool vm_hold_reason(const struct vm *vm, char *buf, size_t len);

/* Ends the run (VM_EXIT_STOPPED) from any thread, like pulling the plug. */
void vm_request_stop(struct vm *vm);
/* Ends the run with a reason; for devices (any thread, vCPU threads too).
 * The first reason wins. msg may be NULL. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason r, int code, const char *msg);

/* Guest memory: the one bounds-checked way to touch it (vm/mem.h). */
struct guest_mem *vm_mem(struct vm *vm);
unsigned vm_ncpus(const struct vm *vm);
const struct vm_config *vm_config(const struct vm *vm);
int vm_vcpu_fd(const struct vm *vm, unsigned i);

/* Interrupts. GSI numbers per vm/layout.h (ISA 0-15, PCI INTx 16-23, MSI 24+).
 * Callable from any thread. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* A guest write to addr (port when pio) of len bytes signals fd instead of
 * exiting to a device callback; with datamatch only when the value is data.
 * assign false removes it. */
int vm_ioeventfd(struct vm *vm, int fd, uint64_t addr, unsigned len, bool pio, bool datamatch,
		 uint64_t data, bool assign, struct tv_err *err);

#endif
