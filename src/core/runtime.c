#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/core/runtime.h"
#include "common/util.h"

const char *vm_state_name(enum vm_state s)
{
	switch (s) {
	case VM_RUNNING:
		return "running";
	case VM_PAUSED:
		return "paused";
	case VM_CRASHED:
		return "crashed";
	case VM_STOPPED:
		break;
	}
	return "stopped";
}

static bool file_exists(const char *file)
{
	return access(file, F_OK) == 0;
}

static pid_t read_pid(const char *file)
{
	FILE *f = fopen(file, "r");
	long pid = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* True when a VM process holds NAME.lock. Tested by trying a shared lock,
 * which a VM process's exclusive lock refuses; a start racing with this
 * retries (vm_lock_take). */
static bool lock_held(const struct tv_paths *p, const char *name)
{
	char *file = paths_vm_runtime(p, name, "lock");
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool held = false;

	free(file);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		held = true;
	close(fd);
	return held;
}

static time_t file_mtime(const char *file)
{
	struct stat st;

	return stat(file, &st) == 0 ? st.st_mtime : 0;
}

static void unlink_runtime(const struct tv_paths *p, const char *name, const char *suffix)
{
	char *file = paths_vm_runtime(p, name, suffix);

	unlink(file);
	free(file);
}

/* A pid file without a lock holder: the VM process died without cleaning up.
 * Done under the lock, so a VM starting at this moment is never touched. */
static void clean_after_crash(const struct tv_paths *p, const char *name)
{
	char *lock = paths_vm_runtime(p, name, "lock");
	char *pidfile = paths_vm_runtime(p, name, "pid");
	char *crashed = paths_vm_runtime(p, name, "crashed");
	int fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
		if (file_exists(pidfile) && rename(pidfile, crashed) == 0) {
			unlink_runtime(p, name, "sock");
			unlink_runtime(p, name, "paused");
		}
	}
	if (fd >= 0)
		close(fd); /* drops the lock */
	free(lock);
	free(pidfile);
	free(crashed);
}

/* The first line of a pause marker, control characters left out. */
static void read_reason(const char *file, char *buf, size_t len)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	size_t k = 0;

	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	for (ssize_t i = 0; i < n && buf[i] != '\n'; i++)
		if ((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f)
			buf[k++] = buf[i];
	buf[k] = '\0';
}

void vm_status_probe(const struct tv_paths *p, const char *name, struct vm_status *st)
{
	char *pidfile = paths_vm_runtime(p, name, "pid");
	char *pausefile = paths_vm_runtime(p, name, "paused");
	char *crashed = paths_vm_runtime(p, name, "crashed");

	memset(st, 0, sizeof(*st));
	if (lock_held(p, name)) {
		/* No pid file yet: the VM process is still starting. */
		time_t started = file_mtime(pidfile), now = time(NULL);
		st->state = file_exists(pausefile) ? VM_PAUSED : VM_RUNNING;
		if (st->state == VM_PAUSED)
			read_reason(pausefile, st->reason, sizeof(st->reason));
		st->pid = read_pid(pidfile);
		st->uptime_s = started && now > started ? (uint64_t)(now - started) : 0;
	} else if (file_exists(pidfile)) {
		clean_after_crash(p, name);
		st->state = VM_CRASHED;
	} else if (file_exists(crashed)) {
		st->state = VM_CRASHED;
	}
	free(pidfile);
	free(pausefile);
	free(crashed);
}

bool vm_is_live(const struct tv_paths *p, const char *name)
{
	return lock_held(p, name);
}

char *vm_log_path(const struct tv_paths *p, const char *name)
{
	char *dir = paths_vm_data(p, name);
	char *file = xasprintf("%s/vm.log", dir);

	free(dir);
	return file;
}

