/* Machine snapshots (vm/snapshot.h): the KVM side of the state file (what
 * each vCPU, the irqchip, the PIT, kvmclock and every device hold), the
 * memory image through vm/memimg.h, and the disks' internal snapshots.
 *
 * Take: pause, quiesce the virtio queues, read everything, write the state
 * file, the memory image, then the disk snapshots; undo what was created if
 * any step fails. Restore: parse and check the whole snapshot against the
 * VM first (a bad one leaves the VM untouched), then pause, quiesce, and set
 * memory, vCPUs (REFERENCE.md section 4 order), irqchip, PIT, clock, disks
 * and devices. A VM built by vm_new and never started takes a restore too:
 * its vCPUs then start from the restored registers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vm/block/block.h"
#include "vm/dev/virtio-pci.h"
#include "vm/snapshot.h"
#include "vm/snapstate.h"
#include "vm/vm-int.h"

#define MSR_IA32_TSC	      0x10
#define MSR_IA32_APICBASE     0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0

#ifndef KVM_CAP_XSAVE2
#define KVM_CAP_XSAVE2 208
#endif

/* What this VM's vCPUs can save: the size of an XSAVE area and the MSRs
 * KVM lists that vCPU 0 can read, in restore order. */
struct vcpu_caps {
	uint32_t xsave_len;
	bool xsave2;
	bool xcrs; /* the host has XSAVE: KVM_SET_XCRS takes XCR0 */
	uint32_t *msrs;
	uint32_t nmsrs;
};

static void caps_free(struct vcpu_caps *k)
{
	free(k->msrs);
	memset(k, 0, sizeof(*k));
}

static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	struct kvm_msrs *m = xcalloc(1, sizeof(*m) + (size_t)(n ? n : 1) * sizeof(m->entries[0]));

	m->nmsrs = n;
	return m;
}

/* KVM_GET_MSR_INDEX_LIST holds MSRs this vCPU may lack (another vendor's,
 * features not in CPUID): KVM_GET_MSRS stops at the first one it refuses,
 * so each refusal is dropped and the read goes on from the next. The APIC
 * base travels in SREGS. TSC goes first and the TSC deadline last, so a
 * restore writes them in that order (the deadline is relative to the TSC). */
static int caps_load(struct vm *vm, struct vcpu_caps *k, struct tv_err *err)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;
	struct kvm_msrs *m;
	uint32_t n, keep = 0;
	int r;

	memset(k, 0, sizeof(*k));
	r = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	k->xsave2 = r > SNAP_XSAVE_MIN;
	k->xsave_len = k->xsave2 ? (uint32_t)r : SNAP_XSAVE_MIN;
	if (k->xsave_len > SNAP_XSAVE_MAX || k->xsave_len % 64 != 0)
		return tv_errf(err, "KVM_CAP_XSAVE2: XSAVE area of %u bytes not supported",
			       k->xsave_len);
	{
		/* Without XSAVE on the host KVM reports no XCRs and refuses to set any. */
		struct kvm_xcrs x;
		memset(&x, 0, sizeof(x));
		k->xcrs = ioctl(vm->vcpus[0].fd, KVM_GET_XCRS, &x) == 0 && x.nr_xcrs > 0;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return tv_errno(err, "KVM_GET_MSR_INDEX_LIST");
	n = probe.nmsrs;
	if (n > SNAP_MAX_MSRS)
		return tv_errf(err, "KVM_GET_MSR_INDEX_LIST: %u MSRs, more than %u", n, SNAP_MAX_MSRS);
	list = xcalloc(1, sizeof(*list) + (size_t)(n ? n : 1) * sizeof(list->indices[0]));
	list->nmsrs = n;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return tv_errno(err, "KVM_GET_MSR_INDEX_LIST");
	}
	n = MIN(n, list->nmsrs);
	m = msrs_alloc(n);
	for (uint32_t i = 0; i < n; i++)
		m->entries[i].index = list->indices[i];
	free(list);
	for (uint32_t i = 0; i < n;) {
		struct kvm_msrs *part = msrs_alloc(n - i);
		memcpy(part->entries, m->entries + i, (n - i) * sizeof(m->entries[0]));
		r = ioctl(vm->vcpus[0].fd, KVM_GET_MSRS, part);
		free(part);
		if (r < 0) {
			free(m);
			return tv_errno(err, "vCPU 0: KVM_GET_MSRS");
		}
		for (int j = 0; j < r; j++) {
			uint32_t idx = m->entries[i + j].index;
			if (idx != MSR_IA32_APICBASE)
				m->entries[keep++].index = idx;
		}
		i += (uint32_t)r + 1; /* past the refused one */
	}
	k->msrs = xcalloc(keep ? keep : 1, sizeof(*k->msrs));
	for (uint32_t i = 0; i < keep; i++)
		if (m->entries[i].index == MSR_IA32_TSC)
			k->msrs[k->nmsrs++] = MSR_IA32_TSC;
	for (uint32_t i = 0; i < keep; i++)
		if (m->entries[i].index != MSR_IA32_TSC && m->entries[i].index != MSR_IA32_TSC_DEADLINE)
			k->msrs[k->nmsrs++] = m->entries[i].index;
	for (uint32_t i = 0; i < keep; i++)
		if (m->entries[i].index == MSR_IA32_TSC_DEADLINE)
			k->msrs[k->nmsrs++] = MSR_IA32_TSC_DEADLINE;
	free(m);
	return 0;
}

