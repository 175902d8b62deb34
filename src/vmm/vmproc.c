#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "src/vmm/console-buf.h"
#include "src/vmm/control.h"
#include "src/vmm/vmproc-engine.h"
#include "src/vmm/vmproc.h"
#include "src/core/runtime.h"
#include "common/util.h"

/* Guest console output kept in vm.log per run, beyond which it is dropped
 * (the process's own messages still go in). */
#define LOG_CONSOLE_MAX (8u << 20)

struct vmproc {
	const struct tv_paths *paths;
	const struct vmdef *def;
	struct vm_engine *engine;
	struct console_buf *cb;
	struct control *ctl;
	int console_pipe[2]; /* engine threads -> main loop */
	int sigfd;
	int log_fd;
	size_t log_console;
	time_t started;
	uint64_t started_ns;
	bool stopping;
	uint64_t stop_deadline_ns;
};

static void vmproc_log(struct vmproc *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The process's own messages: to vm.log, as stderr is. */
static void vmproc_log(struct vmproc *v, const char *fmt, ...)
{
	char msg[TV_ERR_MAX + 128], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	int n;

	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
	n = snprintf(msg, sizeof(msg), "\n[termvisor %s] ", stamp);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(msg, "\n", sizeof(msg) - strlen(msg) - 1);
	(void)!write(v->log_fd, msg, strlen(msg));
}

/* Called on an engine thread: hand the bytes to the main loop. A blocking
 * write is flow control; the main loop always drains the pipe. */
static void on_guest_output(void *ctx, const void *bytes, size_t len)
{
	struct vmproc *v = ctx;

	write_full(v->console_pipe[1], bytes, len);
}

static void drain_console(struct vmproc *v)
{
	uint8_t buf[65536];
	ssize_t n = read(v->console_pipe[0], buf, sizeof(buf));

	if (n <= 0)
		return;
	control_console_output(v->ctl, buf, (size_t)n);
	if (v->log_console < LOG_CONSOLE_MAX) {
		size_t k = MIN((size_t)n, LOG_CONSOLE_MAX - v->log_console);
		(void)!write(v->log_fd, buf, k);
		v->log_console += k;
	}
}

static void op_status(void *ctx, struct proto_status *st)
{
	struct vmproc *v = ctx;
	int rows, cols;

	st->state = v->stopping ? PROTO_STATE_STOPPING
		    : engine_paused(v->engine) ? PROTO_STATE_PAUSED
					       : PROTO_STATE_RUNNING;
	st->pid = (uint32_t)getpid();
	st->cpus = v->def->cpus;
	st->memory = v->def->memory;
	st->started = (uint64_t)v->started;
	st->uptime_ms = (monotonic_ns() - v->started_ns) / 1000000;
	console_buf_size(v->cb, &rows, &cols);
	st->rows = (uint16_t)rows;
	st->cols = (uint16_t)cols;
	snprintf(st->name, sizeof(st->name), "%s", v->def->name);
}

static int op_pause(void *ctx, uint32_t *code, struct tv_err *err)
{
	struct vmproc *v = ctx;

	if (engine_paused(v->engine)) {
		*code = PROTO_E_STATE;
		return tv_errf(err, "VM %s is already paused", v->def->name);
	}
	if (engine_pause(v->engine, err) < 0)
		return -1;
	vm_runtime_set_paused(v->paths, v->def->name, true);
	vmproc_log(v, "paused");
	control_event(v->ctl, PROTO_EV_PAUSED, "");
	return 0;
}

static int op_resume(void *ctx, uint32_t *code, struct tv_err *err)
{
	struct vmproc *v = ctx;

	if (!engine_paused(v->engine)) {
		*code = PROTO_E_STATE;
		return tv_errf(err, "VM %s is not paused", v->def->name);
	}
	if (engine_resume(v->engine, err) < 0)
		return -1;
	vm_runtime_set_paused(v->paths, v->def->name, false);
	vmproc_log(v, "resumed");
	control_event(v->ctl, PROTO_EV_RESUMED, "");
	return 0;
}

static int begin_stop(struct vmproc *v, uint32_t timeout_ms, struct tv_err *err)
{
	char text[64];
	uint64_t deadline;

	if (timeout_ms == 0)
		timeout_ms = VMPROC_STOP_TIMEOUT_MS;
	/* A paused guest cannot see the button. */
	if (engine_paused(v->engine) && engine_resume(v->engine, err) == 0)
		vm_runtime_set_paused(v->paths, v->def->name, false);
	if (engine_power_button(v->engine, err) < 0) {
		/* Nothing to ask the guest with: stopping means forcing. */
		vmproc_log(v, "%s; forcing off", err->msg);
		v->stopping = true;
		v->stop_deadline_ns = UINT64_MAX;
		control_event(v->ctl, PROTO_EV_STOPPING, "0");
		engine_force_off(v->engine);
		return 0;
	}
	deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	/* A second stop may shorten the wait, never lengthen it. */
	if (!v->stopping || deadline < v->stop_deadline_ns)
		v->stop_deadline_ns = deadline;
	v->stopping = true;
	vmproc_log(v, "power button pressed; forcing off in %.1f s if the guest does not stop",
		   timeout_ms / 1000.0);
	snprintf(text, sizeof(text), "%u", timeout_ms / 1000);
	control_event(v->ctl, PROTO_EV_STOPPING, text);
	return 0;
}

static int op_stop(void *ctx, uint32_t timeout_ms, uint32_t *code, struct tv_err *err)
{
	return begin_stop(ctx, timeout_ms, err);
}

static int op_force_off(void *ctx, uint32_t *code, struct tv_err *err)
{
	struct vmproc *v = ctx;

	vmproc_log(v, "forced off");
	engine_force_off(v->engine);
	return 0;
}

static void op_input(void *ctx, const void *bytes, size_t len)
{
	struct vmproc *v = ctx;

	engine_input(v->engine, bytes, len);
}

static const struct control_ops vmproc_ops = {
	.status = op_status,
	.pause = op_pause,
	.resume = op_resume,
	.stop = op_stop,
	.force_off = op_force_off,
	.input = op_input,
};

static void handle_signal(struct vmproc *v)
{
	struct signalfd_siginfo si;
	struct tv_err err;

	if (read(v->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	vmproc_log(v, "signal %u received", si.ssi_signo);
	if (v->stopping) {
		/* Asked twice: the user means it. */
		engine_force_off(v->engine);
		return;
	}
	if (begin_stop(v, 0, &err) < 0) {
		vmproc_log(v, "%s; forcing off", err.msg);
		engine_force_off(v->engine);
	}
}

/* Runs until the VM ends; returns the process's exit status. */
static int vmproc_loop(struct vmproc *v)
{
	enum { P_CONSOLE, P_EXIT, P_SIGNAL, P_CONTROL };
	struct pollfd pfd[P_CONTROL + CONTROL_MAX_CLIENTS + 1];
	char reason[256];
	int status;

	for (;;) {
		int timeout = -1;
		size_t n;

		pfd[P_CONSOLE] = (struct pollfd){.fd = v->console_pipe[0], .events = POLLIN};
		pfd[P_EXIT] = (struct pollfd){.fd = engine_exit_fd(v->engine), .events = POLLIN};
		pfd[P_SIGNAL] = (struct pollfd){.fd = v->sigfd, .events = POLLIN};
		n = control_pollfds(v->ctl, pfd + P_CONTROL, ARRAY_SIZE(pfd) - P_CONTROL);
		if (v->stopping && v->stop_deadline_ns != UINT64_MAX) {
			uint64_t now = monotonic_ns();
			timeout = now >= v->stop_deadline_ns
					  ? 0
					  : (int)((v->stop_deadline_ns - now) / 1000000) + 1;
		}
		/* Keys the guest has not taken yet: offer them again soon. */
		if (engine_input_pending(v->engine) && (timeout < 0 || timeout > 10))
			timeout = 10;
		if (poll(pfd, P_CONTROL + n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			vmproc_log(v, "poll: %s", strerror(errno));
			engine_force_off(v->engine);
		}
		if (pfd[P_CONSOLE].revents & POLLIN)
			drain_console(v);
		if (pfd[P_SIGNAL].revents & POLLIN)
			handle_signal(v);
		control_handle(v->ctl, pfd + P_CONTROL, n);
		engine_input_flush(v->engine);
		if (v->stopping && monotonic_ns() >= v->stop_deadline_ns) {
			vmproc_log(v, "the guest did not stop in time; forcing off");
			engine_force_off(v->engine);
			v->stop_deadline_ns = UINT64_MAX;
		}
		if (!(pfd[P_EXIT].revents & POLLIN))
			continue;
		if (!v->stopping && engine_wants_restart(v->engine)) {
			struct tv_err err;
			vmproc_log(v, "the guest reset the machine; booting again");
			if (engine_restart(v->engine, &err) == 0)
				continue;
			vmproc_log(v, "cannot boot again: %s", err.msg);
		}
		break;
	}
	/* What the guest printed last, then the news. */
	while (poll(pfd + P_CONSOLE, 1, 0) == 1 && (pfd[P_CONSOLE].revents & POLLIN))
		drain_console(v);
	status = engine_exit_reason(v->engine, reason, sizeof(reason));
	/* The engine's whole account (a register dump) first, so the reason is
	 * among the last lines that list shows. */
	if (status != 0 && strchr(engine_exit_details(v->engine), '\n')) {
		const char *d = engine_exit_details(v->engine);
		(void)!write(v->log_fd, "\n", 1);
		(void)!write(v->log_fd, d, strlen(d));
	}
	vmproc_log(v, "VM ended: %s", reason);
	control_event(v->ctl, PROTO_EV_EXITED, reason);
	control_flush(v->ctl, 500);
	return status;
}

/* Keeps the previous run's log as vm.log.old and starts a new one. */
static int open_log(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	char *file = vm_log_path(p, name);
	char *old = xasprintf("%s.old", file);
	int fd;

	rename(file, old);
	fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		tv_errno(err, "cannot open the log %s", file);
	free(file);
	free(old);
	return fd;
}

/* Tells the starting process how it went: "0" or "1message". */
static void report(int fd, int rc, const char *msg)
{
	char buf[TV_ERR_MAX + 2];

	snprintf(buf, sizeof(buf), "%c%s", rc == 0 ? '0' : '1', msg ? msg : "");
	write_full(fd, buf, strlen(buf));
	close(fd);
}

static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before the engine makes its threads, so they inherit it. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The VM process itself. Never returns. */
static void __attribute__((noreturn))
vmproc_main(const struct tv_paths *p, const struct vmdef *def, int report_fd)
{
	struct vmproc v = {.paths = p, .def = def, .log_fd = -1, .sigfd = -1};
	struct tv_err err;
	char *sock = paths_vm_runtime(p, def->name, "sock");
	int lock_fd, status, devnull;

	/* Nothing inherited from the starting program (the interface's sockets
	 * to other VMs, its terminal) stays open in the VM process: there is no
	 * exec to close them. */
	if (report_fd > 3)
		close_range(3, (unsigned)report_fd - 1, 0);
	close_range((unsigned)report_fd + 1, ~0U, 0);
	umask(077);
	v.log_fd = open_log(p, def->name, &err);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (v.log_fd < 0 || devnull < 0) {
		report(report_fd, -1, v.log_fd < 0 ? err.msg : "cannot open /dev/null");
		_exit(1);
	}
	/* Nothing is left pointing at the terminal that started us. */
	dup2(devnull, 0);
	dup2(v.log_fd, 1);
	dup2(v.log_fd, 2);
	if (chdir("/") < 0)
		_exit(1);
	lock_fd = vm_lock_take(p, def->name, &err);
	if (lock_fd < 0) {
		report(report_fd, -1, err.msg);
		_exit(1);
	}
	vmproc_log(&v, "starting VM %s (termvisor %s, pid %ld)", def->name, PACKAGE_VERSION,
		   (long)getpid());
	v.sigfd = setup_signals();
	if (v.sigfd < 0 || pipe2(v.console_pipe, O_CLOEXEC) < 0) {
		report(report_fd, -1, "cannot set up the VM process (signalfd, pipe)");
		_exit(1);
	}
	v.cb = console_buf_new(CONSOLE_DEFAULT_ROWS, CONSOLE_DEFAULT_COLS,
			       CONSOLE_DEFAULT_SCROLLBACK);
	v.engine = engine_open(p, def, on_guest_output, &v, &err);
	if (v.engine == NULL)
		goto fail;
	/* Clears what a crash left (the old socket among it) before binding. */
	if (vm_runtime_begin(p, def->name, &err) < 0)
		goto fail;
	v.ctl = control_new(sock, v.cb, &vmproc_ops, &v, &err);
	if (v.ctl == NULL)
		goto fail;
	v.started = time(NULL);
	v.started_ns = monotonic_ns();
	v.stop_deadline_ns = UINT64_MAX;
	if (engine_start(v.engine, &err) < 0)
		goto fail;
	vmproc_log(&v, "running");
	report(report_fd, 0, NULL);

	status = vmproc_loop(&v);
	engine_close(v.engine);
	/* A guest or engine crash is remembered as one, as a dead process is. */
	vm_runtime_end(p, def->name, status != 0);
	vmproc_log(&v, "VM process exits (status %d)", status);
	/* Unlocked before the clients see the connection close: when `stop`
	 * returns, the VM reads as stopped and may be started again. */
	close(lock_fd);
	control_free(v.ctl);
	_exit(status);

fail:
	vmproc_log(&v, "start failed: %s", err.msg);
	if (v.engine)
		engine_close(v.engine);
	vm_runtime_end(p, def->name, false);
	close(lock_fd);
	control_free(v.ctl);
	report(report_fd, -1, err.msg);
	_exit(1);
}

int vmproc_start(const struct tv_paths *p, const struct vmdef *def, pid_t *pid,
		 struct tv_err *err)
{
	char *datadir = paths_vm_data(p, def->name);
	char buf[TV_ERR_MAX + 2];
	size_t len = 0;
	int fds[2], wst;
	pid_t child;

	if (paths_runtime_ensure(p, err) < 0 || paths_mkdir(datadir, 0755, err) < 0) {
		free(datadir);
		return -1;
	}
	free(datadir);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return tv_errno(err, "pipe");
	fflush(NULL);
	child = fork();
	if (child < 0) {
		close(fds[0]);
		close(fds[1]);
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
		vmproc_main(p, def, fds[1]);
	}
	close(fds[1]);
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

int vmproc_start_name(const struct tv_paths *p, const char *name, pid_t *pid,
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
			rc = vmproc_start(p, &def, pid, err);
			vmdef_free(&def);
		}
	}
	free(conf);
	free(data);
	return rc;
}
