/* debug-exit: a one-byte port test guests write to end the VM with a result.
 * A byte v ends the run with VM_EXIT_DEBUG and code v; `termvisor run` exits
 * with status 0 for v = 0, else 64 + (v % 64) (layout.h). Only machines made
 * with cfg->debug_exit have it: in any other VM a guest must not be able to
 * end the run by a port write, and the port reads as absent. */
#include <stdio.h>
#include <stdlib.h>

#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

static void debug_exit_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct dev *d = opaque;
	char msg[48];
	uint8_t v = *(const uint8_t *)data;

	(void)off;
	(void)len;
	snprintf(msg, sizeof(msg), "debug-exit port written: %u", v);
	vm_request_exit(d->vm, VM_EXIT_DEBUG, v, msg);
}

static void debug_exit_destroy(struct dev *d)
{
	free(d);
}

/* No state: a write ends the run. */
static const struct dev_ops debug_exit_ops = {.destroy = debug_exit_destroy};
static const struct dev_io_ops debug_exit_io = {.write = debug_exit_write};

int debug_exit_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct dev *d;

	if (!cfg->debug_exit)
		return 0;
	d = xcalloc(1, sizeof(*d));
	d->name = "debug-exit";
	d->ops = &debug_exit_ops;
	dev_register(vm, d);
	return dev_add_pio(vm, d, LAYOUT_DEBUG_EXIT_PORT, 1, &debug_exit_io, d, err);
}
