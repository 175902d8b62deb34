#include "src/vtguard.h"

enum { GROUND, ESCAPE, CSI };

/* The guard errs on the side of seeing a CSI where libvterm might: after an
 * ESC, bytes it skips (controls, bytes >= 0x80, intermediates) keep the
 * escape open, and an 8-bit CSI (0x9b) counts too. Limiting separators in a
 * sequence libvterm does not take for one only trims nonsense. */
size_t vtguard_filter(struct vtguard *g, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (c == 0x1b) {
			g->state = ESCAPE;
		} else if (c == 0x9b || (g->state == ESCAPE && c == '[')) {
			g->state = CSI;
			g->seps = 0;
		} else if (c == 0x18 || c == 0x1a) {
			g->state = GROUND; /* CAN, SUB: abort any sequence */
		} else if (g->state == ESCAPE) {
			if (c >= 0x30 && c <= 0x7e)
				g->state = GROUND; /* the escape's final byte */
		} else if (g->state == CSI) {
			if (c == ';' || c == ':') {
				if (g->seps >= VTGUARD_MAX_SEPARATORS)
					continue; /* dropped: the one thing that matters */
				g->seps++;
			} else if (c >= 0x40 && c <= 0x7e) {
				g->state = GROUND; /* the final byte */
			}
		}
		out[n++] = c;
	}
	return n;
}
