#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vterm.h>
#include <zlib.h>

#include "src/vmm/console-buf.h"
#include "src/vmm/vtguard.h"
#include "src/vmm/vtscreen.h"
#include "common/util.h"

/* One scrollback line, already rendered as terminal output. */
struct sb_line {
	char *bytes;
	size_t len;
};

struct console_buf {
	VTerm *vt;
	struct vtscreen *screen;
	int rows, cols;
	bool cursor_visible;
	struct sb_line *sb;   /* ring, oldest at sb_head */
	size_t sb_cap, sb_len, sb_head, sb_bytes;
	uint64_t sb_pushed; /* lines ever pushed (those the ring dropped too) */
};

/* The attributes that decide how a cell looks; compared cell to cell so SGR
 * sequences are only written where the look changes. */
struct pen {
	unsigned bold, underline, italic, blink, reverse, strike;
	VTermColor fg, bg;
};

static bool color_eq(const VTermColor *a, const VTermColor *b)
{
	if (VTERM_COLOR_IS_DEFAULT_FG(a) != VTERM_COLOR_IS_DEFAULT_FG(b) ||
	    VTERM_COLOR_IS_DEFAULT_BG(a) != VTERM_COLOR_IS_DEFAULT_BG(b))
		return false;
	if (VTERM_COLOR_IS_DEFAULT_FG(a) || VTERM_COLOR_IS_DEFAULT_BG(a))
		return true;
	if (VTERM_COLOR_IS_INDEXED(a) != VTERM_COLOR_IS_INDEXED(b))
		return false;
	if (VTERM_COLOR_IS_INDEXED(a))
		return a->indexed.idx == b->indexed.idx;
	return a->rgb.red == b->rgb.red && a->rgb.green == b->rgb.green &&
	       a->rgb.blue == b->rgb.blue;
}

static void pen_from_cell(struct pen *p, const VTermScreenCell *c)
{
	p->bold = c->attrs.bold;
	p->underline = c->attrs.underline;
	p->italic = c->attrs.italic;
	p->blink = c->attrs.blink;
	p->reverse = c->attrs.reverse;
	p->strike = c->attrs.strike;
	p->fg = c->fg;
	p->bg = c->bg;
}

static bool pen_eq(const struct pen *a, const struct pen *b)
{
	return a->bold == b->bold && a->underline == b->underline && a->italic == b->italic &&
	       a->blink == b->blink && a->reverse == b->reverse && a->strike == b->strike &&
	       color_eq(&a->fg, &b->fg) && color_eq(&a->bg, &b->bg);
}

static bool pen_is_default(const struct pen *p)
{
	return !p->bold && !p->underline && !p->italic && !p->blink && !p->reverse &&
	       !p->strike && VTERM_COLOR_IS_DEFAULT_FG(&p->fg) && VTERM_COLOR_IS_DEFAULT_BG(&p->bg);
}

static void pen_default(struct pen *p)
{
	memset(p, 0, sizeof(*p));
	p->fg.type = VTERM_COLOR_DEFAULT_FG;
	p->bg.type = VTERM_COLOR_DEFAULT_BG;
}

static int sgr_color(char *s, size_t n, const VTermColor *c, bool fg)
{
	if (VTERM_COLOR_IS_DEFAULT_FG(c) || VTERM_COLOR_IS_DEFAULT_BG(c))
		return 0;
	if (VTERM_COLOR_IS_INDEXED(c)) {
		unsigned idx = c->indexed.idx;
		if (idx < 8)
			return snprintf(s, n, ";%u", (fg ? 30 : 40) + idx);
		if (idx < 16)
			return snprintf(s, n, ";%u", (fg ? 90 : 100) + idx - 8);
		return snprintf(s, n, ";%u;5;%u", fg ? 38 : 48, idx);
	}
	return snprintf(s, n, ";%u;2;%u;%u;%u", fg ? 38 : 48, c->rgb.red, c->rgb.green, c->rgb.blue);
}

/* Writes "reset, then every attribute of p": simpler than a diff, and the
 * output stays correct whatever the terminal had set before. */