static bool caps_has_msr(const struct vcpu_caps *k, uint32_t idx)
{
	for (uint32_t i = 0; i < k->nmsrs; i++)
		if (k->msrs[i] == idx)
			return true;
	return false;
}

/* ---- save ---- */

static int get_part(struct snap_writer *w, struct vcpu *c, unsigned long req, const char *what,
		    uint32_t type, void *buf, uint32_t len, struct tv_err *err)
{
	if (ioctl(c->fd, req, buf) < 0)
		return tv_errno(err, "vCPU %u: %s", c->id, what);
	snapw_part(w, type, c->id, buf, len);
	return 0;
}

static int save_vcpu(struct vm *vm, struct vcpu *c, const struct vcpu_caps *k,
		     struct snap_writer *w, struct tv_err *err)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_msrs *m;
	uint8_t *xs, khz[8] = {0};
	int r;

	(void)vm;
	if (get_part(w, c, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", SNAP_P_MP_STATE, &mp, sizeof(mp), err) < 0 ||
	    get_part(w, c, KVM_GET_REGS, "KVM_GET_REGS", SNAP_P_REGS, &regs, sizeof(regs), err) < 0 ||
	    get_part(w, c, KVM_GET_SREGS, "KVM_GET_SREGS", SNAP_P_SREGS, &sregs, sizeof(sregs), err) < 0)
		return -1;
	xs = xcalloc(1, k->xsave_len);
	r = ioctl(c->fd, k->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xs);
	if (r < 0) {
		free(xs);
		return tv_errno(err, "vCPU %u: %s", c->id, k->xsave2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE");
	}
	snapw_part(w, SNAP_P_XSAVE, c->id, xs, k->xsave_len);
	free(xs);
	memset(&xcrs, 0, sizeof(xcrs));
	memset(&dbg, 0, sizeof(dbg));
	if (get_part(w, c, KVM_GET_XCRS, "KVM_GET_XCRS", SNAP_P_XCRS, &xcrs, sizeof(xcrs), err) < 0 ||
	    get_part(w, c, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", SNAP_P_DEBUGREGS, &dbg, sizeof(dbg), err) < 0 ||
	    get_part(w, c, KVM_GET_LAPIC, "KVM_GET_LAPIC", SNAP_P_LAPIC, &lapic, sizeof(lapic), err) < 0)
		return -1;
	r = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (r > 0)
		memcpy(khz, &(uint32_t){(uint32_t)r}, 4);
	snapw_part(w, SNAP_P_TSC_KHZ, c->id, khz, sizeof(khz));
	m = msrs_alloc(k->nmsrs);
	for (uint32_t i = 0; i < k->nmsrs; i++)
		m->entries[i].index = k->msrs[i];
	r = ioctl(c->fd, KVM_GET_MSRS, m);
	if (r != (int)k->nmsrs) {
		if (r < 0)
			tv_errno(err, "vCPU %u: KVM_GET_MSRS", c->id);
		else
			tv_errf(err, "vCPU %u: KVM_GET_MSRS read %d of %u MSRs (stopped at 0x%x)", c->id,
				r, k->nmsrs, k->msrs[r]);
		free(m);
		return -1;
	}
	/* struct kvm_msrs is the part's layout: count, pad, {index, reserved, data}. */
	snapw_part(w, SNAP_P_MSRS, c->id, m, (uint32_t)(8 + 16 * (size_t)k->nmsrs));
	free(m);
	memset(&ev, 0, sizeof(ev));
	return get_part(w, c, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", SNAP_P_EVENTS, &ev,
			sizeof(ev), err);
}

/* The CPUID entries vCPU 0 has (set once, before it first ran). */
static struct kvm_cpuid2 *vcpu0_cpuid(struct vm *vm, struct tv_err *err)
{
	struct kvm_cpuid2 *c = xmalloc(sizeof(*c) + SNAP_MAX_CPUID * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 unused;

	/* A successful KVM_GET_CPUID2 leaves nent as the caller gave it on
	 * some kernels (6.1), and says the count on none when it fails: the
	 * entries it did not write keep a pattern no entry has (leaf
	 * 0xffffffff, every bit set). */
	memset(&unused, 0xff, sizeof(unused));
	memset(c->entries, 0xff, SNAP_MAX_CPUID * sizeof(c->entries[0]));
	c->nent = SNAP_MAX_CPUID;
	if (ioctl(vm_vcpu_fd(vm, 0), KVM_GET_CPUID2, c) < 0) {
		tv_errno(err, "vCPU 0: KVM_GET_CPUID2");
		free(c);
		return NULL;
	}
	uint32_t n = 0;
	while (n < c->nent && n < SNAP_MAX_CPUID && memcmp(&c->entries[n], &unused, sizeof(unused)) != 0)
		n++;
	c->nent = n;
	return c;
}

/* Every CPUID entry the snapshot's guest saw must read the same here. */
static int check_cpuid(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	static const char *const reg[] = {"EAX", "EBX", "ECX", "EDX"};
	size_t n = f->cpuid.len / sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cur;
	int rc = 0;

	if (n == 0)
		return 0; /* a version 1 file: taken before CPUID was kept */
	cur = vcpu0_cpuid(vm, err);
	if (cur == NULL)
		return -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct kvm_cpuid_entry2 e;
		const struct kvm_cpuid_entry2 *h = NULL;
		memcpy(&e, f->cpuid.data + i * sizeof(e), sizeof(e));
		for (uint32_t k = 0; k < cur->nent && h == NULL; k++)
			if (cur->entries[k].function == e.function && cur->entries[k].index == e.index)
				h = &cur->entries[k];
		if (h == NULL) {
			rc = tv_errf(err,
				     "%s: CPUID leaf 0x%" PRIx32 ".%" PRIu32
				     ": this host's CPU has no such leaf; restore the snapshot on "
				     "a host with the CPU and kernel it was taken on",
				     f->path, e.function, e.index);
			break;
		}
		const uint32_t was[] = {e.eax, e.ebx, e.ecx, e.edx},
			       now[] = {h->eax, h->ebx, h->ecx, h->edx};
		for (int r = 0; r < 4; r++)
			if (was[r] != now[r]) {
				rc = tv_errf(err,
					     "%s: CPUID leaf 0x%" PRIx32 ".%" PRIu32
					     " %s 0x%08" PRIx32 ", this host gives 0x%08" PRIx32
					     ": the snapshot was taken on another CPU or kernel; "
					     "restore it on a host with the same ones",
					     f->path, e.function, e.index, reg[r], was[r], now[r]);
				break;
			}
	}
	free(cur);
	return rc;
}

static int save_vm(struct vm *vm, struct snap_writer *w, uint64_t *clock_ns, struct tv_err *err)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;

	if (ioctl(vm->fd, KVM_GET_PIT2, &pit) < 0)
		return tv_errno(err, "KVM_GET_PIT2");
	snapw_part(w, SNAP_P_PIT2, 0, &pit, sizeof(pit));
	memset(&clk, 0, sizeof(clk));
	if (ioctl(vm->fd, KVM_GET_CLOCK, &clk) < 0)
		return tv_errno(err, "KVM_GET_CLOCK");
	*clock_ns = clk.clock;
	snapw_part(w, SNAP_P_CLOCK, 0, &clk, sizeof(clk));
	for (uint32_t chip = 0; chip < 3; chip++) {
		struct kvm_irqchip ic;
		memset(&ic, 0, sizeof(ic));
		ic.chip_id = chip;
		if (ioctl(vm->fd, KVM_GET_IRQCHIP, &ic) < 0)
			return tv_errno(err, "KVM_GET_IRQCHIP %u", chip);
		snapw_part(w, SNAP_P_IRQCHIP, chip, &ic, sizeof(ic));
	}
	/* What the guest was told of its CPU, so that a restore on another CPU
	 * or kernel is refused rather than leaving the guest using features
	 * it no longer has. */
	struct kvm_cpuid2 *cpuid = vcpu0_cpuid(vm, err);
	if (cpuid == NULL)
		return -1;
	snapw_part(w, SNAP_P_CPUID, 0, cpuid->entries,
		   (uint32_t)(cpuid->nent * sizeof(cpuid->entries[0])));
	free(cpuid);
	return 0;
}

static unsigned dev_count(struct vm *vm)
{
	unsigned n = 0;

	for (struct dev *d = dev_first(vm); d != NULL; d = d->next)
		n++;
	return n;
}

static int save_devices(struct vm *vm, struct snap_writer *w, struct tv_err *err)
{
	unsigned i = 0;

	for (struct dev *d = dev_first(vm); d != NULL; d = d->next, i++) {
		size_t size = d->ops->save != NULL ? d->ops->state_size : 0;
		void *st;

		if (strlen(d->name) > SNAP_DEV_NAME_MAX || size > SNAP_DEV_STATE_MAX)
			return tv_errf(err, "%s: device name or state too large for a snapshot", d->name);
		st = xcalloc(1, size ? size : 1);
		if (size > 0)
			d->ops->save(d, st);
		snapw_device(w, i, d->name, st, (uint32_t)size);
		free(st);
	}
	return 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* With the vCPUs paused and the devices quiesced. */
static int state_save(struct vm *vm, const char *dir, unsigned ndisks, uint64_t *bytes,
		      struct tv_err *err)
{
	struct vm_snapshot_info info = {
		.cpus = vm->ncpus, .memory = vm->cfg.memory, .ndevices = dev_count(vm),
		.ndisks = ndisks, .taken_ns = realtime_ns()};
	struct vcpu_caps k;
	struct snap_writer w;
	char *path;
	int rc = -1;

	if (caps_load(vm, &k, err) < 0)
		return -1;
	snapw_init(&w);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (save_vcpu(vm, &vm->vcpus[i], &k, &w, err) < 0)
			goto out;
	if (save_vm(vm, &w, &info.guest_ns, err) < 0 || save_devices(vm, &w, err) < 0)
		goto out;
	snapw_finish(&w, &info);
	path = xasprintf("%s/%s", dir, VM_SNAPSHOT_STATE);
	rc = snapw_write(&w, path, err);
	free(path);
	if (rc == 0 && bytes != NULL)
		*bytes = w.len;
out:
	snapw_free(&w);
	caps_free(&k);
	return rc;
}

/* ---- check ---- */

static int check_vcpus(struct vm *vm, const struct snap_file *f, const struct vcpu_caps *k,
		       struct tv_err *err)
{
	for (unsigned cpu = 0; cpu < f->info.cpus; cpu++) {
		const struct snap_part *p = &f->vcpu[cpu * SNAP_VCPU_PARTS];
		const struct snap_part *xs = &p[SNAP_P_XSAVE - 1], *ms = &p[SNAP_P_MSRS - 1];
		uint32_t n = ms->len >= 8 ? (ms->len - 8) / 16 : 0;

		uint32_t nx;

		memcpy(&nx, p[SNAP_P_XCRS - 1].data, sizeof(nx));
		if (nx > 0 && !k->xcrs)
			return tv_errf(err,
				       "%s: vCPU %u XCRS: field nr_xcrs %" PRIu32
				       ": this host's CPU has no XSAVE to take them",
				       f->path, cpu, nx);
		if (xs->len > k->xsave_len)
			return tv_errf(err,
				       "%s: vCPU %u XSAVE: field length %" PRIu32
				       ": this host's KVM holds %" PRIu32 " bytes (another CPU?)",
				       f->path, cpu, xs->len, k->xsave_len);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx;
			memcpy(&idx, ms->data + 8 + 16 * (size_t)i, 4);
			if (!caps_has_msr(k, idx))
				return tv_errf(err,
					       "%s: vCPU %u MSRS: MSR 0x%" PRIx32
					       " cannot be set on this host's KVM",
					       f->path, cpu, idx);
		}
	}
	(void)vm;
	return 0;
}

static int check_devices(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	unsigned i = 0;
	struct dev *d = dev_first(vm);

	for (; d != NULL && i < f->info.ndevices; d = d->next, i++) {
		const struct snap_dev *s = &f->devs[i];
		size_t size = d->ops->save != NULL ? d->ops->state_size : 0;

		if (strcmp(s->name, d->name) != 0)
			return tv_errf(err, "%s: device %u: field name \"%s\", this VM has \"%s\" there",
				       f->path, i, s->name, d->name);
		if (s->state_size != size)
			return tv_errf(err,
				       "%s: device %u (%s): field state_size %" PRIu32
				       ", this termvisor's device has %zu (another version?)",
				       f->path, i, s->name, s->state_size, size);
		if (size > 0 && d->ops->check != NULL && d->ops->check(d, s->state, err) < 0)
			return tv_err_prefix(err, "%s: device %u: ", f->path, i);
	}
	if (d != NULL || i != f->info.ndevices)
		return tv_errf(err, "%s: field devices %u: this VM has %u", f->path, f->info.ndevices,
			       dev_count(vm));
	return 0;
}

static int check_state(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	struct vcpu_caps k;
	char want[32], have[32];
	bool was_paused;
	int rc;

	if (f->info.cpus != vm->ncpus)
		return tv_errf(err, "%s: field cpus %u: this VM has %u vCPUs", f->path, f->info.cpus,
			       vm->ncpus);
	if (f->info.memory != vm->cfg.memory) {
		format_size(f->info.memory, want, sizeof(want));
		format_size(vm->cfg.memory, have, sizeof(have));
		return tv_errf(err, "%s: field memory %s: this VM has %s", f->path, want, have);
	}
	if (check_devices(vm, f, err) < 0)
		return -1;
	/* A vCPU ioctl waits while that vCPU is in KVM_RUN, which an idle
	 * guest may not leave for long: the vCPUs hold still for the probes
	 * (their state is not touched). */
	was_paused = vm_paused(vm);
	vm_pause(vm, NULL);
	rc = check_cpuid(vm, f, err);
	if (rc == 0)
		rc = caps_load(vm, &k, err);
	if (!was_paused)
		vm_resume(vm, NULL);
	if (rc < 0)
		return -1;
	rc = check_vcpus(vm, f, &k, err);
	caps_free(&k);
	return rc;
}

/* ---- restore ---- */

static int set(struct vcpu *c, unsigned long req, const char *what, const void *buf,
	       struct tv_err *err)
{
	if (ioctl(c->fd, req, buf) < 0)
		return tv_errno(err, "vCPU %u: %s", c->id, what);
	return 0;
}

static int restore_vcpu(struct vm *vm, struct vcpu *c, const struct snap_part *p,
			const struct vcpu_caps *k, struct tv_err *err)
{
	struct kvm_vcpu_events ev;
	struct kvm_msrs *m;
	uint32_t khz, n, nx;
	uint8_t *xs;
	int r;

	memcpy(&khz, p[SNAP_P_TSC_KHZ - 1].data, 4);
	r = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	if (khz != 0 && r > 0 && (uint32_t)r != khz &&
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_CONTROL) > 0 &&
	    ioctl(c->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_TSC_KHZ %u", c->id, khz);
	if (set(c, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", p[SNAP_P_MP_STATE - 1].data, err) < 0 ||
	    set(c, KVM_SET_REGS, "KVM_SET_REGS", p[SNAP_P_REGS - 1].data, err) < 0 ||
	    set(c, KVM_SET_SREGS, "KVM_SET_SREGS", p[SNAP_P_SREGS - 1].data, err) < 0)
		return -1;
	xs = xcalloc(1, k->xsave_len);
	memcpy(xs, p[SNAP_P_XSAVE - 1].data, p[SNAP_P_XSAVE - 1].len);
	r = ioctl(c->fd, KVM_SET_XSAVE, xs);
	free(xs);
	if (r < 0)
		return tv_errno(err, "vCPU %u: KVM_SET_XSAVE", c->id);
	memcpy(&nx, p[SNAP_P_XCRS - 1].data, sizeof(nx)); /* nr_xcrs leads the struct */
	if ((nx > 0 && set(c, KVM_SET_XCRS, "KVM_SET_XCRS", p[SNAP_P_XCRS - 1].data, err) < 0) ||
	    set(c, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", p[SNAP_P_DEBUGREGS - 1].data, err) < 0 ||
	    set(c, KVM_SET_LAPIC, "KVM_SET_LAPIC", p[SNAP_P_LAPIC - 1].data, err) < 0)
		return -1;
	memcpy(&n, p[SNAP_P_MSRS - 1].data, 4);
	m = msrs_alloc(n);
	memcpy(m->entries, p[SNAP_P_MSRS - 1].data + 8, (size_t)n * 16);
	r = ioctl(c->fd, KVM_SET_MSRS, m);
	if (r != (int)n) {
		if (r < 0)
			tv_errno(err, "vCPU %u: KVM_SET_MSRS", c->id);
		else
			tv_errf(err, "vCPU %u: KVM_SET_MSRS wrote %d of %u MSRs (refused 0x%x)", c->id, r,
				n, m->entries[r].index);
		free(m);
		return -1;
	}
	free(m);
	/* SET_REGS dropped any pending exception: the events go last. */
	memcpy(&ev, p[SNAP_P_EVENTS - 1].data, sizeof(ev));
	ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (set(c, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &ev, err) < 0)
		return -1;
	/* The guest's kvmclock watchdogs: the vCPU was stopped, not stuck.
	 * Fails (harmlessly) when the guest never enabled kvmclock. */
	(void)ioctl(c->fd, KVM_KVMCLOCK_CTRL, 0);
	return 0;
}

static int restore_vm(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	struct kvm_clock_data clk, saved;

	if (ioctl(vm->fd, KVM_SET_PIT2, f->vm[0].data) < 0)
		return tv_errno(err, "KVM_SET_PIT2");
	memcpy(&saved, f->vm[1].data, sizeof(saved));
	memset(&clk, 0, sizeof(clk));
	clk.clock = saved.clock;
	if (ioctl(vm->fd, KVM_SET_CLOCK, &clk) < 0)
		return tv_errno(err, "KVM_SET_CLOCK");
	for (unsigned chip = 0; chip < 3; chip++)
		if (ioctl(vm->fd, KVM_SET_IRQCHIP, f->vm[2 + chip].data) < 0)
			return tv_errno(err, "KVM_SET_IRQCHIP %u", chip);
	return 0;
}

static int restore_devices(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	unsigned i = 0;

	for (struct dev *d = dev_first(vm); d != NULL; d = d->next, i++)
		if (f->devs[i].state_size > 0 && d->ops->restore(d, f->devs[i].state, err) < 0)
			return tv_err_prefix(err, "%s: device %u: ", f->path, i);
	return 0;
}

/* After check_state passed; the VM paused and quiesced. */
static int state_restore(struct vm *vm, const struct snap_file *f, struct tv_err *err)
{
	struct vcpu_caps k;
	int rc = 0;

	if (caps_load(vm, &k, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->ncpus && rc == 0; i++)
		rc = restore_vcpu(vm, &vm->vcpus[i], &f->vcpu[i * SNAP_VCPU_PARTS], &k, err);
	caps_free(&k);
	if (rc == 0)
		rc = restore_vm(vm, f, err);
	return rc;
}

/* ---- disks ---- */

static struct blk *disk(struct vm *vm, unsigned i)
{
	return virtio_blk_disk(vm, i);
}

/* Every disk can hold internal snapshots (a raw one cannot: named). */
static int disks_qcow2(struct vm *vm, struct tv_err *err)
{
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		struct blk *b = disk(vm, i);
		struct blk_info bi;

		if (b == NULL)
			return tv_errf(err, "disk %u (%s): not open", i, vm->cfg.disks[i].path);
		blk_get_info(b, &bi);
		if (bi.version == 0)
			return tv_errf(err,
				       "disk %u (%s): a %s image cannot hold snapshots: convert it to "
				       "qcow2 (qemu-img convert -O qcow2)",
				       i, vm->cfg.disks[i].path, bi.format);
		if (vm->cfg.disks[i].readonly || blk_is_readonly(b))
			return tv_errf(err, "disk %u (%s): read-only: cannot hold snapshots", i,
				       vm->cfg.disks[i].path);
	}
	return 0;
}

static bool disk_has(struct blk *b, const char *tag)
{
	struct blk_snapshot *l;
	int n;
	bool found = false;

	if (blk_snapshot_list(b, &l, &n, NULL) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(l[i].name, tag) == 0)
			found = true;
	blk_snapshot_list_free(l, n);
	return found;
}

static int check_disks(struct vm *vm, const struct snap_file *f, const char *tag,
		       struct tv_err *err)
{
	if (tag == NULL)
		return 0;
	if (f->info.ndisks != vm->cfg.ndisks)
		return tv_errf(err, "%s: field disks %u: this VM has %zu", f->path, f->info.ndisks,
			       vm->cfg.ndisks);
	if (disks_qcow2(vm, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->cfg.ndisks; i++)
		if (!disk_has(disk(vm, i), tag))
			return tv_errf(err, "disk %u (%s): no internal snapshot named '%s'", i,
				       vm->cfg.disks[i].path, tag);
	return 0;
}

/* With the devices quiesced. CREATE undoes itself when a disk fails. */
static int disks_op(struct vm *vm, enum vm_disk_snap_op op, const char *tag, const char *new_tag,
		    struct tv_err *err)
{
	unsigned done = 0;
	int rc = 0;

	if (op == VM_DISK_SNAP_CREATE && disks_qcow2(vm, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->cfg.ndisks && rc == 0; i++) {
		struct blk *b = disk(vm, i);

		if (b == NULL) {
			rc = tv_errf(err, "disk %u (%s): not open", i, vm->cfg.disks[i].path);
			break;
		}
		switch (op) {
		case VM_DISK_SNAP_CREATE:
			rc = blk_snapshot_create(b, tag, 0, 0, err);
			break;
		case VM_DISK_SNAP_APPLY:
			rc = blk_snapshot_apply(b, tag, err);
			break;
		case VM_DISK_SNAP_DELETE:
			rc = blk_snapshot_delete(b, tag, err);
			break;
		case VM_DISK_SNAP_RENAME:
			rc = blk_snapshot_rename(b, tag, new_tag, err);
			break;
		}
		if (rc < 0)
			tv_err_prefix(err, "disk %u: ", i);
		else
			done++;
	}
	/* The disks before the one that failed hold the snapshot now. */
	if (rc < 0 && op == VM_DISK_SNAP_CREATE)
		for (unsigned j = 0; j < done; j++)
			blk_snapshot_delete(disk(vm, j), tag, NULL);
	return rc;
}

static bool tag_ok(const char *tag)
{
	return tag != NULL && tag[0] != 0 && strlen(tag) <= 1024;
}

/* ---- the API ---- */

/* Pauses (remembering whether it was) and quiesces; refused while a disk
 * holds requests for a full host disk. */
static int hold(struct vm *vm, bool *was_paused, struct tv_err *err)
{
	char why[256];

	*was_paused = vm_paused(vm);
	vm_pause(vm, NULL);
	if (virtio_pci_quiesce(vm, true))
		return 0;
	vm_hold_reason(vm, why, sizeof(why));
	return tv_errf(err, "the VM is paused (%s): free space on the host and resume it first",
		       why);
}

static void release(struct vm *vm, bool was_paused)
{
	virtio_pci_quiesce(vm, false);
	if (!was_paused)
		vm_resume(vm, NULL);
}

/* A restore that failed after the checks passed (KVM refused a value it
 * alone validates, an I/O error) has changed part of the machine: it must
 * not run on half old, half new. The run ends with the reason. */
static void halfway(struct vm *vm, struct tv_err *err)
{
	char *msg = xasprintf("snapshot restore failed halfway, the machine is inconsistent: %s",
			      err != NULL ? err->msg : "");

	vm_request_exit(vm, VM_EXIT_HOST_ERROR, 0, msg);
	free(msg);
}

static char *join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

int vm_snapshot_take(struct vm *vm, const char *dir, const char *disk_tag,
		     struct vm_snapshot_stats *st, struct tv_err *err)
{
	struct vm_snapshot_stats s;
	char *state = join(dir, VM_SNAPSHOT_STATE), *mem = join(dir, VM_SNAPSHOT_MEMORY);
	bool was_paused, state_done = false, disks_done = false, mem_tried = false;
	uint64_t t0, t[3];
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (vm_exit_reason(vm) != VM_EXIT_NONE) {
		tv_errf(err, "the VM's run has ended (%s): nothing to snapshot",
			vm_exit_reason_name(vm_exit_reason(vm)));
		goto out;
	}
	if (disk_tag != NULL && !tag_ok(disk_tag)) {
		tv_errf(err, "disk snapshot name: expected 1 to 1024 bytes");
		goto out;
	}
	t0 = monotonic_ns();
	if (hold(vm, &was_paused, err) < 0)
		goto out;
	t[0] = monotonic_ns();
	if (disk_tag != NULL && disks_qcow2(vm, err) < 0)
		goto release;
	if (state_save(vm, dir, disk_tag != NULL ? (unsigned)vm->cfg.ndisks : 0, &s.state_bytes,
		       err) < 0)
		goto release;
	state_done = true;
	t[1] = monotonic_ns();
	/* Disks before memory: a memory image that was written becomes the
	 * VM's base, so it is the one step never undone. */
	if (disk_tag != NULL && disks_op(vm, VM_DISK_SNAP_CREATE, disk_tag, NULL, err) < 0)
		goto release;
	disks_done = disk_tag != NULL;
	t[2] = monotonic_ns();
	mem_tried = true;
	if (memimg_save(vm, mem, &s.mem, err) < 0)
		goto release;
	rc = 0;
	if (vm->cfg.verbose)
		fprintf(stderr,
			"termvisor: snapshot: pause %.1f ms, state %.1f ms, disks %.1f ms, "
			"memory %.1f ms\n",
			(t[0] - t0) / 1e6, (t[1] - t[0]) / 1e6, (t[2] - t[1]) / 1e6,
			(monotonic_ns() - t[2]) / 1e6);
release:
	if (rc < 0) {
		if (state_done)
			unlink(state);
		if (mem_tried)
			unlink(mem); /* a failed save may leave a partial file */
		if (disks_done)
			disks_op(vm, VM_DISK_SNAP_DELETE, disk_tag, NULL, NULL);
	}
	release(vm, was_paused);
	s.pause_ns = monotonic_ns() - t0;
	if (rc == 0 && st != NULL)
		*st = s;
out:
	free(state);
	free(mem);
	return rc;
}

static int check_all(struct vm *vm, const char *dir, const char *disk_tag, struct snap_file *f,
		     struct tv_err *err)
{
	char *mem;
	int rc;

	if (snap_read(f, dir, err) < 0 || check_state(vm, f, err) < 0 ||
	    check_disks(vm, f, disk_tag, err) < 0)
		return -1;
	mem = join(dir, VM_SNAPSHOT_MEMORY);
	rc = memimg_check(mem, vm->cfg.memory, err);
	free(mem);
	return rc;
}

int vm_snapshot_check(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err)
{
	struct snap_file f;
	int rc = check_all(vm, dir, disk_tag, &f, err);

	snap_free(&f);
	return rc;
}

int vm_snapshot_restore(struct vm *vm, const char *dir, const char *disk_tag, struct tv_err *err)
{
	struct snap_file f;
	char *mem;
	bool was_paused;
	int rc;

	if (vm_exit_reason(vm) != VM_EXIT_NONE) {
		rc = tv_errf(err, "the VM's run has ended (%s): start it again to restore",
			     vm_exit_reason_name(vm_exit_reason(vm)));
		return rc;
	}
	if (check_all(vm, dir, disk_tag, &f, err) < 0) {
		snap_free(&f);
		return -1;
	}
	if (hold(vm, &was_paused, err) < 0) {
		snap_free(&f);
		return -1;
	}
	mem = join(dir, VM_SNAPSHOT_MEMORY);
	rc = memimg_restore(vm, mem, err);
	if (rc == 0)
		rc = state_restore(vm, &f, err);
	if (rc == 0 && disk_tag != NULL)
		rc = disks_op(vm, VM_DISK_SNAP_APPLY, disk_tag, NULL, err);
	if (rc == 0)
		rc = restore_devices(vm, &f, err);
	if (rc < 0)
		halfway(vm, err);
	release(vm, was_paused);
	free(mem);
	snap_free(&f);
	return rc;
}

int vm_disk_snapshot(struct vm *vm, enum vm_disk_snap_op op, const char *tag, const char *new_tag,
		     struct tv_err *err)
{
	bool was_paused;
	int rc;

	if (!tag_ok(tag) || (op == VM_DISK_SNAP_RENAME && !tag_ok(new_tag)))
		return tv_errf(err, "disk snapshot name: expected 1 to 1024 bytes");
	if ((unsigned)op > VM_DISK_SNAP_RENAME)
		return tv_errf(err, "disk snapshot: unknown operation %d", (int)op);
	if (hold(vm, &was_paused, err) < 0)
		return -1;
	rc = disks_op(vm, op, tag, new_tag, err);
	release(vm, was_paused);
	return rc;
}

int vm_snapshot_save_state(struct vm *vm, const char *dir, uint64_t *bytes, struct tv_err *err)
{
	bool was_paused;
	int rc;

	if (vm_exit_reason(vm) != VM_EXIT_NONE)
		return tv_errf(err, "the VM's run has ended (%s): nothing to snapshot",
			       vm_exit_reason_name(vm_exit_reason(vm)));
	if (hold(vm, &was_paused, err) < 0)
		return -1;
	rc = state_save(vm, dir, 0, bytes, err);
	release(vm, was_paused);
	return rc;
}

int vm_snapshot_load_state(struct vm *vm, const char *dir, struct tv_err *err)
{
	struct snap_file f;
	bool was_paused;
	int rc;

	if (vm_exit_reason(vm) != VM_EXIT_NONE)
		return tv_errf(err, "the VM's run has ended (%s): start it again to restore",
			       vm_exit_reason_name(vm_exit_reason(vm)));
	if (snap_read(&f, dir, err) < 0 || check_state(vm, &f, err) < 0) {
		snap_free(&f);
		return -1;
	}
	if (hold(vm, &was_paused, err) < 0) {
		snap_free(&f);
		return -1;
	}
	rc = state_restore(vm, &f, err);
	if (rc == 0)
		rc = restore_devices(vm, &f, err);
	if (rc < 0)
		halfway(vm, err);
	release(vm, was_paused);
	snap_free(&f);
	return rc;
}
