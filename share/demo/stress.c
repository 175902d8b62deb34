/* The `stress` command: the guest at its most demanding, until a key is pressed, so
 * that the host's hold on the VM (its status, console, pause and stop) can be seen to
 * keep answering:
 *   console  COM1 output as fast as the UART takes it, a numbered line at a time;
 *   spin     every vCPU busy at CPL 3, where nothing but the timer leaves the guest;
 *   io       device registers in a tight loop: the RTC's index and data ports, the
 *            UART's scratch register, the ACPI PM timer;
 *   all      the three at once: the application processors spin, the boot processor
 *            alternates a line of output with a burst of port accesses;
 *   echo     console output as in `console`, in lower case and below the top row,
 *            and every key typed shown on the top row at once (outside the
 *            scrolling region), until Ctrl-C: what a terminal's key-to-screen
 *            latency under a flood is measured with (bench/console.sh).
 * The boot processor takes its interrupts between rounds, so the ACPI power button
 * still powers the guest off cleanly. */
#include "demo.h"

#define COM1_SCR   0x3ff
#define RTC_INDEX  0x70
#define RTC_DATA   0x71
#define IO_BURST   64 /* port accesses between two looks for a key */
#define SPIN_TICKS 10 /* the boot processor's turn at CPL 3 between two looks */

enum { S_CONSOLE = 1, S_SPIN = 2, S_IO = 4, S_ECHO = 8 };
#define CTRL_C 3

extern char ustacks[];
static volatile uint32_t spin_stop; /* read at CPL 3 */
static volatile uint32_t spinning;  /* application processors in user_spin */

/* Runs at CPL 3 until told to stop or, when until is not 0, until that tick. */
static uint64_t user_spin(uint64_t until)
{
	uint64_t x = until | 1;

	while (!spin_stop && (until == 0 || ticks < until)) {
		for (unsigned i = 0; i < 4096; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
	}
	return x;
}

static void spin_job(unsigned cpu)
{
	__atomic_add_fetch(&spinning, 1, __ATOMIC_SEQ_CST);
	user_run(user_spin, 0, ustacks + 4096 * (cpu + 1), cpu_user_slot(cpu));
	__atomic_sub_fetch(&spinning, 1, __ATOMIC_SEQ_CST);
}

/* IO_BURST port accesses, each a trip to the host's device models. */
static uint64_t io_burst(void)
{
	for (unsigned i = 0; i < IO_BURST / 4; i++) {
		outb(RTC_INDEX, (uint8_t)(i % 10)); /* the clock's registers, NMI left on */
		(void)inb(RTC_DATA);
		outb(COM1_SCR, (uint8_t)i);
		if (acpi.pm_tmr)
			(void)inl(acpi.pm_tmr);
		else
			(void)inb(COM1_SCR);
	}
	return IO_BURST;
}

void cmd_stress(const char *arg)
{
	static const struct {
		const char *name;
		unsigned what;
	} modes[] = {{"console", S_CONSOLE},
		     {"spin", S_SPIN},
		     {"io", S_IO},
		     {"all", S_CONSOLE | S_SPIN | S_IO},
		     {"echo", S_CONSOLE | S_ECHO}};
	unsigned what = 0, ncpus = 1;
	uint64_t lines = 0, io = 0, keys = 0, t0, ms;
	int key;

	for (unsigned i = 0; i < ARRAY_SIZE(modes); i++)
		if (strcmp(arg, modes[i].name) == 0)
			what = modes[i].what;
	if (!what) {
		printf("usage: stress console|spin|io|all   (until a key is pressed)\n"
		       "       stress echo   (until Ctrl-C)\n");
		return;
	}
	spin_stop = 0;
	if (what & S_SPIN)
		ncpus = smp_start(spin_job);
	printf("stress %s on %u vCPU%s; press %s to stop\n", arg, ncpus, ncpus == 1 ? "" : "s",
	       what & S_ECHO ? "Ctrl-C" : "any key");
	if (what & S_ECHO) /* rows 2 to the last scroll; the top row stays */
		printf("\033[2J\033[2r\033[999;1H");
	vcon_batch(1); /* on hvc0, the flood leaves in full buffers */
	t0 = uptime_ms();
	while ((key = console_trygetc()) < 0 || ((what & S_ECHO) && key != CTRL_C)) {
		if (key >= 0) { /* save the cursor, the key on the top row, back */
			keys++;
			printf("\0337\033[1;1H\033[Kkey %c\0338", key > ' ' && key < 127 ? key : '?');
			vcon_flush(); /* the echo at once, as a program's write(2) would */
		}
		if (what & S_ECHO)
			printf("stress: line %010lu, the guest writes as fast as the uart takes "
			       "it\n",
			       ++lines);
		else if (what & S_CONSOLE)
			printf("stress: line %010lu, the guest writes as fast as the UART takes "
			       "it\n",
			       ++lines);
		if (what & S_IO)
			io += io_burst();
		if (what == S_SPIN)
			user_run(user_spin, ticks + SPIN_TICKS, ustacks + 4096, cpu_user_slot(0));
		/* The shell runs with interrupts off: let the tick and the power button
		 * in (sti holds them off for one more instruction). */
		__asm__ volatile("sti; nop; cli" ::: "memory");
	}
	ms = uptime_ms() - t0;
	vcon_batch(0);
	if (what & S_ECHO)
		printf("\033[r\033[999;1H\r\n%lu keys echoed\n", keys);
	spin_stop = 1;
	for (uint64_t until = ticks + DEMO_TICK_HZ; spinning && ticks < until;)
		irq_wait();
	printf("stress: stopped after %lu.%03lu s: %lu lines, %lu port accesses", ms / 1000,
	       ms % 1000, lines, io);
	if (spinning)
		printf(C_RED ", %u vCPUs still spinning" C_RESET, spinning);
	printf("\n");
}
