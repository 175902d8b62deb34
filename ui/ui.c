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

#include "src/catalog.h"
#include "src/datadir.h"
#include "src/paths.h"
#include "src/vmdisk.h"
#include "src/vmops.h"
#include "src/vmstate.h"
#include "ui/ui.h"
#include "ui/widgets.h"
#include "vm/util.h"

#define REFRESH_MS 1000

struct ui {
	struct tv_paths paths;
	struct catalog cat;
	struct vm_status *status; /* one per catalog entry */
	size_t sel;
	char message[256];
	bool quit;
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
	mvprintw(LINES - 1, 1, "n new  d delete  r refresh  ? help  q quit");
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
	snprintf(q, sizeof(q), "Delete VM '%s' with its disks and snapshots?", name);
	if (!ask_confirm(q))
		return;
	if (vm_delete(&u->paths, name, &err) < 0)
		show_message("Not deleted", err.msg);
	else
		ui_message(u, "deleted VM '%s'", name);
	ui_reload(u);
}

static void ui_help(void)
{
	show_message("Keys", "Up/Down, j/k   select a VM\n"
			     "n              new VM\n"
			     "d              delete the selected VM (asks first)\n"
			     "r              reload the definitions\n"
			     "q              quit (running VMs keep running)");
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
	ui_message(u, "Welcome: this is the demo VM, made for you; press Enter to start it");
	ui_reload(u);
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
	ui_reload(&u);
	ui_first_run(&u);
	initscr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	ui_colors();
	timeout(REFRESH_MS);
	while (!u.quit) {
		ui_draw(&u);
		int ch = getch();
		if (ch == ERR) { /* idle: states may have changed */
			for (size_t i = 0; i < u.cat.n; i++)
				if (u.cat.v[i].ok)
					vm_status_probe(&u.paths, u.cat.v[i].name, &u.status[i]);
			continue;
		}
		if (ch == KEY_RESIZE)
			continue;
		ui_key(&u, ch);
	}
	endwin();
	catalog_free(&u.cat);
	free(u.status);
	paths_free(&u.paths);
	return 0;
}
