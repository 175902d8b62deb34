/* ACPI tables as a kernel reads them: signatures, lengths, checksums, the
 * pointers between tables, the MADT per vCPU count, and the DSDT's AML
 * parsed back (\_S5, the PCI host bridge, its _CRS windows and _PRT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vm/acpi.h"
#include "vm/layout.h"

#define RAM_SIZE (1u << 20)

struct fixture {
	uint8_t *ram;
	struct guest_mem mem;
	uint64_t rsdp;
};

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

static int build(struct fixture *f, unsigned ncpus, const uint32_t *ids)
{
	struct acpi_config cfg = {.ncpus = ncpus, .apic_ids = ids};
	struct tv_err err = {{0}};

	memset(f->ram, 0, RAM_SIZE);
	return acpi_build(&cfg, &f->mem, &f->rsdp, &err);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->ram = calloc(1, RAM_SIZE);
	gmem_add_region(&f->mem, 0, RAM_SIZE, f->ram);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->ram);
	free(f);
	return 0;
}

/* A table at gpa: its signature, a sane length inside the ACPI area and a
 * zero byte sum. Returns its host pointer. */
static const uint8_t *table_at(struct fixture *f, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	assert_true(gpa >= LAYOUT_ACPI_BASE && gpa + 36 <= LAYOUT_ACPI_BASE + LAYOUT_ACPI_SIZE);
	t = f->ram + gpa;
	assert_memory_equal(t, sig, 4);
	len = (uint32_t)rd(t + 4, 4);
	assert_true(len >= 36);
	assert_true(gpa + len <= LAYOUT_ACPI_BASE + LAYOUT_ACPI_SIZE);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, ACPI_OEM_ID, 6);
	return t;
}

/* The XSDT entry with this signature, or NULL. */
static const uint8_t *xsdt_find(struct fixture *f, const char *sig)
{
	const uint8_t *x = f->ram + rd(f->ram + f->rsdp + 24, 8);
	uint32_t len = (uint32_t)rd(x + 4, 4);

	for (uint32_t i = 36; i + 8 <= len; i += 8) {
		uint64_t gpa = rd(x + i, 8);
		if (memcmp(f->ram + gpa, sig, 4) == 0)
			return table_at(f, gpa, sig);
	}
	return NULL;
}

static void test_rsdp_xsdt(void **state)
{
	struct fixture *f = *state;
	const uint8_t *r, *x;

	assert_int_equal(build(f, 2, NULL), 0);
	/* Linux finds it by scanning 0xE0000-0xFFFFF on 16-byte boundaries too. */
	assert_int_equal(f->rsdp % 16, 0);
	assert_true(f->rsdp >= 0xE0000 && f->rsdp < 0x100000);
	r = f->ram + f->rsdp;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(rd(r + 20, 4), 36);
	assert_int_equal(sum(r, 36), 0);
	x = table_at(f, rd(r + 24, 8), "XSDT");
	/* Every table is reachable from the XSDT: FADT, MADT, MCFG. */
	assert_int_equal(rd(x + 4, 4), 36 + 3 * 8);
	assert_non_null(xsdt_find(f, "FACP"));
	assert_non_null(xsdt_find(f, "APIC"));
	assert_non_null(xsdt_find(f, "MCFG"));
}

