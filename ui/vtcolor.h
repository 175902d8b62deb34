/* Colours of a console pane, mapped to what the user's terminal has: the
 * guest may use 16, 256 or direct (RGB) colours whatever the terminal can
 * show, and ncurses colour pairs are handed out from a cache that recycles
 * them, so a guest cycling through every combination never runs it dry. */
#ifndef TV_VTCOLOR_H
#define TV_VTCOLOR_H

#include <stdbool.h>
#include <stdint.h>

#include <vterm.h>

/* What the terminal shows, from COLORS (and NO_COLOR in the environment). */
enum vtcolor_class {
	VTCOLOR_NONE,	/* monochrome, or NO_COLOR set: attributes only */
	VTCOLOR_8,	/* the 8 basic colours */
	VTCOLOR_16,	/* basic and bright */
	VTCOLOR_256,	/* xterm's palette: 16 + 6x6x6 cube + 24 greys */
	VTCOLOR_DIRECT, /* 24-bit: ncurses colour numbers are 0xRRGGBB */
};

/* The class of the current ncurses screen (after start_color()). */
enum vtcolor_class vtcolor_class_detect(void);

/* The terminal colour number for a libvterm colour in a class; -1 is the
 * terminal's default colour (and every colour in VTCOLOR_NONE). */
int vtcolor_map(const VTermColor *c, enum vtcolor_class cls);

/* The xterm palette entry idx (0-255) as RGB. */
void vtcolor_palette_rgb(int idx, uint8_t rgb[3]);

/* Nearest palette entry to an RGB colour among entries first..last. */
int vtcolor_nearest(uint8_t r, uint8_t g, uint8_t b, int first, int last);

/* Nearest entry of the 256-colour cube or grey ramp (16-255). */
int vtcolor_nearest_256(uint8_t r, uint8_t g, uint8_t b);

/* The ncurses pair for two terminal colours (from vtcolor_map), allocated
 * on first use within the pane's range; 0 when none could be had. */
short vtcolor_pair(int fg, int bg);

/* Bumped each time the pair cache is emptied: cells drawn with older pairs
 * must be drawn again. */
unsigned vtcolor_generation(void);

/* Empties the cache when it is more than three quarters full, so that the
 * frame drawn next has room (the caller then redraws everything). Returns
 * true when it did. */
bool vtcolor_make_room(void);

/* Forgets every pair and the class: call after start_color() on a new
 * screen, or to change the range of pairs the panes may use (pairs first
 * to last inclusive; 0, 0 for the default: from 32, or from 16 on
 * terminals with 64 pairs or fewer, up to COLOR_PAIRS - 1). */
void vtcolor_reset(short first, short last);

#endif
