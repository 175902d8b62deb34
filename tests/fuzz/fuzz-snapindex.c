/* libFuzzer target: the snapshot tree's index and journal parsers
 * (src/core/snapstore.c). The first byte chooses: bit 0, the rest gets a
 * right checksum line appended (so the fuzzer reaches past the checksum);
 * bit 1, the rest is also a journal left in a .tmp-ID directory; bit 2, a
 * journal in a committed snapshot's directory (a rename cut short), recovered
 * under the lock with disk ops that touch no file. Whatever the bytes: an
 * error naming the file, or a tree whose ids, parents and marks hold. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/util.h"
#include "src/core/fsutil.h"
#include "src/core/snapstore.h"
#include "tests/fuzz/scratch.h"

static void put(const char *path, const uint8_t *data, size_t size, bool sum)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char line[32];

	if (fd < 0 || write_full(fd, data, size) < 0)
		abort();
	if (sum) {
		uLong c = crc32(crc32(0L, Z_NULL, 0), data, (uInt)size);
		int n = snprintf(line, sizeof(line), "checksum %08lx\n", (unsigned long)c);
		if (write_full(fd, line, (size_t)n) < 0)
			abort();
	}
	close(fd);
}

/* No file is touched: the journal's paths are the fuzzer's. */
static int fake_drop(void *ctx, const char *disk, const char *tag, struct tv_err *err)
{
	if (disk[0] != '/' || snapstore_tag_check(tag, NULL) < 0)
		abort();
	return 0;
}

static int fake_rename(void *ctx, const char *disk, const char *tag, const char *new_tag,
		       struct tv_err *err)
{
	if (disk[0] != '/' || snapstore_tag_check(tag, NULL) < 0 ||
	    snapstore_tag_check(new_tag, NULL) < 0)
		abort();
	return 0;
}

static const char good_index[] = "termvisor-snapshots 1\nnext 0000000000000002\nhere -\n"
				 "pending-restore -\nsnapshot id=0000000000000001 parent=- "
				 "created=1 memory=no automatic=no tag=a description=\n";

static void check_tree(const struct snapstore *st)
{
	for (size_t i = 0; i < st->nrecs; i++) {
		const struct snap_record *r = &st->recs[i];
		if (r->id == 0 || r->id >= st->next_id || r->parent >= r->id ||
		    (r->parent && snapstore_get(st, r->parent) == NULL) ||
		    snapstore_find(st, r->tag) != r || r->description == NULL ||
		    strlen(r->description) > SNAP_DESC_MAX)
			abort();
	}
	if ((st->here && !snapstore_get(st, st->here)) ||
	    (st->pending_restore && !snapstore_get(st, st->pending_restore)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapstore_disk_ops ops = {.drop = fake_drop, .rename = fake_rename};
	struct snapstore st;
	struct tv_err err;
	const char *dir = fuzz_scratch_dir("index");
	char *snaps, *path;
	uint8_t flags;

	if (size == 0)
		return 0;
	flags = data[0];
	data++;
	size--;
	snaps = xasprintf("%s/snapshots", dir);
	remove_tree(snaps);
	if (mkdir(snaps, 0700) < 0)
		abort();
	path = xasprintf("%s/index", snaps);
	if (flags & 6) {
		/* A sound index; the bytes are a journal. */
		put(path, (const uint8_t *)good_index, sizeof(good_index) - 1, true);
		free(path);
		path = xasprintf("%s/%s0000000000000001", snaps, flags & 2 ? ".tmp-" : "");
		if (mkdir(path, 0700) < 0)
			abort();
		char *j = xasprintf("%s/journal", path);
		put(j, data, size, false);
		free(j);
		if (snapstore_open(&st, dir, SNAPSTORE_LOCK, &ops, &err) == 0) {
			check_tree(&st);
			snapstore_close(&st);
		} else if (strstr(err.msg, "/journal") == NULL) {
			abort(); /* a refusal names the journal */
		}
	} else {
		put(path, data, size, flags & 1);
		if (snapstore_open(&st, dir, 0, NULL, &err) == 0) {
			check_tree(&st);
			snapstore_close(&st);
		} else if (strstr(err.msg, "snapshots/index") == NULL) {
			abort(); /* every refusal names the file */
		}
	}
	free(path);
	free(snaps);
	return 0;
}

#include "tests/fuzz/standalone.h"
