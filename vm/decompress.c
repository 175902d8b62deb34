/* Host-side extraction of a bzImage's vmlinux: setup header checks, payload
 * decompression with a cap on the output, the PVH note check, and a cache of
 * extracted kernels named by the bzImage's SHA-256. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vm/decompress.h"
#include "vm/sha256.h"
#include "common/util.h"

/* Setup header fields (Documentation/arch/x86/boot.rst), offsets in the file. */
#define BZ_SETUP_SECTS	  0x1F1
#define BZ_SYSSIZE	  0x1F4
#define BZ_BOOT_FLAG	  0x1FE
#define BZ_HEADER	  0x202
#define BZ_VERSION	  0x206
#define BZ_PAYLOAD_OFFSET 0x248
#define BZ_PAYLOAD_LENGTH 0x24C
#define BZ_HEADER_END	  0x250

#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* what lz4 -l writes and Linux reads */
#define XZ_MEMLIMIT	 (256ULL << 20)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

const char *kernel_payload_format_name(enum kernel_payload_format f)
{
	static const char *const names[] = {
	    [PAYLOAD_UNKNOWN] = "unknown", [PAYLOAD_GZIP] = "gzip", [PAYLOAD_BZIP2] = "bzip2",
	    [PAYLOAD_LZMA] = "lzma",	   [PAYLOAD_XZ] = "xz",	    [PAYLOAD_LZ4] = "lz4",
	    [PAYLOAD_ZSTD] = "zstd",	   [PAYLOAD_LZO] = "lzo",   [PAYLOAD_NONE] = "uncompressed",
	};

	if ((unsigned)f >= ARRAY_SIZE(names))
		return "unknown";
	return names[f];
}

/* ---- setup header ---- */

int bzimage_payload(const uint8_t *buf, size_t len, size_t *off, size_t *plen, struct tv_err *err)
{
	unsigned setup_sects, version;
	uint64_t pm_off, pm_size, poff, psize;

	if (len < BZ_HEADER_END)
		return tv_errf(err, "%zu bytes, too short for a Linux bzImage setup header", len);
	if (le16(buf + BZ_BOOT_FLAG) != 0xAA55)
		return tv_errf(err,
			       "no boot signature 0xAA55 at offset 0x1FE: not a Linux bzImage");
	if (memcmp(buf + BZ_HEADER, "HdrS", 4) != 0)
		return tv_errf(err,
			       "no \"HdrS\" setup header at offset 0x202: not a Linux bzImage");
	version = le16(buf + BZ_VERSION);
	if (version < 0x208)
		return tv_errf(err,
			       "boot protocol %u.%02u is older than 2.08 and does not locate "
			       "its payload",
			       version >> 8, version & 0xff);
	setup_sects = buf[BZ_SETUP_SECTS] ? buf[BZ_SETUP_SECTS] : 4;
	pm_off = (uint64_t)(setup_sects + 1) * 512;
	pm_size = (uint64_t)le32(buf + BZ_SYSSIZE) * 16;
	if (pm_off > len)
		return tv_errf(err,
			       "truncated: %u setup sectors claimed, the file has only %zu bytes",
			       setup_sects, len);
	/* syssize is rounded up to 16 bytes; a shorter file lost its tail. */
	if (pm_size > len - pm_off + 15)
		return tv_errf(err,
			       "truncated: the header's syssize says %llu bytes of kernel after "
			       "the setup code, the file has %llu",
			       (unsigned long long)pm_size, (unsigned long long)(len - pm_off));
	poff = le32(buf + BZ_PAYLOAD_OFFSET);
	psize = le32(buf + BZ_PAYLOAD_LENGTH);
	if (psize < 8)
		return tv_errf(err, "payload_length %llu in the setup header is too small",
			       (unsigned long long)psize);
	if (pm_off + poff + psize > len)
		return tv_errf(err,
			       "payload (offset 0x%llx, %llu bytes) runs past the end of the "
			       "file (%zu bytes): truncated or inconsistent header",
			       (unsigned long long)(pm_off + poff), (unsigned long long)psize, len);
	*off = pm_off + poff;
	*plen = psize;
	return 0;
}

