/* The help view (ui/view-help.c) against a stand-in for the application
 * object that frees a view as its tab closes, as ui/app.c does: the view
 * lists every binding of the key table, scrolls, and closes without
 * touching itself afterwards (run in the sanitizer build, a write to the
 * freed view is a use-after-free report). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "ui/keys.h"
#include "ui/view.h"
#include "common/util.h"

struct app {
	struct keytable keys;
	int closed;
};

const struct keytable *app_keys(struct app *a)
{
	return &a->keys;
}

void app_close_tab(struct app *a, struct view *v)
{
	a->closed++;
	v->ops->free(v);
}

static void test_lists_and_closes(void **state)
{
	struct app a = {0};
	struct view *v;
	SCREEN *scr;
	FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
	WINDOW *w;
	char line[128];
	bool found = false;

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	keys_defaults(&a.keys);
	scr = newterm("xterm", out, in);
	assert_non_null(scr);
	w = newwin(40, 80, 0, 0);
	v = view_help_new(&a);
	assert_non_null(v);
	assert_string_equal(v->ops->name, "help");
	assert_true(v->ops->dirty(v));
	v->ops->draw(v, w, true);
	assert_false(v->ops->dirty(v));
	mvwinnstr(w, 0, 0, line, 79);
	assert_non_null(strstr(line, "Keys"));
	/* A binding of the table is listed: the list's start key. */
	for (int y = 1; y < 40 && !found; y++) {
		mvwinnstr(w, y, 0, line, 79);
		found = strstr(line, "start in the background") != NULL;
	}
	assert_true(found);
	/* Scrolling: down moves, up comes back, each asks for a draw. */
	assert_true(v->ops->action(v, "down"));
	assert_true(v->ops->dirty(v));
	v->ops->draw(v, w, true);
	assert_true(v->ops->action(v, "up"));
	assert_true(v->ops->dirty(v));
	assert_false(v->ops->action(v, "no-such-action"));
	/* Close: the tab goes (and with it the view), nothing after. */
	assert_true(v->ops->action(v, "close"));
	assert_int_equal(a.closed, 1);
	delwin(w);
	endwin();
	delscreen(scr);
	fclose(out);
	fclose(in);
	keys_free(&a.keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_and_closes),
	};

	setlocale(LC_ALL, "C.UTF-8");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