static void test_fadt(void **state)
{
	struct fixture *f = *state;
	const uint8_t *t, *facs;
	uint32_t flags;

	assert_int_equal(build(f, 1, NULL), 0);
	t = xsdt_find(f, "FACP");
	assert_non_null(t);
	assert_int_equal(rd(t + 4, 4), 276);
	assert_int_equal(t[8], 6);
	/* DSDT through both fields, the FACS through X_FIRMWARE_CTRL only. */
	assert_int_equal(rd(t + 40, 4), rd(t + 140, 8));
	table_at(f, rd(t + 140, 8), "DSDT");
	assert_int_equal(rd(t + 36, 4), 0);
	assert_int_equal(rd(t + 132, 8) % 64, 0);
	facs = f->ram + rd(t + 132, 8);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(rd(facs + 4, 4), 64);

	assert_int_equal(rd(t + 46, 2), LAYOUT_ACPI_SCI_IRQ);
	assert_int_equal(rd(t + 48, 4), 0); /* no SMI: always in ACPI mode */
	assert_int_equal(rd(t + 56, 4), LAYOUT_ACPI_PM1A_EVT);
	assert_int_equal(rd(t + 64, 4), LAYOUT_ACPI_PM1A_CNT);
	assert_int_equal(rd(t + 76, 4), LAYOUT_ACPI_PM_TMR);
	assert_int_equal(t[88], 4);
	assert_int_equal(t[89], 2);
	assert_int_equal(t[91], 4);
	assert_int_equal(t[108], 0x32); /* CMOS century */
	flags = (uint32_t)rd(t + 112, 4);
	assert_int_equal(flags & (1u << 4), 0);	 /* fixed power button */
	assert_int_equal(flags & (1u << 20), 0); /* not hardware-reduced */
	assert_true(flags & (1u << 10));	 /* reset register */
	assert_int_equal(t[116], 1);		 /* reset: system I/O */
	assert_int_equal(rd(t + 120, 8), ACPI_RESET_PORT);
	assert_int_equal(t[128], ACPI_RESET_VALUE);
	/* X blocks agree with the 32-bit ones in address and width, or Linux
	 * warns about a 32/64X mismatch. */
	assert_int_equal(rd(t + 152, 8), LAYOUT_ACPI_PM1A_EVT);
	assert_int_equal(t[149], 32);
	assert_int_equal(rd(t + 176, 8), LAYOUT_ACPI_PM1A_CNT);
	assert_int_equal(t[173], 16);
	assert_int_equal(rd(t + 212, 8), LAYOUT_ACPI_PM_TMR);
	assert_int_equal(t[209], 32);
}

static void madt_check(struct fixture *f, unsigned n, const uint32_t *ids)
{
	const uint8_t *t = xsdt_find(f, "APIC");
	uint32_t len = (uint32_t)rd(t + 4, 4);
	unsigned lapics = 0, ioapics = 0, nmis = 0, iso0 = 0, iso9 = 0;

	assert_int_equal(rd(t + 36, 4), LAYOUT_LAPIC_BASE);
	for (uint32_t i = 44; i < len;) {
		const uint8_t *e = t + i;
		assert_true(e[1] >= 2 && i + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);
			assert_int_equal(e[3], ids ? ids[lapics] : lapics);
			assert_int_equal(rd(e + 4, 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(rd(e + 4, 4), LAYOUT_IOAPIC_BASE);
			assert_int_equal(rd(e + 8, 4), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(rd(e + 4, 4), 2);
				assert_int_equal(rd(e + 8, 2), 0);
				iso0++;
			} else {
				assert_int_equal(e[3], LAYOUT_ACPI_SCI_IRQ);
				assert_int_equal(rd(e + 4, 4), LAYOUT_ACPI_SCI_IRQ);
				assert_int_equal(rd(e + 8, 2), 0x000D);
				iso9++;
			}
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xFF);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		i += e[1];
	}
	assert_int_equal(lapics, n);
	assert_int_equal(ioapics, 1);
	assert_int_equal(iso0, 1);
	assert_int_equal(iso9, 1);
	assert_int_equal(nmis, 1);
}

static void test_madt_per_cpu_count(void **state)
{
	struct fixture *f = *state;
	static const uint32_t ids[4] = {0, 2, 4, 6};
	static const unsigned counts[] = {1, 2, 3, 8, 64};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		assert_int_equal(build(f, counts[i], NULL), 0);
		madt_check(f, counts[i], NULL);
	}
	assert_int_equal(build(f, 4, ids), 0);
	madt_check(f, 4, ids);
}

static void test_mcfg(void **state)
{
	struct fixture *f = *state;
	const uint8_t *t;

	assert_int_equal(build(f, 1, NULL), 0);
	t = xsdt_find(f, "MCFG");
	assert_int_equal(rd(t + 4, 4), 60);
	assert_int_equal(rd(t + 44, 8), LAYOUT_PCI_ECAM_BASE);
	assert_int_equal(rd(t + 52, 2), 0);
	assert_int_equal(t[54], 0);
	assert_int_equal(t[55], 255);
}

