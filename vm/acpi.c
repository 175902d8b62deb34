/* ACPI tables (ACPI 6.0 layouts) for the machine in vm/layout.h, built in a
 * host buffer and copied into guest memory in one write. */
#include <stdlib.h>
#include <string.h>

#include "vm/acpi.h"
#include "vm/layout.h"
#include "common/util.h"

#define ACPI_CREATOR_ID "TVSR"

/* Sizes fixed by the specification. */
#define RSDP_LEN       36
#define FACS_LEN       64
#define HDR_LEN	       36
#define MADT_LAPIC     0
#define MADT_IOAPIC    1
#define MADT_ISO       2
#define MADT_LAPIC_NMI 4

/* FADT flags (ACPI 6.0 table 5-35). */
#define FADT_WBINVD	   (1u << 0)
#define FADT_PROC_C1	   (1u << 2)
#define FADT_SLP_BUTTON	   (1u << 5) /* no fixed sleep button */
#define FADT_FIX_RTC	   (1u << 6) /* no RTC wake status in PM1 */
#define FADT_TMR_VAL_EXT   (1u << 8) /* 32-bit PM timer */
#define FADT_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags: no VGA; no 8042 flag, so Linux does not
 * probe a keyboard controller that only implements the reset line. */
#define FADT_BOOT_NO_VGA (1u << 2)

/* Generic Address Structure: address spaces and access sizes. */
#define GAS_IO	  1
#define GAS_BYTE  1
#define GAS_WORD  2
#define GAS_DWORD 3

/* A growing byte buffer: tables and AML are built in it. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = MAX(b->cap * 2, b->len + n + 256);
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_u8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void buf_le(struct buf *b, uint64_t v, unsigned n)
{
	uint8_t t[8];

	for (unsigned i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	buf_put(b, t, n);
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

/* ---- AML (ACPI 6.0 chapter 20) ---- */

#define AML_ZERO    0x00
#define AML_ONE	    0x01
#define AML_NAME    0x08
#define AML_BYTE    0x0A
#define AML_WORD    0x0B
#define AML_DWORD   0x0C
#define AML_QWORD   0x0E
#define AML_SCOPE   0x10
#define AML_BUFFER  0x11
#define AML_PACKAGE 0x12
#define AML_EXT	    0x5B
#define AML_DEVICE  0x82 /* after AML_EXT */

static void aml_int(struct buf *b, uint64_t v)
{
	if (v == 0)
		buf_u8(b, AML_ZERO);
	else if (v == 1)
		buf_u8(b, AML_ONE);
	else if (v <= 0xFF)
		buf_u8(b, AML_BYTE), buf_le(b, v, 1);
	else if (v <= 0xFFFF)
		buf_u8(b, AML_WORD), buf_le(b, v, 2);
	else if (v <= 0xFFFFFFFF)
		buf_u8(b, AML_DWORD), buf_le(b, v, 4);
	else
		buf_u8(b, AML_QWORD), buf_le(b, v, 8);
}

/* A name path: "\\_S5_", "PCI0", "_HID". Segments are 4 characters. */
static void aml_name(struct buf *b, const char *path)
{
	if (*path == '\\')
		buf_u8(b, '\\'), path++;
	buf_put(b, path, 4);
}

/* PkgLength counts itself: 1 byte up to 63, else a lead byte holding the
 * count of following bytes and the low nibble, then 8 bits per byte. */
static void aml_pkglen(struct buf *b, size_t body)
{
	size_t total;
	unsigned extra;

	if (body + 1 <= 63) {
		buf_u8(b, (uint8_t)(body + 1));
		return;
	}
	for (extra = 1; extra <= 3; extra++) {
		total = body + 1 + extra;
		if (total < (1u << (4 + 8 * extra)))
			break;
	}
	buf_u8(b, (uint8_t)((extra << 6) | (total & 0xF)));
	for (unsigned i = 0; i < extra; i++)
		buf_u8(b, (uint8_t)(total >> (4 + 8 * i)));
}

