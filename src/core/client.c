#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/core/client.h"
#include "common/util.h"

struct tv_client {
	int fd;
	char *name;
	struct proto_buf in;
	struct proto_hello server;
	const struct client_handlers *h;
	void *ctx;
	bool exited;           /* PROTO_EV_EXITED seen */
	char exit_reason[256];
};

int client_fd(const struct tv_client *c)
{
	return c->fd;
}

const struct proto_hello *client_server(const struct tv_client *c)
{
	return &c->server;
}

void client_set_handlers(struct tv_client *c, const struct client_handlers *h, void *ctx)
{
	c->h = h;
	c->ctx = ctx;
}

void client_close(struct tv_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	proto_buf_free(&c->in);
	free(c->name);
	free(c);
}

int client_send_frame(struct tv_client *c, uint16_t type, const void *payload, size_t len,
		      struct tv_err *err)
{
	struct proto_buf b = {0};
	int rc = 0;

	if (proto_put_frame(&b, type, payload, len) < 0)
		return tv_errf(err, "%s: message too long", proto_type_name(type));
	if (send(c->fd, b.data, b.len, MSG_NOSIGNAL) != (ssize_t)b.len) {
		/* A blocking stream socket sends all of it or fails. */
		rc = tv_errno(err, "VM %s: connection lost", c->name);
	}
	proto_buf_free(&b);
	return rc;
}

/* Frames that are not the reply being waited for: console output, events and
 * answers to requests that were not waited for. */
static void dispatch(struct tv_client *c, const struct proto_frame *f)
{
	uint8_t ev;
	char text[256];

	if (f->type == PROTO_CONSOLE) {
		if (c->h && c->h->console)
			c->h->console(c->ctx, f->payload, f->len);
	} else if (f->type == PROTO_CONSOLE_SYNC) {
		if (c->h && c->h->sync)
			c->h->sync(c->ctx, f->payload, f->len);
		else if (c->h && c->h->console)
			c->h->console(c->ctx, f->payload, f->len);
	} else if (f->type == PROTO_EVENT && proto_get_event(f, &ev, text, sizeof(text)) == 0) {
		if (ev == PROTO_EV_EXITED) {
			c->exited = true;
			snprintf(c->exit_reason, sizeof(c->exit_reason), "%s", text);
		}
		if (c->h && c->h->event)
			c->h->event(c->ctx, ev, text);
	}
}

/* Reads once (waiting up to timeout_ms, -1 forever). 1: got bytes, 0: timed
 * out, -1: the connection ended. */
static int read_some(struct tv_client *c, int timeout_ms, struct tv_err *err)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	uint8_t buf[16384]; /* small: the echo of a key is drawn after at most this much more */
	ssize_t n;
	int rc;

	/* Without a wait, the read alone says whether there was anything (the
	 * interface pumps each console's connection when poll saw it ready). */
	if (timeout_ms != 0) {
		do
			rc = poll(&pfd, 1, timeout_ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0)
			return 0;
	}
	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return timeout_ms != 0;
	if (n <= 0) {
		if (c->exited)
			tv_errf(err, "VM %s: %s", c->name, c->exit_reason);
		else if (n == 0)
			tv_errf(err, "VM %s: the VM process closed the connection", c->name);
		else
			tv_errno(err, "VM %s: connection lost", c->name);
		return -1;
	}
	proto_buf_append(&c->in, buf, (size_t)n);
	return 1;
}

/* The next whole frame from the buffer; -1 when the server's stream is bad. */
static int next_frame(struct tv_client *c, struct proto_frame *f, size_t *used, struct tv_err *err)
{
	uint32_t code;
	int rc = proto_parse(c->in.data, c->in.len, f, used, &code);

	if (rc < 0)
		return tv_errf(err, "VM %s: bad message from the VM process (%s)", c->name,
			       proto_error_name(code));
	return rc;
}

static void dispatch_buffered(struct tv_client *c)
{
	struct proto_frame f;
	size_t used;
	uint32_t code;

	while (proto_parse(c->in.data, c->in.len, &f, &used, &code) == 1) {
		dispatch(c, &f);
		proto_buf_consume(&c->in, used);
	}
}

