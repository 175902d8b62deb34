/* The control socket server inside a VM process: accepts clients of the owning
 * user (or root) on NAME.sock, speaks termvisor-protocol(7) with each, and
 * carries the console: guest output goes to the console buffer and to every
 * attached client; input from read-write clients goes to the guest.
 *
 * It runs in the VM process's main loop (poll); the engine is reached only
 * through the verb table (verbs.h). No request, however malformed, reaches the engine
 * unchecked, and a misbehaving client only ever loses its own connection. */
#ifndef TV_CONTROL_H
#define TV_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/vmm/console-buf.h"
#include "src/core/protocol.h"
#include "src/vmm/verbs.h"
#include "vm/console.h"
#include "common/err.h"

#define CONTROL_MAX_CLIENTS 16
/* A client with more console output unread than its share skips the live
 * stream until it has read it all, then gets what it missed redrawn (the
 * lines pushed into the scrollback meanwhile, and the screen); one that lets
 * replies pile up beyond the slack as well is dropped. The share follows the
 * console's size, as tmux's does for a slow terminal: 8 bytes a cell, at
 * least CONTROL_MIN_BACKLOG, at most CONTROL_MAX_BACKLOG (16 KiB at 80x13,
 * 125 KiB at 200x80). With the socket's own buffer (CONTROL_SNDBUF) that is
 * all a key's echo can wait behind on its way out of the VM process, so a
 * client slower than a flooding guest sees it after that much output, not
 * after seconds of it. */
#define CONTROL_BACKLOG_PER_CELL 8u
#define CONTROL_MIN_BACKLOG (16u << 10)
#define CONTROL_MAX_BACKLOG (256u << 10)
#define CONTROL_SNDBUF (16 << 10)
#define CONTROL_REPLY_SLACK (1u << 20)
/* Pacing (PROTO_PACE): a client that asked is sent its console's screen at
 * most once a frame while the guest prints more than a screenful a frame
 * (or more than its backlog is unread), and only once it has read the last
 * one; within CONTROL_ECHO_NS of a key from it, as soon as it has, and
 * until CONTROL_KEY_NS at most once every CONTROL_KEY_FRAME_NS: the echo
 * waits for no frame. After
 * CONTROL_PACE_QUIET frames in a row with less, it gets the lines pushed
 * meanwhile and every byte again. Whether it has read the last screen is
 * looked at again after CONTROL_READ_POLL_NS, up to a quarter of a second
 * for a client that stopped reading (poll says when it may write, not
 * when it has read). */
#define CONTROL_FRAME_NS (16u * 1000000)
#define CONTROL_ECHO_NS (20u * 1000000)
#define CONTROL_KEY_NS (250u * 1000000)
#define CONTROL_KEY_FRAME_NS (4u * 1000000)
#define CONTROL_PACE_QUIET 4
#define CONTROL_READ_POLL_NS (2u * 1000000)
#define CONTROL_READ_POLL_MAX_NS (250u * 1000000)

/* What the VM process gives its control socket. */
struct control_conf {
	const char *path;          /* the socket: bound mode 0600; the directory is
				    * the caller's, 0700 */
	const char *name;          /* the VM's name, for messages */
	struct console_buf *cb[CONSOLE_NPORTS]; /* each console's screen, for replays */
	unsigned (*port)(void *vm, uint8_t console); /* a client's choice (enum
				    * proto_console) as a port (vm/console.h) */
	const struct verb *verbs;  /* the verb table: vmm_verbs, or a test's */
	void *vm;                  /* handed to the verbs' handlers */
	uint8_t (*state)(void *vm); /* the VM's PROTO_STATE_* now */
	/* A read-write client gave a console its size (on attach, or WINSIZE):
	 * the guest is told where it can be (hvc0). May be NULL. */
	void (*resized)(void *vm, unsigned port, int rows, int cols);
};

struct control;

/* Binds conf->path and listens. */
struct control *control_new(const struct control_conf *conf, struct tv_err *err);
/* Closes every connection and the listening socket. The socket's file is the
 * caller's to remove (before this, so no client comes in at the end). */
void control_free(struct control *c);

/* The main loop's part: fills at most max pollfds (CONTROL_MAX_CLIENTS + 1
 * always suffice) and handles what poll() reported for them. */
size_t control_pollfds(struct control *c, struct pollfd *pfd, size_t max);
void control_handle(struct control *c, const struct pollfd *pfd, size_t n);
/* How long the main loop's poll may wait, in ms, for the next paced screen
 * (-1: no limit); control_handle sends what is due. */
int control_timeout(struct control *c);

/* Guest output of one console, already through the guard (vtguard.h): into
 * that console's screen and out to the clients attached to it. */
void control_console_output(struct control *c, unsigned port, const void *bytes, size_t len);
/* Every attached client gets its console drawn again from the screen, as on
 * attach (the screens were replaced: a rollback). */
void control_redraw(struct control *c);
/* The console a client is attached to (its input goes there). */
unsigned control_client_port(const struct control_client *cl);
/* Tells the clients that want events (attached or subscribed; every client
 * after its hello for PROTO_EV_EXITED) what happened. */
void control_event(struct control *c, uint8_t event, const char *text);
/* Tries for up to timeout_ms to send what is queued (before the process ends). */
void control_flush(struct control *c, int timeout_ms);

size_t control_attached(const struct control *c);

/* The verbs about the connection itself, for the verb table. */
enum verb_result control_verb_hello(struct verb_call *call);
enum verb_result control_verb_attach(struct verb_call *call);
enum verb_result control_verb_winsize(struct verb_call *call);
enum verb_result control_verb_detach(struct verb_call *call);
enum verb_result control_verb_pace(struct verb_call *call);
enum verb_result control_verb_subscribe(struct verb_call *call);

#endif
