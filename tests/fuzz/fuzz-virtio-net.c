/* libFuzzer target for virtio-net's queue handling: the input is guest memory
 * (rings, descriptors, headers) plus the queues' programming and a frame for
 * the receive side. Whatever it holds, taking frames from the transmit queue
 * and putting frames into the receive queue must end, hand the backend no
 * frame larger than the limit, and touch nothing outside guest RAM (the
 * sanitizers watch every access). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/dev/virtio-net.h"

#define RAM_SIZE 0x8000
#define CAP	 (VIRTIO_NET_HDR_LEN + 1600) /* the device's buffer, smaller here */

static uint8_t ram[RAM_SIZE];
static uint8_t buf[CAP];
static uint16_t heads[VQ_MAX_SIZE];
static uint32_t lens[VQ_MAX_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = {0};
	static struct vq_req r;
	struct vnet_stats st = {0};
	struct vq q;
	uint16_t qsize;
	uint64_t desc, avail, used;
	bool rx, mrg, csum;
	size_t flen;
	uint8_t frame[2048];

	if (size < 8)
		return 0;
	/* 8 bytes: size exponent, flags (0 event idx, 1 indirect, 2 receive
	 * side, 3 mergeable buffers, 4 checksum offload), ring offsets, and
	 * the receive frame's length. */
	qsize = (uint16_t)(1u << (data[0] % 9));
	rx = data[1] & 4;
	mrg = data[1] & 8;
	csum = data[1] & 16;
	desc = (uint64_t)(data[2] & 0x7f) << 8;
	avail = (uint64_t)data[3] << 7 | (data[4] & 0x7e);
	used = (uint64_t)data[5] << 7 | (data[6] & 0x7c);
	flen = (size_t)data[7] * 8;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + 8, size - 8 < RAM_SIZE ? size - 8 : RAM_SIZE);
	gmem_add_region(&mem, 0, RAM_SIZE, ram);
	if (vq_start(&q, &mem, qsize, desc, avail, used, data[1] & 1, data[1] & 2) != 0)
		return 0;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 31);
	for (unsigned rounds = 0; rounds < 2u * qsize + 2; rounds++) {
		size_t len = 0;
		int rc = rx ? vnet_rx_put(&q, &r, mrg, frame, flen, heads, lens, &st)
			    : vnet_tx_pop(&q, &r, buf, sizeof(buf), csum, &len, &st);

		if (rc == 1 && !rx && len > sizeof(buf) - VIRTIO_NET_HDR_LEN)
			abort();
		if (rc <= 0)
			break;
		vq_should_notify(&q);
	}
	return 0;
}

#include "tests/fuzz/standalone.h"
