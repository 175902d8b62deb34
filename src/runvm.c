/* The foreground engine: the VM, its serial console on stdin/stdout, and the
 * command line between `termvisor run` and termvisor-engine (runvm.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <termios.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/runvm.h"
#include "vm/layout.h"
#include "common/util.h"

#define ENGINE_NAME "termvisor-engine"

enum {
	RUN_EXIT_TRIPLE_FAULT = 3,
	RUN_EXIT_CRASH = 4,
	RUN_EXIT_REBOOT = 5,
	RUN_EXIT_DEBUG_BASE = 64,
};

#define ESCAPE_KEY 0x01 /* Ctrl-a */

/* The console: where the guest's bytes go and where typed bytes come from. */
struct run_console {
	bool tty;
	bool escape; /* Ctrl-a seen, waiting for the command key */
	struct termios saved;
	bool raw;
	bool quit;
	uint8_t pending[4096]; /* typed, not yet taken by the UART */
	size_t npending;
	bool stdin_open;
};

/* One per process: signal handlers write the signal number here. */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	uint8_t b = (uint8_t)sig;

	(void)!write(sig_pipe[1], &b, 1);
}

static void console_out(void *ctx, const void *bytes, size_t len)
{
	(void)ctx;
	(void)write_full(1, bytes, len);
}

static void console_raw(struct run_console *c)
{
	struct termios t;

	if (!c->tty || c->raw || tcgetattr(0, &c->saved) < 0)
		return;
	t = c->saved;
	cfmakeraw(&t);
	/* Keep output processing so engine messages still start at column 0;
	 * guests send \r\n themselves, which OPOST leaves alone. */
	t.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(0, TCSANOW, &t) == 0)
		c->raw = true;
}

static void console_restore(struct run_console *c)
{
	if (c->raw)
		tcsetattr(0, TCSANOW, &c->saved);
	c->raw = false;
}

static void escape_help(void)
{
	static const char help[] = "\r\ntermvisor console keys:\r\n"
				   "  Ctrl-a x   quit (the VM is stopped)\r\n"
				   "  Ctrl-a h   this help\r\n"
				   "  Ctrl-a a   send Ctrl-a to the guest\r\n";

	(void)write_full(2, help, sizeof(help) - 1);
}

/* Filters the Ctrl-a escapes out of typed bytes (only on a terminal). */
static void console_typed(struct run_console *c, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];
		if (c->tty && c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				c->quit = true;
				return;
			}
			if (b == 'h' || b == 'H' || b == '?') {
				escape_help();
				continue;
			}
			if (b != 'a' && b != ESCAPE_KEY)
				continue;
			b = ESCAPE_KEY;
		} else if (c->tty && b == ESCAPE_KEY) {
			c->escape = true;
			continue;
		}
		if (c->npending < sizeof(c->pending))
			c->pending[c->npending++] = b;
	}
}

static void console_flush_input(struct run_console *c, struct vm *vm)
{
	size_t n;

	if (c->npending == 0)
		return;
	n = console_input(vm, c->pending, c->npending);
	memmove(c->pending, c->pending + n, c->npending - n);
	c->npending -= n;
}

/* Pumps stdin into the guest until the VM ends, the user quits or a signal
 * arrives. Returns the signal number, or 0. */
