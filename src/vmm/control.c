#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "src/vmm/control.h"
#include "common/util.h"

#define READ_CHUNK 16384
#define NOT_ATTACHED (-1)

struct control_client {
	int fd;
	bool hello;
	int attach;   /* NOT_ATTACHED or a proto_attach_mode */
	bool closing; /* a fatal protocol error: send what is queued, then hang up */
	bool dead;    /* to be closed by the main loop (never closed from a callback) */
	bool lagging; /* console output skipped; redrawn once its backlog is sent */
	uint64_t lag_mark; /* the console's lines pushed when it began to skip (0: redraw all) */
	bool subscribed; /* EVENT frames without being attached (SUBSCRIBE) */
	uint16_t rows; /* its window, for redraws */
	/* Pacing (PROTO_PACE): a client that keeps its own screen is sent that
	 * screen at most once a frame while the guest prints more than a
	 * screenful a frame, and, once the flood is over, the lines pushed
	 * meanwhile (from pace_mark) in one PROTO_CONSOLE_SYNC. */
	bool pace;        /* it asked to be paced */
	bool paced;       /* being sent screens now */
	bool frame_due;   /* the screen changed since the last one it was sent */
	uint64_t pace_mark; /* the console's lines pushed when its screens began */
	uint64_t frame_ns;  /* when its last screen went */
	uint64_t input_ns;  /* when it last typed: its echo waits for no frame */
	uint64_t win_ns;    /* the start of the frame being counted */
	size_t win_bytes;   /* output in that frame */
	unsigned quiet;     /* frames in a row with less than a screenful */
	unsigned port; /* the console it is attached to */
	struct proto_buf in, out;
};

struct control {
	int listen_fd;
	char *path;
	char *name;
	struct console_buf *cb[CONSOLE_NPORTS];
	unsigned (*port)(void *vm, uint8_t console);
	const struct verb *verbs;
	void *vm;
	uint8_t (*state)(void *vm);
	void (*resized)(void *vm, unsigned port, int rows, int cols);
	struct control_client *clients[CONTROL_MAX_CLIENTS];
	/* Which client each pollfd after the first belongs to (set by control_pollfds). */
	struct control_client *polled[CONTROL_MAX_CLIENTS];
	size_t npolled;
};

struct control *control_new(const struct control_conf *conf, struct tv_err *err)
{
	const char *path = conf->path;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct control *c;
	mode_t old;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return tv_errf(err, "%s: socket path too long (at most %zu bytes)", path,
			       sizeof(sa.sun_path) - 1),
		       NULL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return tv_errno(err, "socket"), NULL;
	unlink(path);
	/* Bind under a umask that makes the socket 0600 from its first moment. */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		tv_errno(err, "%s", path);
		close(fd);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->listen_fd = fd;
	c->path = xstrdup(path);
	c->name = xstrdup(conf->name);
	memcpy(c->cb, conf->cb, sizeof(c->cb));
	c->port = conf->port;
	c->verbs = conf->verbs;
	c->vm = conf->vm;
	c->state = conf->state;
	c->resized = conf->resized;
	return c;
}

static void pace_tick(struct control *c, uint64_t now);

static void client_close(struct control *c, size_t i)
{
	struct control_client *cl = c->clients[i];

	close(cl->fd);
	proto_buf_free(&cl->in);
	proto_buf_free(&cl->out);
	free(cl);
	c->clients[i] = NULL;
}

void control_free(struct control *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i])
			client_close(c, i);
	close(c->listen_fd);
	free(c->name);
	free(c->path);
	free(c);
}

/* Refuses a connection with one error frame, sent if the socket takes it. */
static void refuse(int fd, uint32_t code, const char *why)
{
	struct proto_buf b = {0};

	proto_put_error(&b, code, 0, "%s", why);
	(void)!write(fd, b.data, b.len);
	proto_buf_free(&b);
	close(fd);
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return false;
	return cred.uid == getuid() || cred.uid == 0;
}

