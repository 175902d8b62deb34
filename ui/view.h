/* Views: the panels of the interface (the VM list, a VM's details, a console,
 * the snapshot tree, the help). Each draws only into the window it is given,
 * never on stdscr, and never with LINES/COLS: a layout (ui/layout.h) decides
 * its rectangle. The one event loop (ui/app.c) polls every view's file
 * descriptors, hands keys to the focused view through the key table
 * (ui/keys.h), and redraws only views that say they are dirty.
 *
 * Adding a view: a struct view_ops, a constructor declared below, and its key
 * bindings (context = the view's name) in the key table. */
#ifndef TV_UI_VIEW_H
#define TV_UI_VIEW_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include <curses.h>

struct app;
struct view;

struct view_ops {
	const char *name; /* also its key-table context: "list", "details",
			   * "console", "snapshots", "help" */
	/* Draws into w (top-left 0,0; its size is the view's rectangle);
	 * focused: keys go to this view. */
	void (*draw)(struct view *v, WINDOW *w, bool focused);
	/* An action of the key table bound in this view's context ("take",
	 * "rollback", "up", ...). Returns true when the view carried it out. */
	bool (*action)(struct view *v, const char *action);
	/* A key no binding of the view's context claimed (a console sends it to
	 * the guest; a list may search). is_key: ch is a KEY_* code. May be NULL. */
	bool (*key)(struct view *v, int ch, bool is_key);
	/* A mouse event inside the view's rectangle (coordinates relative to
	 * it). May be NULL. */
	void (*mouse)(struct view *v, int row, int col, unsigned long bstate);
	/* The rectangle changed. May be NULL. */
	void (*resize)(struct view *v, int rows, int cols);
	/* File descriptors to poll: fills at most max, returns how many. May be NULL. */
	int (*pollfds)(struct view *v, struct pollfd *pfd, int max);
	/* After poll: the same entries with revents set. May be NULL. */
	void (*ready)(struct view *v, const struct pollfd *pfd, int n);
	/* Needs a redraw. */
	bool (*dirty)(struct view *v);
	/* Where the terminal cursor goes when focused (relative), or false to
	 * hide it. May be NULL (hidden). */
	bool (*cursor)(struct view *v, int *row, int *col);
	void (*free)(struct view *v);
	/* The key-table context while the view has the keyboard, when it has
	 * modes (a console's "copy" and "search"). May be NULL: the name. */
	const char *(*context)(struct view *v);
	/* draw paints every cell of w, and only what changed since its last
	 * draw into the same window: the loop does not erase w first (it
	 * still does when the window is new or showed something else, and the
	 * view then sees every row touched). */
	bool paints_all;
};

struct view {
	const struct view_ops *ops;
	struct app *app;
	char title[80]; /* for tabs and the frame */
	void *priv;
};

/* Constructors. NULL on failure with a message shown through app_message. */
struct view *view_list_new(struct app *app);
struct view *view_details_new(struct app *app);
struct view *view_help_new(struct app *app);
/* A live console of VM name (console: enum proto_console). */
struct view *view_console_new(struct app *app, const char *name, int console);
/* The snapshot tree of VM name, cursor on tag (NULL: the "you are here" point). */
struct view *view_snapshots_new(struct app *app, const char *name, const char *tag);

#endif
