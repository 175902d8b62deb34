/* The guest's consoles as seen from the host: a sink that receives what the
 * guest prints, and a way to type at it. The VM process (src/vmm) connects
 * them to its console screens, its clients and, in the foreground, the
 * terminal.
 *
 * The sink is called on a vCPU or device thread, possibly
 * several at once from different threads but never re-entered for one VM
 * port at a time (the device's lock is held): keep it short and never call back
 * into the VM from it. */
#ifndef TV_CONSOLE_H
#define TV_CONSOLE_H

#include <stddef.h>

struct vm;

/* A VM has two consoles, each its own stream both ways: the UART (ttyS0) and
 * the virtio console's port (hvc0). What the guest writes to one never shows
 * on the other, and what is typed for one never reaches the other. */
enum console_port {
	CONSOLE_SERIAL = 0, /* ttyS0, the 8250 UART */
	CONSOLE_HVC = 1,    /* hvc0, virtio-console's port 0 */
	CONSOLE_NPORTS
};

/* "ttyS0", "hvc0" (the names a Linux guest gives them). */
const char *console_port_name(unsigned port);

typedef void (*console_output_fn)(void *ctx, unsigned port, const void *bytes, size_t len);

struct console_sink {
	console_output_fn output; /* NULL: guest output is dropped */
	void *ctx;
};

/* Bytes typed at console port, queued for the guest. Returns how many were
 * taken: fewer than len while the guest is not reading; offer the rest again
 * later. A port the VM lacks, or one the guest has not opened (hvc0 before the
 * guest uses it), takes everything and drops it, as a line nobody listens on.
 * Any thread. */
size_t console_input(struct vm *vm, unsigned port, const void *bytes, size_t len);

/* Device side: the device behind a port registers its input queue, and passes
 * guest output to the sink. */
typedef size_t (*console_input_fn)(void *dev, const void *bytes, size_t len);
void console_attach_input(struct vm *vm, unsigned port, console_input_fn fn, void *dev);
void console_output(struct vm *vm, unsigned port, const void *bytes, size_t len);

/* The size of the terminal that shows console port, for a guest that can be
 * told: hvc0 through virtio-console's VIRTIO_CONSOLE_F_SIZE (the guest gets a
 * configuration interrupt when it changes). The UART has no such way: its
 * guest learns a size only from `stty`. A port without a device that takes
 * it ignores it. Any thread. */
void console_set_size(struct vm *vm, unsigned port, unsigned rows, unsigned cols);
typedef void (*console_size_fn)(void *dev, unsigned rows, unsigned cols);
void console_attach_size(struct vm *vm, unsigned port, console_size_fn fn, void *dev);

#endif
