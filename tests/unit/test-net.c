/* The text forms users write: forwards ("tcp::2222:22"), MACs, and a NIC on
 * the command line (`run --net user,forward=...`), with errors that name the
 * part that is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "src/vmm/vmm.h"
#include "vm/net/net.h"

static void test_forward_parse(void **state)
{
	struct net_forward f;
	struct tv_err err;
	char buf[96];

	(void)state;
	assert_int_equal(net_forward_parse("tcp:127.0.0.1:2222:22", &f, &err), 0);
	assert_string_equal(f.proto, "tcp");
	assert_string_equal(f.host_addr, "127.0.0.1");
	assert_int_equal(f.host_port, 2222);
	assert_int_equal(f.guest_port, 22);
	assert_int_equal(net_forward_parse("tcp::2222:22", &f, &err), 0);
	assert_string_equal(f.host_addr, "");
	/* No address means loopback, and says so when written back. */
	net_forward_format(&f, buf, sizeof(buf));
	assert_string_equal(buf, "tcp:127.0.0.1:2222:22");
	assert_int_equal(net_forward_parse("udp:5353:53", &f, &err), 0);
	assert_string_equal(f.proto, "udp");
	assert_int_equal(f.host_port, 5353);
	assert_int_equal(net_forward_parse("tcp:0.0.0.0:8080:80", &f, &err), 0);
	net_forward_format(&f, buf, sizeof(buf));
	assert_string_equal(buf, "tcp:0.0.0.0:8080:80");
}

static void expect_forward_error(const char *text, const char *part)
{
	struct net_forward f;
	struct tv_err err;

	assert_int_equal(net_forward_parse(text, &f, &err), -1);
	if (strstr(err.msg, part) == NULL)
		fail_msg("\"%s\": \"%s\" does not name \"%s\"", text, err.msg, part);
	assert_non_null(strstr(err.msg, text));
}

static void test_forward_errors(void **state)
{
	(void)state;
	expect_forward_error("sctp::1:2", "protocol \"sctp\"");
	expect_forward_error("tcp::0:22", "host port \"0\"");
	expect_forward_error("tcp::2222:65536", "guest port \"65536\"");
	expect_forward_error("tcp::22x:22", "host port \"22x\"");
	expect_forward_error("tcp:1.2.3:80:80", "host address \"1.2.3\"");
	expect_forward_error("tcp:2222", "expected tcp|udp");
	expect_forward_error("tcp:1:2:3:4", "too many parts");
	expect_forward_error("tcp:2222-:22", "host port \"2222-\"");
}

static void test_mac(void **state)
{
	uint8_t mac[6], again[6];
	struct tv_err err;
	char buf[18];

	(void)state;
	assert_int_equal(net_mac_parse("52:54:00:AB:cd:0f", mac, &err), 0);
	net_mac_format(mac, buf, sizeof(buf));
	assert_string_equal(buf, "52:54:00:ab:cd:0f");
	assert_int_equal(net_mac_parse("01:00:5e:00:00:01", mac, &err), -1);
	assert_non_null(strstr(err.msg, "multicast"));
	assert_int_equal(net_mac_parse("52:54:00:12:34", mac, &err), -1);
	assert_non_null(strstr(err.msg, "52:54:00:12:34"));
	assert_int_equal(net_mac_parse("52-54-00-12-34-56", mac, &err), -1);
	assert_int_equal(net_mac_parse("52:54:00:12:34:5g", mac, &err), -1);
	/* Generated: the 52:54:00 prefix (locally administered, unicast), and
	 * different each time. */
	net_mac_generate(mac);
	net_mac_generate(again);
	assert_memory_equal(mac, "\x52\x54\x00", 3);
	assert_int_equal(mac[0] & 1, 0);
	assert_int_equal(mac[0] & 2, 2);
	assert_memory_not_equal(mac, again, 6);
}

static void test_mode_names(void **state)
{
	enum net_mode m;

	(void)state;
	assert_int_equal(net_mode_parse("lab", &m), 0);
	assert_int_equal(m, NET_MODE_LAB);
	assert_string_equal(net_mode_name(NET_MODE_TAP), "tap");
	assert_int_equal(net_mode_parse("bridge", &m), -1);
}

static void test_net_spec(void **state)
{
	struct vm_nic nic, back;
	struct tv_err err;
	char *text;

	(void)state;
	assert_int_equal(vmm_net_parse("user,forward=tcp::2222:22,forward=udp:5353:53", &nic, &err),
			 0);
	assert_int_equal(nic.mode, NET_MODE_USER);
	assert_int_equal(nic.nforwards, 2);
	assert_int_equal(nic.forwards[0].host_port, 2222);
	assert_int_equal(nic.mac[0], 0x52);
	/* The engine's command line carries it whole, the MAC included. */
	text = vmm_net_format(&nic);
	assert_int_equal(vmm_net_parse(text, &back, &err), 0);
	assert_memory_equal(back.mac, nic.mac, 6);
	assert_int_equal(back.nforwards, 2);
	assert_int_equal(back.forwards[1].guest_port, 53);
	free(text);

	assert_int_equal(vmm_net_parse("lab,name=lab1,mac=52:54:00:00:00:01", &nic, &err), 0);
	assert_string_equal(nic.lab_name, "lab1");
	assert_int_equal(nic.mac[5], 1);
	assert_int_equal(vmm_net_parse("tap,ifname=tv-lab1,bridge=br0", &nic, &err), 0);
	assert_string_equal(nic.bridge, "br0");

	assert_int_equal(vmm_net_parse("nat", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "user, lab or tap"));
	assert_int_equal(vmm_net_parse("user,forward=tcp::99999:22", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "host port \"99999\""));
	assert_int_equal(vmm_net_parse("lab,forward=tcp::2222:22", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "mode user only"));
	assert_int_equal(vmm_net_parse("lab", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "name=LAB"));
	assert_int_equal(vmm_net_parse("tap", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "ifname=IFACE"));
	assert_int_equal(vmm_net_parse("user,speed=10", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "unknown option \"speed\""));
	assert_int_equal(vmm_net_parse("user,mac=ff:ff:ff:ff:ff:ff", &nic, &err), -1);
	assert_non_null(strstr(err.msg, "multicast"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forward_parse), cmocka_unit_test(test_forward_errors),
	    cmocka_unit_test(test_mac),		  cmocka_unit_test(test_mode_names),
	    cmocka_unit_test(test_net_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
