/* virtio-net's queues (virtio 5.1.6): frames out of the transmit queue,
 * frames into receive buffers. Guest input throughout: see virtio-net.h. */
#include <string.h>

#include "vm/dev/virtio-net.h"
#include "common/util.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The Internet checksum of [start, end) of frame, stored at start + off:
 * the driver has put the pseudo-header's sum there (virtio 5.1.6.2). The
 * one's complement sum does not depend on byte order (RFC 1071): it is
 * taken four bytes at a time in the host's order and stored back in it. */
static void vnet_csum(uint8_t *frame, size_t len, size_t start, size_t off)
{
	const uint8_t *p = frame + start;
	size_t n = len - start;
	uint64_t sum = 0; /* no overflow below 2^32 words */
	uint32_t w32;
	uint16_t w16, c;

	for (; n >= 4; p += 4, n -= 4) {
		memcpy(&w32, p, 4);
		sum += w32;
	}
	if (n >= 2) {
		memcpy(&w16, p, 2);
		sum += w16;
		p += 2;
		n -= 2;
	}
	if (n == 1) {
		uint8_t last[2] = {p[0], 0};

		memcpy(&w16, last, 2);
		sum += w16;
	}
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	c = (uint16_t)~sum;
	memcpy(frame + start + off, &c, 2);
}

int vnet_tx_pop(struct vq *vq, struct vq_req *r, uint8_t *buf, size_t cap, bool csum,
		size_t *len, struct vnet_stats *st)
{
	size_t total, flen, start, off;
	int rc = vq_pop(vq, r);

	if (rc <= 0)
		return rc;
	total = r->out_len;
	if (total > cap || total < VIRTIO_NET_HDR_LEN + VNET_ETH_MIN) {
		vq_push(vq, r->head, 0);
		st->tx_dropped++;
		return 2;
	}
	/* Copied once, then checked: the guest cannot change it meanwhile. */
	iov_to_buf(r->iov, r->nout, 0, buf, total);
	vq_push(vq, r->head, 0);
	flen = total - VIRTIO_NET_HDR_LEN;
	if (buf[1] != VIRTIO_NET_HDR_GSO_NONE)
		goto drop;
	if (buf[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		start = get16(buf + 6);
		off = get16(buf + 8);
		if (!csum || start >= flen || off + 2 > flen - start)
			goto drop;
		vnet_csum(buf + VIRTIO_NET_HDR_LEN, flen, start, off);
	}
	*len = flen;
	st->tx_frames++;
	return 1;
drop:
	st->tx_dropped++;
	return 2;
}

/* Copies [off, off + n) of the header-then-frame sequence into a chain's
 * writable segments at dst. */
static void rx_copy(const struct vq_req *r, size_t dst, const uint8_t *hdr, const uint8_t *frame,
		    size_t off, size_t n)
{
	const struct iovec *in = r->iov + r->nout;

	if (off < VIRTIO_NET_HDR_LEN) {
		size_t h = MIN(n, VIRTIO_NET_HDR_LEN - off);

		iov_from_buf(in, r->nin, dst, hdr + off, h);
		dst += h;
		off += h;
		n -= h;
	}
	if (n > 0)
		iov_from_buf(in, r->nin, dst, frame + (off - VIRTIO_NET_HDR_LEN), n);
}

/* The host address of byte off of a chain's writable segments. */
static uint8_t *rx_byte(const struct vq_req *r, size_t off)
{
	const struct iovec *in = r->iov + r->nout;

	for (unsigned i = 0; i < r->nin; i++) {
		if (off < in[i].iov_len)
			return (uint8_t *)in[i].iov_base + off;
		off -= in[i].iov_len;
	}
	return NULL;
}

int vnet_rx_put(struct vq *vq, struct vq_req *r, bool mrg, const void *frame, size_t len,
		uint16_t *heads, uint32_t *lens, struct vnet_stats *st)
{
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
	uint8_t *nbuf[2] = {NULL, NULL};
	size_t total = VIRTIO_NET_HDR_LEN + len, done = 0;
	unsigned n = 0;

	if (len > NET_FRAME_MAX || len < VNET_ETH_MIN) {
		st->rx_dropped++;
		return 2;
	}
	hdr[10] = 1; /* num_buffers: 1 unless the frame spans more (below) */
	while (done < total) {
		int rc = vq_pop(vq, r);
		size_t chunk;

		if (rc < 0)
			return -1;
		if (rc == 0) {
			vq_unpop(vq, (uint16_t)n);
			return 0;
		}
		/* A buffer with no room for the header (first) or for anything,
		 * or one too small for the whole frame without mrg, ends the
		 * frame: every chain taken goes back empty. */
		if (r->in_len == 0 || (n == 0 && r->in_len < VIRTIO_NET_HDR_LEN) ||
		    (!mrg && r->in_len < total)) {
			for (unsigned i = 0; i < n; i++)
				vq_push(vq, heads[i], 0);
			vq_push(vq, r->head, 0);
			st->rx_dropped++;
			return 2;
		}
		chunk = MIN(r->in_len, total - done);
		if (n == 0) {
			nbuf[0] = rx_byte(r, 10);
			nbuf[1] = rx_byte(r, 11);
		}
		rx_copy(r, 0, hdr, frame, done, chunk);
		heads[n] = r->head;
		lens[n] = (uint32_t)chunk;
		n++;
		done += chunk;
	}
	if (n > 1) {
		*nbuf[0] = (uint8_t)n;
		*nbuf[1] = (uint8_t)(n >> 8);
	}
	for (unsigned i = 0; i < n; i++)
		vq_push(vq, heads[i], lens[i]);
	st->rx_frames++;
	return 1;
}
