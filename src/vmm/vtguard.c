#include "src/vmm/vtguard.h"

enum { GROUND, ESCAPE, CSI, STRING };

/* Characters that surely take one cell: REP may repeat them. Anything else
 * (combining marks, zero-width spaces, scripts this list does not know)
 * makes a following REP unsafe, which costs at worst a few repeated
 * characters not drawn. Wide characters (CJK, Hangul) are not on the list:
 * libvterm 0.1.4 repeating one from an odd column writes past its screen. */
static bool has_width(uint32_t cp)
{
	return (cp >= 0xa0 && cp < 0x300) ||    /* Latin */
	       (cp >= 0x370 && cp < 0x483) ||   /* Greek, Cyrillic */
	       (cp >= 0x2500 && cp < 0x2600);   /* box drawing, blocks, shapes */
}

/* Text in the ground state: ASCII, or UTF-8 decoded far enough to judge. */
static void ground_text(struct vtguard *g, uint8_t c)
{
	if (c < 0x80) {
		g->need = 0;
		if (c >= 0x20 && c < 0x7f)
			g->rep_ok = true;
		return;
	}
	if (c >= 0xc0) {
		g->need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
		g->cp = c & (0x3f >> g->need);
		g->rep_ok = false;
		return;
	}
	if (g->need == 0)
		return; /* a stray continuation byte */
	g->cp = g->cp << 6 | (c & 0x3f);
	if (--g->need == 0)
		g->rep_ok = has_width(g->cp);
}

size_t vtguard_filter(struct vtguard *g, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	/* The state errs on the side of seeing a CSI where libvterm might:
	 * after an ESC, bytes it skips (controls, bytes >= 0x80,
	 * intermediates) keep the escape open, and an 8-bit CSI counts too. */
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		/* libvterm decodes UTF-8 first: a character inside a sequence
		 * may end it and be drawn, unseen by the text path below. */
		if (c >= 0x80 && g->state != GROUND)
			g->rep_ok = false;
		if (c == 0x1b) {
			g->state = ESCAPE;
		} else if ((g->state == ESCAPE && c == '[') ||
			   (g->state == GROUND && c == 0x9b && g->need == 0)) {
			g->state = CSI;
			g->seps = 0;
			g->digits = 0;
		} else if (c == 0x18 || c == 0x1a) {
			g->state = GROUND; /* CAN, SUB: abort any sequence */
		} else if (g->state == ESCAPE) {
			if (c == 'P' || c == ']' || c == 'X' || c == '^' || c == '_') {
				/* A string (DCS, OSC, SOS, PM, APC): its text is not
				 * drawn, so it is no character for REP to repeat. */
				g->state = STRING;
				g->rep_ok = false;
			} else if (c >= 0x30 && c <= 0x7e) {
				g->state = GROUND; /* the escape's final byte */
			}
		} else if (g->state == STRING) {
			if (c == 0x07) /* BEL ends it, ESC \\ too (above); not an
					* 8-bit ST, which may be part of a character */
				g->state = GROUND;
		} else if (g->state == CSI) {
			if (c == ';' || c == ':') {
				if (g->seps >= VTGUARD_MAX_SEPARATORS)
					continue;
				g->seps++;
				g->digits = 0;
			} else if (c >= '0' && c <= '9') {
				if (g->digits >= VTGUARD_MAX_DIGITS)
					continue;
				g->digits++;
			} else if (c >= 0x40 && c <= 0x7e) {
				g->state = GROUND; /* the final byte */
				if (c == 'b' && !g->rep_ok)
					c = 0x18;
			}
		} else {
			ground_text(g, c);
		}
		out[n++] = c;
	}
	return n;
}
