#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/paths.h"
#include "src/vmdef.h"
#include "src/vmdisk.h"
#include "src/vmops.h"
#include "src/vmstate.h"
#include "src/vmutil.h"
#include "vm/util.h"

#define DEFAULT_DISK_FILE "disk.qcow2"

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

static int fill_def(const struct vm_create_args *a, struct vmdef *d, uint64_t *disk_size,
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

int vm_create(const struct tv_paths *p, const char *name, const struct vm_create_args *a,
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

int vm_delete(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	char *conf = paths_vm_conf(p, name), *data = paths_vm_data(p, name);
	int rc = -1;

	if (access(conf, F_OK) < 0 && access(data, F_OK) < 0) {
		tv_errf(err, "no VM named '%s' (looked for %s)", name, conf);
		goto out;
	}
	if (vm_is_live(p, name)) {
		tv_errf(err, "VM '%s' is running; stop it first (termvisor stop %s)", name, name);
		goto out;
	}
	/* The definition first: a VM whose data removal fails half-way is no longer
	 * listed as whole, and the data left can be removed by hand. */
	if (unlink(conf) < 0 && errno != ENOENT) {
		tv_errno(err, "cannot remove %s", conf);
		goto out;
	}
	if (remove_tree(data) < 0) {
		tv_errno(err, "cannot remove %s", data);
		goto out;
	}
	rc = 0;
out:
	free(conf);
	free(data);
	return rc;
}

bool vm_exists(const struct tv_paths *p, const char *name)
{
	char *conf = paths_vm_conf(p, name);
	bool yes = access(conf, F_OK) == 0;

	free(conf);
	return yes;
}