static int console_loop(struct run_console *c, struct vm *vm)
{
	for (;;) {
		struct pollfd p[3] = {
			{.fd = vm_exit_fd(vm), .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
			{.fd = c->stdin_open && c->npending == 0 ? 0 : -1, .events = POLLIN},
		};
		/* While the guest is not reading, offer the rest again soon. */
		int rc = poll(p, 3, c->npending ? 10 : -1);
		if (rc < 0 && errno != EINTR)
			return 0;
		if (p[0].revents)
			return 0;
		if (p[1].revents) {
			uint8_t sig = 0;
			(void)!read(sig_pipe[0], &sig, 1);
			return sig;
		}
		if (p[2].revents) {
			uint8_t buf[512];
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				c->stdin_open = false;
			else if (n > 0)
				console_typed(c, buf, (size_t)n);
			if (c->quit)
				return 0;
		}
		console_flush_input(c, vm);
	}
}

static int exit_status(struct vm *vm, struct run_console *c, int sig)
{
	const char *msg = vm_exit_message(vm);

	if (sig)
		return 128 + sig;
	if (c->quit)
		return TV_EXIT_OK;
	switch (vm_exit_reason(vm)) {
	case VM_EXIT_POWEROFF:
		return TV_EXIT_OK;
	case VM_EXIT_DEBUG:
		return vm_exit_code(vm) == 0 ? 0 : RUN_EXIT_DEBUG_BASE + vm_exit_code(vm) % 64;
	case VM_EXIT_REBOOT:
		fprintf(stderr, "termvisor run: the guest reset (%s)\n", msg);
		return RUN_EXIT_REBOOT;
	case VM_EXIT_TRIPLE_FAULT:
		fprintf(stderr, "termvisor run: guest triple fault\n%s\n", msg);
		return RUN_EXIT_TRIPLE_FAULT;
	case VM_EXIT_CRASH:
		fprintf(stderr, "termvisor run: guest crashed: %s\n", msg);
		return RUN_EXIT_CRASH;
	case VM_EXIT_HOST_ERROR:
		fprintf(stderr, "termvisor run: host error: %s\n", msg);
		return TV_EXIT_ERROR;
	default:
		return TV_EXIT_OK;
	}
}

static void signals_init(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed stdout drops guest output; it does not kill the VM. */
	signal(SIGPIPE, SIG_IGN);
}

int runvm(struct runvm_opts *o)
{
	struct run_console c = {.tty = isatty(0) == 1, .stdin_open = true};
	struct tv_err err;
	struct vm *vm;
	int sig, status;

	o->cfg.console = (struct console_sink){.output = console_out};
	o->cfg.disks = o->disks;
	signals_init();
	for (;;) {
		if (vm_new(&vm, &o->cfg, &err) < 0) {
			console_restore(&c);
			fprintf(stderr, "termvisor run: %s\n", err.msg);
			return TV_EXIT_ERROR;
		}
		console_raw(&c);
		if (vm_start(vm, &err) < 0) {
			console_restore(&c);
			fprintf(stderr, "termvisor run: %s\n", err.msg);
			vm_free(vm);
			return TV_EXIT_ERROR;
		}
		sig = console_loop(&c, vm);
		vm_request_stop(vm);
		vm_wait(vm);
		if (!sig && !c.quit && vm_exit_reason(vm) == VM_EXIT_REBOOT && !o->reboot_exit) {
			vm_free(vm);
			continue;
		}
		console_restore(&c);
		status = exit_status(vm, &c, sig);
		vm_free(vm);
		return status;
	}
}

/* ---- the command line between `termvisor run` and termvisor-engine ---- */

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_APPEND,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DISK,
	OPT_DISK_FORMAT,
	OPT_DISK_READONLY,
	OPT_DISK_AIO,
	OPT_DISK_SERIAL,
	OPT_KERNEL_CACHE,
	OPT_REBOOT_EXIT,
	OPT_NO_EXTRACT,
	OPT_DEBUG_EXIT,
	OPT_VERBOSE,
};

static const struct option engine_opts[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"append", required_argument, NULL, OPT_APPEND},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"disk", required_argument, NULL, OPT_DISK},
	{"disk-format", required_argument, NULL, OPT_DISK_FORMAT},
	{"disk-readonly", no_argument, NULL, OPT_DISK_READONLY},
	{"disk-aio", required_argument, NULL, OPT_DISK_AIO},
	{"disk-serial", required_argument, NULL, OPT_DISK_SERIAL},
	{"kernel-cache", required_argument, NULL, OPT_KERNEL_CACHE},
	{"on-reboot-exit", no_argument, NULL, OPT_REBOOT_EXIT},
	{"no-extract", no_argument, NULL, OPT_NO_EXTRACT},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{0},
};

struct argv_buf {
	char **v;
	size_t n, cap;
};

static void argv_add(struct argv_buf *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xreallocarray(a->v, a->cap, sizeof(char *));
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

static void argv_opt(struct argv_buf *a, const char *name, const char *value)
{
	if (value == NULL)
		return;
	argv_add(a, name);
	argv_add(a, value);
}

static void argv_free(struct argv_buf *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

/* Every setting as its own argument: paths may hold any character. */
static void engine_argv(struct argv_buf *a, const char *path, const struct runvm_opts *o)
{
	const struct vm_config *c = &o->cfg;
	char num[32];

	argv_add(a, path);
	argv_opt(a, "--kernel", c->kernel);
	argv_opt(a, "--initrd", c->initrd);
	argv_opt(a, "--append", c->cmdline);
	snprintf(num, sizeof(num), "%u", c->cpus);
	argv_opt(a, "--cpus", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)c->memory);
	argv_opt(a, "--memory", num);
	for (size_t i = 0; i < c->ndisks; i++) {
		argv_opt(a, "--disk", o->disks[i].path);
		argv_opt(a, "--disk-format", o->disks[i].format);
		if (o->disks[i].readonly)
			argv_add(a, "--disk-readonly");
		if (o->disks[i].aio != VM_AIO_DEFAULT)
			argv_opt(a, "--disk-aio",
				 o->disks[i].aio == VM_AIO_THREADS ? "threads" : "io_uring");
		argv_opt(a, "--disk-serial", o->disks[i].serial);
	}
	argv_opt(a, "--kernel-cache", c->kernel_cache);
	if (o->reboot_exit)
		argv_add(a, "--on-reboot-exit");
	if (c->bzimage_entry)
		argv_add(a, "--no-extract");
	if (c->debug_exit)
		argv_add(a, "--debug-exit");
	if (c->verbose)
		argv_add(a, "--verbose");
}

char *runvm_engine_path(void)
{
	const char *env = getenv("TERMVISOR_ENGINE");
	char buf[4096];
	ssize_t n;

	if (env != NULL && *env != '\0')
		return xstrdup(env);
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		char *slash = strrchr(buf, '/');
		if (slash != NULL) {
			char *beside = xasprintf("%.*s/" ENGINE_NAME, (int)(slash - buf), buf);
			if (access(beside, X_OK) == 0)
				return beside;
			free(beside);
		}
	}
#ifdef TV_PKGLIBEXECDIR
	return xstrdup(TV_PKGLIBEXECDIR "/" ENGINE_NAME);
#else
	return xstrdup(ENGINE_NAME);
#endif
}

