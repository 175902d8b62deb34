/* `termvisor clone NAME NEW [--snapshot TAG] [--linked]`: a new VM from a
 * stopped VM's current state or from one of its snapshots.
 *
 * Full clones get a copy of each disk (the allocated data only). Linked
 * clones get a qcow2 overlay whose backing file is a base image: a new image
 * converted from the source disk (at TAG), made read-only (mode 0444) and kept
 * in DATA/.bases/, where every linked clone of the same snapshot shares it.
 * The base never changes, whatever the source does afterwards, so the source
 * keeps running (or rolling back) while its clones use the base. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/bases.h"
#include "src/core/fsutil.h"
#include "src/core/paths.h"
#include "src/core/runtime.h"
#include "src/core/snapstore.h"
#include "src/core/vmdef.h"
#include "src/core/vmdisk.h"
#include "src/core/vmops.h"
#include "vm/block/block.h"
#include "vm/memimg.h"
#include "vm/snapshot.h"
#include "common/util.h"

struct clone_job {
	const struct tv_paths *p;
	const char *src, *dst;
	struct vmdef sdef, ddef; /* the source's definition; the clone's */
	const struct snap_record *rec; /* --snapshot, or NULL */
	bool linked;
	bool resume;		 /* the clone resumes the snapshot's machine state */
	char *ddata;		 /* DATA/NEW */
};

/* Byte copy of a file, holes kept where whole 64 KiB blocks read as zeros. */
static int copy_file(const char *from, const char *to, mode_t mode, struct tv_err *err)
{
	enum { BLOCK = 64 << 10 };
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	static const char zeros[BLOCK];
	char *buf = xmalloc(BLOCK);
	off_t off = 0;
	ssize_t n;

	if (in < 0) {
		tv_errno(err, "cannot open %s", from);
		goto done;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0) {
		tv_errno(err, "cannot create %s", to);
		goto done;
	}
	while ((n = read(in, buf, BLOCK)) > 0) {
		if (!(n == BLOCK && memcmp(buf, zeros, BLOCK) == 0) &&
		    pwrite_full(out, buf, (size_t)n, (uint64_t)off) < 0) {
			tv_errno(err, "cannot write %s", to);
			goto done;
		}
		off += n;
	}
	if (n < 0 || ftruncate(out, off) < 0 || fsync(out) < 0) {
		tv_errno(err, "cannot copy %s to %s", from, to);
		goto done;
	}
	rc = 0;
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(buf);
	return rc;
}

/* A new image at to (fmt) with the data of from as it is now, or as it was at
 * the internal snapshot tag: then a scratch copy of from is reverted to tag
 * and read, so from itself is only read. */
static int convert_disk(const char *from, enum disk_format ffmt, const char *tag, const char *to,
			struct tv_err *err)
{
	char *scratch = NULL;
	struct blk *in = NULL, *out = NULL;
	int rc = -1;

	if (tag) {
		scratch = xasprintf("%s.scratch", to);
		if (copy_file(from, scratch, 0600, err) < 0)
			goto out;
		if (blk_open(&in, scratch, "qcow2", 0, err) < 0 || blk_snapshot_apply(in, tag, err) < 0)
			goto out;
	} else if (blk_open(&in, from, disk_format_name(ffmt), BLK_READONLY, err) < 0) {
		goto out;
	}
	if (blk_create(to, "qcow2", blk_size(in), NULL, err) < 0)
		goto out;
	if (blk_open(&out, to, "qcow2", 0, err) < 0 || vmdisk_copy(in, out, false, false, err) < 0)
		goto out;
	rc = blk_close(out, err);
	out = NULL;
out:
	if (out)
		blk_close(out, NULL);
	if (in)
		blk_close(in, NULL);
	if (rc < 0)
		unlink(to);
	if (scratch) {
		unlink(scratch);
		free(scratch);
	}
	return rc;
}

/* The shared, read-only base for a linked clone of disk i: made once per
 * snapshot (its id and creation time name it, so a later VM of the same name
 * never meets an old base), or once per clone of a current state. */
