#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/core/runtime.h"
#include "common/util.h"

static struct tv_paths paths;
static char home[] = "/tmp/tv-runtime.XXXXXX";

static int setup(void **state)
{
	struct tv_err err;

	if (mkdtemp(home) == NULL)
		return -1;
	setenv("TERMVISOR_HOME", home, 1);
	if (paths_init(&paths, &err) < 0 || paths_runtime_ensure(&paths, &err) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", home);

	(void)!system(cmd);
	free(cmd);
	paths_free(&paths);
	return 0;
}

static bool exists(const char *suffix)
{
	char *f = paths_vm_runtime(&paths, "lab", suffix);
	bool r = access(f, F_OK) == 0;

	free(f);
	return r;
}

static void touch(const char *suffix)
{
	char *f = paths_vm_runtime(&paths, "lab", suffix);
	FILE *fp = fopen(f, "w");

	fclose(fp);
	free(f);
}

/* A stand-in VM process: takes the lock, writes its pid file, waits. */
static pid_t fake_vm(int ready[2])
{
	pid_t pid = fork();

	if (pid == 0) {
		struct tv_err err;
		if (vm_lock_take(&paths, "lab", &err) < 0 ||
		    vm_runtime_begin(&paths, "lab", &err) < 0)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	return pid;
}

static void test_states(void **state)
{
	struct vm_status st;
	struct tv_err err;
	int ready[2];
	pid_t pid;

	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_STOPPED);
	assert_false(vm_is_live(&paths, "lab"));

	assert_int_equal(pipe(ready), 0);
	pid = fake_vm(ready);
	touch("sock");
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_RUNNING);
	assert_int_equal(st.pid, pid);
	assert_true(vm_is_live(&paths, "lab"));
	vm_runtime_set_paused(&paths, "lab", true);
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_PAUSED);
	assert_string_equal(st.reason, "");
	/* Paused by itself (a full disk): why, whole. */
	vm_runtime_set_paused_why(&paths, "lab", "disk.qcow2: no space left on device");
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_PAUSED);
	assert_string_equal(st.reason, "disk.qcow2: no space left on device");

	/* A second VM process for the same VM is refused, naming the first. */
	assert_int_equal(vm_lock_take(&paths, "lab", &err), -1);
	char want[64];
	snprintf(want, sizeof(want), "already running (pid %ld)", (long)pid);
	assert_non_null(strstr(err.msg, want));

	/* Killed outright: crashed, stale files cleaned, remembered. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_CRASHED);
	assert_false(exists("pid"));
	assert_false(exists("sock"));
	assert_false(exists("paused"));
	assert_true(exists("crashed"));
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_CRASHED);

	/* The next start takes the lock and clears the crash. */
	int fd = vm_lock_take(&paths, "lab", &err);
	assert_true(fd >= 0);
	assert_int_equal(vm_runtime_begin(&paths, "lab", &err), 0);
	assert_false(exists("crashed"));
	vm_runtime_end(&paths, "lab", false);
	close(fd);
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_STOPPED);

	/* A guest crash ends the process cleanly but is remembered as one. */
	fd = vm_lock_take(&paths, "lab", &err);
	vm_runtime_begin(&paths, "lab", &err);
	vm_runtime_end(&paths, "lab", true);
	close(fd);
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_CRASHED);
	vm_runtime_forget(&paths, "lab");
	vm_status_probe(&paths, "lab", &st);
	assert_int_equal(st.state, VM_STOPPED);
	close(ready[0]);
	close(ready[1]);
}

static void test_log_tail(void **state)
{
	char *dir = paths_vm_data(&paths, "lab");
	char *log = vm_log_path(&paths, "lab");
	struct tv_err err;
	FILE *f;
	char *tail;

	assert_null(vm_log_tail(&paths, "lab", 3));
	assert_int_equal(paths_mkdir(dir, 0700, &err), 0);
	f = fopen(log, "w");
	fputs("one\r\ntwo\r\n\n\n\033[31mthree\033[m\r\n   \nfour\n\n", f);
	fclose(f);
	tail = vm_log_tail(&paths, "lab", 3);
	/* Blank lines do not count; escapes cannot reach the terminal. */
	assert_string_equal(tail, "two\n?[31mthree?[m\nfour");
	free(tail);
	tail = vm_log_tail(&paths, "lab", 10);
	assert_string_equal(tail, "one\ntwo\n?[31mthree?[m\nfour");
	free(tail);
	free(dir);
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_log_tail),
	};

	return cmocka_run_group_tests_name("runtime", tests, setup, teardown);
}
