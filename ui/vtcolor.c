/* Colour mapping and the pair cache of the console panes. */
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "ui/vtcolor.h"
#include "common/util.h"

static const uint8_t basic16[16][3] = {
    {0, 0, 0},	   {205, 0, 0},	    {0, 205, 0},     {205, 205, 0},   {0, 0, 238}, {205, 0, 205},
    {0, 205, 205}, {229, 229, 229}, {127, 127, 127}, {255, 0, 0},     {0, 255, 0}, {255, 255, 0},
    {92, 92, 255}, {255, 0, 255},   {0, 255, 255},   {255, 255, 255},
};
static const uint8_t cube_level[6] = {0, 95, 135, 175, 215, 255};

void vtcolor_palette_rgb(int idx, uint8_t rgb[3])
{
	if (idx < 0 || idx > 255)
		idx = 7;
	if (idx < 16) {
		memcpy(rgb, basic16[idx], 3);
	} else if (idx < 232) {
		idx -= 16;
		rgb[0] = cube_level[idx / 36];
		rgb[1] = cube_level[idx / 6 % 6];
		rgb[2] = cube_level[idx % 6];
	} else {
		rgb[0] = rgb[1] = rgb[2] = (uint8_t)(8 + 10 * (idx - 232));
	}
}

static int dist2(const uint8_t a[3], uint8_t r, uint8_t g, uint8_t b)
{
	int dr = a[0] - r, dg = a[1] - g, db = a[2] - b;

	return dr * dr + dg * dg + db * db;
}

static int chroma(int r, int g, int b)
{
	int hi = r > g ? (r > b ? r : b) : (g > b ? g : b);
	int lo = r < g ? (r < b ? r : b) : (g < b ? g : b);

	return hi - lo;
}

/* Distance in RGB plus a price on a difference in colourfulness, so that a
 * grey stays grey (mid-grey is nearer yellow than white in plain RGB). */
int vtcolor_nearest(uint8_t r, uint8_t g, uint8_t b, int first, int last)
{
	int best = first, best_d = -1, c = chroma(r, g, b);

	for (int i = first; i <= last; i++) {
		uint8_t rgb[3];
		int d;

		vtcolor_palette_rgb(i, rgb);
		d = dist2(rgb, r, g, b);
		d +=
		    2 * (chroma(rgb[0], rgb[1], rgb[2]) - c) * (chroma(rgb[0], rgb[1], rgb[2]) - c);
		if (best_d < 0 || d < best_d) {
			best = i;
			best_d = d;
		}
	}
	return best;
}

static int cube_index(uint8_t v)
{
	if (v < 48)
		return 0;
	if (v < 115)
		return 1;
	return (v - 35) / 40;
}

int vtcolor_nearest_256(uint8_t r, uint8_t g, uint8_t b)
{
	int ci = 16 + 36 * cube_index(r) + 6 * cube_index(g) + cube_index(b);
	int avg = (r + g + b) / 3;
	int gi = avg < 8 ? 0 : (avg - 3) / 10;
	uint8_t crgb[3], grgb[3];

	if (gi > 23)
		gi = 23;
	gi += 232;
	vtcolor_palette_rgb(ci, crgb);
	vtcolor_palette_rgb(gi, grgb);
	return dist2(grgb, r, g, b) < dist2(crgb, r, g, b) ? gi : ci;
}

/* Direct colour numbers below 8 name the terminal's basic colours. */
static int pack_rgb(uint8_t r, uint8_t g, uint8_t b)
{
	int v = (r << 16) | (g << 8) | b;

	return v < 8 ? 8 : v;
}

int vtcolor_map(const VTermColor *c, enum vtcolor_class cls)
{
	uint8_t rgb[3];

	if (cls == VTCOLOR_NONE || VTERM_COLOR_IS_DEFAULT_FG(c) || VTERM_COLOR_IS_DEFAULT_BG(c))
		return -1;
	if (VTERM_COLOR_IS_INDEXED(c)) {
		int idx = c->indexed.idx;

		if (cls == VTCOLOR_256 || (cls == VTCOLOR_16 && idx < 16) || idx < 8)
			return idx;
		if (cls == VTCOLOR_8 && idx < 16)
			return idx - 8;
		vtcolor_palette_rgb(idx, rgb);
	} else {
		rgb[0] = c->rgb.red;
		rgb[1] = c->rgb.green;
		rgb[2] = c->rgb.blue;
	}
	switch (cls) {
	case VTCOLOR_DIRECT:
		return pack_rgb(rgb[0], rgb[1], rgb[2]);
	case VTCOLOR_256:
		return vtcolor_nearest_256(rgb[0], rgb[1], rgb[2]);
	case VTCOLOR_16:
		return vtcolor_nearest(rgb[0], rgb[1], rgb[2], 0, 15);
	default:
		return vtcolor_nearest(rgb[0], rgb[1], rgb[2], 0, 7);
	}
}

