/* The terminal screen that the console pane and the VM process keep
 * (src/vmm/vtscreen.c): for any output a guest prints it shows the same
 * cells, cursor and scrollback as libvterm's own screen, which it replaces
 * because that one copies the whole scroll region at every line feed. The
 * places where it differs on purpose are tested on their own: an erased
 * cell takes only the pen's colours, and a screen that shrinks never puts
 * the cursor above its top. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <vterm.h>

#include "src/vmm/vtscreen.h"
#include "src/vmm/vtguard.h"

#define SB_MAX 4096

/* What a screen pushed into (and lent back from) its scrollback. */
struct sb {
	int n;
	int cols[SB_MAX];
	VTermScreenCell *line[SB_MAX];
	int damage_calls;
};

static int sb_push(int cols, const VTermScreenCell *cells, void *user)
{
	struct sb *sb = user;

	if (sb->n == SB_MAX)
		return 0;
	sb->line[sb->n] = malloc((size_t)cols * sizeof(*cells));
	memcpy(sb->line[sb->n], cells, (size_t)cols * sizeof(*cells));
	sb->cols[sb->n++] = cols;
	return 1;
}

static int sb_pop(int cols, VTermScreenCell *cells, void *user)
{
	struct sb *sb = user;

	if (sb->n == 0)
		return 0;
	sb->n--;
	for (int i = 0; i < cols; i++) {
		if (i < sb->cols[sb->n]) {
			cells[i] = sb->line[sb->n][i];
		} else {
			memset(&cells[i], 0, sizeof(cells[i]));
			cells[i].width = 1;
			cells[i].fg.type = VTERM_COLOR_DEFAULT_FG;
			cells[i].bg.type = VTERM_COLOR_DEFAULT_BG;
		}
	}
	free(sb->line[sb->n]);
	/* A wide character that the narrower screen cuts in half comes back as
	 * a blank, as the console pane gives it (libvterm 0.1.4's screen would
	 * mark a cell past the row's end). */
	for (int i = 0; i < cols; i++)
		if (cells[i].width == 2 && i == cols - 1) {
			memset(&cells[i], 0, sizeof(cells[i]));
			cells[i].width = 1;
			cells[i].fg.type = VTERM_COLOR_DEFAULT_FG;
			cells[i].bg.type = VTERM_COLOR_DEFAULT_BG;
		}
	return 1;
}

static int on_damage(VTermRect rect, void *user)
{
	(void)rect;
	((struct sb *)user)->damage_calls++;
	return 1;
}

static const VTermScreenCallbacks cbs = {
	.damage = on_damage,
	.sb_pushline = sb_push,
	.sb_popline = sb_pop,
};

static void sb_free(struct sb *sb)
{
	while (sb->n > 0)
		free(sb->line[--sb->n]);
}

/* The two screens side by side, fed the same bytes. */
struct pair {
	VTerm *ref_vt, *vt;
	VTermScreen *ref;
	struct vtscreen *s;
	struct sb ref_sb, sb;
	struct vtguard guard;
	int rows, cols;
};

static struct pair *pair_new(int rows, int cols)
{
	struct pair *p = calloc(1, sizeof(*p));

	p->rows = rows;
	p->cols = cols;
	p->ref_vt = vterm_new(rows, cols);
	vterm_set_utf8(p->ref_vt, 1);
	p->ref = vterm_obtain_screen(p->ref_vt);
	vterm_screen_set_callbacks(p->ref, &cbs, &p->ref_sb);
	vterm_screen_enable_altscreen(p->ref, 1);
	vterm_screen_reset(p->ref, 1);

	p->vt = vterm_new(rows, cols);
	vterm_set_utf8(p->vt, 1);
	p->s = vtscreen_new(p->vt);
	vtscreen_set_callbacks(p->s, &cbs, &p->sb);
	vtscreen_enable_altscreen(p->s, 1);
	vtscreen_reset(p->s, 1);
	return p;
}

