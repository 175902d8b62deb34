/* The VM: /dev/kvm, the VM fd, guest memory, interrupt routing, and the run
 * state the vCPU threads and the controlling thread share. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/boot.h"
#include "vm/layout.h"
#include "vm/memimg.h"
#include "common/util.h"
#include "vm/vm-int.h"

static const char *const reason_names[] = {
	[VM_EXIT_NONE] = "running",
	[VM_EXIT_POWEROFF] = "powered off",
	[VM_EXIT_REBOOT] = "reset",
	[VM_EXIT_TRIPLE_FAULT] = "triple fault",
	[VM_EXIT_CRASH] = "crashed",
	[VM_EXIT_HOST_ERROR] = "host error",
	[VM_EXIT_STOPPED] = "stopped",
	[VM_EXIT_DEBUG] = "debug exit",
};

const char *vm_exit_reason_name(enum vm_exit_reason r)
{
	if ((unsigned)r < ARRAY_SIZE(reason_names))
		return reason_names[r];
	return "unknown";
}

static int kvm_open(struct vm *vm, struct tv_err *err)
{
	int api;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
			return tv_errf(err, "/dev/kvm: not found: KVM is not available on this host "
					    "(enable virtualization, load kvm_intel or kvm_amd)");
		if (errno == EACCES || errno == EPERM)
			return tv_errf(err, "/dev/kvm: permission denied: add your user to the kvm "
					    "group (usermod -aG kvm USER) and log in again");
		return tv_errno(err, "/dev/kvm");
	}
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return tv_errf(err, "/dev/kvm: KVM API version %d, expected %d", api,
			       KVM_API_VERSION);
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
		{KVM_CAP_IRQCHIP, "IRQCHIP"},	  {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
		{KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"}, {KVM_CAP_PIT2, "PIT2"},
		{KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"}, {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
		{KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
			return tv_errf(err, "/dev/kvm: this KVM lacks %s", caps[i].name);
	vm->max_cpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (vm->max_cpus <= 0)
		vm->max_cpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (vm->max_cpus <= 0)
		vm->max_cpus = 4;
	vm->max_gsi = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
	/* KVM emulates the LAPIC's TSC-deadline mode but leaves the CPUID bit
	 * out of KVM_GET_SUPPORTED_CPUID: userspace sets it (KVM's api.rst). */
	vm->tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return tv_errno(err, "/dev/kvm: KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = (size_t)sz;
	return 0;
}

