/* A filter for terminal output from a guest, run before libvterm (and before
 * any client's terminal) sees it. libvterm 0.1.4 writes past its argument
 * array when a CSI sequence has more than 16 parameters ("\033[;;;...;m"
 * crashes it), so a guest could crash the VM process, or the interface
 * showing its console, by printing such a sequence. The guard drops the
 * separators beyond the limit; well-formed output passes unchanged. */
#ifndef TV_VTGUARD_H
#define TV_VTGUARD_H

#include <stddef.h>
#include <stdint.h>

/* At most this many ';' or ':' separators (so 16 parameters) per CSI. */
#define VTGUARD_MAX_SEPARATORS 15

struct vtguard {
	uint8_t state;
	uint8_t seps;
};

/* Copies in to out (at least len bytes) without the dangerous bytes; returns
 * the length written. State carries over between calls, so a sequence split
 * across reads is followed. */
size_t vtguard_filter(struct vtguard *g, const uint8_t *in, size_t len, uint8_t *out);

#endif
