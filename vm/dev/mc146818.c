/* MC146818 CMOS real-time clock: the guest reads the host's wall-clock time
 * (UTC), in BCD or binary and 12- or 24-hour form as register B asks. A time
 * the guest sets is kept as an offset from the host clock. The rest of the
 * 128-byte CMOS RAM is plain storage. No RTC interrupts are generated. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "vm/util.h"
#include "vm/vm.h"

enum {
	RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MON = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define REG_B_SET   0x80
#define REG_B_DM    0x04 /* binary, not BCD */
#define REG_B_24H   0x02
#define REG_D_VRT   0x80

struct rtc_state {
	uint8_t cmos[128];
	uint8_t index;
	uint8_t pad[7];
	int64_t offset; /* guest time - host time, seconds */
};

struct rtc {
	struct dev dev;
	pthread_mutex_t lock;
	struct rtc_state s;
};

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

/* Fills the clock registers from host time plus the guest's offset. */
static void rtc_latch(struct rtc_state *s)
{
	time_t t = time(NULL) + (time_t)s->offset;
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
	unsigned hour = from_reg(s, s->cmos[RTC_HOUR] & 0x7f);

	if (!(s->cmos[RTC_REG_B] & REG_B_24H)) {
		hour %= 12;
		if (s->cmos[RTC_HOUR] & 0x80)
			hour += 12;
	}
	tm.tm_sec = (int)from_reg(s, s->cmos[RTC_SEC]);
	tm.tm_min = (int)from_reg(s, s->cmos[RTC_MIN]);
	tm.tm_hour = (int)hour;
	tm.tm_mday = (int)from_reg(s, s->cmos[RTC_MDAY]);
	tm.tm_mon = (int)from_reg(s, s->cmos[RTC_MON]) - 1;
	tm.tm_year = (int)(from_reg(s, s->cmos[RTC_CENTURY]) * 100 +
			   from_reg(s, s->cmos[RTC_YEAR])) - 1900;
	time_t t = timegm(&tm);
	if (t != (time_t)-1)
		s->offset = (int64_t)(t - time(NULL));
}

static uint8_t rtc_read_reg(struct rtc_state *s, unsigned r)
{
	if (is_time_reg(r) && !(s->cmos[RTC_REG_B] & REG_B_SET))
		rtc_latch(s);
	switch (r) {
	case RTC_REG_A:
		return s->cmos[r] & 0x7f; /* never "update in progress" */
	case RTC_REG_C:
		return 0; /* no interrupt flags */
	case RTC_REG_D:
		return REG_D_VRT; /* the battery is fine */
	default:
		return s->cmos[r];
	}
}

static void rtc_write_reg(struct rtc_state *s, unsigned r, uint8_t v)
{
	switch (r) {
	case RTC_REG_B:
		if ((s->cmos[RTC_REG_B] & REG_B_SET) && !(v & REG_B_SET)) {
			s->cmos[r] = v;
			rtc_set_from_regs(s);
			return;
		}
		if ((v & REG_B_SET) && !(s->cmos[RTC_REG_B] & REG_B_SET))
			rtc_latch(s); /* the guest edits the time from its current value */
		s->cmos[r] = v;
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
		v = rtc_read_reg(&c->s, c->s.index);
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
		rtc_write_reg(&c->s, c->s.index, v);
	pthread_mutex_unlock(&c->lock);
}

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
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void rtc_destroy(struct dev *d)
{
	struct rtc *c = (struct rtc *)d;

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
	pthread_mutex_init(&c->lock, NULL);
	rtc_power_on(&c->s);
	dev_register(vm, &c->dev);
	return dev_add_pio(vm, &c->dev, LAYOUT_RTC_PORT, 2, &rtc_io, c, err);
}
