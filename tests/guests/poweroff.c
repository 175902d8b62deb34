/* ACPI power-off the way an OS does it: RSDP (from the PVH start info) ->
 * XSDT -> FADT for the PM1a control block, the DSDT's \_S5 package for the
 * sleep type, then SLP_TYP | SLP_EN. Checksums are verified on the way. */
#include "guest.h"

static int sum_ok(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s += p[i];
	return s == 0;
}

static int sig_is(const uint8_t *p, const char *sig)
{
	for (int i = 0; i < 4; i++)
		if (p[i] != (uint8_t)sig[i])
			return 0;
	return 1;
}

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* The first element of the \_S5 package: a ByteConst, Zero or One. */
static int s5_type(const uint8_t *dsdt, uint32_t len)
{
	for (uint32_t i = 36; i + 8 < len; i++) {
		if (!sig_is(dsdt + i, "_S5_") || dsdt[i + 4] != 0x12)
			continue;
		const uint8_t *p = dsdt + i + 5;
		p += (*p >> 6) + 1; /* PkgLength */
		p++;		    /* NumElements */
		if (*p == 0x0a)
			return p[1];
		if (*p == 0x00 || *p == 0x01)
			return *p;
		return -1;
	}
	return -1;
}

int guest_main(struct hvm_start_info *si)
{
	const uint8_t *rsdp = (const uint8_t *)(uintptr_t)si->rsdp_paddr;
	const uint8_t *xsdt, *fadt = 0, *dsdt;

	if (rsdp == 0 || !sig_is(rsdp, "RSD ") || !sum_ok(rsdp, 20) || !sum_ok(rsdp, 36)) {
		puts_serial("poweroff: no valid RSDP\n");
		return 1;
	}
	xsdt = (const uint8_t *)(uintptr_t)rd64(rsdp + 24);
	if (!sig_is(xsdt, "XSDT") || !sum_ok(xsdt, rd32(xsdt + 4))) {
		puts_serial("poweroff: bad XSDT\n");
		return 2;
	}
	for (uint32_t i = 36; i < rd32(xsdt + 4); i += 8) {
		const uint8_t *t = (const uint8_t *)(uintptr_t)rd64(xsdt + i);
		if (sig_is(t, "FACP"))
			fadt = t;
	}
	if (fadt == 0 || !sum_ok(fadt, rd32(fadt + 4))) {
		puts_serial("poweroff: no valid FADT\n");
		return 3;
	}
	dsdt = (const uint8_t *)(uintptr_t)(rd32(fadt + 4) >= 148 && rd64(fadt + 140)
						    ? rd64(fadt + 140)
						    : rd32(fadt + 40));
	if (!sig_is(dsdt, "DSDT") || !sum_ok(dsdt, rd32(dsdt + 4))) {
		puts_serial("poweroff: bad DSDT\n");
		return 4;
	}
	uint16_t pm1a_cnt = (uint16_t)rd32(fadt + 64);
	int typ = s5_type(dsdt, rd32(dsdt + 4));
	gprintf("poweroff: PM1a_CNT %x, S5 type %d\n", pm1a_cnt, typ);
	if (typ < 0)
		return 5;
	outw(pm1a_cnt, (uint16_t)(typ << 10 | 1 << 13));
	for (int i = 0; i < 1000; i++)
		pause();
	puts_serial("poweroff: still running\n");
	return 7;
}
