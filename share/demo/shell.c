/* The shell: a table of commands, each a short function. */
#include "demo.h"

#define PROMPT	    C_GREEN "demo" C_RESET "$ "
#define NOTE_MAGIC  "TVNOTE01"
#define NOTE_SECTOR 0

struct command {
	const char *name, *args, *help;
	void (*run)(const char *arg);
};

static const struct command commands[];

static void cmd_help(const char *arg)
{
	printf(C_BOLD "commands:" C_RESET "\n");
	for (const struct command *c = commands; c->name; c++) {
		char head[32];
		snprintf(head, sizeof(head), "%s%s%s", c->name, *c->args ? " " : "", c->args);
		printf("  " C_CYAN "%-18s" C_RESET " %s\n", head, c->help);
	}
	printf(C_DIM "  keys: Tab completes, left/right, up/down history, backspace, Ctrl-U,"
		     " Ctrl-C, Ctrl-L" C_RESET "\n");
}

static void cpu_brand(char out[49])
{
	uint32_t r[4];

	out[0] = 0;
	cpuid(0x80000000, 0, r);
	if (r[0] >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			cpuid(0x80000002 + i, 0, r);
			memcpy(out + 16 * i, r, 16);
		}
		out[48] = 0;
		while (*out == ' ')
			memmove(out, out + 1, strlen(out));
	}
	if (!*out) { /* no brand string: the vendor's name */
		cpuid(0, 0, r);
		memcpy(out, &r[1], 4);
		memcpy(out + 4, &r[3], 4);
		memcpy(out + 8, &r[2], 4);
		out[12] = 0;
	}
}

static void cmd_info(const char *arg)
{
	char brand[49];
	uint64_t rate = tsc_per_ms_wait();

	cpu_brand(brand);
	printf(C_BOLD "vCPUs:" C_RESET "   %u (APIC ids", acpi.ncpus);
	for (unsigned i = 0; i < acpi.ncpus; i++)
		printf(" %u", acpi.apic_ids[i]);
	printf(", %s)\n", acpi.found ? "from the ACPI MADT" : "from CPUID");
	printf(C_BOLD "CPU:" C_RESET "     %s", brand);
	if (rate)
		printf(", TSC %lu MHz", rate / 1000);
	printf("\n" C_BOLD "memory:" C_RESET "  ");
	if (boot.nmem)
		printf("%lu MiB RAM (%u ranges in the PVH memory map)\n", boot_ram_bytes() >> 20,
		       boot.nmem);
	else
		printf("unknown (the loader gave no memory map)\n");
	if (!ndisks)
		printf(C_BOLD "disk:" C_RESET
			      "    none (no virtio-blk device on PCI bus 0, via %s)\n",
		       pci_method());
	for (unsigned i = 0; i < ndisks; i++) {
		const struct vblk *b = &disks[i];
		printf(C_BOLD "disk:" C_RESET "    virtio-blk at PCI %02x:%02x.%u", b->pci.bus,
		       b->pci.dev, b->pci.fn);
		if (b->present)
			printf(", %lu MiB (%lu sectors), %s%s\n", b->sectors >> 11, b->sectors,
			       b->msix ? "MSI-X" : "polled", i == 0 ? ", keeps the notes" : "");
		else
			printf(" unusable: %s\n", b->error);
	}
	if (nic.present)
		printf(C_BOLD "network:" C_RESET " virtio-net at PCI %02x:%02x.%u, MAC "
		       "%02x:%02x:%02x:%02x:%02x:%02x (the net command)\n",
		       nic.pci.bus, nic.pci.dev, nic.pci.fn, nic.mac[0], nic.mac[1], nic.mac[2],
		       nic.mac[3], nic.mac[4], nic.mac[5]);
	else if (nic.error)
		printf(C_BOLD "network:" C_RESET " virtio-net at PCI %02x:%02x.%u unusable: %s\n",
		       nic.pci.bus, nic.pci.dev, nic.pci.fn, nic.error);
	if (acpi.found)
		printf(C_BOLD "ACPI:" C_RESET "    OEM %s, IOAPIC %lx, PM1a_CNT %x%s\n", acpi.oem,
		       acpi.ioapic, acpi.pm1a_cnt,
		       acpi.sleep_ctl ? ", sleep control register" : "");
	else
		printf(C_BOLD "ACPI:" C_RESET "    no tables found\n");
	printf(C_BOLD "cmdline:" C_RESET " %s\n", boot.cmdline[0] ? boot.cmdline : "(empty)");
	printf(C_BOLD "console:" C_RESET " %s\n",
	       vcon_active() ? "hvc0 (virtio-console, 4 KiB a trip to the host)"
			     : "ttyS0 (8250 UART, a trip to the host per byte)");
	if (rate)
		printf(C_BOLD "boot:" C_RESET
			      "    %lu ms from the first instruction to the prompt\n",
		       (boot_tsc_prompt - boot_tsc_start) / rate);
}