static int cpuid_load(struct vm *vm, struct tv_err *err)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return tv_errno(err, "/dev/kvm: KVM_GET_SUPPORTED_CPUID");
	}
	return tv_errf(err, "/dev/kvm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

static int vm_fd_create(struct vm *vm, struct tv_err *err)
{
	do
		vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0)
		return tv_errno(err, "/dev/kvm: KVM_CREATE_VM");
	fcntl(vm->fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

static int mem_slots_register(struct vm *vm, struct tv_err *err);

/* The order matters on some hosts: a memory slot registered after the
 * in-kernel irqchip exists waits for a grace period in the host kernel
 * (5-10 ms measured on a nested KVM), before it costs ~0.1 ms. */
static int vm_chips_create(struct vm *vm, struct tv_err *err)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	/* The TSS (real-mode emulation on VMX) must sit before any vCPU exists,
	 * in a hole of the map (layout.h). */
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0)
		return tv_errno(err, "KVM_SET_TSS_ADDR");
	if (mem_slots_register(vm, err) < 0)
		return -1;
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return tv_errno(err, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return tv_errno(err, "KVM_CREATE_PIT2");
	return 0;
}

/* ---- interrupt routing ---- */

static struct kvm_irq_routing_entry *route_new(struct vm *vm)
{
	struct kvm_irq_routing *r = vm->routes;

	if (r->nr == vm->routes_cap) {
		vm->routes_cap *= 2;
		r = xrealloc(r, sizeof(*r) + vm->routes_cap * sizeof(r->entries[0]));
		vm->routes = r;
	}
	memset(&r->entries[r->nr], 0, sizeof(r->entries[0]));
	return &r->entries[r->nr++];
}

static void route_irqchip(struct vm *vm, unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_routing_entry *e = route_new(vm);

	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

static int routes_commit(struct vm *vm, struct tv_err *err)
{
	if (ioctl(vm->fd, KVM_SET_GSI_ROUTING, vm->routes) < 0)
		return tv_errno(err, "KVM_SET_GSI_ROUTING");
	return 0;
}

/* GSIs 0-15 reach the PICs; GSI 0 (the PIT) reaches IOAPIC pin 2, as on a PC
 * and in QEMU, so the MADT's override IRQ0 -> GSI2 holds (layout.h). */
static int routes_init(struct vm *vm, struct tv_err *err)
{
	vm->routes_cap = 64;
	vm->routes = xcalloc(1, sizeof(*vm->routes) + vm->routes_cap * sizeof(vm->routes->entries[0]));
	for (unsigned gsi = 0; gsi < 16; gsi++)
		if (gsi != 2)
			route_irqchip(vm, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				      gsi % 8);
	for (unsigned gsi = 0; gsi < LAYOUT_IOAPIC_PINS; gsi++)
		if (gsi != 2)
			route_irqchip(vm, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
	return routes_commit(vm, err);
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = level ? 1 : 0};

	return ioctl(vm->fd, KVM_IRQ_LINE, &l);
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi m = {
		.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};

	return ioctl(vm->fd, KVM_SIGNAL_MSI, &m) < 0 ? -1 : 0;
}

int vm_ioeventfd(struct vm *vm, int fd, uint64_t addr, unsigned len, bool pio, bool datamatch,
		 uint64_t data, bool assign, struct tv_err *err)
{
	struct kvm_ioeventfd e = {.datamatch = data, .addr = addr, .len = len, .fd = fd};

	if (pio)
		e.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (datamatch)
		e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (!assign)
		e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (ioctl(vm->fd, KVM_IOEVENTFD, &e) < 0)
		return tv_errno(err, "KVM_IOEVENTFD (%s 0x%" PRIx64 ")", pio ? "port" : "address",
				addr);
	return 0;
}

/* ---- memory ---- */

static uint64_t host_memory(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kb, total = 0;
	char key[64];

	if (f == NULL)
		return 0;
	while (fscanf(f, "%63s %llu kB\n", key, &kb) == 2)
		if (strcmp(key, "MemTotal:") == 0 || strcmp(key, "SwapTotal:") == 0)
			total += kb * 1024;
	fclose(f);
	return total;
}

#define RAM_HUGE_FROM (16 * MIB)

/* Address space for guest RAM starting on a 2 MiB boundary, as the guest's
 * physical addresses do: KVM maps a huge page into the guest's second-level
 * page tables only where host and guest addresses agree modulo 2 MiB, and the
 * host's transparent huge pages need aligned ranges too. Without it every
 * 4 KiB page the guest touches first is its own fault (measured in the nested
 * machine: a guest writing 1 GiB took 14.3 s on termvisor against 1.6 s under
 * QEMU, which aligns its RAM the same way). */
static void *ram_reserve(uint64_t size)
{
	const uint64_t align = 2 * MIB;
	uint8_t *p = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	uintptr_t head;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	head = (align - ((uintptr_t)p & (align - 1))) & (align - 1);
	if (head != 0)
		munmap(p, head);
	munmap(p + head + size, align - head);
	return p + head;
}

static int mem_map(struct vm *vm, struct tv_err *err)
{
	uint64_t size = vm->cfg.memory;
	uint64_t host = host_memory();
	char want[32];
	int fd = -1, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p;

	format_size(size, want, sizeof(want));
	if (host != 0 && size > host)
		return tv_errf(err, "memory %s: the host has only %.1f GiB (RAM and swap)", want,
			       host / (double)GIB);
	if (vm->cfg.memory_file != NULL) {
		struct stat st;
		fd = open(vm->cfg.memory_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return tv_errno(err, "%s", vm->cfg.memory_file);
		if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0)) {
			tv_errno(err, "%s: sizing to %s", vm->cfg.memory_file, want);
			close(fd);
			return -1;
		}
		flags = MAP_SHARED;
	}
	p = ram_reserve(size);
	if (p != MAP_FAILED) {
		void *r = p;

		p = mmap(r, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;

			munmap(r, size);
			errno = e;
		}
	}
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		if (errno == ENOMEM)
			return tv_errf(err, "memory %s: the host cannot give that much", want);
		return tv_errno(err, "memory %s", want);
	}
	/* Huge pages: far fewer faults when a kernel is loaded, and 2 MiB
	 * mappings in the guest's second-level page tables. Not below 16 MiB,
	 * where Linux loads its kernel: the boot tables and small guests there
	 * would each cost a 2 MiB page to clear (0.1 ms, more when the host
	 * itself backs its memory lazily) for a few KiB. */
	if (size > RAM_HUGE_FROM)
		madvise(p + RAM_HUGE_FROM, size - RAM_HUGE_FROM, MADV_HUGEPAGE);
	vm->ram = p;
	vm->ram_map_size = size;
	return 0;
}

