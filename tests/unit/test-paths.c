/* Where things live: the XDG rules, TERMVISOR_HOME, and VM names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "src/core/paths.h"
#include "src/core/fsutil.h"
#include "common/util.h"

static void clear_env(void)
{
	unsetenv("TERMVISOR_HOME");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_DATA_HOME");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	setenv("HOME", "/home/ana", 1);
}

static void test_xdg_defaults(void **state)
{
	struct tv_paths p;
	struct tv_err err;
	char buf[64];

	clear_env();
	assert_int_equal(paths_init(&p, &err), 0);
	assert_string_equal(p.config_dir, "/home/ana/.config/termvisor");
	assert_string_equal(p.vms_dir, "/home/ana/.config/termvisor/vms");
	assert_string_equal(p.data_dir, "/home/ana/.local/share/termvisor");
	assert_string_equal(p.cache_dir, "/home/ana/.cache/termvisor");
	snprintf(buf, sizeof(buf), "/tmp/termvisor-%u", (unsigned)getuid());
	assert_string_equal(p.runtime_dir, buf);
	char *conf = paths_vm_conf(&p, "lab1"), *data = paths_vm_data(&p, "lab1");
	char *sock = paths_vm_runtime(&p, "lab1", "sock"), *set = paths_settings_file(&p);
	assert_string_equal(conf, "/home/ana/.config/termvisor/vms/lab1.conf");
	assert_string_equal(data, "/home/ana/.local/share/termvisor/lab1");
	snprintf(buf, sizeof(buf), "/tmp/termvisor-%u/lab1.sock", (unsigned)getuid());
	assert_string_equal(sock, buf);
	assert_string_equal(set, "/home/ana/.config/termvisor/termvisor.conf");
	free(conf);
	free(data);
	free(sock);
	free(set);
	paths_free(&p);
}

static void test_xdg_variables(void **state)
{
	struct tv_paths p;
	struct tv_err err;

	clear_env();
	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	setenv("XDG_DATA_HOME", "/dat", 1);
	setenv("XDG_CACHE_HOME", "/cache", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	assert_int_equal(paths_init(&p, &err), 0);
	assert_string_equal(p.vms_dir, "/cfg/termvisor/vms");
	assert_string_equal(p.data_dir, "/dat/termvisor");
	assert_string_equal(p.cache_dir, "/cache/termvisor");
	assert_string_equal(p.runtime_dir, "/run/user/1000/termvisor");
	paths_free(&p);
	/* Relative values are ignored, as the XDG specification says. */
	setenv("XDG_DATA_HOME", "relative/dir", 1);
	assert_int_equal(paths_init(&p, &err), 0);
	assert_string_equal(p.data_dir, "/home/ana/.local/share/termvisor");
	paths_free(&p);
}

static void test_termvisor_home(void **state)
{
	struct tv_paths p;
	struct tv_err err;

	clear_env();
	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	setenv("TERMVISOR_HOME", "/media/usb/lab", 1);
	assert_int_equal(paths_init(&p, &err), 0);
	assert_string_equal(p.config_dir, "/media/usb/lab");
	assert_string_equal(p.vms_dir, "/media/usb/lab/vms");
	assert_string_equal(p.data_dir, "/media/usb/lab/data");
	assert_string_equal(p.cache_dir, "/media/usb/lab/cache");
	assert_string_equal(p.runtime_dir, "/media/usb/lab/run");
	paths_free(&p);
	/* A relative TERMVISOR_HOME is taken from the current directory. */
	char *cwd = getcwd(NULL, 0), *want = xasprintf("%s/lab/vms", cwd);
	setenv("TERMVISOR_HOME", "lab", 1);
	assert_int_equal(paths_init(&p, &err), 0);
	assert_string_equal(p.vms_dir, want);
	paths_free(&p);
	free(cwd);
	free(want);
}

static void test_no_home(void **state)
{
	struct tv_paths p;
	struct tv_err err;

	clear_env();
	unsetenv("HOME");
	assert_int_equal(paths_init(&p, &err), -1);
	assert_non_null(strstr(err.msg, "TERMVISOR_HOME"));
}

static void test_resolve(void **state)
{
	char *a = paths_resolve("/data/lab1", "disk.qcow2");
	char *b = paths_resolve("/data/lab1", "/srv/base.qcow2");
	char *c = paths_resolve("/data/lab1", "../shared/base.qcow2");

	assert_string_equal(a, "/data/lab1/disk.qcow2");
	assert_string_equal(b, "/srv/base.qcow2");
	assert_string_equal(c, "/data/lab1/../shared/base.qcow2");
	free(a);
	free(b);
	free(c);
}

static void test_mkdir_and_runtime(void **state)
{
	char top[] = "/tmp/tv-paths.XXXXXX";
	struct tv_paths p;
	struct tv_err err;
	struct stat st;

	assert_non_null(mkdtemp(top));
	clear_env();
	setenv("TERMVISOR_HOME", top, 1);
	assert_int_equal(paths_init(&p, &err), 0);
	char *deep = xasprintf("%s/a/b/c", top);
	assert_int_equal(paths_mkdir(deep, 0755, &err), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(paths_mkdir(deep, 0755, &err), 0); /* again: fine */
	assert_int_equal(paths_runtime_ensure(&p, &err), 0);
	assert_int_equal(stat(p.runtime_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* A file where a directory should be is reported. */
	char *file = xasprintf("%s/plain", top);
	FILE *f = fopen(file, "w");
	fclose(f);
	assert_int_equal(paths_mkdir(file, 0755, &err), -1);
	assert_non_null(strstr(err.msg, "not a directory"));
	remove_tree(top);
	free(deep);
	free(file);
	paths_free(&p);
}

static void test_vm_names(void **state)
{
	struct tv_err err;
	char longname[80];

	assert_int_equal(vm_name_check("lab1", &err), 0);
	assert_int_equal(vm_name_check("web-01_test.v2", &err), 0);
	assert_int_equal(vm_name_check("", &err), -1);
	assert_int_equal(vm_name_check("a/b", &err), -1);
	assert_non_null(strstr(err.msg, "'/'"));
	assert_int_equal(vm_name_check(".hidden", &err), -1);
	assert_int_equal(vm_name_check("-opt", &err), -1);
	assert_int_equal(vm_name_check("..", &err), -1);
	assert_int_equal(vm_name_check("my vm", &err), -1);
	assert_int_equal(vm_name_check("caf\xc3\xa9", &err), -1);
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_int_equal(vm_name_check(longname, &err), -1);
	assert_non_null(strstr(err.msg, "too long"));
	longname[64] = '\0';
	assert_int_equal(vm_name_check(longname, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xdg_defaults),    cmocka_unit_test(test_xdg_variables),
		cmocka_unit_test(test_termvisor_home),  cmocka_unit_test(test_no_home),
		cmocka_unit_test(test_resolve),         cmocka_unit_test(test_mkdir_and_runtime),
		cmocka_unit_test(test_vm_names),
	};
	return cmocka_run_group_tests_name("paths", tests, NULL, NULL);
}
