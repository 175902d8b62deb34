/* The key table (ui/keys.c): every action of every context has a key that
 * reaches it, no key means two things in one context, the footer and the
 * help come from the table, and termvisor.conf rebinds keys with errors that
 * name the bad key or action. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <curses.h>

#include "ui/keys.h"
#include "common/util.h"

static void test_reachable(void **state)
{
	struct keytable t;
	struct tv_err err;

	keys_defaults(&t);
	assert_int_equal(keys_check(&t, &err), 0);
	for (size_t i = 0; i < t.n; i++) {
		const struct binding *b = &t.b[i];
		bool reached = false;
		for (size_t j = 0; j < t.n; j++)
			if (strcmp(t.b[j].context, b->context) == 0 &&
			    strcmp(t.b[j].action, b->action) == 0) {
				const char *got = keys_lookup(&t, b->context, t.b[j].key);
				reached |= got && strcmp(got, b->action) == 0;
			}
		if (!reached)
			fail_msg("%s: %s has no key that reaches it", b->context, b->action);
		assert_non_null(b->help);
		assert_true(strlen(b->help) > 3);
	}
	/* The keys the brief of each context promises. */
	assert_string_equal(keys_lookup(&t, "list", 's'), "start");
	assert_string_equal(keys_lookup(&t, "list", 'X'), "stop");
	assert_null(keys_lookup(&t, "list", 'S')); /* stop is off an easy key */
	assert_string_equal(keys_lookup(&t, "list", 'D'), "delete");
	assert_string_equal(keys_lookup(&t, "list", 'q'), "quit"); /* from global */
	assert_string_equal(keys_lookup(&t, "list", '3'), "tab-3");
	assert_string_equal(keys_lookup(&t, "console", 7), "release"); /* C-g */
	/* A focused console keeps every plain key for the guest. */
	for (int c = 32; c < 127; c++)
		assert_null(keys_lookup(&t, "console", c));
	assert_null(keys_lookup(&t, "console", '\r'));
	assert_string_equal(keys_lookup(&t, "snapshots", 'r'), "rollback");
	assert_string_equal(keys_lookup(&t, "snapshots", 27), "close");
	keys_free(&t);
}

/* The footer of context (300 columns) has every item of want and not unwanted. */
static void footer_has(const struct keytable *t, const char *context, const char *const *want,
		       const char *unwanted)
{
	char buf[512];

	keys_footer(t, context, 300, buf, sizeof(buf));
	for (; *want; want++)
		if (strstr(buf, *want) == NULL)
			fail_msg("the %s footer \"%s\" lacks \"%s\"", context, buf, *want);
	if (unwanted)
		assert_null(strstr(buf, unwanted));
}

/* The console's copy mode, like tmux's: reached from a focused console,
 * every promised key there, nothing of the list's or the global keys (q
 * leaves copy mode instead of quitting), and a search being typed keeps
 * every key. */
static void test_copy_mode_keys(void **state)
{
	static const struct {
		int key;
		const char *action;
	} want[] = {
	    {KEY_UP | KEYS_NC, "up"},	   {'k', "up"},
	    {KEY_DOWN | KEYS_NC, "down"},  {'j', "down"},
	    {KEY_LEFT | KEYS_NC, "left"},  {'h', "left"},
	    {KEY_RIGHT | KEYS_NC, "right"}, {'l', "right"},
	    {KEY_PPAGE | KEYS_NC, "page-up"}, {KEY_NPAGE | KEYS_NC, "page-down"},
	    {' ', "select"},		   {'v', "select"},
	    {'\r', "copy"},		   {'y', "copy"},
	    {'/', "search-forward"},	   {'?', "search-back"},
	    {'n', "search-next"},	   {'N', "search-prev"},
	    {'q', "leave"},		   {27, "leave"},
	};
	struct keytable t;
	char *help;

	keys_defaults(&t);
	assert_string_equal(keys_lookup(&t, "console", KEYS_META | 'c'), "copy-mode");
	assert_string_equal(keys_lookup(&t, "console", KEYS_META | 'v'), "paste");
	assert_string_equal(keys_lookup(&t, "console", KEYS_META | '/'), "search");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *got = keys_lookup(&t, "copy", want[i].key);
		if (got == NULL || strcmp(got, want[i].action) != 0)
			fail_msg("copy mode: key %d gives %s, expected %s", want[i].key,
				 got ? got : "nothing", want[i].action);
	}
	assert_null(keys_lookup(&t, "copy", '1')); /* not tab 1 */
	assert_null(keys_lookup(&t, "copy", 'z')); /* not zoom */
	assert_null(keys_lookup(&t, "copy", 'x'));
	for (int c = 0; c < 256; c++)
		assert_null(keys_lookup(&t, "search", c));
	/* The footer while in copy mode shows copy mode's keys only. */
	footer_has(&t, "copy",
		   (const char *const[]){"Space select", "Enter copy", "/ search-forward", "q leave",
					 NULL},
		   "quit");
	footer_has(&t, "console", (const char *const[]){"M-c copy-mode", NULL}, NULL);
	/* The help has them, under a title of their own. */
	help = keys_help_text(&t);
	assert_non_null(strstr(help, "In a console's copy mode"));
	assert_non_null(strstr(help, "  Enter, y       copy "));
	assert_non_null(strstr(help, "  M-c            copy-mode "));
	free(help);
	/* Rebound like any key; a copy key never takes a console key. */
	assert_int_equal(keys_bind(&t, "copy", "select", "s", NULL), 0);
	assert_int_equal(keys_bind(&t, "console", "copy-mode", "M-[", NULL), 0);
	assert_string_equal(keys_lookup(&t, "copy", 's'), "select");
	assert_null(keys_lookup(&t, "copy", ' '));
	assert_null(keys_lookup(&t, "copy", 'v'));
	assert_string_equal(keys_lookup(&t, "console", KEYS_META | '['), "copy-mode");
	assert_null(keys_lookup(&t, "console", KEYS_META | 'c'));
	assert_null(keys_lookup(&t, "console", 's'));
	help = keys_help_text(&t);
	assert_non_null(strstr(help, "  s              select"));
	free(help);
	keys_free(&t);
}

