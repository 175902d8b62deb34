/* 16550A UART (8250 family) on COM1: the guest's serial console.
 *
 * Transmission is instant: a byte written to THR goes to the console sink at
 * once and THR is empty again, so THRE is always set and, when the guest
 * enabled it, the THRE interrupt follows every write (Linux's interrupt-driven
 * transmit path waits for it). Received bytes queue in a 4 KiB buffer that
 * stands in for the 16-byte FIFO; the RX interrupt stays up while data waits.
 * The interrupt reaches the PIC/IOAPIC only with MCR.OUT2 set, as on a PC. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vm/console.h"
#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

enum {
	UART_RBR = 0, UART_IER = 1, UART_IIR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08
#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_RLSI  0x06
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB  0x80
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_BI    0x10
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

#define RX_SIZE 4096

/* The whole device state, saved and restored as it is. */
struct serial_state {
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	uint8_t lsr_err;      /* OE/BI, cleared by reading LSR */
	uint8_t msr_delta;    /* low nibble of MSR, cleared by reading MSR */
	uint8_t thr_ipending; /* THRE interrupt pending */
	uint8_t irq_level;    /* what the line was last set to */
	uint8_t pad;
	uint16_t rx_head, rx_count;
	uint8_t rx[RX_SIZE];
};

struct serial {
	struct dev dev;
	pthread_mutex_t lock;
	unsigned irq;
	struct serial_state s;
};

static uint8_t serial_iir(const struct serial_state *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RLSI) && s->lsr_err)
		return fifo | IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return fifo | IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr_delta & 0x0f))
		return fifo | IIR_MSI;
	return fifo | IIR_NONE;
}

/* Called with the lock held after every state change. */
static void serial_update_irq(struct serial *u)
{
	uint8_t level = !(serial_iir(&u->s) & IIR_NONE) && (u->s.mcr & MCR_OUT2);

	if (level != u->s.irq_level) {
		u->s.irq_level = level;
		vm_irq_line(u->dev.vm, u->irq, level);
	}
}

static size_t rx_push(struct serial_state *s, const uint8_t *b, size_t len)
{
	size_t n = 0;

	while (n < len && s->rx_count < RX_SIZE) {
		s->rx[(s->rx_head + s->rx_count) % RX_SIZE] = b[n++];
		s->rx_count++;
	}
	return n;
}

static uint8_t rx_pop(struct serial_state *s)
{
	uint8_t c;

	if (s->rx_count == 0)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_SIZE;
	s->rx_count--;
	return c;
}

static uint8_t serial_msr(const struct serial_state *s)
{
	uint8_t m = s->msr_delta & 0x0f;

	if (s->mcr & MCR_LOOP) {
		/* Loopback wires the modem outputs back to the inputs (the
		 * 8250 driver's probe checks this). */
		if (s->mcr & MCR_RTS)
			m |= MSR_CTS;
		if (s->mcr & MCR_DTR)
			m |= MSR_DSR;
		if (s->mcr & MCR_OUT1)
			m |= MSR_RI;
		if (s->mcr & MCR_OUT2)
			m |= MSR_DCD;
		return m;
	}
	return m | MSR_DCD | MSR_DSR | MSR_CTS;
}

static uint8_t serial_read_reg(struct serial *u, unsigned reg)
{
	struct serial_state *s = &u->s;
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		return rx_pop(s);
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		v = serial_iir(s);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_ipending = 0;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | s->lsr_err | (s->rx_count ? LSR_DR : 0);
		s->lsr_err = 0;
		return v;
	case UART_MSR:
		v = serial_msr(s);
		s->msr_delta = 0;
		return v;
	default:
		return s->scr;
	}
}

