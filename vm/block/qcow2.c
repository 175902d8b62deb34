/* qcow2 images: open, header, I/O paths. */
#include <string.h>

#include "vm/block/block-int.h"

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && memcmp(buf, "QFI\xfb", 4) == 0 ? 100 : 0;
}

static int qcow2_open(struct blk *b, int flags, struct tv_err *err)
{
	return tv_errf(err, "%s: qcow2 images are not supported yet", b->path);
}

const struct blk_driver blk_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
};