static void pen_write(const struct pen *p, struct proto_buf *out)
{
	char s[96];
	size_t n = 0;

	n += (size_t)snprintf(s + n, sizeof(s) - n, "\033[0");
	if (p->bold)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";1");
	if (p->italic)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";3");
	if (p->underline)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";4");
	if (p->blink)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";5");
	if (p->reverse)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";7");
	if (p->strike)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ";9");
	n += (size_t)sgr_color(s + n, sizeof(s) - n, &p->fg, true);
	n += (size_t)sgr_color(s + n, sizeof(s) - n, &p->bg, false);
	n += (size_t)snprintf(s + n, sizeof(s) - n, "m");
	proto_buf_append(out, s, MIN(n, sizeof(s) - 1));
}

static size_t utf8_put(char *s, uint32_t c)
{
	if (c < 0x80) {
		s[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		s[0] = (char)(0xc0 | c >> 6);
		s[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		s[0] = (char)(0xe0 | c >> 12);
		s[1] = (char)(0x80 | (c >> 6 & 0x3f));
		s[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	if (c < 0x110000) {
		s[0] = (char)(0xf0 | c >> 18);
		s[1] = (char)(0x80 | (c >> 12 & 0x3f));
		s[2] = (char)(0x80 | (c >> 6 & 0x3f));
		s[3] = (char)(0x80 | (c & 0x3f));
		return 4;
	}
	s[0] = '?';
	return 1;
}

static bool cell_blank(const VTermScreenCell *c)
{
	return (c->chars[0] == 0 || c->chars[0] == ' ') && !c->attrs.reverse &&
	       !c->attrs.underline && VTERM_COLOR_IS_DEFAULT_BG(&c->bg);
}

/* Two cells whose look is byte for byte the same (a run of text in one
 * pen); false says nothing. */
static bool same_look(const VTermScreenCell *a, const VTermScreenCell *b)
{
	return memcmp(&a->attrs, &b->attrs, sizeof(a->attrs)) == 0 &&
	       memcmp(&a->fg, &b->fg, sizeof(a->fg)) == 0 && memcmp(&a->bg, &b->bg, sizeof(a->bg)) == 0;
}

/* Renders ncells cells as terminal output; trailing blanks are left out.
 * Text goes out in runs, with the pen compared only where the look of the
 * cells changes. */
static void render_cells(const VTermScreenCell *cells, int ncells, struct proto_buf *out)
{
	struct pen cur, want;
	const VTermScreenCell *last = NULL;
	char run[1024];
	size_t n = 0;
	int end = ncells;

	while (end > 0 && cell_blank(&cells[end - 1]))
		end--;
	pen_default(&cur);
	for (int i = 0; i < end; i++) {
		const VTermScreenCell *c = &cells[i];
		size_t start = n;

		if (c->chars[0] == (uint32_t)-1)
			continue; /* right half of a wide character */
		if (last == NULL || !same_look(c, last)) {
			pen_from_cell(&want, c);
			if (!pen_eq(&cur, &want)) {
				if (n)
					proto_buf_append(out, run, n);
				n = start = 0;
				pen_write(&want, out);
				cur = want;
			}
		}
		last = c;
		if (n + VTERM_MAX_CHARS_PER_CELL * 4 > sizeof(run)) {
			proto_buf_append(out, run, n);
			n = start = 0;
		}
		for (int k = 0; k < VTERM_MAX_CHARS_PER_CELL && c->chars[k]; k++)
			n += utf8_put(run + n, c->chars[k]);
		if (n == start)
			run[n++] = ' ';
	}
	if (n)
		proto_buf_append(out, run, n);
	if (!pen_is_default(&cur))
		proto_buf_append(out, "\033[m", 3);
}

static struct sb_line *sb_at(const struct console_buf *cb, size_t i)
{
	return &cb->sb[(cb->sb_head + i) % cb->sb_cap];
}

static int on_sb_pushline(int cols, const VTermScreenCell *cells, void *user)
{
	struct console_buf *cb = user;
	struct proto_buf line = {0};
	struct sb_line *slot;

	cb->sb_pushed++;
	if (cb->sb_cap == 0)
		return 1;
	render_cells(cells, cols, &line);
	if (cb->sb_len == cb->sb_cap) {
		/* Full: the oldest line goes. */
		slot = sb_at(cb, 0);
		cb->sb_bytes -= slot->len;
		free(slot->bytes);
		cb->sb_head = (cb->sb_head + 1) % cb->sb_cap;
		cb->sb_len--;
	}
	slot = sb_at(cb, cb->sb_len++);
	slot->bytes = (char *)line.data;
	slot->len = line.len;
	cb->sb_bytes += line.len;
	return 1;
}

static int on_settermprop(VTermProp prop, VTermValue *val, void *user)
{
	struct console_buf *cb = user;

	if (prop == VTERM_PROP_CURSORVISIBLE)
		cb->cursor_visible = val->boolean;
	return 1;
}

static const VTermScreenCallbacks screen_cbs = {
	.settermprop = on_settermprop,
	.sb_pushline = on_sb_pushline,
};

/* A blank screen of rows x cols with the cursor at home. */
static void screen_open(struct console_buf *cb, int rows, int cols)
{
	cb->rows = rows;
	cb->cols = cols;
	cb->cursor_visible = true;
	cb->vt = vterm_new(rows, cols);
	vterm_set_utf8(cb->vt, 1);
	cb->screen = vtscreen_new(cb->vt);
	vtscreen_set_callbacks(cb->screen, &screen_cbs, cb);
	vtscreen_enable_altscreen(cb->screen, 1);
	vtscreen_reset(cb->screen, 1);
}

static void scrollback_clear(struct console_buf *cb)
{
	for (size_t i = 0; i < cb->sb_len; i++)
		free(sb_at(cb, i)->bytes);
	cb->sb_len = cb->sb_head = cb->sb_bytes = 0;
}

struct console_buf *console_buf_new(int rows, int cols, size_t scrollback_lines)
{
	struct console_buf *cb = xcalloc(1, sizeof(*cb));

	cb->sb_cap = scrollback_lines;
	cb->sb = xcalloc(scrollback_lines ? scrollback_lines : 1, sizeof(*cb->sb));
	screen_open(cb, rows, cols);
	return cb;
}

void console_buf_free(struct console_buf *cb)
{
	if (cb == NULL)
		return;
	scrollback_clear(cb);
	free(cb->sb);
	vtscreen_free(cb->screen);
	vterm_free(cb->vt);
	free(cb);
}

void console_buf_feed(struct console_buf *cb, const void *bytes, size_t len)
{
	vterm_input_write(cb->vt, bytes, len);
	vtscreen_flush_damage(cb->screen);
}

void console_buf_resize(struct console_buf *cb, int rows, int cols)
{
	/* The scroll region goes back to the whole screen first, as xterm does on
	 * a resize: libvterm 0.1.4 keeps a region below the new last row, and
	 * its next scroll moves a negative number of lines (a crash the control
	 * socket's fuzz target found). The cursor is kept (DECSC, DECRC). */
	static const char full_region[] = "\0337\033[r\0338";

	if (rows == cb->rows && cols == cb->cols)
		return;
	console_buf_feed(cb, full_region, sizeof(full_region) - 1);
	vterm_set_size(cb->vt, rows, cols);
	vtscreen_flush_damage(cb->screen);
	cb->rows = rows;
	cb->cols = cols;
}

void console_buf_size(const struct console_buf *cb, int *rows, int *cols)
{
	*rows = cb->rows;
	*cols = cb->cols;
}

static void render_row(const struct console_buf *cb, int alt, int row, VTermScreenCell *cells,
		       struct proto_buf *out)
{
	for (int col = 0; col < cb->cols; col++) {
		VTermPos pos = {.row = row, .col = col};
		if (!vtscreen_get_cell_of(cb->screen, alt, pos, &cells[col]))
			memset(&cells[col], 0, sizeof(cells[col]));
	}
	render_cells(cells, cb->cols, out);
}

uint64_t console_buf_lines_pushed(const struct console_buf *cb)
{
	return cb->sb_pushed;
}

void console_buf_render(const struct console_buf *cb, int term_rows, struct proto_buf *out)
{
	console_buf_render_since(cb, term_rows, 0, out);
}

/* What one key sends on the console's terminal now (libvterm has no getter
 * for the modes behind it: the keyboard is asked instead). */
static void output_drop(VTerm *vt)
{
	char b[64];

	while (vterm_output_read(vt, b, sizeof(b)) > 0)
		;
}

static size_t key_sends(VTerm *vt, VTermKey key, char *buf, size_t len)
{
	output_drop(vt); /* answers nobody reads */
	vterm_keyboard_key(vt, key, VTERM_MOD_NONE);
	return vterm_output_read(vt, buf, len);
}

/* The modes that change what the client's keys send to the guest, set
 * either way: cursor keys (DECCKM), keypad (DECKPAM), bracketed paste. A
 * replay that replaced the output carries them (a program started during a
 * flood, or before the client attached, gets the keys it asked for). */
static void render_key_modes(const struct console_buf *cb, struct proto_buf *out)
{
	char b[32];
	size_t n;
	bool paste;

	n = key_sends(cb->vt, VTERM_KEY_UP, b, sizeof(b));
	proto_buf_append(out, n >= 2 && b[1] == 'O' ? "\033[?1h" : "\033[?1l", 5);
	n = key_sends(cb->vt, VTERM_KEY_KP_0, b, sizeof(b));
	proto_buf_append(out, n >= 2 && b[1] == 'O' ? "\033=" : "\033>", 2);
	vterm_keyboard_start_paste(cb->vt);
	paste = vterm_output_read(cb->vt, b, sizeof(b)) > 0;
	vterm_keyboard_end_paste(cb->vt);
	output_drop(cb->vt);
	proto_buf_append(out, paste ? "\033[?2004h" : "\033[?2004l", 8);
}

void console_buf_render_since(const struct console_buf *cb, int term_rows, uint64_t since,
			      struct proto_buf *out)
{
	VTermScreenCell *cells = xcalloc((size_t)cb->cols, sizeof(*cells));
	size_t nlines = cb->sb_len, first, total;
	VTermPos cursor;
	int top, crow;
	char s[48];
	bool alt = vtscreen_alt_shown(cb->screen);

	if (since <= cb->sb_pushed && cb->sb_pushed - since < nlines)
		nlines = (size_t)(cb->sb_pushed - since);
	first = cb->sb_len - nlines;
	total = nlines + (size_t)cb->rows;
	/* The main screen, home and clear, then one line after another: what
	 * does not fit scrolls into the terminal's own scrollback, as it would
	 * have live. */
	proto_buf_append(out, "\033[?1049l\033[m\033[H\033[2J", 18);
	render_key_modes(cb, out);
	for (size_t i = first; i < cb->sb_len; i++) {
		const struct sb_line *l = sb_at(cb, i);
		proto_buf_append(out, l->bytes, l->len);
		proto_buf_append(out, "\r\n", 2);
	}
	for (int row = 0; row < cb->rows; row++) {
		render_row(cb, 0, row, cells, out);
		if (row + 1 < cb->rows)
			proto_buf_append(out, "\r\n", 2);
	}
	/* A full-screen program's screen over it, as the terminal's own
	 * alternate screen: when the program ends, the main screen is back. */
	if (alt) {
		proto_buf_append(out, "\033[?1049h\033[m\033[H", 14);
		for (int row = 0; row < cb->rows; row++) {
			render_row(cb, 1, row, cells, out);
			if (row + 1 < cb->rows)
				proto_buf_append(out, "\r\n", 2);
		}
	}
	free(cells);
	/* Where the screen's first row ended up on the terminal. */
	if (alt)
		top = 0;
	else if (total <= (size_t)term_rows)
		top = (int)nlines;
	else
		top = term_rows - cb->rows;
	/* The state's cursor, not the last callback's: libvterm reports moves
	 * lazily. */
	vterm_state_get_cursorpos(vterm_obtain_state(cb->vt), &cursor);
	crow = top + cursor.row;
	if (crow < 0)
		crow = 0;
	snprintf(s, sizeof(s), "\033[%d;%dH%s", crow + 1, cursor.col + 1,
		 cb->cursor_visible ? "\033[?25h" : "\033[?25l");
	proto_buf_append(out, s, strlen(s));
}

size_t console_buf_row_text(const struct console_buf *cb, int row, char *buf, size_t len)
{
	size_t n = 0, keep = 0;

	if (len == 0)
		return 0;
	for (int col = 0; col < cb->cols && row >= 0 && row < cb->rows; col++) {
		VTermPos pos = {.row = row, .col = col};
		VTermScreenCell c;
		char s[VTERM_MAX_CHARS_PER_CELL * 4];
		size_t k = 0;

		vtscreen_get_cell(cb->screen, pos, &c);
		if (c.chars[0] == (uint32_t)-1)
			continue;
		for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && c.chars[i]; i++)
			k += utf8_put(s + k, c.chars[i]);
		if (k == 0)
			s[k++] = ' ';
		if (n + k >= len)
			break;
		memcpy(buf + n, s, k);
		n += k;
		if (!(k == 1 && s[0] == ' '))
			keep = n;
	}
	buf[keep] = '\0';
	return keep;
}

size_t console_buf_scrollback_len(const struct console_buf *cb)
{
	return cb->sb_len;
}

size_t console_buf_scrollback_bytes(const struct console_buf *cb)
{
	return cb->sb_bytes;
}

void console_buf_replace(struct console_buf *cb, int rows, int cols, const void *render, size_t len)
{
	struct vtguard guard;
	uint8_t *safe = xmalloc(len ? len : 1);

	vtscreen_free(cb->screen);
	vterm_free(cb->vt);
	scrollback_clear(cb);
	screen_open(cb, rows, cols);
	/* The bytes may come from a file: they pass the guard, as the guest's do. */
	memset(&guard, 0, sizeof(guard));
	len = vtguard_filter(&guard, render, len, safe);
	console_buf_feed(cb, safe, len);
	free(safe);
}

/* ---- the console file of a snapshot ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t crc(const uint8_t *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	/* zlib takes at most UINT_MAX bytes a call. */
	while (len > 0) {
		uInt n = (uInt)MIN(len, (size_t)1 << 30);
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

int console_buf_save_file(struct console_buf *const cbs[], unsigned n, const char *path,
			  struct tv_err *err)
{
	struct proto_buf out = {0};
	uint8_t head[CONSOLE_FILE_HEAD], ent[CONSOLE_FILE_ENTRY], tail[4];
	int fd, rc = 0;

	memcpy(head, CONSOLE_FILE_MAGIC, 8);
	put_le(head + 8, CONSOLE_FILE_VERSION, 4);
	put_le(head + 12, n, 4);
	proto_buf_append(&out, head, sizeof(head));
	for (unsigned i = 0; i < n; i++) {
		struct proto_buf screen = {0};
		const struct console_buf *cb = cbs[i];

		/* Rendered for a terminal of the screen's own height: fed to a
		 * fresh screen of that size it gives back screen and scrollback. */
		if (cb != NULL)
			console_buf_render(cb, cb->rows, &screen);
		put_le(ent, cb ? (uint64_t)cb->rows : 0, 2);
		put_le(ent + 2, cb ? (uint64_t)cb->cols : 0, 2);
		put_le(ent + 4, 0, 4);
		put_le(ent + 8, screen.len, 8);
		proto_buf_append(&out, ent, sizeof(ent));
		proto_buf_append(&out, screen.data, screen.len);
		proto_buf_free(&screen);
	}
	put_le(tail, crc(out.data, out.len), 4);
	proto_buf_append(&out, tail, sizeof(tail));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = tv_errno(err, "%s", path);
	else if (write_full(fd, out.data, out.len) < 0 || fsync(fd) < 0)
		rc = tv_errno(err, "%s: cannot write", path);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = tv_errno(err, "%s: cannot write", path);
	proto_buf_free(&out);
	return rc;
}

/* Reads the whole file, at most CONSOLE_FILE_MAX bytes. */
static uint8_t *slurp(const char *path, size_t *len, struct tv_err *err)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return tv_errno(err, "%s", path), NULL;
	if (fstat(fd, &st) < 0) {
		tv_errno(err, "%s", path);
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONSOLE_FILE_MAX) {
		tv_errf(err, "%s: not a console file (%s)", path,
			S_ISREG(st.st_mode) ? "larger than 256 MiB" : "not a regular file");
		close(fd);
		return NULL;
	}
	*len = (size_t)st.st_size;
	buf = xmalloc(*len ? *len : 1);
	if (read_full(fd, buf, *len) < 0) {
		tv_errno(err, "%s: cannot read", path);
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

struct console_file {
	uint8_t *buf; /* the whole file */
	unsigned n;
	struct {
		int rows, cols; /* 0x0: no screen kept */
		const uint8_t *bytes;
		size_t len;
	} ent[CONSOLE_FILE_MAX_CONSOLES];
};

void console_file_free(struct console_file *cf)
{
	if (cf == NULL)
		return;
	free(cf->buf);
	free(cf);
}

struct console_file *console_file_read(const char *path, unsigned n, struct tv_err *err)
{
	struct console_file *cf;
	size_t len, off;
	uint8_t *buf = slurp(path, &len, err);
	uint64_t version, count;

	if (buf == NULL)
		return NULL;
	cf = xcalloc(1, sizeof(*cf));
	cf->buf = buf;
	cf->n = n;
	if (len < CONSOLE_FILE_HEAD + 4 || memcmp(buf, CONSOLE_FILE_MAGIC, 8) != 0) {
		tv_errf(err, "%s: not a console file (magic)", path);
		goto bad;
	}
	version = get_le(buf + 8, 4);
	if (version != CONSOLE_FILE_VERSION) {
		tv_errf(err, "%s: version %llu%s (this termvisor reads %u)", path,
			(unsigned long long)version,
			version > CONSOLE_FILE_VERSION ? ", from a newer termvisor" : "",
			CONSOLE_FILE_VERSION);
		goto bad;
	}
	if (get_le(buf + len - 4, 4) != crc(buf, len - 4)) {
		tv_errf(err, "%s: checksum mismatch (the file is damaged)", path);
		goto bad;
	}
	count = get_le(buf + 12, 4);
	if (count != n || n > CONSOLE_FILE_MAX_CONSOLES) {
		tv_errf(err, "%s: consoles: %llu, this VM has %u", path, (unsigned long long)count, n);
		goto bad;
	}
	off = CONSOLE_FILE_HEAD;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = buf + off;
		int rows, cols;
		uint64_t blen;

		if (len - 4 - off < CONSOLE_FILE_ENTRY) {
			tv_errf(err, "%s: console %u: truncated", path, i);
			goto bad;
		}
		rows = (int)get_le(e, 2);
		cols = (int)get_le(e + 2, 2);
		blen = get_le(e + 8, 8);
		off += CONSOLE_FILE_ENTRY;
		if (blen > len - 4 - off) {
			tv_errf(err, "%s: console %u: length %llu beyond the end of the file", path, i,
				(unsigned long long)blen);
			goto bad;
		}
		if (!(rows == 0 && cols == 0) &&
		    (rows < PROTO_MIN_DIM || rows > PROTO_MAX_DIM || cols < PROTO_MIN_DIM ||
		     cols > PROTO_MAX_DIM)) {
			tv_errf(err, "%s: console %u: size %dx%d (want %d..%d rows and columns)", path,
				i, rows, cols, PROTO_MIN_DIM, PROTO_MAX_DIM);
			goto bad;
		}
		cf->ent[i].rows = rows;
		cf->ent[i].cols = cols;
		cf->ent[i].bytes = e + CONSOLE_FILE_ENTRY;
		cf->ent[i].len = (size_t)blen;
		off += (size_t)blen;
	}
	if (off != len - 4) {
		tv_errf(err, "%s: %zu bytes after the last console", path, len - 4 - off);
		goto bad;
	}
	return cf;
bad:
	console_file_free(cf);
	return NULL;
}

void console_file_apply(const struct console_file *cf, struct console_buf *const cbs[], unsigned n)
{
	for (unsigned i = 0; i < n && i < cf->n; i++)
		if (cbs[i] != NULL && cf->ent[i].rows > 0)
			console_buf_replace(cbs[i], cf->ent[i].rows, cf->ent[i].cols, cf->ent[i].bytes,
					    cf->ent[i].len);
}

int console_buf_load_file(struct console_buf *const cbs[], unsigned n, const char *path,
			  struct tv_err *err)
{
	struct console_file *cf = console_file_read(path, n, err);

	if (cf == NULL)
		return -1;
	console_file_apply(cf, cbs, n);
	console_file_free(cf);
	return 0;
}