/* Opcode(s), PkgLength, then the body (already encoded in inner). */
static void aml_wrap(struct buf *b, const uint8_t *op, size_t oplen, const struct buf *inner)
{
	buf_put(b, op, oplen);
	aml_pkglen(b, inner->len);
	buf_put(b, inner->p, inner->len);
}

static void aml_name_int(struct buf *b, const char *name, uint64_t v)
{
	buf_u8(b, AML_NAME);
	aml_name(b, name);
	aml_int(b, v);
}

/* EISA ids ("PNP0A08") as the compressed 32-bit form _HID and _CID take. */
static uint32_t eisa_id(const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	uint32_t vendor = (uint32_t)((id[0] - '@') << 10 | (id[1] - '@') << 5 | (id[2] - '@'));
	uint32_t product = 0;

	for (int i = 3; i < 7; i++)
		product = product << 4 | (uint32_t)(strchr(hex, id[i]) - hex);
	/* Stored big-endian: vendor then product. */
	return (vendor >> 8) | (vendor & 0xFF) << 8 | (product >> 8) << 16 | (product & 0xFF) << 24;
}

/* Name(_Sx, Package() {typ, typ, 0, 0}) */
static void aml_sleep_state(struct buf *b, const char *name, unsigned typ)
{
	struct buf pkg = {0};
	const uint8_t op = AML_PACKAGE;

	buf_u8(&pkg, 4);
	aml_int(&pkg, typ);
	aml_int(&pkg, typ);
	aml_int(&pkg, 0);
	aml_int(&pkg, 0);
	buf_u8(b, AML_NAME);
	aml_name(b, name);
	aml_wrap(b, &op, 1, &pkg);
	free(pkg.p);
}

/* Name(name, Buffer() {resource descriptors, end tag}) */
static void aml_resources(struct buf *b, const char *name, const struct buf *res)
{
	struct buf body = {0};
	const uint8_t op = AML_BUFFER;

	aml_int(&body, res->len + 2);
	buf_put(&body, res->p, res->len);
	buf_u8(&body, 0x79); /* end tag; checksum 0 means "not checked" */
	buf_u8(&body, 0);
	buf_u8(b, AML_NAME);
	aml_name(b, name);
	aml_wrap(b, &op, 1, &body);
	free(body.p);
}

/* Resource descriptors (ACPI 6.0 section 6.4). Address space flags: a
 * producer with fixed minimum and maximum, positive decode. */
#define RES_ADDR_FLAGS 0x0C

static void res_word(struct buf *r, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	buf_u8(r, 0x88);
	buf_le(r, 13, 2);
	buf_u8(r, type);
	buf_u8(r, RES_ADDR_FLAGS);
	buf_u8(r, tflags);
	buf_le(r, 0, 2); /* granularity */
	buf_le(r, min, 2);
	buf_le(r, max, 2);
	buf_le(r, 0, 2); /* translation */
	buf_le(r, (uint32_t)max - min + 1, 2);
}

static void res_dword_mem(struct buf *r, uint32_t min, uint32_t max)
{
	buf_u8(r, 0x87);
	buf_le(r, 23, 2);
	buf_u8(r, 0); /* memory */
	buf_u8(r, RES_ADDR_FLAGS);
	buf_u8(r, 0x01); /* read-write, non-cacheable */
	buf_le(r, 0, 4);
	buf_le(r, min, 4);
	buf_le(r, max, 4);
	buf_le(r, 0, 4);
	buf_le(r, (uint64_t)max - min + 1, 4);
}

static void res_io(struct buf *r, uint16_t base, uint8_t len)
{
	buf_u8(r, 0x47);
	buf_u8(r, 1); /* 16-bit decode */
	buf_le(r, base, 2);
	buf_le(r, base, 2);
	buf_u8(r, 1);
	buf_u8(r, len);
}

static void res_mem32_fixed(struct buf *r, uint32_t base, uint32_t len)
{
	buf_u8(r, 0x86);
	buf_le(r, 9, 2);
	buf_u8(r, 1); /* read-write */
	buf_le(r, base, 4);
	buf_le(r, len, 4);
}