static void cmd_uptime(const char *arg)
{
	uint64_t ms = uptime_ms(), s = ms / 1000;

	printf("up %lu:%02lu:%02lu.%02lu (%s)\n", s / 3600, s / 60 % 60, s % 60, ms % 1000 / 10,
	       tsc_per_ms() ? "TSC, calibrated against the PIT" : "PIT ticks");
}

static unsigned cmos_read(unsigned reg)
{
	outb(0x70, (uint8_t)reg);
	return inb(0x71);
}

static unsigned bcd(unsigned v, int binary)
{
	return binary ? v : (v >> 4) * 10 + (v & 15);
}

/* Wall-clock time from the CMOS RTC (read twice until stable: an update may be under
 * way between the reads). */
static void cmd_date(const char *arg)
{
	unsigned t[7], u[7], tries = 0;
	static const unsigned regs[7] = {0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00};

	if (cmos_read(0x0a) == 0xff) {
		printf("no CMOS RTC on this machine\n");
		return;
	}
	do {
		while ((cmos_read(0x0a) & 0x80) && tries++ < 1000)
			cpu_relax();
		for (unsigned i = 0; i < 7; i++)
			t[i] = cmos_read(regs[i]);
		for (unsigned i = 0; i < 7; i++)
			u[i] = cmos_read(regs[i]);
	} while (memcmp(t, u, sizeof(t)) != 0 && tries++ < 1000);
	unsigned b = cmos_read(0x0b), binary = b & 4, hour = t[4] & 0x7f;
	hour = bcd(hour, binary);
	if (!(b & 2) && (t[4] & 0x80)) /* 12-hour clock, PM */
		hour = hour % 12 + 12;
	unsigned century = bcd(t[0], binary);
	if (century < 19 || century > 99)
		century = 20;
	printf("%02u%02u-%02u-%02u %02u:%02u:%02u (CMOS RTC)\n", century, bcd(t[1], binary),
	       bcd(t[2], binary), bcd(t[3], binary), hour, bcd(t[5], binary), bcd(t[6], binary));
}

static void cmd_clear(const char *arg)
{
	console_puts("\033[H\033[2J");
}

/* Counts ten times a second, rewriting one line, until a key arrives. */
static void cmd_count(const char *arg)
{
	uint64_t n = 0;

	printf("counting; press any key to stop\n");
	for (;;) {
		printf("\r" C_YEL "count: %lu" C_RESET "\033[K", n);
		for (uint64_t until = ticks + DEMO_TICK_HZ / 10; ticks < until;) {
			if (console_trygetc() >= 0) {
				printf("\nstopped at %lu\n", n);
				return;
			}
			irq_wait();
		}
		n++;
	}
}

static int note_ready(void)
{
	if (ndisks && disks[0].present)
		return 1;
	if (ndisks)
		printf(C_RED "note: the virtio disk is unusable: %s" C_RESET "\n", disks[0].error);
	else
		printf(C_RED "note: no disk present" C_RESET
			     " (start the VM with a virtio disk to keep notes)\n");
	return 0;
}

/* Whether the note's sector is blank or already a note: anything else (a partition
 * table, a file system) is the user's data, never overwritten. */
