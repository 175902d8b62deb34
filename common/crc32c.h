/* CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and SSE 4.2's crc32
 * instruction): the checksum of termvisor's snapshot files. Uses the CPU's
 * instruction where there is one (about 10x faster), else a table. */
#ifndef TV_CRC32C_H
#define TV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc over len bytes; start with 0. crc32c(0, "123456789", 9) is
 * 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
