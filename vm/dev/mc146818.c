/* MC146818 CMOS real-time clock: the guest reads the host's wall-clock time
 * (UTC), in BCD or binary and 12- or 24-hour form as register B asks. A time
 * the guest sets is kept as an offset from the host clock. The rest of the
 * 128-byte CMOS RAM is plain storage.
 *
 * Interrupts (IRQ 8), as Linux's rtc-cmos driver uses them: register C holds
 * the flags, set whether or not they are enabled: PF at the periodic rate of
 * register A, UF at the end of each second's update, AF when the time matches
 * the alarm (registers 1, 3 and 5; a value of 0xC0-0xFF matches any). IRQF
 * is set, and the line raised, when a flag is set whose enable bit in
 * register B (PIE, AIE, UIE) is on. Reading C returns the flags and clears
 * them, lowering the line. The flags are worked out from the clocks when C
 * is read; a timer thread, started the first time the guest enables an
 * interrupt, raises the line when one is due. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

enum {
	RTC_SEC = 0x00, RTC_SEC_ALARM = 0x01, RTC_MIN = 0x02, RTC_MIN_ALARM = 0x03,
	RTC_HOUR = 0x04, RTC_HOUR_ALARM = 0x05, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MON = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define REG_A_DV    0x70 /* divider: 010 = 32.768 kHz time base running */
#define REG_A_DV_ON 0x20
#define REG_A_RS    0x0f /* periodic rate select */
#define REG_B_SET   0x80
#define REG_B_PIE   0x40
#define REG_B_AIE   0x20
#define REG_B_UIE   0x10
#define REG_B_DM    0x04 /* binary, not BCD */
#define REG_B_24H   0x02
#define REG_B_IE    (REG_B_PIE | REG_B_AIE | REG_B_UIE)
#define REG_C_IRQF  0x80
#define REG_C_PF    0x40
#define REG_C_AF    0x20
#define REG_C_UF    0x10
#define REG_D_VRT   0x80

#define NS 1000000000LL

/* The device state a snapshot keeps (the interrupt flags live in cmos[C]). */
struct rtc_state {
	uint8_t cmos[128];
	uint8_t index;
	uint8_t pad[7];
	int64_t offset; /* guest time - host time, seconds */
};

