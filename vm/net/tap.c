/* The "tap" backend: a host tap device, made beforehand by the administrator
 * for the user (`ip tuntap add dev NAME mode tap user USER`), optionally put
 * on a bridge. Frames are plain Ethernet: IFF_NO_PI, no virtio-net header. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "vm/net/net.h"
#include "vm/net/rxhold.h"
#include "vm/net/tap.h"

struct tap_backend {
	struct net_backend b;
	int fd;
	char ifname[IFNAMSIZ];
	struct net_rxhold rx;
	uint8_t frame[NET_FRAME_MAX + 1];
};

static const char *tap_user(void)
{
	const struct passwd *pw = getpwuid(getuid());

	return pw ? pw->pw_name : "$USER";
}

/* What the administrator runs once so that this user may open the device. */
static int tap_advice(struct tv_err *err, const char *ifname, const char *what)
{
	return tv_errf(err,
		       "tap %s: %s; create the device for your user once, as root: "
		       "ip tuntap add dev %s mode tap user %s && ip link set %s up",
		       ifname, what, ifname, tap_user(), ifname);
}

static int tap_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct tap_backend *t = (struct tap_backend *)b;
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len < NET_ETH_HLEN || len > NET_FRAME_MAX ||
	    writev(t->fd, iov, iovcnt) != (ssize_t)len) {
		b->tx_dropped++;
		return -1;
	}
	return 0;
}

static int tap_pollfds(struct net_backend *b, struct pollfd *pfd, int max, int *timeout_ms)
{
	*timeout_ms = -1;
	return net_rxhold_pollfds(&((struct tap_backend *)b)->rx, pfd, max, timeout_ms);
}

static ssize_t tap_read(void *ctx, int fd, uint8_t *frame, size_t size)
{
	(void)ctx;
	ssize_t n = read(fd, frame, size);

	return n == 0 ? -1 : n;
}

static void tap_ready(struct net_backend *b, const struct pollfd *pfd, int n)
{
	net_rxhold_ready(b, &((struct tap_backend *)b)->rx);
}

static void tap_rx_ready(struct net_backend *b)
{
	((struct tap_backend *)b)->rx.paused = false;
}

static void tap_info(struct net_backend *b, char *buf, size_t len)
{
	snprintf(buf, len, "tap %s", ((struct tap_backend *)b)->ifname);
}

static void tap_free(struct net_backend *b)
{
	struct tap_backend *t = (struct tap_backend *)b;

	close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
    .mode = "tap",
    .send = tap_send,
    .pollfds = tap_pollfds,
    .ready = tap_ready,
    .rx_ready = tap_rx_ready,
    .info = tap_info,
    .free = tap_free,
};

/* Puts the tap on the bridge (which needs CAP_NET_ADMIN; a tap already on
 * it is fine). */
static int tap_bridge(const struct vm_nic *nic, struct tv_err *err)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (s < 0)
		return tv_errno(err, "tap %s: socket", nic->ifname);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", nic->bridge);
	ifr.ifr_ifindex = (int)if_nametoindex(nic->ifname);
	rc = ioctl(s, SIOCBRADDIF, &ifr);
	close(s);
	if (rc == 0 || errno == EBUSY)
		return 0;
	if (errno == ENODEV || errno == EINVAL)
		return tv_errf(err, "tap %s: bridge %s: no such bridge", nic->ifname, nic->bridge);
	return tv_errf(err,
		       "tap %s: cannot put it on bridge %s (%s); as root, run once: "
		       "ip link set %s master %s",
		       nic->ifname, nic->bridge, strerror(errno), nic->ifname, nic->bridge);
}

int net_tap_open_at(const struct vm_nic *nic, const char *tun_dev, struct net_backend **out,
		    struct tv_err *err)
{
	struct ifreq ifr = {0};
	struct tap_backend *t;
	int fd;

	if (!nic->ifname[0])
		return tv_errf(err, "tap: no interface named (ifname = \"tv-lab1\";)");
	if (strnlen(nic->ifname, sizeof(nic->ifname)) >= IFNAMSIZ)
		return tv_errf(err, "tap %.16s: interface names have at most %d characters",
			       nic->ifname, IFNAMSIZ - 1);
	fd = open(tun_dev, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		char what[256];
		if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
			snprintf(what, sizeof(what),
				 "%s does not exist (the kernel's tun module: modprobe tun)",
				 tun_dev);
		else
			snprintf(what, sizeof(what), "cannot open %s (%s)", tun_dev,
				 strerror(errno));
		return tap_advice(err, nic->ifname, what);
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", nic->ifname);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		char what[256];
		close(fd);
		if (e == EPERM || e == EACCES)
			snprintf(what, sizeof(what),
				 "not allowed to use it (it does not exist, or belongs to "
				 "another user)");
		else if (e == EBUSY)
			return tv_errf(err, "tap %s: in use by another process", nic->ifname);
		else if (e == EINVAL)
			return tv_errf(err, "tap %s: exists but is not a tap device", nic->ifname);
		else
			snprintf(what, sizeof(what), "%s is not a tun device (%s)", tun_dev,
				 strerror(e));
		return tap_advice(err, nic->ifname, what);
	}
	if (nic->bridge[0] && tap_bridge(nic, err) < 0) {
		close(fd);
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
	t->b.ops = &tap_ops;
	t->fd = fd;
	t->rx = (struct net_rxhold){.fd = fd, .frame = t->frame, .read = tap_read};
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	*out = &t->b;
	return 0;
}

int net_tap_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err)
{
	return net_tap_open_at(nic, "/dev/net/tun", out, err);
}
