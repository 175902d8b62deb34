/* ACPI PM1 fixed hardware (ACPI 6.0 section 4.8): the PM1a event block
 * (PM1_STS, PM1_EN), the PM1a control block (PM1_CNT) and the 32-bit PM
 * timer, at the ports the FADT names (vm/layout.h, vm/acpi.c).
 *
 * The machine has no SMI: SCI_EN always reads 1. The SCI is a level on
 * LAYOUT_ACPI_SCI_IRQ, high while an enabled status bit is set. Writing
 * SLP_TYP = S5 with SLP_EN powers the VM off; other sleep types are not
 * offered by the DSDT and are ignored. The timer's carry event (TMR_STS) is
 * not generated: operating systems read the counter only. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vm/acpi.h"
#include "vm/dev/acpi-pm.h"
#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

#define PM1_STS_TMR    (1u << 0)
#define PM1_STS_GBL    (1u << 5)
#define PM1_STS_PWRBTN (1u << 8)
#define PM1_STS_SLPBTN (1u << 9)
#define PM1_STS_RTC    (1u << 10)
#define PM1_STS_WAK    (1u << 15)
#define PM1_STS_MASK   (PM1_STS_TMR | PM1_STS_GBL | PM1_STS_PWRBTN | PM1_STS_WAK)
/* The enable bits keep what the OS writes, as the hardware's do: ACPICA
 * reads an enable back after setting it and reports an error when it did
 * not stick (Linux's rtc_cmos enables the RTC fixed event at probe). The
 * sleep button and RTC alarm never raise their status here. */
#define PM1_EN_MASK (PM1_STS_TMR | PM1_STS_GBL | PM1_STS_PWRBTN | PM1_STS_SLPBTN | PM1_STS_RTC)
/* The enables that can raise the SCI. */
#define PM1_SCI_MASK (PM1_STS_TMR | PM1_STS_GBL | PM1_STS_PWRBTN)

#define PM1_CNT_SCI_EN	      (1u << 0)
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP	      (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN	      (1u << 13)
/* What PM1_CNT keeps: SCI_EN, BM_RLD and SLP_TYP (GBL_RLS, SLP_EN are
 * write-only strobes). */
#define PM1_CNT_MASK (PM1_CNT_SCI_EN | (1u << 1) | PM1_CNT_SLP_TYP)

#define PM_TIMER_HZ 3579545ULL

/* Offsets in the claimed port range, which starts at the event block. */
#define OFF_STS	 0
#define OFF_EN	 2
#define OFF_CNT	 (LAYOUT_ACPI_PM1A_CNT - LAYOUT_ACPI_PM1A_EVT)
#define OFF_TMR	 (LAYOUT_ACPI_PM_TMR - LAYOUT_ACPI_PM1A_EVT)
#define PM_PORTS (OFF_TMR + 4)

struct acpi_pm_state {
	uint16_t sts;
	uint16_t en;
	uint16_t cnt;
	uint16_t pad;
	uint32_t tmr; /* the counter when saved */
	uint32_t pad2;
};

struct acpi_pm {
	struct dev dev;
	pthread_mutex_t lock;
	struct acpi_pm_state s;
	uint64_t tmr_base_ns; /* monotonic time at which the counter read tmr_base */
	uint32_t tmr_base;
	bool sci; /* the level last given to the SCI line */
};

static uint32_t pm_timer_now(const struct acpi_pm *p)
{
	uint64_t ns = monotonic_ns() - p->tmr_base_ns;
	uint64_t ticks =
	    ns / 1000000000ULL * PM_TIMER_HZ + ns % 1000000000ULL * PM_TIMER_HZ / 1000000000ULL;

	return p->tmr_base + (uint32_t)ticks;
}

static void pm_timer_set(struct acpi_pm *p, uint32_t v)
{
	p->tmr_base_ns = monotonic_ns();
	p->tmr_base = v;
}

/* Called with the lock held after any change to PM1_STS or PM1_EN. */
static void pm_sci_update(struct acpi_pm *p)
{
	bool level = (p->s.sts & p->s.en & PM1_SCI_MASK) != 0;

	if (level == p->sci)
		return;
	p->sci = level;
	vm_irq_line(p->dev.vm, LAYOUT_ACPI_SCI_IRQ, level);
}

static void pm_cnt_write(struct acpi_pm *p, uint16_t v)
{
	unsigned slp_typ = (v & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;

	p->s.cnt = (uint16_t)((v & PM1_CNT_MASK) | PM1_CNT_SCI_EN);
	if ((v & PM1_CNT_SLP_EN) && slp_typ == ACPI_SLP_TYP_S5)
		vm_request_exit(p->dev.vm, VM_EXIT_POWEROFF, 0, "the guest powered off (ACPI S5)");
}

static uint8_t pm_read_byte(struct acpi_pm *p, unsigned off, uint32_t tmr)
{
	switch (off) {
	case OFF_STS:
	case OFF_STS + 1:
		return (uint8_t)(p->s.sts >> 8 * (off - OFF_STS));
	case OFF_EN:
	case OFF_EN + 1:
		return (uint8_t)(p->s.en >> 8 * (off - OFF_EN));
	case OFF_CNT:
	case OFF_CNT + 1:
		return (uint8_t)(p->s.cnt >> 8 * (off - OFF_CNT));
	default:
		return (uint8_t)(tmr >> 8 * (off - OFF_TMR));
	}
}

static bool pm_port_used(unsigned off)
{
	return off < OFF_CNT + 2 || (off >= OFF_TMR && off < OFF_TMR + 4);
}

static void pm_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *p = opaque;
	uint8_t *out = data;
	uint32_t tmr;

	pthread_mutex_lock(&p->lock);
	tmr = pm_timer_now(p);
	for (unsigned i = 0; i < len; i++)
		if (pm_port_used((unsigned)off + i))
			out[i] = pm_read_byte(p, (unsigned)off + i, tmr);
	pthread_mutex_unlock(&p->lock);
}

/* Writes are taken apart by register, so byte, word and dword accesses that
 * cover several registers all do what they would do one register at a time. */
static void pm_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *p = opaque;
	const uint8_t *in = data;
	uint16_t sts_clear = 0, cnt = 0;
	bool en_written = false, cnt_written = false;
	uint16_t en;

	pthread_mutex_lock(&p->lock);
	en = p->s.en;
	cnt = p->s.cnt;
	for (unsigned i = 0; i < len; i++) {
		unsigned o = (unsigned)off + i;
		uint16_t shift = (uint16_t)(8 * (o & 1));
		if (o == OFF_STS || o == OFF_STS + 1) {
			sts_clear |= (uint16_t)(in[i] << shift);
		} else if (o == OFF_EN || o == OFF_EN + 1) {
			en = (uint16_t)((en & ~(0xFF << shift)) | in[i] << shift);
			en_written = true;
		} else if (o == OFF_CNT || o == OFF_CNT + 1) {
			cnt = (uint16_t)((cnt & ~(0xFF << shift)) | in[i] << shift);
			cnt_written = true;
		}
	}
	p->s.sts &= (uint16_t)~sts_clear;
	if (en_written)
		p->s.en = en & PM1_EN_MASK;
	pm_sci_update(p);
	if (cnt_written)
		pm_cnt_write(p, cnt);
	pthread_mutex_unlock(&p->lock);
}