static int mem_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, uint8_t *hva,
		    struct tv_err *err)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = vm->ram_dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa, .memory_size = size, .userspace_addr = (uintptr_t)hva};

	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return tv_errno(err, "KVM_SET_USER_MEMORY_REGION (slot %u)", slot);
	return 0;
}

/* RAM up to 3 GiB at 0, the rest from 4 GiB: the hole keeps PCI, the APICs
 * and the TSS out of RAM. Only the host side: guest_mem works at once. */
static int mem_setup(struct vm *vm, struct tv_err *err)
{
	uint64_t low = MIN(vm->cfg.memory, LAYOUT_LOW_RAM_END);

	if (mem_map(vm, err) < 0)
		return -1;
	vm->memimg = memimg_mem_new(vm->ram, vm->ram_map_size, vm->cfg.memory_file != NULL);
	gmem_track_host_writes(&vm->mem, memimg_mem_host_dirty(vm->memimg), vm->ram,
			       vm->ram_map_size);
	if (gmem_add_region(&vm->mem, 0, low, vm->ram) < 0 ||
	    (vm->cfg.memory > low &&
	     gmem_add_region(&vm->mem, LAYOUT_HIGH_RAM_BASE, vm->cfg.memory - low, vm->ram + low) < 0))
		return tv_errf(err, "guest memory: bad layout");
	return 0;
}

/* The KVM side of the memory (after KVM_SET_TSS_ADDR, before the irqchip:
 * see vm_chips_create). */
static int mem_slots_register(struct vm *vm, struct tv_err *err)
{
	uint64_t low = MIN(vm->cfg.memory, LAYOUT_LOW_RAM_END);

	if (mem_slot(vm, 0, 0, low, vm->ram, err) < 0)
		return -1;
	if (vm->cfg.memory > low &&
	    mem_slot(vm, 1, LAYOUT_HIGH_RAM_BASE, vm->cfg.memory - low, vm->ram + low, err) < 0)
		return -1;
	return 0;
}

/* Writes to a slot with the flag are write-protected by KVM at 4 KiB and
 * logged; the memory images turn it on once the VM has a base. Changing
 * only a slot's flags keeps its pages. */
int mem_dirty_log_enable(struct vm *vm, struct tv_err *err)
{
	vm->ram_dirty_log = true;
	if (mem_slots_register(vm, err) < 0) {
		vm->ram_dirty_log = false;
		mem_slots_register(vm, NULL);
		return tv_err_prefix(err, "dirty page log: ");
	}
	return 0;
}

static int dirty_log_slot(struct vm *vm, unsigned slot, uint64_t size, uint64_t ram_off,
			  uint64_t *bitmap, struct tv_err *err)
{
	uint64_t npages = size / 4096, words = (npages + 63) / 64;
	uint64_t *log = xcalloc(words, sizeof(*log));
	struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = log};

	if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &d) < 0) {
		free(log);
		return tv_errno(err, "KVM_GET_DIRTY_LOG (slot %u)", slot);
	}
	ram_off /= 4096;
	for (uint64_t w = 0; w < words; w++) {
		if (log[w] == 0)
			continue;
		if (ram_off % 64 == 0) {
			bitmap[ram_off / 64 + w] |= log[w];
			continue;
		}
		for (unsigned b = 0; b < 64; b++)
			if (log[w] >> b & 1) {
				uint64_t pg = ram_off + w * 64 + b;
				bitmap[pg / 64] |= 1ULL << (pg % 64);
			}
	}
	free(log);
	return 0;
}

