#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <cmocka.h>

#include "src/core/settings.h"
#include "common/util.h"

static void test_escape_parse(void **state)
{
	assert_int_equal(settings_parse_escape("^]"), 0x1d);
	assert_int_equal(settings_parse_escape("^a"), 0x01);
	assert_int_equal(settings_parse_escape("^A"), 0x01);
	assert_int_equal(settings_parse_escape("^@"), 0x00);
	assert_int_equal(settings_parse_escape("^_"), 0x1f);
	assert_int_equal(settings_parse_escape("]"), -1);
	assert_int_equal(settings_parse_escape("^"), -1);
	assert_int_equal(settings_parse_escape("^]]"), -1);
	assert_int_equal(settings_parse_escape("^1"), -1);
	assert_int_equal(settings_parse_escape(""), -1);
}

/* A private home with the given termvisor.conf (or none). */
static void load(const char *text, struct tv_settings *s, int want_rc, struct tv_err *err)
{
	char dir[] = "/tmp/tv-settings.XXXXXX";
	struct tv_paths p;

	assert_non_null(mkdtemp(dir));
	setenv("TERMVISOR_HOME", dir, 1);
	assert_int_equal(paths_init(&p, err), 0);
	char *file = paths_settings_file(&p);
	if (text) {
		FILE *f = fopen(file, "w");
		fputs(text, f);
		fclose(f);
	}
	assert_int_equal(settings_load(&p, s, err), want_rc);
	unlink(file);
	rmdir(dir);
	free(file);
	paths_free(&p);
}

static void test_settings_file(void **state)
{
	struct tv_settings s;
	struct tv_err err;

	load(NULL, &s, 0, &err);
	assert_int_equal(s.console_escape, 0x1d);
	load("console_escape = \"^b\";\n", &s, 0, &err);
	assert_int_equal(s.console_escape, 0x02);
	load("# nothing\n\nconsole_escape = \"ctrl-b\";\n", &s, -1, &err);
	assert_non_null(strstr(err.msg, "termvisor.conf:3: console_escape: expected"));
	load("console_escape = ;\n", &s, -1, &err);
	assert_non_null(strstr(err.msg, "termvisor.conf:1:"));
}

/* How many automatic snapshots a rollback leaves: 5 unless set, 0..1000. */
static void test_keep_automatic(void **state)
{
	struct tv_settings s;
	struct tv_err err;

	load(NULL, &s, 0, &err);
	assert_int_equal(s.snapshot_keep_automatic, 5);
	load("snapshot_keep_automatic = 2;\n", &s, 0, &err);
	assert_int_equal(s.snapshot_keep_automatic, 2);
	load("snapshot_keep_automatic = 0;\n", &s, 0, &err);
	assert_int_equal(s.snapshot_keep_automatic, 0);
	load("\nsnapshot_keep_automatic = -1;\n", &s, -1, &err);
	assert_non_null(strstr(err.msg, "termvisor.conf:2: snapshot_keep_automatic: expected"));
	load("snapshot_keep_automatic = \"5\";\n", &s, -1, &err);
	assert_non_null(strstr(err.msg, "termvisor.conf:1: snapshot_keep_automatic"));
	load("snapshot_keep_automatic = 1001;\n", &s, -1, &err);
	assert_non_null(strstr(err.msg, "from 0 to 1000"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_parse),
		cmocka_unit_test(test_settings_file),
		cmocka_unit_test(test_keep_automatic),
	};

	return cmocka_run_group_tests_name("settings", tests, NULL, NULL);
}