/* _PRT: every slot's INTA-INTD straight to an IOAPIC GSI (source 0). */
static void aml_prt(struct buf *b)
{
	struct buf pkg = {0};
	const uint8_t op = AML_PACKAGE;

	buf_u8(&pkg, 32 * 4);
	for (unsigned d = 0; d < 32; d++) {
		for (unsigned p = 0; p < 4; p++) {
			struct buf e = {0};
			buf_u8(&e, 4);
			aml_int(&e, (uint64_t)d << 16 | 0xFFFF);
			aml_int(&e, p);
			aml_int(&e, 0);
			aml_int(&e, PCI_INTX_GSI(d, p));
			aml_wrap(&pkg, &op, 1, &e);
			free(e.p);
		}
	}
	buf_u8(b, AML_NAME);
	aml_name(b, "_PRT");
	aml_wrap(b, &op, 1, &pkg);
	free(pkg.p);
}

static void aml_device(struct buf *b, const char *name, const struct buf *body)
{
	const uint8_t op[2] = {AML_EXT, AML_DEVICE};
	struct buf inner = {0};

	aml_name(&inner, name);
	buf_put(&inner, body->p, body->len);
	aml_wrap(b, op, 2, &inner);
	free(inner.p);
}

static void aml_pci0(struct buf *b)
{
	struct buf dev = {0}, res = {0};

	aml_name_int(&dev, "_HID", eisa_id("PNP0A08"));
	aml_name_int(&dev, "_CID", eisa_id("PNP0A03"));
	aml_name_int(&dev, "_SEG", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_int(&dev, "_UID", 0);
	res_word(&res, 2, 0, 0, LAYOUT_PCI_ECAM_BUSES - 1);
	res_io(&res, 0xCF8, 8);
	res_word(&res, 1, 0x03, 0x0000, 0x0CF7);
	res_word(&res, 1, 0x03, 0x0D00, 0xFFFF);
	res_dword_mem(&res, LAYOUT_PCI_MMIO_BASE, LAYOUT_PCI_MMIO_BASE + LAYOUT_PCI_MMIO_SIZE - 1);
	aml_resources(&dev, "_CRS", &res);
	aml_prt(&dev);
	aml_device(b, "PCI0", &dev);
	free(dev.p);
	free(res.p);
}

/* The ECAM window as a motherboard resource, where Linux looks to trust MCFG. */
static void aml_ecam_reservation(struct buf *b)
{
	struct buf dev = {0}, res = {0};

	aml_name_int(&dev, "_HID", eisa_id("PNP0C02"));
	aml_name_int(&dev, "_UID", 1);
	res_mem32_fixed(&res, LAYOUT_PCI_ECAM_BASE, LAYOUT_PCI_ECAM_SIZE);
	aml_resources(&dev, "_CRS", &res);
	aml_device(b, "MRES", &dev);
	free(dev.p);
	free(res.p);
}

/* The CMOS clock (PNP0B00): its ports and IRQ 8, where rtc-cmos finds them. */
static void aml_rtc(struct buf *b)
{
	struct buf dev = {0}, res = {0};

	aml_name_int(&dev, "_HID", eisa_id("PNP0B00"));
	res_io(&res, LAYOUT_RTC_PORT, 2);
	buf_u8(&res, 0x22); /* IRQ, edge, active high */
	buf_le(&res, 1u << LAYOUT_RTC_IRQ, 2);
	aml_resources(&dev, "_CRS", &res);
	aml_device(b, "RTC_", &dev);
	free(dev.p);
	free(res.p);
}

static void aml_dsdt_body(struct buf *b)
{
	struct buf sb = {0};
	const uint8_t op = AML_SCOPE;

	aml_sleep_state(b, "\\_S0_", ACPI_SLP_TYP_S0);
	aml_sleep_state(b, "\\_S5_", ACPI_SLP_TYP_S5);
	aml_name(&sb, "\\_SB_");
	aml_pci0(&sb);
	aml_ecam_reservation(&sb);
	aml_rtc(&sb);
	aml_wrap(b, &op, 1, &sb);
	free(sb.p);
}

/* ---- tables ---- */

/* Starts a table: the standard header, length and checksum filled in later. */
static size_t table_begin(struct buf *b, const char *sig, uint8_t rev)
{
	size_t at;

	while (b->len % 16)
		buf_u8(b, 0);
	at = b->len;
	buf_put(b, sig, 4);
	buf_le(b, 0, 4); /* length */
	buf_u8(b, rev);
	buf_u8(b, 0); /* checksum */
	buf_put(b, ACPI_OEM_ID, 6);
	buf_put(b, ACPI_OEM_TABLE_ID, 8);
	buf_le(b, 1, 4); /* OEM revision */
	buf_put(b, ACPI_CREATOR_ID, 4);
	buf_le(b, 1, 4); /* creator revision */
	return at;
}

static void table_end(struct buf *b, size_t at)
{
	size_t len = b->len - at;

	put_le(b->p + at + 4, len, 4);
	b->p[at + 9] = acpi_checksum(b->p + at, len);
}

static void gas(struct buf *b, uint8_t space, uint8_t bits, uint8_t access, uint64_t addr)
{
	buf_u8(b, space);
	buf_u8(b, bits);
	buf_u8(b, 0); /* bit offset */
	buf_u8(b, access);
	buf_le(b, addr, 8);
}

static size_t fadt_build(struct buf *b, uint64_t facs, uint64_t dsdt)
{
	size_t at = table_begin(b, "FACP", 6);

	/* FIRMWARE_CTRL must be zero when X_FIRMWARE_CTRL is used (else Linux
	 * installs the FACS twice); the DSDT's two fields may agree. */
	buf_le(b, 0, 4);
	buf_le(b, dsdt, 4);
	buf_u8(b, 0); /* reserved */
	buf_u8(b, 0); /* preferred PM profile: unspecified */
	buf_le(b, LAYOUT_ACPI_SCI_IRQ, 2);
	buf_le(b, 0, 4); /* SMI_CMD: none, the machine is always in ACPI mode */
	buf_le(b, 0, 4); /* ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT */
	buf_le(b, LAYOUT_ACPI_PM1A_EVT, 4);
	buf_le(b, 0, 4); /* PM1b_EVT */
	buf_le(b, LAYOUT_ACPI_PM1A_CNT, 4);
	buf_le(b, 0, 4); /* PM1b_CNT */
	buf_le(b, 0, 4); /* PM2_CNT */
	buf_le(b, LAYOUT_ACPI_PM_TMR, 4);
	buf_le(b, 0, 4);      /* GPE0 */
	buf_le(b, 0, 4);      /* GPE1 */
	buf_u8(b, 4);	      /* PM1_EVT_LEN */
	buf_u8(b, 2);	      /* PM1_CNT_LEN */
	buf_u8(b, 0);	      /* PM2_CNT_LEN */
	buf_u8(b, 4);	      /* PM_TMR_LEN */
	buf_le(b, 0, 4);      /* GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE, CST_CNT */
	buf_le(b, 0x0FFF, 2); /* P_LVL2_LAT: C2 not supported */
	buf_le(b, 0x0FFF, 2); /* P_LVL3_LAT: C3 not supported */
	buf_le(b, 0, 4);      /* FLUSH_SIZE, FLUSH_STRIDE */
	buf_le(b, 0, 4);      /* DUTY_OFFSET, DUTY_WIDTH, DAY_ALRM, MON_ALRM */
	buf_u8(b, 0x32);      /* CENTURY: the CMOS index of the century byte */
	buf_le(b, FADT_BOOT_NO_VGA, 2);
	buf_u8(b, 0); /* reserved */
	buf_le(b,
	       FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_TMR_VAL_EXT |
		   FADT_RESET_REG_SUP,
	       4);
	gas(b, GAS_IO, 8, GAS_BYTE, ACPI_RESET_PORT);
	buf_u8(b, ACPI_RESET_VALUE);
	buf_le(b, 0, 2); /* ARM boot flags */
	buf_u8(b, 0);	 /* FADT minor version */
	buf_le(b, facs, 8);
	buf_le(b, dsdt, 8);
	gas(b, GAS_IO, 32, GAS_WORD, LAYOUT_ACPI_PM1A_EVT);
	gas(b, 0, 0, 0, 0); /* X_PM1b_EVT */
	gas(b, GAS_IO, 16, GAS_WORD, LAYOUT_ACPI_PM1A_CNT);
	gas(b, 0, 0, 0, 0); /* X_PM1b_CNT */
	gas(b, 0, 0, 0, 0); /* X_PM2_CNT */
	gas(b, GAS_IO, 32, GAS_DWORD, LAYOUT_ACPI_PM_TMR);
	gas(b, 0, 0, 0, 0);	   /* X_GPE0 */
	gas(b, 0, 0, 0, 0);	   /* X_GPE1 */
	gas(b, 0, 0, 0, 0);	   /* SLEEP_CONTROL_REG (hardware-reduced only) */
	gas(b, 0, 0, 0, 0);	   /* SLEEP_STATUS_REG */
	buf_put(b, "TRMVISOR", 8); /* hypervisor vendor identity */
	table_end(b, at);
	return at;
}

static size_t madt_build(struct buf *b, const struct acpi_config *cfg)
{
	size_t at = table_begin(b, "APIC", 4);

	buf_le(b, LAYOUT_LAPIC_BASE, 4);
	buf_le(b, 1, 4); /* PCAT_COMPAT: the 8259s are there (masked by the OS) */
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		buf_u8(b, MADT_LAPIC);
		buf_u8(b, 8);
		buf_u8(b, (uint8_t)i); /* ACPI processor UID */
		buf_u8(b, (uint8_t)(cfg->apic_ids ? cfg->apic_ids[i] : i));
		buf_le(b, 1, 4); /* enabled */
	}
	buf_u8(b, MADT_IOAPIC);
	buf_u8(b, 12);
	buf_u8(b, LAYOUT_IOAPIC_ID);
	buf_u8(b, 0);
	buf_le(b, LAYOUT_IOAPIC_BASE, 4);
	buf_le(b, 0, 4); /* GSI base */
	/* The PIT's IRQ 0 arrives on IOAPIC pin 2 (the engine's GSI routing). */
	buf_u8(b, MADT_ISO);
	buf_u8(b, 10);
	buf_u8(b, 0); /* ISA */
	buf_u8(b, 0);
	buf_le(b, 2, 4);
	buf_le(b, 0, 2); /* conforming */
	/* The SCI is level-triggered, active high. */
	buf_u8(b, MADT_ISO);
	buf_u8(b, 10);
	buf_u8(b, 0);
	buf_u8(b, LAYOUT_ACPI_SCI_IRQ);
	buf_le(b, LAYOUT_ACPI_SCI_IRQ, 4);
	buf_le(b, 0x000D, 2);
	/* NMIs come in on every local APIC's LINT1. */
	buf_u8(b, MADT_LAPIC_NMI);
	buf_u8(b, 6);
	buf_u8(b, 0xFF); /* all processors */
	buf_le(b, 0, 2);
	buf_u8(b, 1);
	table_end(b, at);
	return at;
}

