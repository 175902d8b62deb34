/* virtio-rng (virtio spec 5.4): fills the guest's buffers from the host's
 * getrandom(2). One request queue, no configuration. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vm/dev/virtio-pci.h"
#include "common/util.h"

/* Bytes handed out per request at most: a guest asking for a gigabyte gets
 * what a real device would give in one go, and asks again. */
#define VRNG_MAX_PER_REQUEST 65536

struct vrng {
	struct vq_req req;
};

static size_t vrng_fill(struct vq_req *r)
{
	size_t total = 0;

	for (unsigned i = r->nout; i < r->nout + r->nin && total < VRNG_MAX_PER_REQUEST; i++) {
		size_t want = MIN(r->iov[i].iov_len, VRNG_MAX_PER_REQUEST - total), got = 0;

		while (got < want) {
			ssize_t n = getrandom((uint8_t *)r->iov[i].iov_base + got, want - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return total + got;
			got += (size_t)n;
		}
		total += got;
	}
	return total;
}

static void vrng_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vrng *vr = virtio_pci_priv(vp);

	unsigned n = 0;

	while (vq_pop(vq, &vr->req) > 0) {
		vq_push(vq, vr->req.head, (uint32_t)vrng_fill(&vr->req));
		n++;
	}
	if (n > 0 || vq->broken)
		virtio_pci_queue_done(vp, qi, vq);
}

static void vrng_destroy(struct virtio_pci *vp)
{
	free(virtio_pci_priv(vp));
}

int virtio_rng_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct virtio_dev_info info = {
	    .name = "virtio-rng",
	    .device_id = VIRTIO_ID_RNG,
	    .class_code = 0x00FF00,
	    .nqueues = 1,
	    .queue_size = 64,
	    .queue_notify = vrng_queue_notify,
	    .destroy = vrng_destroy,
	};

	(void)cfg;
	return virtio_pci_create(vm, &info, xcalloc(1, sizeof(struct vrng)), NULL, err);
}
