/* Kernel loading: PVH ELF and the Linux bzImage 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst), with the e820 map, command line, initrd,
 * identity page tables and GDT they need. Every offset read from a file is
 * checked against the file's size; every guest address goes through gmem. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/acpi.h"
#include "vm/boot.h"
#include "vm/decompress.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm-int.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_MAX      32

#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

/* A file mapped read-only, with its name for messages. */
struct kfile {
	const char *path;
	const uint8_t *data;
	size_t size;
	bool malloced; /* data from malloc (an extracted kernel), not a mapping */
	int fd;	       /* the open file, for bulk reads; -1 for malloced data */
};

/* What the ELF loader found. */
struct elf_info {
	uint64_t pvh_entry;
	bool has_pvh;
	uint64_t end; /* highest byte loaded + 1 */
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int kfile_open(struct kfile *f, const char *path, const char *what, struct tv_err *err)
{
	struct stat st;
	int fd;
	void *p;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tv_errno(err, "%s %s", what, path);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return tv_errno(err, "%s %s", what, path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return tv_errf(err, "%s %s: not a regular file", what, path);
	}
	if (st.st_size == 0) {
		close(fd);
		return tv_errf(err, "%s %s: empty file", what, path);
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return tv_errno(err, "%s %s", what, path);
	}
	f->data = p;
	f->size = (size_t)st.st_size;
	f->fd = fd;
	return 0;
}

/* Copies len bytes at off (already checked against the size) to dst. A read
 * into guest memory is much cheaper than faulting the file's mapping in. */
static int kfile_copy(const struct kfile *f, void *dst, uint64_t off, size_t len,
		      struct tv_err *err)
{
	if (f->fd < 0) {
		memcpy(dst, f->data + off, len);
		return 0;
	}
	if (pread_full(f->fd, dst, len, off) < 0)
		return tv_errno(err, "kernel %s: reading", f->path);
	return 0;
}

static void kfile_close(struct kfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->data != NULL && f->malloced)
		free((void *)f->data);
	else if (f->data != NULL)
		munmap((void *)f->data, f->size);
	f->data = NULL;
}

/* ---- kind detection ---- */

static bool is_elf(const struct kfile *f)
{
	return f->size >= 4 && memcmp(f->data, "\177ELF", 4) == 0;
}

static bool is_bzimage(const struct kfile *f)
{
	return f->size >= 0x210 && le16(f->data + 0x1fe) == 0xaa55 &&
	       memcmp(f->data + 0x202, "HdrS", 4) == 0;
}

/* ---- ELF ---- */

struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

struct elf {
	const struct kfile *f;
	bool is64;
	uint64_t phoff;
	unsigned phentsize, phnum;
};

static int elf_open(struct elf *e, const struct kfile *f, struct tv_err *err)
{
	const uint8_t *d = f->data;
	unsigned machine;

	e->f = f;
	if (f->size < 52)
		return tv_errf(err, "kernel %s: truncated ELF header", f->path);
	if (d[4] != 1 && d[4] != 2)
		return tv_errf(err, "kernel %s: unknown ELF class %u", f->path, d[4]);
	e->is64 = d[4] == 2;
	if (d[5] != 1)
		return tv_errf(err, "kernel %s: not a little-endian ELF", f->path);
	if (e->is64 && f->size < 64)
		return tv_errf(err, "kernel %s: truncated ELF header", f->path);
	machine = le16(d + 18);
	if (machine != 62 && machine != 3)
		return tv_errf(err, "kernel %s: ELF for machine %u, expected x86 (3) or x86-64 (62)",
			       f->path, machine);
	e->phoff = e->is64 ? le64(d + 32) : le32(d + 28);
	e->phentsize = le16(d + (e->is64 ? 54 : 42));
	e->phnum = le16(d + (e->is64 ? 56 : 44));
	if (e->phnum == 0)
		return tv_errf(err, "kernel %s: ELF without program headers", f->path);
	if (e->phentsize < (e->is64 ? 56u : 32u) || e->phoff > f->size ||
	    (uint64_t)e->phentsize * e->phnum > f->size - e->phoff)
		return tv_errf(err, "kernel %s: truncated or bad ELF program headers", f->path);
	return 0;
}

