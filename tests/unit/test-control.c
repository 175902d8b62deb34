/* The control socket server against real sockets: a server loop runs in a
 * thread with a stand-in for the engine (a guest that echoes its input), and
 * the tests connect as clients, well-behaved and hostile. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/core/client.h"
#include "src/vmm/console-buf.h"
#include "src/vmm/control.h"
#include "src/vmm/verbs.h"
#include "common/util.h"

struct fixture {
	char dir[64], path[96];
	struct console_buf *cb;
	struct control *ctl;
	pthread_t thread;
	int wake[2];
	volatile int quit;
	/* What the stand-in engine saw, read by the tests after a round trip. */
	pthread_mutex_t lock;
	struct proto_buf echo; /* input waiting to be echoed by the loop */
	struct proto_buf guest_in;
	int stops, pauses;
	bool paused;
	int resizes, rows, cols; /* sizes the guest was told (conf.resized) */
	unsigned port;
	volatile unsigned long rounds; /* of the server's loop */
};

/* The stand-in's verbs: the VM process's own table, with each handler that
 * acts on a VM replaced by one that acts on the fixture, so the checks the
 * table drives (payload, state, attachment) are the real ones. */
static enum verb_result fake_status(struct verb_call *call)
{
	struct fixture *fx = call->vm;
	struct proto_status st;

	memset(&st, 0, sizeof(st));
	st.state = fx->paused ? PROTO_STATE_PAUSED : PROTO_STATE_RUNNING;
	st.pid = (uint32_t)getpid();
	st.cpus = 2;
	st.memory = 64 << 20;
	st.clients = (uint16_t)control_attached(call->ctl);
	snprintf(st.name, sizeof(st.name), "fake");
	proto_put_status(call->out, &st);
	return VERB_REPLIED;
}

static enum verb_result fake_pause(struct verb_call *call)
{
	struct fixture *fx = call->vm;

	fx->paused = true;
	fx->pauses++;
	control_event(call->ctl, PROTO_EV_PAUSED, "");
	return VERB_OK;
}

static enum verb_result fake_resume(struct verb_call *call)
{
	struct fixture *fx = call->vm;

	fx->paused = false;
	control_event(call->ctl, PROTO_EV_RESUMED, "");
	return VERB_OK;
}

static enum verb_result fake_stop(struct verb_call *call)
{
	struct fixture *fx = call->vm;

	fx->stops++;
	return VERB_OK;
}

static enum verb_result fake_force_off(struct verb_call *call)
{
	return VERB_OK;
}

static enum verb_result fake_input(struct verb_call *call)
{
	struct fixture *fx = call->vm;

	pthread_mutex_lock(&fx->lock);
	proto_buf_append(&fx->guest_in, call->f->payload, call->f->len);
	proto_buf_append(&fx->echo, call->f->payload, call->f->len);
	pthread_mutex_unlock(&fx->lock);
	return VERB_SILENT;
}

/* Snapshot verbs: the payload's tag comes back in a typed reply. */
static enum verb_result fake_snapshot(struct verb_call *call)
{
	char tag[64], reply[128];
	int n;

	if (proto_kv_get(call->f->payload, call->f->len, "tag", tag, sizeof(tag)) < 0)
		return tv_errf(&call->err, "no tag"), VERB_ERROR;
	n = snprintf(reply, sizeof(reply), "{\"op\": \"0x%04x\", \"tag\": \"%s\"}", call->f->type,
		     tag);
	proto_put_frame(call->out, PROTO_SNAPSHOT_REPLY, reply, (size_t)n);
	/* As the VM process does: the reply first, then the event for all. */
	snprintf(reply, sizeof(reply), "%s %s",
		 call->f->type == PROTO_SNAPSHOT_TAKE ? "take" : "delete", tag);
	control_event(call->ctl, PROTO_EV_SNAPSHOT, reply);
	return VERB_REPLIED;
}

static void fake_resized(void *vm, unsigned port, int rows, int cols)
{
	struct fixture *fx = vm;

	pthread_mutex_lock(&fx->lock);
	fx->resizes++;
	fx->port = port;
	fx->rows = rows;
	fx->cols = cols;
	pthread_mutex_unlock(&fx->lock);
}

static uint8_t fake_state(void *vm)
{
	struct fixture *fx = vm;

	return fx->paused ? PROTO_STATE_PAUSED : PROTO_STATE_RUNNING;
}

static struct verb fake_verbs[32];

