#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/paths.h"
#include "src/vmdef.h"
#include "src/vmdisk.h"
#include "src/vmutil.h"
#include "vm/util.h"

#define DEFAULT_DISK_FILE "disk.qcow2"

struct create_args {
	const char *cpus, *memory, *disk, *kernel, *initrd, *cmdline, *description;
};

/* Paths given on the command line are the user's, relative to where they stand. */
static int absolute_file(const char *opt, const char *path, char **out, struct tv_err *err)
{
	char *abs = realpath(path, NULL);
	struct stat st;

	if (abs == NULL)
		return tv_errno(err, "--%s %s", opt, path);
	if (stat(abs, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(abs);
		return tv_errf(err, "--%s %s: not a regular file", opt, path);
	}
	*out = abs;
	return 0;
}

static int fill_def(const struct create_args *a, struct vmdef *d, uint64_t *disk_size,
		    struct tv_err *err)
{
	if (a->cpus) {
		char *end;
		long v = strtol(a->cpus, &end, 10);
		if (*end || end == a->cpus || v < 1 || v > VMDEF_MAX_CPUS)
			return tv_errf(err, "--cpus %s: expected a whole number from 1 to %d",
				       a->cpus, VMDEF_MAX_CPUS);
		d->cpus = (unsigned)v;
	}
	if (a->memory && parse_size(a->memory, &d->memory) < 0)
		return tv_errf(err, "--memory %s: expected a size like 512M or 2G", a->memory);
	if (a->disk && (parse_size(a->disk, disk_size) < 0 || *disk_size < 512))
		return tv_errf(err, "--disk %s: expected a size like 10G", a->disk);
	if (a->kernel && absolute_file("kernel", a->kernel, &d->kernel, err) < 0)
		return -1;
	if (a->initrd && absolute_file("initrd", a->initrd, &d->initrd, err) < 0)
		return -1;
	if (a->cmdline)
		d->cmdline = xstrdup(a->cmdline);
	if (a->description)
		d->description = xstrdup(a->description);
	if (a->disk) {
		d->disks = xcalloc(1, sizeof(*d->disks));
		d->disks[0].file = xstrdup(DEFAULT_DISK_FILE);
		d->disks[0].format = DISK_FORMAT_QCOW2;
		d->ndisks = 1;
	}
	return vmdef_validate(d, err);
}

/* Makes the data directory, the disk and the definition, in that order; the
 * definition last, so a VM is listed only once it is whole. On failure whatever
 * was made is removed again. */
static int create_vm(const struct tv_paths *p, const char *name, const struct create_args *a,
		     struct tv_err *err)
{
	char *conf = paths_vm_conf(p, name), *data = paths_vm_data(p, name);
	bool made_data = false;
	uint64_t disk_size = 0;
	struct vmdef d;
	int rc = -1;

	vmdef_init(&d, name, data);
	if (fill_def(a, &d, &disk_size, err) < 0)
		goto out;
	if (access(conf, F_OK) == 0) {
		tv_errf(err, "VM '%s' already exists (%s)", name, conf);
		goto out;
	}
	if (paths_mkdir(p->vms_dir, 0755, err) < 0 || paths_mkdir(p->data_dir, 0755, err) < 0)
		goto out;
	if (mkdir(data, 0755) < 0) {
		if (errno == EEXIST)
			tv_errf(err, "%s already exists; remove it or pick another name", data);
		else
			tv_errno(err, "cannot create %s", data);
		goto out;
	}
	made_data = true;
	if (d.ndisks == 1) {
		char *disk = vmdef_path(&d, d.disks[0].file);
		int drc = vmdisk_create(disk, d.disks[0].format, disk_size, err);
		free(disk);
		if (drc < 0)
			goto out;
	}
	rc = vmdef_save(&d, conf, err);
out:
	if (rc < 0 && made_data)
		remove_tree(data);
	vmdef_free(&d);
	free(conf);
	free(data);
	return rc;
}

static int cmd_create_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"cpus", required_argument, NULL, 'c'},    {"memory", required_argument, NULL, 'm'},
		{"disk", required_argument, NULL, 'd'},    {"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},  {"cmdline", required_argument, NULL, 'a'},
		{"description", required_argument, NULL, 'D'},
		{0}};
	struct create_args a = {0};
	struct tv_paths paths;
	struct tv_err err;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:m:d:k:i:a:D:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': a.cpus = optarg; break;
		case 'm': a.memory = optarg; break;
		case 'd': a.disk = optarg; break;
		case 'k': a.kernel = optarg; break;
		case 'i': a.initrd = optarg; break;
		case 'a': a.cmdline = optarg; break;
		case 'D': a.description = optarg; break;
		default: return cmd_usage_error(self, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, optind == argc ? "expected a VM name"
							    : "expected one VM name");
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor create: %s\n", err.msg);
		return TV_EXIT_ERROR;
	}
	int rc = create_vm(&paths, argv[optind], &a, &err);
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
		 "[--cmdline TEXT] [--description TEXT]",
	.summary = "Define a new VM, with an empty qcow2 disk when --disk is given.",
	.options = "  --cpus N             vCPUs, 1 to 64 (default 1)\n"
		   "  --memory SIZE        guest RAM like 512M or 2G (default 512M)\n"
		   "  --disk SIZE          create disk.qcow2 of this size in the VM's data directory\n"
		   "  --kernel FILE        kernel to boot (bzImage, vmlinux or a PVH ELF)\n"
		   "  --initrd FILE        initial ramdisk\n"
		   "  --cmdline TEXT       kernel command line\n"
		   "  --description TEXT   free-form text shown in the interface\n",
	.exec = cmd_create_exec,
};
