/* vCPUs: creation (CPUID, MSRs, LAPIC, FPU), boot registers, and the run loop
 * each vCPU thread spends its life in. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm-int.h"

/* ---- CPUID ---- */

static unsigned order_of(unsigned n)
{
	unsigned s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

static void cpuid_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
		      uint32_t ecx, uint32_t edx)
{
	struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

/* What KVM supports, with this vCPU's APIC id and a topology of one socket
 * holding ncpus single-threaded cores. */
static struct kvm_cpuid2 *cpuid_for(struct vm *vm, unsigned id)
{
	const struct kvm_cpuid2 *sup = vm->cpuid;
	unsigned n = vm->cfg.cpus, shift = order_of(n);
	struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + (sup->nent + 4) * sizeof(c->entries[0]));
	uint32_t max_basic = 0;

	for (unsigned i = 0; i < sup->nent; i++) {
		struct kvm_cpuid_entry2 e = sup->entries[i];
		switch (e.function) {
		case 0:
			max_basic = e.eax;
			break;
		case 1:
			e.ebx = (e.ebx & 0x0000ffff) | (id << 24) | (MIN(1u << shift, 255u) << 16);
			e.ecx |= 1u << 31; /* running under a hypervisor */
			if (vm->tsc_deadline)
				e.ecx |= 1u << 24; /* TSC-deadline timer in the LAPIC */
			if (n > 1)
				e.edx |= 1u << 28; /* HTT: the count above is meaningful */
			break;
		case 4: {
			unsigned level = (e.eax >> 5) & 7;
			unsigned share = level >= 3 ? (1u << shift) - 1 : 0;
			e.eax = (e.eax & 0x3fff) | (share << 14) | (((1u << shift) - 1) << 26);
			break;
		}
		case 0xb:
		case 0x1f:
			continue; /* rebuilt below */
		case 0x80000008:
			e.ecx = (e.ecx & ~0xf0ffu) | (shift << 12) | (n - 1);
			break;
		}
		c->entries[c->nent++] = e;
	}
	if (max_basic >= 0xb) {
		cpuid_add(c, 0xb, 0, 0, 1, 0x100, id);
		cpuid_add(c, 0xb, 1, shift, n, 0x201, id);
		cpuid_add(c, 0xb, 2, 0, 0, 2, id);
	}
	return c;
}

/* ---- per-vCPU setup ---- */

static int msrs_init(struct vcpu *c, struct tv_err *err)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot[] = {
		{0x174, 0},		/* SYSENTER_CS */
		{0x175, 0},		/* SYSENTER_ESP */
		{0x176, 0},		/* SYSENTER_EIP */
		{0xc0000081, 0},	/* STAR */
		{0xc0000082, 0},	/* LSTAR */
		{0xc0000083, 0},	/* CSTAR */
		{0xc0000084, 0},	/* SYSCALL_MASK */
		{0xc0000102, 0},	/* KERNEL_GS_BASE */
		{0x1a0, 1},		/* MISC_ENABLE: fast strings */
		{0x2ff, (1 << 11) | 6}, /* MTRRdefType: MTRRs on, write-back */
	};
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[ARRAY_SIZE(boot)];
	} m;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = ARRAY_SIZE(boot);
	for (size_t i = 0; i < ARRAY_SIZE(boot); i++) {
		m.e[i].index = boot[i].index;
		m.e[i].data = boot[i].value;
	}
	/* KVM stops at the first MSR it refuses; the rest are optional. */
	if (ioctl(c->fd, KVM_SET_MSRS, &m) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_MSRS", c->id);
	return 0;
}