int mem_dirty_log_collect(struct vm *vm, uint64_t *bitmap, struct tv_err *err)
{
	uint64_t low = MIN(vm->cfg.memory, LAYOUT_LOW_RAM_END);

	if (!vm->ram_dirty_log)
		return tv_errf(err, "dirty page log: not enabled");
	if (dirty_log_slot(vm, 0, low, 0, bitmap, err) < 0)
		return -1;
	if (vm->cfg.memory > low &&
	    dirty_log_slot(vm, 1, vm->cfg.memory - low, low, bitmap, err) < 0)
		return -1;
	return 0;
}

/* ---- configuration ---- */

static int config_check(const struct vm_config *c, int max_cpus, struct tv_err *err)
{
	char s[32];

	if (c->cpus < 1 || c->cpus > LAYOUT_MAX_CPUS)
		return tv_errf(err, "cpus %u: expected 1 to %d", c->cpus, LAYOUT_MAX_CPUS);
	if ((int)c->cpus > max_cpus)
		return tv_errf(err, "cpus %u: this host's KVM allows at most %d vCPUs", c->cpus,
			       max_cpus);
	format_size(c->memory, s, sizeof(s));
	if (c->memory < 2 * MIB || c->memory % (4 * KIB) != 0)
		return tv_errf(err, "memory %s: expected at least 2M, a multiple of 4K", s);
	if (c->memory > (1ULL << 40))
		return tv_errf(err, "memory %s: at most 1T", s);
	if (c->kernel == NULL)
		return tv_errf(err, "no kernel given");
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void config_copy(struct vm *vm, const struct vm_config *c)
{
	struct vm_disk *d = NULL;

	vm->cfg = *c;
	vm->cfg.memory_file = dup_or_null(c->memory_file);
	vm->cfg.kernel = dup_or_null(c->kernel);
	vm->cfg.initrd = dup_or_null(c->initrd);
	vm->cfg.cmdline = dup_or_null(c->cmdline);
	vm->cfg.kernel_cache = dup_or_null(c->kernel_cache);
	if (c->ndisks > 0) {
		d = xcalloc(c->ndisks, sizeof(*d));
		for (size_t i = 0; i < c->ndisks; i++) {
			d[i] = c->disks[i];
			d[i].path = xstrdup(c->disks[i].path);
			d[i].format = dup_or_null(c->disks[i].format);
		}
	}
	vm->cfg.disks = d;
}

static void config_free(struct vm_config *c)
{
	free((char *)c->memory_file);
	free((char *)c->kernel);
	free((char *)c->initrd);
	free((char *)c->cmdline);
	free((char *)c->kernel_cache);
	for (size_t i = 0; i < c->ndisks; i++) {
		free((char *)c->disks[i].path);
		free((char *)c->disks[i].format);
	}
	free((void *)c->disks);
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* The signal that knocks a vCPU thread out of KVM_RUN. */
static void kick_signal_init(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN, &sa, NULL);
}

/* Verbose start-up timing: where the milliseconds go. */
static void phase(const struct vm *vm, const char *what, uint64_t *t)
{
	uint64_t now = monotonic_ns();

	if (vm->cfg.verbose)
		fprintf(stderr, "termvisor: %-8s %7.3f ms\n", what, (now - *t) / 1e6);
	*t = now;
}

/* One thread does it all, in this order: on a nested KVM the VM-wide ioctls
 * wait for grace periods in the host kernel, which took 4x longer (median)
 * while another thread of this process was running on the other CPU. */
static int vm_build(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	uint64_t t = monotonic_ns();

	if (kvm_open(vm, err) < 0)
		return -1;
	if (config_check(cfg, vm->max_cpus, err) < 0)
		return -1;
	if (mem_setup(vm, err) < 0 || vm_fd_create(vm, err) < 0 ||
	    vm_chips_create(vm, err) < 0 || routes_init(vm, err) < 0)
		return -1;
	phase(vm, "vm", &t);
	if (cpuid_load(vm, err) < 0)
		return -1;
	phase(vm, "cpuid", &t);
	if (boot_load(vm, err) < 0)
		return -1;
	phase(vm, "boot", &t);
	vm->vcpus = xcalloc(cfg->cpus, sizeof(*vm->vcpus));
	for (unsigned i = 0; i < cfg->cpus; i++) {
		if (vcpu_create(vm, i, err) < 0)
			return -1;
		vm->ncpus++;
	}
	if (vcpu_set_boot_regs(&vm->vcpus[0], &vm->boot, err) < 0)
		return -1;
	phase(vm, "vcpus", &t);
	for (size_t i = 0; dev_machine[i] != NULL; i++)
		if (dev_machine[i](vm, &vm->cfg, err) < 0)
			return -1;
	phase(vm, "devices", &t);
	return 0;
}

int vm_new(struct vm **vmp, const struct vm_config *cfg, struct tv_err *err)
{
	struct vm *vm = xcalloc(1, sizeof(*vm));

	vm->kvm_fd = vm->fd = vm->hold_efd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	bus_init(&vm->pio);
	bus_init(&vm->mmio);
	config_copy(vm, cfg);
	kick_signal_init();
	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->hold_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0 || vm->hold_efd < 0) {
		tv_errno(err, "eventfd");
		vm_free(vm);
		return -1;
	}
	if (vm_build(vm, cfg, err) < 0) {
		vm_free(vm);
		return -1;
	}
	*vmp = vm;
	return 0;
}

