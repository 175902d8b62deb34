/* Memory images under a running guest: counts in one word of memory (at a
 * fixed address the host reads) while keeping its own copy in a register.
 * When the word no longer holds what the guest last wrote (the host put an
 * older memory image under it), it prints both values and exits 0. Each step
 * is one compare-and-exchange, so a pause can never fall between a read and
 * the write that would cover the older value. The loop keeps everything in
 * registers, so the stack an older image brings back is the one this frame
 * had then. */
#include "guest.h"

#define COUNTER 0x800000UL /* 8 MiB: outside the image, its stack and data */

int guest_main(struct hvm_start_info *si)
{
	volatile uint64_t *counter = (volatile uint64_t *)COUNTER;
	uint64_t last = 0, v;

	*counter = 0;
	gprintf("memsnap: counting at %lx\n", COUNTER);
	for (;;) {
		v = last;
		if (!__atomic_compare_exchange_n(counter, &v, last + 1, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
			break;
		last++;
	}
	gprintf("memsnap: the counter went from %lu back to %lu\n", last, v);
	return 0;
}
