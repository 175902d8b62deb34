/* Interrupts: the IDT, a TSS per CPU, the local APIC, the IOAPIC routes for the PIT tick
 * and the UART, and the 100 Hz tick everything that waits sleeps on. */
#include "demo.h"

struct idt_entry {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

struct tss {
	uint32_t res0;
	uint64_t rsp[3];
	uint64_t res1;
	uint64_t ist[7];
	uint64_t res2;
	uint16_t res3, iomap;
} __attribute__((packed));

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vec, err, rip, cs, rflags, rsp, ss;
};

extern uint64_t gdt[];
extern char gdt_end[];
extern char exc_stubs[], isr_timer[], isr_serial[], isr_spurious[], isr_ud[], isr_sci[],
    isr_virtio[];
extern char istacks[];

static struct idt_entry idt[256] __attribute__((aligned(16)));
static struct tss tss[DEMO_MAX_CPUS] __attribute__((aligned(16)));
static uint64_t lapic_base = 0xfee00000;
volatile uint64_t ticks;
static volatile uint64_t tsc_at_tick1, tsc_rate_ms;
static volatile uint32_t pmt_at_tick1;

static void idt_set(unsigned vec, void *handler, unsigned dpl)
{
	uint64_t a = (uint64_t)handler;

	idt[vec] = (struct idt_entry){
	    .off0 = (uint16_t)a,
	    .sel = SEL_KCODE,
	    .type = (uint8_t)(0x8e | dpl << 5),
	    .off1 = (uint16_t)(a >> 16),
	    .off2 = (uint32_t)(a >> 32),
	};
}

/* Loads the GDT, this CPU's TSS (its descriptor rewritten, so a CPU started again after
 * INIT does not trip over the busy bit) and the IDT. */
void cpu_load_tables(unsigned cpu)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = {(uint16_t)(gdt_end - (char *)gdt - 1), (uint64_t)gdt},
				  idtr = {sizeof(idt) - 1, (uint64_t)idt};
	uint64_t base = (uint64_t)&tss[cpu], limit = sizeof(struct tss) - 1;
	uint64_t *d = &gdt[5 + 2 * cpu];

	tss[cpu].rsp[0] = (uint64_t)istacks + 4096 * (cpu + 1) - 16;
	tss[cpu].iomap = sizeof(struct tss);
	d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
	       ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	d[1] = base >> 32;
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS(cpu)));
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* Where user_run keeps the kernel stack pointer for this CPU: at its RSP0. */
uint64_t *cpu_user_slot(unsigned cpu)
{
	return (uint64_t *)tss[cpu].rsp[0];
}

static uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(lapic_base + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(lapic_base + reg, v);
}

uint32_t lapic_id(void)
{
	return lapic_read(0x20) >> 24;
}

void lapic_enable(void)
{
	lapic_write(0xf0, 0x100 | VEC_SPURIOUS);
}

void lapic_eoi(void)
{
	lapic_write(0xb0, 0);
}

void lapic_ipi(uint32_t apic_id, uint32_t icr_low)
{
	lapic_write(0x310, apic_id << 24);
	lapic_write(0x300, icr_low);
	while (lapic_read(0x300) & (1 << 12))
		cpu_relax();
}

static unsigned timer_pins[2], ntimer_pins;

static void ioapic_route(unsigned isa_irq, unsigned pin, unsigned vec, uint32_t dest)
{
	uint16_t fl = acpi.isa_flags[isa_irq];
	uint32_t lo = vec;

	if ((fl & 3) == 3)
		lo |= 1 << 13; /* active low */
	if (((fl >> 2) & 3) == 3)
		lo |= 1 << 15; /* level */
	mmio_write32(acpi.ioapic, 0x10 + 2 * pin + 1);
	mmio_write32(acpi.ioapic + 0x10, dest << 24);
	mmio_write32(acpi.ioapic, 0x10 + 2 * pin);
	mmio_write32(acpi.ioapic + 0x10, lo);
}

void irq_route_isa(unsigned isa_irq, unsigned vec)
{
	ioapic_route(isa_irq, acpi.isa_gsi[isa_irq] - acpi.ioapic_gsi_base, vec, lapic_id());
}

/* The ACPI PM timer (3.579545 MHz), read when the interrupt is handled: unlike the
 * tick count it does not care how late the interrupt came.  0 without one. */
static uint32_t pm_timer_read(void)
{
	return acpi.pm_tmr ? inl(acpi.pm_tmr) : 0;
}

/* TSC ticks per ms over the calibration window: timed by the PM timer where there is
 * one (24 or 32 bits wide), else by the 200 ms of PIT ticks. */
static uint64_t tsc_rate(uint64_t tsc_delta, uint32_t pmt_delta)
{
	if (acpi.pm_tmr) {
		if (!acpi.pm_tmr_32bit)
			pmt_delta &= 0xffffff;
		if (pmt_delta)
			return tsc_delta * 3579545ULL / 1000 / pmt_delta;
	}
	return tsc_delta / (1000 / 5);
}

/* A virtio completion: the waiter looks at its used ring itself. */
void virtio_irq(void)
{
	lapic_eoi();
}

/* The TSC and the PM timer read together. The PM timer is a port read, a trip to
 * the host that a loaded or emulated host can make long, and a long one in either
 * end of the calibration skews the rate (a 10 ms trip is 5% of 200 ms): of four
 * pairs, the one with the shortest trip is kept, the TSC taken halfway through it. */