enum vtcolor_class vtcolor_class_detect(void)
{
	const char *nc = getenv("NO_COLOR");

	if ((nc && *nc) || !has_colors() || COLORS < 8 || COLOR_PAIRS < 2)
		return VTCOLOR_NONE;
	if (COLORS > 256)
		return VTCOLOR_DIRECT;
	if (COLORS >= 256)
		return VTCOLOR_256;
	if (COLORS >= 16)
		return VTCOLOR_16;
	return VTCOLOR_8;
}

/* The cache: an open-addressed table from a (fg, bg) key to a pair, filled
 * upwards from the range's first pair and emptied whole when full (the panes
 * then redraw, see vtcolor_generation). */
static struct {
	bool ready;
	int first, last, next; /* the range and the next pair to hand out */
	int want_first, want_last;
	uint64_t *keys;
	short *pairs;
	size_t mask;
	unsigned generation;
	WINDOW *screen; /* stdscr of the screen the pairs were made on */
	int colors, color_pairs;
} cache;

static uint64_t pair_key(int fg, int bg)
{
	return ((uint64_t)(uint32_t)(fg + 1) << 32) | (uint32_t)(bg + 1);
}

static void cache_empty(void)
{
	if (cache.keys)
		memset(cache.keys, 0, (cache.mask + 1) * sizeof(*cache.keys));
	cache.next = cache.first;
	cache.generation++;
}

static void cache_setup(void)
{
	int top = COLOR_PAIRS - 1 > 32767 ? 32767 : COLOR_PAIRS - 1;
	size_t n = 1;

	cache.first = cache.want_first ? cache.want_first : (COLOR_PAIRS > 64 ? 32 : 16);
	cache.last = cache.want_last ? cache.want_last : (short)top;
	if (cache.last > top)
		cache.last = top;
	while (n < 2 * (size_t)(cache.last > cache.first ? cache.last - cache.first + 1 : 1))
		n <<= 1;
	free(cache.keys);
	free(cache.pairs);
	cache.keys = xcalloc(n, sizeof(*cache.keys));
	cache.pairs = xcalloc(n, sizeof(*cache.pairs));
	cache.mask = n - 1;
	cache.screen = stdscr;
	cache.colors = COLORS;
	cache.color_pairs = COLOR_PAIRS;
	cache.ready = true;
	cache_empty();
}

void vtcolor_reset(short first, short last)
{
	cache.want_first = first;
	cache.want_last = last;
	cache.ready = false;
}

static void cache_check(void)
{
	if (!cache.ready || cache.screen != stdscr || cache.colors != COLORS ||
	    cache.color_pairs != COLOR_PAIRS)
		cache_setup();
}

unsigned vtcolor_generation(void)
{
	return cache.generation;
}

bool vtcolor_make_room(void)
{
	cache_check();
	if ((cache.next - cache.first) * 4 <= (cache.last - cache.first + 1) * 3)
		return false;
	cache_empty();
	return true;
}

static bool make_pair(short pair, int fg, int bg)
{
	if (init_extended_pair(pair, fg, bg) == OK)
		return true;
	/* Without use_default_colors() the default is white on black. */
	return init_extended_pair(pair, fg < 0 ? COLOR_WHITE : fg, bg < 0 ? COLOR_BLACK : bg) == OK;
}

short vtcolor_pair(int fg, int bg)
{
	uint64_t key = pair_key(fg, bg);
	size_t i;

	if (fg < 0 && bg < 0)
		return 0;
	cache_check();
	if (cache.first > cache.last)
		return 0;
	for (i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 40) & cache.mask; cache.keys[i];
	     i = (i + 1) & cache.mask)
		if (cache.keys[i] == key)
			return cache.pairs[i];
	if (cache.next > cache.last || !make_pair((short)cache.next, fg, bg))
		return 0; /* full for this frame: vtcolor_make_room empties it before the next */
	cache.keys[i] = key;
	cache.pairs[i] = (short)cache.next;
	return (short)cache.next++;
}