static void pm_power_on(struct acpi_pm *p)
{
	memset(&p->s, 0, sizeof(p->s));
	p->s.cnt = PM1_CNT_SCI_EN;
	pm_timer_set(p, 0);
	pm_sci_update(p);
}

static void acpi_pm_reset(struct dev *d)
{
	struct acpi_pm *p = (struct acpi_pm *)d;

	pthread_mutex_lock(&p->lock);
	pm_power_on(p);
	pthread_mutex_unlock(&p->lock);
}

static void acpi_pm_save(struct dev *d, void *state)
{
	struct acpi_pm *p = (struct acpi_pm *)d;

	pthread_mutex_lock(&p->lock);
	p->s.tmr = pm_timer_now(p);
	memcpy(state, &p->s, sizeof(p->s));
	pthread_mutex_unlock(&p->lock);
}

static int acpi_pm_check(struct dev *d, const void *state, struct tv_err *err)
{
	struct acpi_pm_state s;

	(void)d;
	memcpy(&s, state, sizeof(s));
	if ((s.sts & ~PM1_STS_MASK) || (s.en & ~PM1_EN_MASK) || (s.cnt & ~PM1_CNT_MASK))
		return tv_errf(err,
			       "acpi-pm: saved registers sts 0x%04x en 0x%04x cnt 0x%04x "
			       "have bits this device does not have",
			       s.sts, s.en, s.cnt);
	return 0;
}

static int acpi_pm_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct acpi_pm *p = (struct acpi_pm *)d;
	struct acpi_pm_state s;

	memcpy(&s, state, sizeof(s));
	if (acpi_pm_check(d, state, err) != 0)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->s = s;
	p->s.cnt |= PM1_CNT_SCI_EN;
	pm_timer_set(p, s.tmr);
	pm_sci_update(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void acpi_pm_destroy(struct dev *d)
{
	struct acpi_pm *p = (struct acpi_pm *)d;

	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct dev_ops acpi_pm_ops = {
    .reset = acpi_pm_reset,
    .state_size = sizeof(struct acpi_pm_state),
    .save = acpi_pm_save,
    .restore = acpi_pm_restore,
    .check = acpi_pm_check,
    .destroy = acpi_pm_destroy,
};

static const struct dev_io_ops acpi_pm_io = {.read = pm_read, .write = pm_write};

int acpi_pm_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct acpi_pm *p = xcalloc(1, sizeof(*p));

	(void)cfg;
	p->dev.name = "acpi-pm";
	p->dev.ops = &acpi_pm_ops;
	pthread_mutex_init(&p->lock, NULL);
	dev_register(vm, &p->dev);
	pm_power_on(p);
	return dev_add_pio(vm, &p->dev, LAYOUT_ACPI_PM1A_EVT, PM_PORTS, &acpi_pm_io, p, err);
}

int acpi_pm_power_button(struct vm *vm, struct tv_err *err)
{
	struct acpi_pm *p = (struct acpi_pm *)dev_find(vm, "acpi-pm");

	if (!p || p->dev.ops != &acpi_pm_ops)
		return tv_errf(err, "this VM has no ACPI power button");
	pthread_mutex_lock(&p->lock);
	p->s.sts |= PM1_STS_PWRBTN;
	pm_sci_update(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}
