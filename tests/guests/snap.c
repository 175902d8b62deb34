/* Snapshots: a guest whose state lives in memory, registers and timers. The
 * BSP counts PIT interrupts (IOAPIC pin 2) and every tenth one adds 1 to a
 * counter in memory and prints it; every vCPU runs its own LAPIC timer, and
 * each line says how many vCPUs' timers ticked since the line before:
 *	count 17 live 4
 * A test that takes a snapshot, lets the guest run on and restores it sees
 * the counter go on from the snapshot's value, with every timer ticking.
 * Ends by itself (exit 0) after 600 lines. */
#include "guest.h"

#define PIT_VECTOR   32
#define LAPIC_VECTOR 48
#define MAX_CPUS     64
#define LINES	     600

static volatile unsigned ap_up;
static volatile uint64_t lapic_ticks[MAX_CPUS];
static volatile uint64_t pit_ticks;
static volatile uint64_t count;

static void on_lapic(unsigned vec, uint64_t *frame)
{
	lapic_ticks[apic_id() % MAX_CPUS]++;
	lapic_eoi();
}

static void on_pit(unsigned vec, uint64_t *frame)
{
	pit_ticks++;
	lapic_eoi();
}

/* Periodic, 10 ms (KVM's LAPIC timer counts at 1 GHz with divide by 1). */
static void lapic_timer_start(void)
{
	lapic_enable();
	lapic_write(0x3e0, 0xb);
	lapic_write(0x320, LAPIC_VECTOR | 1 << 17);
	lapic_write(0x380, 10000000);
}

void ap_main(unsigned index)
{
	idt_init();
	lapic_timer_start();
	__atomic_add_fetch(&ap_up, 1, __ATOMIC_SEQ_CST);
	for (;;)
		sti_hlt();
}

int guest_main(struct hvm_start_info *si)
{
	uint64_t seen[MAX_CPUS] = {0}, last_pit = 0;
	uint32_t r[4];
	unsigned n;

	cpuid(0xb, 1, r);
	n = r[1] & 0xffff;
	if (n < 1 || n > MAX_CPUS)
		n = 1;
	idt_init();
	idt_set_handler(PIT_VECTOR, on_pit);
	idt_set_handler(LAPIC_VECTOR, on_lapic);
	pic_mask_all();
	lapic_enable();
	if (n > 1)
		start_aps(&ap_up, n - 1);
	ioapic_route(2, PIT_VECTOR);
	outb(0x43, 0x34); /* channel 0, lo/hi, rate generator: 100 Hz */
	outb(0x40, 11932 & 0xff);
	outb(0x40, 11932 >> 8);
	lapic_timer_start();
	gprintf("snap: %u of %u cpus up\n", ap_up + 1, n);
	while (count < LINES) {
		unsigned live = 0;

		cli();
		while (pit_ticks - last_pit < 10) {
			sti_hlt();
			cli();
		}
		last_pit = pit_ticks;
		sti();
		count++;
		for (unsigned i = 0; i < n; i++) {
			uint64_t t = lapic_ticks[i];
			if (t != seen[i])
				live++;
			seen[i] = t;
		}
		gprintf("count %lu live %u\n", count, live);
	}
	return 0;
}