static size_t mcfg_build(struct buf *b)
{
	size_t at = table_begin(b, "MCFG", 1);

	buf_le(b, 0, 8); /* reserved */
	buf_le(b, LAYOUT_PCI_ECAM_BASE, 8);
	buf_le(b, 0, 2); /* segment */
	buf_u8(b, 0);	 /* first bus */
	buf_u8(b, LAYOUT_PCI_ECAM_BUSES - 1);
	buf_le(b, 0, 4);
	table_end(b, at);
	return at;
}

static size_t dsdt_build(struct buf *b)
{
	size_t at = table_begin(b, "DSDT", 2);

	aml_dsdt_body(b);
	table_end(b, at);
	return at;
}

static void facs_build(struct buf *b)
{
	buf_put(b, "FACS", 4);
	buf_le(b, FACS_LEN, 4);
	buf_le(b, 0, 4); /* hardware signature */
	buf_le(b, 0, 4); /* firmware waking vector */
	buf_le(b, 0, 4); /* global lock */
	buf_le(b, 0, 4); /* flags */
	buf_le(b, 0, 8); /* X firmware waking vector */
	buf_u8(b, 2);	 /* version */
	for (size_t i = 33; i < FACS_LEN; i++)
		buf_u8(b, 0);
}

int acpi_build(const struct acpi_config *cfg, struct guest_mem *mem, uint64_t *rsdp_gpa,
	       struct tv_err *err)
{
	uint64_t base = cfg->base ? cfg->base : LAYOUT_ACPI_BASE;
	uint64_t size = cfg->size ? cfg->size : LAYOUT_ACPI_SIZE;
	struct buf b = {0};
	size_t facs, xsdt, fadt, madt, mcfg, dsdt, xsdt_len;
	int rc = 0;