static int elf_phdr(const struct elf *e, unsigned i, struct phdr *ph, struct tv_err *err)
{
	const uint8_t *p = e->f->data + e->phoff + (uint64_t)i * e->phentsize;

	ph->type = le32(p);
	if (e->is64) {
		ph->offset = le64(p + 8);
		ph->paddr = le64(p + 24);
		ph->filesz = le64(p + 32);
		ph->memsz = le64(p + 40);
	} else {
		ph->offset = le32(p + 4);
		ph->paddr = le32(p + 12);
		ph->filesz = le32(p + 16);
		ph->memsz = le32(p + 20);
	}
	if (ph->offset > e->f->size || ph->filesz > e->f->size - ph->offset)
		return tv_errf(err, "kernel %s: truncated (segment %u needs %" PRIu64
				    " bytes at offset %" PRIu64 ", the file has %zu)",
			       e->f->path, i, ph->filesz, ph->offset, e->f->size);
	if (ph->type == 1 && ph->filesz > ph->memsz)
		return tv_errf(err, "kernel %s: segment %u larger in the file than in memory",
			       e->f->path, i);
	return 0;
}

/* Looks for XEN_ELFNOTE_PHYS32_ENTRY in a PT_NOTE segment. */
static void elf_find_pvh(const struct elf *e, const struct phdr *ph, struct elf_info *info)
{
	const uint8_t *p = e->f->data + ph->offset;
	uint64_t left = ph->filesz;

	while (left >= 12) {
		uint32_t namesz = le32(p), descsz = le32(p + 4), type = le32(p + 8);
		uint64_t name_al = ALIGN_UP((uint64_t)namesz, 4), desc_al = ALIGN_UP((uint64_t)descsz, 4);
		if (name_al > left - 12 || desc_al > left - 12 - name_al)
			return;
		const uint8_t *name = p + 12, *desc = name + name_al;
		if (namesz == 4 && memcmp(name, "Xen", 4) == 0 && type == XEN_ELFNOTE_PHYS32_ENTRY &&
		    (descsz == 4 || descsz == 8)) {
			info->pvh_entry = descsz == 4 ? le32(desc) : le64(desc);
			info->has_pvh = true;
			return;
		}
		p += 12 + name_al + desc_al;
		left -= 12 + name_al + desc_al;
	}
}

static int elf_scan(const struct kfile *f, struct elf_info *info, struct tv_err *err)
{
	struct elf e;
	struct phdr ph;

	memset(info, 0, sizeof(*info));
	if (elf_open(&e, f, err) < 0)
		return -1;
	for (unsigned i = 0; i < e.phnum; i++) {
		if (elf_phdr(&e, i, &ph, err) < 0)
			return -1;
		if (ph.type == 4)
			elf_find_pvh(&e, &ph, info);
		if (ph.type == 1 && ph.memsz > 0 && ph.paddr + ph.memsz > info->end)
			info->end = ph.paddr + ph.memsz;
	}
	if (!info->has_pvh)
		return tv_errf(err, "kernel %s: ELF without a PVH entry note "
				    "(XEN_ELFNOTE_PHYS32_ENTRY; Linux needs CONFIG_PVH=y)",
			       f->path);
	return 0;
}

static int elf_load(struct vm *vm, const struct kfile *f, struct elf_info *info, struct tv_err *err)
{
	struct elf e;
	struct phdr ph;
	char ram[32];

	if (elf_scan(f, info, err) < 0 || elf_open(&e, f, err) < 0)
		return -1;
	format_size(vm->cfg.memory, ram, sizeof(ram));
	for (unsigned i = 0; i < e.phnum; i++) {
		if (elf_phdr(&e, i, &ph, err) < 0)
			return -1;
		if (ph.type != 1 || ph.memsz == 0)
			continue;
		if (ph.paddr < LAYOUT_HIMEM_START)
			return tv_errf(err, "kernel %s: segment at 0x%" PRIx64
					    " loads below 1 MiB, where the boot structures live",
				       f->path, ph.paddr);
		uint8_t *dst = gmem_ptr(&vm->mem, ph.paddr, ph.memsz);
		if (dst == NULL)
			return tv_errf(err, "kernel %s: segment at 0x%" PRIx64 "+0x%" PRIx64
					    " lies outside guest RAM (%s)",
				       f->path, ph.paddr, ph.memsz, ram);
		if (kfile_copy(f, dst, ph.offset, ph.filesz, err) < 0)
			return -1;
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
	}
	return 0;
}

/* ---- bzImage header ---- */

