/* The "user" backend: libslirp's user-mode network stack, no privileges.
 * The guest sees 10.0.2.0/24 with the gateway (and the host's loopback) at
 * 10.0.2.2, DNS at 10.0.2.3 and DHCP handing out 10.0.2.15; its TCP and UDP
 * leave through ordinary host sockets, ICMP echo through ping sockets where
 * the host allows them (net.ipv4.ping_group_range). Forwards listen on the
 * host (127.0.0.1 unless the forward names an address) and connect to the
 * guest's port.
 *
 * Everything runs on the NIC's thread: slirp is not thread-safe, so only
 * the lease, which `status` reads from another thread, has a lock. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slirp/libslirp.h>

#include "vm/net/net.h"
#include "common/util.h"

#define USER_NET     "10.0.2.0"
#define USER_MASK    "255.255.255.0"
#define USER_GATEWAY "10.0.2.2"
#define USER_DNS     "10.0.2.3"
#define USER_GUEST   "10.0.2.15"
/* Frames held while the guest has no receive buffer; more are dropped. As
 * many as the device's receive ring holds: slirp keeps running while the
 * guest is full (its timers, its writes to the host and the window updates
 * these send), and a frame dropped here costs TCP a retransmit timeout. */
#define USER_PENDING_MAX 256

struct user_timer {
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
	struct user_timer *next;
};

struct user_frame {
	size_t len;
	uint8_t data[];
};

struct user_net {
	struct net_backend b;
	Slirp *slirp;
	struct user_timer *timers;
	/* Between pollfds and ready: the caller's entries. */
	struct pollfd *pfd;
	int npfd, maxpfd;
	bool filled;
	bool held; /* filled while blocked: the sockets were polled for writing only */
	/* The guest's receive queue was full: frames wait here, and the
	 * sockets are not read until rx_ready (but written, and the TCP
	 * timers run: see user_pollfds). */
	struct user_frame *pending[USER_PENDING_MAX];
	unsigned npending;
	bool blocked;
	pthread_mutex_t lease_lock;
	char lease[INET_ADDRSTRLEN];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t user_clock_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

/* ---- frames to the guest ---- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A DHCP ACK on its way to the guest: its yiaddr is the guest's lease. */
static void user_watch_lease(struct user_net *u, const uint8_t *f, size_t len)
{
	const uint8_t *ip, *udp, *bootp, *opt, *end;
	size_t ihl;

	if (len < 14 + 20 || be16(f + 12) != 0x0800)
		return;
	ip = f + 14;
	ihl = (size_t)(ip[0] & 15) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 17 || len < 14 + ihl + 8 + 240)
		return;
	udp = ip + ihl;
	if (be16(udp) != 67 || be16(udp + 2) != 68)
		return;
	bootp = udp + 8;
	if (bootp[0] != 2 || be16(bootp + 236) != 0x6382 || be16(bootp + 238) != 0x5363)
		return;
	end = f + len;
	for (opt = bootp + 240; opt < end && *opt != 255;) {
		if (*opt == 0) {
			opt++;
			continue;
		}
		if (end - opt < 2 || end - opt < 2 + opt[1])
			return;
		if (opt[0] == 53 && opt[1] == 1 && opt[2] == 5) { /* DHCPACK */
			pthread_mutex_lock(&u->lease_lock);
			inet_ntop(AF_INET, bootp + 16, u->lease, sizeof(u->lease));
			pthread_mutex_unlock(&u->lease_lock);
			return;
		}
		opt += 2 + opt[1];
	}
}

static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_net *u = opaque;
	struct user_frame *f;

	user_watch_lease(u, buf, len);
	if (!u->blocked && u->b.rx(u->b.rx_ctx, buf, len))
		return (ssize_t)len;
	u->blocked = true;
	if (u->npending == USER_PENDING_MAX) {
		u->b.rx_dropped++;
		return (ssize_t)len;
	}
	f = xmalloc(sizeof(*f) + len);
	f->len = len;
	memcpy(f->data, buf, len);
	u->pending[u->npending++] = f;
	return (ssize_t)len;
}

