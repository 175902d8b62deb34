/* virtio-net's queue handling, apart from its thread and backend so the unit
 * test and the fuzz target can drive it over rings in plain memory. Every
 * chain is guest input: lengths, header fields and buffer counts are checked
 * here, and a frame that does not fit the rules is dropped and counted. */
#ifndef TV_VIRTIO_NET_H
#define TV_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/dev/virtio-queue.h"
#include "vm/net/net.h"

#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE	    0
#define VIRTIO_NET_HDR_LEN	    12 /* struct virtio_net_hdr with num_buffers (virtio 1.x) */
#define VIRTIO_NET_S_LINK_UP	    1

#define VNET_ETH_MIN 14 /* an Ethernet header */

struct vnet_stats {
	uint64_t tx_frames, tx_dropped; /* dropped: runt, oversized, bad header */
	uint64_t rx_frames, rx_dropped; /* dropped: no room the rules allow, bad buffer */
};

/* Takes one frame from the transmit queue into buf (header then frame, at
 * most cap bytes), completes its checksum when the header asks for one
 * (csum: VIRTIO_NET_F_CSUM negotiated) and gives the chain back. Returns 1
 * with the frame at buf + VIRTIO_NET_HDR_LEN, *len bytes long; 2 when the
 * chain was dropped (counted); 0 when the queue is empty; -1 when it broke. */
int vnet_tx_pop(struct vq *vq, struct vq_req *r, uint8_t *buf, size_t cap, bool csum,
		size_t *len, struct vnet_stats *st);

/* Puts a frame into the receive queue behind a header: in one chain, or with
 * mrg (VIRTIO_NET_F_MRG_RXBUF) over as many chains as it takes. heads and
 * lens have room for VQ_MAX_SIZE entries. Returns 1 when delivered; 0 when
 * the driver has not posted room for it yet (nothing taken: try again after
 * its next notify); 2 when it was dropped (a buffer breaking the rules: the
 * chains taken go back empty); -1 when the queue broke. */
int vnet_rx_put(struct vq *vq, struct vq_req *r, bool mrg, const void *frame, size_t len,
		uint16_t *heads, uint32_t *lens, struct vnet_stats *st);

#endif
