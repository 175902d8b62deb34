/* The demo guest: a tiny freestanding x86-64 operating system booted through PVH.
 * Everything here runs identity-mapped; physical address == virtual address. */
#ifndef DEMO_H
#define DEMO_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define DEMO_MAX_CPUS 64
#define DEMO_TICK_HZ  100

/* Interrupt vectors. */
#define VEC_TIMER    0x20
#define VEC_SERIAL   0x24
#define VEC_SCI	     0x29
#define VEC_VIRTIO   0x30
#define VEC_SPURIOUS 0xff

/* GDT selectors (entry.S lays the table out in this order). */
#define SEL_KCODE  0x08
#define SEL_KDATA  0x10
#define SEL_UDATA  0x1b
#define SEL_UCODE  0x23
#define SEL_TSS(i) (0x28 + 16 * (i))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}
static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}
static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}
static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}
/* Sleeps until the next interrupt; sti's one-instruction shadow makes the pair atomic,
 * so a wake-up that arrives after the caller's check (made with interrupts off) is not lost. */
static inline void irq_wait(void)
{
	__asm__ volatile("sti; hlt; cli" ::: "memory");
}
#define barrier() __asm__ volatile("" ::: "memory")

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* console.c: COM1 */
void console_init(void);
void console_write(const char *s, size_t n);
void console_puts(const char *s);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_irq(void);
int console_getc(void);	   /* blocks, halting while idle */
int console_trygetc(void); /* -1 when nothing is waiting */

/* ANSI colours */
#define C_RESET "\033[0m"
#define C_BOLD	"\033[1m"
#define C_RED	"\033[1;31m"
#define C_GREEN "\033[1;32m"
#define C_YEL	"\033[1;33m"
#define C_BLUE	"\033[1;34m"
#define C_MAG	"\033[1;35m"
#define C_CYAN	"\033[1;36m"
#define C_DIM	"\033[2m"

/* readline.c, and the shell's completion for it */
int readline(const char *prompt, char *buf, size_t size);
const char *shell_complete(const char *line, size_t len, unsigned *matches);
void shell_list_matches(const char *line, size_t len);

/* boot.c: what the loader told us, kept after the loader's pages may be reused. */
struct mem_range {
	uint64_t addr, size;
	uint32_t type;
};
struct boot_info {
	char cmdline[256];
	struct mem_range mem[32];
	unsigned nmem;
	uint64_t rsdp;
};
extern struct boot_info boot;
extern uint64_t boot_tsc_start, boot_tsc_prompt;
uint64_t boot_ram_bytes(void);
int boot_is_ram(uint64_t addr, uint64_t len);
void map_phys(uint64_t addr, uint64_t len);
int map_ram(uint64_t addr, uint64_t len);

/* acpi.c */
struct acpi_info {
	int found;
	unsigned ncpus;
	uint8_t apic_ids[DEMO_MAX_CPUS];
	uint64_t lapic;
	uint64_t ioapic;
	uint32_t ioapic_gsi_base;
	uint32_t isa_gsi[16];	/* ISA IRQ -> GSI after overrides */
	uint16_t isa_flags[16]; /* MPS INTI flags from the override */
	uint64_t ecam;
	uint16_t pm1a_cnt;
	uint16_t pm1a_evt; /* status; enable at + pm1_evt_len / 2 */
	uint8_t pm1_evt_len;
	uint16_t pm_tmr; /* ACPI PM timer port, 0 if none */
	uint8_t pm_tmr_32bit;
	uint8_t acpi_enable;
	uint16_t sci_irq;
	uint32_t smi_cmd;
	uint64_t sleep_ctl; /* hardware-reduced ACPI sleep control register (MMIO or I/O) */
	uint8_t sleep_ctl_space;
	uint64_t dsdt;
	char oem[7];
};
extern struct acpi_info acpi;
void acpi_init(void);
int acpi_s5_type(void);
void acpi_poweroff(void);
void acpi_power_button_init(void);
void acpi_power_button_poll(void);

/* irq.c: IDT, LAPIC, IOAPIC, PIT tick */
extern volatile uint64_t ticks;
void irq_init(void);
void cpu_load_tables(unsigned cpu);
uint64_t *cpu_user_slot(unsigned cpu);
uint32_t lapic_id(void);
void lapic_enable(void);
void lapic_eoi(void);
void irq_route_isa(unsigned isa_irq, unsigned vec);
void lapic_ipi(uint32_t apic_id, uint32_t icr_low);
void sleep_ticks(uint64_t n);
void timer_idle(int idle);
uint64_t uptime_ms(void);
uint64_t tsc_per_ms(void);
uint64_t tsc_per_ms_wait(void);
void panic(const char *why) __attribute__((noreturn));

