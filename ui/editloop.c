/* Editing a definition the way visudo does (ui/editloop.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/fsutil.h"
#include "src/core/vmdef.h"
#include "ui/editloop.h"

#define DEF_MAX (1 << 20) /* a definition is a few lines; more is not one */

static int slurp(const char *path, char **buf, size_t *len, struct tv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = -1;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return tv_errno(err, "%s", path);
	if (fstat(fd, &st) < 0) {
		tv_errno(err, "%s", path);
	} else if (!S_ISREG(st.st_mode) || st.st_size > DEF_MAX) {
		tv_errf(err, "%s: not a definition (a regular file of at most 1 MiB)", path);
	} else {
		*buf = xmalloc((size_t)st.st_size + 1);
		if (read_full(fd, *buf, (size_t)st.st_size) < 0) {
			tv_errno(err, "%s", path);
			free(*buf);
			*buf = NULL;
		} else {
			(*buf)[st.st_size] = '\0';
			*len = (size_t)st.st_size;
			rc = 0;
		}
	}
	close(fd);
	return rc;
}

/* Writes data to path through a file beside it: fsynced, then renamed over
 * it, the directory fsynced: a crash leaves the old or the new, whole. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode,
			struct tv_err *err)
{
	char *tmp = xasprintf("%s.edit-XXXXXX", path), *d = xstrdup(path);
	int fd = mkostemp(tmp, O_CLOEXEC), dfd, rc = -1;

	if (fd < 0) {
		tv_errno(err, "%s", tmp);
		goto out;
	}
	if (fchmod(fd, mode) < 0 || write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		tv_errno(err, "%s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		tv_errno(err, "%s", path);
		unlink(tmp);
		goto out;
	}
	dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(tmp);
	free(d);
	return rc;
}

int editdef_begin(struct editdef *e, const char *conf, const char *datadir, struct tv_err *err)
{
	const char *tmpdir = getenv("TMPDIR");
	char *base = xstrdup(conf);

	memset(e, 0, sizeof(*e));
	e->conf = xstrdup(conf);
	e->datadir = xstrdup(datadir ? datadir : ".");
	e->dir = xasprintf("%s/termvisor-edit.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (slurp(conf, &e->orig, &e->orig_len, err) < 0)
		goto fail;
	/* mkdtemp makes it 0700: the copy is private to the user. */
	if (mkdtemp(e->dir) == NULL) {
		tv_errno(err, "%s", e->dir);
		goto fail;
	}
	e->copy = xasprintf("%s/%s", e->dir, basename(base));
	free(base);
	base = NULL;
	int fd = open(e->copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, e->orig, e->orig_len) < 0) {
		tv_errno(err, "%s", e->copy);
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	free(base);
	editdef_end(e);
	return -1;
}

void editdef_end(struct editdef *e)
{
	if (e->copy && !e->keep) {
		unlink(e->copy);
		rmdir(e->dir);
	}
	free(e->conf);
	free(e->datadir);
	free(e->dir);
	free(e->copy);
	free(e->orig);
	memset(e, 0, sizeof(*e));
}

static void ignore_warning(void *ctx, const char *msg)
{
}

enum editdef_result editdef_check(struct editdef *e, struct tv_err *err)
{
	char *now = NULL, *disk = NULL;
	size_t now_len, disk_len;
	struct vmdef d;
	struct stat st;
	enum editdef_result r = EDITDEF_FAILED;

	if (slurp(e->copy, &now, &now_len, err) < 0)
		return EDITDEF_FAILED;
	if (now_len == e->orig_len && memcmp(now, e->orig, now_len) == 0) {
		r = EDITDEF_UNCHANGED;
		goto out;
	}
	if (vmdef_load(e->copy, e->datadir, &d, ignore_warning, NULL, err) < 0) {
		/* The message names the copy; the user knows the file by its name. */
		size_t n = strlen(e->copy);
		if (strncmp(err->msg, e->copy, n) == 0) {
			char rest[TV_ERR_MAX];
			snprintf(rest, sizeof(rest), "%s", err->msg + n);
			tv_errf(err, "%s%s", e->conf, rest);
		}
		r = EDITDEF_INVALID;
		goto out;
	}
	vmdef_free(&d);
	/* Another terminal changed it meanwhile: theirs is not overwritten. */
	if (slurp(e->conf, &disk, &disk_len, err) < 0 || disk_len != e->orig_len ||
	    memcmp(disk, e->orig, disk_len) != 0) {
		e->keep = true;
		tv_errf(err, "%s was changed by another program while you edited it; it is left as "
			     "that program wrote it, and your version is kept in %s",
			e->conf, e->copy);
		goto out;
	}
	if (stat(e->conf, &st) < 0) {
		tv_errno(err, "%s", e->conf);
		goto out;
	}
	if (write_atomic(e->conf, now, now_len, st.st_mode & 07777, err) == 0)
		r = EDITDEF_SAVED;
out:
	free(now);
	free(disk);
	return r;
}

const char *editdef_editor(void)
{
	const char *v = getenv("VISUAL");

	if (v == NULL || *v == '\0')
		v = getenv("EDITOR");
	return v != NULL && *v != '\0' ? v : "vi";
}

int editdef_run_editor(const char *file, struct tv_err *err)
{
	const char *editor = editdef_editor();
	char *cmd = xasprintf("%s \"$1\"", editor);
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		free(cmd);
		return tv_errno(err, "fork");
	}
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, "sh", file, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return tv_errno(err, "waiting for %s", editor);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return tv_errf(err, "the editor '%s' could not be run (set VISUAL or EDITOR)",
			       editor);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return tv_errf(err, "the editor '%s' exited with an error; nothing was saved",
			       editor);
	return 0;
}

enum editdef_result editdef_loop(const char *conf, const char *datadir,
				 const struct editdef_ops *ops, struct tv_err *err)
{
	struct editdef e;
	enum editdef_result r;

	if (editdef_begin(&e, conf, datadir, err) < 0)
		return EDITDEF_FAILED;
	for (;;) {
		if (ops->edit(ops->ctx, e.copy, err) < 0) {
			r = EDITDEF_DISCARDED;
			break;
		}
		r = editdef_check(&e, err);
		if (r != EDITDEF_INVALID)
			break;
		if (ops->ask(ops->ctx, err->msg) == EDITDEF_DISCARD) {
			r = EDITDEF_DISCARDED;
			break;
		}
	}
	editdef_end(&e);
	return r;
}
