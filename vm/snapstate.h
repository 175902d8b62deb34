/* The state file of a machine snapshot (vm/snapstate.c): its format, a
 * writer, and a parser that treats every byte as hostile. No KVM calls here
 * (vm/snapshot.c does those), so the fuzz target builds this file alone.
 *
 * Layout (little-endian; termvisor-snapshot(5) has it field by field):
 *	header   64 bytes: magic "TVSTATE\0", version, header size, cpus,
 *	         devices, memory, disks, parts, taken time, kvmclock, flags, CRC-32
 *	parts    each a 16-byte header (type, index, length, CRC-32 of the
 *	         header's first 12 bytes and the payload) and length bytes:
 *	         per vCPU in order MP_STATE REGS SREGS XSAVE XCRS DEBUGREGS
 *	         LAPIC TSC_KHZ MSRS EVENTS; then PIT2, CLOCK, IRQCHIP 0-2; then
 *	         one DEVICE part per device in the VM's device order; then END.
 * Nothing may follow END. KVM structs are stored as <linux/kvm.h> lays them
 * out on x86-64. */
#ifndef TV_SNAPSTATE_H
#define TV_SNAPSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vm/snapshot.h"

#define SNAP_MAGIC	   "TVSTATE" /* 8 bytes with its NUL */
#define SNAP_VERSION	   2 /* 2: the CPUID part; version 1 files are still read */
#define SNAP_HDR_SIZE	   64
#define SNAP_PART_HDR_SIZE 16
#define SNAP_DEV_HDR_SIZE  8

/* Limits a state file must keep (a file over them is refused, not read). */
#define SNAP_MAX_CPUS	   64
#define SNAP_MAX_DEVICES   256
#define SNAP_MAX_DISKS	   64
#define SNAP_MAX_FILE	   (64u << 20)
#define SNAP_XSAVE_MIN	   4096
#define SNAP_XSAVE_MAX	   (64u << 10)
#define SNAP_MAX_MSRS	   1024
#define SNAP_MAX_CPUID	   256
#define SNAP_DEV_NAME_MAX  63
#define SNAP_DEV_STATE_MAX (1u << 20)

enum snap_part_type {
	SNAP_P_MP_STATE = 1,
	SNAP_P_REGS,
	SNAP_P_SREGS,
	SNAP_P_XSAVE,
	SNAP_P_XCRS,
	SNAP_P_DEBUGREGS,
	SNAP_P_LAPIC,
	SNAP_P_TSC_KHZ,
	SNAP_P_MSRS,
	SNAP_P_EVENTS,
	SNAP_P_PIT2 = 16,
	SNAP_P_CLOCK,
	SNAP_P_IRQCHIP,
	SNAP_P_CPUID, /* the CPUID entries vCPU 0 had (struct kvm_cpuid_entry2 each) */
	SNAP_P_DEVICE = 32,
	SNAP_P_END = 255,
};

#define SNAP_VCPU_PARTS 10 /* SNAP_P_MP_STATE .. SNAP_P_EVENTS */
#define SNAP_VM_PARTS	5  /* PIT2, CLOCK, IRQCHIP x3 */

const char *snap_part_name(uint32_t type);

struct snap_part {
	uint32_t type, index, len;
	const uint8_t *data; /* into the file's buffer */
};

struct snap_dev {
	char name[SNAP_DEV_NAME_MAX + 1];
	uint32_t state_size;
	const uint8_t *state;
};

/* A parsed state file: every part's length, checksum and fixed fields
 * checked; the pointers lead into buf. */
struct snap_file {
	char *path;
	uint8_t *buf;
	size_t len;
	struct vm_snapshot_info info;
	uint32_t nparts;
	struct snap_part *vcpu; /* cpus * SNAP_VCPU_PARTS, in type order */
	struct snap_part vm[SNAP_VM_PARTS];
	struct snap_part cpuid; /* len 0 in a version 1 file, which has none */
	struct snap_dev *devs;	/* info.ndevices */
};

/* Parses len bytes (buf becomes f's, freed by snap_free even on failure);
 * path names the file in errors. */
int snap_parse(struct snap_file *f, const char *path, uint8_t *buf, size_t len, struct tv_err *err);
/* Reads and parses dir/state. */
int snap_read(struct snap_file *f, const char *dir, struct tv_err *err);
void snap_free(struct snap_file *f);

/* The writer: parts appended to a growing buffer, the header last. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nparts;
};

void snapw_init(struct snap_writer *w);
void snapw_part(struct snap_writer *w, uint32_t type, uint32_t index, const void *data,
		uint32_t len);
/* A DEVICE part: its name, then state_size bytes of state. */
void snapw_device(struct snap_writer *w, uint32_t index, const char *name, const void *state,
		  uint32_t state_size);
/* Appends END and fills in the header from info (version and parts set here). */
void snapw_finish(struct snap_writer *w, const struct vm_snapshot_info *info);
/* Writes the buffer to path (created, must not exist) and fsyncs it. */
int snapw_write(struct snap_writer *w, const char *path, struct tv_err *err);
void snapw_free(struct snap_writer *w);

uint32_t snap_crc32(uint32_t crc, const void *buf, size_t len);

#endif
