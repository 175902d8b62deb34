/* The lab switch: one datagram socket, members known by their source address,
 * a table of learnt MAC addresses, all in fixed tables allocated once. It
 * never blocks on a member: a member whose queue is full loses that frame, as
 * on a real network. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "src/lab/lab.h"
#include "vm/net/net.h"

#define ETH_HLEN 14
#define NO_MEMBER (-1)

struct lab_member {
	bool used;
	bool keepalive; /* sends keepalives, so its silence means it is gone */
	struct sockaddr_un addr;
	socklen_t alen;
	uint64_t heard_ns;
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
		*m = (struct lab_member){.used = true, .alen = alen};
		memcpy(&m->addr, a, alen);
		sw->nmembers++;
		sw->st->members_joined++;
		return i;
	}
	return NO_MEMBER;
}

/* A member left: its addresses are forgotten, so frames for them flood again. */
static void member_drop(struct lab_switch *sw, int i)
{
	if (!sw->members[i].used)
		return;
	sw->members[i].used = false;
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

static void deliver(struct lab_switch *sw, int to, size_t len)
{
	struct lab_member *m = &sw->members[to];

	if (sendto(sw->fd, sw->frame, len, MSG_DONTWAIT | MSG_NOSIGNAL,
		   (const struct sockaddr *)&m->addr, m->alen) == (ssize_t)len) {
		sw->st->frames_out++;
		return;
	}
	if (errno == EAGAIN || errno == ENOBUFS || errno == ENOMEM || errno == EINTR)
		sw->st->dropped_busy++; /* its queue is full: this frame is lost */
	else
		member_drop(sw, to); /* its socket is gone (ECONNREFUSED, ENOENT) */
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
		struct msghdr msg = {.msg_name = &a, .msg_namelen = sizeof(a), .msg_iov = &iov,
				     .msg_iovlen = 1};
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
	struct lab_switch *sw = mmap(NULL, sizeof(*sw), PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t empty_since = now_ns();

	if (sw == MAP_FAILED)
		return -1;
	sw->fd = fd;
	sw->st = stats;
	for (unsigned k = 0; k < LAB_MACS_MAX; k++)
		sw->macs[k].member = NO_MEMBER;
	while (!*stop) {
		struct pollfd pfd = {fd, POLLIN, 0};
		uint64_t now;

		if (poll(&pfd, 1, 1000) > 0)
			drain(sw);
		now = now_ns();
		expire(sw, now);
		if (sw->nmembers)
			empty_since = now;
		else if (linger_s && now - empty_since >= linger_s * 1000000000ull)
			break;
	}
	munmap(sw, sizeof(*sw));
	return 0;
}