static void control_accept(struct control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	size_t i;

	if (fd < 0)
		return;
	if (!peer_allowed(fd)) {
		refuse(fd, PROTO_E_FAILED, "permission denied: not the VM's owner");
		return;
	}
	for (i = 0; i < CONTROL_MAX_CLIENTS && c->clients[i]; i++)
		;
	if (i == CONTROL_MAX_CLIENTS) {
		refuse(fd, PROTO_E_BUSY, "too many clients");
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){CONTROL_SNDBUF}, sizeof(int));
	c->clients[i] = xcalloc(1, sizeof(struct control_client));
	c->clients[i]->fd = fd;
	c->clients[i]->attach = NOT_ATTACHED;
}

static void put_error(struct control_client *cl, uint32_t code, const struct proto_frame *f,
		      const char *msg)
{
	proto_put_error(&cl->out, code, f->type, "%s", msg);
}

enum verb_result control_verb_hello(struct verb_call *call)
{
	struct control_client *cl = call->cl;
	struct proto_hello h = {.version = PROTO_VERSION, .pid = (uint32_t)getpid()};
	uint32_t version;

	proto_get_u32(call->f, &version); /* its length was checked from the table */
	if (version != PROTO_VERSION) {
		call->code = PROTO_E_VERSION;
		return tv_errf(&call->err, "protocol version %u not supported; this server speaks %u",
			       version, PROTO_VERSION);
	}
	snprintf(h.program, sizeof(h.program), "termvisor %s", PACKAGE_VERSION);
	cl->hello = true;
	proto_put_hello_reply(call->out, &h);
	return VERB_REPLIED;
}

/* The console redrawn for a client: its whole scrollback and screen, or,
 * for one that showed everything up to the point where the console had
 * pushed `since` lines, only the lines pushed after it and the screen. The
 * replay goes out as ordinary console frames (CONSOLE_SYNC for the lines a
 * paced client missed): to the client it is the screen being drawn, then
 * the live stream continues it. */
static void put_render(struct control *c, struct control_client *cl, uint64_t since, bool sync)
{
	struct proto_buf screen = {0};

	console_buf_render_since(c->cb[cl->port], cl->rows, since, &screen);
	if (sync)
		proto_put_console_sync(&cl->out, screen.data, screen.len);
	else
		proto_put_console(&cl->out, screen.data, screen.len);
	proto_buf_free(&screen);
}

static void put_replay_since(struct control *c, struct control_client *cl, uint64_t since)
{
	put_render(c, cl, since, false);
}

static void put_replay(struct control *c, struct control_client *cl)
{
	put_replay_since(c, cl, 0);
}

/* The console's screen takes the size, and the guest is told it where it
 * can be. */
static void console_resized(struct control *c, unsigned port, uint16_t rows, uint16_t cols)
{
	int crows, ccols;

	console_buf_resize(c->cb[port], rows, cols);
	console_buf_size(c->cb[port], &crows, &ccols);
	if (c->resized)
		c->resized(c->vm, port, crows, ccols);
}

enum verb_result control_verb_attach(struct verb_call *call)
{
	struct control *c = call->ctl;
	struct control_client *cl = call->cl;
	uint8_t mode, console;
	uint16_t rows, cols;
	int crows, ccols;
	unsigned port;

	proto_get_attach(call->f, &mode, &console, &rows, &cols);
	if (cl->attach != NOT_ATTACHED) {
		call->code = PROTO_E_STATE;
		return tv_errf(&call->err, "attach: already attached");
	}
	port = c->port ? c->port(c->vm, console) : CONSOLE_SERIAL;
	if (port >= CONSOLE_NPORTS || c->cb[port] == NULL) {
		call->code = PROTO_E_UNSUPPORTED;
		return tv_errf(&call->err, "attach: this VM has no console %u", console);
	}
	cl->port = port;
	/* The console takes the size of the latest read-write client, as a
	 * terminal takes the size of its window. */
	if (mode == PROTO_ATTACH_RW)
		console_resized(c, port, rows, cols);
	console_buf_size(c->cb[port], &crows, &ccols);
	cl->attach = mode;
	cl->rows = rows;
	cl->paced = cl->frame_due = false;
	proto_put_size(call->out, PROTO_ATTACHED, (uint16_t)crows, (uint16_t)ccols);
	put_replay(c, cl);
	return VERB_REPLIED;
}

