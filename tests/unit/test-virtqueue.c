/* Split virtqueue: well-formed chains come out as the driver built them, and
 * hostile ones (loops, links and buffers out of range, huge lengths, bad
 * indices, nested or malformed indirect tables) break the queue instead of
 * hanging or reaching outside guest memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/vring.h"
#include "vm/dev/virtio-queue.h"

#define RAM_SIZE  0x10000
#define HIGH_GPA  0x100000 /* a second region after a hole */
#define HIGH_SIZE 0x1000
#define QSIZE	  8
#define DESC	  0x0000
#define AVAIL	  0x1000
#define USED	  0x2000
#define BUF	  0x4000

struct fix {
	uint8_t *ram, *high;
	struct guest_mem mem;
	struct vq q;
	struct vq_req r;
	uint16_t avail_idx;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	f->ram = calloc(1, RAM_SIZE);
	f->high = calloc(1, HIGH_SIZE);
	assert_int_equal(gmem_add_region(&f->mem, 0, RAM_SIZE, f->ram), 0);
	assert_int_equal(gmem_add_region(&f->mem, HIGH_GPA, HIGH_SIZE, f->high), 0);
	assert_int_equal(vq_start(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, false, true), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	free(f->ram);
	free(f->high);
	free(f);
	return 0;
}

static void put_desc(struct fix *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	vring_put_desc(f->ram + DESC, i, addr, len, flags, next);
}

/* Offers chain head to the device. */
static void offer(struct fix *f, uint16_t head)
{
	vring_offer(f->ram + AVAIL, QSIZE, &f->avail_idx, head);
}

static uint16_t rd16(struct fix *f, uint64_t gpa)
{
	return vring_rd16(f->ram + gpa);
}

static void expect_broken(struct fix *f, const char *why)
{
	assert_int_equal(vq_pop(&f->q, &f->r), -1);
	assert_true(f->q.broken);
	assert_non_null(strstr(f->q.why, why));
	/* It stays broken until a reset. */
	assert_int_equal(vq_pop(&f->q, &f->r), -1);
}

static void test_simple_chain(void **state)
{
	struct fix *f = *state;

	assert_int_equal(vq_pop(&f->q, &f->r), 0);
	put_desc(f, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, 5, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(f, 1, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 3);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	assert_int_equal(f->r.head, 3);
	assert_int_equal(f->r.nout, 1);
	assert_int_equal(f->r.nin, 2);
	assert_int_equal(f->r.out_len, 16);
	assert_int_equal(f->r.in_len, 513);
	assert_ptr_equal(f->r.iov[0].iov_base, f->ram + BUF);
	assert_ptr_equal(f->r.iov[1].iov_base, f->ram + BUF + 0x100);
	assert_int_equal(f->r.iov[2].iov_len, 1);
	assert_int_equal(vq_pop(&f->q, &f->r), 0);

	vq_push(&f->q, 3, 513);
	assert_int_equal(rd16(f, USED + 2), 1);
	assert_int_equal(f->ram[USED + 4], 3);
	assert_int_equal(f->ram[USED + 8], 0x01);
	assert_int_equal(f->ram[USED + 9], 0x02);
	assert_true(vq_should_notify(&f->q));
}

static void test_buffer_in_high_region(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, HIGH_GPA + 0x10, HIGH_SIZE - 0x10, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	assert_ptr_equal(f->r.iov[0].iov_base, f->high + 0x10);
}

static void test_loop(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(f, 0);
	expect_broken(f, "loops");
}

static void test_self_loop_zero_length(void **state)
{
	struct fix *f = *state;

	/* Zero-length descriptors take no segment: the step count still ends it. */
	put_desc(f, 4, BUF, 0, VIRTQ_DESC_F_NEXT, 4);
	offer(f, 4);
	expect_broken(f, "loops");
}

static void test_zero_length_skipped(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, 0xdead0000, 0, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	assert_int_equal(f->r.nout + f->r.nin, 1);
}

static void test_addr_outside_ram(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, RAM_SIZE, 1, 0, 0);
	offer(f, 0);
	expect_broken(f, "outside guest RAM");
}

static void test_addr_straddles_end(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_broken(f, "outside guest RAM");
}

static void test_addr_straddles_hole(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, HIGH_GPA + HIGH_SIZE - 4, 8, 0, 0);
	offer(f, 0);
	expect_broken(f, "outside guest RAM");
}

static void test_huge_length(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 0xFFFFFFFF, 0, 0);
	offer(f, 0);
	expect_broken(f, "outside guest RAM");
}

static void test_addr_wraps(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, 0xFFFFFFFFFFFFF000ULL, 0x2000, 0, 0);
	offer(f, 0);
	expect_broken(f, "outside guest RAM");
}

static void test_next_out_of_range(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_NEXT, QSIZE);
	offer(f, 0);
	expect_broken(f, "link out of range");
}