static void pair_free(struct pair *p)
{
	vterm_free(p->ref_vt);
	vtscreen_free(p->s);
	vterm_free(p->vt);
	sb_free(&p->ref_sb);
	sb_free(&p->sb);
	free(p);
}

static void pair_feed(struct pair *p, const char *bytes, size_t len)
{
	uint8_t *safe = malloc(len + 1);
	size_t n = vtguard_filter(&p->guard, (const uint8_t *)bytes, len, safe);

	vterm_input_write(p->ref_vt, (const char *)safe, n);
	vterm_screen_flush_damage(p->ref);
	vterm_input_write(p->vt, (const char *)safe, n);
	vtscreen_flush_damage(p->s);
	free(safe);
}

static void pair_puts(struct pair *p, const char *s)
{
	pair_feed(p, s, strlen(s));
}

static void pair_resize(struct pair *p, int rows, int cols)
{
	vterm_set_size(p->ref_vt, rows, cols);
	vterm_screen_flush_damage(p->ref);
	vterm_set_size(p->vt, rows, cols);
	vtscreen_flush_damage(p->s);
	p->rows = rows;
	p->cols = cols;
}

static bool color_same(const VTermColor *a, const VTermColor *b)
{
	if (a->type != b->type)
		return false;
	if (VTERM_COLOR_IS_INDEXED(a))
		return a->indexed.idx == b->indexed.idx;
	return a->rgb.red == b->rgb.red && a->rgb.green == b->rgb.green && a->rgb.blue == b->rgb.blue;
}

/* Two cells show the same: characters, width, colours, and for a cell
 * with a character its attributes (an erased cell carries only colours
 * here, where libvterm 0.1.4 copies the whole pen). */
static bool cell_same(const VTermScreenCell *a, const VTermScreenCell *b, char *why, size_t n)
{
	if (a->chars[0] != b->chars[0]) {
		snprintf(why, n, "char U+%04X, libvterm U+%04X", b->chars[0], a->chars[0]);
		return false;
	}
	if (a->chars[0] == (uint32_t)-1)
		return true; /* the second half of a wide character */
	for (int i = 1; i < VTERM_MAX_CHARS_PER_CELL && a->chars[i - 1]; i++)
		if (a->chars[i] != b->chars[i]) {
			snprintf(why, n, "combining character %d", i);
			return false;
		}
	if (a->width != b->width) {
		snprintf(why, n, "width %d, libvterm %d", b->width, a->width);
		return false;
	}
	if (!color_same(&a->fg, &b->fg) || !color_same(&a->bg, &b->bg)) {
		snprintf(why, n, "colours (type %d/%d, libvterm %d/%d)", b->fg.type, b->bg.type, a->fg.type,
			 a->bg.type);
		return false;
	}
	if (a->chars[0] != 0 &&
	    (a->attrs.bold != b->attrs.bold || a->attrs.underline != b->attrs.underline ||
	     a->attrs.italic != b->attrs.italic || a->attrs.blink != b->attrs.blink ||
	     a->attrs.reverse != b->attrs.reverse || a->attrs.strike != b->attrs.strike ||
	     a->attrs.font != b->attrs.font || a->attrs.dwl != b->attrs.dwl ||
	     a->attrs.dhl != b->attrs.dhl)) {
		snprintf(why, n, "attributes");
		return false;
	}
	return true;
}