struct bzimage {
	unsigned version;
	size_t setup_size; /* bytes of real-mode setup before the protected-mode kernel */
	uint64_t init_size;
	uint64_t pref_address; /* where the kernel runs (and decompresses) */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	uint16_t xloadflags;
	uint64_t payload_off, payload_len; /* in the file */
};

static int bzimage_parse(const struct kfile *f, struct bzimage *bz, struct tv_err *err)
{
	const uint8_t *d = f->data;
	unsigned sects;
	uint64_t syssize;

	memset(bz, 0, sizeof(*bz));
	if (f->size < 0x268)
		return tv_errf(err, "kernel %s: truncated bzImage header", f->path);
	bz->version = le16(d + 0x206);
	if (bz->version < 0x20c)
		return tv_errf(err, "kernel %s: boot protocol %u.%02u, expected 2.12 or later",
			       f->path, bz->version >> 8, bz->version & 0xff);
	sects = d[0x1f1] ? d[0x1f1] : 4;
	bz->setup_size = (size_t)(sects + 1) * 512;
	syssize = (uint64_t)le32(d + 0x1f4) * 16;
	if (bz->setup_size >= f->size || syssize > f->size - bz->setup_size)
		return tv_errf(err, "kernel %s: truncated (%zu bytes, the header says %" PRIu64 ")",
			       f->path, f->size, (uint64_t)bz->setup_size + syssize);
	bz->initrd_addr_max = le32(d + 0x22c);
	bz->cmdline_size = le32(d + 0x238);
	bz->xloadflags = le16(d + 0x236);
	bz->init_size = le32(d + 0x260);
	bz->pref_address = le64(d + 0x258);
	bz->payload_off = bz->setup_size + le32(d + 0x248);
	bz->payload_len = le32(d + 0x24c);
	if (bz->payload_off > f->size || bz->payload_len > f->size - bz->payload_off)
		return tv_errf(err, "kernel %s: truncated (payload beyond the end of the file)",
			       f->path);
	if (!(d[0x211] & 0x01))
		return tv_errf(err, "kernel %s: a zImage (loads low); expected a bzImage", f->path);
	return 0;
}

/* ---- memory map ---- */

static unsigned e820_build(const struct vm *vm, struct e820_entry *e)
{
	uint64_t mem = vm->cfg.memory, low = MIN(mem, LAYOUT_LOW_RAM_END);
	unsigned n = 0;

	e[n++] = (struct e820_entry){0, LAYOUT_EBDA_START, E820_RAM};
	e[n++] = (struct e820_entry){LAYOUT_EBDA_START, LAYOUT_HIMEM_START - LAYOUT_EBDA_START,
				     E820_RESERVED};
	if (low > LAYOUT_HIMEM_START)
		e[n++] = (struct e820_entry){LAYOUT_HIMEM_START, low - LAYOUT_HIMEM_START, E820_RAM};
	/* Linux uses the ECAM window only when firmware reserved it. */
	e[n++] = (struct e820_entry){LAYOUT_PCI_ECAM_BASE, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED};
	if (mem > low)
		e[n++] = (struct e820_entry){LAYOUT_HIGH_RAM_BASE, mem - low, E820_RAM};
	return n;
}

/* ---- shared pieces ---- */

static int put(struct vm *vm, uint64_t gpa, const void *p, size_t len, const char *what,
	       struct tv_err *err)
{
	if (gmem_write(&vm->mem, gpa, p, len) < 0)
		return tv_errf(err, "%s at 0x%" PRIx64 ": outside guest RAM", what, gpa);
	return 0;
}

/* GDT: null, null, 0x10 code, 0x18 data (the selectors both protocols use). */
static int gdt_write(struct vm *vm, bool long_mode, struct tv_err *err)
{
	uint64_t gdt[4] = {0, 0, long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL,
			   0x00cf93000000ffffULL};

	return put(vm, LAYOUT_GDT_ADDR, gdt, sizeof(gdt), "GDT", err);
}

/* Identity map of the first 4 GiB in 2 MiB pages. */
static int pagetables_write(struct vm *vm, struct tv_err *err)
{
	uint64_t t[6 * 512];
	uint64_t base = LAYOUT_PGTABLE_ADDR;

	memset(t, 0, sizeof(t));
	t[0] = (base + 0x1000) | 3;
	for (unsigned i = 0; i < 4; i++)
		t[512 + i] = (base + 0x2000 + i * 0x1000) | 3;
	for (unsigned i = 0; i < 4 * 512; i++)
		t[1024 + i] = ((uint64_t)i << 21) | 0x83;
	return put(vm, base, t, sizeof(t), "page tables", err);
}