struct rtc {
	struct dev dev;
	struct vm *vm;
	pthread_mutex_t lock;
	struct rtc_state s;
	/* Where the flags were last brought up to date. */
	int64_t last_sec;     /* guest wall-clock second */
	int64_t last_period;  /* periodic ticks since the monotonic clock's zero */
	bool line;            /* IRQ 8 raised */
	/* The timer thread. */
	pthread_t thread;
	bool thread_started, stopping;
	int wake_fd; /* eventfd: register B or C changed, or stop */
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static bool is_time_reg(unsigned r)
{
	return r <= RTC_YEAR || r == RTC_CENTURY;
}

static uint8_t to_reg(const struct rtc_state *s, unsigned v)
{
	return (s->cmos[RTC_REG_B] & REG_B_DM) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_reg(const struct rtc_state *s, uint8_t v)
{
	return (s->cmos[RTC_REG_B] & REG_B_DM) ? v : (unsigned)((v >> 4) * 10 + (v & 15));
}

/* An hour register's value as 0-23, from either form. */
static unsigned hour_from_reg(const struct rtc_state *s, uint8_t v)
{
	unsigned hour = from_reg(s, v & 0x7f);

	if (!(s->cmos[RTC_REG_B] & REG_B_24H)) {
		hour %= 12;
		if (v & 0x80)
			hour += 12;
	}
	return hour;
}

/* Seconds of the host's wall clock, exact (time() may lag a clock tick
 * behind the second the timer thread woke up for). */
static int64_t host_time(void)
{
	return clock_ns(CLOCK_REALTIME) / NS;
}

static int64_t guest_time(const struct rtc_state *s)
{
	return host_time() + s->offset;
}

/* Fills the clock registers from host time plus the guest's offset. */
static void rtc_latch(struct rtc_state *s)
{
	time_t t = (time_t)guest_time(s);
	struct tm tm;
	unsigned hour;

	gmtime_r(&t, &tm);
	hour = (unsigned)tm.tm_hour;
	s->cmos[RTC_SEC] = to_reg(s, (unsigned)tm.tm_sec);
	s->cmos[RTC_MIN] = to_reg(s, (unsigned)tm.tm_min);
	if (s->cmos[RTC_REG_B] & REG_B_24H) {
		s->cmos[RTC_HOUR] = to_reg(s, hour);
	} else {
		unsigned h12 = hour % 12 ? hour % 12 : 12;
		s->cmos[RTC_HOUR] = to_reg(s, h12) | (hour >= 12 ? 0x80 : 0);
	}
	s->cmos[RTC_WDAY] = to_reg(s, (unsigned)tm.tm_wday + 1);
	s->cmos[RTC_MDAY] = to_reg(s, (unsigned)tm.tm_mday);
	s->cmos[RTC_MON] = to_reg(s, (unsigned)tm.tm_mon + 1);
	s->cmos[RTC_YEAR] = to_reg(s, (unsigned)(tm.tm_year % 100));
	s->cmos[RTC_CENTURY] = to_reg(s, (unsigned)(tm.tm_year + 1900) / 100);
}

/* The guest finished setting the clock (SET cleared): remember how far its
 * time is from the host's. */
static void rtc_set_from_regs(struct rtc_state *s)
{
	struct tm tm = {0};

	tm.tm_sec = (int)from_reg(s, s->cmos[RTC_SEC]);
	tm.tm_min = (int)from_reg(s, s->cmos[RTC_MIN]);
	tm.tm_hour = (int)hour_from_reg(s, s->cmos[RTC_HOUR]);
	tm.tm_mday = (int)from_reg(s, s->cmos[RTC_MDAY]);
	tm.tm_mon = (int)from_reg(s, s->cmos[RTC_MON]) - 1;
	tm.tm_year = (int)(from_reg(s, s->cmos[RTC_CENTURY]) * 100 +
			   from_reg(s, s->cmos[RTC_YEAR])) - 1900;
	time_t t = timegm(&tm);
	if (t != (time_t)-1)
		s->offset = (int64_t)t - host_time();
}

/* ---- interrupt flags ---- */

/* The periodic interrupt's period, or 0 when it is off (no rate selected or
 * the time base stopped). Rates 1 and 2 give 256 and 128 Hz, as on the chip. */
static int64_t period_ns(const struct rtc_state *s)
{
	unsigned rs = s->cmos[RTC_REG_A] & REG_A_RS;

	if (rs == 0 || (s->cmos[RTC_REG_A] & REG_A_DV) != REG_A_DV_ON)
		return 0;
	if (rs < 3)
		rs += 7;
	return NS / (32768 >> (rs - 1));
}

/* An alarm byte matches v when equal, or always when 0xC0-0xFF. */
static bool alarm_field(const struct rtc_state *s, uint8_t alarm, unsigned v, bool hour)
{
	if ((alarm & 0xc0) == 0xc0)
		return true;
	return (hour ? hour_from_reg(s, alarm) : from_reg(s, alarm)) == v;
}

static bool alarm_matches(const struct rtc_state *s, int64_t t)
{
	int64_t day = ((t % 86400) + 86400) % 86400;

	return alarm_field(s, s->cmos[RTC_SEC_ALARM], (unsigned)(day % 60), false) &&
	       alarm_field(s, s->cmos[RTC_MIN_ALARM], (unsigned)(day / 60 % 60), false) &&
	       alarm_field(s, s->cmos[RTC_HOUR_ALARM], (unsigned)(day / 3600), true);
}

/* Restarts flag keeping from now: nothing is owed for the time before. */
static void flags_sync(struct rtc *c)
{
	int64_t p = period_ns(&c->s);

	c->last_sec = guest_time(&c->s);
	c->last_period = p ? clock_ns(CLOCK_MONOTONIC) / p : 0;
}

/* Sets the flags for what happened since they were last brought up to date,
 * IRQF, and the line. */
static void flags_update(struct rtc *c)
{
	struct rtc_state *s = &c->s;
	int64_t now = guest_time(s), p = period_ns(s);
	uint8_t *flags = &s->cmos[RTC_REG_C];

	if (!(s->cmos[RTC_REG_B] & REG_B_SET) && now > c->last_sec) {
		*flags |= REG_C_UF;
		/* One day covers every alarm; seconds further back cannot differ. */
		for (int64_t t = MAX(c->last_sec + 1, now - 86400 + 1); t <= now; t++)
			if (alarm_matches(s, t)) {
				*flags |= REG_C_AF;
				break;
			}
	}
	c->last_sec = now;
	if (p != 0) {
		int64_t period = clock_ns(CLOCK_MONOTONIC) / p;
		if (period > c->last_period)
			*flags |= REG_C_PF;
		c->last_period = period;
	}
	if (*flags & s->cmos[RTC_REG_B] & REG_B_IE)
		*flags |= REG_C_IRQF;
	if ((*flags & REG_C_IRQF) && !c->line) {
		c->line = true;
		vm_irq_line(c->vm, LAYOUT_RTC_IRQ, 1);
	}
}

static void flags_clear(struct rtc *c)
{
	c->s.cmos[RTC_REG_C] = 0;
	if (c->line) {
		c->line = false;
		vm_irq_line(c->vm, LAYOUT_RTC_IRQ, 0);
	}
}

/* ---- timer thread ---- */

static void thread_wake(struct rtc *c)
{
	uint64_t one = 1;

	if (c->thread_started)
		(void)!write(c->wake_fd, &one, sizeof(one));
}

/* Milliseconds (rounded up) until the next enabled event can set IRQF, or -1
 * to wait for the guest: nothing enabled, or IRQF still set (no edge can
 * come before C is read). */
static int next_event_ms(struct rtc *c)
{
	const struct rtc_state *s = &c->s;
	uint8_t ie = s->cmos[RTC_REG_B] & REG_B_IE;
	int64_t wait = -1, p = period_ns(s);

	if (ie == 0 || (s->cmos[RTC_REG_C] & REG_C_IRQF))
		return -1;
	if ((ie & (REG_B_UIE | REG_B_AIE)) && !(s->cmos[RTC_REG_B] & REG_B_SET))
		wait = NS - clock_ns(CLOCK_REALTIME) % NS;
	if ((ie & REG_B_PIE) && p != 0) {
		int64_t to_tick = p - clock_ns(CLOCK_MONOTONIC) % p;
		wait = wait < 0 ? to_tick : MIN(wait, to_tick);
	}
	if (wait < 0)
		return -1;
	return (int)((wait + 999999) / 1000000);
}

static void *rtc_thread(void *arg)
{
	struct rtc *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		int ms = next_event_ms(c);
		struct pollfd p = {.fd = c->wake_fd, .events = POLLIN};
		uint64_t v;

		pthread_mutex_unlock(&c->lock);
		if (poll(&p, 1, ms) > 0)
			(void)!read(c->wake_fd, &v, sizeof(v));
		pthread_mutex_lock(&c->lock);
		flags_update(c);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Called with the lock held, when the guest first enables an interrupt. */
static void thread_start(struct rtc *c)
{
	pthread_attr_t attr;

	if (c->thread_started || c->wake_fd < 0)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * KIB);
	c->thread_started = pthread_create(&c->thread, &attr, rtc_thread, c) == 0;
	pthread_attr_destroy(&attr);
}

/* ---- registers ---- */

static uint8_t rtc_read_reg(struct rtc *c, unsigned r)
{
	struct rtc_state *s = &c->s;
	uint8_t v;

	if (is_time_reg(r) && !(s->cmos[RTC_REG_B] & REG_B_SET))
		rtc_latch(s);
	switch (r) {
	case RTC_REG_A:
		return s->cmos[r] & 0x7f; /* never "update in progress" */
	case RTC_REG_C:
		flags_update(c);
		v = s->cmos[RTC_REG_C];
		flags_clear(c);
		thread_wake(c);
		return v;
	case RTC_REG_D:
		return REG_D_VRT; /* the battery is fine */
	default:
		return s->cmos[r];
	}
}

static void rtc_write_b(struct rtc *c, uint8_t v)
{
	struct rtc_state *s = &c->s;
	uint8_t old = s->cmos[RTC_REG_B];

	flags_update(c); /* what happened under the old settings */
	if ((v & REG_B_SET) && !(old & REG_B_SET))
		rtc_latch(s); /* the guest edits the time from its current value */
	if (v & REG_B_SET)
		v &= (uint8_t)~REG_B_UIE; /* SET stops the updates, and UIE with them */
	s->cmos[RTC_REG_B] = v;
	if ((old & REG_B_SET) && !(v & REG_B_SET)) {
		rtc_set_from_regs(s); /* the registers are read in the new format */
		flags_sync(c);
	}
	flags_update(c); /* a pending flag just enabled raises IRQF now */
	if (v & REG_B_IE)
		thread_start(c);
	thread_wake(c);
}

static void rtc_write_reg(struct rtc *c, unsigned r, uint8_t v)
{
	struct rtc_state *s = &c->s;

	switch (r) {
	case RTC_REG_A:
		flags_update(c);
		s->cmos[r] = v & 0x7f; /* UIP is read-only */
		flags_sync(c); /* a new rate or time base starts from now */
		thread_wake(c);
		return;
	case RTC_REG_B:
		rtc_write_b(c, v);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return; /* read-only */
	default:
		s->cmos[r] = v;
	}
}

static void rtc_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct rtc *c = opaque;
	uint8_t v = 0xff;

	pthread_mutex_lock(&c->lock);
	if (off == 1)
		v = rtc_read_reg(c, c->s.index);
	pthread_mutex_unlock(&c->lock);
	memset(data, 0xff, len);
	*(uint8_t *)data = v;
}

static void rtc_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct rtc *c = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&c->lock);
	if (off == 0)
		c->s.index = v & 0x7f; /* bit 7 masks NMIs on a PC; nothing to mask here */
	else
		rtc_write_reg(c, c->s.index, v);
	pthread_mutex_unlock(&c->lock);
}

