/* A small virtio-pci driver as a test guest. It enumerates PCI bus 0
 * through ports 0xCF8/0xCFC, reads each virtio device's capabilities, sets
 * up split queues and MSI-X, then:
 *  - virtio-blk: writes a pattern over the whole disk, flushes, reads it
 *    back and checks every word; discards and zeroes ranges and checks they
 *    read as zeros; reads the serial (GET_ID); on a read-only disk checks a
 *    0x5a fill and that a write fails;
 *  - virtio-rng: reads entropy twice;
 *  - virtio-console: prints a line through hvc0 (or echoes typed lines).
 * Only setup runs at CPL 0 (emulated on some hosts); the driver itself runs
 * at CPL 3 with IOPL 3, so the pattern and checksum work runs natively.
 * Interrupts (MSI-X, or INTx for the rng with "intx" on the command line)
 * reach CPL 0 handlers that count them.
 *
 * Command line words: ecam (also check ECAM at 0xE0000000 against type-1),
 * intx, qd=N (requests in flight), bs=N (KiB per request), quick (one pass
 * only over the first 8 MiB), nozero (skip discard/write-zeroes), hvcecho
 * (read a line from the UART, then one from hvc0, echoing each with the size
 * hvc0's terminal has then, VIRTIO_CONSOLE_F_SIZE), hvcreset
 * (1 MiB to hvc0 in one buffer, then a reset at once), pcicfg (check each
 * device's VIRTIO_PCI_CAP_PCI_CFG window: 1, 2 and 4-byte reads and writes of
 * the common configuration, and windows out of bounds). Prints
 * "virtio: ok" and exits 0 when every check passed. */
#include "guest.h"

#define PAGE	    4096
#define MSIX_VECTOR 48
#define INTX_VECTOR 36
#define MAX_QD	    32
#define MAX_BS	    (256 * 1024)
#define QSIZE_WANT  128
#define SECTOR	    512

/* ---- small freestanding helpers ---- */

__attribute__((weak)) void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

__attribute__((weak)) void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw_(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

#define mb()	  __asm__ volatile("mfence" ::: "memory")
#define barrier() __asm__ volatile("" ::: "memory")

static int failures;

static void check(bool ok, const char *what)
{
	if (!ok) {
		failures++;
		gprintf("virtio: FAIL %s\n", what);
	}
}

/* ---- command line ---- */

static const char *cmdline = "";

static bool has_word(const char *w)
{
	for (const char *p = cmdline; *p; p++) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		unsigned i = 0;
		while (w[i] && p[i] == w[i])
			i++;
		if (w[i] == 0 && (p[i] == 0 || p[i] == ' ' || p[i] == '='))
			return true;
	}
	return false;
}

static unsigned word_value(const char *w, unsigned def)
{
	for (const char *p = cmdline; *p; p++) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		unsigned i = 0;
		while (w[i] && p[i] == w[i])
			i++;
		if (w[i] == 0 && p[i] == '=') {
			unsigned v = 0;
			for (p += i + 1; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (unsigned)(*p - '0');
			return v;
		}
	}
	return def;
}

/* ---- time: the TSC, calibrated against the ACPI PM timer (0x608) ---- */

static uint64_t tsc_khz;

static void tsc_calibrate(void)
{
	uint32_t p0 = inl(0x608) & 0xFFFFFF, p;
	uint64_t t0 = rdtsc(), t1;

	/* 35795 ticks of 3.579545 MHz: 10 ms. */
	do
		p = inl(0x608) & 0xFFFFFF;
	while (((p - p0) & 0xFFFFFF) < 35795);
	t1 = rdtsc();
	tsc_khz = (t1 - t0) * 3579545ull / (((p - p0) & 0xFFFFFF) * 1000ull);
	if (tsc_khz == 0)
		tsc_khz = 1;
}

static uint64_t ms_since(uint64_t t0)
{
	return (rdtsc() - t0) / tsc_khz;
}

/* ---- PCI configuration, type 1 ---- */

static uint32_t cfg_read32(unsigned slot, unsigned reg)
{
	outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xFC));
	return inl(0xCFC);
}

static void cfg_write32(unsigned slot, unsigned reg, uint32_t v)
{
	outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xFC));
	outl(0xCFC, v);
}

static uint8_t cfg_read8(unsigned slot, unsigned reg)
{
	return (uint8_t)(cfg_read32(slot, reg) >> (8 * (reg & 3)));
}

static void cfg_write16(unsigned slot, unsigned reg, uint16_t v)
{
	outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xFC));
	outw_((uint16_t)(0xCFC + (reg & 2)), v);
}

static void cfg_write8(unsigned slot, unsigned reg, uint8_t v)
{
	outl(0xCF8, 0x80000000u | slot << 11 | (reg & 0xFC));
	outb((uint16_t)(0xCFC + (reg & 3)), v);
}

/* ---- memory for rings and buffers ---- */

static uint8_t arena[10 << 20] __attribute__((aligned(PAGE)));
static size_t arena_used;

static void *alloc(size_t n)
{
	void *p = arena + arena_used;

	arena_used += (n + PAGE - 1) & ~(size_t)(PAGE - 1);
	if (arena_used > sizeof(arena)) {
		gprintf("virtio: out of arena\n");
		guest_exit(90);
	}
	memset(p, 0, n);
	return p;
}

/* ---- virtio ---- */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vqueue {
	uint16_t size;
	volatile struct desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[] */
	volatile uint8_t *used;	  /* flags, idx, {id, len}[] */
	volatile uint16_t *notify;
	uint16_t avail_idx, last_used;
	unsigned qindex;
};

struct vdev {
	unsigned slot;
	uint16_t id;
	volatile uint8_t *common, *isr, *devcfg, *notify;
	uint32_t notify_mult;
	volatile uint32_t *msix;
	unsigned msix_cap, nvec;
	unsigned cfg_cap, common_bar; /* VIRTIO_PCI_CAP_PCI_CFG; where common is */
	uint32_t common_off;
	uint64_t features;
	unsigned nq;
	struct vqueue q[4];
};

static struct vdev devs[8];
static unsigned ndevs;
static uint64_t next_bar = 0;
static volatile unsigned irq_count[8]; /* per device, by the interrupt handlers */
static volatile struct vdev *intx_dev;
static uint32_t bad_ring_addr; /* hostile test: a ring outside RAM */