enum verb_result control_verb_winsize(struct verb_call *call)
{
	struct control_client *cl = call->cl;
	uint16_t rows, cols;

	proto_get_size(call->f, &rows, &cols);
	if (cl->attach == PROTO_ATTACH_RW)
		console_resized(call->ctl, cl->port, rows, cols);
	cl->rows = rows;
	return VERB_OK;
}

enum verb_result control_verb_detach(struct verb_call *call)
{
	call->cl->attach = NOT_ATTACHED;
	call->cl->paced = call->cl->frame_due = false;
	return VERB_OK;
}

/* The lines a paced client missed, and the screen, as one frame: it is up
 * to date and gets every byte again. */
static void pace_end(struct control *c, struct control_client *cl)
{
	put_render(c, cl, cl->pace_mark, true);
	cl->paced = cl->frame_due = false;
}

enum verb_result control_verb_pace(struct verb_call *call)
{
	struct control_client *cl = call->cl;

	cl->pace = call->f->payload[0] == 1;
	/* A client that wants every line (its user reads the scrollback)
	 * gets those it missed before the reply. */
	if (!cl->pace && cl->paced)
		pace_end(call->ctl, cl);
	return VERB_OK;
}

/* Asking again changes nothing: a client is subscribed or it is not. */
enum verb_result control_verb_subscribe(struct verb_call *call)
{
	call->cl->subscribed = true;
	return VERB_OK;
}

/* Everything a row of the table says is checked here, before its handler:
 * hello first, the payload, attachment, the VM's state. */
static void handle_request(struct control *c, struct control_client *cl, const struct proto_frame *f)
{
	const struct verb *v = verb_find(c->verbs, f->type);
	struct verb_call call = {.ctl = c, .cl = cl, .vm = c->vm, .f = f, .out = &cl->out};
	char want[64];
	uint8_t state;
	enum verb_result r;

	if (v == NULL) {
		if (f->type >= PROTO_SNAPSHOT_FIRST && f->type <= PROTO_SNAPSHOT_LAST)
			proto_put_error(&cl->out, PROTO_E_UNSUPPORTED, f->type,
					"snapshot requests are not supported by this server");
		else
			proto_put_error(&cl->out, PROTO_E_UNKNOWN, f->type,
					"unknown request type 0x%04x", f->type);
		return;
	}
	if (f->type != PROTO_HELLO && !cl->hello) {
		proto_put_error(&cl->out, PROTO_E_HELLO, f->type,
				"send hello (protocol version %u) first", PROTO_VERSION);
		return;
	}
	if (verb_check_payload(v, f, &call.err) < 0) {
		put_error(cl, PROTO_E_MALFORMED, f, call.err.msg);
		return;
	}
	if (v->attach != VA_ANY && cl->attach == NOT_ATTACHED) {
		proto_put_error(&cl->out, PROTO_E_NOT_ATTACHED, f->type, "%s: attach first", v->name);
		return;
	}
	if (v->attach == VA_READ_WRITE && cl->attach == PROTO_ATTACH_RO) {
		proto_put_error(&cl->out, PROTO_E_READONLY, f->type, "%s: this client is read-only",
				v->name);
		return;
	}
	state = c->state ? c->state(c->vm) : PROTO_STATE_RUNNING;
	if (!(v->states & (1u << state))) {
		verb_states_text(v->states, want, sizeof(want));
		proto_put_error(&cl->out, PROTO_E_STATE, f->type, "%s: VM %s is %s; it must be %s",
				v->name, c->name, proto_state_name(state), want);
		return;
	}
	if (f->type == PROTO_INPUT)
		cl->input_ns = monotonic_ns();
	r = v->handler(&call);
	if (r == VERB_OK)
		proto_put_ok(&cl->out, f->type);
	else if (r == VERB_ERROR)
		put_error(cl, call.code ? call.code : PROTO_E_FAILED, f, call.err.msg);
}

/* Reads what the client sent and answers every whole frame. Returns -1 when the
 * connection is to be dropped at once. */
