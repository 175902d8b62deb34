/* From a VM definition to the machine the engine builds: the one place that
 * turns a `struct vmdef` (paths as written, relative to the VM's data
 * directory) into a `struct vm_config` (absolute paths, the kernel cache, the
 * disks). `termvisor run NAME`, `termvisor start`, autostart and the interface
 * all go through it, so a VM is the same machine however it is started. */
#ifndef TV_MACHINE_H
#define TV_MACHINE_H

#include "common/err.h"
#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "vm/vm.h"

struct machine {
	struct vm_config cfg; /* cfg.disks points at disks[] */
	struct vm_disk disks[VMDEF_MAX_DISKS];
	struct vm_nic nics[NET_NICS_MAX]; /* cfg.nics points here */
	bool no_sandbox; /* the definition's sandbox = false */
	/* Strings the config points at that this struct owns. */
	char *owned[4 + 2 * VMDEF_MAX_DISKS];
	size_t nowned;
};

/* The defaults of a VM with no definition: 1 vCPU, 512M, nothing else. */
void machine_init(struct machine *m);

/* Fills m from def. p, when not NULL, gives the kernel cache (a bzImage's
 * vmlinux is extracted once and kept by content hash). A definition without a
 * kernel is an error naming its file. */
int machine_from_def(struct machine *m, const struct tv_paths *p, const struct vmdef *def,
		     struct tv_err *err);

/* Keeps s (a malloc'd string) until machine_free; returns it. */
char *machine_own(struct machine *m, char *s);

void machine_free(struct machine *m);

#endif
