/* Serial console: output, the PVH start info, a line read by polling, then
 * lines read through the RX interrupt (IOAPIC pin 4), echoed in capitals;
 * the THRE interrupt must fire when enabled. "quit" ends it. */
#include "guest.h"

#define RX_VECTOR 36

static volatile char ring[256];
static volatile unsigned ring_head, ring_tail;
static volatile unsigned thre_irqs, rx_irqs;

static void uart_irq(unsigned vec, uint64_t *frame)
{
	for (;;) {
		uint8_t iir = inb(COM1 + 2);
		if (iir & 1)
			break;
		if ((iir & 0x0e) == 0x02)
			thre_irqs++;
		while (inb(COM1 + 5) & 1) {
			ring[ring_head++ % sizeof(ring)] = (char)inb(COM1);
			rx_irqs++;
		}
	}
	lapic_eoi();
}

static char getc_poll(void)
{
	while (!(inb(COM1 + 5) & 1))
		pause();
	return (char)inb(COM1);
}

static char getc_irq(void)
{
	for (;;) {
		cli();
		if (ring_tail != ring_head) {
			char c = ring[ring_tail++ % sizeof(ring)];
			sti();
			return c;
		}
		sti_hlt();
	}
}

static int read_line(char *buf, int max, char (*get)(void))
{
	int n = 0;

	for (;;) {
		char c = get();
		if (c == '\n' || c == '\r')
			break;
		if (n < max - 1)
			buf[n++] = c;
	}
	buf[n] = 0;
	return n;
}

static void echo(const char *how, const char *line)
{
	puts_serial("echo (");
	puts_serial(how);
	puts_serial("): ");
	for (const char *p = line; *p; p++)
		putc_serial(*p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p);
	putc_serial('\n');
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int guest_main(struct hvm_start_info *si)
{
	char line[128];
	uint64_t ram = 0;

	if (si->magic != 0x336ec578)
		return 90;
	puts_serial("hello from the serial guest\n");
	gprintf("cmdline: %s\n", si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "");
	const struct { uint64_t addr, size; uint32_t type, res; } *mm =
		(const void *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++)
		if (mm[i].type == 1)
			ram += mm[i].size;
	gprintf("memmap: %u entries, %lu KiB RAM\n", si->memmap_entries, ram >> 10);

	outb(COM1 + 1, 0x00); /* polling first */
	read_line(line, sizeof(line), getc_poll);
	echo("polled", line);

	idt_init();
	idt_set_handler(RX_VECTOR, uart_irq);
	pic_mask_all();
	lapic_enable();
	ioapic_route(4, RX_VECTOR);
	outb(COM1 + 4, 0x0b); /* DTR, RTS, OUT2: the IRQ line reaches the IOAPIC */
	outb(COM1 + 1, 0x03); /* RX data and THRE interrupts */
	sti();
	for (int i = 0; i < 1000 && thre_irqs == 0; i++)
		pause();
	outb(COM1 + 1, 0x01);
	gprintf("thre interrupt: %s\n", thre_irqs ? "yes" : "no");
	for (;;) {
		read_line(line, sizeof(line), getc_irq);
		if (streq(line, "quit"))
			break;
		echo("interrupt", line);
	}
	gprintf("bye (rx interrupts: %s)\n", rx_irqs ? "yes" : "no");
	return 0;
}
