/* Line editing for the shell: insert anywhere, backspace/delete, Ctrl-U, Ctrl-C,
 * Ctrl-A/E, Ctrl-L, left/right arrows, home/end, and a history walked with up/down. */
#include "demo.h"

#define HIST_MAX 16
#define LINE_MAX 128

static char history[HIST_MAX][LINE_MAX];
static unsigned hist_count; /* entries ever added; the newest is at (hist_count-1) % HIST_MAX */
static int last_was_cr;

struct line {
	const char *prompt;
	char *buf;
	size_t size, len, pos;
};

/* Rewrites the whole line and puts the cursor back where it belongs. */
static void line_redraw(const struct line *l)
{
	printf("\r%s", l->prompt);
	console_write(l->buf, l->len);
	console_puts("\033[K");
	if (l->len > l->pos)
		printf("\033[%uD", (unsigned)(l->len - l->pos));
}

static void line_set(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (n > l->size - 1)
		n = l->size - 1;
	memcpy(l->buf, s, n);
	l->len = l->pos = n;
	line_redraw(l);
}

static void line_insert(struct line *l, char c)
{
	if (l->len + 1 >= l->size)
		return;
	memmove(l->buf + l->pos + 1, l->buf + l->pos, l->len - l->pos);
	l->buf[l->pos++] = c;
	l->len++;
	if (l->pos == l->len)
		console_write(&c, 1);
	else
		line_redraw(l);
}

static void line_delete(struct line *l, size_t at, size_t n)
{
	memmove(l->buf + at, l->buf + at + n, l->len - at - n);
	l->len -= n;
	if (l->pos > at)
		l->pos = l->pos - at >= n ? l->pos - n : at;
	line_redraw(l);
}

/* Tab: completes the command name when one matches, lists them when several do. */
static void line_complete(struct line *l)
{
	unsigned matches;
	const char *name;

	for (size_t i = 0; i < l->pos; i++)
		if (l->buf[i] == ' ')
			return; /* only the command word completes */
	name = shell_complete(l->buf, l->pos, &matches);
	if (matches == 1) {
		for (const char *p = name + l->pos; *p; p++)
			line_insert(l, *p);
		if (l->pos == l->len)
			line_insert(l, ' ');
	} else if (matches > 1) {
		console_puts("\n");
		shell_list_matches(l->buf, l->pos);
		line_redraw(l);
	}
}

static void hist_add(const char *s)
{
	if (!*s)
		return;
	if (hist_count && strcmp(history[(hist_count - 1) % HIST_MAX], s) == 0)
		return;
	size_t n = strlen(s);
	if (n > LINE_MAX - 1)
		n = LINE_MAX - 1;
	memcpy(history[hist_count % HIST_MAX], s, n);
	history[hist_count % HIST_MAX][n] = 0;
	hist_count++;
}

/* Reads the rest of an escape sequence and returns a key code: 'A'..'D' arrows,
 * 'H' home, 'F' end, 'X' delete, 0 for anything else. */
static int read_escape(void)
{
	int c = console_getc();
	int num = 0;

	if (c != '[' && c != 'O')
		return 0;
	c = console_getc();
	while (c >= '0' && c <= '9') {
		num = num * 10 + (c - '0');
		c = console_getc();
	}
	if (c == '~')
		return num == 1 || num == 7 ? 'H' : num == 4 || num == 8 ? 'F' : num == 3 ? 'X' : 0;
	return c;
}

/* Returns the length of the line read, or -1 when Ctrl-C abandoned it. */
int readline(const char *prompt, char *buf, size_t size)
{
	struct line l = {prompt, buf, size, 0, 0};
	char saved[LINE_MAX] = "";
	unsigned back = 0; /* how many entries up the history we are */

	console_puts(prompt);
	for (;;) {
		int c = console_getc();
		if (c == '\n' && last_was_cr) {
			last_was_cr = 0;
			continue;
		}
		last_was_cr = c == '\r';
		if (c == 0x1b)
			c = 0x100 | read_escape();
		switch (c) {
		case '\r':
		case '\n':
			buf[l.len] = 0;
			console_puts("\n");
			hist_add(buf);
			return (int)l.len;
		case 0x03: /* Ctrl-C */
			console_puts("^C\n");
			buf[0] = 0;
			return -1;
		case 0x7f:
		case 0x08:
			if (l.pos)
				line_delete(&l, l.pos - 1, 1);
			break;
		case 0x15: /* Ctrl-U: kill to the start */
			if (l.pos)
				line_delete(&l, 0, l.pos);
			break;
		case 0x0b: /* Ctrl-K: kill to the end */
			if (l.pos < l.len)
				line_delete(&l, l.pos, l.len - l.pos);
			break;
		case '\t':
			line_complete(&l);
			break;
		case 0x0c: /* Ctrl-L */
			console_puts("\033[H\033[2J");
			line_redraw(&l);
			break;
		case 0x01:
		case 0x100 | 'H':
			l.pos = 0;
			line_redraw(&l);
			break;
		case 0x05:
		case 0x100 | 'F':
			l.pos = l.len;
			line_redraw(&l);
			break;
		case 0x100 | 'X':
			if (l.pos < l.len)
				line_delete(&l, l.pos, 1);
			break;
		case 0x100 | 'D':
			if (l.pos) {
				l.pos--;
				console_puts("\033[D");
			}
			break;
		case 0x100 | 'C':
			if (l.pos < l.len) {
				l.pos++;
				console_puts("\033[C");
			}
			break;
		case 0x100 | 'A':
			if (back < hist_count && back < HIST_MAX) {
				if (back == 0) {
					size_t n = l.len < LINE_MAX ? l.len : LINE_MAX - 1;
					memcpy(saved, buf, n);
					saved[n] = 0;
				}
				back++;
				line_set(&l, history[(hist_count - back) % HIST_MAX]);
			}
			break;
		case 0x100 | 'B':
			if (back) {
				back--;
				line_set(&l,
					 back ? history[(hist_count - back) % HIST_MAX] : saved);
			}
			break;
		default:
			if (c >= 0x20 && c < 0x7f)
				line_insert(&l, (char)c);
		}
	}
}
