/* A terminal screen on libvterm's state layer: the cells of the main and
 * the alternate screen, kept row by row, with the scrollback handed out
 * through callbacks. It takes the place of libvterm's own VTermScreen,
 * whose buffer is one block of cells: each line that scrolls moves every
 * cell of the scroll region (at 80x24, 70 KB per line feed). Here a scroll
 * of whole rows moves row pointers and blanks the rows it uncovers, as
 * tmux's grid does, so a guest printing lines costs a few hundred bytes of
 * memory traffic a line instead.
 *
 * The interface is VTermScreen's, for what the console pane and the VM
 * process's console buffer use: the same callbacks (VTermScreenCallbacks:
 * damage, movecursor, settermprop, bell, sb_pushline, sb_popline), cells
 * read as VTermScreenCell, the same behaviour on resize (rows pushed into
 * the scrollback when the screen shrinks below the cursor, pulled back when
 * it grows). Damage is reported once per change of a row, merged per row,
 * when vtscreen_flush_damage runs; scrolls are reported as damage to the
 * rows that moved (no moverect callback).
 *
 * Every rectangle and position from the state layer is clipped to the
 * screen before use: libvterm 0.1.4's state has flaws a guest can reach
 * (see vtguard.h), and no cell outside the screen is ever written. */
#ifndef TV_VTSCREEN_H
#define TV_VTSCREEN_H

#include <stdbool.h>

#include <vterm.h>

struct vtscreen;

/* Attaches a screen to vt's state (vterm_obtain_screen must not be used on
 * the same vt). The screen is freed with vtscreen_free before vterm_free. */
struct vtscreen *vtscreen_new(VTerm *vt);
void vtscreen_free(struct vtscreen *s);

void vtscreen_set_callbacks(struct vtscreen *s, const VTermScreenCallbacks *cb, void *user);
/* Gives the screen an alternate screen, so that the state switches to it. */
void vtscreen_enable_altscreen(struct vtscreen *s, int enable);
/* Resets the state (and through it clears the screen). */
void vtscreen_reset(struct vtscreen *s, int hard);
/* Reports the damage gathered since the last flush through the damage
 * callback, one rectangle per run of damaged rows. */
void vtscreen_flush_damage(struct vtscreen *s);
/* The cell at pos, as vterm_screen_get_cell gives it; 0 outside the screen. */
int vtscreen_get_cell(const struct vtscreen *s, VTermPos pos, VTermScreenCell *cell);
/* The same from the main screen (alt 0) or the alternate one (alt 1),
 * whichever is shown; 0 outside the screen or without that screen. */
int vtscreen_get_cell_of(const struct vtscreen *s, int alt, VTermPos pos, VTermScreenCell *cell);
/* Whether the alternate screen is shown (a full-screen program). */
bool vtscreen_alt_shown(const struct vtscreen *s);

#endif
