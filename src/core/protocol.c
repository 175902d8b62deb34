#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/protocol.h"
#include "src/vmm/verbs.h"
#include "common/util.h"

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

int proto_parse(const uint8_t *buf, size_t len, struct proto_frame *f, size_t *used,
		uint32_t *code)
{
	uint32_t plen;

	if (len < PROTO_HDR_LEN)
		return 0;
	plen = get_be32(buf);
	if (plen > PROTO_MAX_PAYLOAD) {
		*code = PROTO_E_TOO_BIG;
		return -1;
	}
	if (get_be16(buf + 6) != 0) {
		/* Reserved flags set: not a stream we understand. */
		*code = PROTO_E_MALFORMED;
		return -1;
	}
	if (len - PROTO_HDR_LEN < plen)
		return 0;
	f->len = plen;
	f->type = get_be16(buf + 4);
	f->payload = buf + PROTO_HDR_LEN;
	*used = PROTO_HDR_LEN + plen;
	return 1;
}

const char *proto_type_name(uint16_t type)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		{PROTO_OK, "ok"},
		{PROTO_ERROR, "error"},
		{PROTO_HELLO_REPLY, "hello-reply"},
		{PROTO_STATUS_REPLY, "status-reply"},
		{PROTO_ATTACHED, "attached"},
		{PROTO_CONSOLE, "console"},
		{PROTO_EVENT, "event"},
		{PROTO_SNAPSHOT_REPLY, "snapshot reply"},
		{PROTO_NET_REPLY, "net-reply"},
		{PROTO_CONSOLE_SYNC, "console-sync"},
	};

	const struct verb *v = verb_find(vmm_verbs, type);

	/* Requests are named by the verb table, the one place they are declared. */
	if (v != NULL)
		return v->name;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].type == type)
			return names[i].name;
	if (type >= PROTO_SNAPSHOT_FIRST && type <= PROTO_SNAPSHOT_LAST)
		return "snapshot";
	return "unknown";
}

const char *proto_error_name(uint32_t code)
{
	static const char *const names[] = {
		[PROTO_E_MALFORMED] = "malformed message",
		[PROTO_E_TOO_BIG] = "message too big",
		[PROTO_E_UNKNOWN] = "unknown request",
		[PROTO_E_VERSION] = "protocol version not supported",
		[PROTO_E_HELLO] = "hello expected first",
		[PROTO_E_STATE] = "not possible in the current state",
		[PROTO_E_READONLY] = "read-only client",
		[PROTO_E_NOT_ATTACHED] = "not attached",
		[PROTO_E_UNSUPPORTED] = "not supported",
		[PROTO_E_FAILED] = "failed",
		[PROTO_E_BUSY] = "busy",
	};

	if (code < ARRAY_SIZE(names) && names[code] != NULL)
		return names[code];
	return "error";
}

const char *proto_state_name(uint8_t state)
{
	switch (state) {
	case PROTO_STATE_RUNNING:
		return "running";
	case PROTO_STATE_PAUSED:
		return "paused";
	case PROTO_STATE_STOPPING:
		return "stopping";
	}
	return "in an unknown state";
}

bool proto_is_request(uint16_t type)
{
	return type < 0x8000;
}

void proto_buf_free(struct proto_buf *b)
{
	free(b->data ? b->data - b->skip : NULL);
	memset(b, 0, sizeof(*b));
}

