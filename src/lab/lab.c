/* Finding, starting and running a lab network's switch (see lab.h). */
#include <errno.h>
#include <stdbool.h>
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
#include "vm/net/net.h"

#define LAB_NAME_MAX	  64
#define LAB_SOCKBUF	  (4 << 20)
#define LAB_START_WAIT_MS 10000 /* a switch starting on an emulated machine is slow */

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
	int fd = -1, lk = -1, rc;

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

/* Whether a switch serves path: a datagram socket connects only to a bound one
 * (a dead switch's file refuses). */
static bool lab_socket_live(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

/* Starts `lab-switch NAME` from this very program (termvisor, or the VM
 * process's termvisor-engine, which knows that command too) as a grandchild
 * in a session of its own, with nothing of ours open: exec drops the caller's
 * memory (a VM's RAM) at once, and init reaps it. Between fork and exec only
 * async-signal-safe calls: the caller may have threads. */
static int lab_spawn(const char *name, struct tv_err *err)
{
	char *const argv[] = {"termvisor", "lab-switch", (char *)name, NULL};
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return tv_errno(err, "lab network %s: starting its switch", name);
	if (pid == 0) {
		setsid();
		if (fork() == 0) {
			int null = open("/dev/null", O_RDWR);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
			}
			close_range(3, ~0u, 0);
			execv("/proc/self/exe", argv);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

int lab_ensure_switch(const struct tv_paths *p, const char *name, char *sockpath, size_t len,
		      struct tv_err *err)
{
	if (lab_socket_path(p, name, sockpath, len, err) < 0)
		return -1;
	if (lab_socket_live(sockpath))
		return 0;
	/* Two VMs starting at once may both spawn one: the second finds the lock
	 * taken and ends, and both find the first's socket. */
	if (lab_spawn(name, err) < 0)
		return -1;
	for (int i = 0; i < LAB_START_WAIT_MS / 10; i++) {
		if (lab_socket_live(sockpath))
			return 0;
		usleep(10000);
	}
	return tv_errf(err, "lab network %s: its switch did not start within %d s (%s)", name,
		       LAB_START_WAIT_MS / 1000, sockpath);
}

int lab_switch_spawned(int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct lab_stats st = {0};
	struct tv_err err;
	int rc;

	if (argc != 3 || paths_init(&paths, &err) < 0)
		return 2;
	rc = lab_switch_run(&paths, argv[2], LAB_LINGER_S, &st, &err) < 0 ? 1 : 0;
	paths_free(&paths);
	return rc;
}

int lab_nics_prepare(struct vm_nic *nics, size_t n, struct tv_err *err)
{
	struct tv_paths paths = {0};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		struct vm_nic *nic = &nics[i];
		if (nic->mode != NET_MODE_LAB || nic->lab_socket[0])
			continue;
		if (!paths.runtime_dir && paths_init(&paths, err) < 0)
			return -1;
		rc = lab_ensure_switch(&paths, nic->lab_name, nic->lab_socket,
				       sizeof(nic->lab_socket), err);
	}
	paths_free(&paths);
	return rc;
}