/* smp.c */
void smp_run(void);
unsigned smp_start(void (*job)(unsigned cpu));
void ap_main(unsigned cpu);

/* stress.c */
void cmd_stress(const char *arg);

/* pci.c + virtio_blk.c */
struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
};
uint32_t pci_read32(const struct pci_dev *d, unsigned off);
void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v);
uint8_t pci_read8(const struct pci_dev *d, unsigned off);
uint16_t pci_read16(const struct pci_dev *d, unsigned off);
void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v);
int pci_find(uint16_t vendor, const uint16_t *devices, size_t ndevices, struct pci_dev *out,
	     int index);
const char *pci_method(void);
uint64_t pci_bar(const struct pci_dev *d, unsigned bar);
uint64_t pci_bar_assign(const struct pci_dev *d, unsigned bar);

/* virtio_pci.c: the modern virtio PCI transport the drivers share */
#define VIRTIO_NO_VECTOR 0xffff
struct virtio_regs {
	uint64_t common, notify, devcfg; /* the transport's regions */
	uint32_t notify_mul;
};
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
/* A split virtqueue of at most VQ_MAX entries (the drivers ask for no more). */
#define VQ_MAX 16
struct vring {
	struct vq_desc desc[VQ_MAX];
	struct {
		uint16_t flags, idx, ring[VQ_MAX], used_event;
	} avail __attribute__((aligned(4)));
	struct {
		uint16_t flags, idx;
		struct {
			uint32_t id, len;
		} ring[VQ_MAX];
		uint16_t avail_event;
	} used __attribute__((aligned(4)));
};
struct virtio_queue {
	struct vq_desc *desc;
	void *avail, *used;
	uint64_t notify;
	uint16_t size, index;
	int msix; /* completions interrupt through MSI-X entry 0 */
};
int virtio_msix_setup(const struct pci_dev *d);
const char *virtio_caps_find(const struct pci_dev *d, struct virtio_regs *r);
const char *virtio_negotiate(const struct virtio_regs *r, uint32_t want, uint32_t *got);
const char *virtio_queue_setup(const struct virtio_regs *r, unsigned q, uint16_t max,
			       uint16_t vector, struct virtio_queue *vq);
void virtio_driver_ok(const struct virtio_regs *r);
void virtio_failed(const struct virtio_regs *r);
void virtio_notify(const struct virtio_queue *vq);
const char *virtio_start(const struct pci_dev *d, struct virtio_regs *r, uint32_t want,
			 uint32_t *got, int *msix);
void virtio_publish(struct vring *r, uint16_t size, uint16_t id);

#define VBLK_MAX 4
struct vq;
struct vblk {
	int present;
	struct pci_dev pci;
	uint64_t sectors;
	const char *error;
	struct virtio_regs regs;
	struct virtio_queue q;
	uint16_t used_seen;
	int msix; /* completions interrupt through MSI-X entry 0 */
	struct vq *vq;
};
extern struct vblk disks[VBLK_MAX]; /* disks[0] keeps the notes */
extern unsigned ndisks;
void vblk_probe(void);
int vblk_rw(struct vblk *b, int write, uint64_t sector, void *buf);
/* len bytes (a multiple of 512) straight from or into buf, waiting up to
 * timeout_s seconds (0: as long as it takes). */
int vblk_rw_direct(struct vblk *b, int write, uint64_t sector, void *buf, uint32_t len,
		   unsigned timeout_s);

/* virtio_console.c: hvc0, the console when the command line's last console= names it */
void vcon_probe(void);
int vcon_active(void);
void vcon_write(const char *s, size_t n); /* appends; full buffers go */
void vcon_written(void);		  /* the end of a write: sends unless batching */
void vcon_flush(void);
void vcon_batch(int on);
int vcon_getc(void); /* -1 when nothing was typed */

/* virtio_net.c: the first virtio-net device, polled; net.c: the `net` command */
struct vnet {
	int present;
	struct pci_dev pci;
	const char *error;
	uint8_t mac[6];
	uint64_t frames_in, frames_out, dropped_in;
};
extern struct vnet nic;
void vnet_probe(void);
int vnet_send(const void *frame, size_t len); /* 0, or -1 when the queue is full */
/* Hands every received frame to fn; returns how many. */
unsigned vnet_poll(void (*fn)(const uint8_t *frame, size_t len));
void net_idle_poll(void); /* answers ARP and pings while the shell waits for a key */
void cmd_net(const char *arg);

/* user.S: runs fn(arg) at CPL 3 on stack, returns what fn passed to user_exit */
uint64_t user_run(uint64_t (*fn)(uint64_t), uint64_t arg, void *stack_top, uint64_t *slot);
extern char ap_trampoline_start[], ap_trampoline_end[];

#endif
