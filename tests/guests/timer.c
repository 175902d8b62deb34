/* Timer interrupts: the PIT (IRQ0, IOAPIC pin 2 through the GSI 0 -> pin 2
 * route) at 1 kHz, and the LAPIC timer in periodic mode. */
#include "guest.h"

#define PIT_VECTOR 32
#define LAPIC_VECTOR 48
#define TICKS 20

static volatile unsigned pit_ticks, lapic_ticks;

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
	return pit_ticks >= TICKS && lapic_ticks >= TICKS ? 0 : 1;
}
