/* The guest's serial console as seen from the host: a sink that receives what
 * the guest prints, and a way to type at it. `termvisor run` connects it to
 * stdin/stdout; the background VM process connects it to its console buffer.
 *
 * The sink is called on a vCPU thread (whichever wrote the UART), possibly
 * several at once from different threads but never re-entered for one VM
 * at a time (the UART's lock is held): keep it short and never call back
 * into the VM from it. */
#ifndef TV_CONSOLE_H
#define TV_CONSOLE_H

#include <stddef.h>

struct vm;

typedef void (*console_output_fn)(void *ctx, const void *bytes, size_t len);

struct console_sink {
	console_output_fn output; /* NULL: guest output is dropped */
	void *ctx;
};

/* Bytes typed at the console, queued for the guest: for its virtio console
 * (hvc0) once the guest uses that port, for its UART (ttyS0) until then (see
 * console_attach_port). Returns how many were taken: fewer than len while
 * the guest is not reading; offer the rest again later. Any thread. */
size_t console_input(struct vm *vm, const void *bytes, size_t len);

/* Device side: the UART that backs the console registers its input queue,
 * and passes guest output to the sink. */
typedef size_t (*console_input_fn)(void *dev, const void *bytes, size_t len);
void console_attach_input(struct vm *vm, console_input_fn fn, void *dev);
/* A console port the guest opens itself (virtio-console): typed bytes go to
 * it first; its fn returns CONSOLE_PORT_CLOSED while the guest does not use
 * the port, and the bytes then go to the UART. */
#define CONSOLE_PORT_CLOSED ((size_t)-1)
void console_attach_port(struct vm *vm, console_input_fn fn, void *dev);
void console_output(struct vm *vm, const void *bytes, size_t len);

#endif
