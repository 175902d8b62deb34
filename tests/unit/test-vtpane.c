/* The console pane: what the guest prints is what the user sees, colours and
 * all; history scrolls back; keys reach the guest as a terminal sends them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <locale.h>
#include <stdlib.h>
#include <cmocka.h>

#include "ui/vtpane.h"
#include "ui/vtcolor.h"

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

/* "line 0" to "line n-1", one a line. */
static void feed_lines(struct vtpane *p, int n)
{
	char line[32];

	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "line %d\r\n", i);
		feed(p, line);
	}
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

	feed_lines(p, 10);
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

/* A paced console's missed lines (PROTO_CONSOLE_SYNC) land above what the
 * pane showed: a view scrolled back a few lines shows the newest of them,
 * the lines just above the screen, as the user scrolled to see. Plain
 * output keeps a scrolled view on the same lines instead. */
static void test_sync_keeps_distance_from_bottom(void **state)
{
	struct vtpane *p = vtpane_new(3, 20, 50, capture, NULL);
	const char *sync = "\033[m\033[H\033[2Jline 10\r\nline 11\r\nline 12\r\nline 13\r\n"
			   "line 14\r\n";
	int r, c;

	feed_lines(p, 10); /* scrollback: lines 0 to 7 */
	/* Screens of a flood replaced the output: the screen shows lines 13
	 * and 14, the lines 8 to 12 never came. */
	feed(p, "\033[m\033[H\033[2Jline 13\r\nline 14\r\n");
	vtpane_scroll(p, 2);
	assert_string_equal(row(p, 0), "line 6");
	vtpane_copy_start(p);
	vtpane_feed_sync(p, "\033[m\033[H\033[2J", 10);
	vtpane_feed_sync(p, sync + 10, strlen(sync + 10)); /* in two frames */
	assert_int_equal(vtpane_scroll_offset(p), 2);
	assert_string_equal(row(p, 0), "line 11");
	assert_string_equal(row(p, 1), "line 12");
	assert_string_equal(row(p, 2), "line 13");
	/* Copy mode's cursor kept its distance too: still on the view. */
	vtpane_copy_cursor(p, &r, &c);
	assert_true(r >= 0 && r < 3);
	vtpane_copy_end(p);
	/* Every line once, in order: 0 to 7, 10 to 12 above the screen. */
	vtpane_scroll(p, 1000);
	assert_int_equal(vtpane_scrollback_len(p), 11);
	assert_string_equal(row(p, 0), "line 0");
	vtpane_scroll(p, -8);
	assert_string_equal(row(p, 0), "line 10");
	/* Plain output, by contrast, keeps the view on its lines. */
	feed(p, "line 15\r\n");
	assert_string_equal(row(p, 0), "line 10");
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

/* An ncurses screen of a given terminal type writing to /dev/null, the
 * way the interface draws, so cells can be read back. */
struct term {
	SCREEN *scr;
	FILE *out, *in;
	WINDOW *w;
};

static bool term_open(struct term *t, const char *type, int rows, int cols)
{
	t->out = fopen("/dev/null", "w");
	t->in = fopen("/dev/null", "r");
	t->scr = newterm(type, t->out, t->in);
	if (t->scr == NULL) {
		fclose(t->out);
		fclose(t->in);
		return false;
	}
	if (has_colors()) {
		start_color();
		use_default_colors();
	}
	vtcolor_reset(0, 0);
	t->w = newwin(rows, cols, 0, 0);
	return true;
}

static void term_close(struct term *t)
{
	delwin(t->w);
	endwin();
	delscreen(t->scr);
	fclose(t->out);
	fclose(t->in);
}

struct drawn {
	wchar_t wc[CCHARW_MAX + 1];
	attr_t attr;
	short pair;
	int fg, bg;
};

static struct drawn cell(WINDOW *w, int y, int x)
{
	struct drawn d = {0};
	cchar_t cc;

	assert_int_equal(mvwin_wch(w, y, x, &cc), OK);
	getcchar(&cc, d.wc, &d.attr, &d.pair, NULL);
	extended_pair_content(d.pair, &d.fg, &d.bg);
	return d;
}

static void test_color_map(void **state)
{
	VTermColor red196, idx9, idx1, rgb_red, rgb_grey, rgb_dark, rgb_blue;

	vterm_color_indexed(&red196, 196);
	vterm_color_indexed(&idx9, 9);
	vterm_color_indexed(&idx1, 1);
	vterm_color_rgb(&rgb_red, 255, 0, 0);
	vterm_color_rgb(&rgb_grey, 128, 128, 128);
	vterm_color_rgb(&rgb_dark, 0, 0, 5);
	vterm_color_rgb(&rgb_blue, 0, 0, 200);
	/* 256 colours: the palette as is, RGB to the cube or the grey ramp. */
	assert_int_equal(vtcolor_map(&red196, VTCOLOR_256), 196);
	assert_int_equal(vtcolor_map(&rgb_red, VTCOLOR_256), 196);
	assert_int_equal(vtcolor_map(&rgb_grey, VTCOLOR_256), 244);
	assert_int_equal(vtcolor_nearest_256(0, 0, 0), 16);
	assert_int_equal(vtcolor_nearest_256(95, 135, 175), 16 + 36 + 12 + 3);
	/* 16 colours: the nearest basic or bright one. */
	assert_int_equal(vtcolor_map(&idx9, VTCOLOR_16), 9);
	assert_int_equal(vtcolor_map(&red196, VTCOLOR_16), 9);
	assert_int_equal(vtcolor_map(&rgb_blue, VTCOLOR_16), 4);
	/* 8 colours: bright ones fold onto the basic ones. */
	assert_int_equal(vtcolor_map(&idx9, VTCOLOR_8), 1);
	assert_int_equal(vtcolor_map(&red196, VTCOLOR_8), 1);
	assert_int_equal(vtcolor_map(&rgb_grey, VTCOLOR_8), 7);
	/* Direct colour: RGB exact, the basic 8 by number, no RGB below 8. */
	assert_int_equal(vtcolor_map(&idx1, VTCOLOR_DIRECT), 1);
	assert_int_equal(vtcolor_map(&red196, VTCOLOR_DIRECT), 0xff0000);
	assert_int_equal(vtcolor_map(&rgb_grey, VTCOLOR_DIRECT), 0x808080);
	assert_int_equal(vtcolor_map(&rgb_dark, VTCOLOR_DIRECT), 8);
	/* Monochrome: nothing. */
	assert_int_equal(vtcolor_map(&red196, VTCOLOR_NONE), -1);
}

/* The same guest output drawn on each class of terminal. */
static void check_class(const char *type, int want_colors, int fg_rgb_red, int bg_196, int fg_idx9)
{
	struct term t;
	struct vtpane *p;
	struct drawn d;

	if (!term_open(&t, type, 4, 20))
		fail_msg("no terminfo entry for %s (ncurses-term is in ./dev's DEPS)", type);
	assert_int_equal(has_colors() ? COLORS : -1, want_colors);
	p = vtpane_new(4, 20, 0, capture, NULL);
	feed(p, "\x1b[1;4;38;2;255;0;0mR\x1b[0;48;5;196mB\x1b[0;91mN\x1b[0mn");
	vtpane_draw(p, t.w);
	d = cell(t.w, 0, 0);
	assert_true(d.wc[0] == L'R');
	assert_true(d.attr & A_BOLD);
	assert_true(d.attr & A_UNDERLINE);
	if (fg_rgb_red < 0) {
		assert_int_equal(d.pair, 0);
	} else {
		assert_int_equal(d.fg, fg_rgb_red);
		assert_int_equal(d.bg, -1);
	}
	d = cell(t.w, 0, 1);
	if (bg_196 >= 0) {
		assert_int_equal(d.fg, -1);
		assert_int_equal(d.bg, bg_196);
	}
	d = cell(t.w, 0, 2);
	if (fg_idx9 >= 0)
		assert_int_equal(d.fg, fg_idx9);
	d = cell(t.w, 0, 3);
	assert_int_equal(d.pair, 0);
	assert_false(d.attr & (A_BOLD | A_UNDERLINE));
	vtpane_free(p);
	term_close(&t);
}

static void test_draw_terminal_classes(void **state)
{
	check_class("xterm", 8, 1, 1, 1);
	check_class("xterm-16color", 16, 9, 9, 9);
	check_class("xterm-256color", 256, 196, 196, 9);
	check_class("xterm-direct", 0x1000000, 0xff0000, 0xff0000, 0xff0000);
	check_class("vt100", -1, -1, -1, -1);
}

static void test_no_color(void **state)
{
	struct term t;
	struct vtpane *p;
	struct drawn d;

	setenv("NO_COLOR", "1", 1);
	assert_true(term_open(&t, "xterm-256color", 4, 20));
	p = vtpane_new(4, 20, 0, capture, NULL);
	feed(p, "\x1b[1;4;7;31;44mX");
	vtpane_draw(p, t.w);
	d = cell(t.w, 0, 0);
	assert_int_equal(d.pair, 0);
	assert_true(d.attr & A_BOLD);
	assert_true(d.attr & A_UNDERLINE);
	assert_true(d.attr & A_REVERSE);
	vtpane_free(p);
	term_close(&t);
	unsetenv("NO_COLOR");
}

static void test_attributes(void **state)
{
	struct term t;
	struct vtpane *p;

	assert_true(term_open(&t, "xterm-256color", 4, 20));
	p = vtpane_new(4, 20, 0, capture, NULL);
	feed(p, "\x1b[1mb\x1b[0;4mu\x1b[0;3mi\x1b[0;5mk\x1b[0;7mr\x1b[0m.\x1b[?5h");
	vtpane_draw(p, t.w);
	assert_true(cell(t.w, 0, 0).attr & A_BOLD);
	assert_true(cell(t.w, 0, 1).attr & A_UNDERLINE);
	assert_true(cell(t.w, 0, 2).attr & A_ITALIC);
	assert_true(cell(t.w, 0, 3).attr & A_BLINK);
	/* The whole screen reversed (DECSCNM) turns reverse cells back. */
	assert_false(cell(t.w, 0, 4).attr & A_REVERSE);
	assert_true(cell(t.w, 0, 5).attr & A_REVERSE);
	assert_true(cell(t.w, 3, 19).attr & A_REVERSE);
	vtpane_free(p);
	term_close(&t);
}

static void test_wide_and_combining(void **state)
{
	struct term t;
	struct vtpane *p;
	struct drawn d;

	assert_true(term_open(&t, "xterm-256color", 4, 4));
	p = vtpane_new(4, 5, 0, capture, NULL);
	/* e + combining acute; a wide character; one that no longer fits on the
	 * row wraps to the next (as terminals do). */
	feed(p, "e\xcc\x81\xe6\xbc\xa2z\xf0\x9f\x98\x80");
	assert_string_equal(row(p, 0), "e\xcc\x81\xe6\xbc\xa2z");
	assert_string_equal(row(p, 1), "\xf0\x9f\x98\x80");
	feed(p, "\x1b[3;1Habc\xe5\xad\x97"); /* a wide character in the pane's last two columns */
	vtpane_draw(p, t.w); /* into a window one column narrower than the pane */
	d = cell(t.w, 0, 0);
	assert_true(d.wc[0] == L'e' && d.wc[1] == 0x301);
	assert_true(cell(t.w, 0, 1).wc[0] == 0x6f22);
	assert_true(cell(t.w, 0, 3).wc[0] == L'z');
	assert_true(cell(t.w, 1, 0).wc[0] == 0x1f600);
	/* Cut by the window's edge: a blank in the last column, nothing beyond. */
	assert_true(cell(t.w, 2, 2).wc[0] == L'c');
	assert_true(cell(t.w, 2, 3).wc[0] == L' ');
	assert_true(cell(t.w, 3, 0).wc[0] == L' ');
	vtpane_free(p);
	term_close(&t);
}

static void test_scrollback_10000_lines(void **state)
{
	struct vtpane *p = vtpane_new(24, 80, 10000, capture, NULL);

	feed_lines(p, 10100);
	assert_int_equal(vtpane_scrollback_len(p), 10000);
	/* 10077 lines went off the screen; the ring keeps the newest 10000. */
	vtpane_scroll(p, 100000);
	assert_int_equal(vtpane_scroll_offset(p), 10000);
	assert_string_equal(row(p, 0), "line 77");
	vtpane_scroll(p, -9999);
	assert_string_equal(row(p, 0), "line 10076");
	assert_string_equal(row(p, 1), "line 10077");
	vtpane_scroll_reset(p);
	assert_string_equal(row(p, 22), "line 10099");
	vtpane_free(p);
}

static void test_resize_keeps_scrollback(void **state)
{
	struct vtpane *p = vtpane_new(10, 20, 1000, capture, NULL);

	feed_lines(p, 100);
	assert_int_equal(vtpane_scrollback_len(p), 91);
	vtpane_resize(p, 5, 30);
	vtpane_scroll(p, 100000);
	assert_string_equal(row(p, 0), "line 0");
	vtpane_scroll_reset(p);
	assert_string_equal(row(p, 3), "line 99");
	vtpane_resize(p, 20, 12);
	vtpane_scroll(p, 100000);
	assert_string_equal(row(p, 0), "line 0");
	vtpane_scroll_reset(p);
	vtpane_resize(p, 1, 1);
	vtpane_resize(p, 10, 20);
	vtpane_scroll(p, 100000);
	assert_string_equal(row(p, 0), "line 0");
	vtpane_scroll_reset(p);
	feed(p, "end");
	assert_string_equal(row(p, 9), "end");
	assert_string_equal(row(p, 8), "line 99");
	vtpane_free(p);
}

/* A scroll region (or left/right margins) below the new size after a
 * resize: libvterm 0.1.4 scrolled a negative number of lines (ASan: a
 * negative-size memmove). */
static void test_resize_with_scroll_region(void **state)
{
	static const char scrolls[] = "\n\n\n\n\n\x1b[S\x1b[5S\x1b[T\x1bM\x1b[L\x1b[5M\x1b" "D";
	struct vtpane *p = vtpane_new(24, 80, 100, capture, NULL);

	feed(p, "\x1b[5;20r\x1b[20;1Hin region");
	vtpane_resize(p, 3, 10);
	feed(p, scrolls);
	vtpane_resize(p, 24, 80);
	feed(p, "\x1b[?69h\x1b[10;70s\x1b[10;70H");
	vtpane_resize(p, 3, 8);
	feed(p, scrolls);
	feed(p, "\x1b[P\x1b[@yyyyyyyyyyyy");
	vtpane_resize(p, 24, 80);
	feed(p, "\x1b[?69l\x1b[r\x1b[2J\x1b[Hok");
	assert_string_equal(row(p, 0), "ok");
	vtpane_free(p);
}

/* Resizes that libvterm 0.1.4 got wrong, found by fuzzing the pane (ASan):
 * each crashed it before the pane worked around it. */
static void test_resize_flaws(void **state)
{
	struct vtpane *p = vtpane_new(24, 80, 100, capture, NULL);

	/* A wide character in the last column of a line pulled back from the
	 * scrollback into a narrower screen (DL on the top row pushes it). */
	feed(p, "\x1b[1;9H\xf0\x9f\x98\x80\x1b[M");
	assert_int_equal(vtpane_scrollback_len(p), 1);
	vtpane_resize(p, 40, 9);
	assert_int_equal(vtpane_scrollback_len(p), 0);
	assert_string_equal(row(p, 0), "");
	feed(p, "\x1b[K");
	vtpane_resize(p, 24, 80);
	/* A full screen (DECALN) shrinking: the cursor went above the top. */
	feed(p, "\x1b#8");
	vtpane_resize(p, 6, 10);
	feed(p, "\x1b[Kok");
	assert_string_equal(row(p, 5), "EEEEEEEEEE");
	/* A wide character on a screen one column wide: the pane keeps two. */
	vtpane_resize(p, 1, 1);
	feed(p, "\xe6\xbc\xa2\xe6\xbc\xa2");
	vtpane_resize(p, 24, 80);
	feed(p, "\x1b[2J\x1b[Hstill here");
	assert_string_equal(row(p, 0), "still here");
	vtpane_free(p);
}

static void test_alternate_screen(void **state)
{
	struct vtpane *p = vtpane_new(3, 20, 100, capture, NULL);

	feed(p, "one\r\ntwo\r\nthree\r\nfour");
	assert_int_equal(vtpane_scrollback_len(p), 1);
	feed(p, "\x1b[?1049h");
	assert_true(vtpane_altscreen(p));
	for (int i = 0; i < 50; i++)
		feed(p, "vim line\r\n");
	assert_int_equal(vtpane_scrollback_len(p), 1);
	/* A resize while there keeps vim's lines out of the scrollback too
	 * (libvterm 0.1.4 drops the main screen's rows below the new height). */
	vtpane_resize(p, 2, 20);
	vtpane_resize(p, 3, 20);
	assert_int_equal(vtpane_scrollback_len(p), 1);
	feed(p, "\x1b[?1049l");
	assert_false(vtpane_altscreen(p));
	assert_string_equal(row(p, 0), "two");
	assert_string_equal(row(p, 1), "three");
	vtpane_scroll(p, 100);
	assert_string_equal(row(p, 0), "one");
	assert_string_equal(row(p, 1), "two");
	vtpane_free(p);
}

/* The row of the window whose cells are highlighted (reverse), or -1. */
static int highlighted_row(WINDOW *w, int rows, int cols, int *first, int *n)
{
	int found = -1;

	*n = 0;
	for (int y = 0; y < rows; y++)
		for (int x = 0; x < cols; x++)
			if (cell(w, y, x).attr & A_REVERSE) {
				if (*n == 0)
					*first = x;
				found = y;
				(*n)++;
			}
	return found;
}

static void test_search(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(5, 30, 1000, capture, NULL);
	char line[64];
	int r, first, n;

	assert_true(term_open(&t, "xterm-256color", 5, 30));
	for (int i = 0; i < 300; i++) {
		if (i % 100 == 50)
			snprintf(line, sizeof(line), "boot: Alpha %d here\r\n", i / 100);
		else
			snprintf(line, sizeof(line), "filler %d\r\n", i);
		feed(p, line);
	}
	assert_int_equal(vtpane_search(p, "alpha", VTPANE_OLDER), VTPANE_FOUND);
	vtpane_draw(p, t.w);
	r = highlighted_row(t.w, 5, 30, &first, &n);
	assert_true(r >= 0);
	assert_string_equal(row(p, r), "boot: Alpha 2 here");
	assert_int_equal(first, 6);
	assert_int_equal(n, 5);
	assert_true(vtpane_scroll_offset(p) > 0);
	assert_int_equal(vtpane_search_again(p, false), VTPANE_FOUND); /* n */
	vtpane_draw(p, t.w);
	r = highlighted_row(t.w, 5, 30, &first, &n);
	assert_string_equal(row(p, r), "boot: Alpha 1 here");
	assert_int_equal(vtpane_search_again(p, false), VTPANE_FOUND);
	assert_int_equal(vtpane_search_again(p, false), VTPANE_WRAPPED); /* back to the newest */
	vtpane_draw(p, t.w);
	r = highlighted_row(t.w, 5, 30, &first, &n);
	assert_string_equal(row(p, r), "boot: Alpha 2 here");
	assert_int_equal(vtpane_search_again(p, true), VTPANE_WRAPPED); /* N: newer, past the end */
	vtpane_draw(p, t.w);
	r = highlighted_row(t.w, 5, 30, &first, &n);
	assert_string_equal(row(p, r), "boot: Alpha 0 here");
	/* A capital letter makes case count. */
	assert_int_equal(vtpane_search(p, "ALPHA", VTPANE_NEWER), VTPANE_NOT_FOUND);
	vtpane_draw(p, t.w);
	assert_int_equal(highlighted_row(t.w, 5, 30, &first, &n), -1);
	assert_int_equal(vtpane_search(p, "filler 299", VTPANE_NEWER), VTPANE_FOUND);
	assert_int_equal(vtpane_search(p, "", VTPANE_NEWER), VTPANE_NOT_FOUND);
	vtpane_free(p);
	term_close(&t);
}

static void test_copy_mode_selection(void **state)
{
	struct vtpane *p = vtpane_new(4, 30, 100, capture, NULL);
	char *text;
	int r, c;

	feed(p, "zero\r\nfirst line\r\nsecond \xe6\xbc\xa2\xe5\xad\x97 line  \r\nthird\r\n");
	assert_null(vtpane_selection_text(p));
	vtpane_copy_start(p);
	assert_true(vtpane_copy_active(p));
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(r, 3); /* where the pane's cursor was */
	assert_int_equal(c, 0);
	vtpane_copy_move(p, -3, 6); /* "first line", on "line" */
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(r, 0);
	assert_int_equal(vtpane_scroll_offset(p), 0);
	vtpane_copy_select(p, VTPANE_SELECT_CHARS);
	vtpane_copy_move(p, 1, 2); /* the second half of the first wide character */
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(c, 7);
	text = vtpane_selection_text(p);
	assert_string_equal(text, "line\nsecond \xe6\xbc\xa2");
	free(text);
	vtpane_copy_move(p, 0, 1000); /* end of the line: trailing blanks dropped */
	text = vtpane_selection_text(p);
	assert_string_equal(text, "line\nsecond \xe6\xbc\xa2\xe5\xad\x97 line");
	free(text);
	vtpane_copy_move(p, -1000, 0); /* up past the top: to "zero" in the scrollback */
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(r, 0);
	assert_int_equal(vtpane_scroll_offset(p), 1);
	vtpane_copy_select(p, VTPANE_SELECT_LINES);
	vtpane_copy_move(p, 1, 0);
	text = vtpane_selection_text(p);
	assert_string_equal(text, "zero\nfirst line");
	free(text);
	vtpane_copy_end(p);
	assert_false(vtpane_copy_active(p));
	assert_null(vtpane_selection_text(p));
	assert_int_equal(vtpane_scroll_offset(p), 0);
	vtpane_free(p);
}

static void copy_actions(struct vtpane *p, const char *const *actions)
{
	for (; *actions; actions++)
		if (!vtpane_copy_action(p, *actions))
			fail_msg("copy mode refused %s", *actions);
}

/* Copy mode by the key table's actions (what the copy-mode keys do): pages
 * and ends move through the scrollback, a selection made with them is
 * highlighted and is the copied text, a search from copy mode moves the copy
 * cursor to the match, other actions are refused. */
static void test_copy_mode_actions(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(5, 30, 1000, capture, NULL);
	char line[64], *text;
	int r, c, first, n;

	assert_true(term_open(&t, "xterm-256color", 5, 30));
	for (int i = 0; i < 40; i++) {
		snprintf(line, sizeof(line), "%s %d\r\n", i == 12 ? "needle here" : "hay", i);
		feed(p, line);
	}
	assert_false(vtpane_copy_action(p, "up")); /* not in copy mode */
	vtpane_copy_start(p);
	assert_false(vtpane_copy_action(p, "frobnicate"));
	assert_true(vtpane_copy_action(p, "page-up"));
	assert_int_equal(vtpane_scroll_offset(p), 0); /* the cursor was at the bottom row */
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(r, 0);
	assert_true(vtpane_copy_action(p, "page-up")); /* now the view follows */
	assert_true(vtpane_scroll_offset(p) >= 4);
	vtpane_copy_cursor(p, &r, &c);
	assert_true(r >= 0 && r < 5);
	snprintf(line, sizeof(line), "hay %d", 40 - 4 - 4);
	assert_string_equal(row(p, r), line);
	assert_true(vtpane_copy_action(p, "top"));
	assert_string_equal(row(p, 0), "hay 0");
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(r, 0);
	assert_int_equal(c, 0);
	assert_true(vtpane_copy_action(p, "bottom"));
	assert_int_equal(vtpane_scroll_offset(p), 0);
	/* Search back from the copy cursor, then select from the match to the
	 * end of its line. */
	assert_int_equal(vtpane_search(p, "needle", VTPANE_OLDER), VTPANE_FOUND);
	vtpane_copy_cursor(p, &r, &c);
	assert_true(r >= 0);
	assert_string_equal(row(p, r), "needle here 12");
	assert_int_equal(c, 0);
	copy_actions(p, (const char *const[]){"select", "right", "line-end", NULL});
	text = vtpane_selection_text(p);
	assert_string_equal(text, "needle here 12");
	free(text);
	/* The selection shows as highlighted cells on that row (the search's
	 * match too, inside it). */
	vtpane_draw(p, t.w);
	assert_int_equal(highlighted_row(t.w, 5, 30, &first, &n), r);
	assert_int_equal(first, 0);
	assert_int_equal(n, 30); /* to the end of the line: the whole row */
	copy_actions(p, (const char *const[]){"line-start", "down", "select-lines", "down", NULL});
	text = vtpane_selection_text(p);
	assert_string_equal(text, "hay 13\nhay 14");
	free(text);
	assert_true(vtpane_copy_action(p, "left")); /* at column 0: stays */
	vtpane_copy_cursor(p, &r, &c);
	assert_int_equal(c, 0);
	vtpane_copy_end(p);
	assert_false(vtpane_copy_action(p, "down"));
	vtpane_free(p);
	term_close(&t);
}

/* A paste types the text as a terminal would: Enter for each line feed,
 * bracketed when the guest asked, never an ESC from the text. */
static void test_paste(void **state)
{
	struct vtpane *p = vtpane_new(5, 20, 0, capture, NULL);

	nsent = 0;
	vtpane_paste(p, "ls\nwho", 6);
	assert_int_equal(nsent, 6);
	assert_memory_equal(sent, "ls\rwho", 6);
	feed(p, "\x1b[?2004h");
	nsent = 0;
	vtpane_paste(p, "a\x1b[201~b\n", 9);
	assert_int_equal(nsent, 20);
	assert_memory_equal(sent, "\x1b[200~a[201~b\r\x1b[201~", 20);
	feed(p, "\x1b[?2004l");
	nsent = 0;
	vtpane_paste(p, "", 0);
	assert_int_equal(nsent, 0);
	vtpane_free(p);
}

static void test_osc52(void **state)
{
	char *s = vtpane_osc52("hello", 5, false);

	assert_string_equal(s, "\x1b]52;c;aGVsbG8=\a");
	free(s);
	s = vtpane_osc52("hello", 5, true);
	assert_string_equal(s, "\x1bPtmux;\x1b\x1b]52;c;aGVsbG8=\a\x1b\\");
	free(s);
	s = vtpane_osc52("ab", 2, false);
	assert_string_equal(s, "\x1b]52;c;YWI=\a");
	free(s);
	s = vtpane_osc52("\xe6\xbc\xa2\n", 4, false);
	assert_string_equal(s, "\x1b]52;c;5ryiCg==\a");
	free(s);
	s = vtpane_osc52("", 0, false);
	assert_string_equal(s, "\x1b]52;c;\a");
	free(s);
}

static void test_wheel_at_the_ends(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(3, 20, 100, capture, NULL);

	assert_true(term_open(&t, "xterm-256color", 3, 20));
	for (int i = 0; i < 12; i++)
		feed(p, "x\r\n");
	assert_int_equal(vtpane_scrollback_len(p), 10);
	vtpane_scroll(p, -3); /* already at the bottom */
	assert_int_equal(vtpane_scroll_offset(p), 0);
	vtpane_scroll(p, 9);
	vtpane_scroll(p, 3); /* one line left above */
	assert_int_equal(vtpane_scroll_offset(p), 10);
	vtpane_draw(p, t.w);
	vtpane_scroll(p, 3);
	assert_int_equal(vtpane_scroll_offset(p), 10);
	assert_false(vtpane_dirty(p)); /* nothing moved: nothing to draw */
	for (int i = 0; i < 4; i++)
		vtpane_scroll(p, -3);
	assert_int_equal(vtpane_scroll_offset(p), 0);
	vtpane_free(p);
	term_close(&t);
}

static void test_draws_only_changed_rows(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(5, 20, 100, capture, NULL);

	assert_true(term_open(&t, "xterm-256color", 5, 20));
	feed(p, "a\r\nb\r\nc");
	vtpane_draw(p, t.w);
	wnoutrefresh(t.w);
	for (int i = 0; i < 50; i++) /* many feeds, one draw */
		feed(p, "\x1b[2;1Hxy");
	assert_true(vtpane_dirty(p));
	vtpane_draw(p, t.w);
	for (int r = 0; r < 5; r++)
		assert_int_equal(is_linetouched(t.w, r), r == 1);
	assert_true(cell(t.w, 1, 1).wc[0] == L'y');
	wnoutrefresh(t.w);
	vtpane_draw(p, t.w); /* nothing changed */
	for (int r = 0; r < 5; r++)
		assert_false(is_linetouched(t.w, r));
	/* A row the caller cleared is drawn again. */
	wmove(t.w, 0, 0);
	wclrtoeol(t.w);
	vtpane_draw(p, t.w);
	assert_true(cell(t.w, 0, 0).wc[0] == L'a');
	vtpane_free(p);
	term_close(&t);
}

/* Below a view's title row (vtpane_draw_at): the pane's rows land one row
 * down, the title row is never written, and a change redraws its row only. */
static void test_draws_at_an_offset(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(4, 20, 100, capture, NULL);

	assert_true(term_open(&t, "xterm-256color", 5, 20));
	mvwaddstr(t.w, 0, 0, "title");
	feed(p, "a\r\nb\r\nc");
	vtpane_draw_at(p, t.w, 1);
	assert_true(cell(t.w, 0, 0).wc[0] == L't');
	assert_true(cell(t.w, 1, 0).wc[0] == L'a');
	assert_true(cell(t.w, 3, 0).wc[0] == L'c');
	wnoutrefresh(t.w);
	feed(p, "\x1b[2;1Hxy");
	vtpane_draw_at(p, t.w, 1);
	for (int r = 0; r < 5; r++)
		assert_int_equal(is_linetouched(t.w, r), r == 2);
	assert_true(cell(t.w, 2, 1).wc[0] == L'y');
	assert_true(cell(t.w, 0, 0).wc[0] == L't');
	vtpane_free(p);
	term_close(&t);
}

static void test_cursor_shape(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(3, 20, 0, capture, NULL);
	char seq[32];
	bool blink;

	assert_true(term_open(&t, "xterm-256color", 3, 20));
	assert_int_equal(vtpane_cursor_shape(p, &blink), VTPANE_CURSOR_BLOCK);
	feed(p, "\x1b[4 q");
	assert_int_equal(vtpane_cursor_shape(p, &blink), VTPANE_CURSOR_UNDERLINE);
	assert_false(blink);
	vtpane_cursor_seq(p, seq, sizeof(seq));
	assert_string_equal(seq, "\x1b[4 q");
	feed(p, "\x1b[5 q");
	assert_int_equal(vtpane_cursor_shape(p, &blink), VTPANE_CURSOR_BAR);
	assert_true(blink);
	vtpane_cursor_seq(p, seq, sizeof(seq));
	assert_string_equal(seq, "\x1b[5 q");
	term_close(&t);
	assert_true(term_open(&t, "vt100", 3, 20)); /* no Ss: nothing to send */
	assert_int_equal(vtpane_cursor_seq(p, seq, sizeof(seq)), 0);
	vtpane_free(p);
	term_close(&t);
}

/* A guest cycling through every colour combination: pairs are recycled,
 * every cell still shows its own colours. */
static void test_color_pair_exhaustion(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(4, 20, 0, capture, NULL);
	struct vtpane *q = vtpane_new(4, 20, 0, capture, NULL);
	WINDOW *w2;
	char s[64];

	assert_true(term_open(&t, "xterm-256color", 4, 20));
	w2 = newwin(4, 20, 4, 0);
	vtcolor_reset(32, 63);
	feed(q, "\x1b[31;42mQ");
	vtpane_draw(q, w2);
	for (int i = 0; i < 65536; i++) {
		struct drawn d;

		snprintf(s, sizeof(s), "\x1b[H\x1b[38;5;%d;48;5;%dmX", i & 255, i >> 8);
		feed(p, s);
		vtpane_draw(p, t.w);
		d = cell(t.w, 0, 0);
		assert_true(d.pair >= 32 && d.pair <= 63);
		if (d.fg != (i & 255) || d.bg != i >> 8)
			fail_msg("combination %d drawn as %d on %d", i, d.fg, d.bg);
		if (vtpane_dirty(q)) /* another pane redraws when its pairs were reused */
			vtpane_draw(q, w2);
		d = cell(w2, 0, 0);
		assert_true(d.fg == 1 && d.bg == 2);
	}
	delwin(w2);
	vtpane_free(p);
	vtpane_free(q);
	term_close(&t);
}

/* Guest output is hostile input: none of this may crash, hang or write
 * outside the window, and the pane works afterwards. */
static void test_hostile_input(void **state)
{
	struct term t;
	struct vtpane *p = vtpane_new(24, 80, 200, capture, NULL);
	static const char *const nasty[] = {
		"\x1b[99999999999;99999999999H",
		"\x1b[;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;m",
		"\x1b[99999b",
		"\x1b[5;3r\x1b[99999S\x1b[99999T\x1b[99999L\x1b[99999M",
		"\x1b[?69h\x1b[70;10s\x1b[99999@\x1b[99999P",
		"\x1b#8\x1b#6\x1b#3",
		"\x1b]2;" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x07",
		"\xf4\x90\x80\x80\xff\xfe\xc0\xaf\xed\xa0\x80",
		"\x1b[38;2;999;999;999;48;5;9999m\x1b[58;5;1m",
		"\r\nx\xe6\xbc\xa2\x1b[90b", /* libvterm 0.1.4 wrote past its screen */
		"\r\n\xe6\xbc\xa2\x1b\tPL\x1b[b", /* the same through a DCS */
		"\r\n70\x1b[;?0\xf0\x9f\x98\x80\x1b[99b", /* and drawn inside a CSI */
	};
	unsigned seed = 18;
	char buf[4096];

	assert_true(term_open(&t, "xterm-256color", 20, 60)); /* smaller than the pane */
	for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		feed(p, nasty[i]);
		vtpane_draw(p, t.w);
	}
	for (int round = 0; round < 256; round++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			int r = rand_r(&seed);
			/* Mostly escape-sequence material, so sequences get parsed. */
			buf[i] = (char)(r % 4 == 0 ? "\x1b[;?0123456789mHJKr"[r / 4 % 19] : r >> 8);
		}
		vtpane_feed(p, buf, n);
		if (round % 16 == 0)
			vtpane_resize(p, 1 + rand_r(&seed) % 30, 1 + rand_r(&seed) % 100);
		if (round % 32 == 0) {
			vtpane_resize(p, 1, 1);
			vtpane_draw(p, t.w);
			vtpane_resize(p, 24, 80);
		}
		vtpane_scroll(p, rand_r(&seed) % 21 - 10);
		vtpane_draw(p, t.w);
	}
	feed(p, "\x1b" "c\x1b[?69l\x1b[r\x1b[H\x1b[2Jok");
	vtpane_scroll_reset(p);
	vtpane_resize(p, 24, 80);
	assert_string_equal(row(p, 0), "ok");
	vtpane_free(p);
	term_close(&t);
}

