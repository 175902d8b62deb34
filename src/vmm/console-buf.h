/* A VM's console as the VM process keeps it: the guest's serial output runs
 * through a libvterm screen at all times and the lines that scroll off the top
 * are kept (rendered, with their colours) in a bounded scrollback. A client that
 * attaches later gets the history and the current screen as terminal output
 * (console_buf_render), then the live stream.
 *
 * Who owns what: the VM process owns the console. It guards the guest's
 * output once (vtguard.h), keeps the one true screen and scrollback here (so
 * they outlive every client, a dropped SSH session included), and sends each
 * client the screen, then the stream. A client only shows what it is sent:
 * `termvisor console` hands it to the user's terminal, the interface's pane
 * (ui/vtpane.h) runs it through a libvterm of its own to draw it in a window
 * and page back through what it received. */
#ifndef TV_CONSOLE_BUF_H
#define TV_CONSOLE_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "src/core/protocol.h"

#define CONSOLE_DEFAULT_ROWS 24
#define CONSOLE_DEFAULT_COLS 80
#define CONSOLE_DEFAULT_SCROLLBACK 1000

struct console_buf;

struct console_buf *console_buf_new(int rows, int cols, size_t scrollback_lines);
void console_buf_free(struct console_buf *cb);

/* Output from the guest, through the guard already (vtguard.h): the VM
 * process guards it once for everyone who shows it. */
void console_buf_feed(struct console_buf *cb, const void *bytes, size_t len);
void console_buf_resize(struct console_buf *cb, int rows, int cols);
void console_buf_size(const struct console_buf *cb, int *rows, int *cols);

/* Appends terminal output that reproduces the console on a terminal of
 * term_rows rows: the screen is cleared, the scrollback lines are printed (so
 * they land in the terminal's own scrollback), then the screen's rows, then
 * the cursor is placed. */
void console_buf_render(const struct console_buf *cb, int term_rows, struct proto_buf *out);

/* UTF-8 text of a screen row, trailing blanks removed (for tests and status). */
size_t console_buf_row_text(const struct console_buf *cb, int row, char *buf, size_t len);
size_t console_buf_scrollback_len(const struct console_buf *cb);
/* Bytes held by the scrollback (the screen itself is rows x cols cells). */
size_t console_buf_scrollback_bytes(const struct console_buf *cb);

#endif
