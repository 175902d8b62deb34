/* `termvisor run`: the engine in the foreground, the guest's serial console on
 * stdin/stdout. Exit statuses (also in termvisor(1)):
 *   0   the guest powered off (or wrote 0 to the debug-exit port, which only
 *       --debug-exit or debug_exit = true gives it), or Ctrl-a x
 *   1   host error or bad input (the message says which)
 *   2   bad command line
 *   3   the guest triple-faulted (a register dump goes to stderr)
 *   4   the guest crashed the vCPU (emulation/internal error, failed entry)
 *   5   the guest reset itself and --on-reboot exit was given
 *   6   the VM process made a system call its sandbox forbids
 *   64+v  the guest wrote v (1..63, taken mod 64) to the debug-exit port
 *   128+n  stopped by signal n */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/paths.h"
#include "src/core/machine.h"
#include "src/vmm/vmm.h"
#include "src/core/vmdef.h"
#include "common/util.h"
#include "vm/vm.h"

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

/* `run NAME`: the definition's machine (src/core/machine.h), which options
 * then override. */
static int def_load(struct machine *m, const char *name)
{
	struct tv_paths paths;
	struct tv_err err;
	struct vmdef def;
	char *conf = NULL, *data = NULL;
	int rc = -1;

	if (vm_name_check(name, &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor run: %s\n", err.msg);
		return -1;
	}
	conf = paths_vm_conf(&paths, name);
	data = paths_vm_data(&paths, name);
	if (access(conf, F_OK) != 0) {
		fprintf(stderr, "termvisor run: no VM named '%s' (%s)\n", name, conf);
	} else if (vmdef_load(conf, data, &def, NULL, NULL, &err) < 0) {
		fprintf(stderr, "termvisor run: %s\n", err.msg);
	} else {
		rc = machine_from_def(m, &paths, &def, &err);
		if (rc < 0)
			fprintf(stderr, "termvisor run: %s\n", err.msg);
		vmdef_free(&def);
	}
	free(conf);
	free(data);
	paths_free(&paths);
	return rc;
}

/* Without a definition: the kernel cache still serves (a bzImage's vmlinux
 * is extracted once). */
static void cache_only(struct machine *m)
{
	struct tv_paths paths;
	struct tv_err err;

	if (paths_init(&paths, &err) == 0) {
		m->cfg.kernel_cache = machine_own(m, xstrdup(paths.cache_dir));
		paths_free(&paths);
	}
}

static int cmd_run_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'i'},
		{"append", required_argument, NULL, 'a'}, {"cpus", required_argument, NULL, 'c'},
		{"memory", required_argument, NULL, 'm'}, {"disk", required_argument, NULL, 'd'},
		{"on-reboot", required_argument, NULL, 'r'}, {"net", required_argument, NULL, 'n'},
		{"no-extract", no_argument, NULL, 'X'},
		{"debug-exit", no_argument, NULL, 'D'},
		{"no-sandbox", no_argument, NULL, 'S'},
		{"verbose", no_argument, NULL, 'v'},	  {"help", no_argument, NULL, 'h'},
		{0}};
	const char *kernel = NULL, *initrd = NULL, *append = NULL, *memory = NULL;
	const char *cpus = NULL;
	struct vm_disk disks[VMDEF_MAX_DISKS];
	size_t ndisks = 0;
	struct vm_nic nics[NET_NICS_MAX];
	size_t nnics = 0;
	struct tv_err nerr;
	struct vmm_opts o;
	struct machine m;
	const char *name = NULL;
	bool no_sandbox = false;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	machine_init(&m);
	while ((ch = getopt_long(argc, argv, "k:i:a:c:m:d:r:n:vhX", opts, NULL)) != -1) {
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
		case 'n':
			if (nnics == NET_NICS_MAX)
				return cmd_usage_error(self, "at most %d network interfaces",
						       NET_NICS_MAX);
			if (vmm_net_parse(optarg, &nics[nnics], &nerr) < 0)
				return cmd_usage_error(self, "%s", nerr.msg);
			nnics++;
			break;
		case 'r':
			if (strcmp(optarg, "exit") == 0)
				o.reboot_exit = true;
			else if (strcmp(optarg, "restart") != 0)
				return cmd_usage_error(self, "--on-reboot %s: expected restart or exit",
						       optarg);
			break;
		case 'v': m.cfg.verbose = true; break;
		case 'X': m.cfg.bzimage_entry = true; break;
		case 'D': m.cfg.debug_exit = true; break;
		case 'S': no_sandbox = true; break;
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
	if (optind == argc - 1) {
		bool verbose = m.cfg.verbose, entry = m.cfg.bzimage_entry, dbg = m.cfg.debug_exit;
		name = argv[optind];
		if (def_load(&m, name) < 0) {
			machine_free(&m);
			return TV_EXIT_ERROR;
		}
		m.cfg.verbose = verbose;
		m.cfg.bzimage_entry = entry;
		m.cfg.debug_exit = m.cfg.debug_exit || dbg;
	} else {
		cache_only(&m);
	}
	if (cpus && cpus_parse(self, cpus, &m.cfg.cpus) != 0) {
		machine_free(&m);
		return TV_EXIT_USAGE;
	}
	if (memory && parse_size(memory, &m.cfg.memory) < 0) {
		machine_free(&m);
		return cmd_usage_error(self, "--memory %s: expected a size like 512M or 2G", memory);
	}
	if (kernel)
		m.cfg.kernel = kernel;
	if (initrd)
		m.cfg.initrd = initrd;
	if (append)
		m.cfg.cmdline = append;
	if (ndisks > 0) {
		memcpy(m.disks, disks, sizeof(disks));
		m.cfg.ndisks = ndisks;
	}
	if (nnics > 0) { /* --net replaces the definition's interfaces */
		memcpy(m.nics, nics, sizeof(nics));
		m.cfg.nnics = nnics;
	}
	if (m.cfg.kernel == NULL) {
		fprintf(stderr, "termvisor run: VM %s has no kernel; give one with --kernel FILE\n",
			argv[optind]);
		rc = TV_EXIT_ERROR;
	} else {
		o.cfg = m.cfg;
		memcpy(o.disks, m.disks, sizeof(o.disks));
		o.cfg.disks = o.disks;
		memcpy(o.nics, m.nics, sizeof(o.nics));
		o.cfg.nics = o.nics;
		o.name = name;
		o.no_sandbox = no_sandbox || m.no_sandbox;
		rc = vmm_run(&o);
	}
	machine_free(&m);
	return rc;
}

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.usage = "[NAME] [--kernel FILE] [--initrd FILE] [--append CMDLINE] [--cpus N] "
		 "[--memory SIZE] [--disk FILE[,format=F][,readonly][,aio=A][,serial=S]]... "
		 "[--net MODE[,forward=F]...]... [--on-reboot restart|exit] [--no-extract] [--debug-exit] [--no-sandbox]",
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
		   "  -n, --net user[,forward=tcp:[ADDR]:HOSTPORT:GUESTPORT]...[,mac=M]\n"
		   "                         a virtio NIC (repeatable; replaces the VM's own):\n"
		   "                         user: NAT with DHCP (10.0.2.15), forwards listen\n"
		   "                         on 127.0.0.1 unless ADDR is given; also\n"
		   "                         lab,name=LAB and tap,ifname=IF[,bridge=BR]\n"
		   "  -r, --on-reboot restart|exit   what a guest reset does (default restart)\n"
		   "      --no-extract       boot a bzImage through its own 64-bit entry, not\n"
		   "                         through PVH from its payload extracted on the host\n"
		   "      --debug-exit       give the guest the debug-exit port 0xF4 (test\n"
		   "                         machines: a byte written there ends the run)\n"
		   "      --no-sandbox       run without the VM process's sandbox (system\n"
		   "                         call filter, Landlock), for debugging\n"
		   "  -v, --verbose          engine notes on stderr\n"
		   "Console keys: Ctrl-a x quits, Ctrl-a h helps, Ctrl-a a sends Ctrl-a.\n"
		   "Exit status: 0 guest powered off, 1 host error or bad input, 2 usage,\n"
		   "3 triple fault, 4 guest crash, 5 guest reset with --on-reboot exit,\n"
		   "6 a forbidden system call (the sandbox ended the VM process),\n"
		   "64+v debug-exit port value v (1-63, with --debug-exit), 128+n signal n.\n",
	.exec = cmd_run_exec,
};
