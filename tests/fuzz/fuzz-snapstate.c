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

static char dir[4096];

/* One directory for every input, under $TMPDIR (the runner's own). */
static void setup(void)
{
	const char *t = getenv("TMPDIR");

	if (dir[0] != 0)
		return;
	snprintf(dir, sizeof(dir), "%s/tv-fuzz-snap.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4200];
	struct vm_snapshot_info info;
	struct tv_err err;
	int fd;

	setup();
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

#ifdef FUZZ_STANDALONE
/* Without libFuzzer: run each file named on the command line once. */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf;
		long n;
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		buf = xmalloc((size_t)n + 1);
		if (fread(buf, 1, (size_t)n, f) == (size_t)n)
			LLVMFuzzerTestOneInput(buf, (size_t)n);
		fclose(f);
		free(buf);
	}
	return 0;
}
#endif
