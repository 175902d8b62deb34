/* `termvisor run`: the engine in the foreground, the guest's serial console on
 * stdin/stdout. Exit statuses (also in termvisor(1)):
 *   0   the guest powered off (or wrote 0 to the debug-exit port, which only
 *       --debug-exit or debug_exit = true gives it), or Ctrl-a x
 *   1   host error or bad input (the message says which)
 *   2   bad command line
 *   3   the guest triple-faulted (a register dump goes to stderr)
 *   4   the guest crashed the vCPU (emulation/internal error, failed entry)
 *   5   the guest reset itself and --on-reboot exit was given
 *   64+v  the guest wrote v (1..63, taken mod 64) to the debug-exit port
 *   128+n  stopped by signal n */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/paths.h"
#include "src/runvm.h"
#include "src/vmdef.h"
#include "common/util.h"
#include "vm/vm.h"

struct run_opts {
	struct runvm_opts r;
	struct vmdef def;
	bool have_def;
	/* Paths made from the definition (options may override them). */
	char *owned[2 + VMDEF_MAX_DISKS];
	size_t nowned;
	char *cache_dir;
};

static char *own(struct run_opts *o, char *s)
{
	if (s != NULL && o->nowned < ARRAY_SIZE(o->owned))
		o->owned[o->nowned++] = s;
	return s;
}

/* Settles what the engine needs from outside it (the kernel cache), then
 * hands over to termvisor-engine, or runs the VM here when it is missing. */
static int run_vm(struct run_opts *o)
{
	struct tv_paths paths;
	struct tv_err err;

	/* vmlinux extracted from a bzImage is kept in the cache directory. */
	if (paths_init(&paths, &err) == 0) {
		o->r.cfg.kernel_cache = o->cache_dir = xstrdup(paths.cache_dir);
		paths_free(&paths);
	}
	runvm_exec(&o->r);
	return runvm(&o->r);
}

