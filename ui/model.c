/* The model (ui/model.h): definitions reloaded on inotify events of the
 * definitions directory, each live VM's state from one subscribed control
 * connection, runtime files (a VM started or paused from another terminal)
 * and snapshot indexes watched with inotify too. Nothing is probed on a
 * timer: a VM whose connection cannot be made yet is retried once a second
 * until it can. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/core/client.h"
#include "src/core/runtime.h"
#include "ui/model.h"
#include "common/util.h"

#define MODEL_RETRY_MS 1000

struct mvm {
	struct model_vm pub;
	struct tv_client *c; /* subscribed, while the VM is live */
	bool starting;
	uint64_t retry_at_ns; /* live but not connected: try again then */
	int wd;               /* its snapshots directory, or its data directory until
			       * that has one; -1 */
	bool wd_is_snapdir;
	struct snapstore st;
	bool st_open;
	struct model *m;
};

struct model {
	const struct tv_paths *p;
	struct catalog cat;
	struct mvm **v; /* parallel to cat.v */
	size_t n;
	int ino, wd_vms, wd_run;
	bool reload_defs;
	uint64_t gen;
};

static void bump(struct mvm *v)
{
	v->pub.generation++;
	v->m->gen++;
}

size_t model_count(const struct model *m)
{
	return m->n;
}

const struct model_vm *model_vm(const struct model *m, size_t i)
{
	return i < m->n ? &m->v[i]->pub : NULL;
}

static struct mvm *find(const struct model *m, const char *name)
{
	for (size_t i = 0; name && i < m->n; i++)
		if (m->v[i] && strcmp(m->v[i]->pub.name, name) == 0)
			return m->v[i];
	return NULL;
}

const struct model_vm *model_find(const struct model *m, const char *name)
{
	struct mvm *v = find(m, name);

	return v ? &v->pub : NULL;
}

const struct catalog_entry *model_entry(const struct model *m, const char *name)
{
	for (size_t i = 0; name && i < m->n; i++)
		if (strcmp(m->cat.v[i].name, name) == 0)
			return &m->cat.v[i];
	return NULL;
}

uint64_t model_generation(const struct model *m)
{
	return m->gen;
}

static void disconnect(struct mvm *v)
{
	if (v->c)
		client_close(v->c);
	v->c = NULL;
}

/* The snapshot index: count and "you are here". */
static void load_snapshots(struct mvm *v)
{
	char *dir = paths_vm_data(v->m->p, v->pub.name);
	struct tv_err err;

	if (v->st_open)
		snapstore_close(&v->st);
	v->st_open = snapstore_open(&v->st, dir, 0, NULL, &err) == 0;
	v->pub.snapshots = v->st_open ? (unsigned)v->st.nrecs : 0;
	v->pub.here[0] = '\0';
	if (v->st_open && v->st.here) {
		const struct snap_record *r = snapstore_get(&v->st, v->st.here);
		if (r)
			snprintf(v->pub.here, sizeof(v->pub.here), "%.*s", (int)sizeof(v->pub.here) - 1, r->tag);
	}
	free(dir);
}

/* Watches the VM's snapshots directory, or its data directory until the first
 * snapshot makes one. */
static void watch_snapshots(struct mvm *v)
{
	char *data = paths_vm_data(v->m->p, v->pub.name);
	char *snaps = xasprintf("%s/snapshots", data);
	int wd;

	wd = inotify_add_watch(v->m->ino, snaps, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE);
	v->wd_is_snapdir = wd >= 0;
	if (wd < 0)
		wd = inotify_add_watch(v->m->ino, data, IN_CREATE | IN_MOVED_TO);
	if (v->wd >= 0 && v->wd != wd)
		inotify_rm_watch(v->m->ino, v->wd);
	v->wd = wd;
	free(snaps);
	free(data);
}

static void on_event(void *ctx, uint8_t event, const char *text)
{
	struct mvm *v = ctx;

	switch (event) {
	case PROTO_EV_PAUSED:
		v->pub.state = MODEL_PAUSED;
		snprintf(v->pub.reason, sizeof(v->pub.reason), "%s", text);
		break;
	case PROTO_EV_RESUMED:
		v->pub.state = MODEL_RUNNING;
		v->pub.reason[0] = '\0';
		break;
	case PROTO_EV_STOPPING:
		v->pub.state = MODEL_STOPPING;
		break;
	case PROTO_EV_EXITED:
		snprintf(v->pub.reason, sizeof(v->pub.reason), "%s", text);
		break;
	case PROTO_EV_SNAPSHOT:
		load_snapshots(v);
		break;
	default:
		return;
	}
	bump(v);
}

static const struct client_handlers handlers = {.event = on_event};

/* One connection per live VM: subscribed to its events. A VM process that
 * does not know SUBSCRIBE answers PROTO_E_UNKNOWN, which is dropped; its
 * state then comes from STATUS here and from its runtime files. */
