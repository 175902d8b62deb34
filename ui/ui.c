#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curses.h>

#include "src/core/catalog.h"
#include "src/core/client.h"
#include "src/core/settings.h"
#include "src/vmm/vmm.h"
#include "ui/vtpane.h"
#include "src/core/datadir.h"
#include "src/core/paths.h"
#include "src/core/vmdisk.h"
#include "src/core/vmops.h"
#include "src/core/runtime.h"
#include "ui/ui.h"
#include "ui/widgets.h"
#include "common/util.h"

#define REFRESH_MS 1000

/* The console view: one VM's console attached over its control socket. */
struct console_view {
	struct tv_client *client;
	struct vtpane *pane;
	char name[80];
	bool ended; /* the VM went away: the pane stays for reading */
	char reason[TV_ERR_MAX];
};

struct ui {
	struct tv_paths paths;
	struct tv_settings settings;
	struct catalog cat;
	struct vm_status *status; /* one per catalog entry */
	size_t sel;
	char message[256];
	bool quit;
	struct console_view *con; /* NULL while the list is shown */
};

static void ui_message(struct ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ui_message(struct ui *u, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->message, sizeof(u->message), fmt, ap);
	va_end(ap);
}

static void ui_reload(struct ui *u)
{
	struct tv_err err;
	char *selname = NULL;

	if (u->sel < u->cat.n)
		selname = xstrdup(u->cat.v[u->sel].name);
	catalog_free(&u->cat);
	free(u->status);
	u->status = NULL;
	if (catalog_load(&u->paths, &u->cat, &err) < 0)
		ui_message(u, "%s", err.msg);
	u->status = xcalloc(u->cat.n ? u->cat.n : 1, sizeof(*u->status));
	for (size_t i = 0; i < u->cat.n; i++) {
		if (u->cat.v[i].ok)
			vm_status_probe(&u->paths, u->cat.v[i].name, &u->status[i]);
		if (selname && strcmp(selname, u->cat.v[i].name) == 0)
			u->sel = i;
	}
	if (u->sel >= u->cat.n)
		u->sel = u->cat.n ? u->cat.n - 1 : 0;
	free(selname);
}

static int state_color(const struct catalog_entry *e, const struct vm_status *st)
{
	if (!e->ok)
		return 3;
	switch (st->state) {
	case VM_RUNNING:
		return 1;
	case VM_PAUSED:
		return 2;
	case VM_CRASHED:
		return 3;
	default:
		return 0;
	}
}

static void draw_header(struct ui *u)
{
	attron(A_REVERSE | A_BOLD);
	mvhline(0, 0, ' ', COLS);
	mvprintw(0, 1, "termvisor");
	attroff(A_BOLD);
	size_t running = 0;
	for (size_t i = 0; i < u->cat.n; i++)
		running += u->status[i].state == VM_RUNNING || u->status[i].state == VM_PAUSED;
	mvprintw(0, 12, "%zu VMs, %zu running", u->cat.n, running);
	attroff(A_REVERSE);
}

static void draw_table(struct ui *u, int top, int height)
{
	int first = 0;

	attron(A_BOLD);
	mvprintw(top, 1, "%-20s %-8s %7s %4s %7s %5s %5s", "NAME", "STATE", "PID", "CPUS", "MEMORY",
		 "DISKS", "SNAPS");
	attroff(A_BOLD);
	if ((int)u->sel >= height - 1)
		first = (int)u->sel - (height - 2);
	for (int row = 0; row < height - 1 && first + row < (int)u->cat.n; row++) {
		size_t i = (size_t)(first + row);
		const struct catalog_entry *e = &u->cat.v[i];
		const struct vm_status *st = &u->status[i];
		int y = top + 1 + row, color = state_color(e, st);
		char mem[32] = "-", pid[24] = "-", snaps[16] = "-";

		if (i == u->sel)
			attron(A_REVERSE);
		mvhline(y, 0, ' ', COLS);
		if (e->ok) {
			int n = vmdisk_snapshot_count(&e->def);
			format_size(e->def.memory, mem, sizeof(mem));
			if (st->pid)
				snprintf(pid, sizeof(pid), "%ld", (long)st->pid);
			if (n >= 0)
				snprintf(snaps, sizeof(snaps), "%d", n);
		}
		mvprintw(y, 1, "%-20.20s ", e->name);
		if (color && has_colors())
			attron(COLOR_PAIR(color));
		printw("%-8s", e->ok ? vm_state_name(st->state) : "broken");
		if (color && has_colors())
			attroff(COLOR_PAIR(color));
		if (e->ok)
			printw(" %7s %4u %7s %5zu %5s", pid, e->def.cpus, mem, e->def.ndisks, snaps);
		if (i == u->sel)
			attroff(A_REVERSE);
	}
	if (u->cat.n == 0)
		mvprintw(top + 2, 3, "No VMs yet: press n to create one.");
}

