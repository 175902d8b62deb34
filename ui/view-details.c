/* A VM's details in the pane when it has no console open: its definition,
 * its state and why (a crash's last line, a broken definition's error), and
 * its network cards: from the definition, or, while it runs, from the VM
 * (net-info), with the address its guest leased. The VM is asked again when
 * it changed, and every few seconds while a card on the user network has no
 * lease yet (a timerfd, only then: no timer otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ui/app-int.h"
#include "src/core/protocol.h"
#include "common/util.h"

#define NET_RETRY_S 3

struct details {
	struct view v;
	char vm[80];         /* whose net-info kv holds */
	uint64_t generation; /* of that VM when it was asked */
	char *kv;            /* its last net-info reply, or NULL */
	bool pending;        /* a request is out */
	bool dirty;          /* a reply came */
	bool waiting_lease;  /* a user card without an address: ask again */
	int timer;           /* timerfd, armed while waiting_lease */
};

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

static void net_reply(void *ctx, int status, const uint8_t *payload, size_t len, const char *error)
{
	struct details *d = ctx;

	(void)error;
	d->pending = false;
	d->dirty = true;
	free(d->kv);
	d->kv = status == 0 ? xstrndup_len((const char *)payload, len) : NULL;
}

/* Asks a live VM for its cards when it changed since the last answer. */
static void net_ask(struct details *d, const struct model_vm *vm, bool again)
{
	bool live = vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED;

	if (strcmp(d->vm, vm->name) != 0) {
		snprintf(d->vm, sizeof(d->vm), "%s", vm->name);
		free(d->kv);
		d->kv = NULL;
		d->generation = 0;
	}
	if (!live || d->pending || (!again && d->kv != NULL && d->generation == vm->generation))
		return;
	d->generation = vm->generation;
	if (app_verb(d->v.app, vm->name, PROTO_NET_INFO, NULL, 0, net_reply, d) == 0)
		d->pending = true;
}

/* One line per card: "user 52:54:00:12:34:56 10.0.2.15, tcp:127.0.0.1:2222:22". */
static void draw_nets(struct details *d, WINDOW *w, int *y, const struct vmdef *def, bool live)
{
	struct vm_nic nics[NET_NICS_MAX];
	struct proto_buf b = {0};
	const char *kv = live && d->kv != NULL ? d->kv : NULL;
	char mode[8], mac[18], addr[64], fwds[NET_FORWARDS_MAX * 40];
	char buf[sizeof(fwds) + 256];
	unsigned count;
	size_t nn = 0;

	if (kv == NULL) {
		for (size_t i = 0; i < def->nnets && nn < NET_NICS_MAX; i++)
			if (vmdef_nic(def, i, &nics[nn], NULL) == 0)
				nn++;
		proto_kv_put_nics(&b, nics, nn, NULL);
		proto_buf_append(&b, "", 1);
		kv = (const char *)b.data;
	}
	count = proto_kv_nic_count(kv);
	d->waiting_lease = false;
	for (unsigned i = 0; i < count; i++) {
		proto_kv_nic_field(kv, i, "mode", mode, sizeof(mode));
		proto_kv_nic_field(kv, i, "mac", mac, sizeof(mac));
		proto_kv_nic_field(kv, i, "address", addr, sizeof(addr));
		proto_kv_nic_field(kv, i, "forwards", fwds, sizeof(fwds));
		if (live && strcmp(mode, "user") == 0 && addr[0] == '\0')
			d->waiting_lease = true;
		snprintf(buf, sizeof(buf), "%s%s%s %s%s%s%s%s", mode,
			 i < def->nnets && def->nets[i].name ? " " : "",
			 i < def->nnets && def->nets[i].name ? def->nets[i].name : "", mac,
			 addr[0] ? " " : live && strcmp(mode, "user") == 0 ? " (no lease yet)" : "",
			 addr, fwds[0] ? ", forwards " : "", fwds);
		line(w, y, i ? "" : "network", buf);
	}
	if (count == 0)
		line(w, y, "network", "none");
	proto_buf_free(&b);
}

static void details_draw(struct view *v, WINDOW *w, bool focused)
{
	struct details *d = v->priv;
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
	net_ask(d, vm, false);
	draw_nets(d, w, &y, &e->def, vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED);
	snprintf(buf, sizeof(buf), "%u%s%s", vm->snapshots, vm->here[0] ? ", here: " : "",
		 vm->here);
	line(w, &y, "snapshots", buf);
	y++;
	if (vm->state == MODEL_STOPPED || vm->state == MODEL_CRASHED)
		line(w, &y, "", "s starts it in the background; Enter starts it and shows its console");
}

/* Otherwise redrawn when the model or the selection changes. */
static bool details_dirty(struct view *v)
{
	struct details *d = v->priv;
	bool dirty = d->dirty;

	d->dirty = false;
	return dirty;
}

static int details_pollfds(struct view *v, struct pollfd *pfd, int max)
{
	struct details *d = v->priv;
	struct itimerspec its = {.it_value.tv_sec = d->waiting_lease ? NET_RETRY_S : 0};
	struct itimerspec cur;

	if (d->timer < 0 || max < 1)
		return 0;
	/* Armed while a lease is awaited (and not re-armed while it runs). */
	if (timerfd_gettime(d->timer, &cur) == 0 &&
	    (cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0) != (its.it_value.tv_sec == 0))
		timerfd_settime(d->timer, 0, &its, NULL);
	pfd[0] = (struct pollfd){.fd = d->timer, .events = POLLIN};
	return 1;
}

static void details_ready(struct view *v, const struct pollfd *pfd, int n)
{
	struct details *d = v->priv;
	uint64_t ticks;
	const struct model_vm *vm;

	if (n < 1 || !(pfd[0].revents & POLLIN) || read(d->timer, &ticks, sizeof(ticks)) < 0)
		return;
	vm = d->vm[0] ? model_find(app_model(v->app), d->vm) : NULL;
	if (vm != NULL && d->waiting_lease)
		net_ask(d, vm, true);
}

static void details_free(struct view *v)
{
	struct details *d = v->priv;

	if (d->timer >= 0)
		close(d->timer);
	free(d->kv);
	free(d);
}

static const struct view_ops details_ops = {
	.name = "details",
	.draw = details_draw,
	.dirty = details_dirty,
	.pollfds = details_pollfds,
	.ready = details_ready,
	.free = details_free,
};

struct view *view_details_new(struct app *app)
{
	struct details *d = xcalloc(1, sizeof(*d));
	struct view *v = &d->v;

	v->ops = &details_ops;
	v->app = app;
	v->priv = d;
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	snprintf(v->title, sizeof(v->title), "details");
	return v;
}
