/* The `cpus` command: wakes every application processor with INIT-SIPI-SIPI through a
 * real-mode trampoline below 1 MiB, and has each CPU (the boot one too) run a small
 * xorshift workload at CPL 3, where this guest's heavy work belongs.  smp_start wakes
 * the application processors for other work too (`stress spin`). */
#include "demo.h"

#define WORK_ROUNDS (1u << 24)

struct work {
	uint64_t seed, rounds, sum, cs;
	uint64_t tsc0, tsc1;
	uint32_t apic_id;
	volatile uint32_t done;
};

extern char ustacks[];
extern volatile uint32_t ap_next_index;
static struct work work[DEMO_MAX_CPUS];
static void (*ap_job)(unsigned cpu); /* what the next woken processors run */

/* Runs at CPL 3: no privileged instruction, no kernel data beyond *w. */
static uint64_t user_work(uint64_t arg)
{
	struct work *w = (struct work *)arg;
	uint64_t x = w->seed * 0x9e3779b97f4a7c15ULL | 1, sum = 0;
	uint16_t cs;

	for (uint64_t i = 0; i < w->rounds; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum += x;
	}
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	w->sum = sum;
	w->cs = cs;
	return 0;
}

static void cpu_work(unsigned cpu)
{
	struct work *w = &work[cpu];

	w->apic_id = lapic_id();
	w->seed = w->apic_id + 1;
	w->rounds = WORK_ROUNDS;
	w->tsc0 = rdtsc();
	user_run(user_work, (uint64_t)w, ustacks + 4096 * (cpu + 1), cpu_user_slot(cpu));
	w->tsc1 = rdtsc();
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
}

void ap_main(unsigned cpu)
{
	cpu_load_tables(cpu);
	lapic_enable();
	__atomic_load_n(&ap_job, __ATOMIC_ACQUIRE)(cpu);
	for (;;)
		__asm__ volatile("cli; hlt"); /* until the next INIT */
}

/* A free page below 1 MiB (the SIPI vector names a page there) for the trampoline. */
static uint64_t trampoline_page(void)
{
	for (uint64_t a = 0x8000; a < 0x9f000; a += 0x1000)
		if (boot_is_ram(a, 0x1000))
			return a;
	return 0;
}

static unsigned cpus_done(unsigned n)
{
	unsigned done = 0;

	for (unsigned i = 0; i < n; i++)
		done += __atomic_load_n(&work[i].done, __ATOMIC_ACQUIRE);
	return done;
}

static void work_print(unsigned i)
{
	struct work *w = &work[i];
	uint64_t rate = tsc_per_ms(), cycles = w->tsc1 - w->tsc0;

	printf("  cpu %-2u apic %-3u " C_GREEN "ring %lu" C_RESET "  %lu rounds  ", i, w->apic_id,
	       w->cs & 3, w->rounds);
	if (rate)
		printf("%4lu ms", cycles / rate);
	else
		printf("%lu cycles", cycles);
	printf("  sum %016lx\n", w->sum);
}

/* Wakes every application processor to run job(cpu), cpu numbered from 1 (the boot
 * processor is 0); returns how many CPUs take part, the boot one included (1 when
 * there is no other or no page to start them from). */
unsigned smp_start(void (*job)(unsigned cpu))
{
	unsigned n = acpi.ncpus, me = lapic_id();
	uint64_t page = n > 1 ? trampoline_page() : 0;

	if (n > 1 && !page)
		printf(C_YEL
		       "no free page below 1 MiB for the start-up code: only cpu 0 works" C_RESET
		       "\n");
	if (!page)
		return 1;
	memcpy((void *)page, ap_trampoline_start,
	       (size_t)(ap_trampoline_end - ap_trampoline_start));
	__atomic_store_n(&ap_job, job, __ATOMIC_RELEASE);
	__atomic_store_n(&ap_next_index, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < n; i++)
		if (acpi.apic_ids[i] != me)
			lapic_ipi(acpi.apic_ids[i], 0x4500); /* INIT */
	sleep_ticks(2);					     /* >= 10 ms */
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < n; i++)
			if (acpi.apic_ids[i] != me)
				lapic_ipi(acpi.apic_ids[i], 0x4600 | (uint32_t)(page >> 12));
		if (round == 0)
			sleep_ticks(1);
	}
	return n;
}

void smp_run(void)
{
	unsigned expect;

	tsc_per_ms_wait(); /* so the results read in milliseconds */
	memset(work, 0, sizeof(work));
	expect = smp_start(cpu_work);
	printf("running %u xorshift rounds at CPL 3 on %u vCPU%s...\n", WORK_ROUNDS, expect,
	       expect == 1 ? "" : "s");
	cpu_work(0);
	/* A generous limit: on a crowded host the other vCPUs may wait their turn. */
	for (uint64_t until = ticks + 10 * DEMO_TICK_HZ;
	     cpus_done(expect) < expect && ticks < until;)
		irq_wait();
	unsigned done = cpus_done(expect);
	for (unsigned i = 0; i < expect; i++)
		if (work[i].done)
			work_print(i);
	if (done == expect && expect == 1)
		printf(C_GREEN "the only vCPU finished" C_RESET "\n");
	else if (done == expect)
		printf(C_GREEN "all %u vCPUs finished" C_RESET "\n", done);
	else
		printf(C_RED "only %u of %u vCPUs answered" C_RESET "\n", done, expect);
}
