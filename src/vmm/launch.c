/* Starting the VM process: in the foreground for `termvisor run`, in the
 * background for `start`, autostart and the interface (vmm.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/machine.h"
#include "src/core/runtime.h"
#include "src/core/settings.h"
#include "src/vmm/vmm.h"

/* Linked statically, this program maps no shared library: only the code the
 * VM runs becomes resident, as in termvisor-engine. */
static bool self_static(void)
{
	return getauxval(AT_BASE) == 0; /* no program interpreter */
}

/* Replaces this process with termvisor-engine running o; returns only when
 * that failed. */
static void exec_engine(const struct vmm_opts *o)
{
	char *path = vmm_engine_path();
	char **argv = vmm_argv(o, path);

	fflush(NULL);
	execv(path, argv);
	if (o->cfg.verbose || o->detach)
		fprintf(stderr, "termvisor: %s: %s; running the VM in this process\n", path,
			strerror(errno));
	vmm_argv_free(argv);
	free(path);
}

/* What the VM process needs of termvisor.conf (the engine does not read it):
 * how many automatic snapshots a named VM keeps. A settings file with errors
 * is the commands' to report; the VM keeps the default. */
static void settings_for_vm(struct vmm_opts *o)
{
	struct tv_settings s;
	struct tv_paths p;
	struct tv_err err;

	if (o->name == NULL || o->keep_automatic_set || paths_init(&p, &err) < 0)
		return;
	if (settings_load(&p, &s, &err) == 0) {
		o->keep_automatic = s.snapshot_keep_automatic;
		o->keep_automatic_set = true;
	}
	paths_free(&p);
}

int vmm_run(struct vmm_opts *o)
{
	const char *env = getenv("TERMVISOR_ENGINE");

	settings_for_vm(o);
	if ((env != NULL && *env != '\0') || !self_static())
		exec_engine(o);
	return vmm_main(o);
}

/* In the child that becomes the VM process. Never returns. */
static void __attribute__((noreturn)) become_vm(struct vmm_opts *o, int report_fd)
{
	/* Nothing of the starting program (the interface's sockets to other
	 * VMs, its terminal) stays open in the VM process. */
	if (report_fd > 3)
		close_range(3, (unsigned)report_fd - 1, 0);
	close_range((unsigned)report_fd + 1, ~0U, 0);
	/* The report pipe is the one descriptor the engine inherits. */
	fcntl(report_fd, F_SETFD, 0);
	o->detach = true;
	o->report_fd = report_fd;
	exec_engine(o);
	fcntl(report_fd, F_SETFD, FD_CLOEXEC);
	_exit(vmm_main(o));
}

int vmm_start(const struct tv_paths *p, const struct vmdef *def, pid_t *pid, struct tv_err *err)
{
	char *datadir = paths_vm_data(p, def->name);
	char buf[TV_ERR_MAX + 2];
	struct machine m;
	struct vmm_opts o;
	size_t len = 0;
	int fds[2], wst;
	pid_t child;

	if (paths_runtime_ensure(p, err) < 0 || paths_mkdir(datadir, 0755, err) < 0) {
		free(datadir);
		return -1;
	}
	free(datadir);
	if (machine_from_def(&m, p, def, err) < 0) {
		machine_free(&m);
		return -1;
	}
	if (m.cfg.kernel == NULL) {
		machine_free(&m);
		return tv_errf(err, "VM %s has no kernel; set kernel in %s", def->name,
			       def->file ? def->file : "its definition");
	}
	memset(&o, 0, sizeof(o));
	o.cfg = m.cfg;
	memcpy(o.disks, m.disks, sizeof(o.disks));
	o.cfg.disks = o.disks;
	memcpy(o.nics, m.nics, sizeof(o.nics));
	o.cfg.nics = o.nics;
	o.name = def->name;
	o.no_sandbox = m.no_sandbox;
	settings_for_vm(&o);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		machine_free(&m);
		return tv_errno(err, "pipe");
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		close(fds[0]);
		close(fds[1]);
		machine_free(&m);
		return tv_errno(err, "fork");
	}
	if (child == 0) {
		/* Leave the terminal's session, then fork again so the VM
		 * process is no session leader (it can never get a controlling
		 * terminal back) and nobody has to reap it. */
		close(fds[0]);
		setsid();
		child = fork();
		if (child != 0)
			_exit(child < 0 ? 1 : 0);
		become_vm(&o, fds[1]);
	}
	close(fds[1]);
	machine_free(&m);
	waitpid(child, &wst, 0);
	for (;;) {
		ssize_t n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	close(fds[0]);
	buf[len] = '\0';
	if (len == 0) {
		char *log = vm_log_path(p, def->name);
		char *tail = vm_log_tail(p, def->name, 1);
		tv_errf(err, "VM %s: the VM process ended during start-up (%s); see %s", def->name,
			tail ? tail : "no message", log);
		free(tail);
		free(log);
		return -1;
	}
	if (buf[0] != '0')
		return tv_errf(err, "%s", buf + 1);
	struct vm_status st;
	vm_status_probe(p, def->name, &st);
	*pid = st.pid;
	return 0;
}

int vmm_start_name(const struct tv_paths *p, const char *name, pid_t *pid, struct tv_err *err)
{
	return vmm_start_name_opts(p, name, false, pid, err);
}

int vmm_start_name_opts(const struct tv_paths *p, const char *name, bool no_sandbox, pid_t *pid,
			struct tv_err *err)
{
	char *conf, *data;
	struct vmdef def;
	struct vm_status st;
	int rc;

	if (vm_name_check(name, err) < 0)
		return -1;
	vm_status_probe(p, name, &st);
	if (st.state == VM_RUNNING || st.state == VM_PAUSED) {
		if (st.pid > 0)
			return tv_errf(err, "VM %s is already running (pid %ld)", name,
				       (long)st.pid);
		return tv_errf(err, "VM %s is already running", name);
	}
	conf = paths_vm_conf(p, name);
	data = paths_vm_data(p, name);
	if (access(conf, F_OK) < 0) {
		rc = tv_errf(err, "no VM named '%s' (looked for %s)", name, conf);
	} else {
		rc = vmdef_load(conf, data, &def, NULL, NULL, err);
		if (rc == 0) {
			def.sandbox_off = def.sandbox_off || no_sandbox;
			rc = vmm_start(p, &def, pid, err);
			vmdef_free(&def);
		}
	}
	free(conf);
	free(data);
	return rc;
}
