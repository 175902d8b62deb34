/* The client side of termvisor-protocol(7), for the commands and the
 * interface: connect to a running VM's socket, make requests, and attach to
 * its console.
 *
 * Requests are synchronous (they wait for their reply, up to
 * CLIENT_REPLY_TIMEOUT_MS). Once attached, console output and events arrive on
 * their own: poll client_fd() for POLLIN and call client_pump(), which hands
 * them to the handlers; frames that arrive while a request waits for its reply
 * go to the same handlers.
 *
 *   struct tv_client *c = client_connect(&paths, "lab1", &err);
 *   client_set_handlers(c, &handlers, pane);
 *   client_attach(c, false, 0, rows, cols, &err);   // the screen follows
 *   ... poll(client_fd(c)) ... client_pump(c, &err);
 *   client_input(c, "ls\r", 3, &err);
 *   client_close(c);
 */
#ifndef TV_CLIENT_H
#define TV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/paths.h"
#include "src/core/protocol.h"
#include "common/err.h"

#define CLIENT_REPLY_TIMEOUT_MS 5000
#define CLIENT_SNAPSHOT_TIMEOUT_MS 600000

struct tv_client;

struct client_handlers {
	/* Console bytes: the replay of the screen first, then the live stream. */
	void (*console)(void *ctx, const uint8_t *bytes, size_t len);
	/* PROTO_EV_*; after PROTO_EV_EXITED the server hangs up. May be NULL. */
	void (*event)(void *ctx, uint8_t event, const char *text);
	/* A paced client's PROTO_CONSOLE_SYNC: the lines pushed while it was
	 * sent screens, then the screen (client_pace). NULL: as console. */
	void (*sync)(void *ctx, const uint8_t *bytes, size_t len);
};

/* Connects to VM name's socket and exchanges hellos. A VM that does not run
 * gives "VM NAME is not running". */
struct tv_client *client_connect(const struct tv_paths *p, const char *name, struct tv_err *err);
struct tv_client *client_connect_path(const char *path, const char *name, struct tv_err *err);
void client_close(struct tv_client *c);

int client_fd(const struct tv_client *c);
/* The server's pid and program version, from its hello. */
const struct proto_hello *client_server(const struct tv_client *c);
void client_set_handlers(struct tv_client *c, const struct client_handlers *h, void *ctx);

/* The one request call: sends a request of type with its payload and waits
 * for its reply (OK, ERROR or a typed reply, see src/vmm/verbs.h), handing
 * console frames and events that come first to the handlers. Returns 0, or -1
 * with the server's message (or the transport's). With reply not NULL a typed
 * reply is copied there, its payload in *rpayload (free it). */
int client_request(struct tv_client *c, uint16_t type, const void *payload, size_t len,
		   struct proto_frame *reply, uint8_t **rpayload, struct tv_err *err);
/* The same with its own limit: snapshots of large VMs take longer than
 * CLIENT_REPLY_TIMEOUT_MS (CLIENT_SNAPSHOT_TIMEOUT_MS). */
int client_request_timeout(struct tv_client *c, uint16_t type, const void *payload, size_t len,
			   int timeout_ms, struct proto_frame *reply, uint8_t **rpayload,
			   struct tv_err *err);
/* Connects to VM name, makes one request and hangs up: how a command or a
 * key sends a verb such as pause to a live VM. */
int client_verb(const struct tv_paths *p, const char *name, uint16_t type, const void *payload,
		size_t len, struct tv_err *err);

/* Requests whose payload or reply has a shape of its own. */
int client_status(struct tv_client *c, struct proto_status *st, struct tv_err *err);
/* Presses the power button; the server forces the VM off after timeout_ms (0:
 * the server's default). Returns once the request is accepted; the VM's end
 * shows as PROTO_EV_EXITED and a hang-up (client_wait_exit). */
int client_stop(struct tv_client *c, uint32_t timeout_ms, struct tv_err *err);
/* Waits up to timeout_ms for the VM to end (the server hanging up). 0 when it
 * ended, -1 on timeout. */
int client_wait_exit(struct tv_client *c, int timeout_ms, struct tv_err *err);

/* Attaches to one of the VM's consoles (enum proto_console: 0 the kernel's,
 * ttyS0 or hvc0); rows and cols are the client's window (a read-write
 * client's size becomes the console's). */
int client_attach(struct tv_client *c, bool readonly, uint8_t console, uint16_t rows,
		  uint16_t cols, struct tv_err *err);
/* Keys for the guest: no reply; a refusal arrives later as an error. */
int client_input(struct tv_client *c, const void *bytes, size_t len, struct tv_err *err);
/* The window changed size: sent without waiting for the reply. */
int client_winsize(struct tv_client *c, uint16_t rows, uint16_t cols, struct tv_err *err);
/* For a client that keeps its own screen and scrollback (the interface's
 * pane): on, a flood comes as the screen at most once a frame, and the lines
 * it pushed come once it is over (or at once when pacing is turned off: a
 * user reading the scrollback); off, every byte. Sent without waiting. */
int client_pace(struct tv_client *c, bool on, struct tv_err *err);

/* Reads what is there (call when client_fd is readable) and dispatches it.
 * Returns 0, or -1 when the connection ended or failed (err says why; after
 * PROTO_EV_EXITED the message is the VM's exit reason). */
int client_pump(struct tv_client *c, struct tv_err *err);

int client_oneshot_status(const struct tv_paths *p, const char *name, struct proto_status *st,
			  struct tv_err *err);
/* The VM's network interfaces (the NET_INFO reply's "key=value" lines,
 * proto_kv_get), or NULL with err. Free it. */
char *client_oneshot_net_info(const struct tv_paths *p, const char *name, struct tv_err *err);

/* Sends one raw frame (for tests and tools that speak the protocol directly). */
int client_send_frame(struct tv_client *c, uint16_t type, const void *payload, size_t len,
		      struct tv_err *err);

#endif
