/* Ring 3: a long loop and memory writes at CPL 3 (which run natively even
 * where CPL 0 is emulated), then int $0x80 back to the kernel with the
 * result: a privileged instruction (hlt) at CPL 3 raises #GP, whose handler
 * checks it came from CPL 3 and prints the result. (A software interrupt
 * would do too on real hardware; some nested hosts take int $0x80 for
 * themselves.) */
#include "guest.h"

#define ITERATIONS 100000000ULL
#define BUF_BASE 0x1000000UL /* 16 MiB */
#define BUF_SIZE (16UL << 20)

struct tss {
	uint32_t res0;
	uint64_t rsp[3];
	uint64_t res1;
	uint64_t ist[7];
	uint64_t res2;
	uint16_t res3, iomap;
} __attribute__((packed));

extern uint64_t tss_desc[2];
void enter_user(uint64_t rip, uint64_t rsp);

static struct tss tss __attribute__((aligned(16)));
static uint8_t kstack[8192] __attribute__((aligned(16)));
static uint8_t ustack[8192] __attribute__((aligned(16)));
static uint64_t t0;

static void tss_load(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)(uintptr_t)(kstack + sizeof(kstack));
	tss.iomap = sizeof(tss);
	tss_desc[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
		      ((base >> 24) & 0xff) << 56;
	tss_desc[1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(0x38));
}

/* Runs at CPL 3. */
static void user_entry(void)
{
	uint64_t x = 1, bad = 0;
	volatile uint64_t *buf = (volatile uint64_t *)BUF_BASE;

	for (uint64_t i = 0; i < ITERATIONS; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	for (uint64_t i = 0; i < BUF_SIZE / 8; i++)
		buf[i] = x + i;
	for (uint64_t i = 0; i < BUF_SIZE / 8; i++)
		bad += buf[i] != x + i;
	__asm__ volatile("hlt" : : "a"(x), "d"(bad));
	for (;;)
		;
}

static void on_gp(unsigned vec, uint64_t *frame)
{
	uint64_t cycles = rdtsc() - t0;

	gprintf("user: result %lx from cpl %u, %lu memory errors\n", frame[8],
		(unsigned)(frame[12] & 3), frame[6]);
	gprintf("user: %lu M tsc cycles\n", cycles / 1000000);
	guest_exit((frame[12] & 3) == 3 ? 0 : 1);
}

int guest_main(struct hvm_start_info *si)
{
	idt_init();
	idt_set_handler(13, on_gp);
	tss_load();
	puts_serial("user: entering ring 3\n");
	t0 = rdtsc();
	enter_user((uint64_t)(uintptr_t)user_entry, (uint64_t)(uintptr_t)(ustack + sizeof(ustack)));
	return 1;
}