static void test_head_out_of_range(void **state)
{
	struct fix *f = *state;

	offer(f, 0xFFFF);
	expect_broken(f, "out of range");
}

static void test_avail_idx_jump(void **state)
{
	struct fix *f = *state;
	uint16_t idx = QSIZE + 1;

	put_desc(f, 0, BUF, 8, 0, 0);
	memcpy(f->ram + AVAIL + 2, &idx, 2);
	expect_broken(f, "available index");
}

static void test_avail_idx_full_ring_ok(void **state)
{
	struct fix *f = *state;

	/* Exactly a full ring is legal, also across the 16-bit wrap. */
	f->q.last_avail = 0xFFFC;
	f->q.used_idx = 0xFFFC;
	f->avail_idx = 0xFFFC;
	for (unsigned i = 0; i < QSIZE; i++) {
		put_desc(f, i, BUF + 16 * i, 16, VIRTQ_DESC_F_WRITE, 0);
		offer(f, (uint16_t)i);
	}
	for (unsigned i = 0; i < QSIZE; i++) {
		assert_int_equal(vq_pop(&f->q, &f->r), 1);
		assert_int_equal(f->r.head, i);
		vq_push(&f->q, f->r.head, 16);
	}
	assert_int_equal(vq_pop(&f->q, &f->r), 0);
	assert_int_equal(rd16(f, USED + 2), 4);
}

static void test_readable_after_writable(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 8, 0, 0);
	offer(f, 0);
	expect_broken(f, "readable descriptor after");
}

static void test_indirect_ok(void **state)
{
	struct fix *f = *state;
	uint8_t *t = f->ram + BUF + 0x1000;

	vring_put_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	vring_put_desc(t, 2, BUF + 0x200, 4096, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vring_put_desc(t, 1, BUF + 0x300, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(f, 6, BUF + 0x1000, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 6);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	assert_int_equal(f->r.head, 6);
	assert_int_equal(f->r.nout, 1);
	assert_int_equal(f->r.nin, 2);
	assert_int_equal(f->r.in_len, 4097);
}

static void test_indirect_in_indirect(void **state)
{
	struct fix *f = *state;
	uint8_t *t = f->ram + BUF + 0x1000;

	vring_put_desc(t, 0, BUF + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, 0, BUF + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "inside an indirect");
}

static void test_indirect_not_negotiated(void **state)
{
	struct fix *f = *state;

	assert_int_equal(vq_start(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, false, false), 0);
	vring_put_desc(f->ram + BUF, 0, BUF + 0x100, 8, 0, 0);
	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "not negotiated");
}

static void test_indirect_with_next(void **state)
{
	struct fix *f = *state;

	vring_put_desc(f->ram + BUF, 0, BUF + 0x100, 8, 0, 0);
	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	offer(f, 0);
	expect_broken(f, "not alone");
}

static void test_indirect_after_direct(void **state)
{
	struct fix *f = *state;

	vring_put_desc(f->ram + BUF, 0, BUF + 0x100, 8, 0, 0);
	put_desc(f, 0, BUF + 0x200, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "not alone");
}

static void test_indirect_bad_length(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 24, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "bad length");
}

static void test_indirect_zero_length(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "bad length");
}

static void test_indirect_huge(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, BUF, 0xFFFFFFF0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "bad length");
}

static void test_indirect_outside_ram(void **state)
{
	struct fix *f = *state;

	put_desc(f, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "indirect table outside");
}