/* Linked statically, this program maps no shared library: only the code the
 * VM runs becomes resident, as in termvisor-engine, and staying saves the
 * exec (1 ms of a 3 ms start here). */
static bool self_static(void)
{
	return getauxval(AT_BASE) == 0; /* no program interpreter */
}

void runvm_exec(const struct runvm_opts *o)
{
	struct argv_buf a = {0};
	const char *env = getenv("TERMVISOR_ENGINE");
	char *path;

	if ((env == NULL || *env == '\0') && self_static())
		return;
	path = runvm_engine_path();
	engine_argv(&a, path, o);
	fflush(NULL);
	execv(path, a.v);
	if (o->cfg.verbose)
		fprintf(stderr, "termvisor: %s: %s; running the VM in this process\n", path,
			strerror(errno));
	argv_free(&a);
	free(path);
}

static int engine_usage(const char *what)
{
	fprintf(stderr, ENGINE_NAME ": %s (this program is started by `termvisor run`)\n", what);
	return TV_EXIT_USAGE;
}

static int engine_number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s || v > max)
		return -1;
	*out = v;
	return 0;
}

int runvm_main(int argc, char **argv)
{
	struct runvm_opts o;
	struct vm_disk *last = NULL;
	uint64_t v;
	int ch;

	memset(&o, 0, sizeof(o));
	o.cfg.cpus = 1;
	o.cfg.memory = 512 * MIB;
	while ((ch = getopt_long(argc, argv, "", engine_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_KERNEL: o.cfg.kernel = optarg; break;
		case OPT_INITRD: o.cfg.initrd = optarg; break;
		case OPT_APPEND: o.cfg.cmdline = optarg; break;
		case OPT_CPUS:
			if (engine_number(optarg, 1u << 16, &v) < 0)
				return engine_usage("--cpus: expected a number");
			o.cfg.cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			if (engine_number(optarg, UINT64_MAX, &v) < 0)
				return engine_usage("--memory: expected a number of bytes");
			o.cfg.memory = v;
			break;
		case OPT_DISK:
			if (o.cfg.ndisks == VMDEF_MAX_DISKS)
				return engine_usage("too many disks");
			last = &o.disks[o.cfg.ndisks++];
			last->path = optarg;
			break;
		case OPT_DISK_FORMAT:
		case OPT_DISK_READONLY:
		case OPT_DISK_AIO:
		case OPT_DISK_SERIAL:
			if (last == NULL)
				return engine_usage("a disk option before any --disk");
			if (ch == OPT_DISK_FORMAT)
				last->format = optarg;
			else if (ch == OPT_DISK_SERIAL)
				last->serial = optarg;
			else if (ch == OPT_DISK_READONLY)
				last->readonly = true;
			else if (strcmp(optarg, "threads") == 0)
				last->aio = VM_AIO_THREADS;
			else if (strcmp(optarg, "io_uring") == 0)
				last->aio = VM_AIO_IO_URING;
			else
				return engine_usage("--disk-aio: expected threads or io_uring");
			break;
		case OPT_KERNEL_CACHE: o.cfg.kernel_cache = optarg; break;
		case OPT_REBOOT_EXIT: o.reboot_exit = true; break;
		case OPT_NO_EXTRACT: o.cfg.bzimage_entry = true; break;
		case OPT_DEBUG_EXIT: o.cfg.debug_exit = true; break;
		case OPT_VERBOSE: o.cfg.verbose = true; break;
		default: return engine_usage("unknown option");
		}
	}
	if (optind != argc || o.cfg.kernel == NULL)
		return engine_usage("expected --kernel FILE and options only");
	return runvm(&o);
}
