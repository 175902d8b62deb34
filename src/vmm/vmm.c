/* The VM process's main loop, the same for a VM in the background and one in
 * the foreground (vmm.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "common/util.h"
#include "src/core/runtime.h"
#include "src/lab/lab.h"
#include "src/vmm/sandbox.h"
#include "src/vmm/vmm-int.h"
#include "vm/block/block.h"
#include "vm/dev/acpi-pm.h"

/* Guest console output kept in vm.log per run, beyond which it is dropped
 * (the process's own messages still go in). */
#define LOG_CONSOLE_MAX (8u << 20)
/* Keys the guest has not taken yet: kept up to this bound and offered again;
 * beyond it typing is lost, as on a serial line. */
#define INPUT_BACKLOG_MAX 65536
/* The terminal is read only while the backlog is below this. */
#define INPUT_READ_BELOW 4096
#define ESCAPE_KEY 0x01 /* Ctrl-a, in the foreground */
/* The vCPU threads run this much nicer than the VM process's control loop
 * and the user's commands, which then keep answering (status, console,
 * pause, stop) while a guest keeps every vCPU busy on a host with no CPU to
 * spare; with CPUs to spare it changes nothing. */
#define VCPU_NICE 5

void vmm_log(struct vmm *v, const char *fmt, ...)
{
	char msg[TV_ERR_MAX + 128], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	int n;

	if (v->log_fd < 0 && !v->o->cfg.verbose)
		return;
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
	n = snprintf(msg, sizeof(msg), "\n[termvisor %s] ", stamp);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(msg, "\n", sizeof(msg) - strlen(msg) - 1);
	/* In the foreground (verbose) the note goes to stderr, at column 0. */
	(void)!write(v->log_fd >= 0 ? v->log_fd : 2, v->log_fd >= 0 ? msg : msg + 1,
		     strlen(v->log_fd >= 0 ? msg : msg + 1));
}

static unsigned vmm_port_of(void *vm, uint8_t console)
{
	return vmm_port(vm, console);
}

uint8_t vmm_state(void *vm)
{
	struct vmm *v = vm;

	if (v->stopping || v->vm == NULL)
		return PROTO_STATE_STOPPING;
	return vm_paused(v->vm) ? PROTO_STATE_PAUSED : PROTO_STATE_RUNNING;
}

/* ---- the guest's output ---- */

/* On a vCPU or device thread: hand the bytes to the main loop. A full pipe
 * holds the writer back (flow control) until the main loop has read it,
 * except while the VM is being torn down, when nobody will: then the rest is
 * dropped, so a reset or a stop never waits on output nobody reads. While the
 * main loop itself waits for the vCPUs (vmm_wait_begin), the writer may hold
 * a device's lock it needs or be one it waits to park: then the rest is put
 * aside (held, bounded) and the writer goes on. Bytes once held keep their
 * place after the pipe's: the writers wait until the main loop took them. */
static void on_guest_output(void *ctx, unsigned port, const void *bytes, size_t len)
{
	struct vmm *v = ctx;
	const uint8_t *p = bytes;
	struct vmm_console *c;

	if (port >= CONSOLE_NPORTS)
		return;
	c = &v->con[port];
	while (len > 0) {
		ssize_t n = 0;
		int error = 0;
		bool held;

		pthread_mutex_lock(&v->held_lock);
		held = c->held.len > 0;
		if (!held) {
			n = write(c->pipe[1], p, len);
			error = n < 0 ? errno : 0;
		}
		if ((held || error == EAGAIN) && atomic_load(&v->main_waits)) {
			size_t room = VMM_HELD_MAX - MIN(c->held.len, (size_t)VMM_HELD_MAX);
			proto_buf_append(&c->held, p, MIN(len, room));
			n = (ssize_t)len; /* beyond the bound it is dropped */
		}
		pthread_mutex_unlock(&v->held_lock);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (held || error == EAGAIN) {
			if (atomic_load(&v->dropping))
				return;
			/* Held bytes go soon (vmm_wait_end); pipe space when the
			 * main loop reads. */
			struct pollfd pfd = {.fd = c->pipe[1], .events = POLLOUT};
			poll(&pfd, held ? 0 : 1, held ? 1 : 20);
		} else if (error != EINTR) {
			return;
		}
	}
}

static void screens_new(struct vmm *v, int rows, int cols)
{
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		if (v->con[i].cb == NULL)
			v->con[i].cb = console_buf_new(rows, cols, CONSOLE_DEFAULT_SCROLLBACK);
}

