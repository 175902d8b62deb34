/* The console pane: what the guest prints is what the user sees, colours and
 * all; history scrolls back; keys reach the guest as a terminal sends them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <locale.h>
#include <cmocka.h>

#include "ui/vtpane.h"

static char sent[256];
static size_t nsent;

static void capture(void *ctx, const char *bytes, size_t len)
{
	if (nsent + len < sizeof(sent)) {
		memcpy(sent + nsent, bytes, len);
		nsent += len;
	}
}

static void feed(struct vtpane *p, const char *s)
{
	vtpane_feed(p, s, strlen(s));
}

static const char *row(struct vtpane *p, int r)
{
	static char buf[512];

	vtpane_row_text(p, r, buf, sizeof(buf));
	return buf;
}

static void test_text_and_cursor_moves(void **state)
{
	struct vtpane *p = vtpane_new(5, 20, 100, capture, NULL);

	feed(p, "hello\r\nworld");
	assert_string_equal(row(p, 0), "hello");
	assert_string_equal(row(p, 1), "world");
	feed(p, "\x1b[1;1HJ\x1b[2;3HR"); /* absolute moves overwrite */
	assert_string_equal(row(p, 0), "Jello");
	assert_string_equal(row(p, 1), "woRld");
	feed(p, "\x1b[2J\x1b[H"); /* clear screen */
	assert_string_equal(row(p, 0), "");
	feed(p, "caf\xc3\xa9 \xe6\xbc\xa2"); /* UTF-8, one wide character */
	assert_string_equal(row(p, 0), "caf\xc3\xa9 \xe6\xbc\xa2");
	feed(p, "\x1b]2;lab1 console\x07");
	assert_string_equal(vtpane_title(p), "lab1 console");
	vtpane_free(p);
}

static void test_scrollback(void **state)
{
	struct vtpane *p = vtpane_new(3, 20, 50, capture, NULL);
	char line[32];

	for (int i = 0; i < 10; i++) {
		snprintf(line, sizeof(line), "line %d\r\n", i);
		feed(p, line);
	}
	/* Live view: the last two lines and the empty cursor line. */
	assert_string_equal(row(p, 0), "line 8");
	assert_string_equal(row(p, 1), "line 9");
	assert_int_equal(vtpane_scrollback_len(p), 8);
	vtpane_scroll(p, 3);
	assert_string_equal(row(p, 0), "line 5");
	assert_string_equal(row(p, 2), "line 7");
	vtpane_scroll(p, 1000); /* clamped to the oldest line */
	assert_int_equal(vtpane_scroll_offset(p), 8);
	assert_string_equal(row(p, 0), "line 0");
	vtpane_scroll_reset(p);
	assert_string_equal(row(p, 1), "line 9");
	vtpane_free(p);
}

static void test_scrollback_is_bounded(void **state)
{
	struct vtpane *p = vtpane_new(2, 10, 5, capture, NULL);

	for (int i = 0; i < 100; i++)
		feed(p, "x\r\n");
	assert_int_equal(vtpane_scrollback_len(p), 5);
	vtpane_free(p);
}

static void test_keys_to_guest(void **state)
{
	struct vtpane *p = vtpane_new(5, 20, 0, capture, NULL);

	nsent = 0;
	vtpane_key(p, 'a', false);
	vtpane_key(p, '\r', false);
	vtpane_key(p, KEY_UP, true);
	vtpane_key(p, 0x03, false); /* Ctrl-C passes through */
	vtpane_key(p, KEY_BACKSPACE, true);
	assert_int_equal(nsent, 7);
	assert_memory_equal(sent, "a\r\x1b[A\x03\x7f", 7);
	/* Application cursor mode (as set by full-screen programs) changes arrows. */
	feed(p, "\x1b[?1h");
	nsent = 0;
	vtpane_key(p, KEY_UP, true);
	assert_memory_equal(sent, "\x1bOA", 3);
	/* A terminal query is answered back to the guest. */
	nsent = 0;
	feed(p, "\x1b[6n");
	assert_true(nsent > 0 && sent[0] == '\x1b');
	vtpane_free(p);
}

static void test_draw_colours(void **state)
{
	FILE *out = fopen("/dev/null", "w");
	SCREEN *scr = newterm("xterm-256color", out, stdin);
	struct vtpane *p;
	WINDOW *w;
	cchar_t cc;
	attr_t attr;
	short pair, fg, bg;
	wchar_t wc[8];

	if (scr == NULL)
		skip(); /* no terminfo entry for xterm-256color on this machine */
	start_color();
	use_default_colors();
	w = newwin(4, 20, 0, 0);
	p = vtpane_new(4, 20, 0, capture, NULL);
	feed(p, "\x1b[1;31mR\x1b[0m\x1b[38;5;196;48;5;21mX\x1b[0mn");
	vtpane_draw(p, w);
	assert_false(vtpane_dirty(p));
	mvwin_wch(w, 0, 0, &cc);
	getcchar(&cc, wc, &attr, &pair, NULL);
	assert_true(wc[0] == L'R');
	assert_true(attr & A_BOLD);
	pair_content(pair, &fg, &bg);
	assert_int_equal(fg, 1);
	assert_int_equal(bg, -1);
	mvwin_wch(w, 0, 1, &cc);
	getcchar(&cc, wc, &attr, &pair, NULL);
	pair_content(pair, &fg, &bg);
	assert_int_equal(fg, 196);
	assert_int_equal(bg, 21);
	mvwin_wch(w, 0, 2, &cc);
	getcchar(&cc, wc, &attr, &pair, NULL);
	assert_int_equal(pair, 0);
	assert_false(attr & A_BOLD);
	vtpane_free(p);
	delwin(w);
	endwin();
	delscreen(scr);
	fclose(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_and_cursor_moves),
		cmocka_unit_test(test_scrollback),
		cmocka_unit_test(test_scrollback_is_bounded),
		cmocka_unit_test(test_keys_to_guest),
		cmocka_unit_test(test_draw_colours),
	};
	setlocale(LC_ALL, "C.UTF-8");
	return cmocka_run_group_tests_name("vtpane", tests, NULL, NULL);
}