static int cmdline_write(struct vm *vm, uint64_t max, struct tv_err *err)
{
	const char *s = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t len = strlen(s) + 1;

	if (len > max)
		return tv_errf(err, "command line: %zu bytes, this kernel takes at most %" PRIu64,
			       len - 1, max - 1);
	return put(vm, LAYOUT_CMDLINE_ADDR, s, len, "command line", err);
}

int boot_initrd_place(uint64_t low, uint64_t top, uint64_t size, const struct boot_range *avoid,
		      unsigned n, uint64_t *addr)
{
	uint64_t a;

	if (size == 0 || size > top)
		return -1;
	a = ALIGN_DOWN(top - size, 4096);
	/* Each pass moves a below the start of a range it overlaps, so after
	 * at most n moves it overlaps none or has run out of room. */
	for (unsigned pass = 0; pass <= n; pass++) {
		bool moved = false;

		if (a < low)
			return -1;
		for (unsigned i = 0; i < n; i++) {
			if (avoid[i].start >= avoid[i].end || a >= avoid[i].end ||
			    a + size <= avoid[i].start)
				continue;
			if (avoid[i].start < size)
				return -1;
			a = ALIGN_DOWN(avoid[i].start - size, 4096);
			moved = true;
		}
		if (!moved)
			return a >= low ? (*addr = a, 0) : -1;
	}
	return -1;
}

/* Puts the initrd as high in RAM as it goes below limit, clear of the
 * ranges the kernel occupies (what names them for messages). */
static int initrd_load(struct vm *vm, const struct boot_range *avoid, unsigned n,
		       const char *what, uint64_t limit, uint64_t *addr, uint64_t *size,
		       struct tv_err *err)
{
	struct kfile f;
	uint64_t top = MIN(MIN(vm->cfg.memory, LAYOUT_LOW_RAM_END), limit);
	char ram[32], isz[32];

	*addr = *size = 0;
	if (vm->cfg.initrd == NULL)
		return 0;
	if (kfile_open(&f, vm->cfg.initrd, "initrd", err) < 0)
		return -1;
	if (boot_initrd_place(LAYOUT_HIMEM_START, top, f.size, avoid, n, addr) < 0) {
		format_size(vm->cfg.memory, ram, sizeof(ram));
		format_size(f.size, isz, sizeof(isz));
		tv_errf(err,
			"initrd %s: %s (%zu bytes) does not fit in guest memory (%s) beside %s; "
			"give the VM more memory",
			f.path, isz, f.size, ram, what);
		kfile_close(&f);
		return -1;
	}
	*size = f.size;
	int rc = put(vm, *addr, f.data, f.size, "initrd", err);
	kfile_close(&f);
	return rc;
}

static int acpi_setup(struct vm *vm, uint64_t *rsdp, struct tv_err *err)
{
	struct acpi_config ac = {.ncpus = vm->cfg.cpus};

	return acpi_build(&ac, &vm->mem, rsdp, err);
}

/* The vmlinux inside a bzImage, extracted on the host (cached by content
 * hash when the VM has a cache directory). Returns 0 with *elf filled, 1 when
 * the bzImage must boot through its own entry, -1 on error. */
static int bzimage_extract(struct vm *vm, struct kfile *elf, struct tv_err *err)
{
	const char *path = vm->cfg.kernel;
	struct tv_err why;
	char *vmlinux = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (vm->cfg.kernel_cache != NULL)
		rc = kernel_extract(path, vm->cfg.kernel_cache, &vmlinux, &why);
	else
		rc = kernel_extract_mem(path, &buf, &len, &why);
	if (rc < 0) {
		tv_errf(err, "%s", why.msg);
		return -1;
	}
	if (rc > 0) {
		if (vm->cfg.verbose)
			fprintf(stderr, "termvisor: %s: booting the bzImage itself: %s\n", path,
				why.msg);
		return 1;
	}
	if (vmlinux != NULL) {
		rc = kfile_open(elf, vmlinux, "kernel", err);
		if (rc == 0)
			elf->path = path; /* messages name the file the user gave */
		free(vmlinux);
		return rc;
	}
	memset(elf, 0, sizeof(*elf));
	elf->fd = -1;
	elf->path = path;
	elf->data = buf;
	elf->size = len;
	elf->malloced = true;
	return 0;
}

