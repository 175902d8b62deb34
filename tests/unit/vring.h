/* Building split virtqueue rings in plain memory, as a driver would, for the
 * tests of the queue code and of the devices on it. */
#ifndef TV_TEST_VRING_H
#define TV_TEST_VRING_H

#include <stdint.h>
#include <string.h>

/* Descriptor i of table. */
static inline void vring_put_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len,
				  uint16_t flags, uint16_t next)
{
	uint8_t *d = table + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Offers chain head in the available ring at avail (qsize entries); *idx is
 * the driver's avail index, moved on. */
static inline void vring_offer(uint8_t *avail, uint16_t qsize, uint16_t *idx, uint16_t head)
{
	memcpy(avail + 4 + 2 * (*idx % qsize), &head, 2);
	(*idx)++;
	memcpy(avail + 2, idx, 2);
}

static inline uint16_t vring_rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

#endif