char *vm_log_tail(const struct tv_paths *p, const char *name, int n)
{
	char *file = vm_log_path(p, name);
	FILE *f = fopen(file, "r");
	char buf[8192], *out, *lines[64];
	size_t len, outlen = 0;
	long size;
	int count = 0;

	free(file);
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	if (size > (long)sizeof(buf) - 1)
		fseek(f, size - (long)sizeof(buf) + 1, SEEK_SET);
	else
		rewind(f);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\r')
			buf[i] = '\n';
		else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			buf[i] = '?';
	}
	/* The last n lines that say something, oldest first. */
	n = MIN(n, (int)ARRAY_SIZE(lines));
	for (char *end = buf + len; end > buf && count < n;) {
		char *start = end;
		while (start > buf && start[-1] != '\n')
			start--;
		*end = '\0';
		if (strspn(start, " \t") != strlen(start))
			lines[count++] = start;
		end = start > buf ? start - 1 : buf;
	}
	if (count == 0)
		return NULL;
	out = xmalloc(len + 2);
	for (int i = count - 1; i >= 0; i--) {
		size_t l = strlen(lines[i]);
		memcpy(out + outlen, lines[i], l);
		outlen += l;
		if (i > 0)
			out[outlen++] = '\n';
	}
	out[outlen] = '\0';
	return out;
}

int vm_lock_take(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	char *file = paths_vm_runtime(p, name, "lock");
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	pid_t holder;

	if (fd < 0) {
		tv_errno(err, "%s", file);
		free(file);
		return -1;
	}
	free(file);
	/* A `list` cleaning up after a crash holds the lock for a moment. */
	for (int i = 0; i < 50; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			tv_errno(err, "cannot lock VM %s", name);
			close(fd);
			return -1;
		}
		usleep(10000);
	}
	close(fd);
	file = paths_vm_runtime(p, name, "pid");
	holder = read_pid(file);
	free(file);
	if (holder > 0)
		return tv_errf(err, "VM %s is already running (pid %ld)", name, (long)holder);
	return tv_errf(err, "VM %s is already running", name);
}

int vm_runtime_begin(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	char *pidfile = paths_vm_runtime(p, name, "pid");
	char *tmp = paths_vm_runtime(p, name, "pid.tmp");
	FILE *f;
	int rc = 0;

	unlink_runtime(p, name, "crashed");
	unlink_runtime(p, name, "sock");
	unlink_runtime(p, name, "paused");
	f = fopen(tmp, "w");
	if (f == NULL)
		rc = tv_errno(err, "cannot write %s", tmp);
	else if ((fprintf(f, "%ld\n", (long)getpid()) < 0) | (fclose(f) != 0) ||
		 rename(tmp, pidfile) < 0)
		rc = tv_errno(err, "cannot write %s", pidfile);
	free(pidfile);
	free(tmp);
	return rc;
}

void vm_runtime_set_paused(const struct tv_paths *p, const char *name, bool paused)
{
	char *file = paths_vm_runtime(p, name, "paused");

	if (paused) {
		int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	} else {
		unlink(file);
	}
	free(file);
}

void vm_runtime_set_paused_why(const struct tv_paths *p, const char *name, const char *why)
{
	char *file = paths_vm_runtime(p, name, "paused");
	char *tmp = xasprintf("%s.tmp", file);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	/* Whole or not at all: a reader never sees half a reason. */
	if (fd >= 0) {
		(void)!write(fd, why, strlen(why));
		(void)!write(fd, "\n", 1);
		close(fd);
		if (rename(tmp, file) < 0)
			unlink(tmp);
	}
	free(tmp);
	free(file);
}

void vm_runtime_end(const struct tv_paths *p, const char *name, bool crashed)
{
	char *pidfile = paths_vm_runtime(p, name, "pid");
	char *marker = paths_vm_runtime(p, name, "crashed");

	unlink_runtime(p, name, "sock");
	unlink_runtime(p, name, "paused");
	if (!crashed || rename(pidfile, marker) < 0)
		unlink(pidfile);
	free(pidfile);
	free(marker);
}

void vm_runtime_forget(const struct tv_paths *p, const char *name)
{
	if (vm_is_live(p, name))
		return;
	vm_runtime_end(p, name, false);
	unlink_runtime(p, name, "crashed");
	unlink_runtime(p, name, "lock");
}
