/* The control protocol spoken on a VM's socket (termvisor-protocol(7)).
 *
 * Every message is a frame: an 8-byte header, then the payload.
 *
 *   offset 0  u32  payload length (0 .. PROTO_MAX_PAYLOAD)
 *   offset 4  u16  type (requests below 0x8000, replies and events above)
 *   offset 6  u16  flags, must be 0 (reserved)
 *
 * All integers are big-endian. The client opens with HELLO carrying the
 * protocol version; every request then gets exactly one reply (OK, ERROR or a
 * typed reply), in order. CONSOLE and EVENT frames may arrive between replies
 * once a client is attached. This file is the codec only: no I/O. */
#ifndef TV_PROTOCOL_H
#define TV_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/net/net.h"

#define PROTO_VERSION 1
#define PROTO_HDR_LEN 8
#define PROTO_MAX_PAYLOAD 65536
#define PROTO_NAME_MAX 64
#define PROTO_REASON_MAX 200 /* why a VM is paused (proto_status.reason) */

enum proto_type {
	/* Requests. */
	PROTO_HELLO = 0x0001,     /* u32 version */
	PROTO_STATUS = 0x0002,    /* empty */
	PROTO_PAUSE = 0x0003,     /* empty */
	PROTO_RESUME = 0x0004,    /* empty */
	PROTO_STOP = 0x0005,      /* u32 timeout in ms before forcing (0: server default) */
	PROTO_FORCE_OFF = 0x0006, /* empty */
	PROTO_ATTACH = 0x0007,    /* u8 mode (0 read-write, 1 read-only), u8 console
				   * (enum proto_console), u16 rows, u16 cols */
	PROTO_INPUT = 0x0008,     /* bytes for the guest's serial port */
	PROTO_WINSIZE = 0x0009,   /* u16 rows, u16 cols */
	PROTO_DETACH = 0x000a,    /* empty */
	PROTO_NET_INFO = 0x000c,  /* empty; reply: PROTO_NET_REPLY */
	PROTO_PACE = 0x000d,      /* u8 1: an attached client that keeps its own screen
				   * takes screens instead of a flood; 0: every byte */
	PROTO_SUBSCRIBE = 0x000b, /* empty: EVENT frames from now on without
				   * attaching (the interface's model) */
	/* Snapshots of a live VM. Payload: "key=value" lines (proto_kv_get);
	 * reply: PROTO_SNAPSHOT_REPLY. The tree itself is read from the index
	 * on disk (src/core/snapstore.h), so listing needs no verb. The rest
	 * of the range is refused with PROTO_E_UNSUPPORTED. */
	PROTO_SNAPSHOT_FIRST = 0x0020,
	PROTO_SNAPSHOT_TAKE = 0x0020,     /* tag=, description=, automatic=1 */
	PROTO_SNAPSHOT_ROLLBACK = 0x0021, /* tag=, discard=1 */
	PROTO_SNAPSHOT_DELETE = 0x0022,   /* tag= */
	PROTO_SNAPSHOT_RENAME = 0x0023,   /* tag=, new= */
	PROTO_SNAPSHOT_LAST = 0x002f,

	/* Replies and events. */
	PROTO_OK = 0x8000,           /* u16 request type answered, u16 0 */
	PROTO_ERROR = 0x8001,        /* u32 code, u16 request type (0: none), u16 0, message */
	PROTO_HELLO_REPLY = 0x8002,  /* u32 version, u32 server pid, program version text */
	PROTO_STATUS_REPLY = 0x8003, /* see proto_status */
	PROTO_ATTACHED = 0x8004,     /* u16 rows, u16 cols of the console screen */
	PROTO_CONSOLE = 0x8005,      /* console bytes: the replay first, then live output */
	PROTO_EVENT = 0x8006,        /* u8 event, UTF-8 text */
	PROTO_SNAPSHOT_REPLY = 0x8007, /* UTF-8 JSON object: what was done, with figures */
	PROTO_NET_REPLY = 0x8008,    /* "key=value" lines: nics=N, then per NIC nicI.mode,
				      * nicI.mac, nicI.address, nicI.forwards */
	PROTO_CONSOLE_SYNC = 0x8009, /* console bytes for a pacing client: the lines pushed
				      * while it was sent screens, then the screen */
};

