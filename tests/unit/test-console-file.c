/* The console file of a machine snapshot (src/vmm/console-buf.h): a console's
 * screen and scrollback come back whole, into a screen of another size too,
 * and a damaged, truncated, newer or hostile file is refused (or, for
 * hostile bytes inside a well-formed file, survived) without changing the
 * screens it was to replace. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "src/vmm/console-buf.h"

static char dir[] = "/tmp/tv-console-file-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int rc = system(cmd);

	(void)state;
	free(cmd);
	return rc == 0 ? 0 : -1;
}

static char *file(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void feed(struct console_buf *cb, const char *s)
{
	console_buf_feed(cb, s, strlen(s));
}

/* A console with history: coloured lines scrolled off, a counter rewritten in
 * place, the cursor in the middle of a line. */
static struct console_buf *busy_console(void)
{
	struct console_buf *cb = console_buf_new(6, 40, 100);
	char line[64];

	for (int i = 0; i < 15; i++) {
		snprintf(line, sizeof(line), "\033[3%dmline %d\033[m\r\n", i % 8, i);
		feed(cb, line);
	}
	feed(cb, "counting; press any key\r\n");
	for (int i = 0; i < 50; i++) {
		snprintf(line, sizeof(line), "\r\033[33mcount: %d\033[0m\033[K", i);
		feed(cb, line);
	}
	feed(cb, "\r\ndemo$ note get\r\nnote: A\r\ndemo$ ab");
	return cb;
}

static void render(const struct console_buf *cb, struct proto_buf *out)
{
	int rows, cols;

	console_buf_size(cb, &rows, &cols);
	console_buf_render(cb, rows, out);
}

static void assert_same_console(const struct console_buf *a, const struct console_buf *b)
{
	struct proto_buf ra = {0}, rb = {0};
	int ar, ac, br, bc;
	char ta[128], tb[128];

	console_buf_size(a, &ar, &ac);
	console_buf_size(b, &br, &bc);
	assert_int_equal(ar, br);
	assert_int_equal(ac, bc);
	assert_int_equal(console_buf_scrollback_len(a), console_buf_scrollback_len(b));
	for (int r = 0; r < ar; r++) {
		console_buf_row_text(a, r, ta, sizeof(ta));
		console_buf_row_text(b, r, tb, sizeof(tb));
		assert_string_equal(ta, tb);
	}
	/* Byte for byte: colours, scrollback and cursor included. */
	render(a, &ra);
	render(b, &rb);
	assert_int_equal(ra.len, rb.len);
	assert_memory_equal(ra.data, rb.data, ra.len);
	proto_buf_free(&ra);
	proto_buf_free(&rb);
}

static void test_roundtrip(void **state)
{
	struct console_buf *src[2] = {busy_console(), console_buf_new(24, 80, 100)};
	struct console_buf *dst[2] = {console_buf_new(30, 100, 100), console_buf_new(10, 10, 100)};
	char *path = file("console");
	struct tv_err err;
	char row[64];

	(void)state;
	feed(src[1], "\033[?25lhvc0 text");
	feed(dst[0], "something else entirely\r\n");
	assert_int_equal(console_buf_save_file(src, 2, path, &err), 0);
	assert_int_equal(console_buf_load_file(dst, 2, path, &err), 0);
	assert_same_console(src[0], dst[0]);
	assert_same_console(src[1], dst[1]);
	console_buf_row_text(dst[0], 5, row, sizeof(row));
	assert_string_equal(row, "demo$ ab");
	console_buf_row_text(dst[0], 2, row, sizeof(row));
	assert_string_equal(row, "count: 49");
	assert_int_equal(console_buf_scrollback_len(dst[0]), 14);

	/* The restored console goes on as the old one would. */
	feed(src[0], "c\r\nmore");
	feed(dst[0], "c\r\nmore");
	assert_same_console(src[0], dst[0]);
	for (int i = 0; i < 2; i++) {
		console_buf_free(src[i]);
		console_buf_free(dst[i]);
	}
	free(path);
}

/* A VM without a screen for a console: recorded as none, left alone. */
static void test_absent_console(void **state)
{
	struct console_buf *src[2] = {busy_console(), NULL};
	struct console_buf *dst[2] = {console_buf_new(24, 80, 100), console_buf_new(24, 80, 100)};
	char *path = file("absent");
	struct tv_err err;
	char row[64];

	(void)state;
	feed(dst[1], "untouched");
	assert_int_equal(console_buf_save_file(src, 2, path, &err), 0);
	assert_int_equal(console_buf_load_file(dst, 2, path, &err), 0);
	assert_same_console(src[0], dst[0]);
	console_buf_row_text(dst[1], 0, row, sizeof(row));
	assert_string_equal(row, "untouched");
	console_buf_free(src[0]);
	console_buf_free(dst[0]);
	console_buf_free(dst[1]);
	free(path);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	uint8_t *buf;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = xmalloc(*len + 1);
	assert_int_equal(read_full(fd, buf, *len), 0);
	close(fd);
	return buf;
}