static void test_indirect_loop(void **state)
{
	struct fix *f = *state;
	uint8_t *t = f->ram + BUF + 0x1000;

	vring_put_desc(t, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	vring_put_desc(t, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	put_desc(f, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "loops");
}

static void test_indirect_link_out_of_table(void **state)
{
	struct fix *f = *state;
	uint8_t *t = f->ram + BUF + 0x1000;

	/* The ring has 8 entries but the table only 2: link 5 is out of range. */
	vring_put_desc(t, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, 0, BUF + 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "link out of range");
}

static void test_chain_longer_than_queue(void **state)
{
	struct fix *f = *state;
	uint8_t *t = f->ram + BUF + 0x1000;

	/* An indirect table of 64 linked entries on an 8-entry queue. */
	for (unsigned i = 0; i < 64; i++)
		vring_put_desc(t, i, BUF, 8, i < 63 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	put_desc(f, 0, BUF + 0x1000, 64 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_broken(f, "longer than the queue");
}

static void test_reset_clears_broken(void **state)
{
	struct fix *f = *state;

	offer(f, 0xFFFF);
	expect_broken(f, "out of range");
	vq_reset(&f->q);
	assert_false(f->q.broken);
	assert_int_equal(vq_pop(&f->q, &f->r), 0); /* not ready */
	vq_push(&f->q, 0, 0);			   /* ignored, no crash */
}

static void test_start_checks(void **state)
{
	struct fix *f = *state;
	struct vq q;

	assert_int_equal(vq_start(&q, &f->mem, 0, DESC, AVAIL, USED, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 6, DESC, AVAIL, USED, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 2048, DESC, AVAIL, USED, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 8, DESC + 8, AVAIL, USED, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 8, DESC, AVAIL + 1, USED, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 8, DESC, AVAIL, USED + 2, false, false), -1);
	/* The used ring's avail_event would lie past the end of RAM. */
	assert_int_equal(vq_start(&q, &f->mem, 8, DESC, AVAIL, RAM_SIZE - 68, false, false), -1);
	assert_int_equal(vq_start(&q, &f->mem, 8, DESC, AVAIL, RAM_SIZE - 72, false, false), 0);
	assert_int_equal(vq_start(&q, &f->mem, 8, 0xFFFFFFFFFFFFFFF0ULL, AVAIL, USED, false, false),
			 -1);
	assert_false(q.ready);
}

static void test_no_interrupt_flag(void **state)
{
	struct fix *f = *state;
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	vq_push(&f->q, 0, 8);
	memcpy(f->ram + AVAIL, &flags, 2);
	assert_false(vq_should_notify(&f->q));
}

static void test_event_idx(void **state)
{
	struct fix *f = *state;
	uint16_t used_event;

	assert_int_equal(vq_start(&f->q, &f->mem, QSIZE, DESC, AVAIL, USED, true, true), 0);
	/* An empty ring asks the driver for a kick at entry 0. */
	memset(f->ram + USED + 4 + 8 * QSIZE, 0xAA, 2);
	assert_int_equal(vq_pop(&f->q, &f->r), 0);
	assert_int_equal(rd16(f, USED + 4 + 8 * QSIZE), 0);

	for (unsigned i = 0; i < 4; i++) {
		put_desc(f, i, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
		offer(f, (uint16_t)i);
	}
	/* The driver wants an interrupt once the 3rd buffer is used. */
	used_event = 2;
	memcpy(f->ram + AVAIL + 4 + 2 * QSIZE, &used_event, 2);
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	vq_push(&f->q, f->r.head, 8);
	assert_true(vq_should_notify(&f->q)); /* the first is always signalled */
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	vq_push(&f->q, f->r.head, 8);
	assert_false(vq_should_notify(&f->q)); /* used 2: event 2 not yet passed */
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	vq_push(&f->q, f->r.head, 8);
	assert_true(vq_should_notify(&f->q)); /* used 3 passes event 2 */
	assert_int_equal(vq_pop(&f->q, &f->r), 1);
	vq_push(&f->q, f->r.head, 8);
	assert_false(vq_should_notify(&f->q));
	assert_int_equal(vq_pop(&f->q, &f->r), 0);
	assert_int_equal(rd16(f, USED + 4 + 8 * QSIZE), 4);
}

static void test_iov_copies(void **state)
{
	uint8_t a[3], b[5], out[8];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	const uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	(void)state;
	assert_int_equal(iov_from_buf(iov, 2, 0, src, 8), 8);
	assert_int_equal(a[2], 3);
	assert_int_equal(b[0], 4);
	assert_int_equal(iov_to_buf(iov, 2, 2, out, 8), 6);
	assert_memory_equal(out, src + 2, 6);
	assert_int_equal(iov_to_buf(iov, 2, 8, out, 8), 0);
	assert_int_equal(iov_from_buf(iov, 2, 7, src, 8), 1);
	assert_int_equal(b[4], 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_simple_chain),
	    T(test_buffer_in_high_region),
	    T(test_loop),
	    T(test_self_loop_zero_length),
	    T(test_zero_length_skipped),
	    T(test_addr_outside_ram),
	    T(test_addr_straddles_end),
	    T(test_addr_straddles_hole),
	    T(test_huge_length),
	    T(test_addr_wraps),
	    T(test_next_out_of_range),
	    T(test_head_out_of_range),
	    T(test_avail_idx_jump),
	    T(test_avail_idx_full_ring_ok),
	    T(test_readable_after_writable),
	    T(test_indirect_ok),
	    T(test_indirect_in_indirect),
	    T(test_indirect_not_negotiated),
	    T(test_indirect_with_next),
	    T(test_indirect_after_direct),
	    T(test_indirect_bad_length),
	    T(test_indirect_zero_length),
	    T(test_indirect_huge),
	    T(test_indirect_outside_ram),
	    T(test_indirect_loop),
	    T(test_indirect_link_out_of_table),
	    T(test_chain_longer_than_queue),
	    T(test_reset_clears_broken),
	    T(test_start_checks),
	    T(test_no_interrupt_flag),
	    T(test_event_idx),
	    T(test_iov_copies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
