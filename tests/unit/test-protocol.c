#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "src/vmm/console-buf.h"
#include "src/core/protocol.h"
#include "src/vmm/vtguard.h"

static int parse_one(const struct proto_buf *b, struct proto_frame *f, size_t *used)
{
	uint32_t code = 0;

	return proto_parse(b->data, b->len, f, used, &code);
}

/* A queue sent a little at a time, the way a slow client's output is: the
 * bytes left are always the ones appended and not yet consumed, in order,
 * through the buffer's moves and growth; consuming everything empties it. */
static void test_buf_queue(void **state)
{
	static uint8_t ref[1 << 20];
	struct proto_buf b = {0};
	size_t head = 0, tail = 0; /* ref[head..tail) is what b must hold */
	uint32_t x = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		uint8_t chunk[3000];
		size_t n;

		x = x * 1103515245 + 12345;
		n = (x >> 8) % sizeof(chunk);
		if (tail + n > sizeof(ref))
			break;
		for (size_t i = 0; i < n; i++)
			chunk[i] = ref[tail + i] = (uint8_t)(tail + i + (tail + i) / 251);
		proto_buf_append(&b, chunk, n);
		tail += n;
		x = x * 1103515245 + 12345;
		n = (x >> 8) % 3500;
		if (n > tail - head)
			n = tail - head;
		proto_buf_consume(&b, n);
		head += n;
		assert_int_equal(b.len, tail - head);
		if (b.len)
			assert_memory_equal(b.data, ref + head, b.len);
		assert_true(b.skip + b.len <= b.cap);
	}
	assert_true(tail > sizeof(ref) / 2);
	proto_buf_consume(&b, b.len);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.skip, 0);
	proto_buf_append(&b, "x", 1);
	assert_memory_equal(b.data, "x", 1);
	proto_buf_free(&b);
	assert_null(b.data);
}

static void test_frame_roundtrip(void **state)
{
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;
	uint32_t v;

	proto_put_u32(&b, PROTO_HELLO, PROTO_VERSION);
	assert_int_equal(b.len, PROTO_HDR_LEN + 4);
	/* Length, type and flags are big-endian on the wire. */
	assert_memory_equal(b.data, "\0\0\0\4\0\1\0\0\0\0\0\1", 12);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(used, b.len);
	assert_int_equal(f.type, PROTO_HELLO);
	assert_int_equal(proto_get_u32(&f, &v), 0);
	assert_int_equal(v, PROTO_VERSION);
	proto_buf_free(&b);
}

static void test_parse_needs_whole_frame(void **state)
{
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used = 0;
	uint32_t code = 0;

	proto_put_frame(&b, PROTO_INPUT, "hello", 5);
	/* Every strict prefix is "need more", never a frame or an error. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(proto_parse(b.data, n, &f, &used, &code), 0);
	assert_int_equal(proto_parse(b.data, b.len, &f, &used, &code), 1);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.payload, "hello", 5);
	proto_buf_free(&b);
}

static void test_parse_two_frames(void **state)
{
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;

	proto_put_frame(&b, PROTO_STATUS, NULL, 0);
	proto_put_size(&b, PROTO_WINSIZE, 50, 132);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(f.type, PROTO_STATUS);
	assert_int_equal(f.len, 0);
	proto_buf_consume(&b, used);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(f.type, PROTO_WINSIZE);
	proto_buf_consume(&b, used);
	assert_int_equal(b.len, 0);
	proto_buf_free(&b);
}

static void test_parse_rejects_huge_length(void **state)
{
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0};
	static const uint8_t just_over[] = {0, 1, 0, 1, 0, 8, 0, 0};
	static const uint8_t max_ok[] = {0, 1, 0, 0, 0, 8, 0, 0};
	struct proto_frame f;
	size_t used;
	uint32_t code = 0;

	assert_int_equal(proto_parse(huge, sizeof(huge), &f, &used, &code), -1);
	assert_int_equal(code, PROTO_E_TOO_BIG);
	code = 0;
	assert_int_equal(proto_parse(just_over, sizeof(just_over), &f, &used, &code), -1);
	assert_int_equal(code, PROTO_E_TOO_BIG);
	/* Exactly the maximum is allowed: it only waits for the payload. */
	assert_int_equal(proto_parse(max_ok, sizeof(max_ok), &f, &used, &code), 0);
}

