/* CMOS RTC interrupts on IRQ 8 (IOAPIC pin 8), the way Linux's rtc-cmos
 * driver uses them: register C's flags set whether enabled or not and
 * cleared by reading it, periodic (PIE), update-ended (UIE) and alarm (AIE)
 * interrupts, none while disabled. */
#include "guest.h"

#define RTC_VECTOR 40
#define TICK_VECTOR 48 /* the LAPIC timer wakes the waits below */
#define PERIODIC_IRQS 32

enum { SEC = 0, SEC_ALARM = 1, MIN_ALARM = 3, HOUR_ALARM = 5, REG_A = 10, REG_B = 11, REG_C = 12 };

#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_BIN 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10

static volatile unsigned irqs, spurious;
static volatile uint8_t last_c, all_c;

static uint8_t cmos_read(unsigned r)
{
	outb(0x70, (uint8_t)r);
	return inb(0x71);
}

static void cmos_write(unsigned r, uint8_t v)
{
	outb(0x70, (uint8_t)r);
	outb(0x71, v);
}

/* As rtc-cmos does: read C (which acknowledges), then EOI. One that finds
 * no IRQF (an edge latched before C was last read) is spurious, as for
 * Linux's handler. */
static void on_rtc(unsigned vec, uint64_t *frame)
{
	uint8_t c = cmos_read(REG_C);

	if (c & C_IRQF) {
		last_c = c;
		all_c |= c;
		irqs++;
	} else {
		spurious++;
	}
	lapic_eoi();
}

static void on_tick(unsigned vec, uint64_t *frame)
{
	lapic_eoi();
}

/* Halts with interrupts on until n RTC interrupts came or about 3 s passed. */
static bool wait_irqs(unsigned n)
{
	uint8_t s = cmos_read(SEC);
	unsigned seconds = 0;

	for (;;) {
		cli();
		if (irqs >= n)
			return true;
		uint8_t now = cmos_read(SEC);
		if (now != s) {
			s = now;
			if (++seconds > 3)
				return false;
		}
		sti_hlt();
	}
}

/* Interrupts on for a while (one RTC second), counting what arrives. */
static void idle_one_second(void)
{
	uint8_t s = cmos_read(SEC);

	for (;;) {
		cli();
		if (cmos_read(SEC) != s)
			return;
		sti_hlt();
	}
}

int guest_main(struct hvm_start_info *si)
{
	int bad = 0;
	uint8_t c, sec, alarm;

	idt_init();
	idt_set_handler(RTC_VECTOR, on_rtc);
	idt_set_handler(TICK_VECTOR, on_tick);
	pic_mask_all();
	lapic_enable();
	ioapic_route(8, RTC_VECTOR);
	lapic_write(0x3e0, 0xb);			  /* divide by 1 */
	lapic_write(0x320, TICK_VECTOR | 1 << 17); /* periodic */
	lapic_write(0x380, 10000000);

	/* Binary, 24-hour, no interrupts; 2 Hz periodic rate. */
	cmos_write(REG_B, B_BIN | B_24H);
	cmos_write(REG_A, 0x2f);
	(void)cmos_read(REG_C);
	do {
		sec = cmos_read(SEC);
		c = cmos_read(REG_C);
	} while (!(c & C_PF));
	gprintf("pf without pie: %s\n", c & C_IRQF ? "irqf (wrong)" : "set, no irqf");
	bad |= (c & C_IRQF) != 0;
	/* What the read cleared stays clear; a second that ended between the
	 * two reads (the seconds read before and after differ: a slow host)
	 * rightly sets UF again. */
	c = cmos_read(REG_C);
	if (cmos_read(SEC) != sec && (c & C_UF)) {
		c &= (uint8_t)~C_UF;
		gprintf("# a second ended between the reads: its UF left out\n");
	}
	gprintf("c after read: %x\n", c);
	bad |= c != 0;
	idle_one_second();
	gprintf("irqs while disabled: %u\n", irqs);
	bad |= irqs != 0;

	/* Periodic at 1024 Hz. */
	cmos_write(REG_A, 0x26);
	(void)cmos_read(REG_C);
	cmos_write(REG_B, B_BIN | B_24H | B_PIE);
	bool ok = wait_irqs(PERIODIC_IRQS);
	cmos_write(REG_B, B_BIN | B_24H);
	gprintf("periodic irqs: %u%s, c %x\n", ok ? PERIODIC_IRQS : irqs, ok ? "" : " (too few)",
		all_c & (C_IRQF | C_PF));
	bad |= !ok || (all_c & (C_IRQF | C_PF)) != (C_IRQF | C_PF);

	/* Update-ended: one interrupt as the second changes. */
	cmos_write(REG_A, 0x20); /* no periodic rate */
	(void)cmos_read(REG_C);
	irqs = 0;
	all_c = 0;
	last_c = 0;
	sec = cmos_read(SEC);
	cmos_write(REG_B, B_BIN | B_24H | B_UIE);
	ok = wait_irqs(1);
	cmos_write(REG_B, B_BIN | B_24H);
	gprintf("update irq: %s, c %x, second %s\n", ok ? "yes" : "no", last_c,
		cmos_read(SEC) != sec ? "advanced" : "same");
	bad |= !ok || (last_c & (C_IRQF | C_UF)) != (C_IRQF | C_UF) || (last_c & C_PF);

	/* Alarm two seconds ahead, any minute and hour. */
	irqs = 0;
	sec = cmos_read(SEC);
	alarm = (uint8_t)((sec + 2) % 60);
	cmos_write(SEC_ALARM, alarm);
	cmos_write(MIN_ALARM, 0xff);
	cmos_write(HOUR_ALARM, 0xff);
	(void)cmos_read(REG_C);
	cmos_write(REG_B, B_BIN | B_24H | B_AIE);
	ok = wait_irqs(1);
	sec = cmos_read(SEC);
	cmos_write(REG_B, B_BIN | B_24H);
	gprintf("alarm irq: %s, c %x, at the alarm second: %s\n", ok ? "yes" : "no",
		last_c & (C_IRQF | C_AF), sec == alarm ? "yes" : "no");
	bad |= !ok || (last_c & (C_IRQF | C_AF)) != (C_IRQF | C_AF) || sec != alarm;

	/* Disabled again: nothing more arrives. */
	irqs = 0;
	(void)cmos_read(REG_C);
	idle_one_second();
	gprintf("irqs after disabling: %u\n", irqs);
	bad |= irqs != 0;
	cli();
	lapic_write(0x320, 1 << 16); /* masked */
	gprintf("spurious: %u\n", spurious);
	return bad;
}
