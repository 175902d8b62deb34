/* What the interface's own files share beyond ui/app.h: the application
 * object's insides (ui/app.c), the overlays' entry points from the event loop
 * (ui/overlay.c) and the theme. Views use ui/app.h only. */
#ifndef TV_UI_APP_INT_H
#define TV_UI_APP_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include <curses.h>

#include "src/core/settings.h"
#include "ui/app.h"
#include "ui/layout.h"
#include "ui/overlay.h"
#include "ui/view.h"

struct overlay;

/* A child process: a job (a termvisor subcommand) or a verb sent by a child. */
struct app_child {
	pid_t pid;
	int fd; /* its output */
	char label[96];
	char *out;
	size_t len;
	app_job_done_fn job_done;
	app_reply_fn verb_done;
	void *ctx;
};

/* Colour pairs of the theme (ui/app.c, app_theme). */
enum app_color {
	COLOR_RUNNING = 1,
	COLOR_PAUSED,
	COLOR_STARTING,
	COLOR_STOPPED,
	COLOR_CRASHED,
	COLOR_BROKEN,
	COLOR_TITLE,
	COLOR_ERROR,
	COLOR_COUNT
};

struct app {
	struct tv_paths paths;
	struct tv_settings settings;
	struct keytable keys;
	struct model *model;
	uint64_t model_gen; /* what was drawn */

	struct view *list, *details;
	struct view *drawn_pane; /* the view last drawn in w_pane (NULL: none, or closed) */
	struct view **tabs;
	size_t ntabs;
	int cur, last; /* tab shown (-1: the selected VM's details) and the one before */
	char selected[80];
	/* The running VM whose console tab the user closed: while it stays
	 * selected the pane shows its details (its lease, say) rather than a
	 * console opened again at once; "" when none. */
	char closed[80];
	bool focus_pane, zoom;

	struct layout lay;
	WINDOW *w_header, *w_tabs, *w_list, *w_sep, *w_pane, *w_footer;
	char footer_drawn[512];
	bool all_dirty, chrome_dirty;
	uint64_t drawn_ns, key_ns; /* the last draw, the last key (frames) */

	char message[512];
	bool message_error;

	char *copied; /* copy mode's last selection (app_copy) */
	size_t copied_len;

	struct app_child *children;
	size_t nchildren;

	struct overlay *ov; /* the one shown; more wait behind it */
	bool quit;
	bool color;
	int winch_pipe[2];
};

/* The event loop's side of the overlays. */
void overlay_draw(struct app *a);
/* A key for the overlay shown; true when one is shown (it takes every key). */
bool overlay_key(struct app *a, int ch, bool is_key);
void overlay_free_all(struct app *a);

/* The colour pair of an app_color, or 0 (no colour: NO_COLOR, a terminal
 * without colours). */
int app_color(const struct app *a, enum app_color c);
/* Attributes for a model state. */
int app_state_attr(const struct app *a, int state);
const char *app_state_name(int state);

/* For the list's keys. */
void app_focus_pane(struct app *a);
void app_start_vm(struct app *a, const char *name, bool open_console);
void app_scroll_pane(struct app *a, int dir);
/* The key table's context of the view that has the keyboard. */
const char *app_context(const struct app *a);
/* Runs the interface (ui_main). */
int app_main(void);

#endif
