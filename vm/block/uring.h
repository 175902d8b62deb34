/* io_uring rings for disk I/O that can do nothing but read and write. */
#ifndef TV_VM_BLOCK_URING_H
#define TV_VM_BLOCK_URING_H

#include "config.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* Sets up a ring of ENTRIES that takes only readv and writev submissions,
 * with no submission flags and no further io_uring_register call: what the
 * disks need, and no way around the VM process's seccomp filter (an openat,
 * connect or socket submitted to it, or any other operation, completes with
 * -EACCES). 0, or a negative errno (then nothing is left open): io_uring
 * missing or disabled, or a kernel before 5.10 without ring restrictions. */
int blk_uring_init(struct io_uring *ring, unsigned entries);
#endif

#endif
