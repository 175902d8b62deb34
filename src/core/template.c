#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/core/cfgfile.h"
#include "src/core/datadir.h"
#include "src/core/template.h"
#include "common/util.h"

static int conf_size(config_t *cfg, const char *key, uint64_t *out, const char *file,
		     struct tv_err *err)
{
	const char *s;

	if (config_lookup_string(cfg, key, &s) != CONFIG_TRUE)
		return 0;
	if (parse_size(s, out) < 0)
		return tv_errf(err, "%s: %s: expected a size like 512M or 2G, not \"%s\"", file, key,
			       s);
	return 0;
}

static char *conf_str(config_t *cfg, const char *key)
{
	const char *s;

	return config_lookup_string(cfg, key, &s) == CONFIG_TRUE ? xstrdup(s) : NULL;
}

static int load_dir(const char *dir, const char *name, struct template *t, struct tv_err *err)
{
	char *file = xasprintf("%s/template.conf", dir);
	config_t cfg;
	int cpus = 1, rc = -1;

	memset(t, 0, sizeof(*t));
	config_init(&cfg);
	if (cfgfile_read(&cfg, file, err) < 0)
		goto out;
	t->name = xstrdup(name);
	t->dir = xstrdup(dir);
	t->description = conf_str(&cfg, "description");
	t->kernel = conf_str(&cfg, "kernel");
	t->cmdline = conf_str(&cfg, "cmdline");
	t->builder = conf_str(&cfg, "builder");
	t->memory = 512ULL << 20;
	config_lookup_int(&cfg, "cpus", &cpus);
	if (cpus < 1 || cpus > 64) {
		tv_errf(err, "%s: cpus: expected 1 to 64", file);
		goto out;
	}
	t->cpus = (unsigned)cpus;
	if (conf_size(&cfg, "memory", &t->memory, file, err) < 0 ||
	    conf_size(&cfg, "disk", &t->disk_size, file, err) < 0)
		goto out;
	if (t->kernel == NULL && t->builder == NULL) {
		tv_errf(err, "%s: expected a kernel or a builder", file);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		template_free(t);
	config_destroy(&cfg);
	free(file);
	return rc;
}

/* Template directories, the user's own first. */
static char **template_dirs(const struct tv_paths *p)
{
	char **data = datadir_list();
	size_t n = 0;
	char **dirs;

	while (data[n])
		n++;
	dirs = xcalloc(n + 2, sizeof(char *));
	dirs[0] = xasprintf("%s/templates", p->data_dir);
	for (size_t i = 0; i < n; i++)
		dirs[i + 1] = xasprintf("%s/templates", data[i]);
	datadir_free(data);
	return dirs;
}

int template_load(const struct tv_paths *p, const char *name, struct template *t,
		  struct tv_err *err)
{
	char **dirs = template_dirs(p);
	int rc = 1;

	if (strchr(name, '/') || name[0] == '.' || name[0] == '\0') {
		datadir_free(dirs);
		return tv_errf(err, "template '%s': not a template name", name);
	}
	for (size_t i = 0; dirs[i] && rc == 1; i++) {
		char *dir = xasprintf("%s/%s", dirs[i], name);
		if (access(dir, F_OK) == 0)
			rc = load_dir(dir, name, t, err);
		free(dir);
	}
	datadir_free(dirs);
	if (rc == 1)
		return tv_errf(err, "no template named '%s'; 'termvisor templates' lists them", name);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct template *)a)->name, ((const struct template *)b)->name);
}

int template_list(const struct tv_paths *p, struct template **out, size_t *n,
		  struct tv_err *err)
{
	char **dirs = template_dirs(p);
	struct template *v = NULL;
	size_t count = 0;

	for (size_t i = 0; dirs[i]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			bool seen = false;
			if (de->d_name[0] == '.')
				continue;
			for (size_t j = 0; j < count; j++)
				seen |= strcmp(v[j].name, de->d_name) == 0;
			if (seen)
				continue;
			char *dir = xasprintf("%s/%s", dirs[i], de->d_name);
			struct template t;
			struct tv_err lerr;
			if (load_dir(dir, de->d_name, &t, &lerr) == 0) {
				v = xreallocarray(v, count + 1, sizeof(*v));
				v[count++] = t;
			}
			free(dir);
		}
		closedir(d);
	}
	datadir_free(dirs);
	if (count > 1)
		qsort(v, count, sizeof(*v), by_name);
	*out = v;
	*n = count;
	(void)err;
	return 0;
}