static void serial_transmit(struct serial *u, uint8_t c)
{
	struct serial_state *s = &u->s;

	if (s->mcr & MCR_LOOP) {
		if (rx_push(s, &c, 1) == 0)
			s->lsr_err |= LSR_OE;
	} else {
		console_output(u->dev.vm, CONSOLE_SERIAL, &c, 1);
	}
	/* Sent at once: THR is empty again. */
	s->thr_ipending = 1;
}

static void serial_write_reg(struct serial *u, unsigned reg, uint8_t v)
{
	struct serial_state *s = &u->s;

	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_transmit(u, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI with THR empty raises the interrupt at once,
		 * as a 16550 does (Linux probes for that). */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_ipending = 1;
		s->ier = v & 0x0f;
		break;
	case UART_IIR: /* FCR */
		if (v & FCR_CLEAR_RX)
			s->rx_count = 0;
		s->fcr = v & 0xc9;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only */
	default:
		s->scr = v;
		break;
	}
}

static void serial_io_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct serial *u = opaque;

	pthread_mutex_lock(&u->lock);
	/* Wider accesses read consecutive registers, as on the ISA bus. */
	for (unsigned i = 0; i < len; i++)
		((uint8_t *)data)[i] = serial_read_reg(u, (unsigned)(off + i) & 7);
	serial_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void serial_io_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct serial *u = opaque;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		serial_write_reg(u, (unsigned)(off + i) & 7, ((const uint8_t *)data)[i]);
	serial_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static size_t serial_input(void *dev, const void *bytes, size_t len)
{
	struct serial *u = dev;
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = rx_push(&u->s, bytes, len);
	serial_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void serial_reset(struct dev *d)
{
	struct serial *u = (struct serial *)d;

	pthread_mutex_lock(&u->lock);
	memset(&u->s, 0, sizeof(u->s));
	u->s.dll = 12; /* 9600 baud, the power-on divisor */
	vm_irq_line(d->vm, u->irq, 0);
	pthread_mutex_unlock(&u->lock);
}

static void serial_save(struct dev *d, void *state)
{
	struct serial *u = (struct serial *)d;

	pthread_mutex_lock(&u->lock);
	memcpy(state, &u->s, sizeof(u->s));
	pthread_mutex_unlock(&u->lock);
}

static int serial_check(struct dev *d, const void *state, struct tv_err *err)
{
	struct serial_state s;

	memcpy(&s, state, sizeof(s));
	if (s.rx_head >= RX_SIZE || s.rx_count > RX_SIZE)
		return tv_errf(err, "%s: receive queue out of range (head %u, count %u)", d->name,
			       s.rx_head, s.rx_count);
	return 0;
}

static int serial_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct serial *u = (struct serial *)d;
	struct serial_state s;

	memcpy(&s, state, sizeof(s));
	if (serial_check(d, state, err) != 0)
		return -1;
	s.irq_level = !s.irq_level; /* forces the line to be set again */
	pthread_mutex_lock(&u->lock);
	u->s = s;
	serial_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static void serial_destroy(struct dev *d)
{
	struct serial *u = (struct serial *)d;

	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct dev_ops serial_ops = {
	.reset = serial_reset,
	.state_size = sizeof(struct serial_state),
	.save = serial_save,
	.restore = serial_restore,
	.check = serial_check,
	.destroy = serial_destroy,
};

static const struct dev_io_ops serial_io = {
	.read = serial_io_read,
	.write = serial_io_write,
};

int serial8250_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct serial *u = xcalloc(1, sizeof(*u));

	(void)cfg;
	u->dev.name = "serial0";
	u->dev.ops = &serial_ops;
	u->irq = LAYOUT_COM1_IRQ;
	u->s.dll = 12;
	pthread_mutex_init(&u->lock, NULL);
	dev_register(vm, &u->dev);
	if (dev_add_pio(vm, &u->dev, LAYOUT_COM1_PORT, 8, &serial_io, u, err) < 0)
		return -1;
	console_attach_input(vm, CONSOLE_SERIAL, serial_input, u);
	return 0;
}
