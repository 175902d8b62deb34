/* Finding, starting and running a lab network's switch (see lab.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "src/lab/lab.h"

#define LAB_NAME_MAX 64
#define LAB_SOCKBUF (4 << 20)

static char *lab_dir(const struct tv_paths *p)
{
	return xasprintf("%s/lab", p->runtime_dir);
}

int lab_socket_path(const struct tv_paths *p, const char *name, char *sockpath, size_t len,
		    struct tv_err *err)
{
	struct sockaddr_un sa;
	char *dir;
	int n;

	if (name_check("lab network name", name, LAB_NAME_MAX, err) < 0)
		return -1;
	dir = lab_dir(p);
	n = snprintf(sockpath, len, "%s/%s.sock", dir, name);
	free(dir);
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(sa.sun_path))
		return tv_errf(err,
			       "lab network %s: its socket path under %s is longer than a UNIX "
			       "socket allows (%zu bytes); use a shorter name or runtime directory",
			       name, p->runtime_dir, sizeof(sa.sun_path) - 1);
	return 0;
}

/* Takes the network's lock and binds its socket. Returns 0 with both
 * descriptors, 1 when a switch already holds the lock, -1 on error. */
static int lab_bind(const struct tv_paths *p, const char *name, const char *sockpath, int *sockfd,
		    int *lockfd, struct tv_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int size = LAB_SOCKBUF, fd, lk;
	char *dir, *lock;

	if (paths_runtime_ensure(p, err) < 0)
		return -1;
	dir = lab_dir(p);
	if (paths_mkdir(dir, 0700, err) < 0) {
		free(dir);
		return -1;
	}
	lock = xasprintf("%s/%s.lock", dir, name);
	free(dir);
	lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lk < 0) {
		tv_errno(err, "lab network %s: %s", name, lock);
		free(lock);
		return -1;
	}
	free(lock);
	if (flock(lk, LOCK_EX | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;
		if (!busy)
			tv_errno(err, "lab network %s: lock", name);
		close(lk);
		return busy ? 1 : -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		close(lk);
		return tv_errno(err, "lab network %s: socket", name);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sockpath);
	unlink(sockpath); /* a switch that died left it; we hold the lock */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sockpath, 0600) < 0) {
		tv_errno(err, "lab network %s: %s", name, sockpath);
		close(fd);
		close(lk);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	*sockfd = fd;
	*lockfd = lk;
	return 0;
}

static volatile int lab_stop;

static void lab_on_signal(int sig)
{
	lab_stop = 1;
}

static void lab_signals(void)
{
	struct sigaction sa = {.sa_handler = lab_on_signal};
	sigset_t none;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int lab_switch_run(const struct tv_paths *p, const char *name, unsigned linger_s,
		   struct lab_stats *stats, struct tv_err *err)
{
	char path[108];
	int fd, lk, rc;

	if (lab_socket_path(p, name, path, sizeof(path), err) < 0)
		return -1;
	rc = lab_bind(p, name, path, &fd, &lk, err);
	if (rc == 1)
		return tv_errf(err, "lab network %s: a switch already serves it at %s", name, path);
	if (rc < 0)
		return -1;
	lab_stop = 0;
	lab_signals();
	rc = lab_switch_loop(fd, linger_s, &lab_stop, stats);
	unlink(path); /* still under the lock: no new switch has bound it */
	close(fd);
	close(lk);
	return rc < 0 ? tv_errf(err, "lab network %s: out of memory", name) : 0;
}

/* The background switch: a grandchild of the caller, in its own session, with
 * nothing of the caller's open but its socket and lock. */
static void lab_daemon(int fd, int lk)
{
	struct lab_stats stats = {0};
	int null = open("/dev/null", O_RDWR);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	/* 3 and 4 are ours: move the descriptors there, close everything else */
	if (fd != 3) {
		if (lk == 3)
			lk = dup(lk);
		dup2(fd, 3);
	}
	if (lk != 4)
		dup2(lk, 4);
	close_range(5, ~0u, 0);
	lab_signals();
	lab_switch_loop(3, LAB_LINGER_S, &lab_stop, &stats);
}

int lab_ensure_switch(const struct tv_paths *p, const char *name, char *sockpath, size_t len,
		      struct tv_err *err)
{
	int fd, lk, rc, status;
	pid_t pid;

	if (lab_socket_path(p, name, sockpath, len, err) < 0)
		return -1;
	rc = lab_bind(p, name, sockpath, &fd, &lk, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0; /* 1: a switch serves it already */
	pid = fork();
	if (pid < 0) {
		unlink(sockpath);
		close(fd);
		close(lk);
		return tv_errno(err, "lab network %s: starting its switch", name);
	}
	if (pid == 0) {
		setsid();
		if (fork() == 0) {
			lab_daemon(fd, lk);
			unlink(sockpath);
		}
		_exit(0);
	}
	close(fd);
	close(lk); /* the switch holds its own copy of the lock */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}
