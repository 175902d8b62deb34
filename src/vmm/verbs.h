/* The verbs of the control socket (termvisor-protocol(7)), declared once.
 *
 * Each row of the table says everything about one request: its type on the
 * wire, its name, the payload it takes, the VM states it is accepted in,
 * whether the client must be attached, the handler that carries it out, and
 * its help line. The control socket checks payload, state and attachment
 * from the row before the handler runs; `termvisor help`, the man page test
 * and the interface read the same rows. A verb that a command only sends to a
 * live VM (pause, resume) names that command here and needs no file of its
 * own in src/cli.
 *
 * Adding a verb: a type in src/core/protocol.h, a row and a handler in
 * src/vmm/verbs.c, and its paragraph in man/termvisor-protocol.7. */
#ifndef TV_VERBS_H
#define TV_VERBS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "src/core/protocol.h"

struct control;
struct control_client;

/* What a request's payload must be; checked before the handler runs. */
enum verb_payload {
	VP_EMPTY,  /* no payload */
	VP_U32,    /* one big-endian u32 */
	VP_SIZE,   /* u16 rows, u16 cols, each PROTO_MIN_DIM..PROTO_MAX_DIM */
	VP_ATTACH, /* u8 mode, u8 0, u16 rows, u16 cols */
	VP_BYTES,  /* any bytes, possibly none */
	VP_FLAG,   /* one byte, 0 or 1 */
};

/* The VM states a verb is accepted in (bits of 1 << PROTO_STATE_*). */
#define VS_RUNNING (1u << PROTO_STATE_RUNNING)
#define VS_PAUSED (1u << PROTO_STATE_PAUSED)
#define VS_STOPPING (1u << PROTO_STATE_STOPPING)
#define VS_LIVE (VS_RUNNING | VS_PAUSED)
#define VS_ANY (VS_RUNNING | VS_PAUSED | VS_STOPPING)

/* Whether the client must be attached to the console. */
enum verb_attach { VA_ANY, VA_ATTACHED, VA_READ_WRITE };

/* One request being carried out. */
struct verb_call {
	struct control *ctl;
	struct control_client *cl; /* who asked */
	void *vm;                  /* the VM process (control_conf.vm) */
	const struct proto_frame *f;
	struct proto_buf *out;     /* the client's queue, for a typed reply */
	uint32_t code;             /* with VERB_ERROR: the proto_error (0: FAILED) */
	struct tv_err err;         /* with VERB_ERROR: the message */
};

enum verb_result {
	VERB_ERROR = -1,  /* an ERROR reply with call->code and call->err */
	VERB_OK = 0,      /* an OK reply */
	VERB_REPLIED = 1, /* the handler queued its own reply on call->out */
	VERB_SILENT = 2,  /* no reply (input: keystrokes would double the traffic) */
};

struct verb {
	uint16_t type;
	const char *name; /* as in termvisor-protocol(7) */
	enum verb_payload payload;
	unsigned states;  /* VS_*: the states it is accepted in */
	enum verb_attach attach;
	enum verb_result (*handler)(struct verb_call *call);
	const char *help; /* one line: what it does */
	/* A command that sends only this verb to a live VM: its name, and the
	 * word it prints when done ("paused" VM lab1). NULL when none. */
	const char *command;
	const char *done;
};

/* The VM process's verbs, ended by a row with type 0. */
extern const struct verb vmm_verbs[];

const struct verb *verb_find(const struct verb *table, uint16_t type);
const struct verb *verb_find_command(const struct verb *table, const char *command);

/* Checks f's payload against v; -1 with a message naming the verb and what it
 * expected. */
int verb_check_payload(const struct verb *v, const struct proto_frame *f, struct tv_err *err);
/* "running", "running or paused", ...: the states in a message. */
void verb_states_text(unsigned states, char *buf, size_t len);

#endif
