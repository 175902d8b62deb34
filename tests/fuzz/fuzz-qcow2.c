/* libFuzzer target: the qcow2 opener and every walk over its metadata
 * (mapping, reads, snapshots, the consistency check). Whatever the bytes,
 * the result is an error or data: never a crash, a hang, a huge allocation,
 * or a write to the image. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/block/block.h"
#include "common/util.h"

static void walk(struct blk *b)
{
	uint64_t size = blk_size(b), off = 0, n, host;
	static uint8_t buf[1 << 20];
	struct blk_snapshot *sn;
	struct blk_check_result cr;
	int nsn;

	blk_pread(b, buf, MIN(size, sizeof(buf)), 0, NULL);
	for (int i = 0; i < 64 && size; i++) {
		uint64_t o = (size / 64) * (uint64_t)i;
		blk_pread(b, buf, MIN(size - o, 65536), o, NULL);
	}
	for (int i = 0; i < 256 && off < size; i++) {
		if (blk_block_status(b, off, size - off, &n, &host, NULL) < 0)
			break;
		off += n;
	}
	if (blk_snapshot_list(b, &sn, &nsn, NULL) == 0)
		blk_snapshot_list_free(sn, nsn);
	blk_vmstate_pread(b, buf, 4096, 0, NULL);
	blk_check(b, 0, &cr, NULL);
}

/* Writing to a hostile image may fail, but must not crash or hang, and
 * whatever it leaves must open again. */
static void write_walk(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-image-rw", MFD_CLOEXEC);
	static uint8_t buf[65536];
	char path[64];
	struct blk *b;
	struct blk_check_result cr;
	uint64_t sz;

	if (fd < 0 || write_full(fd, data, size) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (blk_open(&b, path, "qcow2", BLK_NO_BACKING, NULL) == 0) {
		sz = blk_size(b);
		memset(buf, 0xa5, sizeof(buf));
		if (sz) {
			blk_pwrite(b, buf, MIN(sz, 5000), 0, NULL);
			blk_pwrite(b, buf, MIN(sz, 70000) / 2, sz - MIN(sz, 70000) / 2, NULL);
			blk_discard(b, sz / 3, MIN(sz - sz / 3, 200000), NULL);
			blk_write_zeroes(b, sz / 2, MIN(sz - sz / 2, 3000), NULL);
			blk_pread(b, buf, MIN(sz, sizeof(buf)), 0, NULL);
		}
		if (blk_snapshot_create(b, "fz", 0, 0, NULL) == 0) {
			blk_pwrite(b, buf, MIN(sz, 1000), 0, NULL);
			blk_snapshot_apply(b, "fz", NULL);
			blk_snapshot_delete(b, "fz", NULL);
		}
		blk_flush(b, NULL);
		blk_check(b, 0, &cr, NULL);
		blk_close(b, NULL);
		if (blk_open(&b, path, "qcow2", BLK_NO_BACKING | BLK_READONLY, NULL) == 0)
			blk_close(b, NULL);
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	char path[64];
	struct tv_err err;
	struct blk *b;
	uint8_t *after;

	if (fd < 0 || write_full(fd, data, size) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (blk_open(&b, path, "qcow2", BLK_READONLY | BLK_SHARE | BLK_NO_BACKING, &err) == 0) {
		walk(b);
		blk_close(b, NULL);
	}
	blk_snapshot_count(path, NULL);
	/* Nothing may have been written. */
	after = xmalloc(size + 1);
	if (pread_full(fd, after, size, 0) < 0 || memcmp(after, data, size) != 0 ||
	    lseek(fd, 0, SEEK_END) != (off_t)size)
		abort();
	free(after);
	close(fd);
	write_walk(data, size);
	return 0;
}

#include "tests/fuzz/standalone.h"