/* ---- device ---- */

static void rtc_power_on(struct rtc_state *s)
{
	memset(s, 0, sizeof(*s));
	s->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz base, 1024 Hz rate */
	s->cmos[RTC_REG_B] = REG_B_24H;
	s->cmos[RTC_REG_D] = REG_D_VRT;
}

static void rtc_reset(struct dev *d)
{
	struct rtc *c = (struct rtc *)d;
	int64_t offset;

	pthread_mutex_lock(&c->lock);
	offset = c->s.offset; /* the clock keeps running across a reset */
	rtc_power_on(&c->s);
	c->s.offset = offset;
	flags_clear(c);
	flags_sync(c);
	thread_wake(c);
	pthread_mutex_unlock(&c->lock);
}

static void rtc_save(struct dev *d, void *state)
{
	struct rtc *c = (struct rtc *)d;

	pthread_mutex_lock(&c->lock);
	memcpy(state, &c->s, sizeof(c->s));
	pthread_mutex_unlock(&c->lock);
}

static int rtc_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct rtc *c = (struct rtc *)d;

	(void)err;
	pthread_mutex_lock(&c->lock);
	memcpy(&c->s, state, sizeof(c->s));
	c->s.index &= 0x7f;
	c->s.cmos[RTC_REG_A] &= 0x7f;
	c->s.cmos[RTC_REG_C] &= REG_C_IRQF | REG_C_PF | REG_C_AF | REG_C_UF;
	/* The line follows IRQF; the time since the save owes no flags. */
	c->line = (c->s.cmos[RTC_REG_C] & REG_C_IRQF) != 0;
	vm_irq_line(c->vm, LAYOUT_RTC_IRQ, c->line);
	flags_sync(c);
	if (c->s.cmos[RTC_REG_B] & REG_B_IE)
		thread_start(c);
	thread_wake(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void rtc_destroy(struct dev *d)
{
	struct rtc *c = (struct rtc *)d;

	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	thread_wake(c);
	pthread_mutex_unlock(&c->lock);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct dev_ops rtc_ops = {
	.reset = rtc_reset,
	.state_size = sizeof(struct rtc_state),
	.save = rtc_save,
	.restore = rtc_restore,
	.destroy = rtc_destroy,
};

static const struct dev_io_ops rtc_io = {.read = rtc_read, .write = rtc_write};

int mc146818_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct rtc *c = xcalloc(1, sizeof(*c));

	(void)cfg;
	c->dev.name = "rtc";
	c->dev.ops = &rtc_ops;
	c->vm = vm;
	pthread_mutex_init(&c->lock, NULL);
	rtc_power_on(&c->s);
	flags_sync(c);
	dev_register(vm, &c->dev);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0)
		return tv_errno(err, "rtc: eventfd");
	return dev_add_pio(vm, &c->dev, LAYOUT_RTC_PORT, 2, &rtc_io, c, err);
}