	if (cfg->ncpus < 1 || cfg->ncpus > LAYOUT_MAX_CPUS)
		return tv_errf(err, "ACPI: %u vCPUs, expected 1 to %u", cfg->ncpus,
			       LAYOUT_MAX_CPUS);
	for (unsigned i = 0; cfg->apic_ids && i < cfg->ncpus; i++)
		if (cfg->apic_ids[i] > 254)
			return tv_errf(err,
				       "ACPI: APIC id %u of vCPU %u does not fit a MADT local "
				       "APIC entry",
				       cfg->apic_ids[i], i);
	if (base % 16 || base + size < base || base + size > 0x100000000ULL)
		return tv_errf(err,
			       "ACPI: table area 0x%llx+0x%llx must be 16-byte aligned and "
			       "below 4 GiB",
			       (unsigned long long)base, (unsigned long long)size);

	/* RSDP first, then the FACS (64-byte aligned), the XSDT, the tables. */
	buf_put(&b, "RSD PTR ", 8);
	for (size_t i = 8; i < 64; i++)
		buf_u8(&b, 0);
	facs = b.len;
	facs_build(&b);
	xsdt = table_begin(&b, "XSDT", 1);
	for (int i = 0; i < 3; i++)
		buf_le(&b, 0, 8); /* filled below */
	table_end(&b, xsdt);
	xsdt_len = b.len - xsdt;
	dsdt = dsdt_build(&b);
	fadt = fadt_build(&b, base + facs, base + dsdt);
	madt = madt_build(&b, cfg);
	mcfg = mcfg_build(&b);

