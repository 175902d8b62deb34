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
extern uint64_t pdpt[];
/* Filled entirely before use: kept out of .bss, which is cleared at boot. */
static uint64_t high_pd[4][512] __attribute__((aligned(4096), section(".noinit.pd")));
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

/* The low 4 GiB are mapped by the image's own tables; device registers above that (a
 * 64-bit BAR, say) get uncached 2 MiB pages here, up to 512 GiB. */
void map_phys(uint64_t addr, uint64_t len)
{
	int changed = 0;

	if (!len)
		len = 1;
	for (uint64_t g = addr >> 30; g <= (addr + len - 1) >> 30 && g < 512; g++) {
		if (pdpt[g] & 1)
			continue;
		if (high_pd_used == ARRAY_SIZE(high_pd))
			return;
		uint64_t *pd = high_pd[high_pd_used++];
		for (uint64_t i = 0; i < 512; i++)
			pd[i] = (g << 30) + (i << 21) + 0x9f;
		pdpt[g] = (uint64_t)pd | 0x7;
		changed = 1;
	}
	if (changed) {
		uint64_t cr3;
		__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	}
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
	banner();
	boot_tsc_prompt = rdtsc();
	shell();
}
