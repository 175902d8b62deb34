/* Operations on VM definitions shared by the commands and the interface. */
#ifndef TV_VMOPS_H
#define TV_VMOPS_H

#include <stdbool.h>

#include "src/core/paths.h"
#include "vm/net/net.h"

/* What `termvisor create` takes; NULL fields keep the defaults. Sizes and
 * numbers are text, as the user typed them, so errors can quote them. */
struct vm_create_args {
	const char *cpus, *memory, *disk, *kernel, *initrd, *cmdline, *description;
	const char *template; /* a template name, or NULL */
	/* The network cards; none given: one on the user network, unless no_net. */
	const struct vm_nic *nics;
	size_t nnics;
	bool no_net;
};

/* Makes the data directory, the disk and the definition, in that order; the
 * definition last, so a VM is listed only once it is whole. On failure whatever
 * was made is removed again. */
int vm_create(const struct tv_paths *p, const char *name, const struct vm_create_args *a,
	      struct tv_err *err);

/* Removes a stopped VM's definition and data directory. */
int vm_delete(const struct tv_paths *p, const char *name, struct tv_err *err);

/* True when NAME.conf exists. */
bool vm_exists(const struct tv_paths *p, const char *name);

#endif
