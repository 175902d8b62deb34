#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"

static void test_parse_size_units(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("512M", &v), 0);
	assert_true(v == 512ULL << 20);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_true(v == 2ULL << 30);
	assert_int_equal(parse_size("2g", &v), 0);
	assert_true(v == 2ULL << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size("64K", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(parse_size("1T", &v), 0);
	assert_true(v == 1ULL << 40);
	assert_int_equal(parse_size("1.5G", &v), 0);
	assert_true(v == 3ULL << 29);
	assert_int_equal(parse_size("512MiB", &v), 0);
	assert_true(v == 512ULL << 20);
	assert_int_equal(parse_size("512MB", &v), 0);
	assert_true(v == 512ULL << 20);
	assert_int_equal(parse_size("100B", &v), 0);
	assert_true(v == 100);
}

static void test_parse_size_rejects(void **state)
{
	uint64_t v = 7;

	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_size("M", &v), -1);
	assert_int_equal(parse_size("12X", &v), -1);
	assert_int_equal(parse_size("12MM", &v), -1);
	assert_int_equal(parse_size("-5M", &v), -1);
	assert_int_equal(parse_size("1.3", &v), -1); /* not whole bytes */
	assert_int_equal(parse_size("99999999999999999999", &v), -1);
	assert_int_equal(parse_size("20000000T", &v), -1); /* overflows 64 bits */
	assert_int_equal(parse_size(" 5M", &v), -1);
	assert_int_equal(parse_size(NULL, &v), -1);
	assert_true(v == 7); /* untouched on error */
}

static void test_format_size_round_trips(void **state)
{
	static const uint64_t sizes[] = {1, 1000, 4096, 65536, 512ULL << 20, 3ULL << 29,
					 2ULL << 30, 1ULL << 40, (1ULL << 20) + 1};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint64_t back;
		format_size(sizes[i], buf, sizeof(buf));
		assert_int_equal(parse_size(buf, &back), 0);
		assert_true(back == sizes[i]);
	}
	format_size(512ULL << 20, buf, sizeof(buf));
	assert_string_equal(buf, "512M");
	format_size(3ULL << 29, buf, sizeof(buf));
	assert_string_equal(buf, "1536M");
	format_size(3ULL << 9, buf, sizeof(buf));
	assert_string_equal(buf, "1.5K");
}

static void test_err_messages(void **state)
{
	struct tv_err e;

	assert_int_equal(tv_errf(&e, "memory: expected %s", "a size"), -1);
	assert_string_equal(e.msg, "memory: expected a size");
	tv_err_prefix(&e, "lab1.conf:%d: ", 7);
	assert_string_equal(e.msg, "lab1.conf:7: memory: expected a size");
	assert_int_equal(tv_errf(NULL, "ignored"), -1);
}

/* The snapshot files' checksum (termvisor-snapshot(5) gives the check value):
 * the standard CRC-32C, the same in one call or in pieces, at any alignment. */
static void test_crc32c(void **state)
{
	uint8_t buf[4096 + 16];

	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c(0, "", 0), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t off = 0; off < 8; off++) {
		uint32_t whole = crc32c(0, buf + off, 4096);
		assert_int_equal(crc32c(crc32c(0, buf + off, 1000), buf + off + 1000, 3096), whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_units),
		cmocka_unit_test(test_parse_size_rejects),
		cmocka_unit_test(test_format_size_round_trips),
		cmocka_unit_test(test_err_messages),
		cmocka_unit_test(test_crc32c),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