#define C8(d, o)  (*(volatile uint8_t *)((d)->common + (o)))
#define C16(d, o) (*(volatile uint16_t *)((d)->common + (o)))
#define C32(d, o) (*(volatile uint32_t *)((d)->common + (o)))

/* BAR address as the device decodes it; a BAR above 4 GiB (a peer's
 * firmware may put 64-bit BARs there) moves below 4 GiB, after the
 * highest 32-bit BAR on the bus. */
static uint64_t bar_base(unsigned slot, unsigned bar)
{
	uint32_t lo = cfg_read32(slot, 0x10 + 4 * bar);
	uint64_t a = lo & ~0xFull;
	bool is64 = (lo & 6) == 4;

	if (is64)
		a |= (uint64_t)cfg_read32(slot, 0x14 + 4 * bar) << 32;
	if (a != 0 && a + 0x100000 <= 0x100000000ull)
		return a;
	/* Size it, then place it. */
	cfg_write32(slot, 0x10 + 4 * bar, 0xFFFFFFFF);
	uint64_t size = ~(uint64_t)(cfg_read32(slot, 0x10 + 4 * bar) & ~0xFu) + 1;
	size &= 0xFFFFFFFF;
	a = (next_bar + size - 1) & ~(size - 1);
	next_bar = a + size;
	cfg_write32(slot, 0x10 + 4 * bar, (uint32_t)a);
	if (is64)
		cfg_write32(slot, 0x14 + 4 * bar, 0);
	gprintf("virtio: slot %u BAR %u moved to %lx\n", slot, bar, a);
	return a;
}

static void find_bar_top(void)
{
	for (unsigned s = 0; s < 32; s++) {
		if ((cfg_read32(s, 0) & 0xFFFF) == 0xFFFF)
			continue;
		for (unsigned b = 0; b < 6; b++) {
			uint32_t lo = cfg_read32(s, 0x10 + 4 * b);
			bool is64 = (lo & 7) == 4;
			if (lo & 1)
				continue;
			uint64_t a = lo & ~0xFull;
			if (is64 && cfg_read32(s, 0x14 + 4 * b) != 0)
				a = 0;
			if (a >= next_bar && a < 0xFE000000ull)
				next_bar = a + 0x100000; /* past any BAR up to 1 MiB */
			if (is64)
				b++;
		}
	}
	next_bar = (next_bar + 0xFFFFF) & ~0xFFFFFull;
}

static void read_caps(struct vdev *d)
{
	unsigned slot = d->slot;

	for (unsigned c = cfg_read8(slot, 0x34); c != 0; c = cfg_read8(slot, c + 1)) {
		uint8_t id = cfg_read8(slot, c);
		if (id == 0x11) {
			d->msix_cap = c;
			d->nvec = (cfg_read32(slot, c) >> 16 & 0x7FF) + 1;
			uint32_t t = cfg_read32(slot, c + 4);
			d->msix =
			    (volatile uint32_t *)(uintptr_t)(bar_base(slot, t & 7) + (t & ~7u));
			continue;
		}
		if (id != 0x09)
			continue;
		uint8_t type = cfg_read8(slot, c + 3), bar = cfg_read8(slot, c + 4);
		uint32_t off = cfg_read32(slot, c + 8);
		if (type == 5 && d->cfg_cap == 0)
			d->cfg_cap = c;
		if (type < 1 || type > 4)
			continue; /* PCI configuration access (above), shared memory */
		volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)(bar_base(slot, bar) + off);
		if (type == 1 && d->common == NULL) {
			d->common = p;
			d->common_bar = bar;
			d->common_off = off;
		}
		else if (type == 2 && d->notify == NULL) {
			d->notify = p;
			d->notify_mult = cfg_read32(slot, c + 16);
		} else if (type == 3 && d->isr == NULL)
			d->isr = p;
		else if (type == 4 && d->devcfg == NULL)
			d->devcfg = p;
	}
}

static void msix_set(struct vdev *d, unsigned v, unsigned vector)
{
	volatile uint32_t *e = d->msix + 4 * v;

	e[0] = 0xFEE00000u; /* to APIC id 0, physical */
	e[1] = 0;
	e[2] = vector; /* fixed, edge */
	e[3] = 0;      /* unmasked */
}

/* Status handshake, features, queues, interrupts. want: device feature bits
 * the driver uses on top of VERSION_1. */
static bool vdev_init(struct vdev *d, uint64_t want, unsigned nq, bool use_msix)
{
	uint64_t f;

	C8(d, 0x14) = 0;
	while (C8(d, 0x14) != 0)
		pause();
	C8(d, 0x14) = 1;
	C8(d, 0x14) = 1 | 2;
	C32(d, 0x00) = 0;
	f = C32(d, 0x04);
	C32(d, 0x00) = 1;
	f |= (uint64_t)C32(d, 0x04) << 32;
	check(f >> 32 & 1, "device offers VIRTIO_F_VERSION_1");
	d->features = (f & want) | 1ull << 32;
	C32(d, 0x08) = 0;
	C32(d, 0x0C) = (uint32_t)d->features;
	C32(d, 0x08) = 1;
	C32(d, 0x0C) = (uint32_t)(d->features >> 32);
	C8(d, 0x14) = 1 | 2 | 8;
	if (!(C8(d, 0x14) & 8)) {
		check(false, "FEATURES_OK accepted");
		return false;
	}
	if (use_msix && d->msix != NULL) {
		for (unsigned v = 0; v < d->nvec && v <= nq; v++)
			msix_set(d, v, MSIX_VECTOR + 0);
		/* MSI-X enable, function mask clear. */
		uint32_t ctl = cfg_read32(d->slot, d->msix_cap);
		cfg_write32(d->slot, d->msix_cap, (ctl & 0x3FFFFFFF) | 0x80000000u);
		C16(d, 0x10) = 0;
		check(C16(d, 0x10) == 0, "config MSI-X vector accepted");
	}
	unsigned max = C16(d, 0x12);
	if (nq > max)
		nq = max;
	d->nq = nq;
	for (unsigned i = 0; i < nq; i++) {
		struct vqueue *q = &d->q[i];
		C16(d, 0x16) = (uint16_t)i;
		uint16_t size = C16(d, 0x18);
		if (size > QSIZE_WANT)
			size = QSIZE_WANT;
		C16(d, 0x18) = size;
		q->size = size;
		q->qindex = i;
		q->avail_idx = q->last_used = 0; /* fresh rings after the reset */
		q->desc = alloc(16 * (size_t)size);
		q->avail = alloc(6 + 2 * (size_t)size);
		q->used = alloc(6 + 8 * (size_t)size);
		C32(d, 0x20) = bad_ring_addr ? bad_ring_addr : (uint32_t)(uintptr_t)q->desc;
		C32(d, 0x24) = 0;
		C32(d, 0x28) = (uint32_t)(uintptr_t)q->avail;
		C32(d, 0x2C) = 0;
		C32(d, 0x30) = (uint32_t)(uintptr_t)q->used;
		C32(d, 0x34) = 0;
		if (use_msix && d->msix != NULL) {
			C16(d, 0x1A) = (uint16_t)(1 + i);
			check(C16(d, 0x1A) == 1 + i, "queue MSI-X vector accepted");
		}
		q->notify = (volatile uint16_t *)(d->notify + C16(d, 0x1E) * d->notify_mult);
		C16(d, 0x1C) = 1;
	}
	C8(d, 0x14) = 1 | 2 | 8 | 4;
	return (C8(d, 0x14) & 0xC0) == 0;
}

