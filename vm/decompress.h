/* Host-side extraction of the vmlinux inside a Linux bzImage.
 *
 * A bzImage carries the kernel as a compressed ELF (the setup header's
 * payload_offset/payload_length). Decompressing it in the guest is the slow
 * part of a boot, and slower still where guest kernel code is emulated, so the
 * engine decompresses it on the host once, keeps the ELF in a cache keyed by
 * the bzImage's SHA-256, and boots the ELF through its PVH entry.
 *
 * Payload formats: gzip, xz, lzma, lz4 (legacy frame), zstd, and an
 * uncompressed ELF; bzip2 and lzo payloads are recognised and left to the
 * bzImage's own entry. Output is capped at KERNEL_EXTRACT_MAX bytes, so a
 * decompression bomb fails cleanly. */
#ifndef TV_DECOMPRESS_H
#define TV_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The largest vmlinux extracted (a distribution kernel's is 30-70 MiB). */
#define KERNEL_EXTRACT_MAX (512ULL << 20)
/* How many extracted kernels the cache keeps, the most recently used. */
#define KERNEL_CACHE_KEEP 4

enum kernel_payload_format {
	PAYLOAD_UNKNOWN = 0,
	PAYLOAD_GZIP,
	PAYLOAD_BZIP2,
	PAYLOAD_LZMA,
	PAYLOAD_XZ,
	PAYLOAD_LZ4,
	PAYLOAD_ZSTD,
	PAYLOAD_LZO,  /* recognised, not supported */
	PAYLOAD_NONE, /* an uncompressed ELF */
};

const char *kernel_payload_format_name(enum kernel_payload_format f);

/* The vmlinux ELF of the bzImage at bzimage_path, extracted into cache_dir
 * (created with its parents when missing; written as a temporary file then
 * renamed, so concurrent runs and crashes never leave a partial file), named
 * by the bzImage's SHA-256 so the next boot of the same content reuses it. A
 * link named by the file's identity (device, inode, size, modification and
 * change times, path) lets the next boot of an unchanged file skip reading
 * and hashing it. The cache keeps the KERNEL_CACHE_KEEP most recently used
 * kernels and removes older ones when it adds one.
 *
 * Returns
 *   0  with *vmlinux_path_out (malloc'ed, the caller frees it) naming an ELF
 *      that carries the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY);
 *   1  when the bzImage is valid but cannot be booted through PVH (payload
 *      format not supported, or the vmlinux has no PVH note): err says why,
 *      and the caller boots the bzImage through its own 64-bit entry;
 *  -1  on error: missing/unreadable file, not a bzImage, truncated file,
 *      inconsistent header, corrupt payload, output over the cap, cache
 *      not writable. err names the file and what was wrong.
 * A bzImage found to lack the PVH note is remembered in the cache too, so
 * later boots return 1 without decompressing again. */
int kernel_extract(const char *bzimage_path, const char *cache_dir, char **vmlinux_path_out,
		   struct tv_err *err);

/* The same without a cache: the extracted ELF in *elf_out (malloc'ed) and
 * *elf_len. Same return values. */
int kernel_extract_mem(const char *bzimage_path, uint8_t **elf_out, size_t *elf_len,
		       struct tv_err *err);

/* Checks a bzImage setup header in buf (the whole file, len bytes) and finds
 * the payload: *off and *plen are its place in the file. -1 with err (the
 * message starts with what was wrong; callers prefix the file name). */
int bzimage_payload(const uint8_t *buf, size_t len, size_t *off, size_t *plen, struct tv_err *err);

/* The format of a compressed payload, from its magic bytes. */
enum kernel_payload_format kernel_payload_detect(const uint8_t *p, size_t len);

/* Decompresses p[0, len) in format f into *out (malloc'ed), at most max bytes
 * of output. -1 with err on corrupt or truncated data or output over max. */
int kernel_payload_decompress(enum kernel_payload_format f, const uint8_t *p, size_t len,
			      size_t max, uint8_t **out, size_t *out_len, struct tv_err *err);

/* The 32-bit PVH entry point of an ELF64 image (XEN_ELFNOTE_PHYS32_ENTRY, note
 * type 18 of owner "Xen", in a PT_NOTE segment). Returns 0 with *entry, 1 when
 * the ELF is valid but has no such note, -1 (err) when it is not a valid ELF64
 * x86-64 image or a header points outside it. */
int elf_pvh_entry(const uint8_t *elf, size_t len, uint32_t *entry, struct tv_err *err);

#endif
