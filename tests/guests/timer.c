/* Timer interrupts: the PIT (IRQ0, IOAPIC pin 2 through the GSI 0 -> pin 2
 * route) at 1 kHz, the LAPIC timer in periodic mode, and the LAPIC timer in
 * TSC-deadline mode, which CPUID.1:ECX[24] must advertise (KVM emulates it
 * but leaves the bit to userspace). */
#include "guest.h"

#define PIT_VECTOR 32
#define LAPIC_VECTOR 48
#define DEADLINE_VECTOR 40 /* one of the vectors lib.c has a stub for */
#define MSR_TSC_DEADLINE 0x6e0
#define TICKS 20

static volatile unsigned pit_ticks, lapic_ticks, deadline_ticks;

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* One-shot: each interrupt arms the next deadline, 100k TSC ticks ahead. */
static void on_deadline(unsigned vec, uint64_t *frame)
{
	if (++deadline_ticks < TICKS)
		wrmsr(MSR_TSC_DEADLINE, rdtsc() + 100000);
	lapic_eoi();
}

/* The TSC-deadline mode, when CPUID.1:ECX[24] advertises it. */
static int tsc_deadline(void)
{
	uint32_t r[4];
	uint64_t t0;

	cpuid(1, 0, r);
	if (!(r[2] & 1u << 24)) {
		gprintf("tsc-deadline: not advertised (CPUID.1:ECX = %x)\n", r[2]);
		return 1;
	}
	idt_set_handler(DEADLINE_VECTOR, on_deadline);
	lapic_write(0x320, DEADLINE_VECTOR | 2u << 17); /* TSC-deadline mode */
	wrmsr(MSR_TSC_DEADLINE, rdtsc() + 100000);
	t0 = rdtsc();
	while (deadline_ticks < TICKS) {
		cli();
		if (rdtsc() - t0 > 20000000000ULL)
			break;
		sti_hlt();
	}
	cli();
	wrmsr(MSR_TSC_DEADLINE, 0);
	lapic_write(0x320, 1 << 16);
	gprintf("tsc-deadline: advertised, %u interrupts\n", deadline_ticks);
	return deadline_ticks >= TICKS ? 0 : 1;
}

static void on_pit(unsigned vec, uint64_t *frame)
{
	pit_ticks++;
	lapic_eoi();
}

static void on_lapic(unsigned vec, uint64_t *frame)
{
	lapic_ticks++;
	lapic_eoi();
}

int guest_main(struct hvm_start_info *si)
{
	uint64_t t0;

	idt_init();
	idt_set_handler(PIT_VECTOR, on_pit);
	idt_set_handler(LAPIC_VECTOR, on_lapic);
	pic_mask_all();
	lapic_enable();
	ioapic_route(2, PIT_VECTOR);
	outb(0x43, 0x34); /* channel 0, lo/hi, mode 2 */
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
	lapic_write(0x3e0, 0xb);	       /* divide by 1 */
	lapic_write(0x320, LAPIC_VECTOR | 1 << 17); /* periodic */
	lapic_write(0x380, 200000);
	t0 = rdtsc();
	while (pit_ticks < TICKS || lapic_ticks < TICKS) {
		cli();
		if (rdtsc() - t0 > 20000000000ULL)
			break;
		sti_hlt();
	}
	cli();
	lapic_write(0x320, 1 << 16); /* masked */
	gprintf("pit ticks: %u\nlapic ticks: %u\n", pit_ticks >= TICKS ? TICKS : pit_ticks,
		lapic_ticks >= TICKS ? TICKS : lapic_ticks);
	outb(0x43, 0x30); /* the PIT to one-shot, so only the deadline fires */
	outb(0x40, 0);
	outb(0x40, 0);
	if (tsc_deadline() != 0)
		return 1;
	return pit_ticks >= TICKS && lapic_ticks >= TICKS ? 0 : 1;
}
