/* Split virtqueues (virtio 1.x, 2.7): the device side. The driver's rings
 * live in guest memory and everything in them is guest input: addresses,
 * lengths, indices, flags and chain links are all checked here. A queue the
 * driver corrupts (a loop, a link out of range, a buffer outside RAM, an
 * avail index that jumps too far) becomes broken: vq_pop then returns -1 and
 * the transport sets DEVICE_NEEDS_RESET, as the specification allows. No
 * guest value makes this code loop without bound or touch host memory
 * outside guest RAM.
 *
 * A queue is used by one thread at a time (the caller serialises). */
#ifndef TV_VIRTIO_QUEUE_H
#define TV_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vm/mem.h"

#define VQ_MAX_SIZE 1024 /* largest queue we accept; also the longest chain */
#define VQ_MAX_SEGS VQ_MAX_SIZE

#define VIRTQ_DESC_F_NEXT	   1
#define VIRTQ_DESC_F_WRITE	   2
#define VIRTQ_DESC_F_INDIRECT	   4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

struct vq {
	const struct guest_mem *mem;
	uint16_t size; /* entries, a power of two */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool ready;	/* vq_start succeeded */
	bool broken;

	/* Host views of the rings, valid while ready (checked by vq_start). */
	uint8_t *desc, *avail, *used;

	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx;   /* our copy of used->idx */
	uint16_t signalled;  /* used_idx at the last interrupt (event index) */
	bool signalled_valid;
	bool notify_off; /* the device polls: no kicks wanted */
	const char *why; /* why the queue broke, for diagnostics */
	/* Set by the transport after vq_start (which clears it, as vq_reset
	 * does): while *go is false (bus mastering off) vq_pop takes nothing
	 * and reads no ring. Read atomically: the transport changes it from
	 * another thread. NULL: always go. */
	const bool *go;
};

/* One descriptor chain: first the device-readable segments, then the
 * device-writable ones. Zero-length descriptors are dropped. */
struct vq_req {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;
	struct iovec iov[VQ_MAX_SEGS];
};

/* Rings at the given guest addresses; size must be a power of two up to
 * VQ_MAX_SIZE. Returns -1 (queue stays not ready) when a ring lies outside
 * RAM or is misaligned. */
int vq_start(struct vq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	     uint64_t avail, uint64_t used, bool event_idx, bool indirect);
/* Back to the reset state (not ready, not broken). */
void vq_reset(struct vq *q);

/* Takes the next available chain: 1 with r filled, 0 when none is
 * available (or *go is false), -1 when the queue is (now) broken. */
int vq_pop(struct vq *q, struct vq_req *r);
/* Gives back the last n chains taken and not pushed (a receive that needs
 * more buffers than the driver has posted so far): vq_pop takes them again. */
void vq_unpop(struct vq *q, uint16_t n);
/* Returns a chain to the driver with len bytes written into its writable
 * segments. */
void vq_push(struct vq *q, uint16_t head, uint32_t len);
/* After one or more vq_push: whether the driver wants an interrupt now. */
bool vq_should_notify(struct vq *q);

/* Notification suppression for a device that polls the ring for a while
 * after handling it: no kicks while disabled. vq_enable_notify asks for them
 * again and returns whether buffers arrived meanwhile (handle them, or a
 * kick may never come). vq_has_work peeks at the avail index. */
void vq_disable_notify(struct vq *q);
bool vq_enable_notify(struct vq *q);
bool vq_has_work(struct vq *q);

/* Copies between a segment list and a flat buffer, starting off bytes into
 * the list; return the bytes copied (short when the list ends). */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);

#endif
