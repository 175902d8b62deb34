/* The command line between the launcher and termvisor-engine (src/vmm/args.c):
 * every setting written by vmm_argv comes back from vmm_args_parse, the
 * snapshot to restore at start-up included, and a restore tag without a
 * snapshot is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "src/vmm/vmm.h"

static int argc_of(char **argv)
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

static void test_roundtrip(void **state)
{
	struct vmm_opts o, back;
	struct tv_err err;
	char **argv;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.cfg.kernel = "/k/demo elf";
	o.cfg.cmdline = "console=ttyS0 quiet";
	o.cfg.cpus = 2;
	o.cfg.memory = 64 << 20;
	o.cfg.ndisks = 1;
	o.disks[0].path = "/d/disk one.qcow2";
	o.disks[0].format = "qcow2";
	/* Two NICs: every field comes back, the MAC included. */
	o.cfg.nnics = 2;
	o.cfg.nics = o.nics;
	assert_int_equal(vmm_net_parse("user,mac=52:54:00:00:00:07,forward=tcp:0.0.0.0:8080:80",
				       &o.nics[0], &err),
			 0);
	assert_int_equal(vmm_net_parse("tap,ifname=tv-lab1,bridge=br0", &o.nics[1], &err), 0);
	o.name = "lab";
	o.restore_dir = "/data/lab/snapshots/0000000000000003";
	o.restore_tag = "s1";
	o.keep_automatic_set = true;
	o.keep_automatic = 0;
	o.no_sandbox = true;
	argv = vmm_argv(&o, "termvisor-engine");
	assert_int_equal(vmm_args_parse(argc_of(argv), argv, &back, &err), 0);
	assert_string_equal(back.cfg.kernel, o.cfg.kernel);
	assert_string_equal(back.cfg.cmdline, o.cfg.cmdline);
	assert_int_equal(back.cfg.cpus, 2);
	assert_int_equal(back.cfg.memory, 64 << 20);
	assert_int_equal(back.cfg.ndisks, 1);
	assert_string_equal(back.disks[0].path, o.disks[0].path);
	assert_int_equal(back.cfg.nnics, 2);
	assert_ptr_equal(back.cfg.nics, back.nics);
	assert_memory_equal(&back.nics[0], &o.nics[0], sizeof(o.nics[0]));
	assert_memory_equal(&back.nics[1], &o.nics[1], sizeof(o.nics[1]));
	assert_string_equal(back.name, "lab");
	assert_string_equal(back.restore_dir, o.restore_dir);
	assert_string_equal(back.restore_tag, "s1");
	assert_true(back.keep_automatic_set);
	assert_int_equal(back.keep_automatic, 0);
	assert_true(back.no_sandbox);
	vmm_argv_free(argv);

	/* Without a snapshot, no restore options at all. */
	o.restore_dir = o.restore_tag = NULL;
	o.keep_automatic_set = false;
	o.no_sandbox = false; /* confined: nothing on the command line says so */
	argv = vmm_argv(&o, "termvisor-engine");
	for (int i = 0; argv[i] != NULL; i++)
		assert_null(strstr(argv[i], "--restore"));
	assert_int_equal(vmm_args_parse(argc_of(argv), argv, &back, &err), 0);
	assert_null(back.restore_dir);
	assert_null(back.restore_tag);
	assert_false(back.keep_automatic_set);
	assert_false(back.no_sandbox);
	vmm_argv_free(argv);
}

static void test_restore_tag_needs_dir(void **state)
{
	char *argv[] = {"termvisor-engine", "--kernel", "/k", "--restore-tag", "s1", NULL};
	struct vmm_opts o;
	struct tv_err err;

	(void)state;
	assert_int_equal(vmm_args_parse(5, argv, &o, &err), -1);
	assert_non_null(strstr(err.msg, "--restore"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_restore_tag_needs_dir),
	};

	return cmocka_run_group_tests_name("vmm-args", tests, NULL, NULL);
}
