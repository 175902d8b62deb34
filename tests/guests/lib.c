#include <stdarg.h>

#include "guest.h"

void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		pause();
	outb(COM1, (uint8_t)c);
}

void puts_serial(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

void put_dec(uint64_t v)
{
	char buf[24];
	int n = 0;

	do
		buf[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		putc_serial(buf[--n]);
}

void put_hex(uint64_t v)
{
	char buf[16];
	int n = 0;

	do
		buf[n++] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) != 0);
	while (n > 0)
		putc_serial(buf[--n]);
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc_serial(*fmt);
			continue;
		}
		bool is_long = false;
		if (fmt[1] == 'l') {
			is_long = true;
			fmt++;
		}
		switch (*++fmt) {
		case 's':
			puts_serial(va_arg(ap, const char *));
			break;
		case 'c':
			putc_serial((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);
			if (v < 0) {
				putc_serial('-');
				v = -v;
			}
			put_dec((uint64_t)v);
			break;
		}
		case 'u':
			put_dec(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned));
			break;
		case 'x':
			put_hex(is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned));
			break;
		default:
			putc_serial(*fmt);
			break;
		}
	}
	va_end(ap);
}

static volatile int print_spin;

void print_lock(void)
{
	while (__atomic_exchange_n(&print_spin, 1, __ATOMIC_ACQUIRE))
		pause();
}

void print_unlock(void)
{
	__atomic_store_n(&print_spin, 0, __ATOMIC_RELEASE);
}

/* ---- interrupts ---- */

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
static irq_handler handlers[256];

#define STUBS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) \
	X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(32) X(36) X(40) X(48) X(128) X(255)
#define DECL(n) extern char isr_##n[];
STUBS(DECL)

static void idt_gate(unsigned vec, void *fn, unsigned dpl)
{
	uintptr_t a = (uintptr_t)fn;

	idt[vec] = (struct idt_entry){
		.off_lo = (uint16_t)a, .sel = 0x08, .ist = 0, .type = (uint8_t)(0x8e | dpl << 5),
		.off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32)};
}

static void unexpected(unsigned vec, uint64_t *frame)
{
	print_lock();
	gprintf("unexpected exception %u error %lx at rip %lx\n", vec, frame[10], frame[11]);
	print_unlock();
	guest_exit(99);
}

void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) ptr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
#define SET(n) idt_gate(n, isr_##n, 0);
	STUBS(SET)
	for (unsigned i = 0; i < 32; i++)
		handlers[i] = unexpected;
	__asm__ volatile("lidt %0" : : "m"(ptr));
}

void idt_set_handler(unsigned vec, irq_handler h)
{
	handlers[vec & 255] = h;
}

void idt_user_gate(unsigned vec)
{
	idt[vec].type |= 3 << 5;
}

void irq_dispatch(uint64_t vec, uint64_t *frame)
{
	if (handlers[vec & 255])
		handlers[vec & 255]((unsigned)vec, frame);
}

void pic_mask_all(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void lapic_enable(void)
{
	lapic_write(0xf0, 0x1ff); /* software enable, spurious vector 255 */
}

unsigned apic_id(void)
{
	return lapic_read(0x20) >> 24;
}

void ioapic_route(unsigned pin, unsigned vector)
{
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, 0); /* destination: APIC id 0 */
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector);
}

/* Guests without APs still link. */
__attribute__((weak)) void ap_main(unsigned index)
{
	(void)index;
}

static void lapic_icr(uint32_t lo)
{
	lapic_write(0x310, 0);
	lapic_write(0x300, lo);
	while (lapic_read(0x300) & (1 << 12))
		pause();
}

extern char ap_tramp_start[], ap_tramp_end[];

void start_aps(volatile unsigned *up, unsigned want)
{
	volatile char *dst = (volatile char *)0x10000;

	for (char *p = ap_tramp_start; p < ap_tramp_end; p++)
		*dst++ = *p;
	lapic_enable();
	lapic_icr(0xc4500); /* INIT, all but self */
	lapic_icr(0xc4610); /* SIPI, vector 0x10: start at 0x10000 */
	for (unsigned long i = 0; i < 20000000UL && *up < want; i++) {
		if (i == 200000)
			lapic_icr(0xc4610); /* the second SIPI of the protocol */
		pause();
	}
}
