/* `termvisor run`: the engine in the foreground, the guest's serial console on
 * stdin/stdout. Exit statuses (also in termvisor(1)):
 *   0   the guest powered off (or wrote 0 to the debug-exit port), or Ctrl-a x
 *   1   host error or bad input (the message says which)
 *   2   bad command line
 *   3   the guest triple-faulted (a register dump goes to stderr)
 *   4   the guest crashed the vCPU (emulation/internal error, failed entry)
 *   5   the guest reset itself and --on-reboot exit was given
 *   64+v  the guest wrote v (1..63, taken mod 64) to the debug-exit port
 *   128+n  stopped by signal n */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/paths.h"
#include "src/vmdef.h"
#include "vm/util.h"
#include "vm/vm.h"

enum {
	RUN_EXIT_TRIPLE_FAULT = 3,
	RUN_EXIT_CRASH = 4,
	RUN_EXIT_REBOOT = 5,
	RUN_EXIT_DEBUG_BASE = 64,
};

#define ESCAPE_KEY 0x01 /* Ctrl-a */

struct run_opts {
	struct vm_config cfg;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	bool reboot_exit;
	struct vmdef def;
	bool have_def;
	char *cache_dir;
};

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

	if (!c->tty || tcgetattr(0, &c->saved) < 0)
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

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A closed stdout drops guest output; it does not kill the VM. */
	signal(SIGPIPE, SIG_IGN);
}

/* Runs the VM, restarting it on a guest reset unless told to exit. */
static int run_vm(struct run_opts *o)
{
	struct run_console c = {.tty = isatty(0) == 1, .stdin_open = true};
	struct tv_paths paths;
	struct tv_err err;
	struct vm *vm;
	int sig, status;

	/* vmlinux extracted from a bzImage is kept in the cache directory. */
	if (paths_init(&paths, &err) == 0) {
		o->cfg.kernel_cache = o->cache_dir = xstrdup(paths.cache_dir);
		paths_free(&paths);
	}
	o->cfg.console = (struct console_sink){.output = console_out};
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

/* FILE[,format=qcow2|raw][,readonly] */
static int disk_parse(const struct cmd_entry *self, char *arg, struct vm_disk *d)
{
	char *save = NULL, *tok = strtok_r(arg, ",", &save);

	memset(d, 0, sizeof(*d));
	if (tok == NULL)
		return cmd_usage_error(self, "--disk: expected FILE[,format=qcow2|raw][,readonly]");
	d->path = tok;
	while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
		if (strcmp(tok, "readonly") == 0)
			d->readonly = true;
		else if (strcmp(tok, "format=qcow2") == 0 || strcmp(tok, "format=raw") == 0)
			d->format = tok + 7;
		else
			return cmd_usage_error(self, "--disk %s: unknown option '%s' (expected "
						     "format=qcow2, format=raw or readonly)",
					       d->path, tok);
	}
	return 0;
}

static int cpus_parse(const struct cmd_entry *self, const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > VMDEF_MAX_CPUS)
		return cmd_usage_error(self, "--cpus %s: expected a number from 1 to %d", s,
				       VMDEF_MAX_CPUS);
	*out = (unsigned)v;
	return 0;
}

