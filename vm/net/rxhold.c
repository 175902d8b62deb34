#include "vm/net/rxhold.h"

#define NET_RX_BUDGET 64 /* frames per round, so transmit gets its turn */

int net_rxhold_pollfds(struct net_rxhold *h, struct pollfd *pfd, int max, int *timeout_ms)
{
	if (h->pending && !h->paused)
		*timeout_ms = 0;
	if (h->paused || h->pending || max < 1)
		return 0;
	pfd[0] = (struct pollfd){h->fd, POLLIN, 0};
	return 1;
}

static bool rxhold_deliver(struct net_backend *b, struct net_rxhold *h, size_t len)
{
	if (b->rx(b->rx_ctx, h->frame, len)) {
		h->pending = 0;
		return true;
	}
	h->pending = len;
	h->paused = true;
	return false;
}

void net_rxhold_ready(struct net_backend *b, struct net_rxhold *h)
{
	if (h->paused || (h->pending && !rxhold_deliver(b, h, h->pending)))
		return;
	for (unsigned budget = 0; budget < NET_RX_BUDGET; budget++) {
		ssize_t got = h->read(h->read_ctx, h->fd, h->frame, NET_FRAME_MAX + 1);
		if (got < 0)
			return;
		if (got == 0)
			continue; /* a keepalive */
		if (got < NET_ETH_HLEN || got > NET_FRAME_MAX) {
			b->rx_dropped++;
			continue;
		}
		if (!rxhold_deliver(b, h, (size_t)got))
			return;
	}
}