static void test_parse_rejects_flags(void **state)
{
	static const uint8_t bad[] = {0, 0, 0, 0, 0, 2, 0x12, 0x34};
	struct proto_frame f;
	size_t used;
	uint32_t code = 0;

	assert_int_equal(proto_parse(bad, sizeof(bad), &f, &used, &code), -1);
	assert_int_equal(code, PROTO_E_MALFORMED);
}

static void test_put_frame_refuses_oversize(void **state)
{
	static uint8_t big[PROTO_MAX_PAYLOAD + 1];
	struct proto_buf b = {0};

	assert_int_equal(proto_put_frame(&b, PROTO_INPUT, big, sizeof(big)), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(proto_put_frame(&b, PROTO_INPUT, big, PROTO_MAX_PAYLOAD), 0);
	proto_buf_free(&b);
}

static void test_console_split(void **state)
{
	static uint8_t big[PROTO_MAX_PAYLOAD * 2 + 10];
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used, total = 0, frames = 0;

	memset(big, 'x', sizeof(big));
	proto_put_console(&b, big, sizeof(big));
	while (parse_one(&b, &f, &used) == 1) {
		assert_int_equal(f.type, PROTO_CONSOLE);
		total += f.len;
		frames++;
		proto_buf_consume(&b, used);
	}
	assert_int_equal(total, sizeof(big));
	assert_int_equal(frames, 3);
	assert_int_equal(b.len, 0);
	proto_buf_free(&b);
}

static void test_status_roundtrip(void **state)
{
	struct proto_status in = {
		.state = PROTO_STATE_PAUSED, .clients = 2, .pid = 4242, .cpus = 4,
		.rows = 30, .cols = 100, .memory = 512ULL << 20, .started = 1700000000,
		.uptime_ms = 123456789, .name = "lab1",
		.reason = "disk.qcow2: no space left on device",
	};
	struct proto_status out;
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;

	proto_put_status(&b, &in);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_status(&f, &out), 0);
	assert_int_equal(out.state, in.state);
	assert_int_equal(out.clients, 2);
	assert_int_equal(out.pid, 4242);
	assert_int_equal(out.cpus, 4);
	assert_int_equal(out.rows, 30);
	assert_int_equal(out.cols, 100);
	assert_true(out.memory == in.memory);
	assert_true(out.started == in.started);
	assert_true(out.uptime_ms == in.uptime_ms);
	assert_string_equal(out.name, "lab1");
	assert_string_equal(out.reason, "disk.qcow2: no space left on device");
	proto_buf_free(&b);
}

static void test_status_rejects_short_and_bad_name(void **state)
{
	struct proto_status s;
	uint8_t p[41 + 3];
	struct proto_frame f = {.type = PROTO_STATUS_REPLY, .payload = p};

	memset(p, 0, sizeof(p));
	f.len = 40;
	assert_int_equal(proto_get_status(&f, &s), -1);
	/* Name length pointing past the payload. */
	p[40] = 10;
	f.len = sizeof(p);
	assert_int_equal(proto_get_status(&f, &s), -1);
	p[40] = 3;
	memcpy(p + 41, "abc", 3);
	/* A server from before the reason: none. */
	assert_int_equal(proto_get_status(&f, &s), 0);
	assert_string_equal(s.name, "abc");
	assert_string_equal(s.reason, "");
}

/* The pause reason after the name: a length past the payload is refused,
 * and an older client reading only the name still gets the rest right. */
static void test_status_reason(void **state)
{
	struct proto_status in = {.state = PROTO_STATE_PAUSED, .name = "vm", .reason = "d: full"},
			    out;
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;

	(void)state;
	proto_put_status(&b, &in);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(f.len, 41 + 2 + 1 + 7);
	assert_int_equal(proto_get_status(&f, &out), 0);
	assert_string_equal(out.reason, "d: full");
	((uint8_t *)f.payload)[41 + 2] = 8;
	assert_int_equal(proto_get_status(&f, &out), -1);
	proto_buf_free(&b);
}

