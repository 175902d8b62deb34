/* Little-endian integers in byte buffers (file formats kept on disk: snapshot
 * state, memory images), whatever the host's byte order and alignment. */
#ifndef TV_BYTES_H
#define TV_BYTES_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t get_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

#endif