/* Output built from pieces of escape sequences and characters of every
 * width, between resizes, searches, copy-mode moves and draws: what found
 * the libvterm flaws the pane and the guard work around. */
static void test_random_operations(void **state)
{
	static const char *const pieces[] = {
		"\x1b[", ";", "?", "0", "1", "9", "99999", "m", "H", "J", "K", "r", "s", "L", "M",
		"P", "@", "S", "T", "b", "h", "l", "\x1b]2;", "\x07", "\r\n", "\n", "x",
		"\xe6\xbc\xa2", "\xf0\x9f\x98\x80", "e\xcc\x81", "\x1b[?1049h", "\x1b[?1049l",
		"\x1b[?69h", "\x1b" "7", "\x1b" "8", "\x1b#8", "\x1b[38;2;1;2;3m", "\x1b[48;5;200m",
		"\t", "\b", "\x1b[ q", "\x1b" "c", "\xff", "\xc3", "\x1bP", "\x1b\\",
	};
	struct term t;
	char buf[2048];

	assert_true(term_open(&t, "xterm-256color", 30, 100));
	for (unsigned seed = 1; seed <= 3; seed++) {
		struct vtpane *p = vtpane_new(24, 80, 300, capture, NULL);
		unsigned r = seed;

		for (int it = 0; it < 1500; it++) {
			size_t n = 0;
			char *text;

			while (n < 1000) {
				const char *s = pieces[rand_r(&r) % (sizeof(pieces) / sizeof(pieces[0]))];
				memcpy(buf + n, s, strlen(s));
				n += strlen(s);
			}
			vtpane_feed(p, buf, n);
			switch (rand_r(&r) % 10) {
			case 0: vtpane_resize(p, 1 + rand_r(&r) % 40, 1 + rand_r(&r) % 120); break;
			case 1: vtpane_search(p, rand_r(&r) % 2 ? "x" : "\xe6\xbc\xa2", rand_r(&r) % 2 ? 1 : -1); break;
			case 2: vtpane_copy_start(p); vtpane_copy_select(p, (enum vtpane_select)(rand_r(&r) % 3)); break;
			case 3: vtpane_copy_move(p, rand_r(&r) % 61 - 30, rand_r(&r) % 201 - 100); break;
			case 4:
				text = vtpane_selection_text(p);
				free(text);
				break;
			case 5: vtpane_copy_end(p); break;
			case 6: vtpane_scroll(p, rand_r(&r) % 41 - 20); break;
			default: break;
			}
			vtpane_draw(p, t.w);
		}
		vtpane_resize(p, 24, 80);
		feed(p, "\x1b" "c\x1b[?69l\x1b[r\x1b[2J\x1b[Hok");
		vtpane_copy_end(p);
		assert_string_equal(row(p, 0), "ok");
		vtpane_free(p);
	}
	term_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_and_cursor_moves),
		cmocka_unit_test(test_scrollback),
		cmocka_unit_test(test_scrollback_is_bounded),
		cmocka_unit_test(test_sync_keeps_distance_from_bottom),
		cmocka_unit_test(test_keys_to_guest),
		cmocka_unit_test(test_draw_colours),
		cmocka_unit_test(test_color_map),
		cmocka_unit_test(test_draw_terminal_classes),
		cmocka_unit_test(test_no_color),
		cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_wide_and_combining),
		cmocka_unit_test(test_scrollback_10000_lines),
		cmocka_unit_test(test_resize_keeps_scrollback),
		cmocka_unit_test(test_resize_with_scroll_region),
		cmocka_unit_test(test_resize_flaws),
		cmocka_unit_test(test_alternate_screen),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_copy_mode_selection),
		cmocka_unit_test(test_copy_mode_actions),
		cmocka_unit_test(test_paste),
		cmocka_unit_test(test_osc52),
		cmocka_unit_test(test_wheel_at_the_ends),
		cmocka_unit_test(test_draws_only_changed_rows),
		cmocka_unit_test(test_draws_at_an_offset),
		cmocka_unit_test(test_cursor_shape),
		cmocka_unit_test(test_color_pair_exhaustion),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_random_operations),
	};
	setlocale(LC_ALL, "C.UTF-8");
	return cmocka_run_group_tests_name("vtpane", tests, NULL, NULL);
}
