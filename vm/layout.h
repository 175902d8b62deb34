/* The fixed x86-64 machine every termvisor VM is: where RAM, holes, chips,
 * tables and boot structures live. Devices, ACPI tables and the boot code all
 * take their addresses from here, so they cannot disagree.
 *
 * Guest physical map:
 *   [0, min(ram, 3 GiB))            RAM (first part)
 *   [0xC0000000, 0xE0000000)        PCI 32-bit MMIO BAR window
 *   [0xE0000000, 0xF0000000)        PCI ECAM (MCFG), 256 buses
 *   0xFEC00000                      IOAPIC (in-kernel)
 *   0xFEE00000                      LAPIC (in-kernel)
 *   0xFFFBD000                      KVM TSS (3 pages)
 *   [4 GiB, 4 GiB + ram - 3 GiB)    RAM above the hole, when ram > 3 GiB
 *
 * Low memory (all inside RAM; e820 marks [0x9FC00, 1 MiB) reserved):
 *   0x00500  GDT for the 64-bit boot entry
 *   0x06000  PVH hvm_start_info, module list, memory map
 *   0x07000  Linux zero page (boot_params)
 *   0x08FF0  initial stack top
 *   0x09000  identity page tables (PML4, PDPT, 4 PDs: 4 GiB in 2 MiB pages)
 *   0x20000  kernel command line
 *   0xE0000  ACPI tables, up to 0xFFFFF (the RSDP first, 16-byte aligned)
 *   1 MiB    kernel
 *
 * Interrupt routing (set by the engine with KVM_SET_GSI_ROUTING, as QEMU does):
 *   GSI 0-15  -> the PICs (master 0-7, slave 8-15)
 *   GSI 0     -> IOAPIC pin 2 (the PIT's IRQ0), GSI 1, 3-23 -> IOAPIC pin = GSI
 *   GSI 24+   -> free (MSI goes through KVM_SIGNAL_MSI, no route needed)
 * The MADT that matches it: one Interrupt Source Override
 *   bus 0, source IRQ 0 -> GSI 2, flags 0 (conforming),
 * and one for the SCI:
 *   bus 0, source IRQ 9 -> GSI 9, flags 0x000D (level-triggered, active high).
 * Every other ISA IRQ is identity-mapped, edge, active high. PCI INTx lines
 * are GSIs 16-23, level-triggered, active high (PCI_INTX_GSI below; a DSDT
 * _PRT lists them).
 */
#ifndef TV_LAYOUT_H
#define TV_LAYOUT_H

#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* RAM below the hole ends here at most; the rest goes from 4 GiB up. */
#define LAYOUT_LOW_RAM_END   0xC0000000ULL
#define LAYOUT_HIGH_RAM_BASE 0x100000000ULL

#define LAYOUT_PCI_MMIO_BASE 0xC0000000ULL
#define LAYOUT_PCI_MMIO_SIZE 0x20000000ULL
#define LAYOUT_PCI_ECAM_BASE 0xE0000000ULL
#define LAYOUT_PCI_ECAM_SIZE 0x10000000ULL
#define LAYOUT_PCI_ECAM_BUSES 256
#define LAYOUT_IOAPIC_BASE   0xFEC00000ULL
#define LAYOUT_IOAPIC_ID     0 /* what the in-kernel IOAPIC reports; QEMU uses 0 too */
#define LAYOUT_IOAPIC_PINS   24
#define LAYOUT_LAPIC_BASE    0xFEE00000ULL
#define LAYOUT_TSS_ADDR      0xFFFBD000ULL

/* e820: [0, EBDA) RAM, [EBDA, 1 MiB) reserved (tables, BIOS area). */
#define LAYOUT_EBDA_START    0x9FC00ULL
#define LAYOUT_HIMEM_START   0x100000ULL

#define LAYOUT_GDT_ADDR       0x500ULL
#define LAYOUT_PVH_INFO_ADDR  0x6000ULL /* hvm_start_info, then modules, then memmap */
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ULL
#define LAYOUT_STACK_TOP      0x8FF0ULL
#define LAYOUT_PGTABLE_ADDR   0x9000ULL /* PML4; PDPT +0x1000; PDs +0x2000..+0x5FFF */
#define LAYOUT_CMDLINE_ADDR   0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x10000ULL /* bytes, the terminating NUL included */
/* A PVH kernel finds no limit in its ELF: x86 Linux copies at most
 * COMMAND_LINE_SIZE (2048) bytes, the NUL included, and cuts the rest off
 * silently, so a longer one is refused. */
#define LAYOUT_PVH_CMDLINE_MAX 2048ULL
#define LAYOUT_ACPI_BASE      0xE0000ULL
#define LAYOUT_ACPI_SIZE      0x20000ULL
#define LAYOUT_KERNEL_ADDR    0x100000ULL

/* ISA devices. */
#define LAYOUT_COM1_PORT      0x3F8
#define LAYOUT_COM1_IRQ       4
#define LAYOUT_I8042_DATA     0x60
#define LAYOUT_I8042_CMD      0x64
#define LAYOUT_I8042_IRQ      1
#define LAYOUT_RTC_PORT       0x70 /* index at 0x70, data at 0x71 */
#define LAYOUT_RTC_IRQ        8
/* debug-exit (test machines only, vm_config.debug_exit): a byte v written to
 * this port ends the VM (VM_EXIT_DEBUG, code v).
 * `termvisor run` exits with status 0 for v = 0, else 64 + (v % 64). */
#define LAYOUT_DEBUG_EXIT_PORT 0xF4

/* ACPI fixed hardware (PM1 event/control blocks, PM timer), SCI. */
#define LAYOUT_ACPI_PM1A_EVT  0x600 /* 4 bytes: status, enable */
#define LAYOUT_ACPI_PM1A_CNT  0x604 /* 2 bytes */
#define LAYOUT_ACPI_PM_TMR    0x608 /* 4 bytes, 3.579545 MHz */
#define LAYOUT_ACPI_SCI_IRQ   9

/* PCI INTx: device (slot) d, pin p (0 = INTA .. 3 = INTD) raises this GSI,
 * level-triggered, active high. */
#define PCI_INTX_GSI(d, p) (16 + (((d) + (p)) % 8))

#define LAYOUT_MAX_CPUS 64

#endif