static int client_read(struct control *c, struct control_client *cl)
{
	uint8_t buf[READ_CHUNK];
	ssize_t n = read(cl->fd, buf, sizeof(buf));
	struct proto_frame f;
	size_t used;
	uint32_t code;
	int rc;

	if (n == 0)
		return -1; /* hung up, perhaps in the middle of a frame: nothing to do */
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	proto_buf_append(&cl->in, buf, (size_t)n);
	while (!cl->closing && (rc = proto_parse(cl->in.data, cl->in.len, &f, &used, &code)) != 0) {
		if (rc < 0) {
			proto_put_error(&cl->out, code, 0,
					code == PROTO_E_TOO_BIG ? "frame longer than %u bytes"
								: "bad frame header",
					PROTO_MAX_PAYLOAD);
			cl->closing = true;
			proto_buf_free(&cl->in);
			break;
		}
		handle_request(c, cl, &f);
		proto_buf_consume(&cl->in, used);
	}
	return 0;
}

static int client_write(struct control_client *cl)
{
	ssize_t n;

	if (cl->out.len == 0)
		return 0;
	n = send(cl->fd, cl->out.data, cl->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	proto_buf_consume(&cl->out, (size_t)n);
	return 0;
}

size_t control_pollfds(struct control *c, struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	if (max == 0)
		return 0;
	pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
	c->npolled = 0;
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS && n < max; i++) {
		struct control_client *cl = c->clients[i];
		if (cl && cl->dead)
			client_close(c, i);
		if (c->clients[i] == NULL)
			continue;
		pfd[n].fd = cl->fd;
		pfd[n].events = (cl->closing ? 0 : POLLIN) | (cl->out.len ? POLLOUT : 0);
		pfd[n].revents = 0;
		c->polled[c->npolled++] = cl;
		n++;
	}
	return n;
}

static size_t client_index(struct control *c, struct control_client *cl)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			return i;
	return CONTROL_MAX_CLIENTS;
}

void control_handle(struct control *c, const struct pollfd *pfd, size_t n)
{
	for (size_t k = 1; k < n && k - 1 < c->npolled; k++) {
		struct control_client *cl = c->polled[k - 1];
		size_t i = client_index(c, cl);
		short re = pfd[k].revents;
		int rc = 0;

		if (i == CONTROL_MAX_CLIENTS || re == 0)
			continue;
		if (re & POLLIN)
			rc = client_read(c, cl);
		if (rc == 0 && cl->out.len)
			rc = client_write(cl);
		if (rc == 0 && (re & (POLLERR | POLLNVAL)))
			rc = -1;
		if (rc == 0 && (re & POLLHUP) && !(re & POLLIN))
			rc = -1;
		if (rc == 0 && cl->closing && cl->out.len == 0)
			rc = -1;
		if (rc == 0 && cl->out.len > CONTROL_MAX_BACKLOG + CONTROL_REPLY_SLACK)
			rc = -1; /* not reading at all: do not let it cost the VM memory */
		if (rc == 0 && cl->lagging && cl->out.len == 0) {
			/* Caught up: the lines it missed and the screen, so that
			 * its scrollback gets each line once. */
			cl->lagging = false;
			put_replay_since(c, cl, cl->lag_mark);
		}
		if (cl->dead)
			rc = -1;
		if (rc < 0)
			client_close(c, i);
	}
	c->npolled = 0;
	pace_tick(c, monotonic_ns());
	if (n > 0 && (pfd[0].revents & POLLIN))
		control_accept(c);
}

unsigned control_client_port(const struct control_client *cl)
{
	return cl->port;
}

/* How much console output a client of this console may leave unread before
 * it skips (see CONTROL_BACKLOG_PER_CELL). */
static size_t backlog_limit(const struct control *c, unsigned port)
{
	int rows = 0, cols = 0;
	size_t n;

	if (c->cb[port] != NULL)
		console_buf_size(c->cb[port], &rows, &cols);
	n = (size_t)(rows > 0 ? rows : 0) * (size_t)(cols > 0 ? cols : 0) * CONTROL_BACKLOG_PER_CELL;
	return n < CONTROL_MIN_BACKLOG ? CONTROL_MIN_BACKLOG : MIN(n, (size_t)CONTROL_MAX_BACKLOG);
}