	put_le(b.p + xsdt + HDR_LEN, base + fadt, 8);
	put_le(b.p + xsdt + HDR_LEN + 8, base + madt, 8);
	put_le(b.p + xsdt + HDR_LEN + 16, base + mcfg, 8);
	b.p[xsdt + 9] = 0;
	b.p[xsdt + 9] = acpi_checksum(b.p + xsdt, xsdt_len);

	b.p[8] = 0; /* checksum of the first 20 bytes */
	memcpy(b.p + 9, ACPI_OEM_ID, 6);
	b.p[15] = 2;		/* revision: ACPI 2.0+, with the XSDT */
	put_le(b.p + 16, 0, 4); /* no RSDT */
	put_le(b.p + 20, RSDP_LEN, 4);
	put_le(b.p + 24, base + xsdt, 8);
	b.p[8] = acpi_checksum(b.p, 20);
	b.p[32] = acpi_checksum(b.p, RSDP_LEN);

	if (b.len > size)
		rc = tv_errf(err, "ACPI: tables take %zu bytes, the area has %llu", b.len,
			     (unsigned long long)size);
	else if (gmem_write(mem, base, b.p, b.len) < 0)
		rc = tv_errf(err, "ACPI: table area 0x%llx+0x%zx is not guest RAM",
			     (unsigned long long)base, b.len);
	else
		*rsdp_gpa = base;
	free(b.p);
	return rc;
}
