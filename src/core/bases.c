#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/bases.h"
#include "src/core/catalog.h"
#include "vm/block/block.h"
#include "common/util.h"

char *bases_dir(const struct tv_paths *p, struct tv_err *err)
{
	char *dir = xasprintf("%s/%s", p->data_dir, BASES_DIR);

	if (paths_mkdir(dir, 0755, err) < 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

int bases_lock(const struct tv_paths *p, bool exclusive, struct tv_err *err)
{
	char *dir = bases_dir(p, err), *file;
	int fd;

	if (dir == NULL)
		return -1;
	file = xasprintf("%s/.lock", dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		tv_errno(err, "cannot open %s", file);
	else if (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		tv_errno(err, "cannot lock %s", file);
		close(fd);
		fd = -1;
	}
	free(file);
	free(dir);
	return fd;
}

void bases_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

struct names {
	char **v;
	size_t n;
};

static void names_add(struct names *s, char *name)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = name;
}

static bool names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], name) == 0)
			return true;
	return false;
}

void bases_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool is_qcow2(const char *path)
{
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool yes = fd >= 0 && read(fd, magic, 4) == 4 && memcmp(magic, "QFI\xfb", 4) == 0;

	if (fd >= 0)
		close(fd);
	return yes;
}

/* Adds the real path of the backing file that image names, if any. */
static int add_backing(struct names *used, const char *image, struct tv_err *err)
{
	struct blk *b;
	struct blk_info info;
	struct tv_err cerr;

	if (!is_qcow2(image))
		return 0; /* raw, missing: names no backing file */
	if (blk_open(&b, image, "qcow2", BLK_SHARE | BLK_NO_BACKING, err) < 0)
		return -1;
	blk_get_info(b, &info);
	if (info.backing != NULL) {
		char *dir = xstrdup(image), *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		char *path = paths_resolve(slash ? dir : ".", info.backing);
		char *real = realpath(path, NULL);
		if (real != NULL)
			names_add(used, real);
		free(path);
		free(dir);
	}
	blk_close(b, &cerr); /* read-only: nothing to lose */
	return 0;
}

/* Every qcow2 image at the top of a VM's directory, whatever its definition
 * says (a disk named in a definition that failed to load, a file the user
 * renamed). */
static int add_dir_images(struct names *used, const char *dir, struct tv_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (d == NULL)
		return 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = add_backing(used, path, err);
		free(path);
	}
	closedir(d);
	return rc;
}

static int collect_used(const struct tv_paths *p, struct names *used, struct tv_err *err)
{
	struct catalog cat;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (catalog_load(p, &cat, err) < 0)
		return -1;
	for (size_t i = 0; rc == 0 && i < cat.n; i++) {
		const struct catalog_entry *ce = &cat.v[i];
		if (!ce->ok) {
			rc = tv_errf(err, "%s", ce->error);
			break;
		}
		for (size_t k = 0; rc == 0 && k < ce->def.ndisks; k++) {
			char *path = vmdef_path(&ce->def, ce->def.disks[k].file);
			rc = add_backing(used, path, err);
			free(path);
		}
	}
	catalog_free(&cat);
	d = opendir(p->data_dir);
	while (rc == 0 && d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", p->data_dir, e->d_name);
		rc = add_dir_images(used, dir, err);
		free(dir);
	}
	if (d != NULL)
		closedir(d);
	return rc;
}

int bases_gc(const struct tv_paths *p, char ***removed, size_t *n, struct tv_err *err)
{
	struct names used = {0}, gone = {0};
	char *dir = xasprintf("%s/%s", p->data_dir, BASES_DIR), *real = NULL;
	DIR *d = NULL;
	struct dirent *e;
	int lock = -1, rc = 0;

	if (removed)
		*removed = NULL;
	if (n)
		*n = 0;
	if (access(dir, F_OK) < 0)
		goto out; /* no linked clone was ever made */
	lock = bases_lock(p, true, err);
	if (lock < 0 || collect_used(p, &used, err) < 0) {
		rc = -1;
		goto out;
	}
	real = realpath(dir, NULL);
	d = real ? opendir(real) : NULL;
	if (d == NULL) {
		rc = tv_errno(err, "cannot read %s", dir);
		goto out;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", real, e->d_name);
		/* A .tmp- file is a base a clone was making when it died: no clone
		 * makes one while the lock is held exclusively. */
		if (!names_has(&used, path)) {
			if (unlink(path) == 0)
				names_add(&gone, xstrdup(e->d_name));
			else if (errno != ENOENT)
				rc = tv_errno(err, "cannot remove the unused base %s", path);
		}
		free(path);
		if (rc < 0)
			break;
	}
out:
	if (d)
		closedir(d);
	bases_unlock(lock);
	bases_names_free(used.v, used.n);
	if (removed && n) {
		*removed = gone.v;
		*n = gone.n;
	} else {
		bases_names_free(gone.v, gone.n);
	}
	free(real);
	free(dir);
	return rc;
}