/* The terminal's size, or the default where it has none. */
static void term_size(struct vmm *v, int *rows, int *cols)
{
	struct winsize ws;

	*rows = CONSOLE_DEFAULT_ROWS;
	*cols = CONSOLE_DEFAULT_COLS;
	if (v->term.tty && ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= PROTO_MIN_DIM &&
	    ws.ws_col >= PROTO_MIN_DIM && ws.ws_row <= PROTO_MAX_DIM && ws.ws_col <= PROTO_MAX_DIM) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* Passes n bytes the guest printed on one console, through its guard once,
 * to everyone who shows it. */
static void output_pass(struct vmm *v, unsigned port, const uint8_t *raw, size_t n)
{
	struct vmm_console *c = &v->con[port];
	uint8_t out[VMM_OUTPUT_CHUNK];
	size_t len = vtguard_filter(&c->guard, raw, n, out);

	/* A foreground VM without clients keeps screens only once the guest
	 * uses a second console: then the terminal can switch between them. */
	if (!c->used && port != v->term.shown && v->term.on && c->cb == NULL) {
		int rows, cols;
		term_size(v, &rows, &cols);
		screens_new(v, rows, cols);
	}
	c->used = true;
	if (v->ctl)
		control_console_output(v->ctl, port, out, len); /* its screen too */
	else if (c->cb)
		console_buf_feed(c->cb, out, len);
	if (v->term.on && port == v->term.shown)
		(void)write_full(1, out, len); /* a closed stdout drops output */
	if (v->log_fd >= 0 && v->log_console < LOG_CONSOLE_MAX) {
		size_t k = MIN(len, LOG_CONSOLE_MAX - v->log_console);
		(void)!write(v->log_fd, out, k);
		v->log_console += k;
	}
}

/* Reads what the guest printed on one console and passes it on. Returns the
 * bytes read (0: none). */
static size_t drain_output(struct vmm *v, unsigned port)
{
	uint8_t raw[VMM_OUTPUT_CHUNK];
	ssize_t n = read(v->con[port].pipe[0], raw, sizeof(raw));

	if (n <= 0)
		return 0;
	output_pass(v, port, raw, (size_t)n);
	return (size_t)n;
}

/* The pipe, then what was put aside after it. No writer adds to the pipe
 * while bytes are held, so the first loop ends. */
static void drain_held(struct vmm *v, unsigned port)
{
	struct vmm_console *c = &v->con[port];
	struct proto_buf held;

	pthread_mutex_lock(&v->held_lock);
	held = c->held;
	pthread_mutex_unlock(&v->held_lock);
	if (held.len == 0)
		return;
	while (drain_output(v, port) > 0)
		;
	pthread_mutex_lock(&v->held_lock);
	held = c->held;
	c->held = (struct proto_buf){0};
	pthread_mutex_unlock(&v->held_lock);
	for (size_t off = 0; off < held.len; off += VMM_OUTPUT_CHUNK)
		output_pass(v, port, held.data + off, MIN(held.len - off, (size_t)VMM_OUTPUT_CHUNK));
	proto_buf_free(&held);
}

static void drain_all_output(struct vmm *v)
{
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++) {
		while (drain_output(v, i) > 0)
			;
		drain_held(v, i);
	}
}

void vmm_drain_output(struct vmm *v)
{
	drain_all_output(v);
}

void vmm_wait_begin(struct vmm *v)
{
	atomic_store(&v->main_waits, true);
}

void vmm_wait_end(struct vmm *v)
{
	atomic_store(&v->main_waits, false);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		drain_held(v, i);
}

int vmm_pause(struct vmm *v, struct tv_err *err)
{
	int rc;

	vmm_wait_begin(v);
	rc = vm_pause(v->vm, err);
	vmm_wait_end(v);
	return rc;
}

unsigned vmm_port(const struct vmm *v, uint8_t console)
{
	switch (console) {
	case PROTO_CONSOLE_SERIAL:
		return CONSOLE_SERIAL;
	case PROTO_CONSOLE_HVC:
		return CONSOLE_HVC;
	}
	return v->primary;
}

/* The console the kernel writes to: Linux takes the last console= of its
 * command line as /dev/console. */
static unsigned primary_console(const char *cmdline)
{
	unsigned port = CONSOLE_SERIAL;

	for (const char *p = cmdline; p != NULL && (p = strstr(p, "console=")) != NULL; p += 8)
		if (p == cmdline || p[-1] == ' ')
			port = strncmp(p + 8, "hvc", 3) == 0 ? CONSOLE_HVC : CONSOLE_SERIAL;
	return port;
}

/* ---- input ---- */

static bool input_pending(const struct vmm *v)
{
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		if (v->con[i].input.len > 0)
			return true;
	return false;
}

static void input_flush(struct vmm *v)
{
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++) {
		struct proto_buf *in = &v->con[i].input;
		if (in->len > 0) {
			vmm_wait_begin(v); /* the device's lock */
			proto_buf_consume(in, console_input(v->vm, i, in->data, in->len));
			vmm_wait_end(v);
		}
	}
}

