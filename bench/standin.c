/* A stand-in VM process for timing the interface on a host without
 * /dev/kvm (bench/console-ui.py with CONSOLE_UI_STANDIN=1): the VM
 * process's own control socket, console screen and pacing (src/vmm/control.c,
 * console-buf.c, the verb table's checks), with the guest replaced by a
 * generator in this process that speaks like the demo guest's shell:
 *   stress console   numbered lines as fast as this loop makes them, until a key
 *   stress echo      the same below the top row, each key typed shown on the
 *                    top row at once, until Ctrl-C
 * What it leaves out is the guest and the way to it (a vCPU, virtio, the
 * pipe): the figures it gives are the host side of the path, not a VM's.
 * usage: standin NAME   (TERMVISOR_HOME as for termvisor; FAKE_RATE=bytes/s
 * limits the flood) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/paths.h"
#include "src/core/runtime.h"
#include "src/vmm/console-buf.h"
#include "src/vmm/control.h"
#include "src/vmm/verbs.h"

#define PROMPT "\033[1;32mdemo\033[0m$ "
#define CHUNK 4096 /* a virtio console's trip */
#define LOG_MAX (8u << 20)
#define CTRL_C 3

enum mode { SHELL, FLOOD, ECHO };

struct standin {
	const char *name;
	struct control *ctl;
	struct console_buf *cb;
	int log_fd;
	size_t logged;
	bool quit, paused;
	enum mode mode;
	char line[128];
	size_t len;
	struct proto_buf keys; /* typed, not yet taken */
	uint64_t lines, nkeys, t0_ns, sent, rate;
	time_t started;
};

static void say(struct standin *s, const char *text, size_t len)
{
	control_console_output(s->ctl, CONSOLE_SERIAL, text, len);
	if (s->log_fd >= 0 && s->logged < LOG_MAX) {
		size_t k = MIN(len, LOG_MAX - s->logged);
		(void)!write(s->log_fd, text, k);
		s->logged += k;
	}
}

static void sayf(struct standin *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(struct standin *s, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) >= 0)
		say(s, text, strlen(text));
	va_end(ap);
	free(text);
}

static void run_line(struct standin *s)
{
	s->line[s->len] = '\0';
	s->len = 0;
	say(s, "\r\n", 2);
	if (strcmp(s->line, "stress console") == 0 || strcmp(s->line, "stress echo") == 0) {
		s->mode = s->line[7] == 'c' ? FLOOD : ECHO;
		sayf(s, "%s on 1 vCPU; press %s to stop\r\n", s->line,
		     s->mode == ECHO ? "Ctrl-C" : "any key");
		if (s->mode == ECHO)
			say(s, "\033[2J\033[2r\033[999;1H", 17);
		s->lines = s->nkeys = s->sent = 0;
		s->t0_ns = monotonic_ns();
		return;
	}
	if (s->line[0])
		sayf(s, "%s: not in this stand-in (stress console, stress echo)\r\n", s->line);
	say(s, PROMPT, strlen(PROMPT));
}

static void stop_stress(struct standin *s)
{
	uint64_t ms = (monotonic_ns() - s->t0_ns) / 1000000;

	if (s->mode == ECHO)
		sayf(s, "\033[r\033[999;1H\r\n%llu keys echoed\r\n", (unsigned long long)s->nkeys);
	sayf(s, "stress: stopped after %llu.%03llu s: %llu lines, 0 port accesses\r\n%s",
	     (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000),
	     (unsigned long long)s->lines, PROMPT);
	s->mode = SHELL;
}

/* The keys typed, as the demo shell and `stress` take them. */
static void take_keys(struct standin *s)
{
	for (size_t i = 0; i < s->keys.len; i++) {
		unsigned char k = s->keys.data[i];
		char echo[32];
		int n;

		if (s->mode == FLOOD || (s->mode == ECHO && k == CTRL_C)) {
			stop_stress(s);
		} else if (s->mode == ECHO) {
			s->nkeys++;
			n = snprintf(echo, sizeof(echo), "\0337\033[1;1H\033[Kkey %c\0338",
				     k > ' ' && k < 127 ? k : '?');
			say(s, echo, (size_t)n);
		} else if (k == '\r') {
			run_line(s);
		} else if (k >= ' ' && k < 127 && s->len + 1 < sizeof(s->line)) {
			s->line[s->len++] = (char)k;
			say(s, (const char *)&k, 1);
		}
	}
	proto_buf_consume(&s->keys, s->keys.len);
}

/* One trip's worth of lines, unless the rate says to wait; returns the
 * milliseconds until the next may go. */
static int flood(struct standin *s)
{
	char chunk[CHUNK + 128];
	size_t n = 0;

	if (s->rate) {
		uint64_t due = s->t0_ns + s->sent * 1000000000ull / s->rate, now = monotonic_ns();
		if (now < due)
			return (int)((due - now) / 1000000) + 1;
	}
	while (n < CHUNK) {
		int k = snprintf(chunk + n, sizeof(chunk) - n,
				 "stress: line %010llu, the guest writes as fast as the %s takes it\r\n",
				 (unsigned long long)++s->lines, s->mode == ECHO ? "uart" : "UART");
		n += (size_t)k;
	}
	say(s, chunk, n);
	s->sent += n;
	return 0;
}

/* ---- the verbs: the VM process's table, with these handlers ---- */

