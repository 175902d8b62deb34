#include <string.h>

#include "ui/widgets.h"

#define KEY_ESC 27

static WINDOW *centered(int h, int w)
{
	int y = (LINES - h) / 2, x = (COLS - w) / 2;
	WINDOW *win;

	if (h > LINES)
		h = LINES;
	if (w > COLS)
		w = COLS;
	win = newwin(h, w, y < 0 ? 0 : y, x < 0 ? 0 : x);
	keypad(win, TRUE);
	box(win, 0, 0);
	return win;
}

static void draw_form(WINDOW *w, const char *title, struct form_field *f, size_t n, size_t cur,
		      const char *msg)
{
	int width = getmaxx(w);

	werase(w);
	box(w, 0, 0);
	wattron(w, A_BOLD);
	mvwprintw(w, 0, 2, " %s ", title);
	wattroff(w, A_BOLD);
	for (size_t i = 0; i < n; i++) {
		int y = 2 + (int)i * 2;
		mvwprintw(w, y, 2, "%-12s", f[i].label);
		wattron(w, i == cur ? A_REVERSE : A_UNDERLINE);
		mvwprintw(w, y, 15, "%-28.28s", f[i].value);
		wattroff(w, i == cur ? A_REVERSE : A_UNDERLINE);
		if (f[i].hint)
			mvwprintw(w, y, 45, "%.*s", width - 46 > 0 ? width - 46 : 0, f[i].hint);
	}
	mvwprintw(w, 2 + (int)n * 2, 2, "Enter: next/create   Esc: cancel");
	if (msg && *msg) {
		wattron(w, A_BOLD);
		mvwprintw(w, 3 + (int)n * 2, 2, "%.*s", width - 4, msg);
		wattroff(w, A_BOLD);
	}
	size_t len = strlen(f[cur].value);
	wmove(w, 2 + (int)cur * 2, 15 + (int)(len < 28 ? len : 28));
	wrefresh(w);
}

bool form_run(const char *title, struct form_field *fields, size_t n,
	      bool (*validate)(struct form_field *fields, size_t n, char *msg, size_t len,
			       void *ctx),
	      void *ctx)
{
	WINDOW *w = centered((int)n * 2 + 5, 84);
	char msg[160] = "";
	size_t cur = 0, shown = (size_t)-1;
	bool done = false, ok = false, fresh = false;

	curs_set(1);
	while (!done) {
		wint_t ch;
		int kind;

		if (cur != shown) /* typing into a field just entered replaces its value */
			fresh = true;
		shown = cur;
		draw_form(w, title, fields, n, cur, msg);
		kind = wget_wch(w, &ch);
		if (kind == ERR)
			continue;
		char *v = fields[cur].value;
		size_t len = strlen(v);
		if (kind == KEY_CODE_YES) {
			if (ch == KEY_UP || ch == KEY_BTAB)
				cur = cur ? cur - 1 : n - 1;
			else if (ch == KEY_DOWN)
				cur = (cur + 1) % n;
			else if (ch == KEY_BACKSPACE && len > 0)
				v[len - 1] = '\0', fresh = false;
			else if (ch == KEY_F(10))
				goto submit;
			else if (ch == KEY_ENTER)
				goto enter;
			continue;
		}
		switch (ch) {
		case KEY_ESC:
			done = true;
			break;
		case '\t':
			cur = (cur + 1) % n;
			break;
		case '\r':
		case '\n':
		enter:
			if (cur + 1 < n) {
				cur++;
				break;
			}
		submit:
			if (validate == NULL || validate(fields, n, msg, sizeof(msg), ctx)) {
				ok = true;
				done = true;
			}
			break;
		case 0x7f:
		case 0x08:
			if (len > 0)
				v[len - 1] = '\0';
			fresh = false;
			break;
		case 0x15: /* Ctrl-U clears the field */
			v[0] = '\0';
			break;
		default:
			if (fresh && ch >= 0x20 && ch < 0x7f) {
				v[0] = '\0';
				len = 0;
			}
			fresh = false;
			if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof(fields[cur].value)) {
				v[len] = (char)ch;
				v[len + 1] = '\0';
			}
		}
	}
	delwin(w);
	curs_set(0);
	touchwin(stdscr);
	return ok;
}

bool ask_confirm(const char *question)
{
	int width = (int)strlen(question) + 6;
	WINDOW *w = centered(5, width < 30 ? 30 : width);
	int ch;

	mvwprintw(w, 1, 2, "%s", question);
	mvwprintw(w, 3, 2, "y: yes   any other key: no");
	wrefresh(w);
	ch = wgetch(w);
	delwin(w);
	touchwin(stdscr);
	return ch == 'y' || ch == 'Y';
}

void show_message(const char *title, const char *text)
{
	int lines = 1, width = (int)strlen(title) + 6, cur = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '\n') {
			lines++;
			cur = 0;
		} else if (++cur + 4 > width) {
			width = cur + 4;
		}
	}
	WINDOW *w = centered(lines + 4, width);
	int y = 1;
	const char *s = text;
	wattron(w, A_BOLD);
	mvwprintw(w, 0, 2, " %s ", title);
	wattroff(w, A_BOLD);
	while (*s) {
		const char *e = strchr(s, '\n');
		int n = e ? (int)(e - s) : (int)strlen(s);
		mvwprintw(w, y++, 2, "%.*s", n, s);
		s += n + (e ? 1 : 0);
	}
	mvwprintw(w, lines + 2, 2, "press a key");
	wrefresh(w);
	wgetch(w);
	delwin(w);
	touchwin(stdscr);
}