static char *linked_base(struct clone_job *j, size_t i, const char *from, struct tv_err *err)
{
	char *dir = bases_dir(j->p, err), *abs, *base, *tmp;
	const char *file = strrchr(j->sdef.disks[i].file, '/');

	file = file ? file + 1 : j->sdef.disks[i].file;
	if (dir == NULL)
		return NULL;
	/* The overlay names its base by this path: absolute, so it holds from anywhere. */
	abs = realpath(dir, NULL);
	if (abs == NULL) {
		tv_errno(err, "%s", dir);
		free(dir);
		return NULL;
	}
	free(dir);
	if (j->rec)
		base = xasprintf("%s/%s.%016" PRIx64 "-%lld.%zu.%s", abs, j->src, j->rec->id,
				 (long long)j->rec->created, i, file);
	else
		base = xasprintf("%s/%s.now-%lld-%ld.%zu.%s", abs, j->src, (long long)time(NULL),
				 (long)getpid(), i, file);
	free(abs);
	if (access(base, F_OK) == 0)
		return base; /* an earlier linked clone of this snapshot made it */
	tmp = xasprintf("%s.tmp-%ld", base, (long)getpid());
	int rc = convert_disk(from, j->sdef.disks[i].format, j->rec ? j->rec->tag : NULL, tmp, err);
	if (rc == 0 && (chmod(tmp, 0444) < 0 || rename(tmp, base) < 0))
		rc = tv_errno(err, "cannot make the base %s", base);
	if (rc < 0) {
		unlink(tmp);
		free(base);
		base = NULL;
	}
	free(tmp);
	return base;
}

/* One disk of the clone; its name in the clone's definition may change (a
 * disk outside the source's directory is copied into the clone's). */
static int clone_disk(struct clone_job *j, size_t i, struct tv_err *err)
{
	const struct vmdef_disk *sd = &j->sdef.disks[i];
	struct vmdef_disk *dd = &j->ddef.disks[i];
	char *from = vmdef_path(&j->sdef, sd->file), *to;
	int rc = -1;

	if (sd->readonly && sd->file[0] == '/') {
		free(from); /* an installer ISO and the like: shared as it is */
		return 0;
	}
	if (sd->file[0] == '/') {
		const char *base = strrchr(sd->file, '/') + 1;
		free(dd->file);
		dd->file = xasprintf("disk%zu-%s", i, base);
	}
	to = vmdef_path(&j->ddef, dd->file);
	if (j->rec && sd->format == DISK_FORMAT_RAW && !sd->readonly) {
		tv_errf(err, "%s is raw: it holds no snapshot", from);
	} else if (sd->readonly) {
		rc = copy_file(from, to, 0644, err);
	} else if (j->linked) {
		char *base = linked_base(j, i, from, err);
		struct blk_create_opts o = {.backing = base, .backing_fmt = "qcow2",
					    .size_from_backing = true};
		if (base) {
			rc = blk_create(to, "qcow2", 0, &o, err);
			free(base);
		}
		dd->format = DISK_FORMAT_QCOW2;
	} else {
		rc = convert_disk(from, sd->format, j->rec ? j->rec->tag : NULL, to, err);
		dd->format = DISK_FORMAT_QCOW2;
	}
	if (rc == 0 && dd->format == DISK_FORMAT_QCOW2 && sd->format == DISK_FORMAT_RAW) {
		/* The copy is qcow2 now; its name should not say raw. */
		char *q = xasprintf("%s.qcow2", dd->file), *qp = vmdef_path(&j->ddef, q);
		if (rename(to, qp) == 0) {
			free(dd->file);
			dd->file = q;
		} else {
			free(q);
		}
		free(qp);
	}
	free(from);
	free(to);
	return rc;
}

/* The kernel and initrd a template's builder left in the source's directory. */
static int copy_boot_file(struct clone_job *j, const char *rel, struct tv_err *err)
{
	if (rel == NULL || rel[0] == '/')
		return 0;
	char *from = vmdef_path(&j->sdef, rel), *to = vmdef_path(&j->ddef, rel);
	int rc = copy_file(from, to, 0644, err);
	free(from);
	free(to);
	return rc;
}

/* The source snapshot's files for the clone's own snapshot: the memory image
 * flattened (it may be layered on images the clone does not get), the rest
 * (state, console) copied. */
static int copy_machine_files(struct clone_job *j, const char *from, const char *to,
			      struct tv_err *err)
{
	DIR *d = opendir(from);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return tv_errno(err, "cannot read %s", from);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "journal") == 0)
			continue;
		char *a = xasprintf("%s/%s", from, de->d_name), *b = xasprintf("%s/%s", to, de->d_name);
		struct stat sb;
		if (lstat(a, &sb) == 0 && S_ISREG(sb.st_mode))
			rc = strcmp(de->d_name, VM_SNAPSHOT_MEMORY) == 0 ? memimg_flatten(a, b, err)
									: copy_file(a, b, 0644, err);
		free(a);
		free(b);
	}
	closedir(d);
	return rc;
}

