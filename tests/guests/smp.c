/* SMP bring-up: the BSP wakes every AP with INIT-SIPI-SIPI; each AP reports
 * its index, its LAPIC id and the APIC id CPUID gives it. */
#include "guest.h"

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

int guest_main(struct hvm_start_info *si)
{
	uint32_t r[4];
	unsigned n;

	cpuid(0xb, 1, r);
	n = r[1] & 0xffff;
	print_lock();
	gprintf("bsp: lapic id %u, %u cpus in the topology\n", apic_id(), n);
	print_unlock();
	start_aps(&ap_up, n - 1);
	print_lock();
	gprintf("smp: %u of %u cpus up\n", ap_up + 1, n);
	print_unlock();
	return ap_up + 1 == n ? 0 : 1;
}