static int note_sector_ours(void)
{
	uint8_t sec[512];
	int rc = vblk_rw(&disks[0], 0, NOTE_SECTOR, sec);

	if (rc) {
		printf(C_RED "note: read failed (%d)" C_RESET "\n", rc);
		return 0;
	}
	if (memcmp(sec, NOTE_MAGIC, 8) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(sec); i++) {
		if (sec[i]) {
			printf(C_RED
			       "note: sector %u of this disk holds other data (a partition table "
			       "or a file system?): not overwriting it" C_RESET "\n",
			       NOTE_SECTOR);
			return 0;
		}
	}
	return 1;
}

static void note_set(const char *text)
{
	uint8_t sec[512] = {0};
	size_t n = strlen(text);

	if (!note_sector_ours())
		return;
	if (n > 512 - 12)
		n = 512 - 12;
	memcpy(sec, NOTE_MAGIC, 8);
	memcpy(sec + 8, &(uint32_t){(uint32_t)n}, 4);
	memcpy(sec + 12, text, n);
	int rc = vblk_rw(&disks[0], 1, NOTE_SECTOR, sec);
	if (rc)
		printf(C_RED "note: write failed (%d)" C_RESET "\n", rc);
	else
		printf("note saved (%zu bytes)\n", n);
}

static void note_get(void)
{
	uint8_t sec[512];
	uint32_t n;
	int rc = vblk_rw(&disks[0], 0, NOTE_SECTOR, sec);

	if (rc) {
		printf(C_RED "note: read failed (%d)" C_RESET "\n", rc);
		return;
	}
	memcpy(&n, sec + 8, 4);
	if (memcmp(sec, NOTE_MAGIC, 8) != 0 || n > 512 - 12) {
		printf("(no note stored)\n");
		return;
	}
	printf("note: ");
	console_write((const char *)sec + 12, n);
	printf("\n");
}

static void cmd_note(const char *arg)
{
	if (strncmp(arg, "set ", 4) == 0 || strcmp(arg, "set") == 0) {
		if (note_ready())
			note_set(arg[3] ? arg + 4 : "");
	} else if (strcmp(arg, "get") == 0) {
		if (note_ready())
			note_get();
	} else {
		printf("usage: note set TEXT | note get\n");
	}
}

/* fill N: N MiB of a pattern each sector's number sets, from 1 MiB into the
 * disk on (past the note), 64 KiB a request, each waited for as long as the
 * host takes (it may pause the machine on a full disk and go on later);
 * "fill check N" reads them back. */
#define FILL_FIRST 2048
#define FILL_CHUNK 65536
static uint8_t fill_buf[FILL_CHUNK] __attribute__((aligned(4096)));

static uint64_t fill_word(uint64_t sector, uint32_t i)
{
	return (sector + i / 64) * 0x9e3779b97f4a7c15ULL + i % 64;
}

static void cmd_fill(const char *arg)
{
	int check = strncmp(arg, "check ", 6) == 0;
	uint64_t mib = 0, sector = FILL_FIRST;
	uint64_t *w = (uint64_t *)fill_buf;

	for (const char *p = check ? arg + 6 : arg; *p >= '0' && *p <= '9' && mib <= 4096; p++)
		mib = mib * 10 + (uint64_t)(*p - '0');
	if (!mib || mib > 4096) {
		printf("usage: fill N | fill check N   (N MiB, written from 1 MiB on)\n");
		return;
	}
	if (!note_ready())
		return;
	for (uint64_t done = 0; done < mib << 20; done += FILL_CHUNK, sector += FILL_CHUNK / 512) {
		int rc;

		for (uint32_t i = 0; !check && i < FILL_CHUNK / 8; i++)
			w[i] = fill_word(sector, i);
		rc = vblk_rw_direct(&disks[0], !check, sector, fill_buf, FILL_CHUNK, 0);
		if (rc) {
			printf(C_RED "fill: %s failed at %lu KiB (%d)" C_RESET "\n",
			       check ? "read" : "write", done >> 10, rc);
			return;
		}
		for (uint32_t i = 0; check && i < FILL_CHUNK / 8; i++) {
			if (w[i] != fill_word(sector, i)) {
				printf(C_RED "fill: sector %lu does not read back" C_RESET "\n",
				       sector + i / 64);
				return;
			}
		}
	}
	printf(check ? "fill: %lu MiB read back intact\n" : "fill: wrote %lu MiB\n", mib);
}

