/* A VM's console as the VM process keeps it: the guest's serial output runs
 * through a terminal screen (vtscreen.h) at all times and the lines that scroll off the top
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
#include <stdint.h>

#include "common/err.h"
#include "src/core/protocol.h"

#define CONSOLE_DEFAULT_ROWS 24
#define CONSOLE_DEFAULT_COLS 80
/* As many lines as the interface's console pane keeps (ui/view-console.c):
 * a paced pane gets the lines of a flood from here once it is over. */
#define CONSOLE_DEFAULT_SCROLLBACK 5000

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

/* Lines pushed into the scrollback since cb was made, those the bounded
 * scrollback has dropped since included. */
uint64_t console_buf_lines_pushed(const struct console_buf *cb);

/* console_buf_render with only the scrollback lines pushed after since (a
 * value of console_buf_lines_pushed), as far as the scrollback holds them:
 * what a terminal that showed everything up to then needs, so that its own
 * scrollback gets each line once. since 0: the whole scrollback. */
void console_buf_render_since(const struct console_buf *cb, int term_rows, uint64_t since,
			      struct proto_buf *out);

/* Makes cb a fresh screen of rows x cols fed with render, the output of
 * console_buf_render(other, other's rows): other's screen, scrollback and
 * cursor come back (what a render does not carry stays at its default: the
 * pen, modes, scroll region, the alternate screen). The bytes pass a fresh
 * guard (vtguard.h) first, so they may come from a file. */
void console_buf_replace(struct console_buf *cb, int rows, int cols, const void *render, size_t len);

/* The console file of a machine snapshot (termvisor-snapshot(5)), all
 * little-endian: "TVCONSOL", u32 version, u32 number of consoles, then per
 * console u16 rows, u16 cols, u32 0, u64 length and that many bytes of its
 * render (0x0 and no bytes: the VM kept no screen for it), then the CRC-32
 * (zlib's) of everything before it. */
#define CONSOLE_FILE_MAGIC "TVCONSOL"
#define CONSOLE_FILE_VERSION 1u
#define CONSOLE_FILE_HEAD 16
#define CONSOLE_FILE_ENTRY 16
#define CONSOLE_FILE_MAX (256 << 20)
#define CONSOLE_FILE_MAX_CONSOLES 8
/* Writes the n screens (NULL: none kept) to path, created, and fsyncs it. */
int console_buf_save_file(struct console_buf *const cbs[], unsigned n, const char *path,
			  struct tv_err *err);
/* A console file read and checked whole (magic, version, checksum, sizes,
 * lengths) for a VM of n consoles; NULL with a message that names the file
 * and the field. */
struct console_file *console_file_read(const char *path, unsigned n, struct tv_err *err);
/* Replaces each of the n screens (NULL ones, and those the file kept none
 * for, are left alone) with its saved one. */
void console_file_apply(const struct console_file *cf, struct console_buf *const cbs[], unsigned n);
void console_file_free(struct console_file *cf);
/* Read, then apply: on error nothing changed. */
int console_buf_load_file(struct console_buf *const cbs[], unsigned n, const char *path,
			  struct tv_err *err);

/* UTF-8 text of a screen row, trailing blanks removed (for tests and status). */
size_t console_buf_row_text(const struct console_buf *cb, int row, char *buf, size_t len);
size_t console_buf_scrollback_len(const struct console_buf *cb);
/* Bytes held by the scrollback (the screen itself is rows x cols cells). */
size_t console_buf_scrollback_bytes(const struct console_buf *cb);

#endif