/* ---- run state ---- */

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

int vm_start(struct vm *vm, struct tv_err *err)
{
	pthread_attr_t attr;

	/* The vCPU threads' stacks stay small: the run loop and device
	 * callbacks are shallow, and this keeps the engine's footprint low. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * KIB);
	pthread_mutex_lock(&vm->lock);
	vm->started = true;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int rc = pthread_create(&vm->vcpus[i].thread, &attr, vcpu_thread, &vm->vcpus[i]);
		if (rc != 0) {
			pthread_mutex_unlock(&vm->lock);
			pthread_attr_destroy(&attr);
			errno = rc;
			tv_errno(err, "vCPU %u thread", i);
			vm_request_exit(vm, VM_EXIT_HOST_ERROR, 0, err->msg);
			return -1;
		}
		vm->vcpus[i].thread_started = true;
		vm->running++;
	}
	pthread_mutex_unlock(&vm->lock);
	pthread_attr_destroy(&attr);
	return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason r, int code, const char *msg)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->lock);
	if (vm->reason != VM_EXIT_NONE) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->reason = r;
	vm->code = code;
	vm->msg = xstrdup(msg ? msg : "");
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	(void)!write(vm->exit_efd, &one, sizeof(one));
}

void vm_request_stop(struct vm *vm)
{
	vm_request_exit(vm, VM_EXIT_STOPPED, 0, NULL);
}

bool vm_pause_pending(struct vm *vm)
{
	bool p;

	pthread_mutex_lock(&vm->lock);
	p = vm->pause_req && vm->reason == VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->lock);
	return p;
}

bool vm_vcpu_should_park(struct vm *vm)
{
	bool ended;

	pthread_mutex_lock(&vm->lock);
	while (vm->pause_req && vm->reason == VM_EXIT_NONE) {
		vm->parked++;
		pthread_cond_broadcast(&vm->cond);
		pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked--;
	}
	ended = vm->reason != VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->lock);
	return ended;
}

void vm_vcpu_finished(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->running--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause(struct vm *vm, struct tv_err *err)
{
	pthread_mutex_lock(&vm->lock);
	/* Paused by a device (vm_hold), the vCPUs may still be on their way. */
	if (vm->paused && vm->parked >= vm->running) {
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	vm->pause_req = true;
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	while (vm->parked < vm->running && vm->reason == VM_EXIT_NONE)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->lock);
	(void)err;
	return 0;
}

int vm_resume(struct vm *vm, struct tv_err *err)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = false;
	vm->paused = false;
	vm->resumes++;
	free(vm->hold_why);
	vm->hold_why = NULL;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	(void)err;
	return 0;
}

bool vm_hold(struct vm *vm, const char *why)
{
	uint64_t one = 1;
	bool first = false, ended;
	unsigned gen;

	/* The pause and the reason at once: a resume from now on is the one
	 * the request waits for. The vCPUs park on their own; waiting for
	 * them here could wait for one that waits for this queue (a device
	 * reset takes every queue's lock). */
	pthread_mutex_lock(&vm->lock);
	gen = vm->resumes;
	vm->pause_req = true;
	vm->paused = true;
	if (vm->hold_why == NULL) {
		vm->hold_why = xstrdup(why);
		first = true;
	}
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	if (first)
		(void)!write(vm->hold_efd, &one, sizeof(one));
	pthread_mutex_lock(&vm->lock);
	while (vm->resumes == gen && vm->reason == VM_EXIT_NONE)
		pthread_cond_wait(&vm->cond, &vm->lock);
	ended = vm->reason != VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->lock);
	return !ended;
}