static void cmd_cpus(const char *arg)
{
	smp_run();
}

/* `dirty SIZE|N%`: gives SIZE bytes of RAM (or N% of the RAM it may write) new
 * contents, page by page, so that a snapshot taken after it has that much changed
 * memory to save.  It writes the RAM from the first 2 MiB boundary past this guest's
 * own image upwards, always the same pages for the same size, with a pattern that
 * changes at every run and differs from page to page (no page is zero or a copy of
 * another).  The loop runs at CPL 3, where heavy work runs natively. */
extern char __image_end[], ustacks[];

struct dirty_job {
	uint64_t base[ARRAY_SIZE(boot.mem)], len[ARRAY_SIZE(boot.mem)];
	unsigned n;
	uint64_t pattern;
};
static struct dirty_job dirty_job;
static uint64_t dirty_runs;

static uint64_t user_dirty(uint64_t arg)
{
	const struct dirty_job *j = (const struct dirty_job *)arg;
	uint64_t seed = j->pattern * 0x9e3779b97f4a7c15ULL;

	for (unsigned r = 0; r < j->n; r++) {
		for (uint64_t a = j->base[r]; a < j->base[r] + j->len[r]; a += 4096) {
			volatile uint64_t *p = (volatile uint64_t *)a;
			uint64_t v = seed ^ a;
			for (unsigned i = 0; i < 512; i++)
				p[i] = v + i;
		}
	}
	return 0;
}

/* The RAM `dirty` may write, as page-aligned ranges from the first 2 MiB boundary
 * past the image; returns its size. */
static uint64_t dirty_ranges(struct dirty_job *j)
{
	uint64_t floor = ((uint64_t)__image_end + (2 << 20) - 1) & ~((2ULL << 20) - 1), sum = 0;

	j->n = 0;
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *m = &boot.mem[i];
		uint64_t lo = m->addr < floor ? floor : m->addr, hi = m->addr + m->size;
		lo = (lo + 4095) & ~4095ULL;
		hi &= ~4095ULL;
		if (m->type != 1 || hi <= lo)
			continue;
		j->base[j->n] = lo;
		j->len[j->n++] = hi - lo;
		sum += hi - lo;
	}
	return sum;
}

/* SIZE[K|M|G] or N%; 0 when it reads as neither. */
static uint64_t dirty_size(const char *s, uint64_t avail)
{
	uint64_t n = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (~0ULL >> 4))
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return 0;
	if (*p == '%')
		return p[1] || n > 100 ? 0 : avail / 100 * n + avail % 100 * n / 100;
	unsigned shift = *p == 'k' || *p == 'K'	  ? 10
			 : *p == 'm' || *p == 'M' ? 20
			 : *p == 'g' || *p == 'G' ? 30
						  : 0;
	if (shift)
		p++;
	return *p || n > (~0ULL >> shift) ? 0 : n << shift;
}