/* `run NAME`: the definition's settings, which options then override. */
static int def_load(struct run_opts *o, const char *name)
{
	struct tv_paths paths;
	struct tv_err err;
	char *conf = NULL, *data = NULL;
	int rc = -1;

	if (vm_name_check(name, &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor run: %s\n", err.msg);
		return -1;
	}
	conf = paths_vm_conf(&paths, name);
	data = paths_vm_data(&paths, name);
	if (access(conf, F_OK) != 0)
		fprintf(stderr, "termvisor run: no VM named '%s' (%s)\n", name, conf);
	else if (vmdef_load(conf, data, &o->def, NULL, NULL, &err) < 0)
		fprintf(stderr, "termvisor run: %s\n", err.msg);
	else
		rc = 0;
	free(conf);
	free(data);
	paths_free(&paths);
	if (rc < 0)
		return -1;
	o->have_def = true;
	o->cfg.cpus = o->def.cpus;
	o->cfg.memory = o->def.memory;
	o->cfg.kernel = o->def.kernel ? vmdef_path(&o->def, o->def.kernel) : NULL;
	o->cfg.initrd = o->def.initrd ? vmdef_path(&o->def, o->def.initrd) : NULL;
	o->cfg.cmdline = o->def.cmdline;
	for (size_t i = 0; i < o->def.ndisks && i < VMDEF_MAX_DISKS; i++) {
		o->disks[i].path = vmdef_path(&o->def, o->def.disks[i].file);
		o->disks[i].format = disk_format_name(o->def.disks[i].format);
		o->disks[i].readonly = o->def.disks[i].readonly;
	}
	o->cfg.ndisks = MIN(o->def.ndisks, (size_t)VMDEF_MAX_DISKS);
	return 0;
}

static void def_free(struct run_opts *o)
{
	if (!o->have_def)
		return;
	free((char *)o->cfg.kernel);
	free((char *)o->cfg.initrd);
	for (size_t i = 0; i < o->def.ndisks && i < VMDEF_MAX_DISKS; i++)
		free((char *)o->disks[i].path);
	vmdef_free(&o->def);
}

static int cmd_run_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'i'},
		{"append", required_argument, NULL, 'a'}, {"cpus", required_argument, NULL, 'c'},
		{"memory", required_argument, NULL, 'm'}, {"disk", required_argument, NULL, 'd'},
		{"on-reboot", required_argument, NULL, 'r'},
		{"no-extract", no_argument, NULL, 'X'},
		{"verbose", no_argument, NULL, 'v'},	  {"help", no_argument, NULL, 'h'},
		{0}};
	const char *kernel = NULL, *initrd = NULL, *append = NULL, *memory = NULL;
	const char *cpus = NULL;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	size_t ndisks = 0;
	struct run_opts o;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	o.cfg.cpus = 1;
	o.cfg.memory = 512 * 1024 * 1024ULL;
	while ((ch = getopt_long(argc, argv, "k:i:a:c:m:d:r:vhX", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'a': append = optarg; break;
		case 'c': cpus = optarg; break;
		case 'm': memory = optarg; break;
		case 'd':
			if (ndisks == VMDEF_MAX_DISKS)
				return cmd_usage_error(self, "at most %d disks", VMDEF_MAX_DISKS);
			if (disk_parse(self, optarg, &disks[ndisks]) != 0)
				return TV_EXIT_USAGE;
			ndisks++;
			break;
		case 'r':
			if (strcmp(optarg, "exit") == 0)
				o.reboot_exit = true;
			else if (strcmp(optarg, "restart") != 0)
				return cmd_usage_error(self, "--on-reboot %s: expected restart or exit",
						       optarg);
			break;
		case 'v': o.cfg.verbose = true; break;
		case 'X': o.cfg.bzimage_entry = true; break;
		case 'h':
			cmd_print_usage(self, stdout);
			printf("\n%s", self->options);
			return TV_EXIT_OK;
		default: return cmd_usage_error(self, "unknown option");
		}
	}
	if (optind < argc - 1)
		return cmd_usage_error(self, "expected at most one VM name");
	if (optind == argc && kernel == NULL)
		return cmd_usage_error(self, "expected a VM name or --kernel FILE");
	if (optind == argc - 1 && def_load(&o, argv[optind]) < 0)
		return TV_EXIT_ERROR;
	if (cpus && cpus_parse(self, cpus, &o.cfg.cpus) != 0)
		return TV_EXIT_USAGE;
	if (memory && parse_size(memory, &o.cfg.memory) < 0)
		return cmd_usage_error(self, "--memory %s: expected a size like 512M or 2G", memory);
	if (kernel)
		o.cfg.kernel = kernel;
	if (initrd)
		o.cfg.initrd = initrd;
	if (append)
		o.cfg.cmdline = append;
	if (ndisks > 0) {
		memcpy(o.disks, disks, sizeof(disks));
		o.cfg.ndisks = ndisks;
	}
	o.cfg.disks = o.disks;
	if (o.cfg.kernel == NULL) {
		fprintf(stderr, "termvisor run: VM %s has no kernel; give one with --kernel FILE\n",
			argv[optind]);
		rc = TV_EXIT_ERROR;
	} else {
		rc = run_vm(&o);
	}
	def_free(&o);
	free(o.cache_dir);
	return rc;
}

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "[NAME] [--kernel FILE] [--initrd FILE] [--append CMDLINE] [--cpus N] "
		 "[--memory SIZE] [--disk FILE[,format=F][,readonly]]... "
		 "[--on-reboot restart|exit]",
	.summary = "Run a VM in the foreground with its serial console on this terminal.",
	.options = "  -k, --kernel FILE      bzImage, or ELF vmlinux/guest with a PVH note\n"
		   "  -i, --initrd FILE      initial ramdisk\n"
		   "  -a, --append CMDLINE   kernel command line\n"
		   "  -c, --cpus N           vCPUs, 1 to 64 (default 1)\n"
		   "  -m, --memory SIZE      RAM, like 512M or 2G (default 512M)\n"
		   "  -d, --disk FILE[,format=qcow2|raw][,readonly]   a virtio disk (repeatable)\n"
		   "  -r, --on-reboot restart|exit   what a guest reset does (default restart)\n"
		   "      --no-extract       boot a bzImage through its own 64-bit entry, not\n"
		   "                         through PVH from its payload extracted on the host\n"
		   "  -v, --verbose          engine notes on stderr\n"
		   "Console keys: Ctrl-a x quits, Ctrl-a h helps, Ctrl-a a sends Ctrl-a.\n"
		   "Exit status: 0 guest powered off, 1 host error or bad input, 2 usage,\n"
		   "3 triple fault, 4 guest crash, 5 guest reset with --on-reboot exit,\n"
		   "64+v debug-exit port value v (1-63), 128+n signal n.\n",
	.exec = cmd_run_exec,
};
