/* virtio 1.x over PCI, the modern interface only (virtio spec 4.1): one
 * 32-bit memory BAR holding the common, ISR, device-specific and notify
 * structures and the MSI-X table. Each queue has an eventfd that KVM
 * signals on the guest's notify write (ioeventfd) and a thread of its own
 * that runs the device's handler, so device work never runs on a vCPU.
 *
 * A device model (virtio-blk, virtio-rng, virtio-console) fills a struct
 * virtio_dev_info and calls virtio_pci_create; the transport owns the
 * struct virtio_pci and hands the model its priv pointer back. */
#ifndef TV_VIRTIO_PCI_H
#define TV_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/dev/pci.h"
#include "vm/dev/virtio-queue.h"

#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER	  2
#define VIRTIO_STATUS_DRIVER_OK	  4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_MSI_NO_VECTOR 0xFFFF

/* BAR 0 layout. */
#define VIRTIO_BAR_COMMON  0x0000
#define VIRTIO_BAR_ISR	   0x1000
#define VIRTIO_BAR_DEVICE  0x2000
#define VIRTIO_BAR_NOTIFY  0x3000
#define VIRTIO_BAR_MSIX	   0x4000
#define VIRTIO_BAR_PBA	   0x5000
#define VIRTIO_BAR_SIZE	   0x8000
#define VIRTIO_NOTIFY_MULT 4
#define VIRTIO_MAX_QUEUES  64

struct virtio_pci;
struct blk;

struct virtio_dev_info {
	const char *name;   /* device name, e.g. "virtio-blk0" */
	uint16_t device_id; /* VIRTIO_ID_* */
	uint32_t class_code;
	uint64_t features; /* device-specific feature bits offered */
	unsigned nqueues;
	uint16_t queue_size; /* largest size offered, a power of two */
	unsigned cfg_size;   /* bytes of device-specific configuration */
	/* Device configuration space access (off + len <= cfg_size). */
	void (*cfg_read)(struct virtio_pci *vp, unsigned off, void *data, unsigned len);
	void (*cfg_write)(struct virtio_pci *vp, unsigned off, const void *data, unsigned len);
	/* The driver notified queue q (or DRIVER_OK arrived): runs on q's
	 * thread with q's lock held; pops, handles, pushes, then calls
	 * virtio_pci_queue_done. */
	void (*queue_notify)(struct virtio_pci *vp, unsigned q, struct vq *vq);
	/* Device reset (status 0): the queues are already stopped. May be NULL. */
	void (*reset)(struct virtio_pci *vp);
	/* Frees priv after the queue threads ended. May be NULL. */
	void (*destroy)(struct virtio_pci *vp);
	/* Snapshots: the model's own state (state_size bytes, a plain struct)
	 * after the transport's. check validates it as guest input, restore
	 * applies it (checked) after the transport's reset. May be 0/NULL. */
	size_t state_size;
	void (*save)(struct virtio_pci *vp, void *state);
	int (*check)(struct virtio_pci *vp, const void *state, struct tv_err *err);
	void (*restore)(struct virtio_pci *vp, const void *state);
	/* A model that serves its queues from a thread of its own (virtio-net,
	 * whose thread also polls the network backend): the transport starts no
	 * queue threads and queue_notify is never called; the model polls
	 * virtio_pci_queue_fd and takes each queue with virtio_pci_queue_lock.
	 * stop ends that thread at teardown, before the notifiers close. */
	bool own_thread;
	void (*stop)(struct virtio_pci *vp);
};

/* Creates the device on the VM's PCI bus; priv is the model's. */
int virtio_pci_create(struct vm *vm, const struct virtio_dev_info *info, void *priv,
		      struct virtio_pci **out, struct tv_err *err);
void *virtio_pci_priv(struct virtio_pci *vp);
/* The features the driver accepted (0 until FEATURES_OK). */
uint64_t virtio_pci_features(struct virtio_pci *vp);
struct vm *virtio_pci_vm(struct virtio_pci *vp);

/* After pushing used buffers on queue q: interrupts the driver when it
 * wants one. A broken queue (vq_pop returned -1) is reported here too. */
void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q, struct vq *vq);
/* The device needs a reset (DEVICE_NEEDS_RESET plus a configuration
 * interrupt); why goes to the engine's verbose log. */
void virtio_pci_set_broken(struct virtio_pci *vp, const char *why);
/* The device's configuration space changed: the configuration generation
 * moves on and a driver that is up gets a configuration interrupt. Any
 * thread, queue locks held or not. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* Whether the driver is up (DRIVER_OK, no reset needed) with queue q enabled. */
bool virtio_pci_queue_ready(struct virtio_pci *vp, unsigned q);
/* Wakes queue q's thread as if the driver had notified it. */
void virtio_pci_kick(struct virtio_pci *vp, unsigned q);

/* own_thread models: queue q's notifier (an eventfd, non-blocking; read
 * it before looking at the ring). */
int virtio_pci_queue_fd(struct virtio_pci *vp, unsigned q);
/* own_thread models: queue q with its lock held when guest memory may be
 * touched (driver up, queue enabled, bus mastering on, not quiesced), else
 * NULL. Unlock with virtio_pci_queue_unlock. Take at most one queue at a
 * time: the snapshot code takes them all in index order. */
struct vq *virtio_pci_queue_lock(struct virtio_pci *vp, unsigned q);
void virtio_pci_queue_unlock(struct virtio_pci *vp, unsigned q);

/* The device registered under name (e.g. "virtio-blk0"), or NULL. */
struct virtio_pci *virtio_pci_find(struct vm *vm, const char *name);
/* Snapshots: with the vCPUs paused, quiesce (true) waits for requests in
 * flight and holds every virtio queue thread still, so device state and
 * disks can be saved or restored; quiesce (false) lets them run again and
 * looks at every queue once. Device state itself: the dev_ops save/restore
 * of each device, like any other. Quiescing gives up (false, nothing held)
 * when a disk holds requests the host refused (vm_hold): they wait for a
 * resume. */
bool virtio_pci_quiesce(struct vm *vm, bool quiesce);

/* Bytes typed for the guest's virtio console (hvc0): queued (up to 4 KiB)
 * until the guest takes them; returns how many were taken (0 without a
 * virtio console). Any thread. */
size_t virtio_console_input(struct vm *vm, const void *bytes, size_t len);

/* The machine's virtio devices (dev_machine[] in vm/dev/dev.c, after
 * pci_create): one virtio-blk per cfg->disks entry, then the console and
 * the entropy source. */
int virtio_blk_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
/* The image behind disk n (cfg->disks[n]), or NULL: for snapshots, with
 * the devices quiesced (virtio_pci_quiesce). */
struct blk *virtio_blk_disk(struct vm *vm, unsigned n);
int virtio_console_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
int virtio_rng_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
/* One virtio-net per cfg->nics entry, each with its backend (vm/net/net.h). */
int virtio_net_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
/* NIC n's backend state for `status` (its DHCP lease), or "". */
void virtio_net_info(struct vm *vm, unsigned n, char *buf, size_t len);

#endif
