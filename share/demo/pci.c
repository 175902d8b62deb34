/* PCI configuration space: ECAM when the ACPI MCFG table names one, else the legacy
 * 0xCF8/0xCFC ports.  Only bus 0 is scanned: the demo looks for its own disk. */
#include "demo.h"

static uint64_t ecam_addr(const struct pci_dev *d, unsigned off)
{
	return acpi.ecam +
	       ((uint64_t)d->bus << 20 | (uint64_t)d->dev << 15 | (uint64_t)d->fn << 12 | off);
}

static void cf8_select(const struct pci_dev *d, unsigned off)
{
	outl(0xcf8, 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
			(uint32_t)d->fn << 8 | (off & 0xfc));
}

const char *pci_method(void)
{
	return acpi.ecam ? "ECAM" : "port 0xCF8";
}

uint32_t pci_read32(const struct pci_dev *d, unsigned off)
{
	if (acpi.ecam)
		return mmio_read32(ecam_addr(d, off));
	cf8_select(d, off);
	return inl(0xcfc);
}

void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v)
{
	if (acpi.ecam) {
		mmio_write32(ecam_addr(d, off), v);
		return;
	}
	cf8_select(d, off);
	outl(0xcfc, v);
}

uint8_t pci_read8(const struct pci_dev *d, unsigned off)
{
	return (uint8_t)(pci_read32(d, off & ~3u) >> (8 * (off & 3)));
}

uint16_t pci_read16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(pci_read32(d, off & ~3u) >> (8 * (off & 2)));
}

/* Rewrites the dword around a 16-bit register; next to the command register sits the
 * status register, whose bits clear when ones are written, so zeros go there. */
void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v)
{
	uint32_t dw = pci_read32(d, off & ~3u);
	unsigned sh = 8 * (off & 2);

	if ((off & ~3u) == 4)
		dw &= 0xffff; /* never write status bits back */
	dw = (dw & ~(0xffffu << sh)) | (uint32_t)v << sh;
	pci_write32(d, off & ~3u, dw);
}

uint64_t pci_bar(const struct pci_dev *d, unsigned bar)
{
	uint32_t lo = pci_read32(d, 0x10 + 4 * bar);

	if (lo & 1)
		return lo & ~3u;
	if (((lo >> 1) & 3) == 2)
		return (lo & ~0xfu) | (uint64_t)pci_read32(d, 0x14 + 4 * bar) << 32;
	return lo & ~0xfu;
}

/* Finds the index-th function on bus 0 whose vendor matches and whose device id is one
 * of devices[]. */
int pci_find(uint16_t vendor, const uint16_t *devices, size_t ndevices, struct pci_dev *out,
	     int index)
{
	if (acpi.ecam)
		map_phys(acpi.ecam, 1 << 20);
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			struct pci_dev d = {0, (uint8_t)dev, (uint8_t)fn, 0, 0};
			uint32_t id = pci_read32(&d, 0);
			if ((id & 0xffff) == 0xffff || id == 0) {
				if (fn == 0)
					break;
				continue;
			}
			d.vendor = (uint16_t)id;
			d.device = (uint16_t)(id >> 16);
			for (size_t i = 0; i < ndevices; i++) {
				if (d.vendor == vendor && d.device == devices[i] && index-- == 0) {
					*out = d;
					return 1;
				}
			}
			if (fn == 0 && !(pci_read8(&d, 0x0e) & 0x80))
				break;
		}
	}
	return 0;
}

/* Address space for BARs the firmware left unassigned (QEMU's qboot does so): handed out
 * downwards from below the IOAPIC, ECAM or the lowest BAR already assigned, whichever is
 * lowest, and never into RAM or ACPI tables. */
static uint64_t bar_window_top;

static void bar_window_init(void)
{
	bar_window_top = 0xfec00000;
	if (acpi.ecam && acpi.ecam < bar_window_top)
		bar_window_top = acpi.ecam; /* machines put their BAR window just below ECAM */
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8; fn++) {
			struct pci_dev d = {0, (uint8_t)dev, (uint8_t)fn, 0, 0};
			uint32_t id = pci_read32(&d, 0);
			if ((id & 0xffff) == 0xffff || id == 0)
				break;
			if ((pci_read8(&d, 0x0e) & 0x7f) != 0)
				continue; /* bridges: their windows are not tracked here */
			for (unsigned b = 0; b < 6; b++) {
				uint64_t a = pci_bar(&d, b);
				if (!(pci_read32(&d, 0x10 + 4 * b) & 1) && a >= 0x100000 &&
				    a < bar_window_top)
					bar_window_top = a;
			}
			if (fn == 0 && !(pci_read8(&d, 0x0e) & 0x80))
				break;
		}
	}
}

static uint64_t bar_window_floor(void)
{
	uint64_t floor = 0x100000;

	for (unsigned i = 0; i < boot.nmem; i++) {
		uint64_t end = boot.mem[i].addr + boot.mem[i].size;
		uint32_t type = boot.mem[i].type;
		if ((type == 1 || type == 3 || type == 4) && end <= 0x100000000ULL && end > floor)
			floor = end;
	}
	return floor;
}

/* Sizes an unassigned memory BAR and gives it an address; returns it, or 0. */
uint64_t pci_bar_assign(const struct pci_dev *d, unsigned bar)
{
	unsigned off = 0x10 + 4 * bar;
	uint32_t lo = pci_read32(d, off);
	int is64 = ((lo >> 1) & 3) == 2;
	uint16_t cmd = pci_read16(d, 4);
	uint64_t mask, size, addr;

	if (lo & 1)
		return 0;
	if (!bar_window_top)
		bar_window_init();
	pci_write16(d, 4, cmd & ~2); /* no decoding while sizing */
	pci_write32(d, off, 0xffffffff);
	mask = pci_read32(d, off) & ~0xfULL;
	if (is64) {
		pci_write32(d, off + 4, 0xffffffff);
		mask |= (uint64_t)pci_read32(d, off + 4) << 32;
	} else {
		mask |= 0xffffffff00000000ULL;
	}
	size = ~mask + 1;
	addr = size && size <= bar_window_top ? (bar_window_top - size) & ~(size - 1) : 0;
	if (!addr || addr < bar_window_floor())
		addr = 0;
	pci_write32(d, off, (uint32_t)addr | (lo & 0xf));
	if (is64)
		pci_write32(d, off + 4, 0);
	pci_write16(d, 4, cmd);
	if (addr)
		bar_window_top = addr;
	return addr;
}