/* ---- PVH ---- */

static int pvh_boot(struct vm *vm, const struct kfile *f, uint64_t rsdp, struct tv_err *err)
{
	struct elf_info info;
	struct e820_entry e820[E820_MAX];
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	struct hvm_memmap_entry mm[E820_MAX];
	uint64_t initrd, initrd_size;
	uint64_t modlist = LAYOUT_PVH_INFO_ADDR + 0x40;
	uint64_t memmap = LAYOUT_PVH_INFO_ADDR + 0x80;
	unsigned n;

	if (elf_load(vm, f, &info, err) < 0)
		return -1;
	struct boot_range kernel = {LAYOUT_HIMEM_START, ALIGN_UP(info.end, 4096)};
	if (initrd_load(vm, &kernel, 1, "the kernel", 1ULL << 32, &initrd, &initrd_size, err) < 0)
		return -1;
	if (cmdline_write(vm, LAYOUT_PVH_CMDLINE_MAX, err) < 0)
		return -1;
	n = e820_build(vm, e820);
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){e820[i].addr, e820[i].size, e820[i].type, 0};
	memset(&si, 0, sizeof(si));
	si.magic = HVM_START_MAGIC;
	si.version = 1;
	si.cmdline_paddr = LAYOUT_CMDLINE_ADDR;
	si.rsdp_paddr = rsdp;
	si.memmap_paddr = memmap;
	si.memmap_entries = n;
	if (initrd_size > 0) {
		mod = (struct hvm_modlist_entry){initrd, initrd_size, 0, 0};
		si.nr_modules = 1;
		si.modlist_paddr = modlist;
		if (put(vm, modlist, &mod, sizeof(mod), "PVH module list", err) < 0)
			return -1;
	}
	if (put(vm, memmap, mm, n * sizeof(mm[0]), "PVH memory map", err) < 0 ||
	    put(vm, LAYOUT_PVH_INFO_ADDR, &si, sizeof(si), "PVH start info", err) < 0 ||
	    gdt_write(vm, false, err) < 0)
		return -1;
	vm->boot = (struct boot_regs){
		.rip = info.pvh_entry, .rsp = LAYOUT_STACK_TOP, .rbx = LAYOUT_PVH_INFO_ADDR};
	return 0;
}

/* ---- bzImage 64-bit entry ---- */

static int zero_page_write(struct vm *vm, const struct kfile *f, const struct bzimage *bz,
			   uint64_t initrd, uint64_t initrd_size, uint64_t rsdp, struct tv_err *err)
{
	uint8_t zp[4096];
	struct e820_entry e820[E820_MAX];
	size_t hdr_end = MIN(0x202 + (size_t)f->data[0x201], (size_t)0x280);
	unsigned n;

	memset(zp, 0, sizeof(zp));
	memcpy(zp + 0x1f1, f->data + 0x1f1, hdr_end - 0x1f1);
	zp[0x210] = 0xff;		      /* type_of_loader: undefined */
	zp[0x211] |= 0x01 | 0x80;	      /* LOADED_HIGH, CAN_USE_HEAP */
	memcpy(zp + 0x1fa, "\xff\xff", 2);    /* vid_mode: normal */
	memcpy(zp + 0x224, "\x00\xfe", 2);    /* heap_end_ptr 0xfe00 */
	uint32_t v = LAYOUT_CMDLINE_ADDR;
	memcpy(zp + 0x228, &v, 4);
	v = (uint32_t)initrd;
	memcpy(zp + 0x218, &v, 4);
	v = (uint32_t)initrd_size;
	memcpy(zp + 0x21c, &v, 4);
	v = (uint32_t)(initrd >> 32);
	memcpy(zp + 0x0c0, &v, 4);
	v = (uint32_t)(initrd_size >> 32);
	memcpy(zp + 0x0c4, &v, 4);
	if (bz->version >= 0x20e)
		memcpy(zp + 0x070, &rsdp, 8);
	n = e820_build(vm, e820);
	zp[0x1e8] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = zp + 0x2d0 + i * 20;
		memcpy(p, &e820[i].addr, 8);
		memcpy(p + 8, &e820[i].size, 8);
		memcpy(p + 16, &e820[i].type, 4);
	}
	return put(vm, LAYOUT_ZERO_PAGE_ADDR, zp, sizeof(zp), "zero page", err);
}