static void test_one_action_per_key(void **state)
{
	struct keytable t;

	keys_defaults(&t);
	for (size_t i = 0; i < t.n; i++)
		for (size_t j = i + 1; j < t.n; j++)
			if (t.b[i].key == t.b[j].key && strcmp(t.b[i].context, t.b[j].context) == 0)
				assert_string_equal(t.b[i].action, t.b[j].action);
	keys_free(&t);
}

static void test_names(void **state)
{
	static const char *const names[] = {"t",     "T",    "/",     "C-g",    "C-]",  "M-z",
					    "Enter", "Esc",  "Tab",   "BTab",   "Space", "Up",
					    "Down",  "Left", "Right", "PgUp",   "PgDn", "S-PgUp",
					    "Home",  "End",  "Del",   "F1",     "F12",  "M-Enter"};
	char buf[32];
	struct tv_err err;
	int key;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		assert_int_equal(keys_parse(names[i], &key, &err), 0);
		assert_string_equal(keys_name(key, buf, sizeof(buf)), names[i]);
	}
	assert_int_equal(keys_parse("Ctrl-x", &key, &err), -1);
	assert_non_null(strstr(err.msg, "\"Ctrl-x\""));
	assert_int_equal(keys_parse("F13", &key, &err), -1);
	assert_int_equal(keys_parse("", &key, &err), -1);
	assert_int_equal(keys_parse("tt", &key, &err), -1);
}

static void test_footer_and_help(void **state)
{
	struct keytable t;
	char buf[512];
	char *help;

	keys_defaults(&t);
	footer_has(&t, "list", (const char *const[]){"s start", "X stop", "q quit", "? help", NULL},
		   NULL);
	footer_has(&t, "console", (const char *const[]){"C-g release", NULL},
		   "quit"); /* not a console key */
	for (int cols = 0; cols < 120; cols++) {
		keys_footer(&t, "list", cols, buf, sizeof(buf));
		assert_true(strlen(buf) <= (size_t)cols);
	}
	/* The help: every action with every key, by context. */
	help = keys_help_text(&t);
	for (size_t i = 0; i < t.n; i++) {
		char line[128], kn[32];
		assert_non_null(strstr(help, t.b[i].help));
		snprintf(line, sizeof(line), "%s", keys_name(t.b[i].key, kn, sizeof(kn)));
		assert_non_null(strstr(help, line));
	}
	/* An action's keys on one line, in the table's order. */
	assert_non_null(strstr(help, "  Up, k          up "));
	assert_non_null(strstr(help, "In the VM list:\n"));
	free(help);
	/* Rebound, the footer and the help follow. */
	assert_int_equal(keys_bind(&t, "list", "start", "S", NULL), 0);
	keys_footer(&t, "list", 300, buf, sizeof(buf));
	assert_non_null(strstr(buf, "S start"));
	assert_null(strstr(buf, "s start"));
	help = keys_help_text(&t);
	assert_non_null(strstr(help, "  S              start"));
	free(help);
	keys_free(&t);
}

/* keys_load on a termvisor.conf of this text. */
static int load(struct keytable *t, const char *text, struct tv_err *err)
{
	char path[] = "/tmp/tv-keys-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, text, strlen(text)), 0);
	close(fd);
	keys_defaults(t);
	rc = keys_load(t, path, err);
	unlink(path);
	return rc;
}

