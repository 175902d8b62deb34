/* json_flat_get: the values of a VM process's snapshot reply, read without
 * ever going past the text, whatever the text is. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "src/core/json.h"
#include "common/util.h"

static int get(const char *js, const char *key, char *out, size_t outlen)
{
	/* An exact-size copy, so ASan sees any read past the end. */
	size_t len = strlen(js);
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, js, len);
	int rc = json_flat_get(copy, len, key, out, outlen);
	free(copy);
	return rc;
}

static void test_values(void **state)
{
	const char *js = "{\"op\": \"take\", \"id\": \"0000000000000003\", \"tag\": \"snap-3\",\n"
			 " \"memory\": true, \"pause_ns\": 4100000, \"automatic\": null,"
			 "\"note\":\"a \\\"quoted\\\" word\\nand \\u00e9\"}";
	char out[64];

	assert_int_equal(get(js, "tag", out, sizeof(out)), 0);
	assert_string_equal(out, "snap-3");
	assert_int_equal(get(js, "pause_ns", out, sizeof(out)), 0);
	assert_string_equal(out, "4100000");
	assert_int_equal(get(js, "memory", out, sizeof(out)), 0);
	assert_string_equal(out, "true");
	assert_int_equal(get(js, "automatic", out, sizeof(out)), 0);
	assert_string_equal(out, "null");
	assert_int_equal(get(js, "note", out, sizeof(out)), 0);
	assert_string_equal(out, "a \"quoted\" word\nand ?");
	assert_int_equal(get(js, "absent", out, sizeof(out)), -1);
	/* A value that looks like a key is not one. */
	assert_int_equal(get("{\"a\": \"tag\", \"tag\": \"x\"}", "tag", out, sizeof(out)), 0);
	assert_string_equal(out, "x");
	/* Cut to the buffer. */
	assert_int_equal(get(js, "tag", out, 4), 0);
	assert_string_equal(out, "sna");
}

/* Keys of nested objects are not the reply's. */
static void test_nested(void **state)
{
	char out[16];

	assert_int_equal(get("{\"inner\": {\"tag\": \"no\"}, \"tag\": \"yes\"}", "tag", out, 16), 0);
	assert_string_equal(out, "yes");
	assert_int_equal(get("{\"inner\": {\"tag\": \"no\"}}", "tag", out, 16), -1);
	assert_int_equal(get("{\"inner\": {\"x\": 1}}", "inner", out, 16), -1);
	assert_int_equal(get("{\"list\": [\"tag\", 1], \"n\": 2}", "n", out, 16), 0);
	assert_string_equal(out, "2");
}

/* Cut short or malformed anywhere: an answer or -1, and no read past the end. */
static void test_malformed(void **state)
{
	const char *full = "{\"tag\": \"snap-3\", \"pause_ns\": 4100000, \"note\": \"x\\\\y\\\"z\"}";
	char out[32], buf[128];

	for (size_t n = 0; n <= strlen(full); n++) {
		memcpy(buf, full, n);
		buf[n] = 0;
		get(buf, "tag", out, sizeof(out));
		get(buf, "pause_ns", out, sizeof(out));
		get(buf, "note", out, sizeof(out));
	}
	assert_int_equal(get("{\"tag\": \"unterminated", "tag", out, sizeof(out)), -1);
	assert_int_equal(get("{\"tag\": ", "tag", out, sizeof(out)), -1);
	assert_int_equal(get("{\"tag\":}", "tag", out, sizeof(out)), -1);
	assert_int_equal(get("{\"tag\": \"\\", "tag", out, sizeof(out)), -1);
	assert_int_equal(get("{\"tag\": \"\\u12\"}", "tag", out, sizeof(out)), 0);
	assert_int_equal(get("", "tag", out, sizeof(out)), -1);
	assert_int_equal(get("{\"tag\": \"x\"}", "tag", out, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