/* True when f answers a request of type req. */
static bool answers(const struct proto_frame *f, uint16_t req)
{
	uint16_t r;
	uint32_t code;
	char msg[8];

	if (proto_get_ok(f, &r) == 0 || proto_get_error(f, &code, &r, msg, sizeof(msg)) == 0)
		return r == req || r == 0;
	switch (f->type) {
	case PROTO_HELLO_REPLY:
		return req == PROTO_HELLO;
	case PROTO_STATUS_REPLY:
		return req == PROTO_STATUS;
	case PROTO_ATTACHED:
		return req == PROTO_ATTACH;
	case PROTO_SNAPSHOT_REPLY:
		return req >= PROTO_SNAPSHOT_FIRST && req <= PROTO_SNAPSHOT_LAST;
	case PROTO_NET_REPLY:
		return req == PROTO_NET_INFO;
	}
	return false;
}

/* Waits for the reply to req, dispatching whatever comes before it. The reply
 * is copied to reply (payload in *payload, to free). An ERROR reply becomes -1
 * with its message. */
static int wait_reply(struct tv_client *c, uint16_t req, int timeout_ms, struct proto_frame *reply,
		      uint8_t **payload, struct tv_err *err)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct proto_frame f;
		size_t used;
		int rc;

		while ((rc = next_frame(c, &f, &used, err)) == 1) {
			if (answers(&f, req)) {
				uint32_t code;
				uint16_t r;
				char msg[TV_ERR_MAX - 64];
				if (proto_get_error(&f, &code, &r, msg, sizeof(msg)) == 0) {
					proto_buf_consume(&c->in, used);
					return tv_errf(err, "VM %s: %s", c->name, msg);
				}
				*reply = f;
				*payload = xmalloc(f.len);
				memcpy(*payload, f.payload, f.len);
				reply->payload = *payload;
				proto_buf_consume(&c->in, used);
				return 0;
			}
			dispatch(c, &f);
			proto_buf_consume(&c->in, used);
		}
		if (rc < 0)
			return -1;
		uint64_t now = monotonic_ns();
		if (now >= deadline)
			return tv_errf(err, "VM %s: no reply to %s within %d ms", c->name,
				       proto_type_name(req), timeout_ms);
		rc = read_some(c, (int)((deadline - now) / 1000000) + 1, err);
		if (rc < 0)
			return -1;
	}
}

int client_request(struct tv_client *c, uint16_t type, const void *payload, size_t len,
		   struct proto_frame *reply, uint8_t **rpayload, struct tv_err *err)
{
	return client_request_timeout(c, type, payload, len, CLIENT_REPLY_TIMEOUT_MS, reply,
				      rpayload, err);
}

int client_request_timeout(struct tv_client *c, uint16_t type, const void *payload, size_t len,
			   int timeout_ms, struct proto_frame *reply, uint8_t **rpayload,
			   struct tv_err *err)
{
	struct proto_frame f;
	uint8_t *p = NULL;
	int rc;

	if (client_send_frame(c, type, payload, len, err) < 0)
		return -1;
	rc = wait_reply(c, type, timeout_ms, reply ? reply : &f, rpayload ? rpayload : &p, err);
	free(p);
	/* What came with the reply (the console replay after ATTACHED) is
	 * handed over now: poll() would not report it again. */
	if (rc == 0)
		dispatch_buffered(c);
	return rc;
}

static void refusal(struct tv_client *c, struct tv_err *err)
{
	struct proto_frame f;
	struct tv_err ignored;
	size_t used;
	uint32_t code;
	uint16_t req;
	char msg[TV_ERR_MAX - 64];

	while (read_some(c, 100, &ignored) > 0)
		;
	if (next_frame(c, &f, &used, &ignored) == 1 &&
	    proto_get_error(&f, &code, &req, msg, sizeof(msg)) == 0)
		tv_errf(err, "VM %s: %s", c->name, msg);
}

struct tv_client *client_connect_path(const char *path, const char *name, struct tv_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct tv_client *c;
	struct proto_frame f;
	uint8_t *payload = NULL, ver[4] = {0, 0, 0, PROTO_VERSION};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return tv_errf(err, "%s: socket path too long", path), NULL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return tv_errno(err, "socket"), NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			tv_errf(err, "VM %s is not running", name);
		else
			tv_errno(err, "VM %s: cannot connect to %s", name, path);
		close(fd);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->name = xstrdup(name);
	if (client_request(c, PROTO_HELLO, ver, sizeof(ver), &f, &payload, err) < 0) {
		/* A refusal (not the owner, too many clients) may have cut our
		 * hello short: its message is still there to read. */
		refusal(c, err);
		client_close(c);
		return NULL;
	}
	if (proto_get_hello_reply(&f, &c->server) < 0) {
		if (payload != NULL)
			tv_errf(err, "VM %s: bad hello from the VM process", name);
		free(payload);
		client_close(c);
		return NULL;
	}
	free(payload);
	return c;
}