static void lvt_set(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

/* LINT0 takes the PIC's interrupts (ExtINT), LINT1 the NMI, as firmware
 * leaves them on a PC. */
static int lapic_init(struct vcpu *c, struct tv_err *err)
{
	struct kvm_lapic_state l;

	if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
		return tv_errno(err, "vCPU %u: KVM_GET_LAPIC", c->id);
	lvt_set(&l, 0x350, 7);
	lvt_set(&l, 0x360, 4);
	if (ioctl(c->fd, KVM_SET_LAPIC, &l) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_LAPIC", c->id);
	return 0;
}

static int fpu_init(struct vcpu *c, struct tv_err *err)
{
	struct kvm_fpu f = {.fcw = 0x37f, .mxcsr = 0x1f80};

	if (ioctl(c->fd, KVM_SET_FPU, &f) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_FPU", c->id);
	return 0;
}

int vcpu_create(struct vm *vm, unsigned id, struct tv_err *err)
{
	struct vcpu *c = &vm->vcpus[id];
	struct kvm_cpuid2 *cpuid;
	int rc;

	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (c->fd < 0)
		return tv_errno(err, "vCPU %u: KVM_CREATE_VCPU", id);
	fcntl(c->fd, F_SETFD, FD_CLOEXEC);
	c->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		rc = tv_errno(err, "vCPU %u: mapping kvm_run", id);
		goto fail;
	}
	cpuid = cpuid_for(vm, id);
	rc = ioctl(c->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	if (rc < 0) {
		rc = tv_errno(err, "vCPU %u: KVM_SET_CPUID2", id);
		goto fail;
	}
	if ((rc = msrs_init(c, err)) < 0 || (rc = lapic_init(c, err)) < 0 ||
	    (rc = fpu_init(c, err)) < 0)
		goto fail;
	return 0;
fail:
	vcpu_close(c);
	return rc;
}

void vcpu_close(struct vcpu *c)
{
	if (c->run != NULL)
		munmap(c->run, c->vm->run_size);
	c->run = NULL;
	if (c->fd > 0)
		close(c->fd);
	c->fd = -1;
}

/* ---- boot registers ---- */

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->db = code64 ? 0 : 1;
	s->l = code64 ? 1 : 0;
}

static void seg_real(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = (uint64_t)sel << 4;
	s->limit = 0xffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
}

int vcpu_set_boot_regs(struct vcpu *c, const struct boot_regs *br, struct tv_err *err)
{
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return tv_errno(err, "vCPU %u: KVM_GET_SREGS", c->id);
	if (br->real_mode) {
		seg_real(&sr.cs, 0, 0xb);
		seg_real(&sr.ds, 0, 0x3);
		sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
		sr.cr0 &= ~1ULL;
	} else {
		/* Selectors match the GDT boot.c writes: 0x10 code, 0x18 data. */
		seg_flat(&sr.cs, 0x10, 0xb, br->long_mode);
		seg_flat(&sr.ds, 0x18, 0x3, false);
		sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
		sr.cr0 = 0x11; /* PE, ET */
		sr.cr4 = 0;
		sr.efer = 0;
		sr.gdt.base = LAYOUT_GDT_ADDR;
		sr.gdt.limit = 4 * 8 - 1;
		if (br->long_mode) {
			sr.cr3 = LAYOUT_PGTABLE_ADDR;
			sr.cr4 = 0x20;		     /* PAE */
			sr.cr0 |= 0x80000000u | 0x2; /* PG, MP */
			sr.efer = 0x500;	     /* LME, LMA */
		}
	}
	if (ioctl(c->fd, KVM_SET_SREGS, &sr) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_SREGS", c->id);
	memset(&r, 0, sizeof(r));
	r.rflags = 2;
	r.rip = br->rip;
	r.rsp = br->rsp;
	r.rsi = br->rsi;
	r.rbx = br->rbx;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_REGS", c->id);
	return 0;
}

/* ---- diagnostics ---- */

static size_t insn_bytes(struct vcpu *c, uint64_t rip, uint8_t *buf, size_t len)
{
	struct kvm_translation t = {.linear_address = rip};
	size_t n;

	if (ioctl(c->fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
		return 0;
	/* Stop at the page end rather than guess the next page's mapping. */
	n = MIN(len, 4096 - (t.physical_address & 4095));
	if (gmem_read(&c->vm->mem, t.physical_address, buf, n) < 0)
		return 0;
	return n;
}

static char *hex_bytes(const uint8_t *b, size_t n)
{
	char *s = xmalloc(n * 3 + 1);

	s[0] = 0;
	for (size_t i = 0; i < n; i++)
		sprintf(s + (i ? i * 3 - 1 : 0), "%s%02x", i ? " " : "", b[i]);
	return s;
}

char *vcpu_dump(struct vcpu *c)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint8_t code[16];
	size_t n;
	char *hex, *out;

	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return xasprintf("vCPU %u: registers unavailable", c->id);
	n = insn_bytes(c, s.cs.base + r.rip, code, sizeof(code));
	hex = hex_bytes(code, n);
	out = xasprintf(
		"vCPU %u registers:\n"
		"  rip %016llx rflags %08llx  cs %04x ss %04x ds %04x\n"
		"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"  rsi %016llx rdi %016llx rbp %016llx rsp %016llx\n"
		"  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		"  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
		"  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx\n"
		"  gdt %016llx/%x idt %016llx/%x\n"
		"  code at rip: %s",
		c->id, r.rip, r.rflags, s.cs.selector, s.ss.selector, s.ds.selector, r.rax, r.rbx,
		r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
		r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit,
		s.idt.base, s.idt.limit, n ? hex : "(not in guest memory)");
	free(hex);
	return out;
}

/* The vCPU sits at the reset vector in real mode, as after INIT: no guest
 * that triple-faulted can be there by itself. */
static bool vcpu_was_reset(struct vcpu *c)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return false;
	return r.rip == 0xfff0 && s.cs.selector == 0xf000 && !(s.cr0 & 1) && r.rsp == 0 &&
	       r.rax == 0;
}

static void vcpu_fail(struct vcpu *c, enum vm_exit_reason why, const char *what)
{
	char *dump = vcpu_dump(c);
	char *msg = xasprintf("%s\n%s", what, dump);

	vm_request_exit(c->vm, why, 0, msg);
	free(msg);
	free(dump);
}

static void internal_error(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	char *what;

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
		what = xasprintf("vCPU %u: KVM could not emulate an instruction", c->id);
	else
		what = xasprintf("vCPU %u: KVM internal error %u", c->id, run->internal.suberror);
	vcpu_fail(c, VM_EXIT_CRASH, what);
	free(what);
}

static void system_event(struct vcpu *c)
{
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(c->vm, VM_EXIT_POWEROFF, 0, NULL);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(c->vm, VM_EXIT_REBOOT, 0, NULL);
		break;
	default:
		vcpu_fail(c, VM_EXIT_CRASH, "guest crash reported");
		break;
	}
}

/* ---- run loop ---- */

static void exit_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;

	/* KVM places count * size bytes inside the shared page; rep ins/outs
	 * come as one exit. */
	if (run->io.data_offset + (uint64_t)size * run->io.count > c->vm->run_size)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, p += size) {
		if (!out)
			memset(p, 0xff, size);
		bus_access(&c->vm->pio, run->io.port, p, size, out);
	}
}

