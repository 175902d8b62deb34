/* Freestanding helpers for the test guests: port I/O, the COM1 UART, the
 * APICs, an IDT, printing. No libc: these run on the bare (virtual) machine. */
#ifndef GUEST_H
#define GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COM1 0x3f8
#define LAPIC_BASE 0xfee00000UL
#define IOAPIC_BASE 0xfec00000UL

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void sti(void) { __asm__ volatile("sti"); }
static inline void cli(void) { __asm__ volatile("cli"); }
static inline void hlt(void) { __asm__ volatile("hlt"); }
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt"); }
static inline void pause(void) { __asm__ volatile("pause"); }

static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

static inline uint32_t lapic_read(unsigned reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(unsigned reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline void lapic_eoi(void) { lapic_write(0xb0, 0); }

/* The debug-exit port: ends the VM with this code. */
__attribute__((noreturn)) void guest_exit(int code);

void putc_serial(char c);
void puts_serial(const char *s);
void put_dec(uint64_t v);
void put_hex(uint64_t v);
/* A tiny printf: %s %d %u %x %c, with an optional l. */
void gprintf(const char *fmt, ...);
/* Serialises printing between CPUs. */
void print_lock(void);
void print_unlock(void);

/* IDT: every stub from start.S installed; handlers set per vector. The
 * default handler reports an unexpected exception and exits with 99. */
typedef void (*irq_handler)(unsigned vec, uint64_t *frame);
void idt_init(void);
void idt_set_handler(unsigned vec, irq_handler h);
void idt_user_gate(unsigned vec); /* callable from ring 3 (int $vec) */

void pic_mask_all(void);
void lapic_enable(void);
/* Routes IOAPIC pin to vector on the BSP (edge, active high, unmasked). */
void ioapic_route(unsigned pin, unsigned vector);
unsigned apic_id(void);

/* Wakes every AP (INIT-SIPI-SIPI; each runs ap_main) and waits a while for
 * *up, which the APs count up, to reach want. */
void start_aps(volatile unsigned *up, unsigned want);

int guest_main(struct hvm_start_info *si);
void ap_main(unsigned index);

#endif
