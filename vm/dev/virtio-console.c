/* virtio-console (virtio spec 5.3), a single port without the multiport
 * protocol: what the guest writes to hvc0 goes to the VM's console sink in
 * one call per buffer, far cheaper than the 8250's exit per byte. The
 * receive queue is offered but the console's input stays with the UART. */
#include <stdlib.h>

#include "vm/console.h"
#include "vm/dev/virtio-pci.h"
#include "vm/util.h"

#define VCON_RX 0
#define VCON_TX 1
#define VCON_CFG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */

struct vcon {
	struct vq_req req;
};

static void vcon_queue_notify(struct virtio_pci *vp, unsigned qi, struct vq *vq)
{
	struct vcon *vc = virtio_pci_priv(vp);

	if (qi != VCON_TX)
		return; /* receive buffers wait for input */
	while (vq_pop(vq, &vc->req) > 0) {
		for (unsigned i = 0; i < vc->req.nout; i++)
			console_output(virtio_pci_vm(vp), vc->req.iov[i].iov_base,
				       vc->req.iov[i].iov_len);
		vq_push(vq, vc->req.head, 0);
	}
	virtio_pci_queue_done(vp, qi, vq);
}

static void vcon_cfg_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	(void)vp;
	(void)off;
	(void)len;
	(void)data; /* all zero: size and ports are not offered */
}

static void vcon_destroy(struct virtio_pci *vp)
{
	free(virtio_pci_priv(vp));
}

int virtio_console_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct virtio_dev_info info = {
		.name = "virtio-console",
		.device_id = VIRTIO_ID_CONSOLE,
		.class_code = 0x078000,
		.nqueues = 2,
		.queue_size = 128,
		.cfg_size = VCON_CFG_SIZE,
		.cfg_read = vcon_cfg_read,
		.queue_notify = vcon_queue_notify,
		.destroy = vcon_destroy,
	};

	(void)cfg;
	return virtio_pci_create(vm, &info, xcalloc(1, sizeof(struct vcon)), NULL, err);
}
