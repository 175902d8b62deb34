/* libFuzzer target: vm_snapshot_read_info, the parser of a snapshot's state
 * file (vm/snapstate.c). Whatever the bytes, the result is an error or a
 * header: never a crash, a hang, a read outside the file's bytes or a huge
 * allocation. A file that parses must say what its header says. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "vm/snapshot.h"
#include "vm/snapstate.h"
#include "tests/fuzz/scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_scratch_dir("snap");
	char path[4200];
	struct vm_snapshot_info info;
	struct tv_err err;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, VM_SNAPSHOT_STATE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, data, size) < 0)
		abort();
	close(fd);
	if (vm_snapshot_read_info(dir, &info, &err) == 0) {
		/* Accepted: the header's counts hold for what follows. */
		if (info.cpus < 1 || info.cpus > SNAP_MAX_CPUS || info.ndevices > SNAP_MAX_DEVICES ||
		    size < SNAP_HDR_SIZE + (size_t)info.cpus * SNAP_VCPU_PARTS * SNAP_PART_HDR_SIZE)
			abort();
	} else if (strstr(err.msg, "/state") == NULL) {
		abort(); /* every refusal names the file */
	}
	return 0;
}

#include "tests/fuzz/standalone.h"
