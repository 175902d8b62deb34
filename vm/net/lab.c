/* The "lab" backend: a member of a lab network's switch (src/lab/). One
 * datagram per Ethernet frame to the switch's socket, a zero-length datagram
 * every LAB_KEEPALIVE_S seconds so the switch knows the member lives. The
 * switch answers from a socket of its own per member, so the member's socket
 * stays unconnected, with an address the kernel picks; the kernel's
 * credentials on every datagram (SO_PASSCRED) keep other users' out. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vm/net/net.h"
#include "vm/net/rxhold.h"

#define LAB_KEEPALIVE_MS  5000 /* LAB_KEEPALIVE_S of src/lab/lab.h */
#define LAB_SEND_TRIES	  40   /* a frame waits up to 40 x 250 us for room at the switch */
#define LAB_SEND_PAUSE_NS 250000

struct lab_backend {
	struct net_backend b;
	int fd;
	char name[64];
	struct sockaddr_un sw;
	uint64_t keepalive_due_ms;
	struct net_rxhold rx;
	uint8_t frame[NET_FRAME_MAX + 1];
};

static uint64_t now_ms(void)
{
	return monotonic_ns() / 1000000;
}

static ssize_t lab_sendmsg(struct lab_backend *l, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = {.msg_name = &l->sw,
			     .msg_namelen = sizeof(l->sw),
			     .msg_iov = (struct iovec *)iov,
			     .msg_iovlen = (size_t)iovcnt};

	return sendmsg(l->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* The keepalive: it also makes the member known to a switch that started
 * anew on the same socket. */
static void lab_keepalive(struct lab_backend *l)
{
	lab_sendmsg(l, NULL, 0);
	l->keepalive_due_ms = now_ms() + LAB_KEEPALIVE_MS;
}

static int lab_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct lab_backend *l = (struct lab_backend *)b;
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len < NET_ETH_HLEN || len > NET_FRAME_MAX) {
		b->tx_dropped++;
		return -1;
	}
	for (int attempt = 0; attempt < LAB_SEND_TRIES; attempt++) {
		if (lab_sendmsg(l, iov, iovcnt) == (ssize_t)len)
			return 0;
		if (errno != EAGAIN)
			break;
		/* the switch's queue is full for a moment: it drains it at once */
		nanosleep(&(struct timespec){0, LAB_SEND_PAUSE_NS}, NULL);
	}
	b->tx_dropped++;
	return -1;
}

static int lab_pollfds(struct net_backend *b, struct pollfd *pfd, int max, int *timeout_ms)
{
	struct lab_backend *l = (struct lab_backend *)b;
	uint64_t now = now_ms();

	*timeout_ms = l->keepalive_due_ms > now ? (int)(l->keepalive_due_ms - now) : 0;
	return net_rxhold_pollfds(&l->rx, pfd, max, timeout_ms);
}

/* One datagram, kept only when a process of this user sent it (the switch):
 * 0 (skip it) for anyone else's. */
static ssize_t lab_read(int fd, uint8_t *frame, size_t size)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {frame, size};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	struct ucred cred;

	if (n < 0)
		return n;
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS ||
	    c->cmsg_len < CMSG_LEN(sizeof(cred)))
		return 0;
	memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	return cred.uid == getuid() ? n : 0;
}

static void lab_ready(struct net_backend *b, const struct pollfd *pfd, int n)
{
	struct lab_backend *l = (struct lab_backend *)b;

	if (now_ms() >= l->keepalive_due_ms)
		lab_keepalive(l);
	net_rxhold_ready(b, &l->rx);
}

static void lab_rx_ready(struct net_backend *b)
{
	((struct lab_backend *)b)->rx.paused = false;
}

static void lab_info(struct net_backend *b, char *buf, size_t len)
{
	snprintf(buf, len, "lab %s", ((struct lab_backend *)b)->name);
}

static void lab_free(struct net_backend *b)
{
	struct lab_backend *l = (struct lab_backend *)b;

	close(l->fd);
	free(l);
}

static const struct net_backend_ops lab_ops = {
    .mode = "lab",
    .send = lab_send,
    .pollfds = lab_pollfds,
    .ready = lab_ready,
    .rx_ready = lab_rx_ready,
    .info = lab_info,
    .free = lab_free,
};

int net_lab_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err)
{
	struct lab_backend *l;
	struct sockaddr_un self = {.sun_family = AF_UNIX};
	int size = 4 << 20, on = 1;

	if (!nic->lab_socket[0] ||
	    strnlen(nic->lab_socket, sizeof(nic->lab_socket)) >= sizeof(l->sw.sun_path))
		return tv_errf(err, "lab network %s: no switch socket given", nic->lab_name);
	l = xcalloc(1, sizeof(*l));
	l->b.ops = &lab_ops;
	snprintf(l->name, sizeof(l->name), "%s", nic->lab_name);
	l->sw.sun_family = AF_UNIX;
	memcpy(l->sw.sun_path, nic->lab_socket, strlen(nic->lab_socket));
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		free(l);
		return tv_errno(err, "lab network %s: socket", nic->lab_name);
	}
	setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	/* an address of its own (the kernel picks it), so the switch can answer;
	 * the sender's credentials on every datagram */
	if (setsockopt(l->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
	    bind(l->fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 ||
	    lab_sendmsg(l, NULL, 0) < 0) {
		tv_errno(err, "lab network %s: cannot reach its switch at %s", nic->lab_name,
			 nic->lab_socket);
		close(l->fd);
		free(l);
		return -1;
	}
	l->rx = (struct net_rxhold){.fd = l->fd, .frame = l->frame, .read = lab_read};
	l->keepalive_due_ms = now_ms() + LAB_KEEPALIVE_MS;
	*out = &l->b;
	return 0;
}