static void test_error_roundtrip_and_sanitised(void **state)
{
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;
	uint32_t code;
	uint16_t req;
	char msg[64];

	proto_put_error(&b, PROTO_E_STATE, PROTO_PAUSE, "VM %s is \033[31mpaused\n", "lab1");
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_error(&f, &code, &req, msg, sizeof(msg)), 0);
	assert_int_equal(code, PROTO_E_STATE);
	assert_int_equal(req, PROTO_PAUSE);
	/* Control characters never reach the terminal that prints the message. */
	assert_string_equal(msg, "VM lab1 is ?[31mpaused?");
	/* A short buffer truncates, always terminated. */
	assert_int_equal(proto_get_error(&f, &code, &req, msg, 5), 0);
	assert_string_equal(msg, "VM l");
	assert_int_equal(proto_get_ok(&f, &req), -1);
	proto_buf_consume(&b, used);

	/* OK names the request it answers. */
	proto_put_ok(&b, PROTO_RESUME);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_ok(&f, &req), 0);
	assert_int_equal(req, PROTO_RESUME);
	proto_buf_free(&b);
}

static void test_attach_and_size_validation(void **state)
{
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;
	uint8_t mode, console;
	uint16_t rows, cols;

	proto_put_frame(&b, PROTO_ATTACH, (const uint8_t[]){PROTO_ATTACH_RO, PROTO_CONSOLE_HVC, 0, 24, 0, 80}, 6);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_attach(&f, &mode, &console, &rows, &cols), 0);
	assert_int_equal(mode, PROTO_ATTACH_RO);
	assert_int_equal(console, PROTO_CONSOLE_HVC);
	assert_int_equal(rows, 24);
	assert_int_equal(cols, 80);
	proto_buf_consume(&b, used);

	proto_put_frame(&b, PROTO_ATTACH, (const uint8_t[]){7, 0, 0, 24, 0, 80}, 6); /* unknown mode */
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_attach(&f, &mode, &console, &rows, &cols), -1);
	proto_buf_consume(&b, used);

	proto_put_frame(&b, PROTO_ATTACH, (const uint8_t[]){0, 3, 0, 24, 0, 80}, 6); /* no console 3 */
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_attach(&f, &mode, &console, &rows, &cols), -1);
	proto_buf_consume(&b, used);

	proto_put_size(&b, PROTO_WINSIZE, 0, 80); /* zero rows */
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_size(&f, &rows, &cols), -1);
	proto_buf_consume(&b, used);

	proto_put_size(&b, PROTO_WINSIZE, 40, 60000); /* absurd width */
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_size(&f, &rows, &cols), -1);
	proto_buf_consume(&b, used);

	/* Wrong payload length for the type. */
	proto_put_frame(&b, PROTO_WINSIZE, "abc", 3);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_size(&f, &rows, &cols), -1);
	assert_int_equal(proto_get_u32(&f, &(uint32_t){0}), -1);
	proto_buf_free(&b);
}

static void test_hello_and_event(void **state)
{
	struct proto_hello in = {.version = 1, .pid = 99, .program = "termvisor 0.1"}, out;
	struct proto_buf b = {0};
	struct proto_frame f;
	size_t used;
	uint8_t ev;
	char text[32];

	proto_put_hello_reply(&b, &in);
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_hello_reply(&f, &out), 0);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.pid, 99);
	assert_string_equal(out.program, "termvisor 0.1");
	proto_buf_consume(&b, used);

	proto_put_event(&b, PROTO_EV_EXITED, "guest powered off");
	assert_int_equal(parse_one(&b, &f, &used), 1);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_int_equal(ev, PROTO_EV_EXITED);
	assert_string_equal(text, "guest powered off");
	/* Decoders check the type too. */
	assert_int_equal(proto_get_hello_reply(&f, &out), -1);
	proto_buf_free(&b);
}

static void guarded_feed(struct vtguard *g, struct console_buf *cb, const char *s, size_t len)
{
	uint8_t out[4096];

	assert_true(len <= sizeof(out));
	console_buf_feed(cb, out, vtguard_filter(g, (const uint8_t *)s, len, out));
}

