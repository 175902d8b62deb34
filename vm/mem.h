/* Guest physical memory. Every access the engine makes on behalf of a guest goes
 * through these helpers, which check the whole range against the RAM regions, so
 * no guest-supplied address or length reaches host memory unchecked. */
#ifndef TV_MEM_H
#define TV_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 8

struct gmem_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping */
};

struct guest_mem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t ram_size; /* total bytes of RAM over all regions */

	/* The pages the host writes for devices, which KVM's dirty log does
	 * not see: one bit per 4 KiB page of the RAM mapping [dirty_base,
	 * dirty_base + dirty_size) (vm/memimg.c owns the bitmap). NULL: not
	 * tracked. Set from any thread; read and cleared by the memory image
	 * code while the devices are quiesced. */
	uint64_t *host_dirty;
	const uint8_t *dirty_base;
	uint64_t dirty_size;
};

/* Adds a region; regions must not overlap. Returns -1 when full or overlapping. */
int gmem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, void *hva);

/* Host pointer for [gpa, gpa + len) when the whole range lies in one RAM region,
 * else NULL (out of RAM, straddling a hole, or wrapping around). */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copies between guest and host memory; the range may span adjacent regions.
 * Return 0, or -1 when any byte lies outside guest RAM (nothing is copied then). */
int gmem_read(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len);
int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, size_t len);

/* Tracks host writes into the RAM mapping [base, base + size) in bitmap
 * (one bit per 4 KiB page, size / 4096 bits, owned by the caller). */
void gmem_track_host_writes(struct guest_mem *m, uint64_t *bitmap, const uint8_t *base,
			    uint64_t size);
/* The host is about to write [hva, hva + len) of guest RAM (or handed it to
 * something that will): marks its pages. Outside the tracked mapping, or
 * when nothing is tracked, does nothing. Call it before the write and keep
 * the write before the next quiesce of the devices. */
void gmem_mark_dirty(const struct guest_mem *m, const void *hva, uint64_t len);

/* True when every byte of [gpa, gpa + len) is guest RAM. */
bool gmem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len);

#endif