static void assert_same(struct pair *p, const char *when)
{
	VTermPos ref_cursor, cursor;
	char why[128];

	vterm_state_get_cursorpos(vterm_obtain_state(p->ref_vt), &ref_cursor);
	vterm_state_get_cursorpos(vterm_obtain_state(p->vt), &cursor);
	if (ref_cursor.row != cursor.row || ref_cursor.col != cursor.col)
		fail_msg("%s: cursor %d,%d, libvterm %d,%d", when, cursor.row, cursor.col, ref_cursor.row,
			 ref_cursor.col);
	for (int row = 0; row < p->rows; row++)
		for (int col = 0; col < p->cols; col++) {
			VTermScreenCell a, b;
			VTermPos pos = {row, col};

			assert_int_equal(vterm_screen_get_cell(p->ref, pos, &a), 1);
			assert_int_equal(vtscreen_get_cell(p->s, pos, &b), 1);
			if (!cell_same(&a, &b, why, sizeof(why)))
				fail_msg("%s: row %d col %d: %s", when, row, col, why);
			/* A cell reads whole: nothing stale after its last character. */
			for (int i = 1; i < VTERM_MAX_CHARS_PER_CELL; i++)
				if ((b.chars[i - 1] == 0 || b.chars[i - 1] == (uint32_t)-1) && b.chars[i])
					fail_msg("%s: row %d col %d: character %d after the end", when, row,
						 col, i);
		}
	if (p->ref_sb.n != p->sb.n)
		fail_msg("%s: %d lines in the scrollback, libvterm %d", when, p->sb.n, p->ref_sb.n);
	for (int i = 0; i < p->sb.n; i++) {
		assert_int_equal(p->sb.cols[i], p->ref_sb.cols[i]);
		for (int col = 0; col < p->sb.cols[i]; col++)
			if (!cell_same(&p->ref_sb.line[i][col], &p->sb.line[i][col], why, sizeof(why)))
				fail_msg("%s: scrollback line %d col %d: %s", when, i, col, why);
	}
}