/* Console output a client has not read yet: queued here and in its
 * socket. */
static size_t unread(const struct control_client *cl)
{
	int q = 0;

	if (ioctl(cl->fd, SIOCOUTQ, &q) < 0 || q < 0)
		q = 0;
	return cl->out.len + (size_t)q;
}

/* A screenful a frame (at least 4 KiB, a virtio console's trip): more
 * output than that in a frame, and a paced client is sent screens. */
static size_t pace_budget(const struct control *c, unsigned port)
{
	int rows = 0, cols = 0;

	console_buf_size(c->cb[port], &rows, &cols);
	return MAX((size_t)(rows > 0 ? rows : 0) * (size_t)(cols > 0 ? cols : 0), (size_t)4096);
}

/* Counts the frames that ended since the last call: how many in a row had
 * less output than the budget. */
static void pace_roll(struct control *c, struct control_client *cl, uint64_t now)
{
	uint64_t n;

	if (now - cl->win_ns < CONTROL_FRAME_NS)
		return;
	n = (now - cl->win_ns) / CONTROL_FRAME_NS;
	if (cl->win_bytes <= pace_budget(c, cl->port))
		cl->quiet = (unsigned)MIN((uint64_t)cl->quiet + n, 1000u);
	else
		cl->quiet = (unsigned)MIN(n - 1, 1000u);
	cl->win_bytes = 0;
	cl->win_ns = n > 1000 ? now : cl->win_ns + n * CONTROL_FRAME_NS;
}

/* How long a paced client's screens are apart: a frame; less after its
 * keys, none right after one (its echo goes as soon as it comes). */
static uint64_t pace_gap(const struct control_client *cl, uint64_t now)
{
	if (now - cl->input_ns < CONTROL_ECHO_NS)
		return 0;
	return now - cl->input_ns < CONTROL_KEY_NS ? CONTROL_KEY_FRAME_NS : CONTROL_FRAME_NS;
}

/* A paced client's screen, when it changed, a frame has passed (or it
 * typed lately) and it has read the last one. */
static void pace_frame(struct control *c, struct control_client *cl, uint64_t now)
{
	if (!cl->frame_due || now - cl->frame_ns < pace_gap(cl, now) || unread(cl) > 0)
		return;
	/* The screen alone: the lines pushed since come at the end. */
	put_replay_since(c, cl, console_buf_lines_pushed(c->cb[cl->port]));
	cl->frame_due = false;
	cl->frame_ns = now;
	if (client_write(cl) < 0)
		cl->dead = true;
}

/* Whether a client that asked to be paced gets these bytes (false: it is
 * sent screens instead). */
static bool pace_output(struct control *c, struct control_client *cl, size_t len, uint64_t pushed,
			size_t limit, uint64_t now)
{
	pace_roll(c, cl, now);
	cl->win_bytes += len;
	if (!cl->paced) {
		/* Its backlog beyond the socket, as for the slow client below. */
		if (cl->win_bytes <= pace_budget(c, cl->port) && cl->out.len <= limit)
			return true;
		cl->paced = true;
		cl->pace_mark = pushed;
		cl->frame_ns = 0; /* the first screen at once */
	}
	cl->quiet = 0;
	cl->frame_due = true;
	return false;
}

void control_console_output(struct control *c, unsigned port, const void *bytes, size_t len)
{
	size_t limit;
	uint64_t pushed = 0, now = 0;

	if (port >= CONSOLE_NPORTS)
		return;
	limit = backlog_limit(c, port);
	if (c->cb[port] != NULL) {
		pushed = console_buf_lines_pushed(c->cb[port]); /* what a client skipping these saw */
		console_buf_feed(c->cb[port], bytes, len);
	}
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		if (cl == NULL || cl->attach == NOT_ATTACHED || cl->closing || cl->dead ||
		    cl->lagging || cl->port != port)
			continue;
		if (cl->pace && c->cb[port] != NULL) {
			if (now == 0)
				now = monotonic_ns();
			if (!pace_output(c, cl, len, pushed, limit, now)) {
				pace_frame(c, cl, now);
				continue;
			}
		} else if (cl->out.len > limit) {
			/* A client slower than the guest (a slow link) skips
			 * output rather than holding it here without bound; it
			 * gets a redraw when it has caught up. */
			cl->lagging = true;
			cl->lag_mark = pushed;
			continue;
		}
		proto_put_console(&cl->out, bytes, len);
		/* Send now rather than on the next poll round: this is the
		 * latency a user typing at the console sees. */
		if (client_write(cl) < 0)
			cl->dead = true;
	}
}