static enum verb_result v_status(struct verb_call *call)
{
	struct standin *s = call->vm;
	struct proto_status st;
	int rows, cols;

	memset(&st, 0, sizeof(st));
	st.state = s->paused ? PROTO_STATE_PAUSED : PROTO_STATE_RUNNING;
	st.clients = (uint16_t)control_attached(call->ctl);
	st.pid = (uint32_t)getpid();
	st.cpus = 1;
	st.memory = 64u << 20;
	st.started = (uint64_t)s->started;
	st.uptime_ms = (uint64_t)(time(NULL) - s->started) * 1000;
	console_buf_size(s->cb, &rows, &cols);
	st.rows = (uint16_t)rows;
	st.cols = (uint16_t)cols;
	snprintf(st.name, sizeof(st.name), "%s", s->name);
	proto_put_status(call->out, &st);
	return VERB_REPLIED;
}

static enum verb_result v_input(struct verb_call *call)
{
	struct standin *s = call->vm;

	proto_buf_append(&s->keys, call->f->payload, call->f->len);
	return VERB_SILENT;
}

static enum verb_result v_pause(struct verb_call *call)
{
	struct standin *s = call->vm;

	s->paused = call->f->type == PROTO_PAUSE;
	control_event(call->ctl, s->paused ? PROTO_EV_PAUSED : PROTO_EV_RESUMED, "");
	return VERB_OK;
}

static enum verb_result v_stop(struct verb_call *call)
{
	struct standin *s = call->vm;

	s->quit = true;
	return VERB_OK;
}

static enum verb_result v_none(struct verb_call *call)
{
	call->code = PROTO_E_UNSUPPORTED;
	return tv_errf(&call->err, "%s: not in the stand-in VM process", proto_type_name(call->f->type)),
	       VERB_ERROR;
}

static struct verb verbs[32];

static void verbs_init(void)
{
	size_t n = 0;

	for (const struct verb *v = vmm_verbs; v->type != 0 && n + 1 < ARRAY_SIZE(verbs); v++) {
		struct verb *w = &verbs[n++];
		*w = *v;
		switch (v->type) {
		case PROTO_STATUS: w->handler = v_status; break;
		case PROTO_INPUT: w->handler = v_input; break;
		case PROTO_PAUSE:
		case PROTO_RESUME: w->handler = v_pause; break;
		case PROTO_STOP:
		case PROTO_FORCE_OFF: w->handler = v_stop; break;
		case PROTO_HELLO:
		case PROTO_ATTACH:
		case PROTO_WINSIZE:
		case PROTO_DETACH:
		case PROTO_SUBSCRIBE:
		case PROTO_PACE: break; /* the connection's own: control.c */
		default: w->handler = v_none;
		}
	}
	verbs[n].type = 0;
}

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
	signalled = sig;
}

int main(int argc, char **argv)
{
	struct standin s = {.log_fd = -1};
	struct tv_paths paths;
	struct tv_err err;
	char *sock, *data, *log;

	if (argc != 2 || vm_name_check(argv[1], &err) < 0) {
		fprintf(stderr, "usage: standin NAME (a VM name)\n");
		return 2;
	}
	s.name = argv[1];
	s.rate = getenv("FAKE_RATE") ? strtoull(getenv("FAKE_RATE"), NULL, 10) : 0;
	if (paths_init(&paths, &err) < 0 || paths_runtime_ensure(&paths, &err) < 0)
		goto fail;
	/* The lock is held until the process ends, as a VM process's. */
	if (vm_lock_take(&paths, s.name, &err) < 0 || vm_runtime_begin(&paths, s.name, &err) < 0)
		goto fail;
	data = paths_vm_data(&paths, s.name);
	if (paths_mkdir(data, 0700, &err) < 0)
		goto fail;
	log = xasprintf("%s/vm.log", data);
	s.log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	verbs_init();
	s.cb = console_buf_new(CONSOLE_DEFAULT_ROWS, CONSOLE_DEFAULT_COLS, CONSOLE_DEFAULT_SCROLLBACK);
	sock = paths_vm_runtime(&paths, s.name, "sock");
	s.ctl = control_new(&(struct control_conf){.path = sock, .name = s.name,
						   .cb = {[CONSOLE_SERIAL] = s.cb}, .verbs = verbs,
						   .vm = &s},
			    &err);
	if (s.ctl == NULL)
		goto fail;
	s.started = time(NULL);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	say(&s, "the stand-in VM process: no guest, a generator\r\n" PROMPT,
	    strlen("the stand-in VM process: no guest, a generator\r\n" PROMPT));
	while (!s.quit && !signalled) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS + 1];
		size_t n = control_pollfds(s.ctl, pfd, ARRAY_SIZE(pfd));
		int timeout = control_timeout(s.ctl), wait = -1;

		if (s.mode != SHELL && !s.paused)
			wait = flood(&s);
		if (wait >= 0 && (timeout < 0 || wait < timeout))
			timeout = wait;
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		control_handle(s.ctl, pfd, n);
		take_keys(&s);
	}
	control_event(s.ctl, PROTO_EV_EXITED, "the stand-in was stopped");
	control_flush(s.ctl, 500);
	vm_runtime_end(&paths, s.name, false);
	control_free(s.ctl);
	console_buf_free(s.cb);
	return 0;
fail:
	fprintf(stderr, "standin: %s\n", err.msg);
	return 1;
}