int vm_hold_fd(const struct vm *vm)
{
	return vm->hold_efd;
}

bool vm_hold_reason(const struct vm *vm, char *buf, size_t len)
{
	struct vm *v = (struct vm *)vm;
	bool held;

	pthread_mutex_lock(&v->lock);
	held = v->hold_why != NULL;
	snprintf(buf, len, "%s", held ? v->hold_why : "");
	pthread_mutex_unlock(&v->lock);
	return held;
}

bool vm_paused(const struct vm *vm)
{
	struct vm *v = (struct vm *)vm;
	bool p;

	pthread_mutex_lock(&v->lock);
	p = v->paused;
	pthread_mutex_unlock(&v->lock);
	return p;
}

enum vm_exit_reason vm_wait(struct vm *vm)
{
	enum vm_exit_reason r;

	pthread_mutex_lock(&vm->lock);
	while (vm->reason == VM_EXIT_NONE)
		pthread_cond_wait(&vm->cond, &vm->lock);
	r = vm->reason;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int vm_exit_fd(const struct vm *vm)
{
	return vm->exit_efd;
}

enum vm_exit_reason vm_exit_reason(const struct vm *vm)
{
	struct vm *v = (struct vm *)vm;
	enum vm_exit_reason r;

	pthread_mutex_lock(&v->lock);
	r = v->reason;
	pthread_mutex_unlock(&v->lock);
	return r;
}

int vm_exit_code(const struct vm *vm)
{
	return vm->code;
}

const char *vm_exit_message(const struct vm *vm)
{
	return vm->msg ? vm->msg : "";
}

struct guest_mem *vm_mem(struct vm *vm)
{
	return &vm->mem;
}

unsigned vm_ncpus(const struct vm *vm)
{
	return vm->ncpus;
}

const struct vm_config *vm_config(const struct vm *vm)
{
	return &vm->cfg;
}

int vm_vcpu_fd(const struct vm *vm, unsigned i)
{
	return i < vm->ncpus ? vm->vcpus[i].fd : -1;
}

/* ---- console ---- */

const char *console_port_name(unsigned port)
{
	return port == CONSOLE_HVC ? "hvc0" : port == CONSOLE_SERIAL ? "ttyS0" : "?";
}

size_t console_input(struct vm *vm, unsigned port, const void *bytes, size_t len)
{
	if (port >= CONSOLE_NPORTS || vm->cin[port] == NULL)
		return len; /* no such device: typing goes nowhere, as on a real machine */
	return vm->cin[port](vm->cin_dev[port], bytes, len);
}

void console_attach_input(struct vm *vm, unsigned port, console_input_fn fn, void *dev)
{
	if (port >= CONSOLE_NPORTS)
		return;
	vm->cin[port] = fn;
	vm->cin_dev[port] = dev;
}

void console_set_size(struct vm *vm, unsigned port, unsigned rows, unsigned cols)
{
	if (port < CONSOLE_NPORTS && vm->csize[port] != NULL)
		vm->csize[port](vm->csize_dev[port], rows, cols);
}

void console_attach_size(struct vm *vm, unsigned port, console_size_fn fn, void *dev)
{
	if (port >= CONSOLE_NPORTS)
		return;
	vm->csize[port] = fn;
	vm->csize_dev[port] = dev;
}

void console_output(struct vm *vm, unsigned port, const void *bytes, size_t len)
{
	if (vm->cfg.console.output != NULL)
		vm->cfg.console.output(vm->cfg.console.ctx, port, bytes, len);
}

/* ---- teardown ---- */

void vm_free(struct vm *vm)
{
	if (vm == NULL)
		return;
	if (vm->started)
		vm_request_exit(vm, VM_EXIT_STOPPED, 0, NULL);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	dev_destroy_all(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_close(&vm->vcpus[i]);
	free(vm->vcpus);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->ram != NULL)
		munmap(vm->ram, vm->ram_map_size);
	memimg_mem_free(vm->memimg);
	if (vm->exit_efd >= 0)
		close(vm->exit_efd);
	if (vm->hold_efd >= 0)
		close(vm->hold_efd);
	free(vm->hold_why);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	free(vm->routes);
	free(vm->cpuid);
	free(vm->msg);
	config_free(&vm->cfg);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
