/* Attaches this terminal to a running VM's console over its control socket
 * (termvisor console, start --attach): raw mode, keys to the guest, the
 * guest's output to the terminal, window size changes forwarded, and the
 * escape key (^] by default) to detach. (In the engine, console_attach_input
 * and console_attach_port connect devices to a VM's console: another thing.) */
#ifndef TV_TERMINAL_ATTACH_H
#define TV_TERMINAL_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include "src/core/paths.h"

/* Returns 0 after a detach or when the VM ended (said on stderr), -1 with a
 * message when attaching failed. */
int terminal_attach(const struct tv_paths *p, const char *name, bool readonly, uint8_t console,
		    unsigned char escape, struct tv_err *err);

/* "^]" for 0x1d: how to name the escape key to the user. */
void console_escape_name(unsigned char escape, char buf[3]);

#endif
