/* The receive side that the lab and tap backends share: frames read from one
 * descriptor into one buffer, the guest's refusal (no receive buffer) keeps
 * the frame and stops reading until net_backend_rx_ready. */
#ifndef TV_NET_RXHOLD_H
#define TV_NET_RXHOLD_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vm/net/net.h"

#define NET_ETH_HLEN 14

struct net_rxhold {
	int fd;
	bool paused;	/* the guest had no buffer */
	size_t pending; /* length of the frame kept in frame[], or 0 */
	uint8_t *frame; /* NET_FRAME_MAX + 1 bytes */
	/* reads one frame into frame[] (MSG_TRUNC lengths allowed): < 0 when none */
	ssize_t (*read)(void *ctx, int fd, uint8_t *frame, size_t size);
	void *read_ctx;
};

/* The descriptor to poll (0 or 1 entries); lowers *timeout_ms to 0 when a
 * kept frame can go. */
int net_rxhold_pollfds(struct net_rxhold *h, struct pollfd *pfd, int max, int *timeout_ms);
/* Hands the kept frame, then what the descriptor has, to the guest. */
void net_rxhold_ready(struct net_backend *b, struct net_rxhold *h);

#endif
