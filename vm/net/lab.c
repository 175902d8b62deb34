/* The "lab" backend: a member of a lab network's switch (src/lab/). One
 * datagram per Ethernet frame to the switch's socket, a zero-length datagram
 * every LAB_KEEPALIVE_S seconds so the switch knows the member lives. The
 * socket is connected to the switch, so only the switch can send to it. */
#include <errno.h>
#include <poll.h>
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

#define LAB_KEEPALIVE_MS 5000 /* LAB_KEEPALIVE_S of src/lab/lab.h */
#define LAB_SEND_WAIT_MS 20   /* how long a frame waits for room at the switch */

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

static int lab_connect(struct lab_backend *l)
{
	return connect(l->fd, (struct sockaddr *)&l->sw, sizeof(l->sw));
}

/* The keepalive; when the switch is gone (a new one may serve the network
 * now), the member connects again. */
static void lab_keepalive(struct lab_backend *l)
{
	if (send(l->fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
	    lab_connect(l) == 0)
		send(l->fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL);
	l->keepalive_due_ms = now_ms() + LAB_KEEPALIVE_MS;
}

static int lab_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct lab_backend *l = (struct lab_backend *)b;
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len < NET_ETH_HLEN || len > NET_FRAME_MAX) {
		b->tx_dropped++;
		return -1;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sendmsg(l->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
			return 0;
		if (errno != EAGAIN)
			break;
		struct pollfd pfd = {l->fd, POLLOUT, 0};
		poll(&pfd, 1, LAB_SEND_WAIT_MS); /* the switch is busy: a moment's room */
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

static ssize_t lab_read(int fd, uint8_t *frame, size_t size)
{
	return recv(fd, frame, size, MSG_DONTWAIT | MSG_TRUNC);
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
	int size = 4 << 20;

	if (!nic->lab_socket[0] || strnlen(nic->lab_socket, sizeof(nic->lab_socket)) >=
					   sizeof(l->sw.sun_path))
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
	/* an address of its own (the kernel picks it), so the switch can answer */
	if (bind(l->fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 || lab_connect(l) < 0) {
		tv_errno(err, "lab network %s: cannot reach its switch at %s", nic->lab_name,
			 nic->lab_socket);
		close(l->fd);
		free(l);
		return -1;
	}
	l->rx = (struct net_rxhold){.fd = l->fd, .frame = l->frame, .read = lab_read};
	lab_keepalive(l);
	*out = &l->b;
	return 0;
}