static void test_names(void **state)
{
	/* Requests are named by the verb table. */
	assert_string_equal(proto_type_name(PROTO_STOP), "stop");
	assert_string_equal(proto_type_name(PROTO_FORCE_OFF), "force-off");
	assert_string_equal(proto_type_name(PROTO_STATUS_REPLY), "status-reply");
	assert_string_equal(proto_type_name(PROTO_SNAPSHOT_ROLLBACK), "snapshot-rollback");
	assert_string_equal(proto_type_name(PROTO_SNAPSHOT_LAST), "snapshot"); /* reserved */
	assert_string_equal(proto_type_name(PROTO_SNAPSHOT_REPLY), "snapshot reply");
	assert_string_equal(proto_type_name(0x7777), "unknown");
	assert_string_equal(proto_error_name(PROTO_E_TOO_BIG), "message too big");
	assert_string_equal(proto_error_name(12345), "error");
	assert_true(proto_is_request(PROTO_HELLO));
	assert_false(proto_is_request(PROTO_OK));
}

/* The console buffer: what a client attaching later gets. */
static void test_console_screen_and_scrollback(void **state)
{
	struct console_buf *cb = console_buf_new(4, 20, 100);
	char row[64];

	for (int i = 0; i < 10; i++) {
		char line[32];
		snprintf(line, sizeof(line), "line %d\r\n", i);
		console_buf_feed(cb, line, strlen(line));
	}
	console_buf_feed(cb, "$ ", 2);
	/* Four rows: lines 7, 8, 9 and the prompt; 0-6 went to the scrollback. */
	console_buf_row_text(cb, 0, row, sizeof(row));
	assert_string_equal(row, "line 7");
	console_buf_row_text(cb, 3, row, sizeof(row));
	assert_string_equal(row, "$");
	assert_int_equal(console_buf_scrollback_len(cb), 7);
	console_buf_free(cb);
}

static void test_console_scrollback_bounded(void **state)
{
	struct console_buf *cb = console_buf_new(2, 10, 5);

	for (int i = 0; i < 100; i++)
		console_buf_feed(cb, "xxxxxxxx\r\n", 10);
	assert_int_equal(console_buf_scrollback_len(cb), 5);
	assert_true(console_buf_scrollback_bytes(cb) <= 5 * 8);
	console_buf_free(cb);
}

/* A viewer attached to cb: cb's replay on a terminal of rows, fed to view. */
static void replay_into(struct console_buf *cb, int rows, struct console_buf *view)
{
	struct proto_buf out = {0};

	console_buf_render(cb, rows, &out);
	console_buf_feed(view, out.data, out.len);
	proto_buf_free(&out);
}

/* Rows first to last read the same on both. */
static void assert_same_rows(struct console_buf *a, struct console_buf *b, int first, int last)
{
	char ta[64], tb[64];

	for (int r = first; r <= last; r++) {
		console_buf_row_text(a, r, ta, sizeof(ta));
		console_buf_row_text(b, r, tb, sizeof(tb));
		assert_string_equal(ta, tb);
	}
}

/* Rendering the console into a fresh terminal reproduces it: run the render
 * through a second libvterm-backed console buffer and compare rows. */
static void test_console_render_reproduces(void **state)
{
	struct console_buf *cb = console_buf_new(5, 30, 100);
	struct console_buf *view = console_buf_new(5, 30, 100);
	char b[64];

	for (int i = 0; i < 8; i++) {
		char line[40];
		snprintf(line, sizeof(line), "\033[1;3%dmboot %d\033[m ok\r\n", i % 8, i);
		console_buf_feed(cb, line, strlen(line));
	}
	console_buf_feed(cb, "login: \xc3\xa9t\xc3\xa9", 12);
	replay_into(cb, 5, view);
	assert_same_rows(cb, view, 0, 4);
	console_buf_row_text(view, 4, b, sizeof(b));
	assert_string_equal(b, "login: \xc3\xa9t\xc3\xa9");
	/* The history went into the viewer's scrollback, in order. */
	assert_int_equal(console_buf_scrollback_len(view), 4);
	/* Typing after the replay lands where the guest's cursor was. */
	console_buf_feed(cb, "X", 1);
	console_buf_feed(view, "X", 1);
	assert_same_rows(cb, view, 4, 4);
	console_buf_free(cb);
	console_buf_free(view);
}