static int bzimage_boot(struct vm *vm, const struct kfile *f, uint64_t rsdp, struct tv_err *err)
{
	struct bzimage bz;
	struct boot_range kernel[2];
	uint64_t run, kend, initrd, initrd_size;
	size_t pm_size;
	char ram[32], what[160];

	if (bzimage_parse(f, &bz, err) < 0)
		return -1;
	if (!(bz.xloadflags & 0x01))
		return tv_errf(err, "kernel %s: a 32-bit kernel (no 64-bit entry point)", f->path);
	pm_size = f->size - bz.setup_size;
	/* Loaded at 1 MiB, the kernel runs from its preferred address (16 MiB
	 * for Linux) when that is higher: a relocatable one moves there, and
	 * its decompressor copies itself to the top of [run, run + init_size)
	 * and decompresses into it. The initrd must stay clear of both. */
	run = MAX(bz.pref_address, LAYOUT_KERNEL_ADDR);
	kend = run + MAX((uint64_t)pm_size, bz.init_size);
	if (kend < run || kend > MIN(vm->cfg.memory, LAYOUT_LOW_RAM_END)) {
		format_size(vm->cfg.memory, ram, sizeof(ram));
		return tv_errf(err, "kernel %s: needs %" PRIu64 " MiB to start, guest memory is %s",
			       f->path, (uint64_t)((kend + MIB - 1) >> 20), ram);
	}
	if (put(vm, LAYOUT_KERNEL_ADDR, f->data + bz.setup_size, pm_size, "kernel", err) < 0)
		return -1;
	kernel[0] = (struct boot_range){LAYOUT_KERNEL_ADDR, ALIGN_UP(LAYOUT_KERNEL_ADDR + pm_size, 4096)};
	kernel[1] = (struct boot_range){run, ALIGN_UP(kend, 4096)};
	snprintf(what, sizeof(what),
		 "the kernel, which runs at %" PRIu64 "-%" PRIu64 " MiB (its preferred address "
		 "and init_size)",
		 run >> 20, (uint64_t)((kend + MIB - 1) >> 20));
	if (initrd_load(vm, kernel, 2, what, (uint64_t)bz.initrd_addr_max + 1, &initrd,
			&initrd_size, err) < 0)
		return -1;
	if (cmdline_write(vm, MIN((uint64_t)bz.cmdline_size + 1, LAYOUT_CMDLINE_MAX), err) < 0)
		return -1;
	if (zero_page_write(vm, f, &bz, initrd, initrd_size, rsdp, err) < 0 ||
	    gdt_write(vm, true, err) < 0 || pagetables_write(vm, err) < 0)
		return -1;
	vm->boot = (struct boot_regs){.rip = LAYOUT_KERNEL_ADDR + 0x200,
				      .rsp = LAYOUT_STACK_TOP,
				      .rsi = LAYOUT_ZERO_PAGE_ADDR,
				      .long_mode = true};
	return 0;
}

static int bzimage_load(struct vm *vm, const struct kfile *f, uint64_t rsdp, struct tv_err *err)
{
	struct bzimage bz;
	struct kfile elf;
	int rc;

	/* Check the header first: a truncated or foreign file gets the same
	 * message whichever way it would boot. */
	if (bzimage_parse(f, &bz, err) < 0)
		return -1;
	if (vm->cfg.bzimage_entry)
		return bzimage_boot(vm, f, rsdp, err);
	rc = bzimage_extract(vm, &elf, err);
	if (rc < 0)
		return -1;
	if (rc > 0)
		return bzimage_boot(vm, f, rsdp, err);
	rc = pvh_boot(vm, &elf, rsdp, err);
	kfile_close(&elf);
	return rc;
}

int boot_load(struct vm *vm, struct tv_err *err)
{
	struct kfile f;
	uint64_t rsdp = 0;
	int rc;

	if (kfile_open(&f, vm->cfg.kernel, "kernel", err) < 0)
		return -1;
	if (acpi_setup(vm, &rsdp, err) < 0) {
		kfile_close(&f);
		return -1;
	}
	if (is_elf(&f))
		rc = pvh_boot(vm, &f, rsdp, err);
	else if (is_bzimage(&f))
		rc = bzimage_load(vm, &f, rsdp, err);
	else
		rc = tv_errf(err, "kernel %s: not a kernel (expected a Linux bzImage or an ELF "
				  "with a PVH entry note)",
			     f.path);
	kfile_close(&f);
	return rc;
}
