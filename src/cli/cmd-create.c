#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "src/core/vmops.h"
#include "src/vmm/vmm.h"
#include "common/util.h"

static int cmd_create_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"cpus", required_argument, NULL, 'c'},    {"memory", required_argument, NULL, 'm'},
		{"disk", required_argument, NULL, 'd'},    {"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},  {"cmdline", required_argument, NULL, 'a'},
		{"description", required_argument, NULL, 'D'},
		{"template", required_argument, NULL, 't'},
		{"net", required_argument, NULL, 'n'},
		{0}};
	struct vm_nic nics[NET_NICS_MAX];
	struct vm_create_args a = {.nics = nics};
	struct tv_paths paths;
	struct tv_err err;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:m:d:k:i:a:D:t:n:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': a.cpus = optarg; break;
		case 'm': a.memory = optarg; break;
		case 'd': a.disk = optarg; break;
		case 'k': a.kernel = optarg; break;
		case 'i': a.initrd = optarg; break;
		case 'a': a.cmdline = optarg; break;
		case 'D': a.description = optarg; break;
		case 't': a.template = optarg; break;
		case 'n':
			if (strcmp(optarg, "none") == 0) {
				a.no_net = true;
				break;
			}
			if (a.nnics == NET_NICS_MAX)
				return cmd_usage_error(self, "at most %d network interfaces",
						       NET_NICS_MAX);
			if (vmm_net_parse(optarg, &nics[a.nnics], &err) < 0) {
				fprintf(stderr, "termvisor create: %s\n", err.msg);
				return TV_EXIT_USAGE;
			}
			a.nnics++;
			break;
		default: return cmd_usage_error(self, "unknown option");
		}
	}
	if (a.no_net && a.nnics > 0)
		return cmd_usage_error(self, "--net none with another --net");
	if (optind + 1 != argc)
		return cmd_usage_error(self, optind == argc ? "expected a VM name"
							    : "expected one VM name");
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor create: %s\n", err.msg);
		return TV_EXIT_ERROR;
	}
	int rc = vm_create(&paths, argv[optind], &a, &err);
	if (rc < 0)
		fprintf(stderr, "termvisor create: %s\n", err.msg);
	else
		printf("created VM '%s'\n", argv[optind]);
	paths_free(&paths);
	return rc < 0 ? TV_EXIT_ERROR : TV_EXIT_OK;
}

const struct cmd_entry cmd_create_entry = {
	.name = "create",
	.usage = "NAME [--cpus N] [--memory SIZE] [--disk SIZE] [--kernel FILE] [--initrd FILE] "
		 "[--cmdline TEXT] [--description TEXT] [--template NAME] [--net SPEC|none]...",
	.summary = "Define a new VM, with an empty qcow2 disk when --disk is given.",
	.options = "  --cpus N             vCPUs, 1 to 64 (default 1)\n"
		   "  --memory SIZE        guest RAM like 512M or 2G (default 512M)\n"
		   "  --disk SIZE          create disk.qcow2 of this size in the VM's data directory\n"
		   "  --kernel FILE        kernel to boot (bzImage, vmlinux or a PVH ELF)\n"
		   "  --initrd FILE        initial ramdisk\n"
		   "  --cmdline TEXT       kernel command line\n"
		   "  --description TEXT   free-form text shown in the interface\n"
		   "  --template NAME      start from a template ('termvisor templates' lists them);\n"
		   "                       the options above override its values\n"
		   "  --net SPEC           a network card, as `run --net` takes it (user[,forward=F]...,\n"
		   "                       lab,name=LAB, tap,ifname=IF[,bridge=BR]; mac=M), repeated\n"
		   "                       for more; default: one on the user network (NAT, DHCP);\n"
		   "                       --net none: no network card\n",
	.exec = cmd_create_exec,
};