static void write_all(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, buf, len), 0);
	close(fd);
}

/* Puts a valid checksum on a file the test changed on purpose. */
static void reseal(uint8_t *buf, size_t len)
{
	uint32_t c = (uint32_t)crc32(0L, buf, (uInt)(len - 4));

	for (int i = 0; i < 4; i++)
		buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

/* Loads a bad file: refused with a message holding want, the screen as it was. */
static void refused(const char *path, const char *want)
{
	struct console_buf *dst[2] = {console_buf_new(24, 80, 100), console_buf_new(24, 80, 100)};
	struct tv_err err = {{0}};
	char row[64];

	feed(dst[0], "before");
	assert_int_equal(console_buf_load_file(dst, 2, path, &err), -1);
	if (strstr(err.msg, want) == NULL || strstr(err.msg, path) == NULL)
		fail_msg("message '%s' should name %s and say '%s'", err.msg, path, want);
	console_buf_row_text(dst[0], 0, row, sizeof(row));
	assert_string_equal(row, "before");
	console_buf_free(dst[0]);
	console_buf_free(dst[1]);
}

static void test_bad_files(void **state)
{
	struct console_buf *src[2] = {busy_console(), console_buf_new(24, 80, 100)};
	char *good = file("good"), *bad = file("bad");
	struct tv_err err;
	uint8_t *buf, *copy;
	size_t len;

	(void)state;
	assert_int_equal(console_buf_save_file(src, 2, good, &err), 0);
	buf = read_all(good, &len);
	copy = xmalloc(len);

	/* One flipped bit in the screen. */
	memcpy(copy, buf, len);
	copy[len / 2] ^= 0x10;
	write_all(bad, copy, len);
	refused(bad, "checksum");
	/* Cut short, at several points. */
	size_t cuts[] = {0, 7, 16, 20, 40, len / 2, len - 1};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		write_all(bad, buf, cuts[i]);
		refused(bad, cuts[i] < 20 ? "console file" : "checksum");
	}
	/* Not ours, and from a newer version. */
	memcpy(copy, buf, len);
	copy[0] = 'X';
	write_all(bad, copy, len);
	refused(bad, "magic");
	memcpy(copy, buf, len);
	copy[8] = 2;
	reseal(copy, len);
	write_all(bad, copy, len);
	refused(bad, "newer");
	/* Sealed, but the fields lie: console count, size, length. */
	memcpy(copy, buf, len);
	copy[12] = 3;
	reseal(copy, len);
	write_all(bad, copy, len);
	refused(bad, "consoles: 3");
	memcpy(copy, buf, len);
	copy[16] = 0xff;
	copy[17] = 0xff;
	reseal(copy, len);
	write_all(bad, copy, len);
	refused(bad, "size 65535x40");
	memcpy(copy, buf, len);
	copy[16 + 8 + 7] = 0x80;
	reseal(copy, len);
	write_all(bad, copy, len);
	refused(bad, "beyond the end");
	/* A missing file. */
	unlink(bad);
	refused(bad, "No such file");

	free(buf);
	free(copy);
	free(good);
	free(bad);
	console_buf_free(src[0]);
	console_buf_free(src[1]);
}

/* A well-formed file whose screen bytes are hostile: the guard keeps the
 * screen (libvterm) safe, as it does for the guest's own output. */
static void test_hostile_screen(void **state)
{
	static const char evil[] = "\033[;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;m"
				   "\033[99999999999999999999L\033[5b\033[9999999999;9999999999H"
				   "\r\nstill here";
	struct console_buf *dst[1] = {console_buf_new(24, 80, 10)};
	char *path = file("hostile");
	size_t n = strlen(evil), len = CONSOLE_FILE_HEAD + CONSOLE_FILE_ENTRY + n + 4;
	uint8_t *buf = xcalloc(1, len);
	struct tv_err err;
	char row[64];

	(void)state;
	memcpy(buf, CONSOLE_FILE_MAGIC, 8);
	buf[8] = CONSOLE_FILE_VERSION;
	buf[12] = 1;
	buf[16] = 4;  /* rows */
	buf[18] = 20; /* cols */
	buf[24] = (uint8_t)n;
	memcpy(buf + CONSOLE_FILE_HEAD + CONSOLE_FILE_ENTRY, evil, n);
	reseal(buf, len);
	write_all(path, buf, len);
	assert_int_equal(console_buf_load_file(dst, 1, path, &err), 0);
	console_buf_row_text(dst[0], 3, row, sizeof(row));
	assert_string_equal(row, "still here");
	console_buf_free(dst[0]);
	free(buf);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_absent_console),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_hostile_screen),
	};

	return cmocka_run_group_tests_name("console-file", tests, setup, teardown);
}