static char *row_text(struct pair *p, int row, char *buf)
{
	int n = 0;

	for (int col = 0; col < p->cols; col++) {
		VTermScreenCell c;

		vtscreen_get_cell(p->s, (VTermPos){row, col}, &c);
		buf[n++] = c.chars[0] == 0 ? ' ' : c.chars[0] < 0x80 ? (char)c.chars[0] : '?';
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

static const char *sb_text(struct sb *sb, int i, char *buf)
{
	int n = 0;

	for (int col = 0; col < sb->cols[i]; col++) {
		uint32_t ch = sb->line[i][col].chars[0];
		buf[n++] = ch == 0 ? ' ' : ch < 0x80 ? (char)ch : '?';
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

/* Lines scroll off the top into the scrollback, in order and with their
 * colours; the screen shows the last ones. */
static void test_scrolling_lines(void **state)
{
	struct pair *p = pair_new(5, 20);
	char line[64], buf[64];

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(line, sizeof(line), "\x1b[3%dmline %d\x1b[m\r\n", i % 8, i);
		pair_puts(p, line);
	}
	assert_same(p, "100 lines");
	assert_int_equal(p->sb.n, 96);
	assert_string_equal(sb_text(&p->sb, 0, buf), "line 0");
	assert_string_equal(sb_text(&p->sb, 95, buf), "line 95");
	assert_int_equal(p->sb.line[95][0].fg.indexed.idx, 95 % 8);
	assert_string_equal(row_text(p, 3, buf), "line 99");
	assert_string_equal(row_text(p, 4, buf), "");
	pair_free(p);
}

/* A scroll region in the middle moves only its rows and pushes nothing;
 * the alternate screen pushes nothing; leaving it brings the main screen
 * back as it was. */
static void test_regions_and_altscreen(void **state)
{
	struct pair *p = pair_new(8, 10);
	char buf[64];

	(void)state;
	pair_puts(p, "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh");
	pair_puts(p, "\x1b[3;6r\x1b[6;1H\n\n\x1b[3;1H\x1bM\x1b[2S\x1b[T");
	assert_same(p, "region");
	assert_int_equal(p->sb.n, 0);
	assert_string_equal(row_text(p, 0, buf), "a");
	assert_string_equal(row_text(p, 7, buf), "h");
	pair_puts(p, "\x1b[r\x1b[?1049h\x1b[Halt\r\n\n\n\n\n\n\n\n\n\nX\x1b[?1049l");
	assert_same(p, "altscreen");
	assert_int_equal(p->sb.n, 0);
	assert_string_equal(row_text(p, 0, buf), "a");
	pair_free(p);
}

/* Lines that only change what is on one row: inserts and deletes of
 * characters and lines, erases in every direction, wide and combining
 * characters, double-width lines, tabs: the same as libvterm's. */
static void test_edits_match_libvterm(void **state)
{
	struct pair *p = pair_new(6, 12);

	(void)state;
	pair_puts(p, "hello world!\r\nsecond line\r\n\xe6\xbc\xa2\xe5\xad\x97 e\xcc\x81 x\tt");
	pair_puts(p, "\x1b[1;3H\x1b[2@\x1b[1;8H\x1b[3P\x1b[2;1H\x1b[L\x1b[4;1H\x1b[M");
	pair_puts(p, "\x1b[5;5H\x1b[1K\x1b[6;3H\x1b[0J\x1b[1;12H\xe6\xbc\xa2");
	pair_puts(p, "\x1b[2;1H\x1b#6wide\x1b[3;1H\x1b#3top\x1b[41m\x1b[2K\x1b[m");
	assert_same(p, "edits");
	pair_free(p);
}

/* An erase in a coloured pen paints the background colour only: a
 * reverse or underlined pen does not paint blocks or lines over the
 * erased cells (xterm's background colour erase). */
static void test_erase_takes_colours_only(void **state)
{
	struct pair *p = pair_new(3, 10);
	VTermScreenCell c;

	(void)state;
	pair_puts(p, "\x1b[7;4;44mxx\x1b[K");
	vtscreen_get_cell(p->s, (VTermPos){0, 5}, &c);
	assert_int_equal(c.chars[0], 0);
	assert_true(VTERM_COLOR_IS_INDEXED(&c.bg));
	assert_int_equal(c.bg.indexed.idx, 4);
	assert_int_equal(c.attrs.reverse, 0);
	assert_int_equal(c.attrs.underline, 0);
	vtscreen_get_cell(p->s, (VTermPos){0, 0}, &c);
	assert_int_equal(c.chars[0], 'x');
	assert_int_equal(c.attrs.reverse, 1);
	assert_int_equal(c.attrs.underline, 1);
	pair_free(p);
}

/* Resizes with the cursor at the prompt, as a shell leaves it: the rows
 * above go to the scrollback when the screen shrinks and come back when it
 * grows, as with libvterm. */
static void test_resize_matches_libvterm(void **state)
{
	struct pair *p = pair_new(10, 20);
	char line[32], buf[64];

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(line, sizeof(line), "row %d\r\n", i);
		pair_puts(p, line);
	}
	pair_puts(p, "$ ");
	assert_same(p, "before");
	pair_resize(p, 4, 20);
	assert_same(p, "shrunk");
	assert_string_equal(row_text(p, 3, buf), "$");
	pair_resize(p, 12, 30);
	assert_same(p, "grown");
	pair_resize(p, 12, 8);
	assert_same(p, "narrow");
	pair_resize(p, 7, 40);
	assert_same(p, "wide");
	pair_free(p);
}

/* A full screen (DECALN) with the cursor at the top, shrunk: libvterm
 * 0.1.4 pushes the rows above the last and puts the cursor above the
 * screen; here the cursor's row stays, at the top, and so does the cursor. */
static void test_shrink_keeps_cursor_on_screen(void **state)
{
	VTerm *vt = vterm_new(10, 10);
	struct vtscreen *s;
	struct sb sb = {0};
	VTermPos pos;
	VTermScreenCell c;

	(void)state;
	vterm_set_utf8(vt, 1);
	s = vtscreen_new(vt);
	vtscreen_set_callbacks(s, &cbs, &sb);
	vtscreen_reset(s, 1);
	vterm_input_write(vt, "\x1b#8\x1b[3;4H", 9);
	vterm_set_size(vt, 4, 10);
	vterm_state_get_cursorpos(vterm_obtain_state(vt), &pos);
	assert_int_equal(pos.row, 0);
	assert_int_equal(pos.col, 3);
	assert_int_equal(sb.n, 2);
	assert_int_equal(vtscreen_get_cell(s, (VTermPos){3, 9}, &c), 1);
	assert_int_equal(c.chars[0], 'E');
	assert_int_equal(vtscreen_get_cell(s, (VTermPos){4, 0}, &c), 0);
	vterm_input_write(vt, "\x1b[2J\x1b[HX", 8);
	assert_int_equal(vtscreen_get_cell(s, (VTermPos){0, 0}, &c), 1);
	assert_int_equal(c.chars[0], 'X');
	vtscreen_free(s);
	vterm_free(vt);
	sb_free(&sb);
}

/* A wide character cut in half by a narrower screen is erased, not left
 * as half a character a terminal cannot draw in one column. */
static void test_narrowing_cuts_wide_character(void **state)
{
	VTerm *vt = vterm_new(3, 10);
	struct vtscreen *s;
	VTermScreenCell c;

	(void)state;
	vterm_set_utf8(vt, 1);
	s = vtscreen_new(vt);
	vtscreen_reset(s, 1);
	vterm_input_write(vt, "abcdefgh\xe6\xbc\xa2\r\n$ ", 16);
	vtscreen_get_cell(s, (VTermPos){0, 8}, &c);
	assert_int_equal(c.chars[0], 0x6f22);
	assert_int_equal(c.width, 2);
	vterm_set_size(vt, 3, 9);
	vtscreen_get_cell(s, (VTermPos){0, 7}, &c);
	assert_int_equal(c.chars[0], 'h');
	vtscreen_get_cell(s, (VTermPos){0, 8}, &c);
	assert_int_equal(c.chars[0], 0);
	assert_int_equal(c.width, 1);
	vtscreen_free(s);
	vterm_free(vt);
}

/* Damage comes once per flush, a rectangle per run of changed rows. */
static void test_damage_per_flush(void **state)
{
	struct pair *p = pair_new(24, 80);

	(void)state;
	p->sb.damage_calls = 0;
	pair_puts(p, "\x1b[2;1Hab\x1b[5;1Hcd\x1b[6;1Hef");
	assert_int_equal(p->sb.damage_calls, 2); /* row 2, rows 5-6 */
	p->sb.damage_calls = 0;
	pair_puts(p, "");
	assert_int_equal(p->sb.damage_calls, 0);
	pair_free(p);
}

/* At least len bytes of pieces picked at random, fed to both screens. */
static void feed_random(struct pair *p, const char *const *pieces, size_t npieces, unsigned *r,
			size_t len)
{
	char buf[4096];
	size_t n = 0;

	while (n < len) {
		const char *s = pieces[rand_r(r) % npieces];
		memcpy(buf + n, s, strlen(s));
		n += strlen(s);
	}
	pair_feed(p, buf, n);
}

/* Both scrollbacks emptied alike before they fill up. */
static void trim_scrollback(struct pair *p)
{
	if (p->sb.n > SB_MAX - 200) {
		sb_free(&p->sb);
		sb_free(&p->ref_sb);
	}
}

/* Random output, built from pieces a guest prints (text, colours, cursor
 * moves, erases, inserts and deletes, scroll regions and scrolls, wide and
 * combining characters, the alternate screen, saved cursors, line
 * attributes) and hostile ones the guard has to tame: after each chunk the
 * screen, the cursor and the scrollback equal libvterm's. */
static void test_random_output_matches_libvterm(void **state)
{
	static const char *const pieces[] = {
		"abc", "hello world ", "0123456789", "\r\n", "\n", "\r", "\t", "\b", "\x1b[m",
		"\x1b[1m", "\x1b[4m", "\x1b[7m", "\x1b[3m", "\x1b[5m", "\x1b[9m", "\x1b[31m", "\x1b[42m",
		"\x1b[38;5;200m", "\x1b[48;2;1;2;3m", "\x1b[H", "\x1b[5;7H", "\x1b[2A", "\x1b[3B", "\x1b[4C",
		"\x1b[2D", "\x1b[J", "\x1b[1J", "\x1b[2J", "\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[2L",
		"\x1b[M", "\x1b[3P", "\x1b[2@", "\x1b[X", "\x1b[2S", "\x1b[T", "\x1b[3;9r", "\x1b[r",
		"\x1b[1;4r", "\x1bM", "\x1b" "D", "\x1b" "E", "\x1b" "7", "\x1b" "8", "\x1b[?1049h",
		"\x1b[?1049l", "\x1b[?47h", "\x1b[?47l", "\x1b[?5h", "\x1b[?5l", "\x1b[?6h", "\x1b[?6l",
		"\x1b[?7l", "\x1b[?7h", "\x1b#8", "\x1b#6", "\x1b#3", "\x1b#5", "\xe6\xbc\xa2",
		"\xf0\x9f\x98\x80", "e\xcc\x81", "\xcc\x81", "\x1b[4h", "\x1b[4l", "\x1b[3g", "\x1bH",
		"\x1b[5b", "\x1b[1\"q", "\x1b[0\"q", "\x1b[99;99H", "\x1b[200@", "\x1b[99M", "\x1b[30S",
		"\x1b]2;title\x07", "\x1b" "c", "\x1b[!p", "\xff", "\xc3", "\x1b[;;;;;;;;;;;;;;;;;;;;;m",
		"\x1b[?69h", "\x1b[5;20s", "\x1b[?69l",
	};
	char when[64];

	(void)state;
	for (unsigned seed = 1; seed <= 6; seed++) {
		struct pair *p = pair_new(seed % 2 ? 24 : 13, seed % 3 ? 80 : 41);
		unsigned r = seed;

		for (int it = 0; it < 400; it++) {
			feed_random(p, pieces, sizeof(pieces) / sizeof(pieces[0]), &r, 1000);
			snprintf(when, sizeof(when), "seed %u chunk %d", seed, it);
			assert_same(p, when);
			trim_scrollback(p);
		}
		pair_free(p);
	}
}

/* Random output with the screen resized between chunks, the cursor on the
 * last row as a shell's prompt leaves it (where a shrinking screen keeps
 * the cursor's row in both): cells, cursor and scrollback equal libvterm's,
 * on the main and the alternate screen, wider and narrower, taller and
 * shorter. */
static void test_random_resizes_match_libvterm(void **state)
{
	static const char *const pieces[] = {
		"word ", "longer text here ", "\r\n", "\x1b[32m", "\x1b[m", "\x1b[7m",
		"\xe6\xbc\xa2", "e\xcc\x81", "\x1b[K", "\x1b[2J", "\x1b[?1049h", "\x1b[?1049l",
		"\x1b[H", "\x1b[3;5H", "\x1b[2L", "\x1b[M", "\t",
	};
	char when[64];

	(void)state;
	for (unsigned seed = 1; seed <= 4; seed++) {
		struct pair *p = pair_new(12, 40);
		unsigned r = seed;

		for (int it = 0; it < 300; it++) {
			feed_random(p, pieces, sizeof(pieces) / sizeof(pieces[0]), &r, 400);
			pair_puts(p, "\x1b[r\x1b[999;1H$ ");
			snprintf(when, sizeof(when), "seed %u chunk %d", seed, it);
			assert_same(p, when);
			if (rand_r(&r) % 3 == 0) {
				pair_resize(p, 2 + (int)(rand_r(&r) % 30), 2 + (int)(rand_r(&r) % 100));
				snprintf(when, sizeof(when), "seed %u resize %d (%dx%d)", seed, it, p->rows,
					 p->cols);
				assert_same(p, when);
			}
			trim_scrollback(p);
		}
		pair_free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrolling_lines),
		cmocka_unit_test(test_regions_and_altscreen),
		cmocka_unit_test(test_edits_match_libvterm),
		cmocka_unit_test(test_erase_takes_colours_only),
		cmocka_unit_test(test_resize_matches_libvterm),
		cmocka_unit_test(test_shrink_keeps_cursor_on_screen),
		cmocka_unit_test(test_narrowing_cuts_wide_character),
		cmocka_unit_test(test_damage_per_flush),
		cmocka_unit_test(test_random_output_matches_libvterm),
		cmocka_unit_test(test_random_resizes_match_libvterm),
	};
	return cmocka_run_group_tests_name("vtscreen", tests, NULL, NULL);
}
