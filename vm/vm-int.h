/* The engine's private view of a VM, shared by kvm.c, vcpu.c, boot.c and
 * vm/dev/dev.c. Device models use vm.h and dev.h only. */
#ifndef TV_VM_INT_H
#define TV_VM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "vm/dev/dev.h"
#include "vm/vm.h"

struct memimg_mem;

struct io_range {
	uint64_t base, len;
	struct dev *dev;
	const struct dev_io_ops *io;
	void *opaque;
};

struct io_bus {
	pthread_rwlock_t lock;
	struct io_range *ranges;
	size_t n, cap;
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

/* The registers a boot protocol starts the BSP with. */
struct boot_regs {
	uint64_t rip, rsp, rsi, rbx;
	bool long_mode; /* 64-bit entry with paging (else 32-bit flat, no paging) */
	bool real_mode; /* flat binary at its load address in 16-bit real mode */
};

struct vm {
	struct vm_config cfg; /* strings duplicated */
	int kvm_fd, fd;
	size_t run_size;
	int max_cpus;

	struct guest_mem mem;
	uint8_t *ram;
	uint64_t ram_map_size;
	struct memimg_mem *memimg; /* the memory image base and change tracking (memimg.c) */
	bool ram_dirty_log;        /* KVM_MEM_LOG_DIRTY_PAGES on the RAM slots */

	struct vcpu *vcpus;
	unsigned ncpus;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, before per-vCPU patching */
	bool tsc_deadline;        /* KVM_CAP_TSC_DEADLINE_TIMER: advertise it in CPUID.1 */
	struct boot_regs boot;    /* the boot vCPU's registers, from boot_load */

	struct io_bus pio, mmio;
	struct dev *devs;

	/* Run state, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_exit_reason reason;
	int code;
	char *msg;
	int exit_efd;
	bool started, pause_req, paused;
	unsigned running; /* vCPU threads not yet finished */
	unsigned parked;  /* vCPU threads waiting in a pause */
	unsigned resumes; /* vm_resume calls: a held request waits for the next */
	char *hold_why;   /* why a device holds the VM paused (vm_hold), or NULL */
	int hold_efd;

	/* Console input, per port (the UART for ttyS0, virtio-console for hvc0). */
	console_input_fn cin[CONSOLE_NPORTS];
	void *cin_dev[CONSOLE_NPORTS];
	/* The terminal size per port, for devices that tell the guest (hvc0). */
	console_size_fn csize[CONSOLE_NPORTS];
	void *csize_dev[CONSOLE_NPORTS];

	/* GSI routing table: the PICs' and the IOAPIC's pins (layout.h). */
	struct kvm_irq_routing *routes;
	unsigned routes_cap;
	int max_gsi;
};

/* kvm.c: KVM's dirty page log on the RAM slots, for the memory images.
 * collect ORs the pages written since the last collect (or the enable) into
 * bitmap, one bit per 4 KiB page of the RAM mapping, and clears the log. */
int mem_dirty_log_enable(struct vm *vm, struct tv_err *err);
int mem_dirty_log_collect(struct vm *vm, uint64_t *bitmap, struct tv_err *err);

/* vcpu.c */
int vcpu_create(struct vm *vm, unsigned id, struct tv_err *err);
void vcpu_close(struct vcpu *c);
int vcpu_set_boot_regs(struct vcpu *c, const struct boot_regs *br, struct tv_err *err);
void *vcpu_thread(void *arg);
void vcpu_kick(struct vcpu *c);
/* Multi-line dump of c's registers, for triple faults and crashes. */
char *vcpu_dump(struct vcpu *c);

/* kvm.c: the vCPU threads report here. */
bool vm_pause_pending(struct vm *vm);
bool vm_vcpu_should_park(struct vm *vm); /* blocks while paused; true when the run ended */
void vm_vcpu_finished(struct vm *vm);

/* vm/dev/dev.c */
void bus_init(struct io_bus *b);
void bus_free(struct io_bus *b);
/* Dispatches one access; returns false when nothing claims the address. */
bool bus_access(struct io_bus *b, uint64_t addr, void *data, unsigned len, bool write);
void dev_destroy_all(struct vm *vm);

#endif
