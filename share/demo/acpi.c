/* ACPI: finds the RSDP (from the PVH start info, else the BIOS areas), then reads the
 * MADT (CPUs, IOAPIC, ISA overrides), the FADT (power-off registers, DSDT) and MCFG. */
#include "demo.h"

struct acpi_info acpi;

struct sdt {
	char sig[4];
	uint32_t len;
	uint8_t rev, sum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static int checksum_ok(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += b[i];
	return s == 0;
}

/* Looks for "RSD PTR " on a 16-byte boundary.  The search is one `repne scasq`, not a
 * loop: at CPL 0 this code may run emulated, where one string instruction costs far less
 * than thousands of loop iterations. */
static uint64_t rsdp_scan(uint64_t from, uint64_t to)
{
	const uint64_t sig = 0x2052545020445352ULL; /* "RSD PTR " */
	const uint64_t *p = (const uint64_t *)from;
	size_t n = (to - from) / 8;

	while (n) {
		__asm__ volatile("repne scasq" : "+D"(p), "+c"(n) : "a"(sig) : "memory", "cc");
		uint64_t a = (uint64_t)(p - 1);
		if (p[-1] == sig && !(a & 15) && a + 20 <= to && checksum_ok((void *)a, 20))
			return a;
	}
	return 0;
}

static uint64_t rsdp_find(void)
{
	const volatile uint16_t *bda_ebda = (const volatile uint16_t *)0x40e;
	uint64_t ebda, a = 0;

	__asm__("" : "+r"(bda_ebda)); /* a real pointer, not a null-page constant */
	ebda = (uint64_t)*bda_ebda << 4;

	if (boot.rsdp)
		return boot.rsdp;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = rsdp_scan(ebda, ebda + 1024);
	return a ? a : rsdp_scan(0xe0000, 0x100000);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void madt_parse(const struct sdt *t)
{
	const uint8_t *p = (const uint8_t *)t + 44, *end = (const uint8_t *)t + t->len;

	acpi.lapic = rd32((const uint8_t *)t + 36);
	for (; p + 2 <= end && p[1] >= 2; p += p[1]) {
		switch (p[0]) {
		case 0: /* processor local APIC: enabled or online-capable */
			if ((rd32(p + 4) & 3) && acpi.ncpus < DEMO_MAX_CPUS)
				acpi.apic_ids[acpi.ncpus++] = p[3];
			break;
		case 1:
			if (!acpi.ioapic) {
				acpi.ioapic = rd32(p + 4);
				acpi.ioapic_gsi_base = rd32(p + 8);
			}
			break;
		case 2:				      /* interrupt source override */
			if (p[2] == 0 && p[3] < 16) { /* bus 0 (ISA), source IRQ */
				acpi.isa_gsi[p[3]] = rd32(p + 4);
				acpi.isa_flags[p[3]] = (uint16_t)(p[8] | p[9] << 8);
			}
			break;
		case 5:
			acpi.lapic = rd64(p + 4);
			break;
		}
	}
}

static void fadt_parse(const struct sdt *t)
{
	const uint8_t *f = (const uint8_t *)t;

	acpi.dsdt = rd32(f + 40);
	if (t->len >= 148 && rd64(f + 140))
		acpi.dsdt = rd64(f + 140);
	acpi.pm1a_cnt = (uint16_t)rd32(f + 64);
	acpi.sci_irq = (uint16_t)(f[46] | f[47] << 8);
	acpi.smi_cmd = rd32(f + 48);
	acpi.acpi_enable = f[52];
	acpi.pm1a_evt = (uint16_t)rd32(f + 56);
	acpi.pm1_evt_len = f[88];
	acpi.pm_tmr = (uint16_t)rd32(f + 76);
	acpi.pm_tmr_32bit = (rd32(f + 112) >> 8) & 1; /* TMR_VAL_EXT */
	if (!acpi.pm1a_cnt && t->len >= 184 && f[172] == 1)
		acpi.pm1a_cnt = (uint16_t)rd64(f + 176);
	if (t->len >= 256 && rd64(f + 248)) {
		acpi.sleep_ctl_space = f[244];
		acpi.sleep_ctl = rd64(f + 248);
	}
}

static void table_parse(uint64_t addr)
{
	const struct sdt *t = (const struct sdt *)addr;

	if (!addr || t->len < sizeof(*t) || t->len > (1 << 20) || !checksum_ok(t, t->len))
		return;
	if (memcmp(t->sig, "APIC", 4) == 0)
		madt_parse(t);
	else if (memcmp(t->sig, "FACP", 4) == 0)
		fadt_parse(t);
	else if (memcmp(t->sig, "MCFG", 4) == 0 && t->len >= 60) {
		const uint8_t *e = (const uint8_t *)t + 44;
		if ((e[8] | e[9]) == 0 && e[10] == 0) /* segment 0, from bus 0 */
			acpi.ecam = rd64(e);
	}
}

void acpi_init(void)
{
	uint64_t rsdp = rsdp_find();

	for (unsigned i = 0; i < 16; i++)
		acpi.isa_gsi[i] = i;
	acpi.ioapic = 0;
	if (rsdp) {
		const uint8_t *r = (const uint8_t *)rsdp;
		uint64_t root = r[15] >= 2 ? rd64(r + 24) : rd32(r + 16);
		unsigned esz = r[15] >= 2 && root ? 8 : 4;
		if (esz == 4)
			root = rd32(r + 16);
		const struct sdt *t = (const struct sdt *)root;
		if (root && checksum_ok(t, t->len)) {
			acpi.found = 1;
			memcpy(acpi.oem, t->oem, 6);
			for (const uint8_t *e = (const uint8_t *)t + 36;
			     e + esz <= (const uint8_t *)t + t->len; e += esz)
				table_parse(esz == 8 ? rd64(e) : rd32(e));
		}
	}
	if (!acpi.ioapic)
		acpi.ioapic = 0xfec00000;
	if (!acpi.found) {
		acpi.isa_gsi[0] = 2; /* the usual PC wiring of the PIT */
		acpi.pm1a_cnt = 0x604;
	}
	if (!acpi.ncpus) {
		/* No MADT: CPUID's count of logical processors in this package, with the
		 * APIC ids numbered from 0 as virtual machines number them. */
		uint32_t r[4], n = 1;
		cpuid(1, 0, r);
		if (r[3] & (1u << 28)) /* HTT: the count field is valid */
			n = (r[1] >> 16) & 0xff;
		if (n <= 1 || n > DEMO_MAX_CPUS) {
			acpi.apic_ids[0] = (uint8_t)(r[1] >> 24);
			n = 1;
		} else {
			for (uint32_t i = 0; i < n; i++)
				acpi.apic_ids[i] = (uint8_t)i;
		}
		acpi.ncpus = n;
	}
}

/* SLP_TYP for S5 from the DSDT's \_S5 package (NameOp "_S5_" PackageOp ...). */
int acpi_s5_type(void)
{
	const struct sdt *t = (const struct sdt *)acpi.dsdt;

	if (!acpi.dsdt || memcmp(t->sig, "DSDT", 4) != 0)
		return -1;
	const uint8_t *p = (const uint8_t *)t + sizeof(*t), *end = (const uint8_t *)t + t->len;
	for (; p + 12 < end; p++) {
		if (memcmp(p, "_S5_", 4) != 0 || p[4] != 0x12)
			continue;
		const uint8_t *q = p + 5;
		q += 1 + (*q >> 6); /* PkgLength */
		q++;		    /* NumElements */
		if (*q == 0x0a)	    /* BytePrefix */
			return q[1];
		if (*q == 0x00 || *q == 0x01) /* ZeroOp, OneOp */
			return *q;
		return -1;
	}
	return -1;
}

/* Switches the machine off: the hardware-reduced sleep control register or PM1a_CNT
 * with SLP_TYP for S5, then a debug-exit port; returns only when all of them failed. */
void acpi_poweroff(void)
{
	int typ = acpi_s5_type();

	if (typ < 0)
		typ = 5;
	if (acpi.sleep_ctl && acpi.sleep_ctl_space == 1) {
		outb((uint16_t)acpi.sleep_ctl, (uint8_t)((typ & 7) << 2 | 0x20));
	} else if (acpi.sleep_ctl && acpi.sleep_ctl_space == 0) {
		map_phys(acpi.sleep_ctl, 1);
		*(volatile uint8_t *)acpi.sleep_ctl = (uint8_t)((typ & 7) << 2 | 0x20);
	}
	if (acpi.pm1a_cnt)
		outw(acpi.pm1a_cnt, (uint16_t)((typ & 7) << 10 | 0x2000));
	sleep_ticks(DEMO_TICK_HZ / 5);
	outb(0xf4, 0); /* a debug-exit port, where the machine has one */
	sleep_ticks(DEMO_TICK_HZ / 5);
}

static volatile int power_button;

/* SCI: the power button (what a host's "stop" presses) asks for a clean power-off. */
void sci_irq(void)
{
	uint16_t sts = inw(acpi.pm1a_evt);

	outw(acpi.pm1a_evt, sts); /* status bits clear when written with ones */
	if (sts & 0x100)
		power_button = 1;
	lapic_eoi();
}

/* Enables the fixed power button event, switching to ACPI mode first where the firmware
 * left the machine in legacy mode. */
void acpi_power_button_init(void)
{
	if (!acpi.pm1a_evt || acpi.pm1_evt_len < 4 || acpi.sci_irq >= 16)
		return;
	if (acpi.smi_cmd && acpi.acpi_enable && acpi.pm1a_cnt && !(inw(acpi.pm1a_cnt) & 1)) {
		outb((uint16_t)acpi.smi_cmd, acpi.acpi_enable);
		for (unsigned i = 0; i < 1000 && !(inw(acpi.pm1a_cnt) & 1); i++)
			cpu_relax();
	}
	outw(acpi.pm1a_evt, 0x100);
	outw((uint16_t)(acpi.pm1a_evt + acpi.pm1_evt_len / 2), 0x100); /* PWRBTN_EN */
	irq_route_isa(acpi.sci_irq, VEC_SCI);
}

/* Called where the shell waits: acts on a power button press. */
void acpi_power_button_poll(void)
{
	if (!power_button)
		return;
	power_button = 0;
	timer_idle(0); /* the wait below needs the tick, which idles with the shell */
	printf("\n" C_YEL "power button pressed: powering off..." C_RESET "\n");
	acpi_poweroff();
	printf(C_RED "poweroff: the machine did not switch off" C_RESET "\n");
}