struct tv_client *client_connect(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	char *path = paths_vm_runtime(p, name, "sock");
	struct tv_client *c = client_connect_path(path, name, err);

	free(path);
	return c;
}

int client_status(struct tv_client *c, struct proto_status *st, struct tv_err *err)
{
	struct proto_frame f;
	uint8_t *payload = NULL;
	int rc = client_request(c, PROTO_STATUS, NULL, 0, &f, &payload, err);

	if (rc == 0 && proto_get_status(&f, st) < 0)
		rc = tv_errf(err, "VM %s: malformed status reply", c->name);
	free(payload);
	return rc;
}

int client_stop(struct tv_client *c, uint32_t timeout_ms, struct tv_err *err)
{
	uint8_t p[4] = {timeout_ms >> 24, timeout_ms >> 16, timeout_ms >> 8, timeout_ms};

	return client_request(c, PROTO_STOP, p, sizeof(p), NULL, NULL, err);
}

int client_wait_exit(struct tv_client *c, int timeout_ms, struct tv_err *err)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	struct tv_err ignored;

	for (;;) {
		uint64_t now = monotonic_ns();
		if (now >= deadline)
			return tv_errf(err, "VM %s still runs after %d ms", c->name, timeout_ms);
		if (client_pump(c, &ignored) < 0)
			return 0;
		if (read_some(c, (int)((deadline - now) / 1000000) + 1, &ignored) < 0)
			return 0;
	}
}

int client_attach(struct tv_client *c, bool readonly, uint8_t console, uint16_t rows,
		  uint16_t cols, struct tv_err *err)
{
	uint8_t p[6] = {readonly ? PROTO_ATTACH_RO : PROTO_ATTACH_RW, console, rows >> 8, rows,
			cols >> 8, cols};

	return client_request(c, PROTO_ATTACH, p, sizeof(p), NULL, NULL, err);
}

int client_input(struct tv_client *c, const void *bytes, size_t len, struct tv_err *err)
{
	const uint8_t *p = bytes;

	while (len > 0) {
		size_t n = MIN(len, (size_t)PROTO_MAX_PAYLOAD);
		if (client_send_frame(c, PROTO_INPUT, p, n, err) < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int client_winsize(struct tv_client *c, uint16_t rows, uint16_t cols, struct tv_err *err)
{
	uint8_t p[4] = {rows >> 8, rows, cols >> 8, cols};

	return client_send_frame(c, PROTO_WINSIZE, p, sizeof(p), err);
}

int client_pace(struct tv_client *c, bool on, struct tv_err *err)
{
	uint8_t p = on;

	return client_send_frame(c, PROTO_PACE, &p, 1, err);
}

int client_pump(struct tv_client *c, struct tv_err *err)
{
	struct proto_frame f;
	size_t used;
	int rc;

	/* Whatever a request left in the buffer first, then one read. */
	for (int round = 0; round < 2; round++) {
		while ((rc = next_frame(c, &f, &used, err)) == 1) {
			dispatch(c, &f);
			proto_buf_consume(&c->in, used);
		}
		if (rc < 0)
			return -1;
		if (round == 0 && read_some(c, 0, err) < 0)
			return -1;
	}
	return 0;
}

int client_verb(const struct tv_paths *p, const char *name, uint16_t type, const void *payload,
		size_t len, struct tv_err *err)
{
	struct tv_client *c = client_connect(p, name, err);
	int rc;

	if (c == NULL)
		return -1;
	rc = client_request(c, type, payload, len, NULL, NULL, err);
	client_close(c);
	return rc;
}

char *client_oneshot_net_info(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	struct tv_client *c = client_connect(p, name, err);
	struct proto_frame f;
	uint8_t *payload = NULL;
	char *text = NULL;

	if (c == NULL)
		return NULL;
	if (client_request(c, PROTO_NET_INFO, NULL, 0, &f, &payload, err) == 0) {
		text = xstrndup_len((const char *)f.payload, f.len);
		free(payload);
	}
	client_close(c);
	return text;
}

int client_oneshot_status(const struct tv_paths *p, const char *name, struct proto_status *st,
			  struct tv_err *err)
{
	struct tv_client *c = client_connect(p, name, err);
	int rc;

	if (c == NULL)
		return -1;
	rc = client_status(c, st, err);
	client_close(c);
	return rc;
}