enum kernel_payload_format kernel_payload_detect(const uint8_t *p, size_t len)
{
	if (len >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return PAYLOAD_GZIP;
	if (len >= 3 && memcmp(p, "BZh", 3) == 0)
		return PAYLOAD_BZIP2;
	if (len >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		return PAYLOAD_LZMA;
	if (len >= 6 && memcmp(p,
			       "\xfd"
			       "7zXZ\0",
			       6) == 0)
		return PAYLOAD_XZ;
	if (len >= 4 && le32(p) == LZ4_LEGACY_MAGIC)
		return PAYLOAD_LZ4;
	if (len >= 4 && le32(p) == 0xFD2FB528u)
		return PAYLOAD_ZSTD;
	if (len >= 4 && memcmp(p, "\x89LZO", 4) == 0)
		return PAYLOAD_LZO;
	if (len >= 4 && memcmp(p,
			       "\x7f"
			       "ELF",
			       4) == 0)
		return PAYLOAD_NONE;
	return PAYLOAD_UNKNOWN;
}

/* ---- decompression into a growing buffer with a hard cap ---- */

struct outbuf {
	uint8_t *p;
	size_t len, cap, max;
};

static int outbuf_grow(struct outbuf *o, struct tv_err *err)
{
	size_t cap;

	if (o->cap >= o->max)
		return tv_errf(err, "decompresses to more than %zu MiB: refused", o->max >> 20);
	cap = o->cap > o->max / 2 ? o->max : o->cap * 2;
	o->p = xrealloc(o->p, cap);
	o->cap = cap;
	return 0;
}

/* Linux appends the uncompressed size (32-bit LE) to every payload; take it
 * as a first guess of the buffer, never as a promise. */
static void outbuf_init(struct outbuf *o, const uint8_t *p, size_t len, size_t max)
{
	size_t hint = len >= 4 ? le32(p + len - 4) : 0;

	o->max = max;
	o->cap = MIN(MAX(hint + 4096, (size_t)1 << 20), max);
	o->p = xmalloc(o->cap);
	o->len = 0;
}

static int inflate_gzip(const uint8_t *p, size_t len, struct outbuf *o, struct tv_err *err)
{
	z_stream z;
	int ret;

	if (len > UINT_MAX)
		return tv_errf(err, "gzip payload too large");
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return tv_errf(err, "zlib: cannot initialise");
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)len;
	for (;;) {
		size_t room = MIN(o->cap - o->len, (size_t)UINT_MAX);
		z.next_out = o->p + o->len;
		z.avail_out = (uInt)room;
		ret = inflate(&z, Z_NO_FLUSH);
		o->len += room - z.avail_out;
		if (ret == Z_STREAM_END)
			break;
		if ((ret == Z_OK || ret == Z_BUF_ERROR) && z.avail_out == 0) {
			if (outbuf_grow(o, err) < 0)
				goto fail;
			continue;
		}
		if (ret == Z_OK)
			continue;
		if (ret == Z_BUF_ERROR)
			tv_errf(err, "gzip data ends early: truncated");
		else
			tv_errf(err, "gzip data is corrupt: %s", z.msg ? z.msg : "inflate failed");
		goto fail;
	}
	inflateEnd(&z);
	return 0;
fail:
	inflateEnd(&z);
	return -1;
}

static int unxz(enum kernel_payload_format f, const uint8_t *p, size_t len, struct outbuf *o,
		struct tv_err *err)
{
	const char *name = kernel_payload_format_name(f);
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret;