/* ---- an AML reader for the subset of AML the DSDT uses ---- */

struct aml {
	const uint8_t *p, *end;
};

static size_t aml_pkglen(struct aml *a)
{
	uint8_t lead = *a->p++;
	unsigned extra = lead >> 6;
	size_t len = extra ? lead & 0xF : lead & 0x3F;

	for (unsigned i = 0; i < extra; i++)
		len |= (size_t)*a->p++ << (4 + 8 * i);
	return len;
}

static uint64_t aml_int(struct aml *a)
{
	uint8_t op = *a->p++;

	switch (op) {
	case 0x00:
		return 0;
	case 0x01:
		return 1;
	case 0xFF:
		return ~0ULL;
	case 0x0A:
		a->p += 1;
		return rd(a->p - 1, 1);
	case 0x0B:
		a->p += 2;
		return rd(a->p - 2, 2);
	case 0x0C:
		a->p += 4;
		return rd(a->p - 4, 4);
	case 0x0E:
		a->p += 8;
		return rd(a->p - 8, 8);
	}
	fail_msg("AML: opcode 0x%02x where an integer was expected", op);
	return 0;
}

static void aml_nameseg(struct aml *a, char out[6])
{
	size_t n = 0;

	if (*a->p == '\\')
		out[n++] = *a->p++;
	memcpy(out + n, a->p, 4);
	out[n + 4] = '\0';
	a->p += 4;
}

struct dsdt_facts {
	uint64_t s5[4], s0[4];
	unsigned s5_n, s0_n;
	uint64_t hid, cid, seg, bbn;
	unsigned prt_entries, prt_bad;
	bool bus_0_255, io_low, io_high, mmio32, ecam_reserved, cf8;
	bool pci0, end_tag;
};

static void parse_package(struct aml *a, uint64_t *vals, unsigned *n)
{
	struct aml body;
	size_t len;
	const uint8_t *start;
	unsigned count;

	assert_int_equal(*a->p++, 0x12);
	start = a->p;
	len = aml_pkglen(a);
	body.end = start + len;
	count = *a->p++;
	body.p = a->p;
	*n = count;
	for (unsigned i = 0; i < count && i < 4; i++)
		vals[i] = aml_int(&body);
	a->p = body.end;
}

static void parse_prt(struct aml *a, struct dsdt_facts *df)
{
	const uint8_t *start;
	size_t len;
	unsigned count;

	assert_int_equal(*a->p++, 0x12);
	start = a->p;
	len = aml_pkglen(a);
	count = *a->p++;
	for (unsigned i = 0; i < count; i++) {
		uint64_t v[4];
		unsigned n;
		parse_package(a, v, &n);
		assert_int_equal(n, 4);
		unsigned d = (unsigned)(v[0] >> 16), pin = (unsigned)v[1];
		if ((v[0] & 0xFFFF) != 0xFFFF || v[2] != 0 || pin > 3 ||
		    v[3] != PCI_INTX_GSI(d, pin))
			df->prt_bad++;
		df->prt_entries++;
	}
	assert_ptr_equal(a->p, start + len);
}

