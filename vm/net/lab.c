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
#include <unistd.h>

#include "common/util.h"
#include "vm/net/net.h"
#include "vm/net/rxhold.h"

#define LAB_KEEPALIVE_MS 5000 /* LAB_KEEPALIVE_S of src/lab/lab.h */
/* A frame the switch has no room for is held and sent again when the NIC's
 * thread next wakes, at least every LAB_TX_RETRY_MS; after LAB_TX_GIVEUP_MS
 * it is dropped (a switch that stopped reading must not stop the NIC). */
#define LAB_TX_RETRY_MS	 1
#define LAB_TX_GIVEUP_MS 200

struct lab_backend {
	struct net_backend b;
	int fd;
	char name[64];
	struct sockaddr_un sw;
	uint64_t keepalive_due_ms;
	struct net_rxhold rx;
	uid_t uid;
	size_t tx_len; /* a frame held in tx_frame, or 0 */
	uint64_t tx_since_ms;
	uint8_t frame[NET_FRAME_MAX + 1];
	uint8_t tx_frame[NET_FRAME_MAX];
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
	if (lab_sendmsg(l, iov, iovcnt) == (ssize_t)len)
		return 0;
	/* The switch's socket holds net.unix.max_dgram_qlen datagrams (10 by
	 * default): full for a moment, it has the frame once it has read. The
	 * thread does not wait here, so frames for the guest and the guest's
	 * completed buffers keep moving meanwhile. */
	if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
		size_t off = 0;

		for (int i = 0; i < iovcnt; i++) {
			memcpy(l->tx_frame + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
		l->tx_len = len;
		l->tx_since_ms = now_ms();
		return 0;
	}
	b->tx_dropped++;
	return -1;
}

static bool lab_tx_busy(struct net_backend *b)
{
	return ((struct lab_backend *)b)->tx_len != 0;
}

/* The held frame again: gone when sent, dropped when the switch has taken
 * nothing for LAB_TX_GIVEUP_MS or is gone. */
static void lab_tx_retry(struct lab_backend *l)
{
	struct iovec iov = {l->tx_frame, l->tx_len};

	if (lab_sendmsg(l, &iov, 1) == (ssize_t)l->tx_len) {
		l->tx_len = 0;
		return;
	}
	if ((errno == EAGAIN || errno == ENOBUFS || errno == EINTR) &&
	    now_ms() - l->tx_since_ms < LAB_TX_GIVEUP_MS)
		return;
	l->b.tx_dropped++;
	l->tx_len = 0;
}

static int lab_pollfds(struct net_backend *b, struct pollfd *pfd, int max, int *timeout_ms)
{
	struct lab_backend *l = (struct lab_backend *)b;
	uint64_t now = now_ms();

	*timeout_ms = l->keepalive_due_ms > now ? (int)(l->keepalive_due_ms - now) : 0;
	if (l->tx_len && *timeout_ms > LAB_TX_RETRY_MS)
		*timeout_ms = LAB_TX_RETRY_MS;
	return net_rxhold_pollfds(&l->rx, pfd, max, timeout_ms);
}

/* One datagram, kept only when a process of this user sent it (the switch):
 * 0 (skip it) for anyone else's. */
static ssize_t lab_read(void *ctx, int fd, uint8_t *frame, size_t size)
{
	const struct lab_backend *l = ctx;
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
	return cred.uid == l->uid ? n : 0;
}

static void lab_ready(struct net_backend *b, const struct pollfd *pfd, int n)
{
	struct lab_backend *l = (struct lab_backend *)b;

	if (now_ms() >= l->keepalive_due_ms)
		lab_keepalive(l);
	net_rxhold_ready(b, &l->rx);
	if (l->tx_len)
		lab_tx_retry(l);
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
    .tx_busy = lab_tx_busy,
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
	l->uid = getuid();
	l->rx = (struct net_rxhold){
	    .fd = l->fd, .frame = l->frame, .read = lab_read, .read_ctx = l};
	l->keepalive_due_ms = now_ms() + LAB_KEEPALIVE_MS;
	*out = &l->b;
	return 0;
}