void vmm_input(struct vmm *v, unsigned port, const void *bytes, size_t len)
{
	struct proto_buf *in;

	if (port >= CONSOLE_NPORTS || len == 0)
		return;
	in = &v->con[port].input;
	input_flush(v);
	if (in->len == 0) {
		vmm_wait_begin(v); /* the device's lock */
		size_t n = console_input(v->vm, port, bytes, len);
		vmm_wait_end(v);
		bytes = (const uint8_t *)bytes + n;
		len -= n;
	}
	len = MIN(len, INPUT_BACKLOG_MAX - MIN(in->len, (size_t)INPUT_BACKLOG_MAX));
	proto_buf_append(in, bytes, len);
}

/* ---- the terminal of a foreground VM ---- */

static void term_raw(struct vmm_term *t)
{
	struct termios tio;

	if (!t->tty || t->raw || tcgetattr(0, &t->saved) < 0)
		return;
	tio = t->saved;
	cfmakeraw(&tio);
	/* Keep output processing so the process's messages start at column
	 * 0; guests send \r\n themselves, which OPOST leaves alone. */
	tio.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(0, TCSANOW, &tio) == 0)
		t->raw = true;
}

static void term_restore(struct vmm_term *t)
{
	if (t->raw)
		tcsetattr(0, TCSANOW, &t->saved);
	t->raw = false;
}

static void escape_help(void)
{
	static const char help[] = "\r\ntermvisor console keys:\r\n"
				   "  Ctrl-a x   quit (the VM is stopped)\r\n"
				   "  Ctrl-a c   switch between the consoles ttyS0 and hvc0\r\n"
				   "  Ctrl-a h   this help\r\n"
				   "  Ctrl-a a   send Ctrl-a to the guest\r\n";

	(void)write_full(2, help, sizeof(help) - 1);
}

/* Ctrl-a c: the terminal shows the other console, redrawn from its screen. */
static void term_switch(struct vmm *v)
{
	unsigned to = (v->term.shown + 1) % CONSOLE_NPORTS;
	struct proto_buf screen = {0};
	char note[96];
	int rows, cols;

	term_size(v, &rows, &cols);
	screens_new(v, rows, cols);
	drain_all_output(v);
	v->term.shown = to;
	console_buf_render(v->con[to].cb, rows, &screen);
	(void)write_full(1, screen.data, screen.len);
	proto_buf_free(&screen);
	snprintf(note, sizeof(note), "\r\n[termvisor: console %s; Ctrl-a c switches]\r\n",
		 console_port_name(to));
	(void)write_full(2, note, strlen(note));
}

void vmm_redraw(struct vmm *v)
{
	if (v->ctl)
		control_redraw(v->ctl);
	if (v->term.on && v->con[v->term.shown].cb != NULL) {
		struct proto_buf screen = {0};
		int rows, cols;
		term_size(v, &rows, &cols);
		console_buf_render(v->con[v->term.shown].cb, rows, &screen);
		(void)write_full(1, screen.data, screen.len);
		proto_buf_free(&screen);
	}
}

/* Typed bytes, with the Ctrl-a escapes taken out on a terminal. */
static void term_typed(struct vmm *v, const uint8_t *buf, size_t n)
{
	struct vmm_term *t = &v->term;
	size_t start = 0;

	for (size_t i = 0; i < n && t->tty; i++) {
		uint8_t b = buf[i];
		if (!t->escape && b != ESCAPE_KEY)
			continue;
		vmm_input(v, t->shown, buf + start, i - start);
		start = i + 1;
		if (!t->escape) {
			t->escape = true;
			continue;
		}
		t->escape = false;
		if (b == 'x' || b == 'X') {
			v->quit = true;
			return;
		}
		if (b == 'h' || b == 'H' || b == '?')
			escape_help();
		else if (b == 'c' || b == 'C')
			term_switch(v);
		else if (b == 'a' || b == ESCAPE_KEY)
			vmm_input(v, t->shown, (const uint8_t[]){ESCAPE_KEY}, 1);
	}
	vmm_input(v, t->shown, buf + start, n - start);
}

static void term_read(struct vmm *v)
{
	uint8_t buf[512];
	ssize_t n = read(0, buf, sizeof(buf));

	if (n > 0)
		term_typed(v, buf, (size_t)n);
	else if (!(n < 0 && (errno == EINTR || errno == EAGAIN)))
		v->term.stdin_open = false;
}

/* ---- stopping ---- */

/* Stopping means forcing: the run ends now. */
static int force_off(struct vmm *v, const char *why)
{
	vmm_log(v, "%s; forcing off", why);
	v->stopping = true;
	v->stop_deadline_ns = UINT64_MAX;
	if (v->ctl)
		control_event(v->ctl, PROTO_EV_STOPPING, "0");
	vm_request_stop(v->vm);
	return 0;
}

