/* The lab switch: one datagram socket that every member sends to, members
 * known by their source address, a table of learnt MAC addresses.
 *
 * Frames go to each member through a socket of the switch's own connected to
 * that member, with a short queue of its own: a member that stops reading (a
 * stopped process, a guest that never gives its NIC buffers) fills only its
 * own socket and queue and loses its own frames, while the others go on. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "src/lab/lab.h"
#include "vm/net/net.h"

#define ETH_HLEN	 14
#define NO_MEMBER	 (-1)
#define LAB_QUEUE_FRAMES 256	   /* frames waiting for one member, at most */
#define LAB_QUEUE_BYTES	 (1 << 20) /* and their bytes */

struct lab_frame {
	struct lab_frame *next;
	size_t len;
	uint8_t data[];
};

struct lab_member {
	bool used;
	bool keepalive; /* sends keepalives, so its silence means it is gone */
	struct sockaddr_un addr;
	socklen_t alen;
	uint64_t heard_ns;
	int fd; /* connected to the member: frames to it leave here */
	struct lab_frame *head, *tail;
	unsigned queued;
	size_t queued_bytes;
};

struct lab_mac {
	uint8_t mac[6];
	int member; /* NO_MEMBER: free */
	uint64_t seen_ns;
};

struct lab_switch {
	int fd;
	unsigned nmembers;
	struct lab_member members[LAB_MEMBERS_MAX];
	struct lab_mac macs[LAB_MACS_MAX];
	struct lab_stats *st;
	uint8_t frame[NET_FRAME_MAX + 1];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int member_find(const struct lab_switch *sw, const struct sockaddr_un *a, socklen_t alen)
{
	for (int i = 0; i < LAB_MEMBERS_MAX; i++) {
		const struct lab_member *m = &sw->members[i];
		if (m->used && m->alen == alen && memcmp(&m->addr, a, alen) == 0)
			return i;
	}
	return NO_MEMBER;
}

static int member_add(struct lab_switch *sw, const struct sockaddr_un *a, socklen_t alen)
{
	for (int i = 0; i < LAB_MEMBERS_MAX; i++) {
		struct lab_member *m = &sw->members[i];
		if (m->used)
			continue;
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return NO_MEMBER;
		if (connect(fd, (const struct sockaddr *)a, alen) < 0) {
			close(fd); /* gone already */
			return NO_MEMBER;
		}
		*m = (struct lab_member){.used = true, .alen = alen, .fd = fd};
		memcpy(&m->addr, a, alen);
		sw->nmembers++;
		sw->st->members_joined++;
		return i;
	}
	return NO_MEMBER;
}

/* A member left: its queue and socket go, its addresses are forgotten, so
 * frames for them flood again. */
static void member_drop(struct lab_switch *sw, int i)
{
	struct lab_member *m = &sw->members[i];

	if (!m->used)
		return;
	while (m->head) {
		struct lab_frame *f = m->head;
		m->head = f->next;
		free(f);
	}
	close(m->fd);
	m->used = false;
	sw->nmembers--;
	sw->st->members_left++;
	for (unsigned k = 0; k < LAB_MACS_MAX; k++)
		if (sw->macs[k].member == i)
			sw->macs[k].member = NO_MEMBER;
}

static struct lab_mac *mac_find(struct lab_switch *sw, const uint8_t mac[6], uint64_t now)
{
	for (unsigned k = 0; k < LAB_MACS_MAX; k++) {
		struct lab_mac *e = &sw->macs[k];
		if (e->member != NO_MEMBER && memcmp(e->mac, mac, 6) == 0)
			return now - e->seen_ns < LAB_MAC_AGE_S * 1000000000ull ? e : NULL;
	}
	return NULL;
}

/* Remembers where mac lives; a full table gives up its oldest entry. */
static void mac_learn(struct lab_switch *sw, const uint8_t mac[6], int member, uint64_t now)
{
	static const uint8_t zero[6];
	struct lab_mac *e = NULL, *spare = NULL;

	if ((mac[0] & 1) || memcmp(mac, zero, 6) == 0)
		return; /* a multicast or empty source is nobody's address */
	for (unsigned k = 0; k < LAB_MACS_MAX && !e; k++) {
		struct lab_mac *c = &sw->macs[k];
		if (c->member != NO_MEMBER && memcmp(c->mac, mac, 6) == 0)
			e = c;
		else if (!spare || (spare->member != NO_MEMBER &&
				    (c->member == NO_MEMBER || c->seen_ns < spare->seen_ns)))
			spare = c;
	}
	if (!e) {
		e = spare;
		memcpy(e->mac, mac, 6);
	}
	e->member = member;
	e->seen_ns = now;
}

/* Sends what waits for member i while its socket takes it; false when the
 * member is gone. */
static bool member_flush(struct lab_switch *sw, int i)
{
	struct lab_member *m = &sw->members[i];

	while (m->head) {
		struct lab_frame *f = m->head;
		if (send(m->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS || errno == ENOMEM ||
			    errno == EINTR)
				return true; /* it reads slowly: wait for POLLOUT */
			member_drop(sw, i);  /* its socket is gone (ECONNREFUSED) */
			return false;
		}
		sw->st->frames_out++;
		m->head = f->next;
		m->queued--;
		m->queued_bytes -= f->len;
		free(f);
	}
	m->tail = NULL;
	return true;
}

/* Queues the frame for member to and sends what its socket takes; a full
 * queue loses the frame, as a real switch's port would. */
static void deliver(struct lab_switch *sw, int to, size_t len)
{
	struct lab_member *m = &sw->members[to];
	struct lab_frame *f;

	if (m->queued >= LAB_QUEUE_FRAMES || m->queued_bytes + len > LAB_QUEUE_BYTES ||
	    (f = malloc(sizeof(*f) + len)) == NULL) {
		sw->st->dropped_busy++;
		return;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, sw->frame, len);
	if (m->tail)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	m->queued++;
	m->queued_bytes += len;
	member_flush(sw, to);
}

static void forward(struct lab_switch *sw, int from, size_t len, uint64_t now)
{
	const uint8_t *dst = sw->frame, *src = sw->frame + 6;
	struct lab_mac *e;

	mac_learn(sw, src, from, now);
	if (!(dst[0] & 1) && (e = mac_find(sw, dst, now)) != NULL) {
		if (e->member != from)
			deliver(sw, e->member, len);
		return; /* a frame for the sender's own segment stays there */
	}
	sw->st->flooded++;
	for (int i = 0; i < LAB_MEMBERS_MAX; i++)
		if (i != from && sw->members[i].used)
			deliver(sw, i, len);
}

/* One datagram from the socket. */
static void receive_one(struct lab_switch *sw, const struct sockaddr_un *a, socklen_t alen,
			ssize_t n, int flags, uint64_t now)
{
	int from;

	if (alen <= (socklen_t)sizeof(sa_family_t) || alen > (socklen_t)sizeof(*a))
		return; /* an unbound sender cannot be answered: not a member */
	from = member_find(sw, a, alen);
	if (from == NO_MEMBER && (from = member_add(sw, a, alen)) == NO_MEMBER)
		return; /* full */
	sw->members[from].heard_ns = now;
	if (n == 0) {
		sw->members[from].keepalive = true;
		return;
	}
	sw->st->frames_in++;
	if ((flags & MSG_TRUNC) || (size_t)n > NET_FRAME_MAX) {
		sw->st->dropped_oversized++;
		return;
	}
	if (n < ETH_HLEN) {
		sw->st->dropped_runt++;
		return;
	}
	forward(sw, from, (size_t)n, now);
}

static void drain(struct lab_switch *sw)
{
	for (unsigned budget = 0; budget < 256; budget++) {
		struct sockaddr_un a;
		struct iovec iov = {sw->frame, sizeof(sw->frame)};
		struct msghdr msg = {
		    .msg_name = &a, .msg_namelen = sizeof(a), .msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(sw->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return;
		receive_one(sw, &a, msg.msg_namelen, n, msg.msg_flags, now_ns());
	}
}

/* Members that sent keepalives and then fell silent have gone. */
static void expire(struct lab_switch *sw, uint64_t now)
{
	for (int i = 0; i < LAB_MEMBERS_MAX; i++) {
		const struct lab_member *m = &sw->members[i];
		if (m->used && m->keepalive &&
		    now - m->heard_ns > LAB_MEMBER_SILENT_S * 1000000000ull)
			member_drop(sw, i);
	}
}

int lab_switch_loop(int fd, unsigned linger_s, volatile int *stop, struct lab_stats *stats)
{
	struct lab_switch *sw = calloc(1, sizeof(*sw));
	uint64_t empty_since = now_ns();

	if (sw == NULL)
		return -1;
	sw->fd = fd;
	sw->st = stats;
	for (unsigned k = 0; k < LAB_MACS_MAX; k++)
		sw->macs[k].member = NO_MEMBER;
	while (!*stop) {
		struct pollfd pfd[1 + LAB_MEMBERS_MAX] = {{fd, POLLIN, 0}};
		int who[1 + LAB_MEMBERS_MAX], n = 1;
		uint64_t now;

		for (int i = 0; i < LAB_MEMBERS_MAX; i++) {
			if (sw->members[i].used && sw->members[i].head) {
				pfd[n] = (struct pollfd){sw->members[i].fd, POLLOUT, 0};
				who[n++] = i;
			}
		}
		if (poll(pfd, (nfds_t)n, 1000) > 0) {
			for (int k = 1; k < n; k++)
				if (pfd[k].revents)
					member_flush(sw, who[k]);
			if (pfd[0].revents & POLLIN)
				drain(sw);
		}
		now = now_ns();
		expire(sw, now);
		if (sw->nmembers)
			empty_since = now;
		else if (linger_s && now - empty_since >= linger_s * 1000000000ull)
			break;
	}
	for (int i = 0; i < LAB_MEMBERS_MAX; i++)
		member_drop(sw, i);
	free(sw);
	return 0;
}