static void test_console_render_taller_terminal(void **state)
{
	struct console_buf *cb = console_buf_new(3, 20, 10);
	struct console_buf *view = console_buf_new(10, 20, 10);
	struct proto_buf out = {0};
	char b[64];

	console_buf_feed(cb, "one\r\ntwo\r\nthree\r\nfour", 21);
	console_buf_render(cb, 10, &out);
	console_buf_feed(view, out.data, out.len);
	console_buf_feed(view, "!", 1);
	/* scrollback "one", then the screen two/three/four: four is row 3. */
	console_buf_row_text(view, 0, b, sizeof(b));
	assert_string_equal(b, "one");
	console_buf_row_text(view, 3, b, sizeof(b));
	assert_string_equal(b, "four!");
	proto_buf_free(&out);
	console_buf_free(cb);
	console_buf_free(view);
}

/* A replay sets the modes behind the keys as the guest left them: a client
 * attached (or paced) after a program set them sends what it expects. */
static void test_console_render_key_modes(void **state)
{
	struct console_buf *cb = console_buf_new(5, 20, 10);
	struct console_buf *view = console_buf_new(5, 20, 10);
	struct proto_buf out = {0}, again = {0};
	const char *on = "\033[?1h\033=\033[?2004hvim", *off = "\033[?1l\033>\033[?2004l$ ";

	(void)state;
	console_buf_feed(cb, on, strlen(on));
	console_buf_render(cb, 5, &out);
	assert_non_null(memmem(out.data, out.len, "\033[?1h", 5));
	assert_non_null(memmem(out.data, out.len, "\033=", 2));
	assert_non_null(memmem(out.data, out.len, "\033[?2004h", 8));
	/* A viewer fed the replay has the program's modes (its own replay
	 * says so). */
	console_buf_feed(view, out.data, out.len);
	console_buf_render(view, 5, &again);
	assert_non_null(memmem(again.data, again.len, "\033[?1h\033=\033[?2004h", 15));
	/* And back: the program ended. */
	proto_buf_consume(&out, out.len);
	console_buf_feed(cb, off, strlen(off));
	console_buf_render(cb, 5, &out);
	assert_non_null(memmem(out.data, out.len, "\033[?1l", 5));
	assert_non_null(memmem(out.data, out.len, "\033>", 2));
	assert_non_null(memmem(out.data, out.len, "\033[?2004l", 8));
	console_buf_feed(view, out.data, out.len);
	proto_buf_consume(&again, again.len);
	console_buf_render(view, 5, &again);
	assert_non_null(memmem(again.data, again.len, "\033[?1l\033>\033[?2004l", 15));
	proto_buf_free(&again);
	proto_buf_free(&out);
	console_buf_free(cb);
	console_buf_free(view);
}

/* A console showing a full-screen program replays as the terminal's
 * alternate screen over the main one: when the program ends, a viewer
 * attached meanwhile shows the main screen again, as the console does. */
static void test_console_render_alternate_screen(void **state)
{
	struct console_buf *cb = console_buf_new(4, 20, 10);
	struct console_buf *view = console_buf_new(4, 20, 10);
	const char *run = "one\r\n$ vim\r\n\033[?1049h\033[H~ vim here", *quit = "\033[?1049l$ ";
	char b[64];

	(void)state;
	console_buf_feed(cb, run, strlen(run));
	replay_into(cb, 4, view);
	console_buf_row_text(view, 0, b, sizeof(b));
	assert_string_equal(b, "~ vim here");
	/* Typing lands where the program's cursor is. */
	console_buf_feed(cb, "!", 1);
	console_buf_feed(view, "!", 1);
	console_buf_row_text(view, 0, b, sizeof(b));
	assert_string_equal(b, "~ vim here!");
	/* The program ends: the main screen, on both. */
	console_buf_feed(cb, quit, strlen(quit));
	console_buf_feed(view, quit, strlen(quit));
	assert_same_rows(cb, view, 0, 1);
	console_buf_row_text(view, 1, b, sizeof(b));
	assert_non_null(strstr(b, "$ vim"));
	/* A replay of a console on its main screen leaves the alternate one:
	 * a viewer left in it (it got the program's start) comes back. */
	console_buf_feed(view, "\033[?1049hjunk", 12);
	replay_into(cb, 4, view);
	console_buf_row_text(view, 0, b, sizeof(b));
	assert_string_equal(b, "one");
	console_buf_free(cb);
	console_buf_free(view);
}