static void draw_details(struct ui *u, int top, int height)
{
	const struct catalog_entry *e;
	int y = top;

	mvhline(top - 1, 0, ACS_HLINE, COLS);
	if (u->sel >= u->cat.n)
		return;
	e = &u->cat.v[u->sel];
	attron(A_BOLD);
	mvprintw(y++, 1, "%s", e->name);
	attroff(A_BOLD);
	if (!e->ok) {
		mvprintw(y++, 1, "%.*s", COLS - 2, e->error);
		return;
	}
	if (e->def.description)
		mvprintw(y++, 1, "%.*s", COLS - 2, e->def.description);
	mvprintw(y++, 1, "kernel:  %.*s", COLS - 12, e->def.kernel ? e->def.kernel : "(none)");
	if (e->def.cmdline && y < top + height)
		mvprintw(y++, 1, "cmdline: %.*s", COLS - 12, e->def.cmdline);
	for (size_t i = 0; i < e->def.ndisks && y < top + height; i++)
		mvprintw(y++, 1, "disk %zu:  %s (%s%s)", i, e->def.disks[i].file,
			 disk_format_name(e->def.disks[i].format),
			 e->def.disks[i].readonly ? ", read-only" : "");
}

static void draw_footer(struct ui *u)
{
	move(LINES - 1, 0);
	clrtoeol();
	if (u->message[0]) {
		attron(A_BOLD);
		mvprintw(LINES - 1, 1, "%.*s", COLS - 2, u->message);
		attroff(A_BOLD);
		return;
	}
	mvprintw(LINES - 1, 1,
		 "Enter console  s start  S stop  F force off  p pause/resume  n new  d delete  "
		 "? help  q quit");
}

static void ui_draw(struct ui *u)
{
	int table_h = LINES > 16 ? LINES - 10 : LINES - 3;

	erase();
	draw_header(u);
	draw_table(u, 2, table_h - 1);
	if (LINES > 16)
		draw_details(u, table_h + 2, LINES - table_h - 3);
	draw_footer(u);
	refresh();
}

static bool validate_create(struct form_field *f, size_t n, char *msg, size_t len, void *ctx)
{
	struct tv_err err;
	uint64_t v;

	if (vm_name_check(f[0].value, &err) < 0) {
		snprintf(msg, len, "%s", err.msg);
		return false;
	}
	if (f[2].value[0] && parse_size(f[2].value, &v) < 0) {
		snprintf(msg, len, "memory: expected a size like 512M or 2G");
		return false;
	}
	if (f[3].value[0] && parse_size(f[3].value, &v) < 0) {
		snprintf(msg, len, "disk: expected a size like 10G, or nothing for no disk");
		return false;
	}
	return true;
}

static void ui_create(struct ui *u)
{
	struct form_field f[] = {
		{"Name", "", "letters, digits, - _ ."},
		{"vCPUs", "1", "1 to 64"},
		{"Memory", "512M", "like 512M or 2G"},
		{"Disk", "8G", "qcow2 disk size; empty for none"},
		{"Kernel", "", "bzImage, vmlinux or PVH ELF"},
		{"Cmdline", "console=ttyS0", ""},
	};
	struct vm_create_args a = {0};
	struct tv_err err;

	if (!form_run("New VM", f, ARRAY_SIZE(f), validate_create, u))
		return;
	a.cpus = f[1].value[0] ? f[1].value : NULL;
	a.memory = f[2].value[0] ? f[2].value : NULL;
	a.disk = f[3].value[0] ? f[3].value : NULL;
	a.kernel = f[4].value[0] ? f[4].value : NULL;
	a.cmdline = f[5].value[0] ? f[5].value : NULL;
	if (vm_create(&u->paths, f[0].value, &a, &err) < 0) {
		show_message("Not created", err.msg);
		return;
	}
	ui_message(u, "created VM '%s'", f[0].value);
	ui_reload(u);
	for (size_t i = 0; i < u->cat.n; i++)
		if (strcmp(u->cat.v[i].name, f[0].value) == 0)
			u->sel = i;
}

