/* Small ncurses widgets: a one-line text field form, a yes/no question and a
 * message line. */
#ifndef TV_WIDGETS_H
#define TV_WIDGETS_H

#include <stdbool.h>
#include <stddef.h>

#include <curses.h>

struct form_field {
	const char *label;
	char value[256];
	const char *hint; /* shown after the field */
};

/* Runs a modal form centred on the screen. Tab/Down and Shift-Tab/Up move,
 * Enter on the last field (or F10) submits, Esc cancels. validate() may refuse
 * the values with a message, which is shown, and the form stays open. */
bool form_run(const char *title, struct form_field *fields, size_t n,
	      bool (*validate)(struct form_field *fields, size_t n, char *msg, size_t len,
			       void *ctx),
	      void *ctx);

/* A modal yes/no question; true only for y/Y. */
bool ask_confirm(const char *question);

/* Draws text in a box in the middle of the screen and waits for a key. */
void show_message(const char *title, const char *text);

#endif
