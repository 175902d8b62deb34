/* libFuzzer target for the split virtqueue: the input is guest memory (rings,
 * descriptors, indirect tables) plus the queue's programming. Whatever it
 * holds, popping must end, every segment handed out must lie inside guest
 * RAM (the sanitizers watch every access the queue code makes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/dev/virtio-queue.h"

#define RAM_SIZE  0x4000
#define HIGH_GPA  0x10000
#define HIGH_SIZE 0x1000

static uint8_t ram[RAM_SIZE], high[HIGH_SIZE];

static int inside(const void *p, size_t len, const uint8_t *base, size_t size)
{
	const uint8_t *b = p;

	return b >= base && b <= base + size && len <= (size_t)(base + size - b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = {0};
	static struct vq_req r;
	struct vq q;
	uint16_t qsize;
	uint64_t desc, avail, used;
	unsigned rounds;

	if (size < 8)
		return 0;
	/* 8 bytes of programming: size exponent, flags, three ring offsets. */
	qsize = (uint16_t)(1u << (data[0] % 11));
	desc = (uint64_t)(data[2] & 0x3f) << 8;
	avail = (uint64_t)data[3] << 6 | (data[4] & 0x3e);
	used = (uint64_t)data[5] << 6 | (data[6] & 0x3c);
	if (data[7] & 0x80)
		used += HIGH_GPA - 0x1000;
	memset(ram, 0, sizeof(ram));
	memset(high, 0, sizeof(high));
	memcpy(ram, data + 8, size - 8 < RAM_SIZE ? size - 8 : RAM_SIZE);
	if (size - 8 > RAM_SIZE)
		memcpy(high, data + 8 + RAM_SIZE,
		       size - 8 - RAM_SIZE < HIGH_SIZE ? size - 8 - RAM_SIZE : HIGH_SIZE);
	gmem_add_region(&mem, 0, RAM_SIZE, ram);
	gmem_add_region(&mem, HIGH_GPA, HIGH_SIZE, high);
	if (vq_start(&q, &mem, qsize, desc, avail, used, data[1] & 1, data[1] & 2) != 0)
		return 0;
	q.last_avail = (uint16_t)(data[7] * 257);
	q.used_idx = q.last_avail;
	for (rounds = 0; rounds < 3u * qsize + 3; rounds++) {
		int rc = vq_pop(&q, &r);

		if (rc <= 0)
			break;
		if (r.nout + r.nin > qsize)
			abort();
		for (unsigned i = 0; i < r.nout + r.nin; i++)
			if (!inside(r.iov[i].iov_base, r.iov[i].iov_len, ram, RAM_SIZE) &&
			    !inside(r.iov[i].iov_base, r.iov[i].iov_len, high, HIGH_SIZE))
				abort();
		/* The device writes into what it was given, as a real one does. */
		for (unsigned i = r.nout; i < r.nout + r.nin; i++)
			memset(r.iov[i].iov_base, 0x5a, r.iov[i].iov_len);
		vq_push(&q, r.head, (uint32_t)r.in_len);
		vq_should_notify(&q);
	}
	return 0;
}

#include "tests/fuzz/standalone.h"