static void fake_verbs_init(void)
{
	static const struct {
		uint16_t type;
		enum verb_result (*fn)(struct verb_call *);
	} fakes[] = {
		{PROTO_STATUS, fake_status}, {PROTO_PAUSE, fake_pause},
		{PROTO_RESUME, fake_resume}, {PROTO_STOP, fake_stop},
		{PROTO_FORCE_OFF, fake_force_off}, {PROTO_INPUT, fake_input},
		{PROTO_SNAPSHOT_TAKE, fake_snapshot}, {PROTO_SNAPSHOT_ROLLBACK, fake_snapshot},
		{PROTO_SNAPSHOT_DELETE, fake_snapshot}, {PROTO_SNAPSHOT_RENAME, fake_snapshot},
	};
	size_t n = 0;

	for (const struct verb *v = vmm_verbs; v->type != 0 && n + 1 < ARRAY_SIZE(fake_verbs); v++) {
		fake_verbs[n] = *v;
		for (size_t i = 0; i < ARRAY_SIZE(fakes); i++)
			if (fakes[i].type == v->type)
				fake_verbs[n].handler = fakes[i].fn;
		n++;
	}
	fake_verbs[n].type = 0;
}

/* The VM process's main loop, reduced to the control socket and an echo. */
static void *server_main(void *arg)
{
	struct fixture *fx = arg;

	while (!fx->quit) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS + 2];
		size_t n = control_pollfds(fx->ctl, pfd, CONTROL_MAX_CLIENTS + 1);

		pfd[n] = (struct pollfd){.fd = fx->wake[0], .events = POLLIN};
		int t = control_timeout(fx->ctl);
		fx->rounds++;
		if (poll(pfd, n + 1, t >= 0 && t < 100 ? t : 100) < 0)
			continue;
		if (pfd[n].revents & POLLIN) {
			char b[64];
			(void)!read(fx->wake[0], b, sizeof(b));
		}
		control_handle(fx->ctl, pfd, n);
		pthread_mutex_lock(&fx->lock);
		/* In pieces of at most 64 KiB, as the VM process reads its pipe. */
		while (fx->echo.len) {
			size_t k = MIN(fx->echo.len, (size_t)65536);
			control_console_output(fx->ctl, CONSOLE_SERIAL, fx->echo.data, k);
			proto_buf_consume(&fx->echo, k);
		}
		pthread_mutex_unlock(&fx->lock);
	}
	return NULL;
}

/* Console output from the "guest", fed from the server thread. */
static void guest_says(struct fixture *fx, const char *text)
{
	pthread_mutex_lock(&fx->lock);
	proto_buf_append(&fx->echo, text, strlen(text));
	pthread_mutex_unlock(&fx->lock);
	(void)!write(fx->wake[1], "x", 1);
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	struct tv_err err;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/tv-ctl.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/fake.sock", fx->dir);
	fx->cb = console_buf_new(24, 80, 100);
	fake_verbs_init();
	fx->ctl = control_new(&(struct control_conf){.path = fx->path, .name = "fake",
						    .cb = {fx->cb}, .verbs = fake_verbs, .vm = fx,
						    .state = fake_state, .resized = fake_resized},
			      &err);
	if (fx->ctl == NULL || pipe(fx->wake) < 0)
		return -1;
	pthread_mutex_init(&fx->lock, NULL);
	pthread_create(&fx->thread, NULL, server_main, fx);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	fx->quit = 1;
	(void)!write(fx->wake[1], "x", 1);
	pthread_join(fx->thread, NULL);
	unlink(fx->path);
	control_free(fx->ctl);
	console_buf_free(fx->cb);
	close(fx->wake[0]);
	close(fx->wake[1]);
	proto_buf_free(&fx->echo);
	proto_buf_free(&fx->guest_in);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* A raw connection, for speaking badly. */
static int raw_connect(struct fixture *fx)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, fx->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, uint16_t type, const void *payload, size_t len)
{
	struct proto_buf b = {0};

	proto_put_frame(&b, type, payload, len);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	proto_buf_free(&b);
}

/* Reads one frame (waiting up to 2 s); returns its type and copies it. */
static int raw_recv(int fd, struct proto_buf *in, struct proto_frame *f, uint8_t *payload,
		    size_t cap)
{
	for (;;) {
		size_t used;
		uint32_t code;
		int rc = proto_parse(in->data, in->len, f, &used, &code);
		if (rc == 1) {
			memcpy(payload, f->payload, MIN(f->len, cap));
			f->payload = payload;
			proto_buf_consume(in, used);
			return f->type;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 2000) != 1)
			return -1;
		uint8_t buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return 0; /* hung up */
		proto_buf_append(in, buf, (size_t)n);
	}
}

static uint32_t expect_error(int fd, struct proto_buf *in)
{
	struct proto_frame f;
	uint8_t p[512];
	uint32_t code = 0;
	uint16_t req;
	char msg[256];

	assert_int_equal(raw_recv(fd, in, &f, p, sizeof(p)), PROTO_ERROR);
	assert_int_equal(proto_get_error(&f, &code, &req, msg, sizeof(msg)), 0);
	return code;
}