static void ui_delete(struct ui *u)
{
	const char *name;
	struct tv_err err;
	char q[160];

	if (u->sel >= u->cat.n)
		return;
	name = u->cat.v[u->sel].name;
	int n = u->cat.v[u->sel].ok ? vmdisk_snapshot_count(&u->cat.v[u->sel].def) : -1;
	if (n >= 0)
		snprintf(q, sizeof(q), "Delete VM '%s' with its disks and %d snapshot%s?", name, n,
			 n == 1 ? "" : "s");
	else
		snprintf(q, sizeof(q), "Delete VM '%s' with its disks and snapshots?", name);
	if (!ask_confirm(q))
		return;
	if (vm_delete(&u->paths, name, &err) < 0)
		show_message("Not deleted", err.msg);
	else
		ui_message(u, "deleted VM '%s'", name);
	ui_reload(u);
}

static void con_output(void *ctx, const char *bytes, size_t len)
{
	struct console_view *v = ctx;
	struct tv_err err;

	if (v->client && !v->ended)
		client_input(v->client, bytes, len, &err);
}

static void con_console(void *ctx, const uint8_t *bytes, size_t len)
{
	vtpane_feed(((struct console_view *)ctx)->pane, (const char *)bytes, len);
}

static void con_event(void *ctx, uint8_t event, const char *text)
{
	struct console_view *v = ctx;

	if (event == PROTO_EV_EXITED) {
		v->ended = true;
		snprintf(v->reason, sizeof(v->reason), "VM ended: %.400s", text);
	}
}

static const struct client_handlers con_handlers = {con_console, con_event};

static void con_close(struct ui *u)
{
	if (u->con == NULL)
		return;
	if (u->con->client)
		client_close(u->con->client);
	vtpane_free(u->con->pane);
	free(u->con);
	u->con = NULL;
	curs_set(0);
	ui_reload(u);
}

/* Attaches the console view to VM name; the VM's screen is replayed first. */
static int con_open(struct ui *u, const char *name, struct tv_err *err)
{
	struct console_view *v = xcalloc(1, sizeof(*v));
	int rows = LINES - 1, cols = COLS;

	snprintf(v->name, sizeof(v->name), "%s", name);
	v->pane = vtpane_new(rows, cols, 5000, con_output, v);
	v->client = client_connect(&u->paths, name, err);
	if (v->client == NULL)
		goto fail;
	client_set_handlers(v->client, &con_handlers, v);
	if (client_attach(v->client, false, PROTO_CONSOLE_PRIMARY, (uint16_t)rows, (uint16_t)cols, err) < 0)
		goto fail;
	u->con = v;
	return 0;
fail:
	if (v->client)
		client_close(v->client);
	vtpane_free(v->pane);
	free(v);
	return -1;
}

static const char *selected_name(struct ui *u)
{
	if (u->sel >= u->cat.n)
		return NULL;
	return u->cat.v[u->sel].name;
}

static bool selected_live(struct ui *u)
{
	return u->sel < u->cat.n &&
	       (u->status[u->sel].state == VM_RUNNING || u->status[u->sel].state == VM_PAUSED);
}

static int ui_start_selected(struct ui *u)
{
	const char *name = selected_name(u);
	struct tv_err err;
	pid_t pid;

	if (name == NULL)
		return -1;
	if (!u->cat.v[u->sel].ok) {
		ui_message(u, "%s", u->cat.v[u->sel].error);
		return -1;
	}
	if (selected_live(u))
		return 0;
	ui_message(u, "starting %s...", name);
	ui_draw(u);
	if (vmm_start_name(&u->paths, name, &pid, &err) < 0) {
		show_message("Not started", err.msg);
		u->message[0] = '\0';
		return -1;
	}
	ui_message(u, "started %s (pid %ld)", name, (long)pid);
	vm_status_probe(&u->paths, name, &u->status[u->sel]);
	return 0;
}

