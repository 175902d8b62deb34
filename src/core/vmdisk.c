#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/vmdisk.h"
#include "src/core/snapstore.h"
#include "vm/block/block.h"
#include "common/util.h"

int vmdisk_snapshot_count(const struct vmdef *d)
{
	return d->datadir ? snapstore_count(d->datadir, NULL) : -1;
}

int vmdisk_create(const char *path, enum disk_format fmt, uint64_t size, struct tv_err *err)
{
	return blk_create(path, disk_format_name(fmt), size, NULL, err);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

int vmdisk_copy(struct blk *in, struct blk *out, bool compress, bool zero_fill, struct tv_err *err)
{
	uint64_t size = blk_size(in), cs = blk_cluster_size(out);
	uint64_t chunk = compress ? cs : MAX(cs, 1u << 20);
	uint8_t *buf = xmalloc(chunk);
	int rc = -1;

	for (uint64_t off = 0; off < size;) {
		uint64_t n = MIN(chunk, size - off);
		if (blk_pread(in, buf, n, off, err) < 0)
			goto out;
		if (is_zero(buf, n)) {
			/* Fresh images read as zeros already; existing ones need it. */
			if (zero_fill && blk_write_zeroes(out, off, n, err) < 0)
				goto out;
		} else if (compress) {
			if (blk_write_compressed(out, buf, n, off, err) < 0)
				goto out;
		} else {
			/* Skip all-zero clusters so the copy stays sparse. */
			for (uint64_t p = 0; p < n;) {
				uint64_t m = MIN(cs, n - p), q;
				if (is_zero(buf + p, m)) {
					if (zero_fill && blk_write_zeroes(out, off + p, m, err) < 0)
						goto out;
					p += m;
					continue;
				}
				for (q = p + m; q < n && !is_zero(buf + q, MIN(cs, n - q));)
					q += MIN(cs, n - q);
				if (blk_pwrite(out, buf + p, q - p, off + p, err) < 0)
					goto out;
				p = q;
			}
		}
		off += n;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}