/* Sequences that crash libvterm 0.1.4 (more than 16 CSI parameters) are
 * defused before it parses them; ordinary sequences pass unchanged. */
static void test_kv_lines(void **state)
{
	struct proto_buf b = {0};
	char v[16];

	(void)state;
	assert_int_equal(proto_kv_put(&b, "tag", "before-upgrade"), 0);
	assert_int_equal(proto_kv_put(&b, "discard", "1"), 0);
	assert_int_equal(proto_kv_put(&b, "description", "two\nlines"), -1);
	assert_int_equal(proto_kv_put(&b, "a=b", "x"), -1);
	assert_int_equal(proto_kv_get(b.data, b.len, "discard", v, sizeof(v)), 1);
	assert_string_equal(v, "1");
	/* too long for the buffer: refused, never truncated */
	assert_int_equal(proto_kv_get(b.data, b.len, "tag", v, 8), -2);
	assert_int_equal(proto_kv_get(b.data, b.len, "tag", v, sizeof(v)), 14);
	assert_string_equal(v, "before-upgrade");
	/* a key is matched whole: "ta" is not "tag" */
	assert_int_equal(proto_kv_get(b.data, b.len, "ta", v, sizeof(v)), -1);
	assert_int_equal(proto_kv_get(b.data, b.len, "new", v, sizeof(v)), -1);
	/* the last line needs no newline; an embedded NUL is refused */
	assert_int_equal(proto_kv_get("new=x", 5, "new", v, sizeof(v)), 1);
	assert_int_equal(proto_kv_get("new=x\0y", 7, "new", v, sizeof(v)), -2);
	proto_buf_free(&b);
}

static void test_vtguard(void **state)
{
	static const char evil[] = "\033[;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;m"
				   "\033[1:2:3:4:5:6:7:8:9:1:2:3:4:5:6:7:8:9m"
				   "\033[?::::::::::::::::::::::h"
				   /* bytes libvterm skips between ESC and [ */
				   "\033\xff[::::::::::::::::\xa7:::::m";
	static const char fine[] = "\033[1;31;4mred\033[m \033[38;2;10;20;30mrgb\033[0m\r\n";
	struct vtguard g = {0};
	uint8_t out[256];
	size_t n;

	n = vtguard_filter(&g, (const uint8_t *)fine, strlen(fine), out);
	assert_int_equal(n, strlen(fine));
	assert_memory_equal(out, fine, n);
	n = vtguard_filter(&g, (const uint8_t *)evil, strlen(evil), out);
	/* No CSI keeps more than 15 separators. */
	int seps = 0, max = 0;
	for (size_t i = 0; i < n; i++) {
		if (out[i] == ';' || out[i] == ':')
			seps++;
		else if (out[i] >= 0x40 && out[i] <= 0x7e)
			seps = 0;
		max = seps > max ? seps : max;
	}
	assert_int_equal(max, VTGUARD_MAX_SEPARATORS);
	/* A sequence split across reads is followed. */
	memset(&g, 0, sizeof(g));
	size_t total = 0;
	for (size_t i = 0; i < strlen(evil); i++)
		total += vtguard_filter(&g, (const uint8_t *)evil + i, 1, out);
	assert_int_equal(total, n);

	/* REP with nothing to repeat (libvterm would loop forever) is
	 * cancelled; after a character it passes. */
	static const struct {
		const char *in, *out;
	} rep[] = {
		{"\033[5b", "\033[5\x18"},
		{"\t\033[b", "\t\033[\x18"},
		{"\xe2\x80\x8b\033[3b", "\xe2\x80\x8b\033[3\x18"}, /* zero width */
		{"x\033[5b", "x\033[5b"},
		{"x\033[31m\033[H\033[5b", "x\033[31m\033[H\033[5b"},
		{"\xe2\x94\x80\033[20b", "\xe2\x94\x80\033[20b"}, /* a box line */
		/* A wide character repeated from an odd column wrote past the screen. */
		{"x\xe6\xbc\xa2\033[90b", "x\xe6\xbc\xa2\033[90\x18"},
		/* Text in a string is not drawn: the last character is still the
		 * wide one (libvterm ends a DCS at the ESC of a CSI). */
		{"\xe6\xbc\xa2\033\tPL\033[b", "\xe6\xbc\xa2\033\tPL\033[\x18"},
		{"\xe6\xbc\xa2\033]2;x\a\033[b", "\xe6\xbc\xa2\033]2;x\a\033[\x18"},
		{"\033]2;x\ay\033[3b", "\033]2;x\ay\033[3b"},
		/* A character inside a CSI, which libvterm draws. */
		{"70\033[;?0\xf0\x9f\x98\x80\033[99b", "70\033[;?0\xf0\x9f\x98\x80\033[99\x18"},
		/* Parameters keep at most 4 digits each. */
		{"\033[0857012479;12345@", "\033[0857;1234@"},
		{"\033[24;80H", "\033[24;80H"},
	};
	for (size_t i = 0; i < sizeof(rep) / sizeof(rep[0]); i++) {
		memset(&g, 0, sizeof(g));
		n = vtguard_filter(&g, (const uint8_t *)rep[i].in, strlen(rep[i].in), out);
		assert_int_equal(n, strlen(rep[i].out));
		assert_memory_equal(out, rep[i].out, n);
	}

	/* And the console behind the guard (as the VM process feeds it, through
	 * one guard for the whole stream) survives them, whole or split. */
	struct console_buf *cb = console_buf_new(24, 80, 10);
	char row[64];
	memset(&g, 0, sizeof(g));
	guarded_feed(&g, cb, evil, strlen(evil));
	for (size_t i = 0; i < strlen(evil); i++)
		guarded_feed(&g, cb, evil + i, 1);
	guarded_feed(&g, cb, "\033[9b\xe2\x80\x8b\033[b", strlen("\033[9b\xe2\x80\x8b\033[b"));
	guarded_feed(&g, cb, "\r\nstill here", 12);
	console_buf_row_text(cb, 1, row, sizeof(row));
	assert_string_equal(row, "still here");
	console_buf_free(cb);
}

