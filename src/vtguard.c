#include "src/vtguard.h"

enum { GROUND, ESCAPE, CSI };

size_t vtguard_filter(struct vtguard *g, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		switch (g->state) {
		case ESCAPE:
			if (c == '[') {
				g->state = CSI;
				g->seps = 0;
			} else if (c != 0x1b) {
				g->state = GROUND;
			}
			break;
		case CSI:
			if (c == ';' || c == ':') {
				if (g->seps >= VTGUARD_MAX_SEPARATORS)
					continue; /* dropped: the one thing that matters */
				g->seps++;
			} else if (c == 0x1b) {
				g->state = ESCAPE;
			} else if ((c >= 0x40 && c <= 0x7e) || c == 0x18 || c == 0x1a) {
				g->state = GROUND; /* final byte, or CAN/SUB abort */
			}
			break;
		default:
			if (c == 0x1b)
				g->state = ESCAPE;
			break;
		}
		out[n++] = c;
	}
	return n;
}
