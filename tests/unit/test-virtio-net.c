/* virtio-net's queues: frames come out of the transmit queue as the guest
 * wrote them (checksum completed when asked), go into receive buffers with
 * the header the driver expects (one buffer, or several with mergeable
 * buffers), and hostile chains (runts, oversized, bad headers, loops,
 * buffers outside memory, buffers too small, a guest that posts none) are
 * dropped, counted or break the queue without touching other memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vring.h"
#include "vm/dev/virtio-net.h"

#define RAM_SIZE 0x40000
#define QSIZE	 8
#define DESC	 0x0000
#define AVAIL	 0x1000
#define USED	 0x2000
#define BUF	 0x4000
#define CAP	 (VIRTIO_NET_HDR_LEN + 1514)

struct fix {
	uint8_t *ram;
	struct guest_mem mem;
	struct vq q;
	struct vq_req r;
	uint16_t avail_idx;
	struct vnet_stats st;
	uint8_t buf[CAP];
	uint16_t heads[VQ_MAX_SIZE];
	uint32_t lens[VQ_MAX_SIZE];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	f->ram = calloc(1, RAM_SIZE);
	assert_int_equal(gmem_add_region(&f->mem, 0, RAM_SIZE, f->ram), 0);
	assert_int_equal(vq_start(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, false, false), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	free(f->ram);
	free(f);
	return 0;
}

static uint32_t used_len(struct fix *f, unsigned i)
{
	uint32_t v;

	memcpy(&v, f->ram + USED + 4 + 8 * i + 4, 4);
	return v;
}

static uint32_t used_head(struct fix *f, unsigned i)
{
	uint32_t v;

	memcpy(&v, f->ram + USED + 4 + 8 * i, 4);
	return v;
}

/* A transmit chain: the header in descriptor 0, the frame in descriptor 1. */
static void tx_frame(struct fix *f, const uint8_t *hdr, size_t flen)
{
	memcpy(f->ram + BUF, hdr, VIRTIO_NET_HDR_LEN);
	for (size_t i = 0; i < flen; i++)
		f->ram[BUF + 0x1000 + i] = (uint8_t)(i * 7);
	vring_put_desc(f->ram + DESC, 0, BUF, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1);
	vring_put_desc(f->ram + DESC, 1, BUF + 0x1000, (uint32_t)flen, 0, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 0);
}

static int tx(struct fix *f, bool csum, size_t *len)
{
	return vnet_tx_pop(&f->q, &f->r, f->buf, sizeof(f->buf), csum, len, &f->st);
}

static void test_tx_frame(void **state)
{
	struct fix *f = *state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
	size_t len = 0;

	assert_int_equal(tx(f, false, &len), 0);
	tx_frame(f, hdr, 60);
	assert_int_equal(tx(f, false, &len), 1);
	assert_int_equal(len, 60);
	assert_memory_equal(f->buf + VIRTIO_NET_HDR_LEN, f->ram + BUF + 0x1000, 60);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 1);
	assert_int_equal(used_len(f, 0), 0);
	assert_int_equal(f->st.tx_frames, 1);
}

/* The one's complement sum of p[0..n) plus seed. */
static uint16_t fold(const uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t sum = seed;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)sum;
}

static void test_tx_checksum(void **state)
{
	struct fix *f = *state;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0,
					   34, 0, 6, 0, 0, 0}; /* start 34, offset 6 */
	size_t len = 0;
	uint32_t pseudo;

	/* Ranges of every length modulo 4 (41 to 44 bytes, also 1400): the
	 * device sums several bytes at a time, then the tail. An odd length
	 * has its last byte padded. */
	for (size_t flen = 75; flen <= 79; flen++) {
		size_t n = flen == 79 ? 1434 : flen;

		tx_frame(f, hdr, n);
		/* The driver left the pseudo-header's sum in the checksum field;
		 * the receiver adds it to the range's sum, checksum included:
		 * all ones. */
		pseudo = (uint32_t)f->ram[BUF + 0x1000 + 40] << 8 | f->ram[BUF + 0x1000 + 41];
		assert_int_equal(tx(f, true, &len), 1);
		assert_int_equal(len, n);
		assert_int_equal(fold(f->buf + VIRTIO_NET_HDR_LEN + 34, n - 34, pseudo), 0xFFFF);
		/* The bytes before csum_start are left alone. */
		assert_memory_equal(f->buf + VIRTIO_NET_HDR_LEN, f->ram + BUF + 0x1000, 34);
	}
}