/* A guest's scroll region below the last row of a smaller window: the
 * resize takes the region back to the whole screen, so the next scrolls stay
 * inside (libvterm 0.1.4 would move a negative number of lines). */
static void test_console_resize_below_scroll_region(void **state)
{
	static const char scrolls[] = "\n\n\n\n\n\033[S\033[5S\033[T\033M\033[L\033[5M\033Dend";
	struct console_buf *cb = console_buf_new(24, 80, 10);
	char row[32];

	console_buf_feed(cb, "\033[5;20r\033[20;1Hin region", 20);
	console_buf_resize(cb, 3, 10);
	console_buf_feed(cb, scrolls, strlen(scrolls));
	console_buf_resize(cb, 24, 80);
	console_buf_feed(cb, "\r\nstill here", 12);
	console_buf_row_text(cb, 3, row, sizeof(row));
	assert_string_equal(row, "still here");
	console_buf_free(cb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_queue),
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_parse_needs_whole_frame),
		cmocka_unit_test(test_parse_two_frames),
		cmocka_unit_test(test_parse_rejects_huge_length),
		cmocka_unit_test(test_parse_rejects_flags),
		cmocka_unit_test(test_put_frame_refuses_oversize),
		cmocka_unit_test(test_console_split),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_status_rejects_short_and_bad_name),
		cmocka_unit_test(test_status_reason),
		cmocka_unit_test(test_error_roundtrip_and_sanitised),
		cmocka_unit_test(test_attach_and_size_validation),
		cmocka_unit_test(test_hello_and_event),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_console_screen_and_scrollback),
		cmocka_unit_test(test_console_scrollback_bounded),
		cmocka_unit_test(test_console_render_reproduces),
		cmocka_unit_test(test_console_render_taller_terminal),
		cmocka_unit_test(test_console_render_key_modes),
		cmocka_unit_test(test_console_render_alternate_screen),
		cmocka_unit_test(test_vtguard),
		cmocka_unit_test(test_kv_lines),
		cmocka_unit_test(test_console_resize_below_scroll_region),
	};

	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
