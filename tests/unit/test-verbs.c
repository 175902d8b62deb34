/* The verb table of the control socket (src/vmm/verbs.h): every verb is
 * whole (name, help, handler), unique, named the same everywhere, documented
 * in termvisor-protocol(7) and listed by `termvisor help`; the verbs that are
 * commands of their own are found as commands; the payload checks refuse
 * what does not fit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/cli/cmd.h"
#include "src/core/protocol.h"
#include "src/vmm/verbs.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	assert_non_null(f);
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static char *run_help(void)
{
	const char *b = getenv("top_builddir");
	char *cmd = xasprintf("'%s/termvisor' help", b ? b : ".");
	FILE *p = popen(cmd, "r");
	char *buf = xcalloc(1, 65536);
	size_t len = 0, n;

	assert_non_null(p);
	while ((n = fread(buf + len, 1, 65535 - len, p)) > 0)
		len += n;
	assert_int_equal(pclose(p), 0);
	free(cmd);
	return buf;
}

static void test_rows_whole_and_unique(void **state)
{
	size_t n = 0;

	for (const struct verb *v = vmm_verbs; v->type != 0; v++, n++) {
		assert_non_null(v->name);
		assert_true(strlen(v->name) > 0);
		assert_non_null(v->help);
		assert_true(strlen(v->help) > 10);
		assert_non_null(v->handler);
		assert_true(proto_is_request(v->type));
		assert_true(v->states != 0);
		/* The protocol's own messages name requests from the table. */
		assert_string_equal(proto_type_name(v->type), v->name);
		assert_ptr_equal(verb_find(vmm_verbs, v->type), v);
		for (const struct verb *w = v + 1; w->type != 0; w++) {
			assert_int_not_equal(v->type, w->type);
			assert_string_not_equal(v->name, w->name);
		}
		if (v->command != NULL) {
			assert_non_null(v->done);
			assert_ptr_equal(verb_find_command(vmm_verbs, v->command), v);
		}
	}
	assert_true(n >= 10);
	assert_null(verb_find(vmm_verbs, 0x7777));
}

/* `termvisor pause NAME` is a row of the verb table, not a file. */
static void test_commands_from_table(void **state)
{
	size_t found = 0;

	for (const struct verb *v = vmm_verbs; v->type != 0; v++) {
		const struct cmd_entry *e;
		if (v->command == NULL)
			continue;
		e = cmd_find(v->command);
		assert_non_null(e);
		assert_ptr_equal(e->verb, v);
		assert_non_null(e->exec);
		assert_string_equal(e->summary, v->help);
		found++;
	}
	assert_true(found >= 2);
	assert_non_null(cmd_find("pause"));
	assert_non_null(cmd_find("resume"));
}

static void test_man_page_lists_every_verb(void **state)
{
	const char *s = getenv("top_srcdir");
	char *path = xasprintf("%s/man/termvisor-protocol.7", s ? s : "..");
	char *man = slurp(path);

	for (const struct verb *v = vmm_verbs; v->type != 0; v++) {
		char head[96];
		snprintf(head, sizeof(head), ".B 0x%04X %s\n", v->type, v->name);
		if (strstr(man, head) == NULL)
			fail_msg("termvisor-protocol(7) does not document verb %s (want a line "
				 "'.B 0x%04X %s')",
				 v->name, v->type, v->name);
	}
	free(man);
	free(path);
}

static void test_help_lists_every_verb(void **state)
{
	char *out = run_help();
	const char *verbs = strstr(out, "control socket takes these verbs");

	assert_non_null(verbs);
	for (const struct verb *v = vmm_verbs; v->type != 0; v++) {
		char name[80], help[256];
		const char *at;

		/* "  NAME", blanks to the column, then the help line. */
		snprintf(name, sizeof(name), "\n  %s ", v->name);
		snprintf(help, sizeof(help), "%s\n", v->help);
		at = strstr(verbs, name);
		if (at != NULL)
			at += strlen(name) + strspn(at + strlen(name), " ");
		if (at == NULL || strncmp(at, help, strlen(help)) != 0)
			fail_msg("`termvisor help` does not list verb %s", v->name);
		if (v->command != NULL) {
			snprintf(name, sizeof(name), "\n  %-10s ", v->command);
			assert_non_null(strstr(out, name));
			assert_true(strstr(out, name) < verbs);
		}
	}
	free(out);
}

static void check(uint16_t type, const void *payload, uint32_t len, int want, const char *msg)
{
	const struct verb *v = verb_find(vmm_verbs, type);
	struct proto_frame f = {.type = type, .len = len, .payload = payload};
	struct tv_err err = {{0}};

	assert_non_null(v);
	assert_int_equal(verb_check_payload(v, &f, &err), want);
	if (msg != NULL)
		assert_non_null(strstr(err.msg, msg));
}

static void test_payload_checks(void **state)
{
	const uint8_t u32[4] = {0, 0, 0, 1}, size_ok[4] = {0, 24, 0, 80},
		      size_small[4] = {0, 1, 0, 80}, attach_ok[6] = {0, 0, 0, 24, 0, 80},
		      attach_mode[6] = {2, 0, 0, 24, 0, 80}, x = 'x';

	check(PROTO_PAUSE, NULL, 0, 0, NULL);
	check(PROTO_PAUSE, &x, 1, -1, "pause: expected no payload");
	check(PROTO_STOP, u32, 4, 0, NULL);
	check(PROTO_STOP, u32, 3, -1, "stop: expected a 4-byte timeout");
	check(PROTO_HELLO, u32, 2, -1, "hello: expected a 4-byte version");
	check(PROTO_WINSIZE, size_ok, 4, 0, NULL);
	check(PROTO_WINSIZE, size_small, 4, -1, "winsize: expected 2..1000 rows");
	check(PROTO_ATTACH, attach_ok, 6, 0, NULL);
	check(PROTO_ATTACH, attach_mode, 6, -1, "attach: expected mode 0 or 1");
	check(PROTO_INPUT, NULL, 0, 0, NULL);
	check(PROTO_INPUT, &x, 1, 0, NULL);
	check(PROTO_SUBSCRIBE, NULL, 0, 0, NULL);
	check(PROTO_SUBSCRIBE, &x, 1, -1, "subscribe: expected no payload");
}

static void test_states_text(void **state)
{
	char buf[64];

	verb_states_text(VS_RUNNING, buf, sizeof(buf));
	assert_string_equal(buf, "running");
	verb_states_text(VS_LIVE, buf, sizeof(buf));
	assert_string_equal(buf, "running or paused");
	verb_states_text(VS_ANY, buf, sizeof(buf));
	assert_string_equal(buf, "running, paused or stopping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_whole_and_unique),
		cmocka_unit_test(test_commands_from_table),
		cmocka_unit_test(test_man_page_lists_every_verb),
		cmocka_unit_test(test_help_lists_every_verb),
		cmocka_unit_test(test_payload_checks),
		cmocka_unit_test(test_states_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
