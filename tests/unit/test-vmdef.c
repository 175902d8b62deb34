/* VM definitions: every field, valid and invalid, and writing back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "src/core/vmdef.h"
#include "src/core/fsutil.h"
#include "common/util.h"

static char dir[64];
static char warnings[2048];

static void collect(void *ctx, const char *msg)
{
	strncat(warnings, msg, sizeof(warnings) - strlen(warnings) - 2);
	strcat(warnings, "\n");
}

static char *write_def(const char *name, const char *text)
{
	char *file = xasprintf("%s/%s.conf", dir, name);
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return file;
}

/* Loads text as NAME.conf; returns 0/-1 and leaves the error in err. */
static int load(const char *name, const char *text, struct vmdef *d, struct tv_err *err)
{
	char *file = write_def(name, text);
	int rc;

	warnings[0] = '\0';
	rc = vmdef_load(file, "/data/vm", d, collect, NULL, err);
	free(file);
	return rc;
}

/* Expects text to fail with a message containing "NAME.conf:LINE: want". */
static void expect_error(const char *text, int line, const char *want)
{
	struct vmdef d;
	struct tv_err err;
	char where[64];

	assert_int_equal(load("bad", text, &d, &err), -1);
	snprintf(where, sizeof(where), "bad.conf:%d: ", line);
	if (strstr(err.msg, where) == NULL || strstr(err.msg, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\" and \"%s\"", err.msg, where, want);
	vmdef_free(&d);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/tv-vmdef.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	remove_tree(dir);
	return 0;
}

static void test_full_definition(void **state)
{
	struct vmdef d;
	struct tv_err err;
	const char *text = "name = \"lab1\";\n"
			   "description = \"web lab\";\n"
			   "cpus = 4;\n"
			   "memory = \"2G\";\n"
			   "kernel = \"vmlinuz\";\n"
			   "initrd = \"/boot/initrd.img\";\n"
			   "cmdline = \"console=ttyS0 root=/dev/vda\";\n"
			   "disks = ( { file = \"root.qcow2\"; },\n"
			   "          { file = \"data.img\"; readonly = true; aio = \"threads\";\n"
			   "            serial = \"data-01\"; on_error = \"report\"; },\n"
			   "          { file = \"x.bin\"; format = \"raw\"; } );\n"
			   "net = ( { mode = \"user\"; mac = \"52:54:00:12:34:56\";\n"
			   "          forward = ( \"tcp::2222:22\", \"udp:0.0.0.0:5353:53\" ); },\n"
			   "        { mode = \"tap\"; ifname = \"tap0\"; bridge = \"br0\"; },\n"
			   "        { type = \"lab\"; name = \"lab1\"; } );\n"
			   "ssh_user = \"student\";\n"
			   "autostart = true;\n"
			   "debug_exit = true;\n"
			   "sandbox = false;\n";

	assert_int_equal(load("lab1", text, &d, &err), 0);
	assert_string_equal(d.name, "lab1");
	assert_string_equal(d.description, "web lab");
	assert_int_equal(d.cpus, 4);
	assert_true(d.memory == 2ULL << 30);
	assert_string_equal(d.kernel, "vmlinuz");
	assert_string_equal(d.cmdline, "console=ttyS0 root=/dev/vda");
	assert_int_equal(d.ndisks, 3);
	assert_int_equal(d.disks[0].format, DISK_FORMAT_QCOW2);
	assert_false(d.disks[0].readonly);
	assert_int_equal(d.disks[1].format, DISK_FORMAT_RAW);
	assert_true(d.disks[1].readonly);
	assert_int_equal(d.disks[0].aio, VM_AIO_DEFAULT);
	assert_int_equal(d.disks[1].aio, VM_AIO_THREADS);
	assert_int_equal(d.disks[0].on_error, VM_ON_ERROR_PAUSE);
	assert_int_equal(d.disks[1].on_error, VM_ON_ERROR_REPORT);
	assert_null(d.disks[0].serial);
	assert_string_equal(d.disks[1].serial, "data-01");
	assert_int_equal(d.disks[2].format, DISK_FORMAT_RAW);
	assert_int_equal(d.nnets, 3);
	assert_int_equal(d.nets[0].mode, NET_MODE_USER);
	assert_int_equal(d.nets[0].nforwards, 2);
	/* Forwards are kept as written back: the loopback address spelled out. */
	assert_string_equal(d.nets[0].forwards[0], "tcp:127.0.0.1:2222:22");
	assert_string_equal(d.nets[0].forwards[1], "udp:0.0.0.0:5353:53");
	assert_int_equal(d.nets[1].mode, NET_MODE_TAP);
	assert_string_equal(d.nets[1].ifname, "tap0");
	assert_string_equal(d.nets[1].bridge, "br0");
	assert_int_equal(d.nets[2].mode, NET_MODE_LAB); /* "type": the older key */
	assert_string_equal(d.nets[2].name, "lab1");
	assert_string_equal(d.ssh_user, "student");
	/* The engine's view: MAC parsed, forwards parsed; a NIC without a MAC
	 * gets one derived from the VM's name, the same each time. */
	struct vm_nic nic, nic2;
	assert_int_equal(vmdef_nic(&d, 0, &nic, &err), 0);
	assert_int_equal(nic.mac[5], 0x56);
	assert_int_equal(nic.nforwards, 2);
	assert_int_equal(nic.forwards[0].host_port, 2222);
	assert_int_equal(vmdef_nic(&d, 2, &nic, &err), 0);
	assert_int_equal(vmdef_nic(&d, 2, &nic2, &err), 0);
	assert_memory_equal(nic.mac, nic2.mac, 6);
	assert_int_equal(nic.mac[0], 0x52);
	assert_string_equal(nic.lab_name, "lab1");
	assert_true(d.autostart);
	assert_true(d.debug_exit);
	assert_true(d.sandbox_off);
	assert_string_equal(warnings, "");

	char *k = vmdef_path(&d, d.kernel), *i = vmdef_path(&d, d.initrd);
	assert_string_equal(k, "/data/vm/vmlinuz");
	assert_string_equal(i, "/boot/initrd.img");
	free(k);
	free(i);
	vmdef_free(&d);
}

static void test_defaults(void **state)
{
	struct vmdef d;
	struct tv_err err;

	assert_int_equal(load("empty", "# nothing set\n", &d, &err), 0);
	assert_string_equal(d.name, "empty");
	assert_int_equal(d.cpus, 1);
	assert_true(d.memory == 512ULL << 20);
	assert_null(d.kernel);
	assert_int_equal(d.ndisks, 0);
	assert_false(d.autostart);
	assert_false(d.debug_exit); /* test machines only ask for it */
	assert_false(d.sandbox_off); /* confined unless told */
	vmdef_free(&d);
}

static void test_memory_forms(void **state)
{
	struct vmdef d;
	struct tv_err err;

	assert_int_equal(load("m", "memory = 256;\n", &d, &err), 0); /* MiB */
	assert_true(d.memory == 256ULL << 20);
	vmdef_free(&d);
	assert_int_equal(load("m", "memory = \"1.5G\";\n", &d, &err), 0);
	assert_true(d.memory == 3ULL << 29);
	vmdef_free(&d);
}

static void test_field_errors(void **state)
{
	expect_error("cpus = 2;\nmemory = \"lots\";\n", 2,
		     "memory: expected a size like 512M or 2G");
	expect_error("\n\n\n\n\n\nmemory = true;\n", 7, "memory: expected a size like 512M or 2G");
	expect_error("memory = \"1K\";\n", 1, "memory: 1K is out of range");
	expect_error("memory = \"2T\";\n", 1, "memory: 2T is out of range");
	expect_error("memory = \"1048577\";\n", 1, "memory: ");
	expect_error("cpus = 0;\n", 1, "cpus: expected a whole number from 1 to 64, not 0");
	expect_error("cpus = 65;\n", 1, "cpus: expected a whole number from 1 to 64");
	expect_error("cpus = \"two\";\n", 1, "cpus: expected a whole number");
	expect_error("name = \"other\";\n", 1, "name: \"other\" does not match the file name");
	expect_error("kernel = 5;\n", 1, "kernel: expected a string");
	expect_error("kernel = \"\";\n", 1, "kernel: expected a file name");
	expect_error("initrd = [1];\n", 1, "initrd: expected a string");
	expect_error("autostart = \"yes\";\n", 1, "autostart: expected true or false");
	expect_error("debug_exit = 1;\n", 1, "debug_exit: expected true or false");
	expect_error("sandbox = \"off\";\n", 1, "sandbox: expected true or false");
	expect_error("description = 3;\n", 1, "description: expected a string");
	expect_error("disks = 5;\n", 1, "disks: expected a list");
	expect_error("disks = ( { format = \"qcow2\"; } );\n", 1, "disks[0]: expected a file");
	expect_error("disks = ( { file = \"a.qcow2\"; format = \"vmdk\"; } );\n", 1,
		     "disks[0].format: expected \"qcow2\" or \"raw\"");
	expect_error("disks = ( \"a.qcow2\",\n { file = \"b.vdi\"; } );\n", 2,
		     "disks[1]: cannot tell the format of \"b.vdi\"");
	expect_error("disks = ( { file = \"a.qcow2\"; readonly = 1; } );\n", 1,
		     "disks[0].readonly: expected true or false");
	expect_error("disks = ( { file = \"a.qcow2\"; aio = \"native\"; } );\n", 1,
		     "disks[0].aio: expected \"threads\" or \"io_uring\"");
	expect_error("disks = ( { file = \"a.qcow2\"; on_error = \"stop\"; } );\n", 1,
		     "disks[0].on_error: expected \"pause\" or \"report\"");
	expect_error("disks = ( { file = \"a.qcow2\"; serial = \"123456789012345678901\"; } );\n",
		     1, "disks[0].serial: expected 1 to 20 printable characters");
	expect_error("disks = ( { file = \"a.qcow2\"; serial = \"two words\"; } );\n", 1,
		     "disks[0].serial: expected 1 to 20 printable characters");
	expect_error("disks = ( { file = \"a.qcow2\"; serial = 5; } );\n", 1,
		     "disks[0].serial: expected 1 to 20 printable characters");
	expect_error("net = ( { mac = \"52:54:00:12:34:56\"; } );\n", 1,
		     "net[0]: expected mode = \"user\", \"lab\" or \"tap\"");
	expect_error("net = ( { mode = \"bridge\"; } );\n", 1,
		     "net[0].mode: expected \"user\", \"lab\" or \"tap\"");
	expect_error("net = ( { mode = \"user\"; mac = \"01:00:5e:00:00:01\"; } );\n", 1,
		     "net[0].mac: expected a unicast MAC address");
	expect_error("net = ( { mode = \"user\"; mac = \"52:54:00:12:34\"; } );\n", 1,
		     "net[0].mac");
	expect_error("net = ( { mode = \"tap\"; } );\n", 1, "net[0]: mode \"tap\" needs ifname");
	expect_error("net = ( { mode = \"lab\"; } );\n", 1, "net[0]: mode \"lab\" needs name");
	expect_error("net = ( { mode = \"lab\"; name = \"a b\"; } );\n", 1,
		     "net[0].name: expected a lab network name");
	expect_error("net = ( { mode = \"lab\"; name = \"l\"; forward = ( \"tcp::1:2\" ); } );\n",
		     1, "net[0]: forward applies to mode \"user\" only");
	expect_error("net = ( { mode = \"user\"; ifname = \"tap0\"; } );\n", 1,
		     "net[0]: ifname and bridge apply to mode \"tap\" only");
	expect_error("net = ( { mode = \"user\";\n forward = ( \"tcp::99999:22\" ); } );\n", 2,
		     "net[0].forward: forward \"tcp::99999:22\": host port \"99999\"");
	expect_error("net = ( { mode = \"user\"; forward = ( \"sctp::1:2\" ); } );\n", 1,
		     "net[0].forward: forward \"sctp::1:2\": protocol \"sctp\"");
	expect_error("net = ( { mode = \"user\"; forward = ( \"tcp::22:22\", \"tcp:127.0.0.1:22:23\" ); } );\n",
		     1, "host port 22 is forwarded twice");
	expect_error("net = ( {mode=\"user\";}, {mode=\"user\";}, {mode=\"user\";}, {mode=\"user\";},\n"
		     "{mode=\"user\";} );\n",
		     1, "net: 5 interfaces, expected at most 4");
	expect_error("ssh_user = \"-oProxyCommand=x\";\n", 1, "ssh_user: expected a user name");
	char *longline = xmalloc(5000);
	strcpy(longline, "cmdline = \"");
	memset(longline + 11, 'x', 4200);
	strcpy(longline + 4211, "\";\n");
	expect_error(longline, 1, "cmdline: expected at most 4095 characters");
	free(longline);
}

static void test_syntax_error_has_line(void **state)
{
	expect_error("cpus = 2;\nmemory = \"1G\";\nkernel = = \"k\";\n", 3, "syntax error");
}

static void test_unknown_keys_warn(void **state)
{
	struct vmdef d;
	struct tv_err err;

	assert_int_equal(load("w", "cpus = 1;\nmemroy = \"1G\";\n"
				   "disks = ( { file = \"a.qcow2\"; cache = \"none\"; } );\n",
			      &d, &err),
			 0);
	assert_non_null(strstr(warnings, "w.conf:2: unknown setting 'memroy'"));
	assert_non_null(strstr(warnings, "w.conf:3: disks[0]: unknown setting 'cache'"));
	vmdef_free(&d);
}

static void test_bad_file_name(void **state)
{
	struct vmdef d;
	struct tv_err err;
	char *file = xasprintf("%s/no-such.conf", dir);

	assert_int_equal(vmdef_load(file, NULL, &d, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "no-such.conf: cannot read"));
	vmdef_free(&d);
	free(file);
}

static void test_save_round_trip(void **state)
{
	struct vmdef d, back;
	struct tv_err err;
	char *file = xasprintf("%s/rt.conf", dir);

	vmdef_init(&d, "rt", "/data/rt");
	d.cpus = 3;
	d.memory = 768ULL << 20;
	d.kernel = xstrdup("/boot/vmlinuz");
	d.cmdline = xstrdup("console=ttyS0 quiet \"quoted\"");
	d.description = xstrdup("line one\nline two");
	d.autostart = true;
	d.debug_exit = true;
	d.sandbox_off = true;
	d.disks = xcalloc(2, sizeof(*d.disks));
	d.ndisks = 2;
	d.disks[0].file = xstrdup("disk.qcow2");
	d.disks[1].file = xstrdup("/srv/iso.img");
	d.disks[1].format = DISK_FORMAT_RAW;
	d.disks[1].readonly = true;
	d.disks[1].aio = VM_AIO_IO_URING;
	d.disks[1].on_error = VM_ON_ERROR_REPORT;
	d.disks[1].serial = xstrdup("ABCDEFGHIJKLMNOPQRST");
	d.nets = xcalloc(1, sizeof(*d.nets));
	d.nnets = 1;
	d.nets[0].mode = NET_MODE_USER;
	d.nets[0].mac = xstrdup("52:54:00:ab:cd:ef");
	d.nets[0].forwards = xcalloc(1, sizeof(char *));
	d.nets[0].forwards[0] = xstrdup("tcp:127.0.0.1:8080:80");
	d.nets[0].nforwards = 1;
	vmdef_add_default_net(&d); /* what create does: user mode, a fresh MAC */
	d.ssh_user = xstrdup("root");
	assert_int_equal(vmdef_save(&d, file, &err), 0);
	assert_int_equal(vmdef_load(file, "/data/rt", &back, collect, NULL, &err), 0);
	assert_int_equal(back.cpus, 3);
	assert_true(back.memory == 768ULL << 20);
	assert_string_equal(back.kernel, "/boot/vmlinuz");
	assert_string_equal(back.cmdline, d.cmdline);
	assert_string_equal(back.description, d.description);
	assert_true(back.autostart);
	assert_true(back.debug_exit);
	assert_true(back.sandbox_off);
	assert_int_equal(back.ndisks, 2);
	assert_string_equal(back.disks[1].file, "/srv/iso.img");
	assert_int_equal(back.disks[1].format, DISK_FORMAT_RAW);
	assert_true(back.disks[1].readonly);
	assert_int_equal(back.disks[0].aio, VM_AIO_DEFAULT);
	assert_int_equal(back.disks[1].aio, VM_AIO_IO_URING);
	assert_int_equal(back.disks[0].on_error, VM_ON_ERROR_PAUSE);
	assert_int_equal(back.disks[1].on_error, VM_ON_ERROR_REPORT);
	assert_null(back.disks[0].serial);
	assert_string_equal(back.disks[1].serial, "ABCDEFGHIJKLMNOPQRST");
	assert_int_equal(back.nnets, 2);
	assert_string_equal(back.nets[0].mac, "52:54:00:ab:cd:ef");
	assert_string_equal(back.nets[0].forwards[0], "tcp:127.0.0.1:8080:80");
	assert_int_equal(back.nets[1].mode, NET_MODE_USER);
	assert_string_equal(back.nets[1].mac, d.nets[1].mac);
	assert_int_equal(strncmp(back.nets[1].mac, "52:54:00:", 9), 0);
	assert_string_equal(back.ssh_user, "root");
	/* Readable: the memory is written as a size, not a byte count. */
	FILE *f = fopen(file, "r");
	char text[4096];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_non_null(strstr(text, "memory = \"768M\";"));
	vmdef_free(&d);
	vmdef_free(&back);
	free(file);
}

static void test_save_refuses_invalid(void **state)
{
	struct vmdef d;
	struct tv_err err;
	char *file = xasprintf("%s/inv.conf", dir);

	vmdef_init(&d, "inv", NULL);
	d.cpus = 100;
	assert_int_equal(vmdef_save(&d, file, &err), -1);
	assert_non_null(strstr(err.msg, "cpus"));
	assert_int_equal(access(file, F_OK), -1); /* nothing written */
	vmdef_free(&d);
	free(file);
}

/* @include: relative to the definition's own directory; a directory, a
 * missing file or endless nesting is refused naming the line (libconfig
 * itself would end the whole process on a directory). */
static void test_include(void **state)
{
	struct vmdef d;
	struct tv_err err;
	char *common = write_def("common", "cpus = 3;\nmemory = \"96M\";\n");

	free(common);
	assert_int_equal(load("inc", "@include \"common.conf\"\nkernel = \"k\";\n", &d, &err), 0);
	assert_int_equal(d.cpus, 3);
	assert_true(d.memory == 96ULL << 20);
	vmdef_free(&d);
	expect_error("kernel = \"k\";\n@include \"/\"\n", 2, "@include \"/\": expected a regular file");
	expect_error("@include \"nowhere.conf\"\n", 1, "@include \"nowhere.conf\": No such file");
	free(write_def("loop", "@include \"loop.conf\"\n"));
	assert_int_equal(load("bad", "@include \"loop.conf\"\n", &d, &err), -1);
	assert_non_null(strstr(err.msg, "nested more than 10 deep"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_definition),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_memory_forms),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_syntax_error_has_line),
		cmocka_unit_test(test_unknown_keys_warn),
		cmocka_unit_test(test_bad_file_name),
		cmocka_unit_test(test_save_round_trip),
		cmocka_unit_test(test_save_refuses_invalid),
		cmocka_unit_test(test_include),
	};
	return cmocka_run_group_tests_name("vmdef", tests, setup, teardown);
}
