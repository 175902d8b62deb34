#include <string.h>

#include "vm/mem.h"

int gmem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size, void *hva)
{
	if (m->nregions >= GMEM_MAX_REGIONS || size == 0 || gpa + size < gpa)
		return -1;
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -1;
	}
	m->regions[m->nregions++] = (struct gmem_region){gpa, size, hva};
	m->ram_size += size;
	return 0;
}

static const struct gmem_region *find(const struct guest_mem *m, uint64_t gpa)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = find(m, gpa);
	uint64_t off;

	if (r == NULL)
		return NULL;
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	return r->hva + off;
}

bool gmem_valid(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	while (len > 0) {
		const struct gmem_region *r = find(m, gpa);
		uint64_t chunk;
		if (r == NULL)
			return false;
		chunk = r->size - (gpa - r->gpa);
		if (chunk >= len)
			return true;
		gpa += chunk;
		len -= chunk;
	}
	return true;
}

static int copy(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len, bool to_guest)
{
	uint8_t *p = buf;

	if (!gmem_valid(m, gpa, len))
		return -1;
	while (len > 0) {
		const struct gmem_region *r = find(m, gpa);
		uint64_t off = gpa - r->gpa;
		size_t chunk = (size_t)(r->size - off < len ? r->size - off : len);
		if (to_guest) {
			gmem_mark_dirty(m, r->hva + off, chunk);
			memcpy(r->hva + off, p, chunk);
		}
		else
			memcpy(p, r->hva + off, chunk);
		gpa += chunk;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

int gmem_read(const struct guest_mem *m, uint64_t gpa, void *buf, size_t len)
{
	return copy(m, gpa, buf, len, false);
}

int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, size_t len)
{
	return copy(m, gpa, (void *)buf, len, true);
}

void gmem_track_host_writes(struct guest_mem *m, uint64_t *bitmap, const uint8_t *base,
			    uint64_t size)
{
	m->host_dirty = bitmap;
	m->dirty_base = base;
	m->dirty_size = size;
}

void gmem_mark_dirty(const struct guest_mem *m, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;
	uint64_t first, last;

	if (m->host_dirty == NULL || len == 0 || p < m->dirty_base ||
	    (uint64_t)(p - m->dirty_base) >= m->dirty_size)
		return;
	first = (uint64_t)(p - m->dirty_base) / 4096;
	last = (uint64_t)(p - m->dirty_base) + len - 1;
	if (last >= m->dirty_size)
		last = m->dirty_size - 1;
	last /= 4096;
	for (uint64_t pg = first; pg <= last; pg++) {
		uint64_t *w = &m->host_dirty[pg / 64], bit = 1ULL << (pg % 64);
		/* Most writes land on pages already marked: look before the
		 * locked instruction. */
		if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit))
			__atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
	}
}