/* A clone of a snapshot that holds the machine's state gets that snapshot as
 * its own (its disks, already at TAG, get the internal snapshot TAG), marked
 * pending-restore: its first start resumes where the source was. */
static int clone_machine(struct clone_job *j, const struct snapstore *sst, struct tv_err *err)
{
	char **disks = xcalloc(j->ddef.ndisks + 1, sizeof(char *));
	size_t n = 0;
	struct snapstore st;
	struct snap_txn t;
	int rc = -1;

	for (size_t i = 0; i < j->ddef.ndisks; i++)
		if (!j->ddef.disks[i].readonly && j->ddef.disks[i].format == DISK_FORMAT_QCOW2)
			disks[n++] = vmdef_path(&j->ddef, j->ddef.disks[i].file);
	char *desc = xasprintf("%s of VM %s%s%s", j->rec->tag, j->src,
			       j->rec->description[0] ? ": " : "", j->rec->description);
	desc[SNAP_DESC_MAX < strlen(desc) ? SNAP_DESC_MAX : strlen(desc)] = 0;
	char *from = snapstore_path(sst, j->rec->id);
	if (snapstore_open(&st, j->ddata, SNAPSTORE_LOCK, NULL, err) < 0)
		goto out;
	if (snapstore_begin(&st, j->rec->tag, desc, true, false, (const char *const *)disks, n, &t,
			    err) < 0)
		goto close;
	rc = copy_machine_files(j, from, t.dir, err);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct blk *b;
		rc = blk_open(&b, disks[i], "qcow2", 0, err);
		if (rc == 0) {
			rc = blk_snapshot_create(b, j->rec->tag, 0, 0, err);
			if (blk_close(b, rc < 0 ? NULL : err) < 0)
				rc = -1;
		}
	}
	uint64_t id = t.rec.id;
	if (rc < 0 || snapstore_commit(&t, err) < 0) {
		snapstore_abort(&t);
		rc = -1;
		goto close;
	}
	rc = snapstore_set_here(&st, id, true, err);
close:
	snapstore_close(&st);
out:
	for (size_t i = 0; i < n; i++)
		free(disks[i]);
	free(disks);
	free(desc);
	free(from);
	return rc;
}

static bool shares_network(const struct vmdef *d)
{
	for (size_t i = 0; i < d->nnets; i++)
		if (d->nets[i].mode != NET_MODE_USER)
			return true;
	return false;
}

static int clone_vm(struct clone_job *j, const struct snapstore *sst, struct tv_err *err)
{
	char *dconf = paths_vm_conf(j->p, j->dst);
	int rc = -1, lock = -1;

	if (mkdir(j->ddata, 0755) < 0) {
		if (errno == EEXIST)
			tv_errf(err, "%s already exists; remove it or pick another name", j->ddata);
		else
			tv_errno(err, "cannot create %s", j->ddata);
		free(dconf);
		return -1;
	}
	/* A base is not in use until the clone's definition names its overlay:
	 * hold off the removal of unused bases until then. */
	if (j->linked && (lock = bases_lock(j->p, false, err)) < 0)
		goto out;
	for (size_t i = 0; i < j->ddef.ndisks; i++)
		if (clone_disk(j, i, err) < 0)
			goto out;
	if (copy_boot_file(j, j->sdef.kernel, err) < 0 || copy_boot_file(j, j->sdef.initrd, err) < 0)
		goto out;
	if (j->resume && clone_machine(j, sst, err) < 0)
		goto out;
	/* A fresh identity: its own name, generated MAC addresses, no autostart. */
	free(j->ddef.name);
	j->ddef.name = xstrdup(j->dst);
	for (size_t i = 0; i < j->ddef.nnets; i++) {
		uint8_t mac[6];
		char text[18];

		net_mac_generate(mac);
		net_mac_format(mac, text, sizeof(text));
		free(j->ddef.nets[i].mac);
		j->ddef.nets[i].mac = xstrdup(text);
	}
	j->ddef.autostart = false;
	/* The definition last: the clone is listed only once it is whole. */
	rc = vmdef_save(&j->ddef, dconf, err);
out:
	if (rc < 0)
		remove_tree(j->ddata);
	bases_unlock(lock);
	free(dconf);
	return rc;
}

