/* Machine snapshots (vm/snapshot.c): the whole state of a paused VM saved to
 * one directory and restored into a VM built from the same configuration.
 *
 * A snapshot directory holds:
 *	state   vCPUs (registers, FPU/XSAVE, MSRs, LAPIC, events, MP state), the
 *	        irqchip (PIC x2, IOAPIC), PIT, kvmclock, and every device's state
 *	        struct walked through the device table (vm/dev/dev.h); versioned,
 *	        one checksum per part (termvisor-snapshot(5))
 *	memory  the guest memory image (vm/memimg.h)
 * and, on every qcow2 disk of the VM, an internal snapshot named disk_tag
 * (`qemu-img snapshot -l` shows it). Raw disks are refused.
 *
 * The caller (the VM process) owns the directory's life: it writes into a
 * temporary directory and commits by renaming it (src/core/snapstore.h). */
#ifndef TV_SNAPSHOT_H
#define TV_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vm/memimg.h"

struct vm;

#define VM_SNAPSHOT_STATE "state"
#define VM_SNAPSHOT_MEMORY "memory"

struct vm_snapshot_stats {
	uint64_t pause_ns;   /* how long the vCPUs were held for the take */
	uint64_t state_bytes;
	struct memimg_save_stats mem;
};

/* What a state file says about the machine it came from. */
struct vm_snapshot_info {
	uint32_t version;
	unsigned cpus;
	uint64_t memory;     /* bytes of RAM */
	unsigned ndevices;
	unsigned ndisks;
	uint64_t taken_ns;   /* CLOCK_REALTIME at the take */
	uint64_t guest_ns;   /* kvmclock at the take */
};

/* Takes a snapshot of vm (running or paused; running again afterwards if it
 * was) into dir, an existing empty directory: pauses the vCPUs, quiesces the
 * devices, writes state and memory, creates the internal snapshot disk_tag on
 * every disk (disk_tag NULL: no disk snapshots, for VMs without disks). On
 * failure whatever was created is removed again (disk snapshots included). */
int vm_snapshot_take(struct vm *vm, const char *dir, const char *disk_tag,
		     struct vm_snapshot_stats *st, struct tv_err *err);

/* Checks the snapshot in dir against vm (vCPU count, memory size, devices by
 * name and state size, disks and their snapshot disk_tag) and every part's
 * version and checksum, touching nothing. Errors name the file and field. */
int vm_snapshot_check(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err);

/* Restores the snapshot in dir into vm (running, paused or not yet started;
 * afterwards in the same run state): checks it first (vm_snapshot_check) and
 * leaves vm untouched when that fails; then memory, vCPUs, irqchip, PIT,
 * clock, devices, and the disks reverted to disk_tag. A failure after the
 * checks passed (KVM refusing a value only it validates, an I/O error) ends
 * the VM's run (VM_EXIT_HOST_ERROR): it never runs on half restored. */
int vm_snapshot_restore(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err);

/* Reads the state file's header (no VM needed; used by `snapshot show` and
 * the fuzz target): every part is parsed and checked. */
int vm_snapshot_read_info(const char *dir, struct vm_snapshot_info *info, struct tv_err *err);

/* The internal disk snapshots of a running VM, done by the engine because it
 * has the images open (the devices quiesced while it works). */
enum vm_disk_snap_op { VM_DISK_SNAP_CREATE, VM_DISK_SNAP_APPLY, VM_DISK_SNAP_DELETE, VM_DISK_SNAP_RENAME };
int vm_disk_snapshot(struct vm *vm, enum vm_disk_snap_op op, const char *tag, const char *new_tag,
		     struct tv_err *err);

/* The state file alone (vCPUs, irqchip, PIT, clock, devices), without
 * memory image or disks: for a caller that keeps guest memory in place
 * itself (tests, a rollback where memory did not change). Pause and
 * quiesce like the calls above; load checks the whole file first. */
int vm_snapshot_save_state(struct vm *vm, const char *dir, uint64_t *bytes, struct tv_err *err);
int vm_snapshot_load_state(struct vm *vm, const char *dir, struct tv_err *err);

#endif