static void parse_resources(struct aml *a, struct dsdt_facts *df)
{
	const uint8_t *start, *p, *end;
	size_t len, size;

	assert_int_equal(*a->p++, 0x11);
	start = a->p;
	len = aml_pkglen(a);
	size = aml_int(a);
	p = a->p;
	end = p + size;
	assert_ptr_equal(end, start + len);
	while (p < end) {
		if (p[0] == 0x79) {
			df->end_tag = true;
			assert_ptr_equal(p + 2, end);
			break;
		}
		if (p[0] & 0x80) { /* large descriptor */
			uint16_t l = (uint16_t)rd(p + 1, 2);
			if (p[0] == 0x88 && p[3] == 2 && rd(p + 8, 2) == 0 && rd(p + 10, 2) == 255)
				df->bus_0_255 = true;
			if (p[0] == 0x88 && p[3] == 1 && rd(p + 8, 2) == 0 &&
			    rd(p + 10, 2) == 0xCF7)
				df->io_low = true;
			if (p[0] == 0x88 && p[3] == 1 && rd(p + 8, 2) == 0xD00 &&
			    rd(p + 10, 2) == 0xFFFF)
				df->io_high = true;
			if (p[0] == 0x87 && p[3] == 0 && rd(p + 10, 4) == LAYOUT_PCI_MMIO_BASE &&
			    rd(p + 14, 4) == LAYOUT_PCI_MMIO_BASE + LAYOUT_PCI_MMIO_SIZE - 1 &&
			    rd(p + 22, 4) == LAYOUT_PCI_MMIO_SIZE)
				df->mmio32 = true;
			if (p[0] == 0x86 && rd(p + 4, 4) == LAYOUT_PCI_ECAM_BASE &&
			    rd(p + 8, 4) == LAYOUT_PCI_ECAM_SIZE)
				df->ecam_reserved = true;
			p += 3 + l;
		} else { /* small descriptor */
			if ((p[0] >> 3) == 0x08 && rd(p + 2, 2) == 0xCF8 && p[7] == 8)
				df->cf8 = true;
			p += 1 + (p[0] & 7);
		}
	}
	a->p = end;
}

static void parse_terms(struct aml *a, const char *scope, struct dsdt_facts *df);

static void parse_named(struct aml *a, const char *scope, struct dsdt_facts *df)
{
	char name[6];
	char path[64];

	aml_nameseg(a, name);
	snprintf(path, sizeof(path), "%s.%s", scope, name);
	if (strcmp(name, "\\_S5_") == 0)
		parse_package(a, df->s5, &df->s5_n);
	else if (strcmp(name, "\\_S0_") == 0)
		parse_package(a, df->s0, &df->s0_n);
	else if (strcmp(name, "_PRT") == 0)
		parse_prt(a, df);
	else if (strcmp(name, "_CRS") == 0)
		parse_resources(a, df);
	else if (strcmp(path, "\\_SB_.PCI0._HID") == 0)
		df->hid = aml_int(a);
	else if (strcmp(path, "\\_SB_.PCI0._CID") == 0)
		df->cid = aml_int(a);
	else if (strcmp(path, "\\_SB_.PCI0._SEG") == 0)
		df->seg = aml_int(a);
	else if (strcmp(path, "\\_SB_.PCI0._BBN") == 0)
		df->bbn = aml_int(a);
	else
		aml_int(a);
}

static void parse_block(struct aml *a, const char *scope, struct dsdt_facts *df)
{
	const uint8_t *start = a->p;
	size_t len = aml_pkglen(a);
	struct aml inner;
	char name[6], path[64];

	aml_nameseg(a, name);
	if (name[0] == '\\')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "%s.%s", scope, name);
	if (strcmp(path, "\\_SB_.PCI0") == 0)
		df->pci0 = true;
	inner.p = a->p;
	inner.end = start + len;
	assert_true(inner.end <= a->end);
	parse_terms(&inner, path, df);
	a->p = inner.end;
}

static void parse_terms(struct aml *a, const char *scope, struct dsdt_facts *df)
{
	while (a->p < a->end) {
		uint8_t op = *a->p++;
		if (op == 0x08) {
			parse_named(a, scope, df);
		} else if (op == 0x10) {
			parse_block(a, scope, df);
		} else if (op == 0x5B && *a->p == 0x82) {
			a->p++;
			parse_block(a, scope, df);
		} else {
			fail_msg("AML: unexpected opcode 0x%02x in %s", op, scope);
		}
	}
	assert_ptr_equal(a->p, a->end);
}