static void user_rx_ready(struct net_backend *b)
{
	struct user_net *u = (struct user_net *)b;
	unsigned done = 0;

	while (done < u->npending &&
	       u->b.rx(u->b.rx_ctx, u->pending[done]->data, u->pending[done]->len))
		free(u->pending[done++]);
	memmove(u->pending, u->pending + done, (u->npending - done) * sizeof(u->pending[0]));
	u->npending -= done;
	u->blocked = u->npending > 0;
}

/* ---- slirp's callbacks ---- */

static void user_guest_error(const char *msg, void *opaque)
{
	(void)msg;
	((struct user_net *)opaque)->b.tx_dropped++;
}

static void *user_timer_new(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct user_net *u = opaque;
	struct user_timer *t = xcalloc(1, sizeof(*t));

	t->id = id;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void user_timer_free(void *timer, void *opaque)
{
	struct user_net *u = opaque;

	for (struct user_timer **p = &u->timers; *p != NULL; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void user_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	((struct user_timer *)timer)->expire_ms = expire_ms;
}

static void user_poll_fd_nop(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void user_notify(void *opaque)
{
	(void)opaque; /* the NIC's thread polls again after every round */
}

static const SlirpCb user_callbacks = {
    .send_packet = user_send_packet,
    .guest_error = user_guest_error,
    .clock_get_ns = user_clock_ns,
    .timer_free = user_timer_free,
    .timer_mod = user_timer_mod,
    .register_poll_fd = user_poll_fd_nop,
    .unregister_poll_fd = user_poll_fd_nop,
    .notify = user_notify,
    .timer_new_opaque = user_timer_new,
};

/* ---- the backend ---- */

/* slirp takes a frame as one buffer: pieces are joined first. */
static int user_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct user_net *u = (struct user_net *)b;
	size_t len = 0;
	uint8_t *buf;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > NET_FRAME_MAX)
		return -1;
	if (iovcnt == 1) {
		slirp_input(u->slirp, iov[0].iov_base, (int)len);
		return 0;
	}
	buf = xmalloc(len);
	len = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	slirp_input(u->slirp, buf, (int)len);
	free(buf);
	return 0;
}

static int user_add_poll(int fd, int events, void *opaque)
{
	struct user_net *u = opaque;
	short ev = 0;

	if (u->npfd == u->maxpfd)
		return -1; /* not polled this round */
	if (u->held) {
		/* Nothing is read for the guest, which has no room: only what
		 * waits for a host socket is written. */
		if (!(events & SLIRP_POLL_OUT))
			return -1;
		events = SLIRP_POLL_OUT;
	}
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfd[u->npfd] = (struct pollfd){.fd = fd, .events = ev};
	return u->npfd++;
}

static int user_get_revents(int idx, void *opaque)
{
	struct user_net *u = opaque;
	short r;
	int ev = 0;

	if (idx < 0 || idx >= u->npfd)
		return 0;
	r = u->pfd[idx].revents;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	/* Held: an error or hang-up is found by the write, not by a read whose
	 * frames the guest could not take. */
	if (u->held)
		return ev ? SLIRP_POLL_OUT : 0;
	return ev;
}

static int user_pollfds(struct net_backend *b, struct pollfd *pfd, int max, int *timeout_ms)
{
	struct user_net *u = (struct user_net *)b;
	uint32_t t = UINT32_MAX;
	int64_t now = now_ns() / 1000000;

	u->pfd = pfd;
	u->npfd = 0;
	u->maxpfd = max;
	/* Every round, blocked or not: slirp's TCP timers (the delayed ACK,
	 * retransmits) run from its poll, and the data the guest sent must
	 * keep flowing to the host sockets, or the guest's window closes and
	 * its transfer waits for the next receive notify. While the guest has
	 * no room only the reading waits (user_add_poll). */
	u->filled = true;
	u->held = u->blocked;
	slirp_pollfds_fill(u->slirp, &t, user_add_poll, u);
	for (struct user_timer *tm = u->timers; tm != NULL; tm = tm->next) {
		if (tm->expire_ms < 0)
			continue;
		if (tm->expire_ms <= now)
			t = 0;
		else if ((uint64_t)(tm->expire_ms - now) < t)
			t = (uint32_t)(tm->expire_ms - now);
	}
	if (t != UINT32_MAX && (*timeout_ms < 0 || t < (uint32_t)*timeout_ms))
		*timeout_ms = t > INT32_MAX ? INT32_MAX : (int)t;
	return u->npfd;
}

static void user_ready(struct net_backend *b, const struct pollfd *pfd, int n)
{
	struct user_net *u = (struct user_net *)b;
	int64_t now;
	bool fired;

	(void)pfd;
	(void)n;
	if (u->filled)
		slirp_pollfds_poll(u->slirp, 0, user_get_revents, u);
	u->filled = false;
	/* A timer's handler may free or re-arm timers: start over after each. */
	do {
		fired = false;
		now = now_ns() / 1000000;
		for (struct user_timer *t = u->timers; t != NULL; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now) {
				t->expire_ms = -1;
				slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
				fired = true;
				break;
			}
		}
	} while (fired);
}

