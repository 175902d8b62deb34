/* The VM process's sandbox (src/vmm/sandbox.c), installed in forked children:
 * the work a VM process does goes on (files in an allowed directory, a
 * thread, a socket pair, a timer, the exit handlers, a sanitizer's leak scan
 * among them); a forbidden call (execve, from the main thread or from a
 * thread that blocks every other signal; a fork; an x32 call) ends the child
 * with the line naming it on its stderr and the sandbox's exit status;
 * clone3 answers ENOSYS; where the kernel has
 * Landlock, a file outside the allowed paths cannot be opened; a disk's
 * io_uring ring made before the sandbox reads a file but refuses an openat,
 * and no new ring can be made nor a ring changed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "src/vmm/sandbox.h"
#include "vm/block/uring.h"

static char inside[64], outside[64];

static int setup(void **state)
{
	char file[128];
	int fd;

	(void)state;
	snprintf(inside, sizeof(inside), "/tmp/tv-sbx-in-XXXXXX");
	snprintf(outside, sizeof(outside), "/tmp/tv-sbx-out-XXXXXX");
	if (mkdtemp(inside) == NULL || mkdtemp(outside) == NULL)
		return -1;
	snprintf(file, sizeof(file), "%s/data", inside);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "inside", 6) != 6)
		return -1;
	close(fd);
	snprintf(file, sizeof(file), "%s/secret", outside);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "secret", 6) != 6)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	char cmd[200];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", inside, outside);
	return system(cmd) == 0 ? 0 : -1;
}

static bool have_landlock(void)
{
	return syscall(__NR_landlock_create_ruleset, NULL, 0, 1U) >= 0;
}

/* Runs fn in a child that installed the sandbox (inside allowed, read and
 * write); returns its wait status, its stderr in out. A child still there
 * after 60 s (a sanitizer's exit-time scan stuck on a forbidden call) is
 * killed and fails the test. */
static int (*before_install)(void); /* run in the child first, if set */

static int in_sandbox(int (*fn)(void), char *out, size_t len)
{
	int pfd[2], status = 0, waited = 0;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sandbox s = {0};
		struct tv_err err;
		char note[160];

		close(pfd[0]);
		dup2(pfd[1], 2);
		if (before_install != NULL && before_install() != 0)
			_exit(101);
		sandbox_allow(&s, inside, SANDBOX_READ_WRITE);
		sandbox_allow(&s, "/nonexistent/left/out", SANDBOX_READ);
		sandbox_allow(&s, "/proc/self", SANDBOX_READ); /* as the VM process */
		if (sandbox_install(&s, note, sizeof(note), &err) < 0) {
			dprintf(2, "install: %s\n", err.msg);
			_exit(100);
		}
		sandbox_free(&s);
		_exit(fn());
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) == 0) {
			if (++waited < 600)
				continue;
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the sandboxed child did not end in 60 s");
		}
		n = read(pfd[0], out + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void *thread_main(void *arg)
{
	return arg;
}

/* What a VM process does all day. Returns 0, or the step that failed. */
static int allowed_work(void)
{
	char file[128], buf[16] = "";
	pthread_t t;
	void *ret = NULL;
	int sv[2], fd, tfd;

	snprintf(file, sizeof(file), "%s/data", inside);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != 6 || strcmp(buf, "inside") != 0)
		return 1;
	close(fd);
	snprintf(file, sizeof(file), "%s/new", inside);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, "x", 1, 4096) != 1 || ftruncate(fd, 8192) < 0 || fsync(fd) < 0)
		return 2;
	close(fd);
	if (pthread_create(&t, NULL, thread_main, (void *)1) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != (void *)1)
		return 3;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || write(sv[0], "ab", 2) != 2 ||
	    read(sv[1], buf, 2) != 2)
		return 4;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0)
		return 5;
	/* clone3 is answered, not fatal: the C library falls back to clone. */
	if (syscall(__NR_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 6;
	return 0;
}

static int try_execve(void)
{
	char *const argv[] = {"/bin/true", NULL};

	execve(argv[0], argv, argv + 1);
	return 50; /* not reached when confined */
}

/* An engine's device thread: every signal blocked but SIGSYS. */
static void *thread_execve(void *arg)
{
	char *const argv[] = {"/bin/true", NULL};

	execve(argv[0], argv, argv + 1);
	return arg;
}

static int try_execve_in_thread(void)
{
	sigset_t all, old;
	pthread_t t;

	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, NULL, thread_execve, NULL) != 0)
		return 53;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_join(t, NULL);
	return 54;
}

/* The end of a VM process: exit handlers (a sanitizer's leak scan) run. */
static int exit_normally(void)
{
	exit(0);
}

static int try_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return 51;
}

