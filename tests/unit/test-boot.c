/* Where the bzImage and PVH paths put the initrd (boot_initrd_place): as high
 * as RAM and the kernel's limit allow, never over the kernel as loaded nor
 * over the range it runs and decompresses in. The figures are Debian 12's
 * cloud kernel: 14 MiB loaded at 1 MiB, pref_address 16 MiB, init_size
 * 0x3378000 (so it runs in [16 MiB, 67.5 MiB)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vm/boot.h"

#define MiB (1ULL << 20)
#define KiB (1ULL << 10)

static const struct boot_range debian[2] = {
	{1 * MiB, 15 * MiB},	      /* loaded */
	{16 * MiB, 16 * MiB + 0x3378000}, /* running: pref_address + init_size */
};

static void assert_clear(uint64_t a, uint64_t size, uint64_t top)
{
	assert_true(a % 4096 == 0);
	assert_true(a >= 1 * MiB && a + size <= top);
	for (unsigned i = 0; i < 2; i++)
		assert_true(a + size <= debian[i].start || a >= debian[i].end);
}

/* 96 MiB of RAM and a 40 MiB initrd: the old placement (top of RAM, above
 * 1 MiB + init_size) put it at 56 MiB, inside the range the kernel copies
 * itself to; there is no room for it anywhere, so it is refused. */
static void test_small_ram_large_initrd(void **state)
{
	uint64_t a = 1;

	(void)state;
	assert_int_equal(boot_initrd_place(1 * MiB, 96 * MiB, 40 * MiB, debian, 2, &a), -1);
}

/* With room above the kernel it goes to the top of RAM. */
static void test_top_of_ram(void **state)
{
	uint64_t a = 0;

	(void)state;
	assert_int_equal(boot_initrd_place(1 * MiB, 160 * MiB, 40 * MiB, debian, 2, &a), 0);
	assert_true(a == 120 * MiB);
	assert_int_equal(boot_initrd_place(1 * MiB, 72 * MiB, 4 * MiB, debian, 2, &a), 0);
	assert_true(a == 68 * MiB);
	assert_clear(a, 4 * MiB, 72 * MiB);
	/* An unaligned top and size: aligned down, and it still ends below top. */
	assert_int_equal(boot_initrd_place(1 * MiB, 100 * MiB + 123, 1000, debian, 2, &a), 0);
	assert_true(a == 100 * MiB - 4096);
}

/* No room above the running kernel, but room between the loaded image and
 * the preferred address: it goes there. */
static void test_below_pref_address(void **state)
{
	uint64_t top = debian[1].end + 256 * KiB, a = 0;

	(void)state;
	assert_int_equal(boot_initrd_place(1 * MiB, top, 512 * KiB, debian, 2, &a), 0);
	assert_true(a == 16 * MiB - 512 * KiB);
	assert_clear(a, 512 * KiB, top);
	/* 2 MiB fit neither above nor between: refused, not overlapped. */
	assert_int_equal(boot_initrd_place(1 * MiB, top, 2 * MiB, debian, 2, &a), -1);
}

/* The lower bound, the limit (initrd_addr_max or 4 GiB) and odd sizes. */
static void test_bounds(void **state)
{
	uint64_t a = 0;

	(void)state;
	assert_int_equal(boot_initrd_place(1 * MiB, 8 * MiB, 8 * MiB, NULL, 0, &a), -1);
	assert_int_equal(boot_initrd_place(1 * MiB, 8 * MiB, 7 * MiB, NULL, 0, &a), 0);
	assert_true(a == 1 * MiB);
	assert_int_equal(boot_initrd_place(1 * MiB, 8 * MiB, 0, NULL, 0, &a), -1);
	assert_int_equal(boot_initrd_place(1 * MiB, 8 * MiB, UINT64_MAX, NULL, 0, &a), -1);
	/* An empty range to avoid is no obstacle. */
	struct boot_range empty = {50 * MiB, 50 * MiB};
	assert_int_equal(boot_initrd_place(1 * MiB, 64 * MiB, 32 * MiB, &empty, 1, &a), 0);
	assert_true(a == 32 * MiB);
}

/* Ranges given in any order, several in the way one after another. */
static void test_several_ranges(void **state)
{
	struct boot_range r[3] = {{40 * MiB, 60 * MiB}, {61 * MiB, 64 * MiB}, {20 * MiB, 39 * MiB}};
	uint64_t a = 0;

	(void)state;
	assert_int_equal(boot_initrd_place(1 * MiB, 64 * MiB, 2 * MiB, r, 3, &a), 0);
	assert_true(a == 18 * MiB);
	assert_int_equal(boot_initrd_place(1 * MiB, 64 * MiB, 1 * MiB, r, 3, &a), 0);
	assert_true(a == 60 * MiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_ram_large_initrd),
		cmocka_unit_test(test_top_of_ram),
		cmocka_unit_test(test_below_pref_address),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_several_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