	ret = f == PAYLOAD_XZ ? lzma_stream_decoder(&s, XZ_MEMLIMIT, 0)
			      : lzma_alone_decoder(&s, XZ_MEMLIMIT);
	if (ret != LZMA_OK)
		return tv_errf(err, "liblzma: cannot initialise the %s decoder", name);
	s.next_in = p;
	s.avail_in = len;
	for (;;) {
		s.next_out = o->p + o->len;
		s.avail_out = o->cap - o->len;
		ret = lzma_code(&s, LZMA_FINISH);
		o->len = o->cap - s.avail_out;
		if (ret == LZMA_STREAM_END)
			break;
		if ((ret == LZMA_OK || ret == LZMA_BUF_ERROR) && s.avail_out == 0) {
			if (outbuf_grow(o, err) < 0)
				goto fail;
			continue;
		}
		if (ret == LZMA_OK)
			continue;
		if (ret == LZMA_BUF_ERROR)
			tv_errf(err, "%s data ends early: truncated", name);
		else if (ret == LZMA_MEMLIMIT_ERROR)
			tv_errf(err, "%s data asks for more than %llu MiB of dictionary", name,
				XZ_MEMLIMIT >> 20);
		else
			tv_errf(err, "%s data is corrupt (liblzma error %d)", name, (int)ret);
		goto fail;
	}
	lzma_end(&s);
	return 0;
fail:
	lzma_end(&s);
	return -1;
}

/* The legacy frame of `lz4 -l`: magic, then blocks of (u32 size, data), each
 * at most 8 MiB uncompressed; the magic may repeat (concatenated files) and
 * Linux's 4-byte size trailer ends it. */
static int unlz4_legacy(const uint8_t *p, size_t len, struct outbuf *o, struct tv_err *err)
{
	size_t i = 4;

	while (len - i > 4) {
		uint32_t c = le32(p + i);
		int n;

		i += 4;
		if (c == LZ4_LEGACY_MAGIC)
			continue;
		if (c == 0 || c > len - i || c > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			return tv_errf(err,
				       "lz4 block at payload offset %zu claims %u bytes, %zu "
				       "remain: truncated or corrupt",
				       i - 4, c, len - i);
		while (o->cap - o->len < LZ4_LEGACY_BLOCK && o->cap < o->max)
			if (outbuf_grow(o, err) < 0)
				return -1;
		n = LZ4_decompress_safe((const char *)p + i, (char *)o->p + o->len, (int)c,
					(int)MIN(o->cap - o->len, (size_t)LZ4_LEGACY_BLOCK));
		if (n < 0) {
			if (o->cap - o->len < LZ4_LEGACY_BLOCK)
				return tv_errf(err,
					       "lz4 block at payload offset %zu is corrupt or "
					       "takes the output over %zu MiB",
					       i - 4, o->max >> 20);
			return tv_errf(err, "lz4 block at payload offset %zu is corrupt", i - 4);
		}
		o->len += (size_t)n;
		i += c;
	}
	if (o->len == 0)
		return tv_errf(err, "lz4 payload holds no data");
	return 0;
}

static int unzstd(const uint8_t *p, size_t len, struct outbuf *o, struct tv_err *err)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer in = {p, len, 0};
	int rc = -1;

	if (!ds)
		return tv_errf(err, "libzstd: cannot initialise");
	for (;;) {
		ZSTD_outBuffer out = {o->p, o->cap, o->len};
		size_t r = ZSTD_decompressStream(ds, &out, &in);
		o->len = out.pos;
		if (ZSTD_isError(r)) {
			tv_errf(err, "zstd data is corrupt: %s", ZSTD_getErrorName(r));
			break;
		}
		if (r == 0) { /* the frame is complete; Linux's size trailer follows */
			rc = 0;
			break;
		}
		if (out.pos == out.size) {
			if (outbuf_grow(o, err) < 0)
				break;
			continue;
		}
		if (in.pos == in.size) {
			tv_errf(err, "zstd data ends early: truncated");
			break;
		}
	}
	ZSTD_freeDStream(ds);
	return rc;
}

int kernel_payload_decompress(enum kernel_payload_format f, const uint8_t *p, size_t len,
			      size_t max, uint8_t **out, size_t *out_len, struct tv_err *err)
{
	struct outbuf o;
	int rc;

	if (f == PAYLOAD_NONE) {
		if (len > max)
			return tv_errf(err, "uncompressed payload is over %zu MiB", max >> 20);
		*out = xmalloc(len ? len : 1);
		memcpy(*out, p, len);
		*out_len = len;
		return 0;
	}
	outbuf_init(&o, p, len, max);
	switch (f) {
	case PAYLOAD_GZIP:
		rc = inflate_gzip(p, len, &o, err);
		break;
	case PAYLOAD_XZ:
	case PAYLOAD_LZMA:
		rc = unxz(f, p, len, &o, err);
		break;
	case PAYLOAD_LZ4:
		rc = unlz4_legacy(p, len, &o, err);
		break;
	case PAYLOAD_ZSTD:
		rc = unzstd(p, len, &o, err);
		break;
	default:
		rc = tv_errf(err, "%s payloads are not decompressed on the host",
			     kernel_payload_format_name(f));
		break;
	}
	if (rc < 0) {
		free(o.p);
		return -1;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}

/* ---- ELF and its PVH note ---- */

#define ELF_PT_NOTE		 4
#define ELF_EM_X86_64		 62
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Walks the notes in [p, p + len); 0 with *entry when the PVH note is there. */
static int notes_find_pvh(const uint8_t *p, size_t len, uint32_t *entry, struct tv_err *err)
{
	size_t i = 0;

	while (len - i >= 12) {
		uint32_t namesz = le32(p + i), descsz = le32(p + i + 4), type = le32(p + i + 8);
		size_t name = i + 12, desc, next;

		desc = name + ALIGN_UP((size_t)namesz, 4);
		if (namesz > len || descsz > len || desc > len ||
		    ALIGN_UP((size_t)descsz, 4) > len - desc)
			return tv_errf(err, "ELF note at segment offset %zu runs past its segment",
				       i);
		next = desc + ALIGN_UP((size_t)descsz, 4);
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    memcmp(p + name, "Xen", 4) == 0) {
			uint64_t v;
			if (descsz == 4)
				v = le32(p + desc);
			else if (descsz == 8)
				v = le64(p + desc);
			else
				return tv_errf(err, "PVH entry note has a %u-byte value", descsz);
			if (v > UINT32_MAX)
				return tv_errf(err, "PVH entry 0x%llx is above 4 GiB",
					       (unsigned long long)v);
			*entry = (uint32_t)v;
			return 0;
		}
		i = next;
	}
	return 1;
}

int elf_pvh_entry(const uint8_t *elf, size_t len, uint32_t *entry, struct tv_err *err)
{
	uint64_t phoff;
	unsigned phentsize, phnum;

	if (len < 64 || memcmp(elf,
			       "\x7f"
			       "ELF",
			       4) != 0)
		return tv_errf(err, "not an ELF file");
	if (elf[4] != 2 || elf[5] != 1)
		return tv_errf(err, "not a 64-bit little-endian ELF");
	if (le16(elf + 18) != ELF_EM_X86_64)
		return tv_errf(err, "ELF machine %u is not x86-64", le16(elf + 18));
	phoff = le64(elf + 32);
	phentsize = le16(elf + 54);
	phnum = le16(elf + 56);
	if (phentsize < 56 || phoff > len || (uint64_t)phnum * phentsize > len - phoff)
		return tv_errf(err,
			       "ELF program headers (offset %llu, %u x %u bytes) lie outside "
			       "the file (%zu bytes)",
			       (unsigned long long)phoff, phnum, phentsize, len);
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = elf + phoff + (uint64_t)i * phentsize;
		uint64_t off = le64(ph + 8), size = le64(ph + 32);
		int rc;

		if (le32(ph) != ELF_PT_NOTE)
			continue;
		if (off > len || size > len - off)
			return tv_errf(err,
				       "ELF note segment %u (offset %llu, %llu bytes) lies "
				       "outside the file",
				       i, (unsigned long long)off, (unsigned long long)size);
		rc = notes_find_pvh(elf + off, size, entry, err);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* ---- files and the cache ---- */

static int file_read_all(const char *path, uint8_t **buf, size_t *len, struct stat *stp,
			 struct tv_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return tv_errno(err, "%s", path);
	if (fstat(fd, &st) < 0) {
		tv_errno(err, "%s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		tv_errf(err, "%s: not a regular file", path);
		goto fail;
	}
	if ((uint64_t)st.st_size > KERNEL_EXTRACT_MAX) {
		tv_errf(err, "%s: %llu bytes, too large for a kernel", path,
			(unsigned long long)st.st_size);
		goto fail;
	}
	*len = (size_t)st.st_size;
	*buf = xmalloc(*len ? *len : 1);
	if (read_full(fd, *buf, *len) < 0) {
		tv_errno(err, "%s: read", path);
		free(*buf);
		goto fail;
	}
	close(fd);
	if (stp)
		*stp = st;
	return 0;
fail:
	close(fd);
	return -1;
}

/* The vmlinux of a bzImage already in memory. Return values as kernel_extract. */
static int extract_buf(const char *path, const uint8_t *buf, size_t len, uint8_t **elf,
		       size_t *elf_len, struct tv_err *err)
{
	enum kernel_payload_format f;
	size_t off, plen;
	uint32_t entry;
	int rc;

	if (bzimage_payload(buf, len, &off, &plen, err) < 0)
		return tv_err_prefix(err, "%s: ", path);
	f = kernel_payload_detect(buf + off, plen);
	if (f == PAYLOAD_UNKNOWN)
		return tv_errf(err,
			       "%s: payload format not recognised (first bytes %02x %02x %02x "
			       "%02x)",
			       path, buf[off], buf[off + 1], buf[off + 2], buf[off + 3]);
	if (f == PAYLOAD_BZIP2 || f == PAYLOAD_LZO) {
		tv_errf(err, "%s: %s payload is not decompressed on the host", path,
			kernel_payload_format_name(f));
		return 1;
	}
	if (kernel_payload_decompress(f, buf + off, plen, KERNEL_EXTRACT_MAX, elf, elf_len, err) <
	    0)
		return tv_err_prefix(err, "%s: %s payload: ", path, kernel_payload_format_name(f));
	rc = elf_pvh_entry(*elf, *elf_len, &entry, err);
	if (rc == 0)
		return 0;
	free(*elf);
	*elf = NULL;
	if (rc < 0)
		return tv_err_prefix(err, "%s: extracted kernel: ", path);
	tv_errf(err, "%s: its vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)", path);
	return 1;
}

int kernel_extract_mem(const char *bzimage_path, uint8_t **elf_out, size_t *elf_len,
		       struct tv_err *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (file_read_all(bzimage_path, &buf, &len, NULL, err) < 0)
		return -1;
	rc = extract_buf(bzimage_path, buf, len, elf_out, elf_len, err);
	free(buf);
	return rc;
}

static int mkdir_parents(const char *dir, struct tv_err *err)
{
	char *p = xstrdup(dir);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			tv_errno(err, "%s", p);
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return tv_errno(err, "%s", dir);
	return 0;
}

/* Writes len bytes to path through a temporary file in the same directory
 * and a rename, so the name only ever holds a complete file. */
static int file_write_atomic(const char *dir, const char *path, const void *data, size_t len,
			     struct tv_err *err)
{
	char *tmp = xasprintf("%s/.tmp-XXXXXX", dir);
	int fd = mkstemp(tmp);

	if (fd < 0) {
		tv_errno(err, "%s: cannot create a file in the kernel cache", dir);
		free(tmp);
		return -1;
	}
	if (write_full(fd, data, len) < 0 || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
		tv_errno(err, "%s: write", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		tv_errno(err, "%s: close", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		tv_errno(err, "%s: rename to %s", tmp, path);
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}

/* A cached vmlinux is only trusted when it still reads as an ELF with the
 * PVH note; mapping it touches only the pages the check reads. */
static bool cache_entry_valid(const char *path)
{
	struct stat st;
	uint32_t entry;
	void *m;
	bool ok = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 64 &&
	    (uint64_t)st.st_size <= KERNEL_EXTRACT_MAX) {
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			ok = elf_pvh_entry(m, (size_t)st.st_size, &entry, NULL) == 0;
			munmap(m, (size_t)st.st_size);
		}
	}
	close(fd);
	return ok;
}

/* A second index, by the file's identity: device, inode, size, and its
 * modification and change times in nanoseconds (the change time moves on
 * every write and cannot be set back), plus its path. A boot of an unchanged
 * bzImage then finds its vmlinux without reading and hashing the file. */
static char *stat_link_path(const char *cache_dir, const char *path, const struct stat *st)
{
	char hex[SHA256_HEX_LEN + 1];
	char *key = xasprintf(
	    "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld:%s", (unsigned long long)st->st_dev,
	    (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
	    st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec, path);
	char *link;

	sha256_hex(key, strlen(key), hex);
	link = xasprintf("%s/stat-%.40s", cache_dir, hex);
	free(key);
	return link;
}

/* The cached vmlinux the stat link names, when the link and the entry are
 * both sound; NULL otherwise. */
static char *stat_link_lookup(const char *cache_dir, const char *bzimage_path)
{
	char target[128];
	struct stat st;
	char *link, *entry = NULL;
	ssize_t n;

	if (stat(bzimage_path, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	link = stat_link_path(cache_dir, bzimage_path, &st);
	n = readlink(link, target, sizeof(target) - 1);
	free(link);
	if (n != (ssize_t)strlen("vmlinux-") + SHA256_HEX_LEN)
		return NULL;
	target[n] = '\0';
	if (strncmp(target, "vmlinux-", 8) != 0 ||
	    strspn(target + 8, "0123456789abcdef") != SHA256_HEX_LEN)
		return NULL;
	entry = xasprintf("%s/%s", cache_dir, target);
	if (!cache_entry_valid(entry)) {
		free(entry);
		return NULL;
	}
	return entry;
}

/* Best effort: a missing link only costs a hash on the next boot. */
static void stat_link_make(const char *cache_dir, const char *bzimage_path, const struct stat *st,
			   const char *entry)
{
	char *link = stat_link_path(cache_dir, bzimage_path, st);
	char *tmp = xasprintf("%s.tmp%ld", link, (long)getpid());
	const char *base = strrchr(entry, '/');

	unlink(tmp);
	if (symlink(base ? base + 1 : entry, tmp) == 0 && rename(tmp, link) < 0)
		unlink(tmp);
	free(tmp);
	free(link);
}

/* Marks a cache entry as just used: pruning keeps the most recent ones. */
static void cache_touch(const char *path)
{
	utimensat(AT_FDCWD, path, NULL, 0);
}

struct cache_entry {
	char *name;
	struct timespec used;
};

static int cache_entry_cmp(const void *a, const void *b)
{
	const struct cache_entry *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? 1 : -1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? 1 : -1;
	return 0;
}

/* Keeps the KERNEL_CACHE_KEEP most recently used vmlinux files (each is tens
 * of MiB) and drops the rest, with the links that pointed at them. Best
 * effort: the cache stays usable whatever fails here. */
static void cache_prune(const char *cache_dir)
{
	struct cache_entry *e = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir = opendir(cache_dir);

	if (!dir)
		return;
	while ((d = readdir(dir)) != NULL) {
		struct stat st;
		if (strncmp(d->d_name, "vmlinux-", 8) != 0 ||
		    strlen(d->d_name) != 8 + SHA256_HEX_LEN ||
		    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			e = xreallocarray(e, cap, sizeof(*e));
		}
		e[n++] = (struct cache_entry){xstrdup(d->d_name), st.st_mtim};
	}
	qsort(e, n, sizeof(*e), cache_entry_cmp);
	for (size_t i = KERNEL_CACHE_KEEP; i < n; i++)
		unlinkat(dirfd(dir), e[i].name, 0);
	/* Links whose entry is gone. */
	rewinddir(dir);
	while (n > KERNEL_CACHE_KEEP && (d = readdir(dir)) != NULL) {
		struct stat st;
		if (strncmp(d->d_name, "stat-", 5) == 0 &&
		    fstatat(dirfd(dir), d->d_name, &st, 0) < 0 && errno == ENOENT)
			unlinkat(dirfd(dir), d->d_name, 0);
	}
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
	closedir(dir);
}

int kernel_extract(const char *bzimage_path, const char *cache_dir, char **vmlinux_path_out,
		   struct tv_err *err)
{
	struct stat st;
	char hex[SHA256_HEX_LEN + 1];
	char *path = NULL, *nopvh = NULL;
	uint8_t *buf, *elf = NULL;
	size_t len, elf_len, off, plen;
	int rc = -1;

	*vmlinux_path_out = stat_link_lookup(cache_dir, bzimage_path);
	if (*vmlinux_path_out) {
		cache_touch(*vmlinux_path_out);
		return 0;
	}
	if (file_read_all(bzimage_path, &buf, &len, &st, err) < 0)
		return -1;
	if (bzimage_payload(buf, len, &off, &plen, err) < 0) {
		tv_err_prefix(err, "%s: ", bzimage_path);
		goto out;
	}
	sha256_hex(buf, len, hex);
	path = xasprintf("%s/vmlinux-%s", cache_dir, hex);
	nopvh = xasprintf("%s.nopvh", path);
	if (cache_entry_valid(path)) {
		stat_link_make(cache_dir, bzimage_path, &st, path);
		cache_touch(path);
		*vmlinux_path_out = path;
		path = NULL;
		rc = 0;
		goto out;
	}
	if (access(nopvh, F_OK) == 0) {
		tv_errf(err, "%s: its vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
			bzimage_path);
		rc = 1;
		goto out;
	}
	rc = extract_buf(bzimage_path, buf, len, &elf, &elf_len, err);
	if (rc < 0)
		goto out;
	if (mkdir_parents(cache_dir, err) < 0) {
		rc = tv_err_prefix(err, "kernel cache: ");
		goto out;
	}
	if (rc == 1) {
		/* Remember the verdict; a failure to do so only costs time later. */
		struct tv_err ignored;
		file_write_atomic(cache_dir, nopvh, "", 0, &ignored);
		goto out;
	}
	if (file_write_atomic(cache_dir, path, elf, elf_len, err) < 0) {
		rc = -1;
		goto out;
	}
	stat_link_make(cache_dir, bzimage_path, &st, path);
	cache_prune(cache_dir);
	*vmlinux_path_out = path;
	path = NULL;
out:
	free(buf);
	free(elf);
	free(path);
	free(nopvh);
	return rc;
}