static void ui_console(struct ui *u)
{
	struct tv_err err;

	if (selected_name(u) == NULL)
		return;
	if (!selected_live(u) && ui_start_selected(u) < 0)
		return;
	if (con_open(u, selected_name(u), &err) < 0)
		ui_message(u, "%s", err.msg);
}

/* A key that sends one verb to the selected VM. */
static void ui_verb(struct ui *u, uint16_t type, const void *payload, size_t len,
		    const char *done)
{
	const char *name = selected_name(u);
	struct tv_err err;

	if (name == NULL)
		return;
	if (!selected_live(u)) {
		ui_message(u, "%s is not running", name);
		return;
	}
	if (client_verb(&u->paths, name, type, payload, len, &err) < 0)
		ui_message(u, "%s: %s", name, err.msg);
	else
		ui_message(u, "%s: %s", name, done);
	vm_status_probe(&u->paths, name, &u->status[u->sel]);
}

static void ui_help(void)
{
	show_message("Keys", "Up/Down, j/k   select a VM\n"
			     "Enter, c       console (starts the VM if needed)\n"
			     "s              start in the background\n"
			     "S              stop: ACPI power button, forced off after 30 s\n"
			     "F              force off now (asks first)\n"
			     "p              pause / resume\n"
			     "n              new VM\n"
			     "d              delete the selected VM (asks first)\n"
			     "r              reload the definitions\n"
			     "q              quit (running VMs keep running)\n"
			     "\n"
			     "In a console: the escape key (Ctrl-] unless termvisor.conf says\n"
			     "otherwise) returns to the list; Shift-PgUp/PgDn scroll back.");
}

static void ui_key(struct ui *u, int ch)
{
	u->message[0] = '\0';
	switch (ch) {
	case 'q':
		u->quit = true;
		break;
	case KEY_UP:
	case 'k':
		if (u->sel > 0)
			u->sel--;
		break;
	case KEY_DOWN:
	case 'j':
		if (u->sel + 1 < u->cat.n)
			u->sel++;
		break;
	case KEY_HOME:
		u->sel = 0;
		break;
	case KEY_END:
		u->sel = u->cat.n ? u->cat.n - 1 : 0;
		break;
	case '\r':
	case '\n':
	case KEY_ENTER:
	case 'c':
		ui_console(u);
		break;
	case 's':
		ui_start_selected(u);
		break;
	case 'S':
		ui_verb(u, PROTO_STOP, (const uint8_t[4]){0}, 4, "power button pressed");
		break;
	case 'F':
		if (selected_live(u) && ask_confirm("Force the VM off now, like pulling the plug?"))
			ui_verb(u, PROTO_FORCE_OFF, NULL, 0, "forced off");
		break;
	case 'p':
		if (u->sel < u->cat.n && u->status[u->sel].state == VM_PAUSED)
			ui_verb(u, PROTO_RESUME, NULL, 0, "resumed");
		else
			ui_verb(u, PROTO_PAUSE, NULL, 0, "paused");
		break;
	case 'n':
		ui_create(u);
		break;
	case 'd':
		ui_delete(u);
		break;
	case 'r':
		ui_reload(u);
		break;
	case '?':
	case KEY_F(1):
		ui_help();
		break;
	default:
		break;
	}
}

static void con_draw(struct ui *u)
{
	struct console_view *v = u->con;
	WINDOW *w = stdscr;

	attron(A_REVERSE);
	mvhline(0, 0, ' ', COLS);
	if (v->ended)
		mvprintw(0, 1, "%s  %s  (press the escape key to return)", v->name, v->reason);
	else if (vtpane_scroll_offset(v->pane) > 0)
		mvprintw(0, 1, "%s  [scrolled back %d lines]  Shift-PgDn to go back", v->name,
			 vtpane_scroll_offset(v->pane));
	else
		mvprintw(0, 1, "%s  console  ^%c back to the list  Shift-PgUp scroll back", v->name,
			 u->settings.console_escape + '@');
	attroff(A_REVERSE);
	WINDOW *sub = derwin(w, LINES - 1, COLS, 1, 0);
	vtpane_draw(v->pane, sub);
	int cy, cx;
	getyx(sub, cy, cx);
	delwin(sub);
	move(cy + 1, cx);
	refresh();
}

