/* ACPI as an operating system finds it: the RSDP (from the PVH start info and
 * by the BIOS-area scan, which must agree), every table's checksum, the MADT's
 * processors, the FADT's PM1 blocks (SCI_EN set: no SMI handshake), the PM
 * timer (its rate against the CMOS clock, which the host keeps), then \_S5 read from the DSDT's
 * AML and written to PM1a_CNT, which must power the VM off. */
#include "guest.h"

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool sum_ok(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s += p[i];
	return s == 0;
}

static bool sig_is(const uint8_t *p, const char *sig)
{
	for (int i = 0; i < 4; i++)
		if (p[i] != (uint8_t)sig[i])
			return false;
	return true;
}

static const uint8_t *rsdp_scan(void)
{
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = (const uint8_t *)a;
		if (sig_is(p, "RSD ") && sig_is(p + 4, "PTR ") && sum_ok(p, 20))
			return p;
	}
	return 0;
}

static const uint8_t *table(uint64_t gpa, const char *what, int *bad)
{
	const uint8_t *t = (const uint8_t *)(uintptr_t)gpa;

	if (!sum_ok(t, (uint32_t)rd(t + 4, 4))) {
		gprintf("bad checksum: %s\n", what);
		(*bad)++;
	}
	return t;
}

/* SLP_TYPa of \_S5: NameOp, "\_S5_" or "_S5_", PackageOp, PkgLength,
 * NumElements, then the first element (ZeroOp, OneOp or BytePrefix n). */
static int s5_type(const uint8_t *dsdt)
{
	uint32_t len = (uint32_t)rd(dsdt + 4, 4);

	for (uint32_t i = 36; i + 8 < len; i++) {
		const uint8_t *p = dsdt + i;
		if (!sig_is(p, "_S5_") || p[4] != 0x12)
			continue;
		p += 5;
		p += 1 + (*p >> 6); /* PkgLength */
		p++;		    /* NumElements */
		if (*p == 0x0a)
			return p[1];
		if (*p <= 1)
			return *p;
	}
	return -1;
}

static uint8_t rtc_seconds(void)
{
	outb(0x70, 0);
	return inb(0x71);
}

/* Returns right after the CMOS clock's seconds change. */
static void rtc_next_second(void)
{
	uint8_t s = rtc_seconds();

	while (rtc_seconds() == s)
		;
}

int guest_main(struct hvm_start_info *si)
{
	const uint8_t *rsdp = rsdp_scan(), *xsdt, *fadt = 0, *madt = 0, *dsdt;
	uint16_t pm1a_evt, pm1a_cnt, pm_tmr;
	uint32_t t0, prev, now;

	unsigned cpus = 0, backwards = 0;
	int bad = 0, s5;

	if (!rsdp || (uintptr_t)rsdp != si->rsdp_paddr) {
		gprintf("RSDP: scan found %x, start info says %x\n", (uint64_t)(uintptr_t)rsdp,
			si->rsdp_paddr);
		return 1;
	}
	if (!sum_ok(rsdp, 36) || rsdp[15] < 2)
		bad++;
	xsdt = table(rd(rsdp + 24, 8), "XSDT", &bad);
	for (uint32_t i = 36; i + 8 <= rd(xsdt + 4, 4); i += 8) {
		const uint8_t *t = table(rd(xsdt + i, 8), "table", &bad);
		gprintf("table %c%c%c%c\n", t[0], t[1], t[2], t[3]);
		if (sig_is(t, "FACP"))
			fadt = t;
		if (sig_is(t, "APIC"))
			madt = t;
	}
	if (!fadt || !madt)
		return 2;
	dsdt = table(rd(fadt + 140, 8), "DSDT", &bad);
	for (uint32_t i = 44; i < rd(madt + 4, 4); i += madt[i + 1])
		if (madt[i] == 0 && (rd(madt + i + 4, 4) & 1))
			cpus++;
	gprintf("tables %s\n", bad ? "BAD" : "ok");
	gprintf("cpus %u\n", cpus);
	gprintf("sci %u\n", (unsigned)rd(fadt + 46, 2));

	pm1a_evt = (uint16_t)rd(fadt + 56, 4);
	pm1a_cnt = (uint16_t)rd(fadt + 64, 4);
	pm_tmr = (uint16_t)rd(fadt + 76, 4);
	gprintf("sci_en %u\n", inw(pm1a_cnt) & 1u);

	/* PM1_EN keeps the fixed-event enables written to it (power button,
	 * RTC alarm), as ACPICA checks by reading them back. */
	outw((uint16_t)(pm1a_evt + 2), 1u << 8 | 1u << 10);
	gprintf("pm1_en %x\n", (unsigned)inw((uint16_t)(pm1a_evt + 2)));
	outw((uint16_t)(pm1a_evt + 2), 0);

	/* PM timer ticks in one second of the CMOS clock (the host's wall
	 * clock), counted between two seconds transitions; never backwards. */
	rtc_next_second();
	t0 = prev = inl(pm_tmr);
	rtc_next_second();
	now = inl(pm_tmr);
	gprintf("timer ticks per second %u\n", now - t0);
	for (int i = 0; i < 1000; i++) {
		now = inl(pm_tmr);
		if (now - prev > 0x80000000u)
			backwards++;
		prev = now;
	}
	gprintf("timer backwards %u\n", backwards);

	s5 = s5_type(dsdt);
	gprintf("s5 %d\n", s5);
	if (s5 < 0)
		return 3;
	outw(pm1a_cnt, (uint16_t)(s5 << 10 | 1 << 13));
	puts_serial("still running after S5\n");
	return 4;
}
