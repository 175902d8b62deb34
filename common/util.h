/* Small allocation and string helpers shared by every part of termvisor.
 * Allocation failure of these small, host-sized objects is fatal; sizes that
 * come from a guest or a file are checked by the caller before allocating. */
#ifndef TV_UTIL_H
#define TV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup_len(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads/writes the whole buffer, retrying on EINTR and short transfers. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* "512M", "2G", "4096", "1.5G" -> bytes. Suffixes K M G T (powers of 1024),
 * optional trailing "B" or "iB". Returns -1 on anything else or overflow. */
int parse_size(const char *s, uint64_t *out);
/* Formats bytes the way parse_size reads them back ("512M", "1.5G"). */
void format_size(uint64_t bytes, char *buf, size_t len);

uint64_t monotonic_ns(void);

#endif