static void test_tx_hostile_frames(void **state)
{
	struct fix *f = *state;
	uint8_t gso[VIRTIO_NET_HDR_LEN] = {0, 1};
	uint8_t csum_out[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0,
						58, 0, 1, 0, 0, 0}; /* 58 + 1 + 2 > 60 */
	uint8_t csum[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 20, 0};
	uint8_t plain[VIRTIO_NET_HDR_LEN] = {0};
	size_t len = 0;

	tx_frame(f, plain, 2); /* a runt: no Ethernet header */
	assert_int_equal(tx(f, false, &len), 2);
	tx_frame(f, plain, CAP); /* larger than the device takes */
	assert_int_equal(tx(f, false, &len), 2);
	tx_frame(f, gso, 60); /* segmentation was never offered */
	assert_int_equal(tx(f, true, &len), 2);
	tx_frame(f, csum_out, 60);
	assert_int_equal(tx(f, true, &len), 2);
	tx_frame(f, csum, 60); /* checksum offload not negotiated */
	assert_int_equal(tx(f, false, &len), 2);
	assert_int_equal(f->st.tx_dropped, 5);
	assert_int_equal(f->st.tx_frames, 0);
	/* Every chain went back to the driver. */
	assert_int_equal(vring_rd16(f->ram + USED + 2), 5);
	assert_false(f->q.broken);
}

static void test_tx_loop_and_outside(void **state)
{
	struct fix *f = *state;
	size_t len = 0;

	vring_put_desc(f->ram + DESC, 0, BUF, 100, VIRTQ_DESC_F_NEXT, 1);
	vring_put_desc(f->ram + DESC, 1, BUF, 100, VIRTQ_DESC_F_NEXT, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 0);
	assert_int_equal(tx(f, false, &len), -1);
	assert_true(f->q.broken);

	vq_start(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, false, false);
	f->avail_idx = 0;
	vring_put_desc(f->ram + DESC, 2, RAM_SIZE - 8, 100, 0, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 2);
	assert_int_equal(tx(f, false, &len), -1);
	assert_non_null(strstr(f->q.why, "outside"));
}

static void frame_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 13 + 1);
}

static int rx(struct fix *f, bool mrg, const uint8_t *frame, size_t len)
{
	return vnet_rx_put(&f->q, &f->r, mrg, frame, len, f->heads, f->lens, &f->st);
}

static void rx_buffer(struct fix *f, unsigned i, uint32_t len)
{
	vring_put_desc(f->ram + DESC, i, BUF + 0x1000 * i, len, VIRTQ_DESC_F_WRITE, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, (uint16_t)i);
}

static void test_rx_one_buffer(void **state)
{
	struct fix *f = *state;
	uint8_t frame[1514];

	frame_fill(frame, sizeof(frame));
	memset(f->ram + BUF, 0xAA, 0x1000);
	rx_buffer(f, 0, 2048);
	assert_int_equal(rx(f, false, frame, sizeof(frame)), 1);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 1);
	assert_int_equal(used_len(f, 0), VIRTIO_NET_HDR_LEN + 1514);
	/* Header: no flags, no GSO, num_buffers 1. */
	assert_int_equal(f->ram[BUF], 0);
	assert_int_equal(f->ram[BUF + 1], 0);
	assert_int_equal(vring_rd16(f->ram + BUF + 10), 1);
	assert_memory_equal(f->ram + BUF + VIRTIO_NET_HDR_LEN, frame, sizeof(frame));
	assert_int_equal(f->ram[BUF + VIRTIO_NET_HDR_LEN + 1514], 0xAA);
	assert_int_equal(f->st.rx_frames, 1);
}

