/* The control socket server inside a VM process: accepts clients of the owning
 * user (or root) on NAME.sock, speaks termvisor-protocol(7) with each, and
 * carries the console: guest output goes to the console buffer and to every
 * attached client; input from read-write clients goes to the guest.
 *
 * It runs in the VM process's main loop (poll); the engine is reached only
 * through the ops below. No request, however malformed, reaches the engine
 * unchecked, and a misbehaving client only ever loses its own connection. */
#ifndef TV_CONTROL_H
#define TV_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/vmm/console-buf.h"
#include "src/core/protocol.h"
#include "common/err.h"

#define CONTROL_MAX_CLIENTS 16
/* A client with this much console output unread skips the live stream until
 * it has read it all, then gets the screen redrawn; one that lets replies pile
 * up beyond the slack as well is dropped. */
#define CONTROL_MAX_BACKLOG (4u << 20)
#define CONTROL_REPLY_SLACK (1u << 20)

struct control_ops {
	void (*status)(void *ctx, struct proto_status *st);
	/* Each returns 0, or -1 with a message and a proto_error code. */
	int (*pause)(void *ctx, uint32_t *code, struct tv_err *err);
	int (*resume)(void *ctx, uint32_t *code, struct tv_err *err);
	int (*stop)(void *ctx, uint32_t timeout_ms, uint32_t *code, struct tv_err *err);
	int (*force_off)(void *ctx, uint32_t *code, struct tv_err *err);
	/* Bytes for the guest's serial port (from a read-write client). */
	void (*input)(void *ctx, const void *bytes, size_t len);
};

struct control;

/* Binds path (mode 0600; the directory is the caller's, 0700) and listens. */
struct control *control_new(const char *path, struct console_buf *cb, const struct control_ops *ops,
			    void *ctx, struct tv_err *err);
/* Closes every connection and the listening socket. The socket's file is the
 * caller's to remove (before this, so no client comes in at the end). */
void control_free(struct control *c);

/* The main loop's part: fills at most max pollfds (CONTROL_MAX_CLIENTS + 1
 * always suffice) and handles what poll() reported for them. */
size_t control_pollfds(struct control *c, struct pollfd *pfd, size_t max);
void control_handle(struct control *c, const struct pollfd *pfd, size_t n);

/* Guest output: into the console buffer and out to attached clients. */
void control_console_output(struct control *c, const void *bytes, size_t len);
/* Tells every client (after its hello) what happened. */
void control_event(struct control *c, uint8_t event, const char *text);
/* Tries for up to timeout_ms to send what is queued (before the process ends). */
void control_flush(struct control *c, int timeout_ms);

size_t control_attached(const struct control *c);

#endif