static void con_key(struct ui *u, wint_t ch, bool is_key)
{
	struct console_view *v = u->con;

	if (!is_key && ch == u->settings.console_escape) {
		con_close(u);
		return;
	}
	if (is_key && ch == KEY_SPREVIOUS) {
		vtpane_scroll(v->pane, (LINES - 1) / 2);
		return;
	}
	if (is_key && ch == KEY_SNEXT) {
		vtpane_scroll(v->pane, -((LINES - 1) / 2));
		return;
	}
	if (is_key && ch == KEY_RESIZE) {
		struct tv_err err;
		vtpane_resize(v->pane, LINES - 1, COLS);
		if (!v->ended)
			client_winsize(v->client, (uint16_t)(LINES - 1), (uint16_t)COLS, &err);
		return;
	}
	if (v->ended)
		return;
	vtpane_scroll_reset(v->pane);
	vtpane_key(v->pane, (unsigned)ch, is_key);
}

static void con_pump(struct ui *u)
{
	struct tv_err err;

	if (client_pump(u->con->client, &err) < 0 && !u->con->ended) {
		u->con->ended = true;
		snprintf(u->con->reason, sizeof(u->con->reason), "%s", err.msg);
	}
}

static void ui_colors(void)
{
	if (!has_colors())
		return;
	start_color();
	use_default_colors();
	init_pair(1, COLOR_GREEN, -1);
	init_pair(2, COLOR_YELLOW, -1);
	init_pair(3, COLOR_RED, -1);
}

/* First run: with no VM defined at all, make the demo VM so there is something
 * to start right away. */
static void ui_first_run(struct ui *u)
{
	struct vm_create_args a = {.template = "demo"};
	struct tv_err err;
	char *kernel;

	if (u->cat.n > 0)
		return;
	kernel = datadir_find("demo/demo.elf");
	if (kernel == NULL)
		return;
	free(kernel);
	if (vm_create(&u->paths, "demo", &a, &err) < 0) {
		ui_message(u, "could not create the demo VM: %s", err.msg);
		return;
	}
	ui_reload(u);
	u->sel = 0;
	ui_console(u); /* boot it and show it straight away */
	ui_message(u, "Welcome: the demo VM was made and started for you; Enter opens its console");
}

int ui_main(void)
{
	struct ui u;
	struct tv_err err;

	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "termvisor: the interface needs a terminal; "
				"'termvisor help' lists the commands\n");
		return 2;
	}
	memset(&u, 0, sizeof(u));
	if (paths_init(&u.paths, &err) < 0) {
		fprintf(stderr, "termvisor: %s\n", err.msg);
		return 1;
	}
	settings_defaults(&u.settings);
	if (settings_load(&u.paths, &u.settings, &err) < 0) {
		fprintf(stderr, "termvisor: %s\n", err.msg);
		return 1;
	}
	ui_reload(&u);
	initscr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	ui_colors();
	nodelay(stdscr, TRUE);
	ui_first_run(&u);
	while (!u.quit) {
		struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = -1}};
		wint_t ch;
		int kind;

		if (u.con)
			con_draw(&u);
		else
			ui_draw(&u);
		if (u.con && !u.con->ended)
			fds[1] = (struct pollfd){.fd = client_fd(u.con->client), .events = POLLIN};
		if (poll(fds, 2, REFRESH_MS) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			con_pump(&u);
		while ((kind = get_wch(&ch)) != ERR) {
			if (u.con)
				con_key(&u, ch, kind == KEY_CODE_YES);
			else if (kind == KEY_CODE_YES && ch == KEY_RESIZE)
				continue;
			else
				ui_key(&u, (int)ch);
			if (u.quit)
				break;
		}
		if (u.con == NULL) /* states may have changed behind our back */
			for (size_t i = 0; i < u.cat.n; i++)
				if (u.cat.v[i].ok)
					vm_status_probe(&u.paths, u.cat.v[i].name, &u.status[i]);
	}
	if (u.con)
		con_close(&u);
	endwin();
	catalog_free(&u.cat);
	free(u.status);
	paths_free(&u.paths);
	return 0;
}