static void test_rx_mergeable(void **state)
{
	struct fix *f = *state;
	uint8_t frame[1514];

	frame_fill(frame, sizeof(frame));
	rx_buffer(f, 0, 600);
	rx_buffer(f, 1, 600);
	/* Not enough room yet: nothing is taken, the driver keeps both. */
	assert_int_equal(rx(f, true, frame, sizeof(frame)), 0);
	assert_int_equal(f->q.last_avail, 0);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 0);
	rx_buffer(f, 2, 600);
	assert_int_equal(rx(f, true, frame, sizeof(frame)), 1);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 3);
	assert_int_equal(vring_rd16(f->ram + BUF + 10), 3); /* num_buffers */
	assert_int_equal(used_len(f, 0), 600);
	assert_int_equal(used_len(f, 1), 600);
	assert_int_equal(used_len(f, 2), VIRTIO_NET_HDR_LEN + 1514 - 1200);
	assert_memory_equal(f->ram + BUF + VIRTIO_NET_HDR_LEN, frame, 600 - VIRTIO_NET_HDR_LEN);
	assert_memory_equal(f->ram + BUF + 0x1000, frame + 600 - VIRTIO_NET_HDR_LEN, 600);
	assert_memory_equal(f->ram + BUF + 0x2000, frame + 1200 - VIRTIO_NET_HDR_LEN,
			    1514 - 1200 + VIRTIO_NET_HDR_LEN);
}

/* A guest that never refills: every frame waits, nothing is taken or
 * written, and no loop runs. */
static void test_rx_no_buffers(void **state)
{
	struct fix *f = *state;
	uint8_t frame[64] = {0};

	for (int i = 0; i < 1000; i++)
		assert_int_equal(rx(f, true, frame, sizeof(frame)), 0);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 0);
	assert_int_equal(f->st.rx_frames, 0);
}

static void test_rx_hostile_buffers(void **state)
{
	struct fix *f = *state;
	uint8_t frame[1514];
	uint8_t big[2];

	frame_fill(frame, sizeof(frame));
	/* Too small for the frame without mergeable buffers. */
	rx_buffer(f, 0, 100);
	memset(f->ram + BUF, 0xAA, 0x1000);
	assert_int_equal(rx(f, false, frame, sizeof(frame)), 2);
	assert_int_equal(used_len(f, 0), 0);
	/* A receive buffer the device may not write. */
	vring_put_desc(f->ram + DESC, 1, BUF + 0x1000, 2048, 0, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 1);
	assert_int_equal(rx(f, true, frame, sizeof(frame)), 2);
	/* Too small even for the header. */
	rx_buffer(f, 2, 4);
	assert_int_equal(rx(f, true, frame, sizeof(frame)), 2);
	/* A second buffer that is not writable ends the frame: both go back. */
	rx_buffer(f, 3, 600);
	vring_put_desc(f->ram + DESC, 4, BUF + 0x4000, 600, 0, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 4);
	assert_int_equal(rx(f, true, frame, sizeof(frame)), 2);
	assert_int_equal(vring_rd16(f->ram + USED + 2), 5);
	assert_int_equal(used_head(f, 3), 3);
	assert_int_equal(used_len(f, 3), 0);
	/* Frames no Ethernet carries. */
	assert_int_equal(rx(f, true, big, sizeof(big)), 2);
	assert_int_equal(f->st.rx_dropped, 5);
	assert_false(f->q.broken);
	/* A buffer outside guest memory breaks the queue. */
	vring_put_desc(f->ram + DESC, 5, RAM_SIZE - 16, 2048, VIRTQ_DESC_F_WRITE, 0);
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, 5);
	assert_int_equal(rx(f, true, frame, sizeof(frame)), -1);
	assert_true(f->q.broken);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tx_frame),
	    T(test_tx_checksum),
	    T(test_tx_hostile_frames),
	    T(test_tx_loop_and_outside),
	    T(test_rx_one_buffer),
	    T(test_rx_mergeable),
	    T(test_rx_no_buffers),
	    T(test_rx_hostile_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