enum proto_error {
	PROTO_E_MALFORMED = 1,   /* payload does not fit the type */
	PROTO_E_TOO_BIG = 2,     /* length over PROTO_MAX_PAYLOAD; the server hangs up */
	PROTO_E_UNKNOWN = 3,     /* unknown type */
	PROTO_E_VERSION = 4,     /* protocol version not spoken */
	PROTO_E_HELLO = 5,       /* a request before HELLO */
	PROTO_E_STATE = 6,       /* not possible in the VM's current state */
	PROTO_E_READONLY = 7,    /* input from a read-only client */
	PROTO_E_NOT_ATTACHED = 8,
	PROTO_E_UNSUPPORTED = 9, /* known but not implemented by this server */
	PROTO_E_FAILED = 10,     /* the engine refused; the message says why */
	PROTO_E_BUSY = 11,       /* too many clients */
};

enum proto_event {
	PROTO_EV_PAUSED = 1,
	PROTO_EV_RESUMED = 2,
	PROTO_EV_STOPPING = 3, /* power button pressed; text: seconds before forcing */
	PROTO_EV_EXITED = 4,   /* text: why; the server hangs up after it */
	PROTO_EV_SNAPSHOT = 5, /* the snapshot tree changed; text: "take TAG",
				* "rollback TAG", "delete TAG", "rename OLD NEW" */
};

enum proto_vm_state {
	PROTO_STATE_RUNNING = 1,
	PROTO_STATE_PAUSED = 2,
	PROTO_STATE_STOPPING = 3,
};

enum proto_attach_mode { PROTO_ATTACH_RW = 0, PROTO_ATTACH_RO = 1 };

/* Which of the VM's consoles a client attaches to. */
enum proto_console {
	PROTO_CONSOLE_PRIMARY = 0, /* the kernel's: hvc0 when its command line's last
				    * console= names it, else ttyS0 */
	PROTO_CONSOLE_SERIAL = 1,  /* ttyS0 */
	PROTO_CONSOLE_HVC = 2,     /* hvc0 */
};

struct proto_frame {
	uint16_t type;
	uint32_t len;
	const uint8_t *payload; /* points into the parsed buffer */
};

/* A growable byte buffer for encoding and for queued output: the len bytes
 * at data. Consuming from the front moves data on instead of the bytes
 * (skip: how far it is from the allocation's start, whose size is cap), so
 * that a long queue sent a little at a time costs no more than its bytes. A
 * buffer nothing was consumed from has data at the allocation's start. */
struct proto_buf {
	uint8_t *data;
	size_t len, cap, skip;
};

struct proto_status {
	uint8_t state;        /* enum proto_vm_state */
	uint16_t clients;     /* attached console clients */
	uint32_t pid;
	uint32_t cpus;
	uint16_t rows, cols;  /* console screen size */
	uint64_t memory;      /* bytes */
	uint64_t started;     /* unix time, seconds */
	uint64_t uptime_ms;
	char name[PROTO_NAME_MAX + 1];
	/* Why the VM paused itself ("disk.qcow2: no space left on device"),
	 * or "" (running, or paused by a client). Sent after the name: older
	 * clients do not read it, older servers do not send it. */
	char reason[PROTO_REASON_MAX + 1];
};

struct proto_hello {
	uint32_t version;
	uint32_t pid;
	char program[64];
};

/* Looks for one frame at the start of buf. Returns 1 and fills f and *used when
 * a whole frame is there, 0 when more bytes are needed, -1 (with *code set to a
 * proto_error) when the header is invalid: the stream cannot be trusted after
 * that, so the peer should reply and hang up. */
