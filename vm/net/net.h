/* Network backends: where a virtio-net device's frames go. The device
 * (vm/dev/virtio-net.c) owns one I/O thread per NIC that polls the backend's
 * descriptors next to its own queue notifications; the backend never touches
 * guest memory. Frames are plain Ethernet (no virtio-net header), at most
 * NET_FRAME_MAX bytes.
 *
 * Modes: "user" (vm/net/user.c, libslirp: NAT, DHCP, DNS, forwards, no
 * privileges), "lab" (vm/net/lab.c, a named layer-2 network through the
 * user's switch process, src/lab/), "tap" (vm/net/tap.c, a host tap device).
 * A new mode (passt) is one more file and one more row in net_modes[]
 * (vm/net/backend.c). */
#ifndef TV_NET_H
#define TV_NET_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"

#define NET_FRAME_MAX 65550 /* 64 KiB payload + Ethernet header, VLAN tag */
#define NET_FORWARDS_MAX 16
#define NET_NICS_MAX 4

enum net_mode { NET_MODE_USER = 0, NET_MODE_LAB, NET_MODE_TAP };

/* A host port forward: proto "tcp" or "udp", host address (NULL or "":
 * 127.0.0.1), host port, guest port (the guest's address is the one the
 * user network's DHCP hands out, 10.0.2.15). */
struct net_forward {
	char proto[4];
	char host_addr[64];
	uint16_t host_port;
	uint16_t guest_port;
};

/* A NIC of a VM, as the definition (or `run --net`) gives it. */
struct vm_nic {
	enum net_mode mode;
	uint8_t mac[6];
	/* user */
	struct net_forward forwards[NET_FORWARDS_MAX];
	unsigned nforwards;
	/* lab: the switch's socket (the VM process resolves the name to it and
	 * starts the switch when needed) */
	char lab_name[64];
	char lab_socket[108];
	/* tap */
	char ifname[16];
	char bridge[16];
};

/* Received frames are handed to the device, which copies them into the
 * guest's receive queue; it returns false when the guest has no buffer, and
 * the backend keeps (or drops) the frame and stops reading until
 * net_backend_rx_ready is called. */
typedef bool (*net_rx_fn)(void *ctx, const void *frame, size_t len);

struct net_backend;

struct net_backend_ops {
	const char *mode; /* "user", "lab", "tap" */
	/* A frame from the guest. Returns 0 (sent, or held until it can go: see
	 * tx_busy), or -1 when it was dropped (counted). */
	int (*send)(struct net_backend *b, const struct iovec *iov, int iovcnt);
	/* True while the backend holds a frame it could not send yet: the NIC
	 * takes no more from the guest until after a ready call that makes it
	 * false (a full transmit ring, as on a real NIC). May be NULL. */
	bool (*tx_busy)(struct net_backend *b);
	/* Descriptors to poll (at most max) and a timeout in ms (-1: none; the
	 * caller takes the smallest). Returns the count. */
	int (*pollfds)(struct net_backend *b, struct pollfd *pfd, int max, int *timeout_ms);
	/* After poll, the same entries with revents (also called on timeout, n
	 * may be 0): read frames, run timers. */
	void (*ready)(struct net_backend *b, const struct pollfd *pfd, int n);
	/* The guest refilled its receive queue: start reading again. May be NULL. */
	void (*rx_ready)(struct net_backend *b);
	/* One line of state for `status` (the DHCP lease: "10.0.2.15"), or "". May be NULL. */
	void (*info)(struct net_backend *b, char *buf, size_t len);
	void (*free)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	net_rx_fn rx;
	void *rx_ctx;
	uint64_t tx_dropped, rx_dropped;
};

/* Opens the NIC's backend (rx and rx_ctx are set by the caller after).
 * Errors name the NIC's mode and what was wrong (a forward's port in use, a
 * missing tap device and the command that makes one). */
int net_backend_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err);
int net_user_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err);
int net_lab_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err);
int net_tap_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err);

/* "user", "lab", "tap"; parse returns -1 for anything else. */
const char *net_mode_name(enum net_mode m);
int net_mode_parse(const char *s, enum net_mode *out);

/* "tcp:127.0.0.1:2222:22", "tcp::2222:22" or "udp:5353:53" (host address
 * optional); errors name the text and the part that is wrong. */
int net_forward_parse(const char *text, struct net_forward *f, struct tv_err *err);
void net_forward_format(const struct net_forward *f, char *buf, size_t len);
/* "52:54:00:12:34:56" both ways; a generated MAC is locally administered,
 * unicast, with termvisor's prefix 52:54:00 kept as QEMU's guests expect. */
int net_mac_parse(const char *text, uint8_t mac[6], struct tv_err *err);
void net_mac_format(const uint8_t mac[6], char *buf, size_t len);
void net_mac_generate(uint8_t mac[6]);

#endif