static void tsc_pmt_pair(uint64_t *tsc, uint32_t *pmt)
{
	uint64_t best = ~0ULL;

	if (!acpi.pm_tmr) {
		*tsc = rdtsc();
		*pmt = 0;
		return;
	}
	for (int i = 0; i < 4; i++) {
		uint64_t t0 = rdtsc();
		uint32_t p = pm_timer_read();
		uint64_t t1 = rdtsc();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = t0 + (t1 - t0) / 2;
			*pmt = p;
		}
	}
}

void timer_irq(void)
{
	uint64_t t = ++ticks, tsc;
	uint32_t pmt;

	if (t == 1) {
		tsc_pmt_pair(&tsc, &pmt);
		tsc_at_tick1 = tsc;
		pmt_at_tick1 = pmt;
	} else if (t == 1 + DEMO_TICK_HZ / 5) {
		tsc_pmt_pair(&tsc, &pmt);
		tsc_rate_ms = tsc_rate(tsc - tsc_at_tick1, pmt - pmt_at_tick1);
	}
	lapic_eoi();
}

/* TSC ticks per millisecond, measured against the PIT over the first 200 ms (0 before). */
uint64_t tsc_per_ms(void)
{
	return tsc_rate_ms;
}

/* The same, waiting for the measurement when asked in the first 200 ms. */
uint64_t tsc_per_ms_wait(void)
{
	for (uint64_t until = ticks + DEMO_TICK_HZ / 2; !tsc_rate_ms && ticks < until;)
		irq_wait();
	return tsc_rate_ms;
}

static void pit_start(void)
{
	outb(0x43, 0x34); /* channel 0, rate generator */
	outb(0x40, (1193182 / DEMO_TICK_HZ) & 0xff);
	outb(0x40, (1193182 / DEMO_TICK_HZ) >> 8);
}

static void timer_mask(int masked)
{
	for (unsigned i = 0; i < ntimer_pins; i++) {
		mmio_write32(acpi.ioapic, 0x10 + 2 * timer_pins[i]);
		uint32_t lo = mmio_read32(acpi.ioapic + 0x10);
		mmio_write32(acpi.ioapic + 0x10, masked ? lo | 1u << 16 : lo & ~(1u << 16));
	}
}

/* Stops the tick while the shell waits for a key, so an idle guest costs its host
 * nothing.  The PIT goes to one-shot mode with one last count: writing the mode alone
 * stops QEMU's PIT but not KVM's, whose timer keeps its period until a count is loaded;
 * the masked pin keeps that last interrupt from waking us.  Only for use once the TSC
 * is calibrated: uptime then comes from the TSC. */
void timer_idle(int idle)
{
	if (idle) {
		timer_mask(1);
		outb(0x43, 0x30); /* channel 0, mode 0: interrupt on terminal count, once */
		outb(0x40, 0xff);
		outb(0x40, 0xff);
	} else {
		pit_start();
		timer_mask(0);
	}
}

/* Milliseconds since the first instruction: from the TSC once calibrated, else from the
 * tick. */
uint64_t uptime_ms(void)
{
	if (tsc_rate_ms)
		return (rdtsc() - boot_tsc_start) / tsc_rate_ms;
	return ticks * (1000 / DEMO_TICK_HZ);
}

void sleep_ticks(uint64_t n)
{
	uint64_t until = ticks + n;

	while (ticks < until)
		irq_wait();
}

void panic(const char *why)
{
	printf("\n" C_RED "panic: %s" C_RESET "\n", why);
	for (;;)
		__asm__ volatile("cli; hlt");
}

void exception_handler(struct frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("\n" C_RED "exception %lu (error %lx) on cpu with APIC id %u at rip %lx, cs %lx, "
	       "rsp %lx, cr2 %lx" C_RESET "\n",
	       f->vec, f->err, lapic_id(), f->rip, f->cs, f->rsp, cr2);
	panic("stopped");
}

void irq_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		idt_set(v, exc_stubs + 16 * v, 0);
	idt_set(VEC_TIMER, isr_timer, 0);
	idt_set(VEC_SERIAL, isr_serial, 0);
	idt_set(VEC_SPURIOUS, isr_spurious, 0);
	idt_set(VEC_SCI, isr_sci, 0);
	idt_set(VEC_VIRTIO, isr_virtio, 0);
	idt_set(6, isr_ud, 0); /* also the way back from CPL 3 */
	cpu_load_tables(0);

	lapic_base = rdmsr(0x1b) & ~0xfffULL;
	lapic_enable();
	outb(0x21, 0xff); /* the 8259s stay masked: the IOAPIC delivers */
	outb(0xa1, 0xff);
	timer_pins[ntimer_pins++] = acpi.isa_gsi[0] - acpi.ioapic_gsi_base;
	/* Without an override for IRQ 0 the PIT may still be wired to pin 2, as on every PC
	 * (QEMU's microvm is such a machine): listen there too, pin 2 carries nothing else. */
	if (acpi.isa_gsi[0] == 0)
		timer_pins[ntimer_pins++] = 2 - acpi.ioapic_gsi_base;
	for (unsigned i = 0; i < ntimer_pins; i++)
		ioapic_route(0, timer_pins[i], VEC_TIMER, lapic_id());
	ioapic_route(4, acpi.isa_gsi[4] - acpi.ioapic_gsi_base, VEC_SERIAL, lapic_id());
	pit_start();
}
