/* SMP bring-up: the BSP wakes every AP with INIT-SIPI-SIPI; each AP reports
 * its index, its LAPIC id and the APIC id CPUID gives it. */
#include "guest.h"

extern char ap_tramp_start[], ap_tramp_end[];
static volatile unsigned ap_up;

void ap_main(unsigned index)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	print_lock();
	gprintf("ap %u: lapic id %u, cpuid apic id %u\n", index, apic_id(), r[1] >> 24);
	print_unlock();
	__atomic_add_fetch(&ap_up, 1, __ATOMIC_SEQ_CST);
	for (;;)
		hlt();
}

static void icr(uint32_t lo)
{
	lapic_write(0x310, 0);
	lapic_write(0x300, lo);
	while (lapic_read(0x300) & (1 << 12))
		pause();
}

int guest_main(struct hvm_start_info *si)
{
	uint32_t r[4];
	unsigned n;

	cpuid(0xb, 1, r);
	n = r[1] & 0xffff;
	print_lock();
	gprintf("bsp: lapic id %u, %u cpus in the topology\n", apic_id(), n);
	print_unlock();
	volatile char *dst = (volatile char *)0x10000;
	for (char *p = ap_tramp_start; p < ap_tramp_end; p++)
		*dst++ = *p;
	lapic_enable();
	icr(0xc4500);		/* INIT, all but self */
	icr(0xc4610);		/* SIPI, vector 0x10: start at 0x10000 */
	for (unsigned long i = 0; i < 20000000UL && ap_up < n - 1; i++) {
		if (i == 200000)
			icr(0xc4610); /* the second SIPI of the protocol */
		pause();
	}
	print_lock();
	gprintf("smp: %u of %u cpus up\n", ap_up + 1, n);
	print_unlock();
	return ap_up + 1 == n ? 0 : 1;
}