static void raw_hello(int fd, struct proto_buf *in)
{
	uint8_t ver[4] = {0, 0, 0, PROTO_VERSION}, p[512];
	struct proto_frame f;

	raw_send(fd, PROTO_HELLO, ver, 4);
	assert_int_equal(raw_recv(fd, in, &f, p, sizeof(p)), PROTO_HELLO_REPLY);
}

/* The server still answers a well-behaved client. */
static void assert_server_alive(struct fixture *fx)
{
	struct tv_err err;
	struct tv_client *c = client_connect_path(fx->path, "fake", &err);
	struct proto_status st;

	assert_non_null(c);
	assert_int_equal(client_status(c, &st, &err), 0);
	assert_string_equal(st.name, "fake");
	client_close(c);
}

static void test_socket_is_private(void **state)
{
	struct fixture *fx = *state;
	struct stat st;

	assert_int_equal(stat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_hello_and_status(void **state)
{
	struct fixture *fx = *state;
	struct tv_err err;
	struct tv_client *c = client_connect_path(fx->path, "fake", &err);
	struct proto_status st;

	assert_non_null(c);
	assert_int_equal(client_server(c)->version, PROTO_VERSION);
	assert_int_equal(client_server(c)->pid, getpid());
	assert_int_equal(client_status(c, &st, &err), 0);
	assert_int_equal(st.cpus, 2);
	assert_int_equal(st.state, PROTO_STATE_RUNNING);
	assert_int_equal(client_request(c, PROTO_PAUSE, NULL, 0, NULL, NULL, &err), 0);
	/* A request the VM's state does not allow is refused from the table,
	 * with the server's message, before any handler runs. */
	assert_int_equal(client_request(c, PROTO_PAUSE, NULL, 0, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "pause: VM fake is paused; it must be running"));
	assert_int_equal(fx->pauses, 1);
	assert_int_equal(client_status(c, &st, &err), 0);
	assert_int_equal(st.state, PROTO_STATE_PAUSED);
	assert_int_equal(client_request(c, PROTO_RESUME, NULL, 0, NULL, NULL, &err), 0);
	assert_int_equal(client_request(c, PROTO_RESUME, NULL, 0, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "resume: VM fake is running; it must be paused"));
	client_close(c);
}

static void test_request_before_hello(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	int fd = raw_connect(fx);

	raw_send(fd, PROTO_PAUSE, NULL, 0);
	assert_int_equal(expect_error(fd, &in), PROTO_E_HELLO);
	assert_int_equal(fx->pauses, 0);
	/* The connection stays usable. */
	raw_hello(fd, &in);
	close(fd);
	proto_buf_free(&in);
}

static void test_wrong_version(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	uint8_t ver[4] = {0, 0, 0, 99};
	int fd = raw_connect(fx);

	raw_send(fd, PROTO_HELLO, ver, 4);
	assert_int_equal(expect_error(fd, &in), PROTO_E_VERSION);
	close(fd);
	proto_buf_free(&in);
}

static void test_huge_length_refused(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	struct proto_frame f;
	uint8_t p[64];
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 2, 0, 0};
	int fd = raw_connect(fx);

	raw_hello(fd, &in);
	assert_int_equal(write(fd, huge, sizeof(huge)), (ssize_t)sizeof(huge));
	assert_int_equal(expect_error(fd, &in), PROTO_E_TOO_BIG);
	/* Then the server hangs up on this client, and only on it. */
	assert_int_equal(raw_recv(fd, &in, &f, p, sizeof(p)), 0);
	close(fd);
	assert_server_alive(fx);
	proto_buf_free(&in);
}

static void test_garbage_refused(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	uint8_t junk[4096];
	int fd = raw_connect(fx);

	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	(void)!write(fd, junk, sizeof(junk));
	/* Whatever the header says, the answer is an error, never a crash. */
	uint32_t code = expect_error(fd, &in);
	assert_true(code == PROTO_E_TOO_BIG || code == PROTO_E_MALFORMED || code == PROTO_E_HELLO);
	close(fd);
	assert_server_alive(fx);
	assert_int_equal(fx->stops, 0);
	proto_buf_free(&in);
}

static void test_truncated_frame_then_hangup(void **state)
{
	struct fixture *fx = *state;
	static const uint8_t part[] = {0, 0, 0, 4, 0, 5, 0, 0, 0, 1}; /* stop, 2 of 4 bytes */
	int fd = raw_connect(fx);

	(void)!write(fd, part, sizeof(part));
	close(fd);
	assert_server_alive(fx);
	assert_int_equal(fx->stops, 0);
}

static void test_malformed_payloads(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	int fd = raw_connect(fx);

	raw_hello(fd, &in);
	raw_send(fd, PROTO_STOP, "abc", 3);
	assert_int_equal(expect_error(fd, &in), PROTO_E_MALFORMED);
	raw_send(fd, PROTO_PAUSE, "x", 1);
	assert_int_equal(expect_error(fd, &in), PROTO_E_MALFORMED);
	raw_send(fd, PROTO_ATTACH, "\0\0\0\0\0\0", 6); /* 0 x 0 */
	assert_int_equal(expect_error(fd, &in), PROTO_E_MALFORMED);
	raw_send(fd, 0x4242, "zz", 2);
	assert_int_equal(expect_error(fd, &in), PROTO_E_UNKNOWN);
	raw_send(fd, PROTO_SNAPSHOT_LAST, NULL, 0); /* reserved for snapshots, not a verb yet */
	assert_int_equal(expect_error(fd, &in), PROTO_E_UNSUPPORTED);
	raw_send(fd, PROTO_SNAPSHOT_ROLLBACK, "discard=1\n", 10); /* no tag: the handler refuses */
	assert_int_equal(expect_error(fd, &in), PROTO_E_FAILED);
	raw_send(fd, PROTO_OK, NULL, 0); /* a reply type sent as a request */
	assert_int_equal(expect_error(fd, &in), PROTO_E_UNKNOWN);
	raw_send(fd, PROTO_INPUT, "ls\r", 3);
	assert_int_equal(expect_error(fd, &in), PROTO_E_NOT_ATTACHED);
	assert_int_equal(fx->stops, 0);
	assert_int_equal(fx->pauses, 0);
	assert_int_equal(fx->guest_in.len, 0);
	/* After all that, the same connection still works. */
	raw_send(fd, PROTO_STOP, "\0\0\0\1", 4);
	struct proto_frame f;
	uint8_t p[64];
	assert_int_equal(raw_recv(fd, &in, &f, p, sizeof(p)), PROTO_OK);
	/* A snapshot verb's key=value payload reaches its handler; its reply is typed. */
	raw_send(fd, PROTO_SNAPSHOT_TAKE, "description=x\ntag=s1\n", 21);
	assert_int_equal(raw_recv(fd, &in, &f, p, sizeof(p)), PROTO_SNAPSHOT_REPLY);
	assert_non_null(memmem(p, f.len, "\"tag\": \"s1\"", 11));
	assert_int_equal(fx->stops, 1);
	close(fd);
	proto_buf_free(&in);
}

struct sink {
	struct proto_buf got;
};

static void sink_console(void *ctx, const uint8_t *bytes, size_t len)
{
	proto_buf_append(&((struct sink *)ctx)->got, bytes, len);
}

static const struct client_handlers sink_handlers = {.console = sink_console};

static bool sink_has(struct tv_client *c, struct sink *s, const char *text)
{
	struct tv_err err;

	for (int i = 0; i < 200; i++) {
		if (s->got.len && memmem(s->got.data, s->got.len, text, strlen(text)))
			return true;
		struct pollfd pfd = {.fd = client_fd(c), .events = POLLIN};
		poll(&pfd, 1, 10);
		if (client_pump(c, &err) < 0)
			return false;
	}
	return false;
}

static void test_attach_replays_then_streams(void **state)
{
	struct fixture *fx = *state;
	struct tv_err err;
	struct sink a = {{0}}, b = {{0}};
	struct tv_client *ca, *cb;

	guest_says(fx, "boot message\r\nlogin: ");
	/* Let the server take it in before anyone attaches. */
	assert_server_alive(fx);
	ca = client_connect_path(fx->path, "fake", &err);
	cb = client_connect_path(fx->path, "fake", &err);
	assert_non_null(ca);
	assert_non_null(cb);
	client_set_handlers(ca, &sink_handlers, &a);
	client_set_handlers(cb, &sink_handlers, &b);
	assert_int_equal(client_attach(ca, false, PROTO_CONSOLE_PRIMARY, 24, 80, &err), 0);
	assert_int_equal(client_attach(cb, true, PROTO_CONSOLE_PRIMARY, 30, 100, &err), 0);
	/* Both get the screen as it was. */
	assert_true(sink_has(ca, &a, "boot message"));
	assert_true(sink_has(cb, &b, "login:"));
	/* Keys from the read-write client reach the guest; its echo reaches both. */
	assert_int_equal(client_input(ca, "root\r", 5, &err), 0);
	assert_true(sink_has(ca, &a, "root"));
	assert_true(sink_has(cb, &b, "root"));
	/* Keys from the read-only client never reach it. */
	assert_int_equal(client_input(cb, "evil", 4, &err), 0);
	assert_server_alive(fx);
	pthread_mutex_lock(&fx->lock);
	assert_null(memmem(fx->guest_in.data, fx->guest_in.len, "evil", 4));
	pthread_mutex_unlock(&fx->lock);
	struct proto_status st;
	assert_int_equal(client_status(ca, &st, &err), 0);
	assert_int_equal(st.clients, 2);
	client_close(ca);
	client_close(cb);
	proto_buf_free(&a.got);
	proto_buf_free(&b.got);
}

/* The size the guest is told (the VM process tells hvc0's guest): a
 * read-write client's window on attach and on WINSIZE; a read-only
 * client's never. */
static void expect_resizes(struct fixture *fx, int n, int rows, int cols)
{
	pthread_mutex_lock(&fx->lock);
	assert_int_equal(fx->resizes, n);
	if (n > 0) {
		assert_int_equal(fx->port, CONSOLE_SERIAL);
		assert_int_equal(fx->rows, rows);
		assert_int_equal(fx->cols, cols);
	}
	pthread_mutex_unlock(&fx->lock);
}

static void test_sizes_reach_the_guest(void **state)
{
	struct fixture *fx = *state;
	struct tv_err err;
	struct sink a = {{0}}, b = {{0}};
	struct tv_client *ro, *rw;
	struct proto_status st;

	ro = client_connect_path(fx->path, "fake", &err);
	rw = client_connect_path(fx->path, "fake", &err);
	assert_non_null(ro);
	assert_non_null(rw);
	client_set_handlers(ro, &sink_handlers, &a);
	client_set_handlers(rw, &sink_handlers, &b);
	assert_int_equal(client_attach(ro, true, PROTO_CONSOLE_PRIMARY, 30, 100, &err), 0);
	assert_int_equal(client_winsize(ro, 31, 101, &err), 0);
	assert_int_equal(client_status(ro, &st, &err), 0); /* after the WINSIZE */
	expect_resizes(fx, 0, 0, 0);
	assert_int_equal(client_attach(rw, false, PROTO_CONSOLE_PRIMARY, 33, 111, &err), 0);
	expect_resizes(fx, 1, 33, 111);
	assert_int_equal(client_winsize(rw, 40, 120, &err), 0);
	assert_int_equal(client_status(rw, &st, &err), 0);
	expect_resizes(fx, 2, 40, 120);
	client_close(ro);
	client_close(rw);
	proto_buf_free(&a.got);
	proto_buf_free(&b.got);
}

/* Reads console output until the redraw after "the end" (the last frame
 * ends by showing the cursor), feeding it to term where one is given.
 * Returns the console bytes read. */
static size_t read_to_redraw(int fd, struct proto_buf *in, struct console_buf *term)
{
	struct proto_buf seen = {0};
	struct proto_frame f;
	uint8_t *p = xmalloc(PROTO_MAX_PAYLOAD);
	size_t total = 0;
	int type;

	while ((type = raw_recv(fd, in, &f, p, PROTO_MAX_PAYLOAD)) > 0) {
		if (type != PROTO_CONSOLE)
			continue;
		total += f.len;
		if (term)
			console_buf_feed(term, f.payload, f.len);
		proto_buf_append(&seen, f.payload, f.len);
		if (seen.len > 64 && memmem(seen.data + seen.len - MIN(seen.len, 4096),
					    MIN(seen.len, 4096), "the end", 7) &&
		    memmem(seen.data + seen.len - 16, 16, "\033[?25h", 6))
			break;
		if (seen.len > 1 << 20)
			proto_buf_consume(&seen, seen.len - 8192);
	}
	assert_true(type > 0);
	free(p);
	proto_buf_free(&seen);
	return total;
}

/* A client that does not keep up with the guest skips output instead of
 * making the VM process hold it all, and is redrawn once it catches up. */
static void test_slow_client_skips_then_redraws(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0};
	char chunk[65536];
	int fd = raw_connect(fx);

	raw_hello(fd, &in);
	raw_send(fd, PROTO_ATTACH, "\0\0\0\x18\0\x50", 6);
	memset(chunk, 'x', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	/* 6 MiB while the client reads nothing: more than its backlog may hold. */
	for (int i = 0; i < 96; i++) {
		guest_says(fx, chunk);
		if (i % 16 == 15)
			assert_server_alive(fx);
	}
	guest_says(fx, "\r\nthe end\r\n");
	assert_server_alive(fx);
	/* Now it reads: everything queued, then a redraw with the last screen. */
	size_t total = read_to_redraw(fd, &in, NULL);
	/* Less than the guest wrote: the rest was skipped, not buffered. */
	assert_true(total < 96 * (sizeof(chunk) - 1));
	close(fd);
	proto_buf_free(&in);
}

/* A client that skipped output gets, once it has caught up, the lines it
 * missed and the screen, not the whole scrollback again: every line lands in
 * its own scrollback once, in order. */
static void test_caught_up_client_gets_each_line_once(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in = {0}, shown = {0};
	struct console_buf *term = console_buf_new(24, 80, 1000);
	char line[32], *fill = xmalloc(65536);
	int fd = raw_connect(fx), next = 0;

	raw_hello(fd, &in);
	raw_send(fd, PROTO_ATTACH, "\0\0\0\x18\0\x50", 6);
	for (int i = 0; i < 50; i++) { /* 26 of them scroll off while it reads */
		snprintf(line, sizeof(line), "line %06d\r\n", i);
		guest_says(fx, line);
	}
	/* 1.5 MiB of attribute changes (no line) while it reads nothing: it
	 * skips, having seen 26 lines pushed off the screen. */
	for (int i = 0; i < 65535 / 3 * 3; i += 3)
		memcpy(fill + i, "\033[m", 3);
	fill[65535 / 3 * 3] = '\0';
	for (int i = 0; i < 24; i++)
		guest_says(fx, fill);
	assert_server_alive(fx);
	for (int i = 50; i < 80; i++) {
		snprintf(line, sizeof(line), "line %06d\r\n", i);
		guest_says(fx, line);
	}
	guest_says(fx, "the end");
	assert_server_alive(fx);
	read_to_redraw(fd, &in, term);
	/* The client's terminal: scrollback and screen hold lines 0 to 79, each
	 * once, in order. */
	console_buf_render(term, 24, &shown);
	for (const char *q = (const char *)shown.data;
	     (q = memmem(q, shown.len - (size_t)(q - (const char *)shown.data), "line ", 5)) != NULL;
	     q += 5) {
		assert_int_equal(atoi(q + 5), next);
		next++;
	}
	assert_int_equal(next, 80);
	close(fd);
	free(fill);
	console_buf_free(term);
	proto_buf_free(&in);
	proto_buf_free(&shown);
}

/* A raw client attached at 24x80 that asked for pacing: its connection,
 * its terminal, a buffer for one frame. */
struct paced {
	int fd;
	struct proto_buf in;
	struct console_buf *term;
	uint8_t *p;
};

/* Attaches and asks for pacing; what came before the reply (the replay)
 * goes to the terminal. */
static void paced_open(struct fixture *fx, struct paced *pc)
{
	struct proto_frame f;
	int type;

	*pc = (struct paced){.fd = raw_connect(fx), .term = console_buf_new(24, 80, 1000),
			     .p = xmalloc(PROTO_MAX_PAYLOAD)};
	raw_hello(pc->fd, &pc->in);
	raw_send(pc->fd, PROTO_ATTACH, "\0\0\0\x18\0\x50", 6);
	raw_send(pc->fd, PROTO_PACE, "\1", 1);
	while ((type = raw_recv(pc->fd, &pc->in, &f, pc->p, PROTO_MAX_PAYLOAD)) != PROTO_OK) {
		assert_true(type > 0);
		if (type == PROTO_CONSOLE)
			console_buf_feed(pc->term, f.payload, f.len);
	}
}

static void paced_close(struct paced *pc)
{
	close(pc->fd);
	free(pc->p);
	console_buf_free(pc->term);
	proto_buf_free(&pc->in);
}

/* The guest prints "line N" and tail for N from first, count lines, in one
 * piece; returns its bytes. */
static size_t guest_says_lines(struct fixture *fx, int first, int count, const char *tail)
{
	struct proto_buf text = {0};
	char line[128];
	size_t len;

	for (int i = first; i < first + count; i++) {
		snprintf(line, sizeof(line), "line %d%s\r\n", i, tail);
		proto_buf_append(&text, line, strlen(line));
	}
	len = text.len;
	proto_buf_append(&text, "", 1);
	guest_says(fx, (const char *)text.data);
	proto_buf_free(&text);
	return len;
}

/* Reads a paced client's frames into its terminal until the end of a
 * CONSOLE_SYNC (the cursor shown last); returns the CONSOLE bytes that came
 * first. */
static size_t read_to_sync(struct paced *pc)
{
	struct proto_frame f;
	size_t screens = 0;
	int type;

	for (;;) {
		type = raw_recv(pc->fd, &pc->in, &f, pc->p, PROTO_MAX_PAYLOAD);
		assert_true(type > 0);
		if (type != PROTO_CONSOLE && type != PROTO_CONSOLE_SYNC)
			continue;
		console_buf_feed(pc->term, f.payload, f.len);
		if (type == PROTO_CONSOLE)
			screens += f.len;
		else if (f.len >= 6 && memcmp(f.payload + f.len - 6, "\033[?25h", 6) == 0)
			return screens;
	}
}

/* The numbers after "line " on the client's terminal, scrollback and
 * screen, in order; how many. */
static int lines_shown(struct console_buf *term, int *nums, int max)
{
	struct proto_buf shown = {0};
	int n = 0;

	console_buf_render(term, 24, &shown);
	for (const char *q = (const char *)shown.data;
	     n < max && (q = memmem(q, shown.len - (size_t)(q - (const char *)shown.data), "line ",
				    5)) != NULL;
	     q += 5)
		nums[n++] = atoi(q + 5);
	proto_buf_free(&shown);
	return n;
}

/* A paced client (the interface's pane) gets a trickle byte for byte, a
 * flood as screens, and once the flood is over the lines it pushed: every
 * line reaches its scrollback once, in order, for a fraction of the bytes. */
static void test_paced_client_gets_screens_then_each_line_once(void **state)
{
	struct fixture *fx = *state;
	struct paced pc;
	struct proto_frame f;
	int nums[200], n;
	size_t screens, flood;

	paced_open(fx, &pc);
	for (int i = 0; i < 10; i++)
		guest_says_lines(fx, i, 1, "");
	/* The trickle comes as it was printed. */
	for (bool seen = false; !seen;) {
		assert_int_equal(raw_recv(pc.fd, &pc.in, &f, pc.p, PROTO_MAX_PAYLOAD), PROTO_CONSOLE);
		console_buf_feed(pc.term, f.payload, f.len);
		seen = memmem(f.payload, f.len, "line 9\r\n", 8) != NULL;
	}
	/* 80 lines of 75 bytes at once: more than 4 KiB in a frame. The
	 * console keeps 100 lines of scrollback: all of them. */
	flood = guest_says_lines(fx, 10, 80,
				 " ................................................................");
	screens = read_to_sync(&pc);
	assert_true(screens > 0 && screens < flood);
	n = lines_shown(pc.term, nums, 200);
	assert_int_equal(n, 90);
	for (int i = 0; i < n; i++)
		assert_int_equal(nums[i], i);
	paced_close(&pc);
}

/* A flood of 5000 lines reaches a paced client as a few screens and the
 * lines the console still holds, in order, the last one last. */
static void test_paced_client_skips_a_flood(void **state)
{
	struct fixture *fx = *state;
	struct paced pc;
	int nums[200], n;
	size_t screens;

	paced_open(fx, &pc);
	for (int i = 0; i < 5000; i += 500)
		guest_says_lines(fx, i, 500, "");
	screens = read_to_sync(&pc);
	assert_true(screens < 5000 * 10 / 4);
	n = lines_shown(pc.term, nums, 200);
	assert_true(n > 100);
	for (int i = 1; i < n; i++)
		assert_true(nums[i] == nums[i - 1] + 1);
	assert_int_equal(nums[n - 1], 4999);
	paced_close(&pc);
}

/* A paced client that stops reading (a stalled link) with a screen due:
 * the VM process looks again later and later, it does not spin. */
static void test_paced_client_that_stops_reading(void **state)
{
	struct fixture *fx = *state;
	struct paced pc;
	unsigned long r0;

	paced_open(fx, &pc);
	for (int k = 0; k < 3; k++) { /* screens go until its socket is full */
		guest_says_lines(fx, k * 2000, 2000, "");
		usleep(50000);
	}
	usleep(1000000);
	r0 = fx->rounds;
	usleep(500000);
	/* Every 2 ms would be 250 rounds; the limit of a round is 100 ms. */
	assert_true(fx->rounds - r0 < 40);
	assert_server_alive(fx);
	paced_close(&pc);
}

/* Pacing turned off while screens are sent (the user scrolls back): the
 * lines missed come before the reply. A bad payload is refused. */
static void test_pace_off_syncs_before_the_reply(void **state)
{
	struct fixture *fx = *state;
	struct paced pc;
	struct proto_frame f;
	int type;
	bool synced = false;

	paced_open(fx, &pc);
	guest_says_lines(fx, 0, 2000, "");
	/* a screen */
	assert_int_equal(raw_recv(pc.fd, &pc.in, &f, pc.p, PROTO_MAX_PAYLOAD), PROTO_CONSOLE);
	raw_send(pc.fd, PROTO_PACE, "\0", 1);
	while ((type = raw_recv(pc.fd, &pc.in, &f, pc.p, PROTO_MAX_PAYLOAD)) != PROTO_OK) {
		assert_true(type > 0);
		synced |= type == PROTO_CONSOLE_SYNC;
	}
	assert_true(synced);
	raw_send(pc.fd, PROTO_PACE, "\2", 1);
	assert_int_equal(expect_error(pc.fd, &pc.in), PROTO_E_MALFORMED);
	raw_send(pc.fd, PROTO_PACE, "", 0);
	assert_int_equal(expect_error(pc.fd, &pc.in), PROTO_E_MALFORMED);
	paced_close(&pc);
}

/* Events reach subscribed and attached clients, and no one else: the
 * interface's model follows every VM with one quiet connection each. */
static void test_subscribe_gets_events(void **state)
{
	struct fixture *fx = *state;
	struct proto_buf in_sub = {0}, in_plain = {0}, in_act = {0};
	struct proto_frame f;
	uint8_t p[512], ev;
	char text[128];
	int sub = raw_connect(fx), plain = raw_connect(fx), act = raw_connect(fx);

	raw_hello(sub, &in_sub);
	raw_hello(plain, &in_plain);
	raw_hello(act, &in_act);
	/* A SUBSCRIBE with a payload is refused, and subscribes nobody. */
	raw_send(plain, PROTO_SUBSCRIBE, "x", 1);
	assert_int_equal(expect_error(plain, &in_plain), PROTO_E_MALFORMED);
	raw_send(sub, PROTO_SUBSCRIBE, NULL, 0);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_OK);
	/* Twice is the same as once: one OK, and later one event per change. */
	raw_send(sub, PROTO_SUBSCRIBE, NULL, 0);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_OK);

	/* Another client acts; the subscriber hears of it. */
	raw_send(act, PROTO_PAUSE, NULL, 0);
	assert_int_equal(raw_recv(act, &in_act, &f, p, sizeof(p)), PROTO_OK);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_EVENT);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_int_equal(ev, PROTO_EV_PAUSED);
	raw_send(act, PROTO_RESUME, NULL, 0);
	assert_int_equal(raw_recv(act, &in_act, &f, p, sizeof(p)), PROTO_OK);
	raw_send(act, PROTO_SNAPSHOT_TAKE, "tag=s1\n", 7);
	assert_int_equal(raw_recv(act, &in_act, &f, p, sizeof(p)), PROTO_SNAPSHOT_REPLY);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_EVENT);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_int_equal(ev, PROTO_EV_RESUMED);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_EVENT);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_int_equal(ev, PROTO_EV_SNAPSHOT);
	assert_string_equal(text, "take s1");

	/* The subscriber acting itself gets its reply first, then the event. */
	raw_send(sub, PROTO_SNAPSHOT_DELETE, "tag=s1\n", 7);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_SNAPSHOT_REPLY);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_EVENT);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_string_equal(text, "delete s1");

	/* Neither the client that only said hello nor the one that acted
	 * without subscribing got any event: their next frame answers their
	 * next request. */
	raw_send(plain, PROTO_STATUS, NULL, 0);
	assert_int_equal(raw_recv(plain, &in_plain, &f, p, sizeof(p)), PROTO_STATUS_REPLY);
	raw_send(act, PROTO_STATUS, NULL, 0);
	assert_int_equal(raw_recv(act, &in_act, &f, p, sizeof(p)), PROTO_STATUS_REPLY);
	/* Nor does a subscription attach: no console output reaches it. */
	guest_says(fx, "console text\r\n");
	assert_server_alive(fx);
	raw_send(sub, PROTO_STATUS, NULL, 0);
	assert_int_equal(raw_recv(sub, &in_sub, &f, p, sizeof(p)), PROTO_STATUS_REPLY);
	assert_int_equal(in_sub.len, 0);

	/* An attached client gets events too, between its console frames. */
	raw_send(act, PROTO_ATTACH, "\0\0\0\x18\0\x50", 6);
	assert_int_equal(raw_recv(act, &in_act, &f, p, sizeof(p)), PROTO_ATTACHED);
	raw_send(sub, PROTO_PAUSE, NULL, 0);
	int type;
	while ((type = raw_recv(act, &in_act, &f, p, sizeof(p))) == PROTO_CONSOLE)
		;
	assert_int_equal(type, PROTO_EVENT);
	assert_int_equal(proto_get_event(&f, &ev, text, sizeof(text)), 0);
	assert_int_equal(ev, PROTO_EV_PAUSED);
	/* Subscribing is allowed while paused, as in any state. */
	raw_send(plain, PROTO_SUBSCRIBE, NULL, 0);
	assert_int_equal(raw_recv(plain, &in_plain, &f, p, sizeof(p)), PROTO_OK);
	close(sub);
	close(plain);
	close(act);
	proto_buf_free(&in_sub);
	proto_buf_free(&in_plain);
	proto_buf_free(&in_act);
}

static void test_too_many_clients(void **state)
{
	struct fixture *fx = *state;
	struct tv_client *c[CONTROL_MAX_CLIENTS];
	struct tv_err err;

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		c[i] = client_connect_path(fx->path, "fake", &err);
		assert_non_null(c[i]);
	}
	assert_null(client_connect_path(fx->path, "fake", &err));
	assert_non_null(strstr(err.msg, "too many clients"));
	client_close(c[0]);
	/* One leaves, one more may come. */
	for (int i = 0; i < 50; i++) {
		struct tv_client *x = client_connect_path(fx->path, "fake", &err);
		if (x) {
			c[0] = x;
			break;
		}
		usleep(10000);
	}
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		client_close(c[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_is_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_before_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_length_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_frame_then_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_payloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_reach_the_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_replays_then_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_skips_then_redraws, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caught_up_client_gets_each_line_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_paced_client_gets_screens_then_each_line_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_paced_client_skips_a_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pace_off_syncs_before_the_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paced_client_that_stops_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_gets_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
