#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/datadir.h"
#include "src/core/paths.h"
#include "src/core/template.h"
#include "src/core/vmdef.h"
#include "src/core/vmdisk.h"
#include "src/core/vmops.h"
#include "src/core/runtime.h"
#include "src/core/fsutil.h"
#include "common/util.h"

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

static void add_disk(struct vmdef *d)
{
	d->disks = xcalloc(1, sizeof(*d->disks));
	d->disks[0].file = xstrdup(DEFAULT_DISK_FILE);
	d->disks[0].format = DISK_FORMAT_QCOW2;
	d->ndisks = 1;
}

/* The template's values first; the command line's win. */
static void apply_template(const struct template *t, struct vmdef *d, uint64_t *disk_size)
{
	d->cpus = t->cpus;
	d->memory = t->memory;
	if (t->cmdline)
		d->cmdline = xstrdup(t->cmdline);
	if (t->description)
		d->description = xstrdup(t->description);
	if (t->builder == NULL && t->disk_size) {
		*disk_size = t->disk_size;
		add_disk(d);
	}
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
	if (a->cmdline) {
		free(d->cmdline);
		d->cmdline = xstrdup(a->cmdline);
	}
	if (a->description) {
		free(d->description);
		d->description = xstrdup(a->description);
	}
	if (a->disk && d->ndisks == 0)
		add_disk(d);
	for (size_t i = 0; i < a->nnics; i++)
		vmdef_add_net(d, &a->nics[i]);
	if (a->nnics == 0 && !a->no_net)
		vmdef_add_default_net(d);
	return vmdef_validate(d, err);
}

/* A builder leaves kernel, initrd and disk.qcow2 in the data directory; a
 * template without one names a shipped kernel (the demo guest). */
static int finish_template(const struct tv_paths *p, const struct template *t, struct vmdef *d,
			   uint64_t *disk_size, struct tv_err *err)
{
	if (t->builder) {
		/* The builder makes the disk, of the size asked for with --disk. */
		uint64_t size = *disk_size ? *disk_size : t->disk_size;
		if (paths_mkdir(p->cache_dir, 0755, err) < 0 ||
		    template_build(t, d->name, d->datadir, p->cache_dir, size, err) < 0)
			return -1;
		if (d->kernel == NULL)
			d->kernel = xstrdup("kernel");
		char *k = vmdef_path(d, d->kernel), *i = vmdef_path(d, "initrd");
		char *disk = vmdef_path(d, DEFAULT_DISK_FILE);
		int missing = access(k, R_OK);
		if (d->initrd == NULL && access(i, R_OK) == 0)
			d->initrd = xstrdup("initrd");
		if (access(disk, F_OK) == 0) {
			*disk_size = 0;
			if (d->ndisks == 0)
				add_disk(d);
		}
		free(k);
		free(i);
		free(disk);
		if (missing)
			return tv_errf(err, "template '%s': its builder made no kernel", t->name);
		return 0;
	}
	if (d->kernel == NULL) {
		d->kernel = datadir_find(t->kernel);
		if (d->kernel == NULL)
			return tv_errf(err, "template '%s': %s is not installed (run make install?)",
				       t->name, t->kernel);
	}
	return 0;
}

int vm_create(const struct tv_paths *p, const char *name, const struct vm_create_args *a,
	      struct tv_err *err)
{
	char *conf = paths_vm_conf(p, name), *data = paths_vm_data(p, name);
	bool made_data = false, have_template = false;
	uint64_t disk_size = 0;
	struct template t;
	struct vmdef d;
	int rc = -1;

	vmdef_init(&d, name, data);
	if (a->template) {
		if (template_load(p, a->template, &t, err) < 0)
			goto out;
		have_template = true;
		apply_template(&t, &d, &disk_size);
	}
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
	if (have_template && finish_template(p, &t, &d, &disk_size, err) < 0)
		goto out;
	if (d.ndisks == 1 && disk_size) {
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
	if (have_template)
		template_free(&t);
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
	vm_runtime_forget(p, name);
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