static void test_rebind(void **state)
{
	struct keytable t;
	struct tv_err err;

	assert_int_equal(load(&t,
			      "keys = {\n  list = { take = \"y\"; };\n"
			      "  console = { release = \"C-]\"; };\n};\n",
			      &err),
			 0);
	assert_string_equal(keys_lookup(&t, "list", 'y'), "take");
	assert_null(keys_lookup(&t, "list", 't')); /* its old key is free */
	assert_string_equal(keys_lookup(&t, "console", 0x1d), "release");
	assert_null(keys_lookup(&t, "console", 7));
	keys_free(&t);
	/* Two actions swap keys. */
	assert_int_equal(load(&t, "keys = { list = { start = \"p\"; pause = \"s\"; }; };\n", &err),
			 0);
	assert_string_equal(keys_lookup(&t, "list", 'p'), "start");
	assert_string_equal(keys_lookup(&t, "list", 's'), "pause");
	keys_free(&t);
	/* Copy mode's keys through termvisor.conf. */
	assert_int_equal(load(&t, "keys = { copy = { leave = \"x\"; copy = \"Y\"; }; };\n", &err),
			 0);
	assert_string_equal(keys_lookup(&t, "copy", 'x'), "leave");
	assert_string_equal(keys_lookup(&t, "copy", 'Y'), "copy");
	assert_null(keys_lookup(&t, "copy", 'q'));
	assert_null(keys_lookup(&t, "list", 'x'));
	keys_free(&t);
	/* No file, no change. */
	keys_defaults(&t);
	assert_int_equal(keys_load(&t, "/nonexistent/termvisor.conf", &err), 0);
	assert_string_equal(keys_lookup(&t, "list", 't'), "take");
	keys_free(&t);
}

static void test_rebind_errors(void **state)
{
	struct keytable t;
	struct tv_err err;

	assert_int_equal(load(&t, "keys = { list = { frobnicate = \"f\"; }; };\n", &err), -1);
	assert_non_null(strstr(err.msg, ":1: keys.list.frobnicate: unknown action \"frobnicate\""));
	keys_free(&t);
	assert_int_equal(load(&t, "\nkeys = { list = { take = \"Ctrl-t\"; }; };\n", &err), -1);
	assert_non_null(strstr(err.msg, ":2: keys.list.take: unknown key name \"Ctrl-t\""));
	keys_free(&t);
	assert_int_equal(load(&t, "keys = { lsit = { take = \"t\"; }; };\n", &err), -1);
	assert_non_null(strstr(err.msg, "unknown key context \"lsit\""));
	keys_free(&t);
	assert_int_equal(load(&t, "keys = { list = { take = 5; }; };\n", &err), -1);
	assert_non_null(strstr(err.msg, "keys.list.take: expected a string"));
	keys_free(&t);
	assert_int_equal(load(&t, "keys = { take = \"t\"; };\n", &err), -1);
	assert_non_null(strstr(err.msg, "keys.take: expected a group"));
	keys_free(&t);
	/* A key taken from an action that then has none. */
	assert_int_equal(load(&t, "keys = { list = { start = \"p\"; }; };\n", &err), -1);
	assert_non_null(strstr(err.msg, "\"pause\" has no key left"));
	keys_free(&t);
}

struct roff {
	char *out;
	size_t len, cap;
};

static void roff_line(void *ctx, const char *title, const char *keys, const struct binding *b)
{
	struct roff *r = ctx;

	if (keys)
		r->len += (size_t)snprintf(r->out + r->len, r->cap - r->len,
					   ".TP 18\n.BR \"%s\" \" (%s)\"\n%s\n", keys, b->action,
					   b->help);
	else
		r->len += (size_t)snprintf(r->out + r->len, r->cap - r->len, ".SS \"%s\"\n", title);
	assert_true(r->len < r->cap - 1);
}

/* The key list of termvisor(1), from the table: one .TP per action with all
 * its keys, by context. */
static char *man_block(const struct keytable *t)
{
	struct roff r = {calloc(1, 16384), 0, 16384};

	keys_each_action(t, roff_line, &r);
	return r.out;
}

/* termvisor(1) lists every key as the table has it. */
static void test_man_page(void **state)
{
	const char *begin = ".\\\" Keys: from ui/keys.c (tests/unit/test-keys checks them)\n";
	const char *end = ".\\\" End of the keys\n";
	struct keytable t;
	char *man, *want, *from, *to;
	FILE *f = fopen(TV_SRCDIR "/man/termvisor.1", "r");
	size_t n;

	assert_non_null(f);
	man = calloc(1, 1 << 20);
	n = fread(man, 1, (1 << 20) - 1, f);
	fclose(f);
	man[n] = '\0';
	keys_defaults(&t);
	want = man_block(&t);
	from = strstr(man, begin);
	to = from ? strstr(from, end) : NULL;
	if (from == NULL || to == NULL ||
	    strncmp(from + strlen(begin), want, (size_t)(to - from - strlen(begin))) != 0 ||
	    strlen(want) != (size_t)(to - from - strlen(begin))) {
		FILE *o = fopen("termvisor.1.keys", "w");
		if (o) {
			fputs(want, o);
			fclose(o);
		}
		fail_msg("man/termvisor.1's key list differs from the table; what it should "
			 "read between its markers is in termvisor.1.keys");
	}
	free(want);
	free(man);
	keys_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reachable),
		cmocka_unit_test(test_copy_mode_keys),
		cmocka_unit_test(test_one_action_per_key),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_footer_and_help),
		cmocka_unit_test(test_rebind),
		cmocka_unit_test(test_rebind_errors),
		cmocka_unit_test(test_man_page),
	};

	return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
