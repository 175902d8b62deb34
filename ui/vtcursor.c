/* The cursor shape of a console pane, as the user's terminal is told it.
 * term.h comes after vtpane.h: its capability macros (bell, lines) would
 * rename libvterm's fields. */
#include <string.h>

#include "ui/vtpane.h"

#include <term.h>

size_t vtpane_cursor_seq(const struct vtpane *p, char *buf, size_t len)
{
	bool blink;
	int style = 2 * (int)vtpane_cursor_shape(p, &blink) - (blink ? 1 : 0);
	char *ss = tigetstr("Ss"), *s;
	size_t n;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (ss == NULL || ss == (char *)-1)
		return 0;
	s = tiparm(ss, style);
	n = s ? strlen(s) : 0;
	if (n >= len)
		return 0;
	memcpy(buf, s, n + 1);
	return n;
}
