/* Loading a kernel into a VM: PVH (an ELF with XEN_ELFNOTE_PHYS32_ENTRY,
 * Linux's vmlinux or a test guest) or the Linux bzImage 64-bit boot protocol.
 * A bzImage is booted through PVH from its payload, extracted on the host,
 * whenever the payload is a vmlinux with the PVH note. */
#ifndef TV_BOOT_H
#define TV_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct vm;

enum boot_kind {
	BOOT_PVH_ELF, /* ELF with a PVH entry note */
	BOOT_BZIMAGE, /* Linux bzImage (64-bit entry or its payload through PVH) */
};

/* Loads cfg's kernel, initrd and command line into guest memory and builds
 * the boot structures and ACPI tables. It touches only guest memory (no
 * vCPU, no ioctl), so it runs while KVM is still setting the VM up; the boot
 * vCPU's registers are kept in the VM for when it exists. */
int boot_load(struct vm *vm, struct tv_err *err);

/* A range of guest physical addresses, [start, end). */
struct boot_range {
	uint64_t start, end;
};

/* Where an initrd of size bytes goes: the highest 4 KiB-aligned address a
 * with a >= low and a + size <= top whose range overlaps none of the n
 * ranges in avoid (what the kernel occupies, loaded or running), as the
 * boot protocol asks (as high as allowed, like other loaders). Returns 0
 * with *addr set, -1 when no such place exists. */
int boot_initrd_place(uint64_t low, uint64_t top, uint64_t size, const struct boot_range *avoid,
		      unsigned n, uint64_t *addr);

/* The PVH start structures (Xen's arch-x86/hvm/start_info.h, version 1). */
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#endif
