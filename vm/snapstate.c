/* The snapshot state file: writer and hostile-input parser (vm/snapstate.h).
 * The parser walks the file once, in the one order a writer produces, and
 * checks every length against the bytes left, every checksum, every count
 * against the header and every fixed field before anything uses a part. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/bytes.h"
#include "common/util.h"
#include "vm/snapstate.h"

static const char *const part_names[] = {
	[SNAP_P_MP_STATE] = "MP_STATE", [SNAP_P_REGS] = "REGS",
	[SNAP_P_SREGS] = "SREGS",	[SNAP_P_XSAVE] = "XSAVE",
	[SNAP_P_XCRS] = "XCRS",		[SNAP_P_DEBUGREGS] = "DEBUGREGS",
	[SNAP_P_LAPIC] = "LAPIC",	[SNAP_P_TSC_KHZ] = "TSC_KHZ",
	[SNAP_P_MSRS] = "MSRS",		[SNAP_P_EVENTS] = "VCPU_EVENTS",
	[SNAP_P_PIT2] = "PIT2",		[SNAP_P_CLOCK] = "CLOCK", [SNAP_P_CPUID] = "CPUID",
	[SNAP_P_IRQCHIP] = "IRQCHIP",	[SNAP_P_DEVICE] = "DEVICE",
	[SNAP_P_END] = "END",
};

const char *snap_part_name(uint32_t type)
{
	if (type < ARRAY_SIZE(part_names) && part_names[type] != NULL)
		return part_names[type];
	return "unknown";
}

uint32_t snap_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* zlib takes uInt lengths: feed it in slices. */
	while (len > 0) {
		uInt n = (uInt)MIN(len, (size_t)1 << 30);
		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

/* ---- writer ---- */

static void *snapw_grow(struct snap_writer *w, size_t n)
{
	if (w->cap - w->len < n) {
		size_t cap = w->cap ? w->cap : 64 * 1024;
		while (cap - w->len < n)
			cap *= 2;
		w->buf = xrealloc(w->buf, cap);
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

void snapw_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	memset(snapw_grow(w, SNAP_HDR_SIZE), 0, SNAP_HDR_SIZE);
}

static uint8_t *part_begin(struct snap_writer *w, uint32_t type, uint32_t index, uint32_t len)
{
	uint8_t *h = snapw_grow(w, SNAP_PART_HDR_SIZE + (size_t)len);

	put_le32(h, type);
	put_le32(h + 4, index);
	put_le32(h + 8, len);
	put_le32(h + 12, 0);
	w->nparts++;
	return h;
}

/* The part just written ends the buffer: its header starts len + 16 back. */
static void part_seal(struct snap_writer *w, uint32_t len)
{
	uint8_t *h = w->buf + w->len - len - SNAP_PART_HDR_SIZE;
	uint32_t crc = snap_crc32(0, h, 12);

	put_le32(h + 12, snap_crc32(crc, h + SNAP_PART_HDR_SIZE, len));
}

void snapw_part(struct snap_writer *w, uint32_t type, uint32_t index, const void *data,
		uint32_t len)
{
	uint8_t *h = part_begin(w, type, index, len);

	if (len > 0)
		memcpy(h + SNAP_PART_HDR_SIZE, data, len);
	part_seal(w, len);
}

void snapw_device(struct snap_writer *w, uint32_t index, const char *name, const void *state,
		  uint32_t state_size)
{
	uint32_t nlen = (uint32_t)strlen(name);
	uint32_t len = SNAP_DEV_HDR_SIZE + nlen + state_size;
	uint8_t *h = part_begin(w, SNAP_P_DEVICE, index, len), *p = h + SNAP_PART_HDR_SIZE;

	p[0] = (uint8_t)nlen;
	p[1] = (uint8_t)(nlen >> 8);
	p[2] = p[3] = 0;
	put_le32(p + 4, state_size);
	memcpy(p + SNAP_DEV_HDR_SIZE, name, nlen);
	if (state_size > 0)
		memcpy(p + SNAP_DEV_HDR_SIZE + nlen, state, state_size);
	part_seal(w, len);
}

void snapw_finish(struct snap_writer *w, const struct vm_snapshot_info *info)
{
	uint8_t *h;

	snapw_part(w, SNAP_P_END, 0, NULL, 0);
	h = w->buf;
	memset(h, 0, SNAP_HDR_SIZE);
	memcpy(h, SNAP_MAGIC, 8);
	put_le32(h + 8, SNAP_VERSION);
	put_le32(h + 12, SNAP_HDR_SIZE);
	put_le32(h + 16, info->cpus);
	put_le32(h + 20, info->ndevices);
	put_le64(h + 24, info->memory);
	put_le32(h + 32, info->ndisks);
	put_le32(h + 36, w->nparts);
	put_le64(h + 40, info->taken_ns);
	put_le64(h + 48, info->guest_ns);
	put_le32(h + 56, 0); /* flags */
	put_le32(h + 60, snap_crc32(0, h, 60));
}

int snapw_write(struct snap_writer *w, const char *path, struct tv_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return tv_errno(err, "%s", path);
	if (write_full(fd, w->buf, w->len) < 0 || fsync(fd) < 0) {
		tv_errno(err, "%s: writing", path);
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0) {
		tv_errno(err, "%s: writing", path);
		unlink(path);
		return -1;
	}
	return 0;
}

void snapw_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* ---- parser ---- */

struct cursor {
	struct snap_file *f;
	size_t off;
	uint32_t seen; /* parts read so far */
	struct tv_err *err;
};

/* The payload size every fixed-size part must have (0: variable). */
static uint32_t fixed_len(uint32_t type)
{
	switch (type) {
	case SNAP_P_MP_STATE: return sizeof(struct kvm_mp_state);
	case SNAP_P_REGS: return sizeof(struct kvm_regs);
	case SNAP_P_SREGS: return sizeof(struct kvm_sregs);
	case SNAP_P_XCRS: return sizeof(struct kvm_xcrs);
	case SNAP_P_DEBUGREGS: return sizeof(struct kvm_debugregs);
	case SNAP_P_LAPIC: return sizeof(struct kvm_lapic_state);
	case SNAP_P_TSC_KHZ: return 8;
	case SNAP_P_EVENTS: return sizeof(struct kvm_vcpu_events);
	case SNAP_P_PIT2: return sizeof(struct kvm_pit_state2);
	case SNAP_P_CLOCK: return sizeof(struct kvm_clock_data);
	case SNAP_P_IRQCHIP: return sizeof(struct kvm_irqchip);
	default: return 0;
	}
}

/* "vCPU 1 LAPIC", "IRQCHIP 2", "device 3": for error messages. */
static void part_label(char *buf, size_t n, uint32_t type, uint32_t index)
{
	if (type >= SNAP_P_MP_STATE && type <= SNAP_P_EVENTS)
		snprintf(buf, n, "vCPU %" PRIu32 " %s", index, snap_part_name(type));
	else if (type == SNAP_P_DEVICE)
		snprintf(buf, n, "device %" PRIu32, index);
	else if (type == SNAP_P_IRQCHIP)
		snprintf(buf, n, "IRQCHIP %" PRIu32, index);
	else
		snprintf(buf, n, "%s", snap_part_name(type));
}

/* Reads the next part, which must be of this type and index. */
static int next_part(struct cursor *c, uint32_t type, uint32_t index, struct snap_part *out)
{
	struct snap_file *f = c->f;
	const uint8_t *h;
	uint32_t t, i, len, crc, want;
	char label[64], got[64];

	part_label(label, sizeof(label), type, index);
	if (c->seen >= f->nparts)
		return tv_errf(c->err, "%s: header field parts: %" PRIu32 " parts, but %s follows",
			       f->path, f->nparts, label);
	if (f->len - c->off < SNAP_PART_HDR_SIZE)
		return tv_errf(c->err, "%s: truncated at offset %zu: %s (part %" PRIu32 ") missing",
			       f->path, c->off, label, c->seen);
	h = f->buf + c->off;
	t = get_le32(h);
	i = get_le32(h + 4);
	len = get_le32(h + 8);
	crc = get_le32(h + 12);
	if (t != type || i != index) {
		part_label(got, sizeof(got), t, i);
		return tv_errf(c->err,
			       "%s: part %" PRIu32 " at offset %zu: field type/index: %s (type %" PRIu32
			       "), expected %s",
			       f->path, c->seen, c->off, got, t, label);
	}
	if (len > f->len - c->off - SNAP_PART_HDR_SIZE)
		return tv_errf(c->err,
			       "%s: %s at offset %zu: field length %" PRIu32
			       " runs past the end of the file (truncated?)",
			       f->path, label, c->off, len);
	want = fixed_len(type);
	if (want != 0 && len != want)
		return tv_errf(c->err, "%s: %s: field length %" PRIu32 ", expected %" PRIu32,
			       f->path, label, len, want);
	if (snap_crc32(snap_crc32(0, h, 12), h + SNAP_PART_HDR_SIZE, len) != crc)
		return tv_errf(c->err, "%s: %s at offset %zu: field crc32: checksum mismatch "
				       "(the part is damaged)",
			       f->path, label, c->off);
	out->type = t;
	out->index = i;
	out->len = len;
	out->data = h + SNAP_PART_HDR_SIZE;
	c->off += SNAP_PART_HDR_SIZE + (size_t)len;
	c->seen++;
	return 0;
}

/* Fields inside the vCPU parts that no KVM struct may carry. */
static int check_vcpu_part(struct cursor *c, unsigned cpu, const struct snap_part *p)
{
	const char *path = c->f->path;
	const char *name = snap_part_name(p->type);

	switch (p->type) {
	case SNAP_P_MP_STATE: {
		uint32_t s = get_le32(p->data);
		if (s > KVM_MP_STATE_SUSPENDED)
			return tv_errf(c->err, "%s: vCPU %u %s: field mp_state %" PRIu32 " unknown",
				       path, cpu, name, s);
		break;
	}
	case SNAP_P_XSAVE:
		if (p->len < SNAP_XSAVE_MIN || p->len > SNAP_XSAVE_MAX || p->len % 64 != 0)
			return tv_errf(c->err,
				       "%s: vCPU %u %s: field length %" PRIu32
				       ": expected a multiple of 64 from %u to %u",
				       path, cpu, name, p->len, SNAP_XSAVE_MIN, SNAP_XSAVE_MAX);
		break;
	case SNAP_P_XCRS: {
		struct kvm_xcrs x;
		memcpy(&x, p->data, sizeof(x));
		if (x.nr_xcrs > KVM_MAX_XCRS || x.flags != 0)
			return tv_errf(c->err,
				       "%s: vCPU %u %s: field nr_xcrs %" PRIu32 " (at most %d) or flags 0x%" PRIx32
				       " (expected 0) out of range",
				       path, cpu, name, x.nr_xcrs, KVM_MAX_XCRS, x.flags);
		break;
	}
	case SNAP_P_DEBUGREGS: {
		struct kvm_debugregs d;
		memcpy(&d, p->data, sizeof(d));
		if (d.flags != 0)
			return tv_errf(c->err, "%s: vCPU %u %s: field flags 0x%" PRIx32 ", expected 0",
				       path, cpu, name, (uint32_t)d.flags);
		break;
	}
	case SNAP_P_TSC_KHZ:
		if (get_le32(p->data + 4) != 0 || get_le32(p->data) > 100000000)
			return tv_errf(c->err, "%s: vCPU %u %s: field tsc_khz %" PRIu32 " out of range",
				       path, cpu, name, get_le32(p->data));
		break;
	case SNAP_P_MSRS: {
		uint32_t n;
		if (p->len < 8)
			return tv_errf(c->err, "%s: vCPU %u %s: field length %" PRIu32 " below 8",
				       path, cpu, name, p->len);
		n = get_le32(p->data);
		if (n > SNAP_MAX_MSRS || get_le32(p->data + 4) != 0)
			return tv_errf(c->err, "%s: vCPU %u %s: field count %" PRIu32 " (at most %u)",
				       path, cpu, name, n, SNAP_MAX_MSRS);
		if (p->len != 8 + 16 * (uint64_t)n)
			return tv_errf(c->err,
				       "%s: vCPU %u %s: field length %" PRIu32 " does not hold %" PRIu32
				       " MSRs (%" PRIu64 " bytes)",
				       path, cpu, name, p->len, n, 8 + 16 * (uint64_t)n);
		for (uint32_t i = 0; i < n; i++)
			if (get_le32(p->data + 8 + 16 * i + 4) != 0)
				return tv_errf(c->err, "%s: vCPU %u %s: MSR %" PRIu32 ": field reserved not 0",
					       path, cpu, name, i);
		break;
	}
	case SNAP_P_EVENTS: {
		struct kvm_vcpu_events e;
		const uint32_t known = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
				       KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
				       KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
		memcpy(&e, p->data, sizeof(e));
		if (e.flags & ~known)
			return tv_errf(c->err, "%s: vCPU %u %s: field flags 0x%" PRIx32 " has unknown bits",
				       path, cpu, name, e.flags);
		if (e.exception.injected > 1 || e.exception.pending > 1 || e.exception.nr > 31 ||
		    e.exception.has_error_code > 1 || e.interrupt.injected > 1 || e.nmi.injected > 1 ||
		    e.nmi.pending > 1 || e.nmi.masked > 1)
			return tv_errf(c->err, "%s: vCPU %u %s: field exception/interrupt/nmi out of range",
				       path, cpu, name);
		break;
	}
	}
	return 0;
}

static int check_device(struct cursor *c, const struct snap_part *p, struct snap_dev *d)
{
	const char *path = c->f->path;
	uint32_t nlen, size;

	if (p->len < SNAP_DEV_HDR_SIZE)
		return tv_errf(c->err, "%s: device %" PRIu32 ": field length %" PRIu32 " below %d", path,
			       p->index, p->len, SNAP_DEV_HDR_SIZE);
	nlen = (uint32_t)p->data[0] | (uint32_t)p->data[1] << 8;
	size = get_le32(p->data + 4);
	if (p->data[2] != 0 || p->data[3] != 0)
		return tv_errf(c->err, "%s: device %" PRIu32 ": field reserved not 0", path, p->index);
	if (nlen == 0 || nlen > SNAP_DEV_NAME_MAX)
		return tv_errf(c->err, "%s: device %" PRIu32 ": field name_len %" PRIu32 ": expected 1 to %d",
			       path, p->index, nlen, SNAP_DEV_NAME_MAX);
	if (size > SNAP_DEV_STATE_MAX)
		return tv_errf(c->err, "%s: device %" PRIu32 ": field state_size %" PRIu32 " above %u",
			       path, p->index, size, SNAP_DEV_STATE_MAX);
	if ((uint64_t)p->len != SNAP_DEV_HDR_SIZE + (uint64_t)nlen + size)
		return tv_errf(c->err,
			       "%s: device %" PRIu32 ": field length %" PRIu32
			       " is not %d + name_len %" PRIu32 " + state_size %" PRIu32,
			       path, p->index, p->len, SNAP_DEV_HDR_SIZE, nlen, size);
	for (uint32_t i = 0; i < nlen; i++) {
		uint8_t ch = p->data[SNAP_DEV_HDR_SIZE + i];
		if (ch <= ' ' || ch > '~')
			return tv_errf(c->err, "%s: device %" PRIu32 ": field name: byte 0x%02x at %" PRIu32
					       " is not a printable character",
				       path, p->index, ch, i);
	}
	memcpy(d->name, p->data + SNAP_DEV_HDR_SIZE, nlen);
	d->name[nlen] = 0;
	d->state_size = size;
	d->state = p->data + SNAP_DEV_HDR_SIZE + nlen;
	return 0;
}

static int parse_header(struct snap_file *f, struct tv_err *err)
{
	const uint8_t *h = f->buf;
	struct vm_snapshot_info *in = &f->info;
	uint32_t version, hsize, flags;

	if (f->len < SNAP_HDR_SIZE)
		return tv_errf(err, "%s: %zu bytes, shorter than the %d-byte header (truncated?)",
			       f->path, f->len, SNAP_HDR_SIZE);
	if (memcmp(h, SNAP_MAGIC, 8) != 0)
		return tv_errf(err, "%s: field magic: not a termvisor state file", f->path);
	version = get_le32(h + 8);
	if (version > SNAP_VERSION)
		return tv_errf(err,
			       "%s: field version: %" PRIu32
			       " is newer than this termvisor reads (%d): update termvisor",
			       f->path, version, SNAP_VERSION);
	if (version != SNAP_VERSION && version != 1)
		return tv_errf(err, "%s: field version: %" PRIu32 " unknown", f->path, version);
	if (snap_crc32(0, h, 60) != get_le32(h + 60))
		return tv_errf(err, "%s: header field crc32: checksum mismatch (the header is damaged)",
			       f->path);
	hsize = get_le32(h + 12);
	if (hsize != SNAP_HDR_SIZE)
		return tv_errf(err, "%s: field header_size %" PRIu32 ", expected %d", f->path, hsize,
			       SNAP_HDR_SIZE);
	in->version = version;
	in->cpus = get_le32(h + 16);
	in->ndevices = get_le32(h + 20);
	in->memory = get_le64(h + 24);
	in->ndisks = get_le32(h + 32);
	f->nparts = get_le32(h + 36);
	in->taken_ns = get_le64(h + 40);
	in->guest_ns = get_le64(h + 48);
	flags = get_le32(h + 56);
	if (in->cpus < 1 || in->cpus > SNAP_MAX_CPUS)
		return tv_errf(err, "%s: field cpus %u: expected 1 to %d", f->path, in->cpus,
			       SNAP_MAX_CPUS);
	if (in->ndevices > SNAP_MAX_DEVICES)
		return tv_errf(err, "%s: field devices %u: at most %d", f->path, in->ndevices,
			       SNAP_MAX_DEVICES);
	if (in->ndisks > SNAP_MAX_DISKS)
		return tv_errf(err, "%s: field disks %u: at most %d", f->path, in->ndisks,
			       SNAP_MAX_DISKS);
	if (in->memory < (2u << 20) || in->memory % 4096 != 0 || in->memory > (1ULL << 40))
		return tv_errf(err,
			       "%s: field memory %" PRIu64
			       ": expected a multiple of 4096 from 2 MiB to 1 TiB",
			       f->path, in->memory);
	if (flags != 0)
		return tv_errf(err, "%s: field flags 0x%" PRIx32 ": expected 0", f->path, flags);
	uint32_t want = in->cpus * SNAP_VCPU_PARTS + SNAP_VM_PARTS + (version >= 2) +
			in->ndevices + 1;
	if (f->nparts != want)
		return tv_errf(err,
			       "%s: field parts %" PRIu32 ": %u vCPUs and %u devices make %" PRIu32,
			       f->path, f->nparts, in->cpus, in->ndevices, want);
	return 0;
}

int snap_parse(struct snap_file *f, const char *path, uint8_t *buf, size_t len, struct tv_err *err)
{
	struct cursor c = {.f = f, .off = SNAP_HDR_SIZE, .err = err};
	struct snap_part end;

	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	f->buf = buf;
	f->len = len;
	if (parse_header(f, err) < 0)
		return -1;
	f->vcpu = xcalloc((size_t)f->info.cpus * SNAP_VCPU_PARTS, sizeof(*f->vcpu));
	f->devs = xcalloc(f->info.ndevices ? f->info.ndevices : 1, sizeof(*f->devs));
	for (unsigned cpu = 0; cpu < f->info.cpus; cpu++) {
		for (unsigned k = 0; k < SNAP_VCPU_PARTS; k++) {
			struct snap_part *p = &f->vcpu[cpu * SNAP_VCPU_PARTS + k];
			if (next_part(&c, SNAP_P_MP_STATE + k, cpu, p) < 0 ||
			    check_vcpu_part(&c, cpu, p) < 0)
				return -1;
		}
	}
	if (next_part(&c, SNAP_P_PIT2, 0, &f->vm[0]) < 0 ||
	    next_part(&c, SNAP_P_CLOCK, 0, &f->vm[1]) < 0)
		return -1;
	for (unsigned chip = 0; chip < 3; chip++) {
		struct kvm_irqchip ic;
		if (next_part(&c, SNAP_P_IRQCHIP, chip, &f->vm[2 + chip]) < 0)
			return -1;
		memcpy(&ic, f->vm[2 + chip].data, sizeof(ic));
		if (ic.chip_id != chip)
			return tv_errf(err, "%s: IRQCHIP %u: field chip_id %" PRIu32 ", expected %u",
				       path, chip, ic.chip_id, chip);
	}
	if (f->info.version >= 2) {
		if (next_part(&c, SNAP_P_CPUID, 0, &f->cpuid) < 0)
			return -1;
		if (f->cpuid.len == 0 || f->cpuid.len % sizeof(struct kvm_cpuid_entry2) != 0 ||
		    f->cpuid.len / sizeof(struct kvm_cpuid_entry2) > SNAP_MAX_CPUID)
			return tv_errf(err,
				       "%s: CPUID: field length %" PRIu32
				       ": expected 1 to %d entries of %zu bytes",
				       path, f->cpuid.len, SNAP_MAX_CPUID,
				       sizeof(struct kvm_cpuid_entry2));
	}
	for (unsigned i = 0; i < f->info.ndevices; i++) {
		struct snap_part p;
		if (next_part(&c, SNAP_P_DEVICE, i, &p) < 0 || check_device(&c, &p, &f->devs[i]) < 0)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(f->devs[j].name, f->devs[i].name) == 0)
				return tv_errf(err, "%s: device %u: field name \"%s\" appears twice", path,
					       i, f->devs[i].name);
	}
	if (next_part(&c, SNAP_P_END, 0, &end) < 0)
		return -1;
	if (end.len != 0)
		return tv_errf(err, "%s: END: field length %" PRIu32 ", expected 0", path, end.len);
	if (c.off != f->len)
		return tv_errf(err, "%s: %zu bytes after END at offset %zu", path, f->len - c.off, c.off);
	return 0;
}

int snap_read(struct snap_file *f, const char *dir, struct tv_err *err)
{
	char *path = xasprintf("%s/%s", dir, VM_SNAPSHOT_STATE);
	struct stat st;
	uint8_t *buf;
	int fd, rc;

	memset(f, 0, sizeof(*f));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = tv_errno(err, "%s", path);
		free(path);
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = S_ISREG(st.st_mode) ? tv_errno(err, "%s", path)
					 : tv_errf(err, "%s: not a regular file", path);
		close(fd);
		free(path);
		return rc;
	}
	if ((uint64_t)st.st_size > SNAP_MAX_FILE) {
		rc = tv_errf(err, "%s: %" PRIu64 " bytes, more than a state file may hold (%u)", path,
			     (uint64_t)st.st_size, SNAP_MAX_FILE);
		close(fd);
		free(path);
		return rc;
	}
	buf = xmalloc(st.st_size ? (size_t)st.st_size : 1);
	if (read_full(fd, buf, (size_t)st.st_size) < 0) {
		rc = tv_errno(err, "%s: reading", path);
		free(buf);
		close(fd);
		free(path);
		return rc;
	}
	close(fd);
	rc = snap_parse(f, path, buf, (size_t)st.st_size, err);
	free(path);
	return rc;
}

void snap_free(struct snap_file *f)
{
	free(f->path);
	free(f->buf);
	free(f->vcpu);
	free(f->devs);
	memset(f, 0, sizeof(*f));
}

int vm_snapshot_read_info(const char *dir, struct vm_snapshot_info *info, struct tv_err *err)
{
	struct snap_file f;
	int rc = snap_read(&f, dir, err);

	if (rc == 0)
		*info = f.info;
	snap_free(&f);
	return rc;
}