void proto_buf_append(struct proto_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (b->skip + b->len + len > b->cap) {
		uint8_t *base = b->data - b->skip;

		/* Bring the bytes to the front when what was consumed is at least as
		 * much as what is left (so each byte moves at most once on average),
		 * else grow. */
		if (b->skip && b->skip >= b->len) {
			memmove(base, b->data, b->len);
			b->data = base;
			b->skip = 0;
		}
		if (b->skip + b->len + len > b->cap) {
			size_t cap = b->cap ? b->cap : 256;

			while (cap < b->skip + b->len + len)
				cap *= 2;
			base = xrealloc(b->data ? base : NULL, cap);
			b->data = base + b->skip;
			b->cap = cap;
		}
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void proto_buf_consume(struct proto_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		if (b->data) {
			b->data -= b->skip;
			b->skip = 0;
		}
		/* Give back what a burst made us grow to. */
		if (b->cap > 65536) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
		return;
	}
	b->data += n;
	b->skip += n;
	b->len -= n;
}

int proto_put_frame(struct proto_buf *b, uint16_t type, const void *payload, size_t len)
{
	uint8_t hdr[PROTO_HDR_LEN];

	if (len > PROTO_MAX_PAYLOAD)
		return -1;
	put_be32(hdr, (uint32_t)len);
	put_be16(hdr + 4, type);
	put_be16(hdr + 6, 0);
	proto_buf_append(b, hdr, sizeof(hdr));
	proto_buf_append(b, payload, len);
	return 0;
}

static void put_split(struct proto_buf *b, uint16_t type, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		size_t n = MIN(len, (size_t)PROTO_MAX_PAYLOAD);
		proto_put_frame(b, type, p, n);
		p += n;
		len -= n;
	}
}

void proto_put_console(struct proto_buf *b, const void *data, size_t len)
{
	put_split(b, PROTO_CONSOLE, data, len);
}

void proto_put_console_sync(struct proto_buf *b, const void *data, size_t len)
{
	put_split(b, PROTO_CONSOLE_SYNC, data, len);
}

static void put_code_text(struct proto_buf *b, uint16_t type, const uint8_t *head, size_t headlen,
			  const char *text)
{
	uint8_t buf[512];
	size_t tlen = MIN(strlen(text), sizeof(buf) - headlen);

	memcpy(buf, head, headlen);
	memcpy(buf + headlen, text, tlen);
	proto_put_frame(b, type, buf, headlen + tlen);
}

void proto_put_ok(struct proto_buf *b, uint16_t request)
{
	uint8_t p[4] = {0};

	put_be16(p, request);
	proto_put_frame(b, PROTO_OK, p, sizeof(p));
}

void proto_put_error(struct proto_buf *b, uint32_t code, uint16_t request, const char *fmt, ...)
{
	char msg[400];
	uint8_t head[8] = {0};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	put_be32(head, code);
	put_be16(head + 4, request);
	put_code_text(b, PROTO_ERROR, head, sizeof(head), msg);
}

void proto_put_event(struct proto_buf *b, uint8_t event, const char *text)
{
	put_code_text(b, PROTO_EVENT, &event, 1, text ? text : "");
}

void proto_put_u32(struct proto_buf *b, uint16_t type, uint32_t v)
{
	uint8_t p[4];

	put_be32(p, v);
	proto_put_frame(b, type, p, sizeof(p));
}

void proto_put_size(struct proto_buf *b, uint16_t type, uint16_t rows, uint16_t cols)
{
	uint8_t p[4];

	put_be16(p, rows);
	put_be16(p + 2, cols);
	proto_put_frame(b, type, p, sizeof(p));
}

void proto_put_hello_reply(struct proto_buf *b, const struct proto_hello *h)
{
	uint8_t head[8];

	put_be32(head, h->version);
	put_be32(head + 4, h->pid);
	put_code_text(b, PROTO_HELLO_REPLY, head, sizeof(head), h->program);
}

/* Status payload: fixed fields, then a length-prefixed name, then a
 * length-prefixed reason; bytes after those are ignored, so later versions
 * can append fields. */
#define STATUS_FIXED 41