static void vq_add(struct vqueue *q, uint16_t head)
{
	q->avail[2 + q->avail_idx % q->size] = head;
	barrier();
	q->avail_idx++;
	mb();
	q->avail[1] = q->avail_idx;
}

static void vq_kick(struct vqueue *q)
{
	mb();
	/* A device that is polling the ring says so: no notify needed. */
	if (*(volatile uint16_t *)q->used & 1)
		return;
	*q->notify = (uint16_t)q->qindex;
}

/* Next used entry, or false. */
static bool vq_used(struct vqueue *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = *(volatile uint16_t *)(q->used + 2);
	volatile uint8_t *e;

	if (idx == q->last_used)
		return false;
	barrier();
	e = q->used + 4 + 8 * (q->last_used % q->size);
	*id = *(volatile uint32_t *)e;
	*len = *(volatile uint32_t *)(e + 4);
	q->last_used++;
	return true;
}

/* ---- virtio-blk ---- */

#define BLK_T_IN	   0
#define BLK_T_OUT	   1
#define BLK_T_FLUSH	   4
#define BLK_T_GET_ID	   8
#define BLK_T_DISCARD	   11
#define BLK_T_WRITE_ZEROES 13

struct blk_req {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_slot {
	struct blk_req hdr;
	uint64_t range[2]; /* discard/write-zeroes segment */
	volatile uint8_t status;
	uint8_t *buf;
	uint64_t sector;
	uint32_t len;
	unsigned q;
	bool busy;
};

static struct blk_slot slots[MAX_QD];
static struct desc indirect[MAX_QD][4] __attribute__((aligned(16)));
static unsigned qd, bs;
static uint64_t errors_seen, words_checked, checksum;

static uint64_t pattern(uint64_t byte_off, unsigned pass)
{
	uint64_t w = byte_off / 8;
	return ((w / 64) << 32 | (w % 64) << 8 | pass) * 0x9E3779B97F4A7C15ull;
}

static void fill(uint8_t *buf, uint64_t off, uint32_t len, unsigned pass)
{
	uint64_t *p = (uint64_t *)buf;
	for (uint32_t i = 0; i < len / 8; i++)
		p[i] = pattern(off + 8ull * i, pass);
}

static uint64_t verify(const uint8_t *buf, uint64_t off, uint32_t len, unsigned pass)
{
	const uint64_t *p = (const uint64_t *)buf;
	uint64_t bad = 0;
	for (uint32_t i = 0; i < len / 8; i++) {
		uint64_t want = pass == 0 ? 0 : pattern(off + 8ull * i, pass);
		bad += p[i] != want;
		checksum += p[i];
	}
	words_checked += len / 8;
	return bad;
}

/* Queues one request in slot k: header, optional data, status. Writes go
 * through an indirect table, reads through a direct chain (both kinds of
 * ring use get exercised). */
static void blk_submit(struct vdev *d, unsigned k, uint32_t type, uint64_t sector, uint8_t *buf,
		       uint32_t len)
{
	struct blk_slot *s = &slots[k];
	struct vqueue *q = &d->q[k % d->nq];
	bool data_in = type == BLK_T_IN || type == BLK_T_GET_ID;
	struct desc chain[3];
	unsigned n = 0;

	s->hdr.type = type;
	s->hdr.reserved = 0;
	s->hdr.sector = sector;
	s->status = 0xFF;
	s->buf = buf;
	s->sector = sector;
	s->len = len;
	s->q = k % d->nq;
	s->busy = true;
	chain[n++] = (struct desc){(uint64_t)(uintptr_t)&s->hdr, sizeof(s->hdr), 1, 0};
	if (len > 0)
		chain[n++] = (struct desc){(uint64_t)(uintptr_t)buf, len,
					   (uint16_t)(1 | (data_in ? 2 : 0)), 0};
	chain[n++] = (struct desc){(uint64_t)(uintptr_t)&s->status, 1, 2, 0};
	/* Descriptor k * 3 .. k * 3 + 2 of the queue belong to slot k. */
	uint16_t base = (uint16_t)((k / d->nq) * 3);
	bool use_indirect = (d->features >> 28 & 1) && type != BLK_T_IN;
	if (use_indirect) {
		for (unsigned i = 0; i < n; i++) {
			indirect[k][i] = chain[i];
			indirect[k][i].next = (uint16_t)(i + 1);
		}
		q->desc[base] = (struct desc){(uint64_t)(uintptr_t)indirect[k], 16 * n, 4, 0};
	} else {
		for (unsigned i = 0; i < n; i++) {
			q->desc[base + i] = chain[i];
			q->desc[base + i].next = (uint16_t)(base + i + 1);
		}
	}
	vq_add(q, base);
}

/* Waits for completions: processes used entries; returns how many. */
static unsigned blk_reap(struct vdev *d, unsigned devi, bool check_reads, unsigned pass,
			 bool *got_status_bad)
{
	unsigned done = 0;
	unsigned seen = irq_count[devi];

	for (;;) {
		for (unsigned qi = 0; qi < d->nq; qi++) {
			uint32_t id, len;
			while (vq_used(&d->q[qi], &id, &len)) {
				unsigned k = (id / 3) * d->nq + qi;
				struct blk_slot *s = &slots[k];
				if (k >= MAX_QD || !s->busy) {
					check(false, "used id names a request in flight");
					continue;
				}
				s->busy = false;
				if (s->status != 0 && got_status_bad != NULL)
					*got_status_bad = true;
				if (s->status == 0 && s->hdr.type == BLK_T_IN && check_reads) {
					check(len == s->len + 1,
					      "read used length = data + status");
					errors_seen +=
					    verify(s->buf, s->sector * SECTOR, s->len, pass);
				}
				done++;
			}
		}
		if (done > 0)
			return done;
		while (irq_count[devi] == seen)
			pause();
		seen = irq_count[devi];
	}
}

static int free_slot(void)
{
	for (unsigned k = 0; k < qd; k++)
		if (!slots[k].busy)
			return (int)k;
	return -1;
}

static unsigned inflight(void)
{
	unsigned n = 0;
	for (unsigned k = 0; k < qd; k++)
		n += slots[k].busy;
	return n;
}

static uint8_t *bufs[MAX_QD];

/* One pass over [first, first + count) sectors: write (with the pattern
 * of pass) or read and verify against it (pass 0: zeros). */
static bool blk_pass(struct vdev *d, unsigned devi, bool write, uint64_t first, uint64_t count,
		     unsigned pass)
{
	uint64_t next = first, end = first + count;
	uint32_t per = bs / SECTOR;
	bool bad = false;

	while (next < end || inflight() > 0) {
		bool queued[4] = {false};
		int k;
		while (next < end && (k = free_slot()) >= 0) {
			uint32_t n = end - next < per ? (uint32_t)(end - next) : per;
			if (write)
				fill(bufs[k], next * SECTOR, n * SECTOR, pass);
			blk_submit(d, (unsigned)k, write ? BLK_T_OUT : BLK_T_IN, next, bufs[k],
				   n * SECTOR);
			queued[k % d->nq] = true;
			next += n;
		}
		for (unsigned qi = 0; qi < d->nq; qi++)
			if (queued[qi])
				vq_kick(&d->q[qi]);
		blk_reap(d, devi, !write, pass, &bad);
	}
	return !bad;
}

/* A single request in slot 0, waited for; returns its status. */
static uint8_t blk_one(struct vdev *d, unsigned devi, uint32_t type, uint64_t sector, uint8_t *buf,
		       uint32_t len)
{
	blk_submit(d, 0, type, sector, buf, len);
	vq_kick(&d->q[0]);
	while (slots[0].busy)
		blk_reap(d, devi, false, 0, NULL);
	return slots[0].status;
}

#define BLK_RANGE_UNMAP 1u

static uint8_t blk_ranges(struct vdev *d, unsigned devi, uint32_t type, uint64_t sector, uint32_t n,
			  uint32_t flags)
{
	struct blk_slot *s = &slots[0];

	s->range[0] = sector;
	s->range[1] = n | (uint64_t)flags << 32; /* num_sectors, flags */
	return blk_one(d, devi, type, 0, (uint8_t *)s->range, 16);
}

static uint64_t rate(uint64_t bytes, uint64_t ms)
{
	return ms == 0 ? 0 : bytes / 1000 / ms; /* MB/s */
}

static void blk_test(struct vdev *d, unsigned devi)
{
	uint64_t sectors = *(volatile uint32_t *)d->devcfg |
			   (uint64_t) * (volatile uint32_t *)(d->devcfg + 4) << 32;
	bool ro = d->features >> 5 & 1;
	uint8_t *b = bufs[0];
	char id[21];

	gprintf("virtio-blk: slot %u, %lu sectors, %u queues%s, features %lx\n", d->slot, sectors,
		d->nq, ro ? ", read-only" : "", d->features);
	for (unsigned i = 0; i < 21; i++)
		id[i] = 0;
	check(blk_one(d, devi, BLK_T_GET_ID, 0, (uint8_t *)id, 20) == 0, "GET_ID succeeds");
	gprintf("virtio-blk: id '%s'\n", id);

	if (ro) {
		check(blk_one(d, devi, BLK_T_IN, 0, b, 4096) == 0, "read-only disk reads");
		uint64_t bad = 0;
		for (unsigned i = 0; i < 4096; i++)
			bad += b[i] != 0x5a;
		check(bad == 0, "read-only disk holds its 0x5a fill");
		check(blk_one(d, devi, BLK_T_OUT, 0, b, 4096) == 1,
		      "write to read-only disk fails");
		check(blk_one(d, devi, BLK_T_FLUSH, 0, NULL, 0) == 0, "flush on read-only disk ok");
		gprintf("virtio-blk: read-only checks done\n");
		return;
	}
	uint64_t capacity = sectors;
	if (has_word("quick") && sectors > 16384)
		sectors = 16384;
	uint64_t bytes = sectors * SECTOR;
	uint64_t t0 = rdtsc();
	check(blk_pass(d, devi, true, 0, sectors, 1), "pattern writes succeed");
	uint64_t wms = ms_since(t0);
	t0 = rdtsc();
	check(blk_one(d, devi, BLK_T_FLUSH, 0, NULL, 0) == 0, "flush succeeds");
	uint64_t fms = ms_since(t0);
	errors_seen = 0;
	checksum = 0;
	t0 = rdtsc();
	check(blk_pass(d, devi, false, 0, sectors, 1), "reads succeed");
	uint64_t rms = ms_since(t0);
	check(errors_seen == 0, "every word reads back as written");
	gprintf("virtio-blk: wrote %lu KiB in %lu ms (%lu MB/s), flush %lu ms, read %lu ms "
		"(%lu MB/s)\n",
		bytes / 1024, wms, rate(bytes, wms), fms, rms, rate(bytes, rms));
	gprintf("virtio-blk: %lu words checked, %lu bad, checksum %lx\n", words_checked,
		errors_seen, checksum);
	gprintf("bench: qd=%u bs=%uK write_ms=%lu flush_ms=%lu read_ms=%lu bytes=%lu\n", qd,
		bs / 1024, wms, fms, rms, bytes);
	check(blk_one(d, devi, BLK_T_IN, capacity, b, 512) == 1, "read past the end fails");
	check(blk_one(d, devi, 99, 0, NULL, 0) == 2, "unknown request type is unsupported");

	if (has_word("nozero") || sectors < 2048)
		return;
	/* Discard 64 KiB at 64 KiB; zero sectors 1000..1099 (not aligned). */
	if (d->features >> 13 & 1) {
		/* The unmap flag belongs to write-zeroes: a discard with it is
		 * unsupported (virtio 1.2, 5.2.6.2) and changes nothing. */
		check(blk_ranges(d, devi, BLK_T_DISCARD, 128, 128, BLK_RANGE_UNMAP) == 2,
		      "discard with the unmap flag is unsupported");
		errors_seen = 0;
		check(blk_pass(d, devi, false, 128, 128, 1), "read after the refused discard");
		check(errors_seen == 0, "a refused discard leaves the data");
		gprintf("virtio-blk: discard with unmap refused, data intact\n");
		check(blk_ranges(d, devi, BLK_T_DISCARD, 128, 128, 0) == 0, "discard succeeds");
		errors_seen = 0;
		check(blk_pass(d, devi, false, 128, 128, 0), "read after discard");
		check(errors_seen == 0, "discarded range reads as zeros");
	} else {
		check(false, "discard offered");
	}
	if (d->features >> 14 & 1) {
		/* With unmap: the device may deallocate, the sectors read zeros. */
		check(blk_ranges(d, devi, BLK_T_WRITE_ZEROES, 1000, 100, BLK_RANGE_UNMAP) == 0,
		      "write-zeroes (unmap) succeeds");
		errors_seen = 0;
		check(blk_pass(d, devi, false, 1000, 100, 0), "read after write-zeroes");
		check(errors_seen == 0, "zeroed range reads as zeros");
		errors_seen = 0;
		check(blk_pass(d, devi, false, 990, 10, 1) && blk_pass(d, devi, false, 1100, 10, 1),
		      "read around the zeroed range");
		check(errors_seen == 0, "neighbours of the zeroed range intact");
	} else {
		check(false, "write-zeroes offered");
	}
	check(blk_one(d, devi, BLK_T_FLUSH, 0, NULL, 0) == 0, "final flush succeeds");
	gprintf("virtio-blk: discard and write-zeroes checked\n");
}

/* ---- virtio-rng and virtio-console ---- */

static void rng_test(struct vdev *d, unsigned devi)
{
	static uint8_t a[64], b[64];
	struct vqueue *q = &d->q[0];
	uint32_t id, len;
	unsigned seen = irq_count[devi], same = 0, zero = 0;

	q->desc[0] = (struct desc){(uint64_t)(uintptr_t)a, 64, 2, 0};
	q->desc[1] = (struct desc){(uint64_t)(uintptr_t)b, 64, 2, 0};
	vq_add(q, 0);
	vq_add(q, 1);
	vq_kick(q);
	for (unsigned got = 0; got < 2;) {
		while (irq_count[devi] == seen)
			pause();
		seen = irq_count[devi];
		while (vq_used(q, &id, &len)) {
			check(len == 64, "entropy request filled");
			got++;
		}
	}
	for (unsigned i = 0; i < 64; i++) {
		same += a[i] == b[i];
		zero += a[i] == 0;
	}
	check(same < 16 && zero < 16, "two entropy reads differ and are not zeros");
	gprintf("virtio-rng: 128 bytes, first %x %x %x %x\n", a[0], a[1], a[2], a[3]);
}

static void console_test(struct vdev *d, unsigned devi)
{
	static const char msg[] = "hvc0: hello from virtio-console\n";
	struct vqueue *q = &d->q[1];
	uint32_t id, len;
	unsigned seen = irq_count[devi];

	q->desc[0] = (struct desc){(uint64_t)(uintptr_t)msg, sizeof(msg) - 1, 0, 0};
	vq_add(q, 0);
	vq_kick(q);
	while (!vq_used(q, &id, &len)) {
		while (irq_count[devi] == seen)
			pause();
		seen = irq_count[devi];
	}
	check(id == 0, "console buffer returned");
}

/* hvc0 writes: one buffer, waited for. */
static void hvc_write(struct vdev *d, const char *msg, uint32_t len)
{
	static char buf[128];
	struct vqueue *q = &d->q[1];
	uint32_t id, l;
	uint64_t t0 = rdtsc();

	if (len > sizeof(buf))
		len = sizeof(buf);
	memcpy(buf, msg, len);
	q->desc[0] = (struct desc){(uint64_t)(uintptr_t)buf, len, 0, 0};
	vq_add(q, 0);
	vq_kick(q);
	while (!vq_used(q, &id, &l) && ms_since(t0) < 5000)
		pause();
}

/* "hvcreset": 1 MiB handed to hvc0 in one buffer, and the machine reset
 * through the i8042 at once, while the host is still taking the buffer in:
 * a reset must not wait on console output that nobody will read. */
static void console_reset_test(struct vdev *d)
{
	static char big[1 << 20];
	struct vqueue *q = &d->q[1];

	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (i % 64) == 63 ? '\n' : (char)('a' + i % 26);
	gprintf("virtio: 1 MiB for hvc0, then a reset\n");
	q->desc[0] = (struct desc){(uint64_t)(uintptr_t)big, sizeof(big), 0, 0};
	vq_add(q, 0);
	vq_kick(q);
	while (inb(0x64) & 0x02) /* the i8042's input buffer full */
		pause();
	outb(0x64, 0xfe);
	for (;;)
		pause();
}

/* A line typed at the UART (polled), up to CR or LF; false after timeout_ms. */
static bool uart_line(char *line, unsigned cap, unsigned timeout_ms)
{
	uint64_t t0 = rdtsc();
	unsigned n = 0;

	while (ms_since(t0) < timeout_ms) {
		if (!(inb(COM1 + 5) & 1)) {
			pause();
			continue;
		}
		char c = (char)inb(COM1);
		if (c == '\r' || c == '\n') {
			line[n] = 0;
			return true;
		}
		if (n + 1 < cap)
			line[n++] = c;
	}
	line[n] = 0;
	return false;
}

/* " size ROWSxCOLS" appended to msg at n; the new length. */
static unsigned put_size(char *msg, unsigned n, unsigned rows, unsigned cols)
{
	unsigned v[2] = {rows, cols};

	for (const char *p = " size "; *p; p++)
		msg[n++] = *p;
	for (unsigned k = 0; k < 2; k++) {
		char digits[8];
		unsigned nd = 0;

		if (k == 1)
			msg[n++] = 'x';
		do
			digits[nd++] = (char)('0' + v[k] % 10);
		while ((v[k] /= 10) != 0 && nd < sizeof(digits));
		while (nd > 0)
			msg[n++] = digits[--nd];
	}
	return n;
}

/* "hvcecho": a line typed for the UART, then one for hvc0 once the guest has
 * written to it; each comes back as an echo, and the UART got nothing meant
 * for hvc0. hvc0's echo says its terminal's size (rows x cols, from the
 * configuration space, F_SIZE negotiated) when the line came. */
/* How long the guest waits for a line typed by the test: longer than the
 * test's own wait for each step, so that the test, not the guest, says
 * what did not come (in a loaded emulated machine a few steps of the test
 * took more than 30 s between the guest's prompt and the typing). */
#define TYPING_WAIT_MS 300000

static void console_echo_test(struct vdev *d, unsigned devi)
{
	static char rx[4][64], line[64], msg[96];
	struct vqueue *q = &d->q[0];
	unsigned n = 0;
	bool done = false;
	uint64_t t0;

	gprintf("virtio: type a line for ttyS0\n");
	check(uart_line(line, sizeof(line), TYPING_WAIT_MS), "a line typed at the UART");
	gprintf("virtio: ttyS0 got '%s'\n", line);
	if (!vdev_init(d, 1, 2, true))
		return;
	check(d->features & 1, "virtio-console offers VIRTIO_CONSOLE_F_SIZE");
	for (uint16_t i = 0; i < 4; i++) {
		q->desc[i] = (struct desc){(uint64_t)(uintptr_t)rx[i], sizeof(rx[i]), 2, 0};
		vq_add(q, i);
	}
	vq_kick(q);
	hvc_write(d, "hvc0: ready for input\n", 22);
	t0 = rdtsc();
	while (!done && ms_since(t0) < TYPING_WAIT_MS) {
		uint32_t id, len;

		if (!vq_used(q, &id, &len)) {
			pause();
			continue;
		}
		check(id < 4 && len <= sizeof(rx[0]), "receive buffer returned whole");
		for (uint32_t k = 0; id < 4 && k < len && !done; k++) {
			char c = rx[id][k];
			if (c == '\r' || c == '\n')
				done = true;
			else if (n + 1 < sizeof(line))
				line[n++] = c;
		}
		if (id < 4) {
			vq_add(q, (uint16_t)id);
			vq_kick(q);
		}
	}
	line[n] = 0;
	check(done, "a line typed at hvc0");
	check(!(inb(COM1 + 5) & 1), "typing for hvc0 did not reach the UART");
	n = 0;
	for (const char *p = "hvc0: got '"; *p; p++)
		msg[n++] = *p;
	for (const char *p = line; *p; p++)
		msg[n++] = *p;
	msg[n++] = '\'';
	n = put_size(msg, n, *(volatile uint16_t *)(d->devcfg + 2),
		     *(volatile uint16_t *)d->devcfg);
	msg[n++] = '\n';
	hvc_write(d, msg, n);
	(void)devi;
}

/* ---- the PCI configuration access capability (virtio 1.2, 4.1.4.9) ---- */

static void win_set(struct vdev *d, unsigned bar, uint32_t off, uint32_t len)
{
	cfg_write8(d->slot, d->cfg_cap + 4, (uint8_t)bar);
	cfg_write32(d->slot, d->cfg_cap + 8, off);
	cfg_write32(d->slot, d->cfg_cap + 12, len);
}

/* cap.length bytes at off in bar, read through pci_cfg_data. */
static uint32_t win_read(struct vdev *d, unsigned bar, uint32_t off, uint32_t len)
{
	uint32_t v;

	win_set(d, bar, off, len);
	v = cfg_read32(d->slot, d->cfg_cap + 16);
	return len >= 4 ? v : v & ((1u << (8 * len)) - 1);
}

/* A write of len bytes at off in the common configuration's BAR. */
static void win_write(struct vdev *d, uint32_t off, uint32_t len, uint32_t v)
{
	win_set(d, d->common_bar, off, len);
	if (len == 4)
		cfg_write32(d->slot, d->cfg_cap + 16, v);
	else if (len == 2)
		cfg_write16(d->slot, d->cfg_cap + 16, (uint16_t)v);
	else
		cfg_write8(d->slot, d->cfg_cap + 16, (uint8_t)v);
}

/* The window against the same registers read and written in BAR memory. */
static bool pci_cfg_check(struct vdev *d)
{
	int before = failures;
	unsigned bar = d->common_bar;
	uint32_t co = d->common_off;

	check(d->cfg_cap != 0, "VIRTIO_PCI_CAP_PCI_CFG capability present");
	if (d->cfg_cap == 0 || d->common == NULL)
		return false;
	check(cfg_read8(d->slot, d->cfg_cap + 2) >= 20, "PCI_CFG capability holds pci_cfg_data");
	C8(d, 0x14) = 0;
	while (C8(d, 0x14) != 0)
		pause();
	check(win_read(d, bar, co + 0x12, 2) == C16(d, 0x12), "2-byte window read (num_queues)");
	win_write(d, co + 0x00, 4, 1);
	check(C32(d, 0x00) == 1, "4-byte window write (device_feature_select)");
	check(win_read(d, bar, co + 0x04, 4) == C32(d, 0x04), "4-byte window read (device_feature)");
	C32(d, 0x00) = 0;
	win_write(d, co + 0x14, 1, 1);
	check(C8(d, 0x14) == 1, "1-byte window write (device_status)");
	check(win_read(d, bar, co + 0x14, 1) == 1, "1-byte window read (device_status)");
	win_write(d, co + 0x16, 2, 1);
	check(C16(d, 0x16) == 1, "2-byte window write (queue_select)");
	C16(d, 0x16) = 0;
	/* Windows a driver must not use read as zeros and write nothing. */
	check(win_read(d, bar, co + 0x13, 2) == 0, "unaligned window reads nothing");
	check(win_read(d, bar, co + 0x14, 3) == 0, "3-byte window reads nothing");
	check(win_read(d, bar, 0x7FFFFFF0, 4) == 0, "window past the BAR reads nothing");
	check(win_read(d, 5, 0, 4) == 0, "window on a BAR the device lacks reads nothing");
	win_set(d, bar, co + 0x14, 3);
	cfg_write32(d->slot, d->cfg_cap + 16, 0);
	win_set(d, bar, 0x7FFFFFF0, 4);
	cfg_write32(d->slot, d->cfg_cap + 16, 0);
	check(C8(d, 0x14) == 1, "bad windows write nothing");
	C8(d, 0x14) = 0;
	return failures == before;
}

/* ---- hostile programming: the device must break, not the host ---- */

/* Waits (up to ~1 s) for DEVICE_NEEDS_RESET. */
static bool wait_needs_reset(struct vdev *d)
{
	uint64_t t0 = rdtsc();

	while (!(C8(d, 0x14) & 0x40)) {
		if (ms_since(t0) > 1000)
			return false;
		pause();
	}
	return true;
}

/* Waits (up to ~1 s) for device 0's interrupt count to move past seen: the
 * device sets the status bit before it signals, so the interrupt may still be
 * on its way when the bit is seen. */
static bool wait_irq_after(unsigned seen)
{
	uint64_t t0 = rdtsc();

	while (irq_count[0] == seen) {
		if (ms_since(t0) > 1000)
			return false;
		pause();
	}
	return true;
}

static void hostile_chain(struct vdev *d, const char *what, uint16_t f0, uint16_t n0, uint64_t a0,
			  uint32_t l0)
{
	struct vqueue *q = &d->q[0];
	unsigned seen = irq_count[0];

	q->desc[0] = (struct desc){a0, l0, f0, n0};
	q->desc[1] = (struct desc){(uint64_t)(uintptr_t)arena, 16, 2 | 1, 0};
	vq_add(q, 0);
	vq_kick(q);
	check(wait_needs_reset(d), what);
	check(wait_irq_after(seen), "configuration interrupt on needs-reset");
	C8(d, 0x14) = 0;
	check(C8(d, 0x14) == 0, "reset clears needs-reset");
}

/* Bus Master Enable off: the device must not read the rings or write the
 * buffer, nor send an MSI; on again, the request it left completes. */
static void bme_test(struct vdev *d, unsigned devi)
{
	static uint8_t buf[32];
	struct vqueue *q = &d->q[0];
	int before = failures;
	unsigned seen;
	uint32_t id, len = 0;
	uint64_t t0;
	bool untouched = true, used;

	if (!vdev_init(d, 0, 1, true))
		return;
	memset(buf, 0, sizeof(buf));
	cfg_write16(d->slot, 4, 0x2); /* memory decoding only */
	seen = irq_count[devi];
	q->desc[0] = (struct desc){(uint64_t)(uintptr_t)buf, sizeof(buf), 2, 0};
	vq_add(q, 0);
	vq_kick(q);
	t0 = rdtsc();
	while (ms_since(t0) < 300)
		pause();
	for (unsigned i = 0; i < sizeof(buf); i++)
		untouched &= buf[i] == 0;
	used = vq_used(q, &id, &len);
	check(!used, "bus mastering off: the request is not taken");
	check(untouched, "bus mastering off: the buffer is untouched");
	check(irq_count[devi] == seen, "bus mastering off: no MSI");
	cfg_write16(d->slot, 4, 0x6);
	t0 = rdtsc();
	while (!used && ms_since(t0) < 2000)
		used = vq_used(q, &id, &len);
	check(used && len == sizeof(buf), "bus mastering on again: the request completes");
	check(wait_irq_after(seen), "bus mastering on again: its interrupt arrives");
	C8(d, 0x14) = 0;
	if (failures == before)
		gprintf("virtio: bus master checks done\n");
}

static void hostile_test(struct vdev *d, unsigned devi)
{
	/* A loop: 0 -> 1 -> 0. */
	if (vdev_init(d, 0, 1, true))
		hostile_chain(d, "looping chain marks the device broken", 1 | 2, 1, 0, 0);
	d->q[0].desc[1].next = 0;
	/* A buffer on the LAPIC page, not RAM. */
	if (vdev_init(d, 0, 1, true))
		hostile_chain(d, "buffer outside RAM marks the device broken", 2, 0, 0xFEE00000,
			      64);
	/* A huge buffer. */
	if (vdev_init(d, 0, 1, true))
		hostile_chain(d, "4 GiB buffer marks the device broken", 2, 0, 0x100000,
			      0xFFFFFFFF);
	/* An indirect table inside an indirect table. */
	if (vdev_init(d, 1ull << 28, 1, true)) {
		static struct desc nested[1] __attribute__((aligned(16)));
		nested[0] = (struct desc){(uint64_t)(uintptr_t)nested, 16, 4, 0};
		hostile_chain(d, "nested indirect table marks the device broken", 4, 0,
			      (uint64_t)(uintptr_t)nested, 16);
	}
	/* Rings in the PCI hole: enabling the queue must fail. */
	bad_ring_addr = 0xD0000000;
	vdev_init(d, 0, 1, true);
	bad_ring_addr = 0;
	check(wait_needs_reset(d), "queue rings outside RAM refused");
	C8(d, 0x14) = 0;
	/* And after all that, the device works again. */
	if (vdev_init(d, 0, 1, true))
		rng_test(d, devi);
	C8(d, 0x14) = 0;
	if (failures == 0)
		gprintf("virtio: hostile programming survived\n");
	bme_test(d, devi);
}

/* ---- interrupts (CPL 0) ---- */

static void on_msix(unsigned vec, uint64_t *frame)
{
	/* One vector for all devices: every device's counter moves. */
	for (unsigned i = 0; i < 8; i++)
		irq_count[i]++;
	lapic_eoi();
}

static void on_intx(unsigned vec, uint64_t *frame)
{
	volatile struct vdev *d = intx_dev;

	if (d != NULL && (*d->isr & 1))
		for (unsigned i = 0; i < 8; i++)
			irq_count[i]++;
	lapic_eoi();
}

/* ---- the driver, at CPL 3 ---- */

static void ecam_check(void)
{
	for (unsigned s = 0; s < 32; s++) {
		uint32_t t1 = cfg_read32(s, 0);
		uint32_t e = *(volatile uint32_t *)(uintptr_t)(0xE0000000ull + (s << 15));
		check(t1 == e, "ECAM and type-1 agree");
	}
	gprintf("virtio: ECAM matches type-1 access\n");
}

static void user_main(void)
{
	unsigned nblk = 0;

	tsc_calibrate();
	qd = word_value("qd", 16);
	bs = word_value("bs", 64) * 1024;
	if (qd == 0 || qd > MAX_QD)
		qd = 16;
	if (bs == 0 || bs > MAX_BS)
		bs = 64 * 1024;
	for (unsigned k = 0; k < qd; k++)
		bufs[k] = alloc(bs);
	if (has_word("ecam"))
		ecam_check();
	find_bar_top();
	for (unsigned s = 0; s < 32 && ndevs < 8; s++) {
		uint32_t idr = cfg_read32(s, 0);
		if ((idr & 0xFFFF) != 0x1AF4 || (idr >> 16) < 0x1040)
			continue;
		struct vdev *d = &devs[ndevs++];
		d->slot = s;
		d->id = (uint16_t)((idr >> 16) - 0x1040);
		/* Memory decoding and bus mastering on. */
		cfg_write16(s, 4, 0x6);
		read_caps(d);
		gprintf("virtio: slot %u device %u, %u MSI-X vectors\n", s, d->id, d->nvec);
		check(d->common && d->notify && d->isr, "common, notify and ISR capabilities");
	}
	if (has_word("pcicfg")) {
		unsigned ok = 0;
		for (unsigned i = 0; i < ndevs; i++)
			ok += pci_cfg_check(&devs[i]);
		gprintf("virtio: pci_cfg window: %u of %u devices ok\n", ok, ndevs);
	}
	for (unsigned i = 0; i < ndevs; i++) {
		struct vdev *d = &devs[i];
		if (d->id == 2) {
			if (!vdev_init(d,
				       1ull << 5 | 1ull << 9 | 1ull << 12 | 1ull << 13 |
					   1ull << 14 | 1ull << 28,
				       4, true))
				continue;
			/* Slots map to queues round-robin: qd must cover them. */
			blk_test(d, i);
			nblk++;
			C8(d, 0x14) = 0;
		} else if (d->id == 4) {
			bool intx = has_word("intx");
			if (has_word("hostile")) {
				hostile_test(d, i);
				continue;
			}
			if (intx)
				intx_dev = d;
			if (vdev_init(d, 0, 1, !intx))
				rng_test(d, i);
			C8(d, 0x14) = 0;
		} else if (d->id == 3) {
			if (has_word("hvcecho"))
				console_echo_test(d, i);
			else if (has_word("hvcreset") && vdev_init(d, 0, 2, true))
				console_reset_test(d);
			else if (vdev_init(d, 0, 2, true))
				console_test(d, i);
			C8(d, 0x14) = 0;
		}
	}
	check(nblk > 0 || has_word("noblk"), "a virtio-blk device was found");
	check(irq_count[0] > 0, "interrupts arrived");
	gprintf("virtio: %u devices, %u interrupts, %d failures\n", ndevs, irq_count[0], failures);
	if (failures == 0)
		gprintf("virtio: ok\n");
	outb(0xf4, failures == 0 ? 0 : 1);
	for (;;)
		pause();
}

/* ---- CPL 0 setup ---- */

struct tss {
	uint32_t res0;
	uint64_t rsp[3];
	uint64_t res1;
	uint64_t ist[7];
	uint64_t res2;
	uint16_t res3, iomap;
	/* Every port open to CPL 3 (IOPL alone is not honoured everywhere). */
	uint8_t iobitmap[8192];
	uint8_t iobitmap_end;
} __attribute__((packed));

extern uint64_t tss_desc[2];
static struct tss tss __attribute__((aligned(16)));
static uint8_t kstack[16384] __attribute__((aligned(16)));
static uint8_t ustack[65536] __attribute__((aligned(16)));

static void tss_load(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)(uintptr_t)(kstack + sizeof(kstack));
	tss.iomap = offsetof(struct tss, iobitmap);
	tss.iobitmap_end = 0xFF;
	tss_desc[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
		      ((base >> 24) & 0xff) << 56;
	tss_desc[1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(0x38));
}

/* iretq to ring 3 with IOPL 3 (port I/O for the UART and config space). */
static void enter_user_iopl(uint64_t rip, uint64_t rsp)
{
	__asm__ volatile("push $0x2b\n\tpush %1\n\tpush $0x3202\n\tpush $0x33\n\tpush %0\n\tiretq"
			 :
			 : "r"(rip), "r"(rsp)
			 : "memory");
}

int guest_main(struct hvm_start_info *si)
{
	if (si != NULL && si->cmdline_paddr != 0)
		cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
	idt_init();
	idt_set_handler(MSIX_VECTOR, on_msix);
	idt_set_handler(INTX_VECTOR, on_intx);
	pic_mask_all();
	lapic_enable();
	tss_load();
	if (has_word("intx")) {
		/* Route every PCI INTx GSI (16-23), level-triggered, to one vector. */
		for (unsigned pin = 16; pin < 24; pin++) {
			mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
			mmio_write32(IOAPIC_BASE + 0x10, 0);
			mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
			mmio_write32(IOAPIC_BASE + 0x10, INTX_VECTOR | 1 << 15);
		}
	}
	puts_serial("virtio: driver starts at CPL 3\n");
	enter_user_iopl((uint64_t)(uintptr_t)user_main,
			(uint64_t)(uintptr_t)(ustack + sizeof(ustack)));
	return 1;
}