void template_free(struct template *t)
{
	free(t->name);
	free(t->dir);
	free(t->description);
	free(t->kernel);
	free(t->cmdline);
	free(t->builder);
	memset(t, 0, sizeof(*t));
}

void template_list_free(struct template *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		template_free(&v[i]);
	free(v);
}

/* While a builder runs it is a process group of its own, so that a signal
 * reaches all of it (debootstrap, sudo, dpkg in a chroot): it has the terminal
 * when termvisor had it (Ctrl-C goes to it, sudo may ask for a password), and
 * termvisor passes on the signals it gets itself. The builder cleans up after
 * itself and fails, and the VM is not made. One builder runs at a time in a
 * process, hence the one static. */
static volatile sig_atomic_t builder_pgrp, builder_signal;

static void builder_forward(int sig)
{
	builder_signal = sig;
	if (builder_pgrp > 0)
		kill(-builder_pgrp, sig);
}

static const int builder_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSIGS (sizeof(builder_sigs) / sizeof(builder_sigs[0]))

/* Gives the terminal's foreground to pgrp; a background caller is stopped
 * by SIGTTOU unless it ignores it meanwhile. */
static void tty_hand(int tty, pid_t pgrp)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;

	sigaction(SIGTTOU, &ign, &old);
	tcsetpgrp(tty, pgrp);
	sigaction(SIGTTOU, &old, NULL);
}

static void builder_exec(const struct template *t, const char *script, const char *vm_name,
			 const char *datadir, const char *cache_dir, const char *size,
			 const char *exe, int tty, const sigset_t *mask)
{
	setpgid(0, 0);
	if (tty >= 0) {
		tty_hand(tty, getpid());
		close(tty);
	}
	/* No job control inside: a stopped builder would hang create. */
	signal(SIGTSTP, SIG_IGN);
	for (size_t i = 0; i < NSIGS; i++)
		signal(builder_sigs[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (chdir(datadir) < 0)
		_exit(127);
	setenv("TV_NAME", vm_name, 1);
	setenv("TV_DATA_DIR", datadir, 1);
	setenv("TV_CACHE_DIR", cache_dir, 1);
	setenv("TV_TEMPLATE_DIR", t->dir, 1);
	setenv("TV_TERMVISOR", exe, 1);
	setenv("TV_DISK_SIZE", size, 1);
	dup2(2, 1); /* progress goes to the user's terminal, not into pipes */
	execl("/bin/sh", "sh", "-e", script, (char *)NULL);
	_exit(127);
}

int template_build(const struct template *t, const char *vm_name, const char *datadir,
		   const char *cache_dir, uint64_t disk_size, struct tv_err *err)
{
	char *script = xasprintf("%s/%s", t->dir, t->builder), *exe = self_exe();
	struct sigaction fwd = {.sa_handler = builder_forward}, old[NSIGS];
	sigset_t block, mask;
	char size[32] = "";
	int status = 0, tty, rc = 0;
	pid_t pid;

	if (disk_size)
		snprintf(size, sizeof(size), "%llu", (unsigned long long)disk_size);
	tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (tty >= 0 && tcgetpgrp(tty) != getpgrp()) {
		close(tty);
		tty = -1;
	}
	/* Signals wait until the builder's group is known. */
	sigemptyset(&block);
	for (size_t i = 0; i < NSIGS; i++)
		sigaddset(&block, builder_sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &mask);
	sigemptyset(&fwd.sa_mask);
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(builder_sigs[i], &fwd, &old[i]);
	builder_signal = 0;
	pid = fork();
	if (pid == 0)
		builder_exec(t, script, vm_name, datadir, cache_dir, size, exe, tty, &mask);
	if (pid > 0) {
		setpgid(pid, pid);
		if (tty >= 0)
			tty_hand(tty, pid);
		builder_pgrp = pid;
	}
	sigprocmask(SIG_SETMASK, &mask, NULL);
	if (pid < 0) {
		rc = tv_errno(err, "cannot run %s", script);
	} else {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	builder_pgrp = 0;
	if (tty >= 0) {
		tty_hand(tty, getpgrp());
		close(tty);
	}
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(builder_sigs[i], &old[i], NULL);
	free(exe);
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (builder_signal || code == 128 + SIGINT || code == 128 + SIGTERM ||
		    code == 128 + SIGHUP)
			rc = tv_errf(err, "template '%s': interrupted; nothing was kept", t->name);
		else
			rc = tv_errf(err, "template '%s': %s failed (exit %d); nothing was kept",
				     t->name, script, code);
	}
	free(script);
	return rc;
}