static void user_info(struct net_backend *b, char *buf, size_t len)
{
	struct user_net *u = (struct user_net *)b;

	pthread_mutex_lock(&u->lease_lock);
	snprintf(buf, len, "%s", u->lease);
	pthread_mutex_unlock(&u->lease_lock);
}

static void user_free(struct net_backend *b)
{
	struct user_net *u = (struct user_net *)b;

	if (u->slirp != NULL)
		slirp_cleanup(u->slirp);
	while (u->timers != NULL) {
		struct user_timer *t = u->timers;

		u->timers = t->next;
		free(t);
	}
	for (unsigned i = 0; i < u->npending; i++)
		free(u->pending[i]);
	pthread_mutex_destroy(&u->lease_lock);
	free(u);
}

static const struct net_backend_ops user_ops = {
    .mode = "user",
    .send = user_send,
    .pollfds = user_pollfds,
    .ready = user_ready,
    .rx_ready = user_rx_ready,
    .info = user_info,
    .free = user_free,
};

static int user_forward(struct user_net *u, const struct net_forward *f, struct tv_err *err)
{
	struct in_addr host, guest;
	const char *addr = f->host_addr[0] ? f->host_addr : "127.0.0.1";
	char text[96];

	net_forward_format(f, text, sizeof(text));
	if (inet_pton(AF_INET, addr, &host) != 1)
		return tv_errf(err, "forward %s: host address \"%s\" is not an IPv4 address", text,
			       addr);
	inet_pton(AF_INET, USER_GUEST, &guest);
	errno = 0;
	if (slirp_add_hostfwd(u->slirp, strcmp(f->proto, "udp") == 0, host, f->host_port, guest,
			      f->guest_port) != 0) {
		if (errno == EADDRINUSE)
			return tv_errf(err,
				       "forward %s: host port %u on %s is already in use (pick "
				       "another host port)",
				       text, f->host_port, addr);
		if (errno != 0)
			return tv_errno(err, "forward %s: cannot listen on %s port %u", text,
					addr, f->host_port);
		return tv_errf(err, "forward %s: cannot listen on %s port %u", text, addr,
			       f->host_port);
	}
	return 0;
}

int net_user_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err)
{
	struct user_net *u = xcalloc(1, sizeof(*u));
	SlirpConfig cfg = {
	    .version = 4,
	    .in_enabled = true,
	};

	inet_pton(AF_INET, USER_NET, &cfg.vnetwork);
	inet_pton(AF_INET, USER_MASK, &cfg.vnetmask);
	inet_pton(AF_INET, USER_GATEWAY, &cfg.vhost);
	inet_pton(AF_INET, USER_GUEST, &cfg.vdhcp_start);
	inet_pton(AF_INET, USER_DNS, &cfg.vnameserver);
	u->b.ops = &user_ops;
	pthread_mutex_init(&u->lease_lock, NULL);
	u->slirp = slirp_new(&cfg, &user_callbacks, u);
	if (u->slirp == NULL) {
		user_free(&u->b);
		return tv_errf(err, "user network: cannot start the network stack (libslirp)");
	}
	for (unsigned i = 0; i < nic->nforwards && i < NET_FORWARDS_MAX; i++) {
		if (user_forward(u, &nic->forwards[i], err) != 0) {
			user_free(&u->b);
			return tv_err_prefix(err, "user network: ");
		}
	}
	*out = &u->b;
	return 0;
}