int vmm_begin_stop(struct vmm *v, uint32_t timeout_ms, struct tv_err *err)
{
	char why[PROTO_REASON_MAX + 1], text[PROTO_REASON_MAX + 64];
	uint64_t deadline;

	if (timeout_ms == 0)
		timeout_ms = VMM_STOP_TIMEOUT_MS;
	/* Requests a full disk holds would hold the guest's shutdown too (it
	 * writes): off at once; what was written before is on the disk. */
	if (vm_hold_reason(v->vm, why, sizeof(why))) {
		snprintf(text, sizeof(text), "stopping while paused (%s)", why);
		return force_off(v, text);
	}
	/* A paused guest cannot see the button. */
	if (vm_paused(v->vm) && vm_resume(v->vm, err) == 0 && v->have_paths)
		vm_runtime_set_paused(&v->paths, v->name, false);
	/* Nothing to ask the guest with. */
	if (acpi_pm_power_button(v->vm, err) < 0)
		return force_off(v, err->msg);
	deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000;
	/* A second stop may shorten the wait, never lengthen it. */
	if (!v->stopping || deadline < v->stop_deadline_ns)
		v->stop_deadline_ns = deadline;
	v->stopping = true;
	vmm_log(v, "power button pressed; forcing off in %.1f s if the guest does not stop",
		timeout_ms / 1000.0);
	snprintf(text, sizeof(text), "%u", timeout_ms / 1000);
	if (v->ctl)
		control_event(v->ctl, PROTO_EV_STOPPING, text);
	return 0;
}

void vmm_console_sizes(struct vmm *v)
{
	for (unsigned i = 0; i < CONSOLE_NPORTS && v->vm; i++)
		if (v->con[i].rows > 0)
			console_set_size(v->vm, i, (unsigned)v->con[i].rows,
				       (unsigned)v->con[i].cols);
}

/* A read-write client's window is its console's size (control.h). */
static void console_resized(void *vm, unsigned port, int rows, int cols)
{
	struct vmm *v = vm;

	if (port >= CONSOLE_NPORTS)
		return;
	v->con[port].rows = rows;
	v->con[port].cols = cols;
	if (v->vm)
		console_set_size(v->vm, port, (unsigned)rows, (unsigned)cols);
}

/* The foreground terminal was resized: each console's guest that can be
 * told takes its size, as from a client's window. */
static void term_resized(struct vmm *v)
{
	int rows, cols;

	term_size(v, &rows, &cols);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		console_resized(v, i, rows, cols);
}

