/* From the PVH entry to the shell: reads the loader's hvm_start_info, brings up ACPI,
 * interrupts and the disk, and prints the banner.  The path is short on purpose: code at
 * CPL 0 may run emulated, a few million instructions a second. */
#include "demo.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct boot_info boot;
uint64_t boot_tsc_start, boot_tsc_prompt;
extern uint64_t pdpt[], pd[];
/* Filled entirely before use: kept out of .bss, which is cleared at boot.  Sixteen
 * tables map 16 GiB above 4 GiB: device registers and the RAM above the hole. */
static uint64_t high_pd[16][512] __attribute__((aligned(4096), section(".noinit.pd")));
static unsigned high_pd_used;

static void boot_parse(uint32_t paddr)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)(uint64_t)paddr;

	if (!paddr || si->magic != HVM_START_MAGIC)
		return;
	if (si->cmdline_paddr) {
		const char *c = (const char *)si->cmdline_paddr;
		size_t n = 0;
		while (n < sizeof(boot.cmdline) - 1 && c[n])
			n++;
		memcpy(boot.cmdline, c, n);
	}
	boot.rsdp = si->rsdp_paddr;
	if (si->version < 1 || !si->memmap_paddr)
		return;
	const struct hvm_memmap_entry *e = (const struct hvm_memmap_entry *)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries && boot.nmem < ARRAY_SIZE(boot.mem); i++)
		boot.mem[boot.nmem++] = (struct mem_range){e[i].addr, e[i].size, e[i].type};
}

uint64_t boot_ram_bytes(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == 1)
			sum += boot.mem[i].size;
	return sum;
}

/* Whether [addr, addr+len) is usable RAM in the loader's map.  Without a map, the
 * conventional memory below 640 KiB is assumed. */
int boot_is_ram(uint64_t addr, uint64_t len)
{
	if (!boot.nmem)
		return addr >= 0x1000 && addr + len <= 0x9f000;
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *m = &boot.mem[i];
		if (m->type == 1 && addr >= m->addr && addr + len <= m->addr + m->size)
			return 1;
	}
	return 0;
}

static void reload_cr3(void)
{
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

/* Maps [addr, addr+len) above 4 GiB in 2 MiB pages with the given flags, a GiB at a
 * time, up to 512 GiB; a GiB already mapped is left as it is.  Returns whether the
 * whole range is mapped (the tables may run out). */
static int map_high(uint64_t addr, uint64_t len, uint64_t flags)
{
	int changed = 0, all = 1;

	if (!len)
		len = 1;
	for (uint64_t g = addr >> 30; g <= (addr + len - 1) >> 30; g++) {
		if (g >= 512 || (!(pdpt[g] & 1) && high_pd_used == ARRAY_SIZE(high_pd))) {
			all = 0;
			break;
		}
		if (pdpt[g] & 1)
			continue;
		uint64_t *pd_g = high_pd[high_pd_used++];
		for (uint64_t i = 0; i < 512; i++)
			pd_g[i] = (g << 30) + (i << 21) + flags;
		pdpt[g] = (uint64_t)pd_g | 0x7;
		changed = 1;
	}
	if (changed)
		reload_cr3();
	return all;
}

/* The low 4 GiB are mapped by the image's own tables; device registers above that (a
 * 64-bit BAR, say) get uncached 2 MiB pages here. */
void map_phys(uint64_t addr, uint64_t len)
{
	map_high(addr, len, 0x9f);
}

/* RAM for the CPL 3 work (`dirty`): cached, user-accessible 2 MiB pages.  Above 4 GiB
 * they are new; below it, the image maps the top GiB uncached for the devices, so the
 * 2 MiB pages there that the memory map says are wholly RAM are made cached. */
int map_ram(uint64_t addr, uint64_t len)
{
	int changed = 0;

	for (uint64_t a = addr & ~0x1fffffULL; a < addr + len && a < (4ULL << 30); a += 2 << 20) {
		uint64_t *e = &pd[a >> 21];
		if ((*e & 0x18) && boot_is_ram(a, 2 << 20)) {
			*e = a | 0x87;
			changed = 1;
		}
	}
	if (changed)
		reload_cr3();
	if (addr + len <= (4ULL << 30))
		return 1;
	uint64_t from = addr > (4ULL << 30) ? addr : 4ULL << 30;
	return map_high(from, addr + len - from, 0x87);
}

static void banner(void)
{
	uint64_t mib = boot_ram_bytes() >> 20;

	printf("\n" C_CYAN "  +------------------------------+\n"
	       "  |" C_RESET C_BOLD "    termvisor demo OS  1.0    " C_CYAN "|\n"
	       "  +------------------------------+" C_RESET "\n");
	printf("  %u vCPU%s, ", acpi.ncpus, acpi.ncpus == 1 ? "" : "s");
	if (mib)
		printf("%lu MiB RAM, ", mib);
	if (ndisks && disks[0].present)
		printf("virtio disk %lu MiB%s\n", disks[0].sectors >> 11,
		       ndisks > 1 ? " (and more: see info)" : "");
	else
		printf("no disk\n");
	printf("  Type " C_BOLD "help" C_RESET " for the commands.\n\n");
}

void shell(void);

void kmain(uint32_t start_info)
{
	boot_tsc_start = rdtsc();
	console_init();
	boot_parse(start_info);
	acpi_init();
	irq_init();
	acpi_power_button_init();
	vblk_probe();
	vnet_probe();
	vcon_probe();
	banner();
	boot_tsc_prompt = rdtsc();
	shell();
}
