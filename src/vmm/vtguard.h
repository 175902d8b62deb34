/* A filter for terminal output from a guest, run before libvterm (and any
 * client's terminal) sees it. libvterm 0.1.4 has two flaws a guest could use
 * to take down the VM process, or the interface showing its console:
 *   - a CSI sequence with more than 16 parameters ("\033[;;;...;m") writes
 *     past its argument array: the guard drops the separators beyond that;
 *   - REP ("\033[5b", repeat the last character) loops forever when no
 *     character of non-zero width came before it, and writes past the
 *     screen repeating a wide character from an odd column: the guard
 *     cancels a REP that does not follow a character known to take one
 *     cell, printed outside any string (DCS, OSC...) whose text libvterm
 *     does not draw (its final byte becomes CAN, which aborts a sequence in
 *     libvterm and in terminals alike);
 *   - huge numeric parameters reach arithmetic that goes negative (a
 *     negative-size memmove was seen): the guard keeps at most 4 digits of
 *     each parameter, more than any real screen needs.
 * Well-formed output passes unchanged. */
#ifndef TV_VTGUARD_H
#define TV_VTGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many ';' or ':' separators (so 16 parameters) per CSI. */
#define VTGUARD_MAX_SEPARATORS 15
/* At most this many digits per CSI parameter. */
#define VTGUARD_MAX_DIGITS 4

struct vtguard {
	uint8_t state;
	uint8_t seps;
	uint8_t digits; /* of the current CSI parameter */
	bool rep_ok;   /* the last character had a width: REP is safe */
	uint8_t need;  /* UTF-8 continuation bytes still to come */
	uint32_t cp;   /* the code point being decoded */
};

/* Copies in to out (at least len bytes) with the dangerous bytes dropped or
 * replaced; returns the length written. State carries over between calls, so
 * a sequence split across reads is followed. */
size_t vtguard_filter(struct vtguard *g, const uint8_t *in, size_t len, uint8_t *out);

#endif
