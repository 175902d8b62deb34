/* Disk I/O rings restricted to reads and writes (uring.h). */
#include "vm/block/uring.h"

#ifdef HAVE_LIBURING
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Registers with the raw call: liburing 2.3 (Debian 12) has no wrappers for
 * restrictions. */
static int ring_register(struct io_uring *ring, unsigned op, void *arg, unsigned n)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, n) < 0 ? -errno : 0;
}

int blk_uring_init(struct io_uring *ring, unsigned entries)
{
	/* No IORING_RESTRICTION_REGISTER_OP: no register call once enabled. No
	 * IORING_RESTRICTION_SQE_FLAGS_ALLOWED: no submission flags (fixed
	 * files, links, drain). */
	struct io_uring_restriction res[] = {
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
	};
	int rc = io_uring_queue_init(entries, ring, IORING_SETUP_R_DISABLED);

	if (rc < 0)
		return rc;
	rc = ring_register(ring, IORING_REGISTER_RESTRICTIONS, res, sizeof(res) / sizeof(res[0]));
	if (rc == 0)
		rc = ring_register(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (rc < 0)
		io_uring_queue_exit(ring);
	return rc;
}
#endif