static void cmd_dirty(const char *arg)
{
	struct dirty_job *j = &dirty_job;
	uint64_t avail = dirty_ranges(j), want = dirty_size(arg, avail), rate, t0, t1;

	if (!boot.nmem) {
		printf(C_RED "dirty: the loader gave no memory map" C_RESET "\n");
		return;
	}
	if (!want) {
		printf("usage: dirty SIZE[K|M|G] | dirty N%%   (this VM may write %lu MiB)\n",
		       avail >> 20);
		return;
	}
	want = (want + 4095) & ~4095ULL;
	if (want > avail) {
		printf(C_YEL "dirty: %lu MiB asked, %lu MiB can be written (the RAM past this "
			     "guest's own image)" C_RESET "\n",
		       want >> 20, avail >> 20);
		want = avail;
	}
	/* Keep the ranges' first `want` bytes, each mapped. */
	uint64_t left = want;
	unsigned n = 0;
	for (; n < j->n && left; n++) {
		if (j->len[n] > left)
			j->len[n] = left;
		left -= j->len[n];
		if (!map_ram(j->base[n], j->len[n])) {
			printf(C_RED "dirty: no page tables left to map RAM at 0x%lx" C_RESET "\n",
			       j->base[n]);
			return;
		}
	}
	j->n = n;
	j->pattern = ++dirty_runs;
	rate = tsc_per_ms_wait();
	t0 = rdtsc();
	user_run(user_dirty, (uint64_t)j, ustacks + 4096, cpu_user_slot(0));
	t1 = rdtsc();
	if (want >= 1 << 20)
		printf("dirtied %lu MiB", want >> 20);
	else
		printf("dirtied %lu KiB", want >> 10);
	printf(" (%lu pages, 0x%lx-0x%lx) with pattern %lu", want >> 12, j->base[0],
	       j->base[n - 1] + j->len[n - 1], j->pattern);
	if (rate)
		printf(" in %lu ms", (t1 - t0) / rate);
	printf("\n");
}

static void cmd_reboot(const char *arg)
{
	printf("rebooting...\n");
	outb(0x64, 0xfe); /* pulse the reset line through the i8042 */
	sleep_ticks(DEMO_TICK_HZ / 2);
	printf(C_RED "reboot: the i8042 reset did not take effect" C_RESET "\n");
}

static void cmd_poweroff(const char *arg)
{
	printf("powering off...\n");
	acpi_poweroff();
	printf(C_RED "poweroff: the machine did not switch off (no ACPI power-off path)" C_RESET
		     "\n");
}

/* clang-format off */
static const struct command commands[] = {
	{"help", "", "this list", cmd_help},
	{"info", "", "vCPUs, memory, disk, ACPI, command line", cmd_info},
	{"uptime", "", "time since boot, from the timer", cmd_uptime},
	{"date", "", "wall-clock time from the RTC", cmd_date},
	{"count", "", "a running counter until a key is pressed", cmd_count},
	{"note", "set TEXT|get", "keep a line of text on the virtio disk", cmd_note},
	{"fill", "[check] N", "write N MiB of a pattern to the disk (or read it back)", cmd_fill},
	{"cpus", "", "run work at CPL 3 on every vCPU", cmd_cpus},
	{"dirty", "SIZE|N%", "write a new pattern over that much RAM", cmd_dirty},
	{"stress", "MODE", "console, spin, io or all: load until a key", cmd_stress},
	{"net", "SUB ...", "the network: dhcp, ip, ping, send, recv, *-echo", cmd_net},
	{"reboot", "", "reset the machine", cmd_reboot},
	{"poweroff", "", "switch the machine off (ACPI S5)", cmd_poweroff},
	{"clear", "", "clear the screen", cmd_clear},
	{NULL, NULL, NULL, NULL},
};
/* clang-format on */

static void shell_run(char *line)
{
	char *arg;

	while (*line == ' ')
		line++;
	if (!*line)
		return;
	for (arg = line; *arg && *arg != ' '; arg++)
		;
	if (*arg)
		*arg++ = 0;
	while (*arg == ' ')
		arg++;
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, line) == 0) {
			c->run(arg);
			return;
		}
	}
	printf(C_RED "%s: unknown command" C_RESET " (try " C_BOLD "help" C_RESET ")\n", line);
}

/* The command names that start with the first len bytes of line: for Tab. */
const char *shell_complete(const char *line, size_t len, unsigned *matches)
{
	const char *found = NULL;

	*matches = 0;
	for (const struct command *c = commands; c->name; c++) {
		if (strncmp(c->name, line, len) == 0) {
			found = c->name;
			(*matches)++;
		}
	}
	return found;
}

void shell_list_matches(const char *line, size_t len)
{
	for (const struct command *c = commands; c->name; c++)
		if (strncmp(c->name, line, len) == 0)
			printf("%s  ", c->name);
	console_puts("\n");
}

void shell(void)
{
	char line[128];

	for (;;)
		if (readline(PROMPT, line, sizeof(line)) > 0)
			shell_run(line);
}