static void connect_vm(struct mvm *v)
{
	struct proto_status st;
	struct tv_err err;

	v->c = client_connect(v->m->p, v->pub.name, &err);
	if (v->c == NULL) {
		v->retry_at_ns = monotonic_ns() + MODEL_RETRY_MS * 1000000ull;
		return;
	}
	client_set_handlers(v->c, &handlers, v);
	if (client_send_frame(v->c, PROTO_SUBSCRIBE, NULL, 0, &err) < 0 ||
	    client_status(v->c, &st, &err) < 0) {
		disconnect(v);
		v->retry_at_ns = monotonic_ns() + MODEL_RETRY_MS * 1000000ull;
		return;
	}
	v->retry_at_ns = 0;
	v->pub.pid = st.pid;
	v->pub.uptime_ms = st.uptime_ms;
	v->pub.state = st.state == PROTO_STATE_PAUSED     ? MODEL_PAUSED
		       : st.state == PROTO_STATE_STOPPING ? MODEL_STOPPING
							  : MODEL_RUNNING;
	v->starting = false;
	bump(v); /* the VM's socket answers: consoles can attach */
}

/* The runtime files say what the VM does; a live one gets its connection. */
static void probe(struct mvm *v, const struct catalog_entry *e)
{
	struct vm_status st;
	enum model_state was = v->pub.state;

	if (!e->ok) {
		disconnect(v);
		v->pub.state = MODEL_BROKEN;
		snprintf(v->pub.error, sizeof(v->pub.error), "%s", e->error);
		return;
	}
	vm_status_probe(v->m->p, v->pub.name, &st);
	switch (st.state) {
	case VM_RUNNING:
	case VM_PAUSED:
		v->pub.state = st.state == VM_PAUSED ? MODEL_PAUSED : MODEL_RUNNING;
		if (st.pid) /* none in the pid file yet: STATUS says */
			v->pub.pid = (uint32_t)st.pid;
		v->starting = false;
		if (v->c == NULL)
			connect_vm(v);
		break;
	case VM_CRASHED:
	case VM_STOPPED:
		disconnect(v);
		v->pub.pid = 0;
		v->retry_at_ns = 0;
		if (st.state == VM_CRASHED) {
			char *tail = vm_log_tail(v->m->p, v->pub.name, 1);
			v->pub.state = MODEL_CRASHED;
			snprintf(v->pub.error, sizeof(v->pub.error), "%s", tail ? tail : "");
			free(tail);
		} else {
			v->pub.state = v->starting ? MODEL_STARTING : MODEL_STOPPED;
		}
		break;
	}
	if (v->pub.state != was)
		bump(v);
}

/* Bytes the VM's disks take on disk. */
static uint64_t disk_usage(const struct catalog_entry *e)
{
	uint64_t sum = 0;

	for (size_t i = 0; e->ok && i < e->def.ndisks; i++) {
		char *path = vmdef_path(&e->def, e->def.disks[i].file);
		struct stat sb;
		if (path && stat(path, &sb) == 0)
			sum += (uint64_t)sb.st_blocks * 512;
		free(path);
	}
	return sum;
}

static struct mvm *mvm_new(struct model *m, const char *name)
{
	struct mvm *v = xcalloc(1, sizeof(*v));

	v->m = m;
	v->wd = -1;
	snprintf(v->pub.name, sizeof(v->pub.name), "%s", name);
	return v;
}

static void mvm_free(struct mvm *v)
{
	disconnect(v);
	if (v->wd >= 0)
		inotify_rm_watch(v->m->ino, v->wd);
	if (v->st_open)
		snapstore_close(&v->st);
	free(v);
}

/* Reads every definition again; VMs that stay keep their connection. */
static void reload(struct model *m)
{
	struct catalog cat = {0};
	struct mvm **nv;
	struct tv_err err;

	if (catalog_load(m->p, &cat, &err) < 0)
		return;
	nv = xcalloc(cat.n ? cat.n : 1, sizeof(*nv));
	for (size_t i = 0; i < cat.n; i++) {
		const struct catalog_entry *e = &cat.v[i];
		struct mvm *v = find(m, e->name);
		if (v) { /* taken over */
			for (size_t j = 0; j < m->n; j++)
				if (m->v[j] == v)
					m->v[j] = NULL;
		} else {
			v = mvm_new(m, e->name);
		}
		nv[i] = v;
		v->pub.cpus = e->ok ? e->def.cpus : 0;
		v->pub.memory = e->ok ? e->def.memory : 0;
		v->pub.disk_bytes = disk_usage(e);
		v->pub.error[0] = '\0';
		load_snapshots(v);
		watch_snapshots(v);
		probe(v, e);
		bump(v);
	}
	for (size_t j = 0; j < m->n; j++)
		if (m->v[j])
			mvm_free(m->v[j]);
	free(m->v);
	catalog_free(&m->cat);
	m->cat = cat;
	m->v = nv;
	m->n = cat.n;
	m->gen++;
}