/* FILE[,format=qcow2|raw][,readonly][,aio=threads|io_uring][,serial=S] */
static int disk_parse(const struct cmd_entry *self, char *arg, struct vm_disk *d)
{
	char *save = NULL, *tok = strtok_r(arg, ",", &save);

	memset(d, 0, sizeof(*d));
	if (tok == NULL)
		return cmd_usage_error(self, "--disk: expected FILE[,format=qcow2|raw][,readonly]"
					     "[,aio=threads|io_uring][,serial=S]");
	d->path = tok;
	while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
		if (strcmp(tok, "readonly") == 0)
			d->readonly = true;
		else if (strcmp(tok, "format=qcow2") == 0 || strcmp(tok, "format=raw") == 0)
			d->format = tok + 7;
		else if (strncmp(tok, "aio=", 4) == 0 && disk_aio_parse(tok + 4, &d->aio) == 0)
			continue;
		else if (strncmp(tok, "serial=", 7) == 0 && vm_disk_serial_valid(tok + 7))
			d->serial = tok + 7;
		else if (strncmp(tok, "serial=", 7) == 0)
			return cmd_usage_error(self, "--disk %s: serial '%s': expected 1 to %d "
						     "printable characters without spaces or commas",
					       d->path, tok + 7, VM_DISK_SERIAL_MAX);
		else
			return cmd_usage_error(self, "--disk %s: unknown option '%s' (expected "
						     "format=qcow2, format=raw, readonly, "
						     "aio=threads, aio=io_uring or serial=S)",
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
	o->r.cfg.cpus = o->def.cpus;
	o->r.cfg.memory = o->def.memory;
	o->r.cfg.kernel = o->def.kernel ? own(o, vmdef_path(&o->def, o->def.kernel)) : NULL;
	o->r.cfg.initrd = o->def.initrd ? own(o, vmdef_path(&o->def, o->def.initrd)) : NULL;
	o->r.cfg.cmdline = o->def.cmdline;
	o->r.cfg.debug_exit = o->def.debug_exit;
	for (size_t i = 0; i < o->def.ndisks && i < VMDEF_MAX_DISKS; i++) {
		o->r.disks[i].path = own(o, vmdef_path(&o->def, o->def.disks[i].file));
		o->r.disks[i].format = disk_format_name(o->def.disks[i].format);
		o->r.disks[i].readonly = o->def.disks[i].readonly;
		o->r.disks[i].aio = o->def.disks[i].aio;
		o->r.disks[i].serial = o->def.disks[i].serial;
	}
	o->r.cfg.ndisks = MIN(o->def.ndisks, (size_t)VMDEF_MAX_DISKS);
	return 0;
}

static void def_free(struct run_opts *o)
{
	if (!o->have_def)
		return;
	for (size_t i = 0; i < o->nowned; i++)
		free(o->owned[i]);
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
		{"debug-exit", no_argument, NULL, 'D'},
		{"verbose", no_argument, NULL, 'v'},	  {"help", no_argument, NULL, 'h'},
		{0}};
	const char *kernel = NULL, *initrd = NULL, *append = NULL, *memory = NULL;
	const char *cpus = NULL;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	size_t ndisks = 0;
	struct run_opts o;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	o.r.cfg.cpus = 1;
	o.r.cfg.memory = 512 * 1024 * 1024ULL;
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
				o.r.reboot_exit = true;
			else if (strcmp(optarg, "restart") != 0)
				return cmd_usage_error(self, "--on-reboot %s: expected restart or exit",
						       optarg);
			break;
		case 'v': o.r.cfg.verbose = true; break;
		case 'X': o.r.cfg.bzimage_entry = true; break;
		case 'D': o.r.cfg.debug_exit = true; break;
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
	if (cpus && cpus_parse(self, cpus, &o.r.cfg.cpus) != 0)
		return TV_EXIT_USAGE;
	if (memory && parse_size(memory, &o.r.cfg.memory) < 0)
		return cmd_usage_error(self, "--memory %s: expected a size like 512M or 2G", memory);
	if (kernel)
		o.r.cfg.kernel = kernel;
	if (initrd)
		o.r.cfg.initrd = initrd;
	if (append)
		o.r.cfg.cmdline = append;
	if (ndisks > 0) {
		memcpy(o.r.disks, disks, sizeof(disks));
		o.r.cfg.ndisks = ndisks;
	}
	if (o.r.cfg.kernel == NULL) {
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
		 "[--memory SIZE] [--disk FILE[,format=F][,readonly][,aio=A][,serial=S]]... "
		 "[--on-reboot restart|exit] [--no-extract] [--debug-exit]",
	.summary = "Run a VM in the foreground with its serial console on this terminal.",
	.options = "  -k, --kernel FILE      bzImage, or ELF vmlinux/guest with a PVH note\n"
		   "  -i, --initrd FILE      initial ramdisk\n"
		   "  -a, --append CMDLINE   kernel command line\n"
		   "  -c, --cpus N           vCPUs, 1 to 64 (default 1)\n"
		   "  -m, --memory SIZE      RAM, like 512M or 2G (default 512M)\n"
		   "  -d, --disk FILE[,format=qcow2|raw][,readonly][,aio=threads|io_uring][,serial=S]\n"
		   "                         a virtio disk (repeatable); aio: how its data\n"
		   "                         moves (default io_uring); serial: what the guest\n"
		   "                         reads as its serial (default tvdisk0, tvdisk1...)\n"
		   "  -r, --on-reboot restart|exit   what a guest reset does (default restart)\n"
		   "      --no-extract       boot a bzImage through its own 64-bit entry, not\n"
		   "                         through PVH from its payload extracted on the host\n"
		   "      --debug-exit       give the guest the debug-exit port 0xF4 (test\n"
		   "                         machines: a byte written there ends the run)\n"
		   "  -v, --verbose          engine notes on stderr\n"
		   "Console keys: Ctrl-a x quits, Ctrl-a h helps, Ctrl-a a sends Ctrl-a.\n"
		   "Exit status: 0 guest powered off, 1 host error or bad input, 2 usage,\n"
		   "3 triple fault, 4 guest crash, 5 guest reset with --on-reboot exit,\n"
		   "64+v debug-exit port value v (1-63, with --debug-exit), 128+n signal n.\n",
	.exec = cmd_run_exec,
};
