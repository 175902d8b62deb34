/* PCI: one bus (bus 0) behind a host bridge at 00:00.0, reached through
 * type-1 configuration access (ports 0xCF8/0xCFC) and ECAM (MMIO at
 * LAYOUT_PCI_ECAM_BASE, announced by the MCFG table). Functions are single
 * (function 0 of a slot). BARs are placed in the PCI hole when the device is
 * added, the way firmware would, and follow the guest when it moves them;
 * INTx goes to the IOAPIC per PCI_INTX_GSI; MSI-X messages go to KVM.
 *
 * A PCI device embeds struct pci_dev (which embeds its struct dev), fills in
 * its identity with pci_dev_init, adds BARs and capabilities, then calls
 * pci_dev_add. */
#ifndef TV_PCI_H
#define TV_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/dev/dev.h"

#define PCI_CFG_SIZE  256
#define PCI_NUM_BARS  6
#define PCI_MAX_SLOTS 32
#define PCI_MSIX_MAX  64

/* Configuration space registers. */
#define PCI_VENDOR_ID	  0x00
#define PCI_DEVICE_ID	  0x02
#define PCI_COMMAND	  0x04
#define PCI_STATUS	  0x06
#define PCI_REVISION	  0x08
#define PCI_CLASS_PROG	  0x09
#define PCI_HEADER_TYPE	  0x0E
#define PCI_BAR0	  0x10
#define PCI_SUBSYS_VENDOR 0x2C
#define PCI_SUBSYS_ID	  0x2E
#define PCI_CAP_PTR	  0x34
#define PCI_INT_LINE	  0x3C
#define PCI_INT_PIN	  0x3D

#define PCI_COMMAND_IO		 0x1
#define PCI_COMMAND_MEM		 0x2
#define PCI_COMMAND_MASTER	 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTX		 0x8
#define PCI_STATUS_CAP_LIST	 0x10

#define PCI_CAP_ID_MSIX	 0x11
#define PCI_CAP_ID_VNDR	 0x09
#define PCI_MSIX_ENABLE	 0x8000
#define PCI_MSIX_MASKALL 0x4000

struct pci_bus;
struct pci_dev;

/* What a BAR's accesses go to; off is relative to the BAR. */
struct pci_bar {
	uint64_t size; /* 0: unused; a power of two, at least 16 */
	bool is64;
	uint64_t home;	    /* where it was placed at creation */
	uint64_t mapped_at; /* 0 when not decoded */
	const struct dev_io_ops *io;
	void *opaque;
	struct pci_dev *pdev;
};

struct pci_dev {
	struct dev dev;
	struct pci_bus *bus;
	unsigned slot;
	pthread_mutex_t lock; /* configuration space and MSI-X state */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	uint8_t reset_cfg[PCI_CFG_SIZE]; /* power-on contents */
	uint8_t next_cap;
	struct pci_bar bars[PCI_NUM_BARS];
	/* A BAR was mapped at addr (mapped) or unmapped: the device moves
	 * what it keyed to BAR addresses (ioeventfds). Called with lock held;
	 * must not call back into this pci_dev. May be NULL. */
	void (*bar_moved)(struct pci_dev *p, int bar, uint64_t addr, bool mapped);
	/* A window in configuration space (virtio's PCI_CFG capability):
	 * an access touching [win_off, win_off + win_len) calls win_access,
	 * before the bytes are read or after they are stored, without lock
	 * held. May be NULL. */
	uint8_t win_off, win_len;
	void (*win_access)(struct pci_dev *p, bool write);
	/* The guest set or cleared Bus Master Enable in the command register.
	 * Called without lock held, before the configuration write returns to
	 * the guest, so a device can finish with guest memory first. May be
	 * NULL. */
	void (*master_changed)(struct pci_dev *p, bool on);
	bool master; /* Bus Master Enable, as the command register says (atomic) */

	/* MSI-X (when msix_cap != 0). */
	uint8_t msix_cap;
	unsigned msix_nvec;
	int msix_bar;
	uint64_t msix_table_off, msix_pba_off;
	uint8_t msix_table[PCI_MSIX_MAX * 16];
	uint64_t msix_pending; /* PBA: one bit per vector */
	bool intx_level;       /* what the device asks for */
	bool intx_asserted;    /* what it holds up on the bus */
};

/* Host bridge and configuration access; first in the machine's PCI order. */
int pci_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err);
struct pci_bus *pci_bus_of(struct vm *vm);

/* Identity: vendor, device, class (0xCCSSPP), revision, subsystem ids. */
void pci_dev_init(struct pci_dev *p, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t rev, uint16_t subsys_vendor, uint16_t subsys_id);
/* A 32-bit (is64 false) or 64-bit memory BAR of size bytes. */
void pci_dev_add_bar(struct pci_dev *p, int bar, uint64_t size, bool is64,
		     const struct dev_io_ops *io, void *opaque);
/* A capability of len bytes (id, next, then len - 2 bytes of body, read
 * only unless the caller opens wmask); returns its offset. */
uint8_t pci_dev_add_cap(struct pci_dev *p, uint8_t id, uint8_t len);
/* MSI-X with nvec vectors, table and PBA inside BAR bar at the offsets. */
void pci_dev_add_msix(struct pci_dev *p, unsigned nvec, int bar, uint64_t table_off,
		      uint64_t pba_off);
/* Takes the next free slot on the bus, places the BARs and registers the
 * device (p->dev.name and ops set by the caller). */
int pci_dev_add(struct vm *vm, struct pci_dev *p, struct tv_err *err);

/* Back to power-on state: configuration space, BARs home, MSI-X masked. */
void pci_dev_reset(struct pci_dev *p);

/* Snapshot state of a PCI function: plain bytes, no pointers. Restore
 * checks it as guest input (read-only fields must match this device) and
 * decodes the BARs where the saved state has them. */
struct pci_state {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t msix_table[PCI_MSIX_MAX * 16];
	uint64_t msix_pending;
	uint8_t intx_level;
	uint8_t pad[7];
};
void pci_dev_save(struct pci_dev *p, struct pci_state *s);
/* Whether pci_dev_restore would accept s (read-only parts as this device has them). */
int pci_dev_check(const struct pci_dev *p, const struct pci_state *s, struct tv_err *err);
int pci_dev_restore(struct pci_dev *p, const struct pci_state *s, struct tv_err *err);

/* Whether the function may master the bus: read or write guest memory and
 * send MSI. While it is clear a device must leave guest memory alone. */
bool pci_bus_master(const struct pci_dev *p);

/* Interrupts. MSI-X when the guest enabled it: true when vector was sent or
 * left pending (masked, or bus mastering off: an MSI is a memory write, so it
 * waits in the PBA until Bus Master Enable is set again); false when MSI-X is
 * off (use INTx then). */
bool pci_msix_enabled(struct pci_dev *p);
bool pci_msix_notify(struct pci_dev *p, unsigned vector);
/* INTx pin A level (shared lines are or-ed on the bus). */
void pci_set_irq(struct pci_dev *p, bool level);

/* An access to BAR bar as if the guest made it at offset off (the MSI-X
 * table and PBA included), whether or not the BAR is decoded; off + len
 * must lie inside the BAR. Call without p->lock held. */
void pci_bar_access(struct pci_dev *p, int bar, uint64_t off, void *data, unsigned len,
		    bool write);

/* Configuration space access as the buses do it (tests use these too). */
uint32_t pci_cfg_read(struct pci_dev *p, unsigned reg, unsigned len);
void pci_cfg_write(struct pci_dev *p, unsigned reg, uint32_t val, unsigned len);

#endif