int proto_parse(const uint8_t *buf, size_t len, struct proto_frame *f, size_t *used,
		uint32_t *code);

const char *proto_type_name(uint16_t type);
const char *proto_error_name(uint32_t code);
bool proto_is_request(uint16_t type);
/* "running", "paused", "stopping" for a PROTO_STATE_*. */
const char *proto_state_name(uint8_t state);

void proto_buf_free(struct proto_buf *b);
void proto_buf_append(struct proto_buf *b, const void *data, size_t len);
/* Removes the first n bytes (what was sent). */
void proto_buf_consume(struct proto_buf *b, size_t n);

/* Encoders append one whole frame to b. Payloads over PROTO_MAX_PAYLOAD are
 * the caller's bug: proto_put_frame truncates nothing and returns -1. */
int proto_put_frame(struct proto_buf *b, uint16_t type, const void *payload, size_t len);
/* Console bytes, split into as many frames as needed. */
void proto_put_console(struct proto_buf *b, const void *data, size_t len);
void proto_put_console_sync(struct proto_buf *b, const void *data, size_t len);
void proto_put_ok(struct proto_buf *b, uint16_t request);
/* request is the type of the request refused, 0 when there is none (a bad header). */
void proto_put_error(struct proto_buf *b, uint32_t code, uint16_t request, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void proto_put_event(struct proto_buf *b, uint8_t event, const char *text);
void proto_put_u32(struct proto_buf *b, uint16_t type, uint32_t v);
void proto_put_size(struct proto_buf *b, uint16_t type, uint16_t rows, uint16_t cols);
void proto_put_hello_reply(struct proto_buf *b, const struct proto_hello *h);
void proto_put_status(struct proto_buf *b, const struct proto_status *s);

/* Decoders check the payload length and contents; -1 means malformed. */
int proto_get_u32(const struct proto_frame *f, uint32_t *v);
int proto_get_size(const struct proto_frame *f, uint16_t *rows, uint16_t *cols);
int proto_get_attach(const struct proto_frame *f, uint8_t *mode, uint8_t *console, uint16_t *rows,
		     uint16_t *cols);
int proto_get_ok(const struct proto_frame *f, uint16_t *request);
int proto_get_error(const struct proto_frame *f, uint32_t *code, uint16_t *request, char *msg,
		    size_t msglen);
int proto_get_event(const struct proto_frame *f, uint8_t *event, char *text, size_t textlen);
int proto_get_hello_reply(const struct proto_frame *f, struct proto_hello *h);
int proto_get_status(const struct proto_frame *f, struct proto_status *s);

/* "key=value" lines (snapshot requests): appends one line to b; values
 * must not hold a newline (-1 then). */
int proto_kv_put(struct proto_buf *b, const char *key, const char *value);
/* Copies the value of key (the first line "key=...") into buf; returns its
 * length, -1 when absent, -2 when it does not fit or holds a NUL. */
int proto_kv_get(const void *payload, size_t len, const char *key, char *buf, size_t buflen);

/* The net-info reply's lines for n NICs; addr[i] is NIC i's address (its
 * DHCP lease), or addr is NULL when none is known. */
void proto_kv_put_nics(struct proto_buf *b, const struct vm_nic *nics, size_t n,
		       const char (*addr)[64]);
/* Reading them back from a NUL-terminated reply: how many NICs it names (at
 * most NET_NICS_MAX), and field name ("mode", "mac", "address", "forwards")
 * of NIC i into buf ("" when absent). */
unsigned proto_kv_nic_count(const char *kv);
void proto_kv_nic_field(const char *kv, unsigned i, const char *name, char *buf, size_t len);

/* Terminal sizes the protocol accepts. */
#define PROTO_MIN_DIM 2
#define PROTO_MAX_DIM 1000

#endif