int model_open(struct model **mp, const struct tv_paths *p, struct tv_err *err)
{
	struct model *m = xcalloc(1, sizeof(*m));

	m->p = p;
	m->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->ino < 0) {
		free(m);
		return tv_errno(err, "inotify");
	}
	if (paths_mkdir(p->vms_dir, 0755, err) < 0 || paths_runtime_ensure(p, err) < 0) {
		close(m->ino);
		free(m);
		return -1;
	}
	m->wd_vms = inotify_add_watch(m->ino, p->vms_dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
					      IN_CREATE);
	m->wd_run = inotify_add_watch(m->ino, p->runtime_dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_CREATE);
	reload(m);
	*mp = m;
	return 0;
}

void model_free(struct model *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		mvm_free(m->v[i]);
	free(m->v);
	catalog_free(&m->cat);
	close(m->ino);
	free(m);
}

const struct snapstore *model_snapshots(struct model *m, const char *name, struct tv_err *err)
{
	struct mvm *v = find(m, name);

	if (v == NULL) {
		tv_errf(err, "no VM named %s", name);
		return NULL;
	}
	if (!v->st_open)
		tv_errf(err, "VM %s: its snapshots cannot be read", name);
	return v->st_open ? &v->st : NULL;
}

void model_refresh(struct model *m, const char *name)
{
	struct mvm *v = find(m, name);

	if (v == NULL) {
		reload(m);
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i] == v) {
			v->pub.disk_bytes = disk_usage(&m->cat.v[i]);
			load_snapshots(v);
			probe(v, &m->cat.v[i]);
		}
	bump(v);
}

void model_set_starting(struct model *m, const char *name, bool starting)
{
	struct mvm *v = find(m, name);

	if (v == NULL)
		return;
	v->starting = starting;
	model_refresh(m, name);
}

int model_pollfds(struct model *m, struct pollfd *pfd, int max)
{
	int n = 0;

	if (n < max)
		pfd[n++] = (struct pollfd){.fd = m->ino, .events = POLLIN};
	for (size_t i = 0; i < m->n && n < max; i++)
		if (m->v[i]->c)
			pfd[n++] = (struct pollfd){.fd = client_fd(m->v[i]->c), .events = POLLIN};
	return n;
}

/* A runtime file NAME.suffix changed: that VM is probed again. */
static void runtime_changed(struct model *m, const char *file)
{
	const char *dot = strrchr(file, '.');

	for (size_t i = 0; dot && i < m->n; i++) {
		size_t len = strlen(m->v[i]->pub.name);
		if ((size_t)(dot - file) == len && strncmp(file, m->v[i]->pub.name, len) == 0)
			probe(m->v[i], &m->cat.v[i]);
	}
}

static void snapshots_changed(struct model *m, int wd, const char *file)
{
	for (size_t i = 0; i < m->n; i++) {
		struct mvm *v = m->v[i];
		if (v->wd != wd)
			continue;
		if (!v->wd_is_snapdir && strcmp(file, "snapshots") == 0)
			watch_snapshots(v);
		if (!v->wd_is_snapdir || strcmp(file, "index") == 0) {
			load_snapshots(v);
			bump(v);
		}
	}
}

static void read_inotify(struct model *m)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(m->ino, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			const char *file = ev->len ? ev->name : "";
			if (ev->wd == m->wd_vms)
				m->reload_defs = true;
			else if (ev->wd == m->wd_run)
				runtime_changed(m, file);
			else
				snapshots_changed(m, ev->wd, file);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (m->reload_defs) {
		m->reload_defs = false;
		reload(m);
	}
}

void model_ready(struct model *m, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		if (pfd[i].fd == m->ino) {
			read_inotify(m);
			continue;
		}
		for (size_t j = 0; j < m->n; j++) {
			struct mvm *v = m->v[j];
			struct tv_err err;
			if (v->c == NULL || client_fd(v->c) != pfd[i].fd)
				continue;
			if (client_pump(v->c, &err) < 0) {
				/* The VM process ended: its runtime files say how. */
				disconnect(v);
				probe(v, &m->cat.v[j]);
				bump(v);
			}
			break;
		}
	}
}

int model_timeout(const struct model *m)
{
	uint64_t now, next = 0;

	for (size_t i = 0; i < m->n; i++) {
		uint64_t at = m->v[i]->retry_at_ns;
		if (at && (next == 0 || at < next))
			next = at;
	}
	if (next == 0)
		return -1; /* the clock unread: the loop asks at every round */
	now = monotonic_ns();
	return next <= now ? 0 : (int)((next - now) / 1000000) + 1;
}

void model_tick(struct model *m)
{
	uint64_t now = monotonic_ns();

	for (size_t i = 0; i < m->n; i++) {
		struct mvm *v = m->v[i];
		if (v->retry_at_ns && v->retry_at_ns <= now) {
			v->retry_at_ns = 0;
			probe(v, &m->cat.v[i]);
		}
	}
}
