/* A VM's details in the pane when it has no console open: its definition,
 * its state and why (a crash's last line, a broken definition's error). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/app-int.h"
#include "common/util.h"

static void line(WINDOW *w, int *y, const char *label, const char *text)
{
	int cols = getmaxx(w);

	if (*y >= getmaxy(w) || text == NULL)
		return;
	wattron(w, A_BOLD);
	mvwaddnstr(w, *y, 1, label, cols - 1);
	wattroff(w, A_BOLD);
	if (cols > 12)
		mvwaddnstr(w, *y, 11, text, cols - 12);
	(*y)++;
}

static void details_draw(struct view *v, WINDOW *w, bool focused)
{
	struct app *a = v->app;
	const char *name = app_selected(a);
	const struct model_vm *vm = name ? model_find(app_model(a), name) : NULL;
	const struct catalog_entry *e = name ? model_entry(app_model(a), name) : NULL;
	int y = 1, cols = getmaxx(w);
	char buf[600], mem[16], disk[16];

	wattron(w, A_REVERSE);
	mvwhline(w, 0, 0, ' ', cols);
	mvwaddnstr(w, 0, 1, vm ? vm->name : "no VM selected", cols - 1);
	wattroff(w, A_REVERSE);
	if (vm == NULL || e == NULL)
		return;
	snprintf(buf, sizeof(buf), "%s%s%s", app_state_name((int)vm->state),
		 vm->reason[0] ? ": " : "", vm->reason);
	wattron(w, app_state_attr(a, (int)vm->state));
	line(w, &y, "state", buf);
	wattroff(w, app_state_attr(a, (int)vm->state));
	if (vm->state == MODEL_BROKEN || vm->state == MODEL_CRASHED) {
		/* Errors are long: wrapped over the lines that are left. */
		const char *s = vm->error;
		int width = cols - 12 > 10 ? cols - 12 : cols - 1;
		while (*s && y < getmaxy(w)) {
			mvwaddnstr(w, y++, cols - width - 1, s, width);
			s += strnlen(s, (size_t)width);
		}
		if (vm->state == MODEL_BROKEN)
			return;
	}
	line(w, &y, "about", e->def.description);
	format_size(vm->memory, mem, sizeof(mem));
	format_size(vm->disk_bytes, disk, sizeof(disk));
	snprintf(buf, sizeof(buf), "%u vCPU%s, %s of memory, disks take %s", vm->cpus,
		 vm->cpus == 1 ? "" : "s", mem, disk);
	line(w, &y, "size", buf);
	line(w, &y, "kernel", e->def.kernel ? e->def.kernel : "(none)");
	line(w, &y, "cmdline", e->def.cmdline);
	for (size_t i = 0; i < e->def.ndisks; i++) {
		snprintf(buf, sizeof(buf), "%s (%s%s)", e->def.disks[i].file,
			 disk_format_name(e->def.disks[i].format),
			 e->def.disks[i].readonly ? ", read-only" : "");
		line(w, &y, i ? "" : "disks", buf);
	}
	snprintf(buf, sizeof(buf), "%u%s%s", vm->snapshots, vm->here[0] ? ", here: " : "",
		 vm->here);
	line(w, &y, "snapshots", buf);
	y++;
	if (vm->state == MODEL_STOPPED || vm->state == MODEL_CRASHED)
		line(w, &y, "", "s starts it in the background; Enter starts it and shows its console");
}

static bool details_dirty(struct view *v)
{
	return false; /* redrawn when the model or the selection changes */
}

static void details_free(struct view *v)
{
	free(v);
}

static const struct view_ops details_ops = {
	.name = "details",
	.draw = details_draw,
	.dirty = details_dirty,
	.free = details_free,
};

struct view *view_details_new(struct app *app)
{
	struct view *v = xcalloc(1, sizeof(*v));

	v->ops = &details_ops;
	v->app = app;
	v->priv = v;
	snprintf(v->title, sizeof(v->title), "details");
	return v;
}