/* Paced clients: screens that are due, and the lines owed to those whose
 * flood is over. */
static bool being_paced(const struct control_client *cl)
{
	return cl != NULL && cl->paced && !cl->closing && !cl->dead;
}

static void pace_tick(struct control *c, uint64_t now)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		if (!being_paced(cl))
			continue;
		pace_roll(c, cl, now);
		pace_frame(c, cl, now);
		if (!cl->frame_due && cl->quiet >= CONTROL_PACE_QUIET) {
			pace_end(c, cl);
			if (client_write(cl) < 0)
				cl->dead = true;
		}
	}
}

int control_timeout(struct control *c)
{
	uint64_t now = 0, wait = UINT64_MAX;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		uint64_t at;
		if (!being_paced(cl))
			continue;
		if (now == 0)
			now = monotonic_ns();
		if (cl->frame_due && unread(cl) > 0) {
			/* Not read yet: soon, later for one that stopped reading. */
			uint64_t later = MIN(MAX((now - cl->frame_ns) / 8, (uint64_t)CONTROL_READ_POLL_NS),
					     (uint64_t)CONTROL_READ_POLL_MAX_NS);
			at = now + later;
		} else if (cl->frame_due) {
			at = cl->frame_ns + pace_gap(cl, now);
		} else
			at = cl->win_ns + CONTROL_FRAME_NS; /* the next frame counted */
		wait = MIN(wait, at > now ? at - now : 0);
	}
	if (wait == UINT64_MAX)
		return -1;
	return (int)((wait + 999999) / 1000000);
}

void control_redraw(struct control *c)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		if (cl == NULL || cl->attach == NOT_ATTACHED || cl->closing || cl->dead)
			continue;
		/* A lagging client is redrawn anyway once it has caught up,
		 * then in full. */
		if (cl->lagging) {
			cl->lag_mark = 0;
			continue;
		}
		put_replay(c, cl);
		cl->paced = cl->frame_due = false; /* it has everything again */
		if (client_write(cl) < 0)
			cl->dead = true;
	}
}

/* Events go to those who asked for them: attached clients and subscribers.
 * EXITED goes to everyone, since it explains the hang-up that follows (a
 * `termvisor stop` waits for it without either). */
static bool wants_event(const struct control_client *cl, uint8_t event)
{
	return cl->subscribed || cl->attach != NOT_ATTACHED || event == PROTO_EV_EXITED;
}

void control_event(struct control *c, uint8_t event, const char *text)
{
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		if (cl == NULL || !cl->hello || cl->closing || cl->dead || !wants_event(cl, event))
			continue;
		proto_put_event(&cl->out, event, text);
		if (client_write(cl) < 0)
			cl->dead = true;
	}
}

void control_flush(struct control *c, int timeout_ms)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS];
		size_t n = 0;
		for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			struct control_client *cl = c->clients[i];
			if (cl == NULL || cl->out.len == 0 || cl->dead)
				continue;
			if (client_write(cl) < 0) {
				client_close(c, i);
				continue;
			}
			if (cl->out.len)
				pfd[n++] = (struct pollfd){.fd = cl->fd, .events = POLLOUT};
		}
		uint64_t now = monotonic_ns();
		if (n == 0 || now >= deadline)
			return;
		poll(pfd, n, (int)((deadline - now) / 1000000) + 1);
	}
}

size_t control_attached(const struct control *c)
{
	size_t n = 0;

	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] && c->clients[i]->attach != NOT_ATTACHED)
			n++;
	return n;
}