static int try_x32(void)
{
	syscall(__X32_SYSCALL_BIT | __NR_getpid);
	return 52;
}

static int open_outside(void)
{
	char file[128];
	int fd;

	snprintf(file, sizeof(file), "%s/secret", outside);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return 60; /* read what it must not */
	return errno == EACCES ? 0 : 61;
}

/* fn runs to its end in the sandbox: status 0, no report. */
static void expect_clean(int (*fn)(void))
{
	char out[4096];
	int st = in_sandbox(fn, out, sizeof(out));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		print_message("child stderr: %s\n", out);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_null(strstr(out, "forbidden"));
}

static void test_allowed_work(void **state)
{
	(void)state;
	expect_clean(allowed_work);
}

static void test_exit_handlers(void **state)
{
	(void)state;
	expect_clean(exit_normally);
}

static void expect_forbidden(int (*fn)(void), const char *line)
{
	char out[1024];
	int st = in_sandbox(fn, out, sizeof(out));

	if (strstr(out, line) == NULL)
		print_message("child stderr: %s\n", out);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), SANDBOX_EXIT_STATUS);
	assert_non_null(strstr(out, line));
	assert_non_null(strstr(out, "in thread "));
}

static void test_execve(void **state)
{
	(void)state;
	expect_forbidden(try_execve, "termvisor: sandbox: forbidden system call execve (59)");
}

static void test_execve_in_thread(void **state)
{
	(void)state;
	expect_forbidden(try_execve_in_thread,
			 "termvisor: sandbox: forbidden system call execve (59)");
}

static void test_fork(void **state)
{
	(void)state;
	expect_forbidden(try_fork, "termvisor: sandbox: forbidden system call clone (56)");
}

static void test_x32(void **state)
{
	(void)state;
	expect_forbidden(try_x32, "forbidden system call of the x32 ABI number");
}

static void test_landlock(void **state)
{
	(void)state;
	if (!have_landlock()) {
		print_message("skipped: this kernel has no Landlock (landlock_create_ruleset "
			      "failed: %s)\n",
			      strerror(errno));
		skip();
	}
	expect_clean(open_outside);
}

#ifdef HAVE_LIBURING
static struct io_uring ring;

static int make_ring(void)
{
	return blk_uring_init(&ring, 8) == 0 ? 0 : 1;
}

/* One submission on the ring, its result (or 1000 when it went wrong). */
static int ring_result(void)
{
	struct io_uring_cqe *cqe;
	int res;

	if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe) != 0)
		return 1000;
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return res;
}

static int use_ring(void)
{
	char file[128], buf[8] = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = 6};
	struct io_uring other;
	int fd;

	snprintf(file, sizeof(file), "%s/data", inside);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 70;
	io_uring_prep_readv(io_uring_get_sqe(&ring), fd, &iov, 1, 0);
	if (ring_result() != 6 || memcmp(buf, "inside", 6) != 0)
		return 71; /* the disks' way of reading */
	/* A file the sandbox lets the process open itself: only the ring's
	 * restriction refuses it. */
	io_uring_prep_openat(io_uring_get_sqe(&ring), AT_FDCWD, file, O_RDONLY, 0);
	if (ring_result() != -EACCES)
		return 72;
	io_uring_prep_socket(io_uring_get_sqe(&ring), AF_INET, SOCK_STREAM, 0, 0);
	if (ring_result() != -EACCES)
		return 73;
	if (io_uring_queue_init(8, &other, 0) != -EPERM)
		return 74; /* an unrestricted ring */
	if (syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_PROBE, NULL, 0) != -1 ||
	    errno != EPERM)
		return 75;
	io_uring_queue_exit(&ring);
	close(fd);
	return 0;
}
#endif

static void test_io_uring(void **state)
{
	(void)state;
#ifdef HAVE_LIBURING
	int rc = blk_uring_init(&ring, 8);

	if (rc == -ENOSYS || rc == -EPERM) {
		print_message("skipped: io_uring is not available here (%s)\n", strerror(-rc));
		skip();
	}
	assert_int_equal(rc, 0);
	io_uring_queue_exit(&ring);
	before_install = make_ring;
	expect_clean(use_ring);
	before_install = NULL;
#else
	print_message("skipped: built without liburing\n");
	skip();
#endif
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(sandbox_syscall_name(__NR_execve), "execve");
	assert_string_equal(sandbox_syscall_name(__NR_ptrace), "ptrace");
	assert_string_equal(sandbox_syscall_name(__NR_read), "read");
	assert_null(sandbox_syscall_name(100000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_allowed_work),
		cmocka_unit_test(test_execve),
		cmocka_unit_test(test_execve_in_thread),
		cmocka_unit_test(test_exit_handlers),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_x32),
		cmocka_unit_test(test_landlock),
		cmocka_unit_test(test_io_uring),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
