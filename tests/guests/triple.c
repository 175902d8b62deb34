/* A deliberate triple fault: with an empty IDT, the first exception cannot
 * be delivered, nor the double fault after it. */
#include "guest.h"

int guest_main(struct hvm_start_info *si)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = {0, 0};

	puts_serial("triple guest: faulting now\n");
	__asm__ volatile("lidt %0; mov $0x7e57, %%eax; ud2" : : "m"(empty) : "eax");
	puts_serial("triple guest: survived\n");
	return 1;
}