static void test_dsdt_aml(void **state)
{
	struct fixture *f = *state;
	struct dsdt_facts df;
	const uint8_t *fadt, *dsdt;
	struct aml a;

	assert_int_equal(build(f, 2, NULL), 0);
	fadt = xsdt_find(f, "FACP");
	dsdt = table_at(f, rd(fadt + 140, 8), "DSDT");
	assert_int_equal(dsdt[8], 2); /* 64-bit AML integers */
	memset(&df, 0, sizeof(df));
	a.p = dsdt + 36;
	a.end = dsdt + rd(dsdt + 4, 4);
	parse_terms(&a, "", &df);

	assert_int_equal(df.s5_n, 4);
	assert_int_equal(df.s5[0], ACPI_SLP_TYP_S5);
	assert_int_equal(df.s5[1], ACPI_SLP_TYP_S5);
	assert_int_equal(df.s0_n, 4);
	assert_int_equal(df.s0[0], ACPI_SLP_TYP_S0);
	assert_true(df.pci0);
	assert_int_equal(df.hid, 0x080AD041); /* EisaId("PNP0A08") */
	assert_int_equal(df.cid, 0x030AD041); /* EisaId("PNP0A03") */
	assert_int_equal(df.seg, 0);
	assert_int_equal(df.bbn, 0);
	assert_int_equal(df.prt_entries, 32 * 4);
	assert_int_equal(df.prt_bad, 0);
	assert_true(df.bus_0_255);
	assert_true(df.cf8);
	assert_true(df.io_low);
	assert_true(df.io_high);
	assert_true(df.mmio32);
	assert_true(df.ecam_reserved);
	assert_true(df.end_tag);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	struct acpi_config cfg = {.ncpus = 0};
	struct tv_err err = {{0}};
	uint64_t rsdp = 0;
	static const uint32_t big_id[1] = {255};

	assert_int_equal(acpi_build(&cfg, &f->mem, &rsdp, &err), -1);
	assert_non_null(strstr(err.msg, "0 vCPUs"));
	cfg.ncpus = LAYOUT_MAX_CPUS + 1;
	assert_int_equal(acpi_build(&cfg, &f->mem, &rsdp, &err), -1);
	cfg.ncpus = 1;
	cfg.apic_ids = big_id;
	assert_int_equal(acpi_build(&cfg, &f->mem, &rsdp, &err), -1);
	assert_non_null(strstr(err.msg, "APIC id 255"));
	cfg.apic_ids = NULL;
	cfg.size = 256; /* too small for the tables */
	assert_int_equal(acpi_build(&cfg, &f->mem, &rsdp, &err), -1);
	assert_non_null(strstr(err.msg, "bytes"));
	cfg.size = 0;
	cfg.base = RAM_SIZE; /* not RAM */
	assert_int_equal(acpi_build(&cfg, &f->mem, &rsdp, &err), -1);
	assert_non_null(strstr(err.msg, "not guest RAM"));
	assert_int_equal(rsdp, 0);
}

/* --dump DIR: the tables as files (DSDT.dat, FACP.dat ...) for iasl. */
static int dump(const char *dir, unsigned ncpus)
{
	struct fixture f;
	const uint8_t *x, *fadt;
	uint64_t gpas[8];
	unsigned n = 0;

	f.ram = calloc(1, RAM_SIZE);
	memset(&f.mem, 0, sizeof(f.mem));
	gmem_add_region(&f.mem, 0, RAM_SIZE, f.ram);
	if (build(&f, ncpus, NULL) < 0)
		return 1;
	x = f.ram + rd(f.ram + f.rsdp + 24, 8);
	gpas[n++] = (uint64_t)(x - f.ram);
	for (uint32_t i = 36; i + 8 <= rd(x + 4, 4); i += 8)
		gpas[n++] = rd(x + i, 8);
	fadt = xsdt_find(&f, "FACP");
	gpas[n++] = rd(fadt + 140, 8);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *t = f.ram + gpas[i];
		char path[4096];
		FILE *out;
		snprintf(path, sizeof(path), "%s/%.4s.dat", dir, (const char *)t);
		out = fopen(path, "wb");
		if (!out || fwrite(t, 1, rd(t + 4, 4), out) != rd(t + 4, 4) || fclose(out) != 0) {
			perror(path);
			return 1;
		}
	}
	free(f.ram);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2], (unsigned)atoi(argv[3]));

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rsdp_xsdt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fadt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_madt_per_cpu_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mcfg, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsdt_aml, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
