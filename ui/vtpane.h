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
/* The same for lines that belong above what the pane shows (the lines a
 * paced console missed, PROTO_CONSOLE_SYNC): a view scrolled back, and
 * copy mode's cursor and selection, keep their distance from the bottom. */
void vtpane_feed_sync(struct vtpane *p, const char *bytes, size_t len);
void vtpane_resize(struct vtpane *p, int rows, int cols);

/* A key from wget_wch(): is_key says ch is a KEY_* code rather than a character. */
void vtpane_key(struct vtpane *p, unsigned ch, bool is_key);

/* Text typed into the guest as a terminal pastes it: line feeds become
 * carriage returns (the Enter key), and the whole is bracketed (ESC [200~ ..
 * ESC [201~) when the guest asked for bracketed paste (DECSET 2004), with
 * any ESC inside the text dropped so the paste cannot end early. */
void vtpane_paste(struct vtpane *p, const char *text, size_t len);

/* Moves the view into the scrollback by lines (positive: older); 0 returns to the
 * live screen with vtpane_scroll_reset. */
void vtpane_scroll(struct vtpane *p, int lines);
void vtpane_scroll_reset(struct vtpane *p);
int vtpane_scroll_offset(const struct vtpane *p);
size_t vtpane_scrollback_len(const struct vtpane *p);

/* Draws into w (top-left at 0,0) the rows that changed since the last draw,
 * and places the cursor. Rows the caller touched (werase, touchwin,
 * touchline on w itself) are drawn again; after clearing a parent window
 * that w shares memory with, call vtpane_touch. Cells never go outside w: a
 * smaller window shows the top-left part, a wide character cut by the right
 * edge shows as a blank. */
void vtpane_draw(struct vtpane *p, WINDOW *w);
/* The same with the pane's first row on row y0 of w (a view's title above
 * it): drawing into the view's own window, whose unchanged rows keep what
 * the last draw put there, needs no subwindow and redraws no more than
 * what changed. */
void vtpane_draw_at(struct vtpane *p, WINDOW *w, int y0);
/* The next draw redraws every row. */
void vtpane_touch(struct vtpane *p);
/* True when something changed since the last draw. */
bool vtpane_dirty(const struct vtpane *p);
/* The title the guest set (OSC 0/2), or "". */
const char *vtpane_title(const struct vtpane *p);

/* UTF-8 text of a visible row, trailing blanks removed (what the user sees). */
size_t vtpane_row_text(const struct vtpane *p, int row, char *buf, size_t len);

/* The terminal's colour number for a libvterm colour, mapped to what the
 * current screen has (see ui/vtcolor.h); -1 means the terminal's default,
 * and every colour when NO_COLOR is set or the terminal has none. Colour
 * pairs come from pairs 32 (16 on terminals with 64 pairs or fewer) up;
 * vtcolor_reset() changes that range. */
short vtpane_color_index(const VTermColor *c);

/* The cursor shape the guest asked for (DECSCUSR): ncurses has no call for
 * it, so the app writes this sequence to its terminal (putp) after its
 * doupdate while the pane has the focus. Empty (returns 0) when the
 * terminal has no Ss capability. */
enum vtpane_cursor { VTPANE_CURSOR_BLOCK = 1, VTPANE_CURSOR_UNDERLINE, VTPANE_CURSOR_BAR };
enum vtpane_cursor vtpane_cursor_shape(const struct vtpane *p, bool *blink);
size_t vtpane_cursor_seq(const struct vtpane *p, char *buf, size_t len);
/* True while a full-screen program (vim, less) has the alternate screen. */
bool vtpane_altscreen(const struct vtpane *p);

/* Search in scrollback and screen. direction: VTPANE_OLDER (up) or
 * VTPANE_NEWER (down), wrapping at either end. The view moves to the match,
 * which is highlighted until vtpane_search_clear or the next search (in copy
 * mode the copy cursor moves to it too). Case is ignored unless the text
 * has a capital letter. */
enum { VTPANE_OLDER = -1, VTPANE_NEWER = 1 };
enum vtpane_found { VTPANE_NOT_FOUND, VTPANE_FOUND, VTPANE_WRAPPED };
enum vtpane_found vtpane_search(struct vtpane *p, const char *text, int direction);
/* n (reverse false) and N (true): the last search again, from the match. */
enum vtpane_found vtpane_search_again(struct vtpane *p, bool reverse);
void vtpane_search_clear(struct vtpane *p);

/* Copy mode: a cursor over scrollback and screen, starting at the pane's
 * cursor; moves scroll the view to keep it visible and stop at the edges
 * (pass a large count for top, bottom, start or end of line). A selection
 * runs from where vtpane_copy_select was called to the cursor, by
 * characters or by whole lines. */
enum vtpane_select { VTPANE_SELECT_NONE, VTPANE_SELECT_CHARS, VTPANE_SELECT_LINES };
void vtpane_copy_start(struct vtpane *p);
void vtpane_copy_move(struct vtpane *p, int lines, int cols);
void vtpane_copy_select(struct vtpane *p, enum vtpane_select mode);
/* Copy mode's moves and selections by their key-table action (ui/keys.c,
 * context "copy"): up, down, left, right, page-up, page-down, top, bottom,
 * line-start, line-end, select, select-lines. False for any other action,
 * or outside copy mode. */
bool vtpane_copy_action(struct vtpane *p, const char *action);
/* Leaves copy mode, drops the selection and returns to the live screen. */
void vtpane_copy_end(struct vtpane *p);
bool vtpane_copy_active(const struct vtpane *p);
/* The copy cursor: row and column in the view (row -1 when off the view). */
void vtpane_copy_cursor(const struct vtpane *p, int *row, int *col);
/* The selected text as UTF-8, lines joined by '\n' without trailing
 * blanks; NULL without a selection. The caller frees it. */
char *vtpane_selection_text(const struct vtpane *p);

/* The OSC 52 sequence that puts text on the clipboard of the user's
 * terminal (through SSH too), base64-encoded; wrapped for tmux's
 * passthrough when tmux is true (pass getenv("TMUX") != NULL). The caller
 * writes it to the terminal and frees it. */
char *vtpane_osc52(const char *text, size_t len, bool tmux);

#endif