static void exit_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	unsigned len = run->mmio.len;

	if (len == 0 || len > 8)
		return;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
	bus_access(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/* Handles one exit; false when the vCPU must stop. */
static bool vcpu_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	char *what;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		exit_io(c);
		return true;
	case KVM_EXIT_MMIO:
		exit_mmio(c);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_HLT:
		/* Only without the in-kernel LAPIC; with it KVM waits itself. */
		return true;
	case KVM_EXIT_SHUTDOWN:
		what = xasprintf("vCPU %u: triple fault (the guest reset itself through a fault)",
				 c->id);
		if (vcpu_was_reset(c)) {
			/* KVM on AMD (SVM) reinitializes the vCPU on a shutdown
			 * intercept: what it reports is the reset state, not the
			 * fault, so a dump would only mislead. */
			char *msg = xasprintf("%s\nvCPU %u registers: lost (the host's KVM reset the "
					      "vCPU at the fault, as it does on AMD processors; its "
					      "kvm:kvm_exit tracepoint, reason shutdown, still shows "
					      "the rip and the event being delivered)",
					      what, c->id);
			vm_request_exit(c->vm, VM_EXIT_TRIPLE_FAULT, 0, msg);
			free(msg);
		} else {
			vcpu_fail(c, VM_EXIT_TRIPLE_FAULT, what);
		}
		free(what);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		system_event(c);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		internal_error(c);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		what = xasprintf("vCPU %u: entry failed, hardware reason 0x%llx", c->id,
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(c, VM_EXIT_CRASH, what);
		free(what);
		return false;
	default:
		what = xasprintf("vCPU %u: unexpected KVM exit %u", c->id, run->exit_reason);
		vcpu_fail(c, VM_EXIT_CRASH, what);
		free(what);
		return false;
	}
}

void vcpu_kick(struct vcpu *c)
{
	if (c->run != NULL)
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (c->thread_started)
		pthread_kill(c->thread, SIGRTMIN);
}

void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (c->vm->cfg.vcpu_nice > 0) {
		/* This thread's own nice value (Linux keeps one per thread). */
		errno = 0;
		int nice = getpriority(PRIO_PROCESS, (id_t)gettid());
		if (errno == 0)
			(void)setpriority(PRIO_PROCESS, (id_t)gettid(),
					  MIN(nice + c->vm->cfg.vcpu_nice, 19));
	}
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;) {
		/* Before parking for a pause, let KVM finish the last I/O exit
		 * (a read's data goes into the registers) without running the
		 * guest, so a paused vCPU's state is whole for a snapshot. */
		if (vm_pause_pending(c->vm)) {
			__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
			(void)ioctl(c->fd, KVM_RUN, 0);
			__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		}
		if (vm_vcpu_should_park(c->vm))
			break;
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			char *what = xasprintf("vCPU %u: KVM_RUN: %s", c->id, strerror(errno));
			vm_request_exit(c->vm, VM_EXIT_HOST_ERROR, 0, what);
			free(what);
			break;
		}
		if (!vcpu_exit(c))
			break;
	}
	if (c->vm->cfg.verbose && vm_exit_reason(c->vm) == VM_EXIT_STOPPED) {
		/* Where a stopped guest was: the first question when one hangs. */
		char *dump = vcpu_dump(c);
		fprintf(stderr, "termvisor: stopped; %s\n", dump);
		free(dump);
	}
	vm_vcpu_finished(c->vm);
	return NULL;
}
