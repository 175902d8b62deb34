/* The console: an 8250/16550 UART on COM1.  Output fills the transmit FIFO 16 bytes at a
 * time (one status read per burst rather than per byte: each port access is a trip to
 * the host); input arrives by the receive interrupt into a small ring.  With console=hvc0
 * (the last console= of the command line) and a virtio console, both move to hvc0 once
 * its driver is up (virtio_console.c). */
#include "demo.h"

#define COM1	 0x3f8
#define RBR	 0
#define THR	 0
#define IER	 1
#define FCR	 2
#define LCR	 3
#define MCR	 4
#define LSR	 5
#define LSR_DR	 0x01
#define LSR_THRE 0x20

static volatile uint8_t rx_ring[256];
static volatile uint8_t rx_head, rx_tail;
static size_t tx_fifo = 1; /* bytes the transmitter takes once THRE is set */

void console_init(void)
{
	outb(COM1 + IER, 0);
	outb(COM1 + LCR, 0x80); /* DLAB: 115200 baud */
	outb(COM1 + 0, 1);
	outb(COM1 + 1, 0);
	outb(COM1 + LCR, 0x03);		      /* 8N1 */
	outb(COM1 + FCR, 0x07);		      /* FIFOs on and cleared */
	if ((inb(COM1 + FCR) & 0xc0) == 0xc0) /* IIR: a 16550 with working FIFOs */
		tx_fifo = 16;
	outb(COM1 + MCR, 0x0b); /* DTR, RTS, OUT2 (gates the IRQ line on PCs) */
	outb(COM1 + IER, 0x01); /* receive interrupt */
}

static void tx_burst(const char *s, size_t n)
{
	while (!(inb(COM1 + LSR) & LSR_THRE))
		cpu_relax();
	for (size_t i = 0; i < n; i++) {
		if (i && i % tx_fifo == 0)
			while (!(inb(COM1 + LSR) & LSR_THRE))
				cpu_relax();
		outb(COM1 + THR, (uint8_t)s[i]);
	}
}

/* Sends s, turning "\n" into "\r\n" for the raw terminal on the other side. */
void console_write(const char *s, size_t n)
{
	char buf[16];
	size_t len = 0;

	if (vcon_active()) {
		size_t start = 0;

		for (size_t i = 0; i < n; i++)
			if (s[i] == '\n') {
				vcon_write(s + start, i - start);
				vcon_write("\r\n", 2);
				start = i + 1;
			}
		vcon_write(s + start, n - start);
		vcon_written();
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			buf[len++] = '\r';
		buf[len++] = s[i];
		if (len >= sizeof(buf) - 1) {
			tx_burst(buf, len);
			len = 0;
		}
	}
	if (len)
		tx_burst(buf, len);
}

void console_puts(const char *s)
{
	console_write(s, strlen(s));
}

void printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	console_write(buf, (size_t)n);
}

static void rx_drain(void)
{
	while (inb(COM1 + LSR) & LSR_DR) {
		uint8_t c = inb(COM1 + RBR);
		if ((uint8_t)(rx_head + 1) != rx_tail) {
			rx_ring[rx_head] = c;
			rx_head++;
		}
	}
}

void serial_irq(void)
{
	rx_drain();
	lapic_eoi();
}

/* Called with interrupts off (the shell runs so, enabling them only to halt). */
int console_trygetc(void)
{
	acpi_power_button_poll();
	if (vcon_active())
		return vcon_getc();
	if (rx_head == rx_tail)
		rx_drain(); /* also works where no interrupt was ever routed */
	if (rx_head == rx_tail)
		return -1;
	int c = rx_ring[rx_tail];
	rx_tail++;
	return c;
}

int console_getc(void)
{
	int c, idle = 0;

	while ((c = console_trygetc()) < 0) {
		vcon_flush(); /* what a batch left, before halting */
		if (!idle && tsc_per_ms()) /* uptime no longer needs the tick */
			idle = 1, timer_idle(1);
		irq_wait();
		net_idle_poll();
	}
	if (idle)
		timer_idle(0);
	return c;
}