void proto_put_status(struct proto_buf *b, const struct proto_status *s)
{
	uint8_t p[STATUS_FIXED + PROTO_NAME_MAX + 1 + PROTO_REASON_MAX];
	size_t nlen = strnlen(s->name, PROTO_NAME_MAX), rlen = strnlen(s->reason, PROTO_REASON_MAX);

	memset(p, 0, sizeof(p));
	p[0] = s->state;
	put_be16(p + 2, s->clients);
	put_be32(p + 4, s->pid);
	put_be32(p + 8, s->cpus);
	put_be16(p + 12, s->rows);
	put_be16(p + 14, s->cols);
	put_be64(p + 16, s->memory);
	put_be64(p + 24, s->started);
	put_be64(p + 32, s->uptime_ms);
	p[40] = (uint8_t)nlen;
	memcpy(p + STATUS_FIXED, s->name, nlen);
	p[STATUS_FIXED + nlen] = (uint8_t)rlen;
	memcpy(p + STATUS_FIXED + nlen + 1, s->reason, rlen);
	proto_put_frame(b, PROTO_STATUS_REPLY, p, STATUS_FIXED + nlen + 1 + rlen);
}

/* Copies text from the wire, stopping at a NUL and replacing control
 * characters, so a message can be printed on a terminal as it is. */
static void copy_text(char *dst, size_t dstlen, const uint8_t *src, size_t srclen)
{
	size_t n = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < srclen && n + 1 < dstlen; i++) {
		uint8_t c = src[i];
		if (c == 0)
			break;
		dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
}

int proto_get_u32(const struct proto_frame *f, uint32_t *v)
{
	if (f->len != 4)
		return -1;
	*v = get_be32(f->payload);
	return 0;
}

static bool dim_ok(uint16_t v)
{
	return v >= PROTO_MIN_DIM && v <= PROTO_MAX_DIM;
}

int proto_get_size(const struct proto_frame *f, uint16_t *rows, uint16_t *cols)
{
	if (f->len != 4)
		return -1;
	*rows = get_be16(f->payload);
	*cols = get_be16(f->payload + 2);
	return dim_ok(*rows) && dim_ok(*cols) ? 0 : -1;
}

int proto_get_attach(const struct proto_frame *f, uint8_t *mode, uint8_t *console, uint16_t *rows,
		     uint16_t *cols)
{
	if (f->len != 6 || f->payload[1] > PROTO_CONSOLE_HVC)
		return -1;
	*mode = f->payload[0];
	*console = f->payload[1];
	*rows = get_be16(f->payload + 2);
	*cols = get_be16(f->payload + 4);
	if (*mode != PROTO_ATTACH_RW && *mode != PROTO_ATTACH_RO)
		return -1;
	return dim_ok(*rows) && dim_ok(*cols) ? 0 : -1;
}

int proto_get_ok(const struct proto_frame *f, uint16_t *request)
{
	if (f->type != PROTO_OK || f->len < 2)
		return -1;
	*request = get_be16(f->payload);
	return 0;
}

int proto_get_error(const struct proto_frame *f, uint32_t *code, uint16_t *request, char *msg,
		    size_t msglen)
{
	if (f->type != PROTO_ERROR || f->len < 8)
		return -1;
	*code = get_be32(f->payload);
	*request = get_be16(f->payload + 4);
	copy_text(msg, msglen, f->payload + 8, f->len - 8);
	return 0;
}

int proto_get_event(const struct proto_frame *f, uint8_t *event, char *text, size_t textlen)
{
	if (f->type != PROTO_EVENT || f->len < 1)
		return -1;
	*event = f->payload[0];
	copy_text(text, textlen, f->payload + 1, f->len - 1);
	return 0;
}

int proto_get_hello_reply(const struct proto_frame *f, struct proto_hello *h)
{
	if (f->type != PROTO_HELLO_REPLY || f->len < 8)
		return -1;
	h->version = get_be32(f->payload);
	h->pid = get_be32(f->payload + 4);
	copy_text(h->program, sizeof(h->program), f->payload + 8, f->len - 8);
	return 0;
}