static void handle_signal(struct vmm *v)
{
	struct signalfd_siginfo si;
	struct tv_err err;

	if (read(v->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGWINCH) {
		term_resized(v);
		return;
	}
	vmm_log(v, "signal %u received", si.ssi_signo);
	/* In the foreground a signal ends the run, as it ends any program
	 * there; in the background it is a request to shut down, and asked
	 * twice the user means it. */
	if (v->term.on) {
		v->signal = (int)si.ssi_signo;
		return;
	}
	if (v->stopping || vmm_begin_stop(v, 0, &err) < 0)
		vm_request_stop(v->vm);
}

static int setup_signals(struct vmm *v)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (v->term.on)
		sigaddset(&set, SIGHUP); /* the terminal went away */
	if (v->term.tty)
		sigaddset(&set, SIGWINCH); /* hvc0's guest follows its size */
	else
		signal(SIGHUP, SIG_IGN);
	/* Blocked before the engine makes its threads, so they inherit it. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	v->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return v->sigfd;
}

/* A disk paused the VM (vm_hold): the state, the log and the clients say
 * why. */
static void on_hold(struct vmm *v)
{
	char why[PROTO_REASON_MAX + 1];
	uint64_t n;

	if (read(vm_hold_fd(v->vm), &n, sizeof(n)) < 0 || !vm_hold_reason(v->vm, why, sizeof(why)))
		return;
	if (v->have_paths)
		vm_runtime_set_paused_why(&v->paths, v->name, why);
	vmm_log(v, "paused: %s; free space and resume to go on", why);
	if (v->ctl)
		control_event(v->ctl, PROTO_EV_PAUSED, why);
}

/* ---- the machine ---- */

static int machine_new(struct vmm *v, struct tv_err *err)
{
	atomic_store(&v->dropping, false);
	if (vm_new(&v->vm, &v->o->cfg, err) < 0) {
		v->vm = NULL;
		if (v->o->name)
			tv_err_prefix(err, "VM %s: ", v->o->name);
		return -1;
	}
	vmm_console_sizes(v);
	return 0;
}

/* Stops the vCPUs and frees the machine; what it printed is passed on, as
 * far as it comes within VMM_FREE_DRAIN_NS. */
static void machine_free(struct vmm *v)
{
	uint64_t until = monotonic_ns() + VMM_FREE_DRAIN_NS;

	if (v->vm == NULL)
		return;
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		while (monotonic_ns() < until && drain_output(v, i) > 0)
			;
	atomic_store(&v->dropping, true);
	vm_free(v->vm);
	v->vm = NULL;
	drain_all_output(v);
}

int vmm_machine_rebuild(struct vmm *v, struct tv_err *err)
{
	machine_free(v);
	return machine_new(v, err);
}

/* The guest reset the machine: boot it again, as a machine would. Its memory
 * is new, so the next snapshot's image is full (a new struct vm has no base);
 * "here" in the tree stays, as the disks descend from it. */
int vmm_machine_restart(struct vmm *v, struct tv_err *err)
{
	if (vmm_machine_rebuild(v, err) < 0)
		return -1;
	return vm_start(v->vm, err);
}

/* ---- the loop ---- */

static void run_loop(struct vmm *v)
{
	enum { P_OUTPUT, P_EXIT = P_OUTPUT + CONSOLE_NPORTS, P_HOLD, P_SIGNAL, P_STDIN, P_CONTROL };
	struct pollfd pfd[P_CONTROL + CONTROL_MAX_CLIENTS + 1];

	for (;;) {
		int timeout = -1;
		size_t n = 0;

		for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
			pfd[P_OUTPUT + i] = (struct pollfd){.fd = v->con[i].pipe[0], .events = POLLIN};
		pfd[P_EXIT] = (struct pollfd){.fd = vm_exit_fd(v->vm), .events = POLLIN};
		pfd[P_HOLD] = (struct pollfd){.fd = vm_hold_fd(v->vm), .events = POLLIN};
		pfd[P_SIGNAL] = (struct pollfd){.fd = v->sigfd, .events = POLLIN};
		pfd[P_STDIN] = (struct pollfd){
			.fd = v->term.on && v->term.stdin_open &&
					      v->con[v->term.shown].input.len < INPUT_READ_BELOW
				      ? 0
				      : -1,
			.events = POLLIN};
		if (v->ctl)
			n = control_pollfds(v->ctl, pfd + P_CONTROL, ARRAY_SIZE(pfd) - P_CONTROL);
		if (v->stopping && v->stop_deadline_ns != UINT64_MAX) {
			uint64_t now = monotonic_ns();
			timeout = now >= v->stop_deadline_ns
					  ? 0
					  : (int)((v->stop_deadline_ns - now) / 1000000) + 1;
		}
		/* Keys the guest has not taken yet: offer them again soon. */
		if (input_pending(v) && (timeout < 0 || timeout > 10))
			timeout = 10;
		if (v->ctl) {
			int t = control_timeout(v->ctl);
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
		if (poll(pfd, P_CONTROL + n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			vmm_log(v, "poll: %s", strerror(errno));
			vm_request_stop(v->vm);
		}
		for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
			if (pfd[P_OUTPUT + i].revents & POLLIN)
				drain_output(v, i);
		if (pfd[P_HOLD].revents & POLLIN)
			on_hold(v);
		if (pfd[P_SIGNAL].revents & POLLIN)
			handle_signal(v);
		if (pfd[P_STDIN].revents)
			term_read(v);
		if (v->ctl)
			control_handle(v->ctl, pfd + P_CONTROL, n);
		if (v->ended)
			return; /* a verb ended the run; it said why */
		input_flush(v);
		if (v->quit || v->signal)
			return;
		if (v->stopping && monotonic_ns() >= v->stop_deadline_ns) {
			vmm_log(v, "the guest did not stop in time; forcing off");
			vm_request_stop(v->vm);
			v->stop_deadline_ns = UINT64_MAX;
		}
		if (!(pfd[P_EXIT].revents & POLLIN))
			continue;
		if (vm_exit_reason(v->vm) == VM_EXIT_REBOOT && !v->stopping && !v->o->reboot_exit) {
			struct tv_err err;
			vmm_log(v, "the guest reset the machine; booting again");
			if (vmm_machine_restart(v, &err) == 0)
				continue;
			vmm_log(v, "cannot boot again: %s", err.msg);
			if (v->term.on)
				fprintf(stderr, "termvisor run: cannot boot again: %s\n", err.msg);
		}
		return;
	}
}

/* How the run ended: one line in reason, the exit status returned, and
 * whether it counts as a crash. */
static int outcome(struct vmm *v, char *reason, size_t len, bool *crashed)
{
	enum vm_exit_reason r = v->vm ? vm_exit_reason(v->vm) : VM_EXIT_HOST_ERROR;
	const char *msg = v->vm ? vm_exit_message(v->vm) : "";
	int code;

	*crashed = false;
	if (v->signal) {
		snprintf(reason, len, "stopped by signal %d", v->signal);
		return 128 + v->signal;
	}
	if (v->quit) {
		snprintf(reason, len, "quit from the console");
		return 0;
	}
	switch (r) {
	case VM_EXIT_POWEROFF:
		snprintf(reason, len, "the guest powered off");
		return 0;
	case VM_EXIT_STOPPED:
	case VM_EXIT_NONE:
		snprintf(reason, len, "forced off");
		return 0;
	case VM_EXIT_DEBUG:
		code = vm_exit_code(v->vm);
		snprintf(reason, len, "the guest wrote %d to the debug-exit port", code);
		*crashed = code != 0;
		return code == 0 ? 0 : VMM_EXIT_DEBUG_BASE + code % 64;
	case VM_EXIT_REBOOT:
		code = VMM_EXIT_REBOOT;
		break;
	case VM_EXIT_TRIPLE_FAULT:
		code = VMM_EXIT_TRIPLE_FAULT;
		*crashed = true;
		break;
	case VM_EXIT_CRASH:
		code = VMM_EXIT_CRASH;
		*crashed = true;
		break;
	default:
		code = 1;
		*crashed = true;
		break;
	}
	snprintf(reason, len, "%s%s%s", vm_exit_reason_name(r), *msg ? ": " : "", msg);
	/* Only the first line: the rest (a register dump) goes with the details. */
	reason[strcspn(reason, "\n")] = '\0';
	return code;
}

/* A crashed guest's last words, for a VM in the background (in the
 * foreground they are on the terminal): the end of each console's screen
 * goes into the log beside the engine's account. On AMD's KVM a triple
 * fault leaves no registers (vcpu.c), so these lines are often all there is. */
#define LAST_LINES 20

static void log_last_lines(struct vmm *v)
{
	char line[1024];

	for (unsigned i = 0; i < CONSOLE_NPORTS; i++) {
		int rows, cols, end, from;

		if (v->con[i].cb == NULL)
			continue;
		console_buf_size(v->con[i].cb, &rows, &cols);
		for (end = rows; end > 0; end--) /* the last row that is not blank */
			if (console_buf_row_text(v->con[i].cb, end - 1, line, sizeof(line)) > 0)
				break;
		if (end == 0)
			continue;
		from = MAX(end - LAST_LINES, 0);
		vmm_log(v, "the last %d lines of %s's screen:", end - from, console_port_name(i));
		for (int r = from; r < end; r++) {
			size_t n = console_buf_row_text(v->con[i].cb, r, line, sizeof(line) - 1);

			line[n] = '\n';
			(void)!write(v->log_fd, "  ", 2);
			(void)!write(v->log_fd, line, n + 1);
		}
	}
}

/* Tells the terminal of a foreground run why it ended, as `termvisor run`
 * always has. */
static void say_outcome(struct vmm *v)
{
	const char *msg;

	if (v->signal || v->quit || v->vm == NULL)
		return;
	msg = vm_exit_message(v->vm);
	switch (vm_exit_reason(v->vm)) {
	case VM_EXIT_REBOOT:
		fprintf(stderr, "termvisor run: the guest reset (%s)\n", msg);
		break;
	case VM_EXIT_TRIPLE_FAULT:
		fprintf(stderr, "termvisor run: guest triple fault\n%s\n", msg);
		break;
	case VM_EXIT_CRASH:
		fprintf(stderr, "termvisor run: guest crashed: %s\n", msg);
		break;
	case VM_EXIT_HOST_ERROR:
		fprintf(stderr, "termvisor run: host error: %s\n", msg);
		break;
	default:
		break;
	}
}

/* ---- start-up and the end ---- */

/* Keeps the previous run's log as vm.log.old and starts a new one. */
static int open_log(struct vmm *v, struct tv_err *err)
{
	char *file = vm_log_path(&v->paths, v->name);
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
static void report(struct vmm *v, int rc, const char *msg)
{
	char buf[TV_ERR_MAX + 2];

	if (!v->o->detach || v->o->report_fd < 0)
		return;
	snprintf(buf, sizeof(buf), "%c%s", rc == 0 ? '0' : '1', msg ? msg : "");
	(void)write_full(v->o->report_fd, buf, strlen(buf));
	close(v->o->report_fd);
	v->o->report_fd = -1;
}

/* A background VM leaves the terminal: its output and messages go to vm.log. */
static int detach_setup(struct vmm *v, struct tv_err *err)
{
	int devnull;

	umask(077);
	v->log_fd = open_log(v, err);
	if (v->log_fd < 0)
		return -1;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return tv_errno(err, "/dev/null");
	dup2(devnull, 0);
	dup2(v->log_fd, 1);
	dup2(v->log_fd, 2);
	close(devnull);
	if (chdir("/") < 0)
		return tv_errno(err, "chdir /");
	return 0;
}

/* ---- the sandbox ---- */

/* A disk and, read only, every image of its backing chain (opened here
 * without a lock: the VM holds the image). */
static void allow_disk(struct sandbox *s, const struct vm_disk *d)
{
	struct tv_err e;
	struct blk *b;

	sandbox_allow(s, d->path, d->readonly ? SANDBOX_READ : SANDBOX_READ_WRITE);
	if (blk_open(&b, d->path, d->format, BLK_SHARE, &e) < 0)
		return; /* the VM opened it: nothing else to find */
	for (const struct blk *k = blk_backing(b); k != NULL; k = blk_backing(k))
		sandbox_allow(s, blk_path(k), SANDBOX_READ);
	blk_close(b, &e);
}

/* Everything the VM process may open from now on, a new machine after a
 * guest reset or a rollback included: its own files, the devices and the
 * few host files the engine and the user network read. */
static void sandbox_paths(struct vmm *v, struct sandbox *s)
{
	const struct vm_config *c = &v->o->cfg;

	if (v->have_paths) {
		char *data = paths_vm_data(&v->paths, v->name);
		char *conf = paths_vm_conf(&v->paths, v->name);
		sandbox_allow(s, data, SANDBOX_READ_WRITE); /* disks, snapshots, log */
		sandbox_allow(s, conf, SANDBOX_READ);
		sandbox_allow(s, v->paths.runtime_dir, SANDBOX_READ_WRITE);
		free(data);
		free(conf);
	}
	/* A guest reset boots the kernel again: a bzImage's vmlinux may be
	 * extracted into the cache then. */
	sandbox_allow(s, c->kernel, SANDBOX_READ);
	sandbox_allow(s, c->initrd, SANDBOX_READ);
	sandbox_allow(s, c->kernel_cache, SANDBOX_READ_WRITE);
	sandbox_allow(s, c->memory_file, SANDBOX_READ_WRITE);
	sandbox_allow(s, v->restore_dir, SANDBOX_READ);
	for (size_t i = 0; i < c->ndisks; i++)
		allow_disk(s, &c->disks[i]);
	sandbox_allow(s, "/dev/kvm", SANDBOX_READ_WRITE);
	sandbox_allow(s, "/dev/net/tun", SANDBOX_READ_WRITE);
	sandbox_allow(s, "/dev/null", SANDBOX_READ_WRITE);
	sandbox_allow(s, "/dev/urandom", SANDBOX_READ);
	sandbox_allow(s, "/dev/random", SANDBOX_READ);
	sandbox_allow(s, "/proc/self", SANDBOX_READ); /* pagemap, fd links */
	sandbox_allow(s, "/proc/meminfo", SANDBOX_READ);
	sandbox_allow(s, "/proc/self/exe", SANDBOX_READ); /* a sanitizer's symbols */
	sandbox_allow(s, "/etc/resolv.conf", SANDBOX_READ); /* the user network's DNS */
}

static int confine(struct vmm *v, struct tv_err *err)
{
	struct sandbox s = {0};
	char note[160];
	int rc;

	if (v->o->no_sandbox) {
		vmm_log(v, "sandbox off (--no-sandbox or sandbox = false)");
		return 0;
	}
	sandbox_paths(v, &s);
	rc = sandbox_install(&s, note, sizeof(note), err);
	sandbox_free(&s);
	if (rc < 0)
		return -1;
	v->sandboxed = true;
	vmm_log(v, "%s", note);
	return 0;
}

/* TERMVISOR_SANDBOX_SELFTEST=1 (read at start-up, for the tests): once the
 * VM runs, the process tries a call the sandbox forbids, so the report and
 * the crash can be seen end to end. Only ever done when confined. */
static void sandbox_selftest(struct vmm *v)
{
	char *const argv[] = {"/bin/true", NULL};

	if (!v->selftest || !v->sandboxed)
		return;
	vmm_log(v, "sandbox self-test: trying execve /bin/true");
	execve(argv[0], argv, argv + 1);
	vmm_log(v, "sandbox self-test: execve came back: %s", strerror(errno));
}

static int setup(struct vmm *v, struct tv_err *err)
{
	struct vmm_opts *o = v->o;
	int rows, cols;

	if (o->name != NULL) {
		if (paths_init(&v->paths, err) < 0)
			return -1;
		v->have_paths = true;
		if (paths_runtime_ensure(&v->paths, err) < 0)
			return -1;
	}
	if (o->detach) {
		if (o->name == NULL)
			return tv_errf(err, "a VM in the background needs a name");
		if (detach_setup(v, err) < 0)
			return -1;
	}
	if (o->name != NULL) {
		v->lock_fd = vm_lock_take(&v->paths, o->name, err);
		if (v->lock_fd < 0)
			return -1;
	}
	vmm_log(v, "starting VM %s (termvisor %s, pid %ld)", v->name, PACKAGE_VERSION,
		(long)getpid());
	if (setup_signals(v) < 0)
		return tv_errno(err, "cannot set up the VM process (signalfd)");
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		if (pipe2(v->con[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
			return tv_errno(err, "cannot set up the VM process (pipe)");
		else /* best effort: the default holds 64 KiB */
			(void)fcntl(v->con[i].pipe[1], F_SETPIPE_SZ, VMM_OUTPUT_PIPE);
	v->primary = primary_console(o->cfg.cmdline);
	v->term.shown = v->primary;
	/* In the foreground the terminal is every console's until a client
	 * attaches. */
	if (v->term.tty) {
		term_size(v, &rows, &cols);
		for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
			v->con[i].rows = rows, v->con[i].cols = cols;
	}
	if (o->name != NULL) {
		term_size(v, &rows, &cols);
		screens_new(v, rows, cols);
	}
	o->cfg.console = (struct console_sink){.output = on_guest_output, .ctx = v};
	o->cfg.vcpu_nice = VCPU_NICE;
	/* Nobody could resume an unnamed run: its disks report errors. */
	if (o->name == NULL)
		for (size_t i = 0; i < o->cfg.ndisks; i++)
			o->disks[i].on_error = VM_ON_ERROR_REPORT;
	o->cfg.disks = o->disks;
	/* Lab NICs: their switch's socket, the switch started when none runs. */
	if (lab_nics_prepare(o->nics, o->cfg.nnics, err) < 0)
		return -1;
	if (vmm_snapshot_startup(v, err) < 0 || machine_new(v, err) < 0 ||
	    vmm_snapshot_pending(v, err) < 0)
		return -1;
	if (o->name != NULL) {
		struct control_conf cc = {.name = o->name, .verbs = vmm_verbs, .vm = v,
					  .state = vmm_state, .port = vmm_port_of,
					  .resized = console_resized};
		for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
			cc.cb[i] = v->con[i].cb;
		/* Clears what a crash left (the old socket among it) first. */
		if (vm_runtime_begin(&v->paths, o->name, err) < 0)
			return -1;
		v->sock = paths_vm_runtime(&v->paths, o->name, "sock");
		cc.path = v->sock;
		v->ctl = control_new(&cc, err);
		if (v->ctl == NULL)
			return -1;
	}
	v->started = time(NULL);
	v->started_ns = monotonic_ns();
	v->stop_deadline_ns = UINT64_MAX;
	/* Set up: confined from before the guest's first instruction. */
	if (confine(v, err) < 0)
		return -1;
	term_raw(&v->term);
	if (vm_start(v->vm, err) < 0)
		return -1;
	return 0;
}

static void teardown(struct vmm *v, bool crashed)
{
	machine_free(v);
	term_restore(&v->term);
	if (v->ctl || v->lock_fd >= 0)
		vm_runtime_end(&v->paths, v->name, crashed);
	/* Unlocked before the clients see the connection close: when `stop`
	 * returns, the VM reads as stopped and may be started again. */
	if (v->lock_fd >= 0)
		close(v->lock_fd);
	control_free(v->ctl);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++) {
		console_buf_free(v->con[i].cb);
		proto_buf_free(&v->con[i].input);
		proto_buf_free(&v->con[i].held);
	}
	free(v->sock);
	free(v->restore_dir);
	free(v->restore_tag);
	if (v->have_paths)
		paths_free(&v->paths);
	if (v->sigfd >= 0)
		close(v->sigfd);
	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		for (int k = 0; k < 2; k++)
			if (v->con[i].pipe[k] >= 0)
				close(v->con[i].pipe[k]);
}

int vmm_main(struct vmm_opts *o)
{
	struct vmm v = {.o = o, .name = o->name ? o->name : "run", .lock_fd = -1,
			.sigfd = -1, .log_fd = -1, .held_lock = PTHREAD_MUTEX_INITIALIZER};
	char reason[256];
	struct tv_err err;
	bool crashed;
	int status;

	for (unsigned i = 0; i < CONSOLE_NPORTS; i++)
		v.con[i].pipe[0] = v.con[i].pipe[1] = -1;
	v.term.on = !o->detach;
	v.term.tty = v.term.on && isatty(0) == 1;
	v.term.stdin_open = v.term.on;
	v.selftest = getenv("TERMVISOR_SANDBOX_SELFTEST") != NULL &&
		     strcmp(getenv("TERMVISOR_SANDBOX_SELFTEST"), "1") == 0;
	if (setup(&v, &err) < 0) {
		vmm_log(&v, "start failed: %s", err.msg);
		if (o->detach)
			report(&v, -1, err.msg);
		else {
			term_restore(&v.term);
			fprintf(stderr, "termvisor run: %s\n", err.msg);
		}
		teardown(&v, false);
		return 1;
	}
	vmm_log(&v, "running");
	report(&v, 0, NULL);
	sandbox_selftest(&v);

	run_loop(&v);
	if (v.vm != NULL) {
		if (v.quit || v.signal)
			vm_request_stop(v.vm);
		vm_wait(v.vm);
	}
	drain_all_output(&v);
	status = outcome(&v, reason, sizeof(reason), &crashed);
	/* The engine's whole account (a register dump) first, so the reason is
	 * among the last lines of the log. */
	if (v.log_fd >= 0 && crashed && v.vm && strchr(vm_exit_message(v.vm), '\n')) {
		const char *d = vm_exit_message(v.vm);
		(void)!write(v.log_fd, "\n", 1);
		(void)!write(v.log_fd, d, strlen(d));
	}
	if (v.log_fd >= 0 && crashed)
		log_last_lines(&v);
	vmm_log(&v, "VM ended: %s", reason);
	if (v.term.on) {
		term_restore(&v.term);
		say_outcome(&v);
	}
	if (v.ctl) {
		control_event(v.ctl, PROTO_EV_EXITED, reason);
		control_flush(v.ctl, 500);
	}
	teardown(&v, crashed);
	vmm_log(&v, "VM process exits (status %d)", status);
	return status;
}
