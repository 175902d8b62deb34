/* ACPI tables for the termvisor machine (vm/layout.h): RSDP (revision 2),
 * XSDT, FADT (revision 6, hardware-reduced off: PM1a event/control blocks,
 * PM timer, SCI, reset register), DSDT (\_S0, \_S5, the PCI host bridge with
 * its resources and interrupt routing), MADT (a local APIC per vCPU, the
 * IOAPIC, interrupt source overrides, LAPIC NMI) and MCFG (PCI ECAM).
 *
 * A pure function of its configuration: it writes the tables into guest
 * memory through vm/mem.h and touches nothing else, so it runs the same on a
 * VM's RAM and on a buffer in a unit test. */
#ifndef TV_ACPI_H
#define TV_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vm/mem.h"

struct acpi_config {
	unsigned ncpus;		  /* 1 .. LAYOUT_MAX_CPUS */
	const uint32_t *apic_ids; /* ncpus APIC ids, or NULL for 0 .. ncpus-1 */
	uint64_t base;		  /* where the tables go; 0 means LAYOUT_ACPI_BASE */
	uint64_t size;		  /* room there; 0 means LAYOUT_ACPI_SIZE */
};

/* The reset register the FADT names: writing ACPI_RESET_VALUE to the i8042
 * command port resets the machine (the engine's i8042 handles it). */
#define ACPI_RESET_PORT	 0x64
#define ACPI_RESET_VALUE 0xFE

/* The sleep type the DSDT's \_S5 package gives: PM1_CNT.SLP_TYP = 5 with
 * SLP_EN powers off (vm/dev/acpi-pm.c). \_S0 is type 0. */
#define ACPI_SLP_TYP_S5 5
#define ACPI_SLP_TYP_S0 0

/* Table signatures and sizes in order of layout, for tests and diagnostics. */
#define ACPI_OEM_ID	  "TRMVSR"
#define ACPI_OEM_TABLE_ID "TVMACHIN"

/* Writes every table into [cfg->base, cfg->base + cfg->size) of mem, the
 * RSDP first (16-byte aligned, at the start of the area, which lies inside
 * the BIOS area 0xE0000-0xFFFFF that a kernel scans when nothing else gives
 * it the RSDP). *rsdp_gpa is its address, for the zero page's acpi_rsdp_addr
 * and PVH's rsdp_paddr. -1 with err when the configuration is out of range or
 * the tables do not fit in RAM there. */
int acpi_build(const struct acpi_config *cfg, struct guest_mem *mem, uint64_t *rsdp_gpa,
	       struct tv_err *err);

#endif