int proto_get_status(const struct proto_frame *f, struct proto_status *s)
{
	const uint8_t *p = f->payload;
	size_t nlen;

	if (f->type != PROTO_STATUS_REPLY || f->len < STATUS_FIXED)
		return -1;
	nlen = p[40];
	if (nlen > PROTO_NAME_MAX || STATUS_FIXED + nlen > f->len)
		return -1;
	memset(s, 0, sizeof(*s));
	s->state = p[0];
	s->clients = get_be16(p + 2);
	s->pid = get_be32(p + 4);
	s->cpus = get_be32(p + 8);
	s->rows = get_be16(p + 12);
	s->cols = get_be16(p + 14);
	s->memory = get_be64(p + 16);
	s->started = get_be64(p + 24);
	s->uptime_ms = get_be64(p + 32);
	copy_text(s->name, sizeof(s->name), p + STATUS_FIXED, nlen);
	if (f->len > STATUS_FIXED + nlen) {
		size_t rlen = p[STATUS_FIXED + nlen];
		if (rlen > PROTO_REASON_MAX || STATUS_FIXED + nlen + 1 + rlen > f->len)
			return -1;
		copy_text(s->reason, sizeof(s->reason), p + STATUS_FIXED + nlen + 1, rlen);
	}
	return 0;
}

int proto_kv_put(struct proto_buf *b, const char *key, const char *value)
{
	if (strchr(key, '\n') != NULL || strchr(key, '=') != NULL || strchr(value, '\n') != NULL)
		return -1;
	proto_buf_append(b, key, strlen(key));
	proto_buf_append(b, "=", 1);
	proto_buf_append(b, value, strlen(value));
	proto_buf_append(b, "\n", 1);
	return 0;
}

int proto_kv_get(const void *payload, size_t len, const char *key, char *buf, size_t buflen)
{
	const char *p = payload, *end = p + len;
	size_t klen = strlen(key);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;

		if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t vlen = (size_t)(eol - v);

			if (vlen + 1 > buflen || memchr(v, 0, vlen) != NULL)
				return -2;
			memcpy(buf, v, vlen);
			buf[vlen] = 0;
			return (int)vlen;
		}
		p = eol + 1;
	}
	return -1;
}

/* Appends word to the space-separated list in buf, when it fits whole. */
static void append_word(char *buf, size_t len, const char *word)
{
	size_t l = strlen(buf), n = strlen(word);

	if (l + (l > 0) + n < len) {
		if (l > 0)
			buf[l++] = ' ';
		memcpy(buf + l, word, n + 1);
	}
}

unsigned proto_kv_nic_count(const char *kv)
{
	char n[16];

	if (proto_kv_get(kv, strlen(kv), "nics", n, sizeof(n)) < 0)
		return 0;
	return (unsigned)MIN(strtoul(n, NULL, 10), NET_NICS_MAX);
}

void proto_kv_nic_field(const char *kv, unsigned i, const char *name, char *buf, size_t len)
{
	char key[32];

	snprintf(key, sizeof(key), "nic%u.%s", i, name);
	if (proto_kv_get(kv, strlen(kv), key, buf, len) < 0)
		buf[0] = '\0';
}

void proto_kv_put_nics(struct proto_buf *b, const struct vm_nic *nics, size_t n,
		       const char (*addr)[64])
{
	char key[48], val[NET_FORWARDS_MAX * 40], one[96];

	snprintf(val, sizeof(val), "%zu", n);
	proto_kv_put(b, "nics", val);
	for (size_t i = 0; i < n; i++) {
		const struct vm_nic *nic = &nics[i];

		snprintf(key, sizeof(key), "nic%zu.mode", i);
		proto_kv_put(b, key, net_mode_name(nic->mode));
		net_mac_format(nic->mac, one, sizeof(one));
		snprintf(key, sizeof(key), "nic%zu.mac", i);
		proto_kv_put(b, key, one);
		snprintf(key, sizeof(key), "nic%zu.address", i);
		proto_kv_put(b, key, addr != NULL ? addr[i] : "");
		val[0] = '\0';
		for (unsigned j = 0; j < nic->nforwards && j < NET_FORWARDS_MAX; j++) {
			net_forward_format(&nic->forwards[j], one, sizeof(one));
			append_word(val, sizeof(val), one);
		}
		snprintf(key, sizeof(key), "nic%zu.forwards", i);
		proto_kv_put(b, key, val);
	}
}
