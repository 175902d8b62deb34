/* A console pane: a guest's serial output run through libvterm and drawn into an
 * ncurses window, with a scrollback the user can page through, and keys turned
 * into the bytes a terminal would send. The pane is a view: the VM process owns
 * the console (src/vmm/console-buf.h) and sends the pane its screen on attach,
 * then the guarded live output. */
#ifndef TV_VTPANE_H
#define TV_VTPANE_H

#include <stdbool.h>
#include <stddef.h>

#include <curses.h>
#include <vterm.h>

struct vtpane;

/* Receives the bytes that must go to the guest (typed keys, terminal replies). */
typedef void (*vtpane_output_fn)(void *ctx, const char *bytes, size_t len);

struct vtpane *vtpane_new(int rows, int cols, size_t scrollback_lines, vtpane_output_fn out,
			  void *ctx);
void vtpane_free(struct vtpane *p);

/* Guest output. */
void vtpane_feed(struct vtpane *p, const char *bytes, size_t len);
void vtpane_resize(struct vtpane *p, int rows, int cols);

/* A key from wget_wch(): is_key says ch is a KEY_* code rather than a character. */
void vtpane_key(struct vtpane *p, unsigned ch, bool is_key);

/* Moves the view into the scrollback by lines (positive: older); 0 returns to the
 * live screen with vtpane_scroll_reset. */
void vtpane_scroll(struct vtpane *p, int lines);
void vtpane_scroll_reset(struct vtpane *p);
int vtpane_scroll_offset(const struct vtpane *p);
size_t vtpane_scrollback_len(const struct vtpane *p);

/* Draws the visible rows into w (top-left at 0,0) and places the cursor. */
void vtpane_draw(struct vtpane *p, WINDOW *w);
/* True when something changed since the last draw. */
bool vtpane_dirty(const struct vtpane *p);
/* The title the guest set (OSC 0/2), or "". */
const char *vtpane_title(const struct vtpane *p);

/* UTF-8 text of a visible row, trailing blanks removed (what the user sees). */
size_t vtpane_row_text(const struct vtpane *p, int row, char *buf, size_t len);

/* The ncurses colour pair for a libvterm colour pair, allocated on first use
 * (exposed for tests). -1 means the terminal's default. */
short vtpane_color_index(const VTermColor *c);

#endif