static int cmd_clone_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"snapshot", required_argument, NULL, 's'},
		{"linked", no_argument, NULL, 'l'},
		{0},
	};
	struct clone_job j = {0};
	struct tv_paths paths = {0};
	struct snapstore st = {.lock_fd = -1};
	const char *tag = NULL;
	struct tv_err err;
	bool have_src = false, have_dst = false, have_store = false;
	int ch, rc = -1;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "s:l", opts, NULL)) != -1) {
		if (ch == 's')
			tag = optarg;
		else if (ch == 'l')
			j.linked = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind + 2 != argc)
		return cmd_usage_error(self, "expected NAME NEW");
	j.src = argv[optind];
	j.dst = argv[optind + 1];
	j.p = &paths;
	if (vm_name_check(j.src, &err) < 0 || vm_name_check(j.dst, &err) < 0 ||
	    paths_init(&paths, &err) < 0)
		goto out;
	if (!vm_exists(&paths, j.src)) {
		tv_errf(&err, "no VM named '%s' (termvisor list shows them)", j.src);
		goto out;
	}
	if (vm_exists(&paths, j.dst)) {
		tv_errf(&err, "VM '%s' already exists", j.dst);
		goto out;
	}
	char *sconf = paths_vm_conf(&paths, j.src), *sdata = paths_vm_data(&paths, j.src);
	j.ddata = paths_vm_data(&paths, j.dst);
	rc = vmdef_load(sconf, sdata, &j.sdef, NULL, NULL, &err);
	have_src = rc == 0;
	/* The clone's definition: the source's, read again against the new directory. */
	if (rc == 0)
		rc = vmdef_load(sconf, j.ddata, &j.ddef, NULL, NULL, &err);
	have_dst = have_src && rc == 0;
	if (rc == 0 && tag) {
		/* The lock keeps the snapshot from being deleted while it is copied. */
		rc = snapstore_open(&st, sdata, SNAPSTORE_LOCK, NULL, &err);
		have_store = rc == 0;
		if (rc == 0 && (j.rec = snapstore_find(&st, tag)) == NULL)
			rc = tv_errf(&err, "VM %s has no snapshot named '%s'", j.src, tag);
	}
	free(sconf);
	free(sdata);
	if (rc < 0)
		goto out;
	rc = -1;
	if (vm_is_live(&paths, j.src) && tag == NULL) {
		tv_errf(&err,
			"VM %s is running: a running VM is cloned from one of its snapshots "
			"(termvisor snapshot take %s TAG, then termvisor clone %s %s --snapshot TAG), "
			"or stop it first",
			j.src, j.src, j.src, j.dst);
		goto out;
	}
	/* A network card's MAC address lives in the guest's memory too: a clone
	 * sharing a network with others (lab, tap) boots afresh, so that it
	 * uses its own. On the user network each VM is alone, so the running
	 * guest may keep the old one until it reboots. */
	j.resume = j.rec && j.rec->memory && !shares_network(&j.ddef);
	rc = clone_vm(&j, &st, &err);
out:
	if (rc < 0) {
		fprintf(stderr, "termvisor clone: %s\n", err.msg);
	} else {
		printf("cloned VM %s%s%s%s into %s (%s)\n", j.src, tag ? " at snapshot '" : "",
		       tag ? tag : "", tag ? "'" : "", j.dst,
		       j.linked ? "linked: its disks are overlays on read-only bases" : "full copy");
		if (j.resume)
			printf("%s resumes where %s was at '%s' when it first starts\n", j.dst,
			       j.src, tag);
		else if (j.rec && j.rec->memory)
			printf("%s boots afresh (it has a lab or tap network card, whose MAC address "
			       "is new); "
			       "the snapshot's machine state is not cloned\n",
			       j.dst);
		for (size_t i = 0; i < j.ddef.nnets; i++)
			if (j.ddef.nets[i].nforwards) {
				printf("note: %s keeps the host port forwards of %s; running both at "
				       "once needs other ports\n",
				       j.dst, j.src);
				break;
			}
	}
	if (have_store)
		snapstore_close(&st);
	if (have_src)
		vmdef_free(&j.sdef);
	if (have_dst)
		vmdef_free(&j.ddef);
	free(j.ddata);
	paths_free(&paths);
	return rc < 0 ? TV_EXIT_ERROR : TV_EXIT_OK;
}

const struct cmd_entry cmd_clone_entry = {
	.name = "clone",
	.usage = "NAME NEW [--snapshot TAG] [--linked]",
	.summary = "Make a new VM from a VM's current state or one of its snapshots.",
	.options = "  -s, --snapshot TAG   the disks as they were at snapshot TAG (needed when\n"
		   "                       NAME is running)\n"
		   "  -l, --linked         qcow2 overlays on a shared read-only base instead of\n"
		   "                       full copies\n",
	.exec = cmd_clone_exec,
};
