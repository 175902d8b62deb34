/* The lab switch on the host, no KVM: fake members on two networks, each a
 * datagram socket as a VM's lab backend has one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "src/lab/lab.h"
#include "vm/net/net.h"
#include "vm/net/tap.h"

static struct tv_paths paths;
static char home[] = "/tmp/tv-labswitch.XXXXXX";
static char path_a[108], path_b[108];
static pid_t switch_b;

/* Network B's switch runs in a child through lab_switch_run, as
 * `termvisor lab-switch` runs it; network A's is started in the background by
 * lab_ensure_switch, as a VM process starts it. */
static int setup(void **state)
{
	struct tv_err err;

	if (mkdtemp(home) == NULL)
		return -1;
	setenv("TERMVISOR_HOME", home, 1);
	if (paths_init(&paths, &err) < 0)
		return -1;
	if (lab_ensure_switch(&paths, "A", path_a, sizeof(path_a), &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	if (lab_socket_path(&paths, "B", path_b, sizeof(path_b), &err) < 0)
		return -1;
	switch_b = fork();
	if (switch_b == 0) {
		struct lab_stats st = {0};
		_exit(lab_switch_run(&paths, "B", 0, &st, &err) < 0 ? 1 : 0);
	}
	for (int i = 0; i < 200 && access(path_b, F_OK) != 0; i++)
		usleep(10000);
	return access(path_b, F_OK);
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", home);

	if (switch_b > 0)
		kill(switch_b, SIGTERM);
	(void)!system(cmd);
	free(cmd);
	paths_free(&paths);
	return 0;
}

/* The switch each fake member sends to. */
static struct sockaddr_un switch_of[1024];

static ssize_t to_switch(int fd, const void *data, size_t len)
{
	return sendto(fd, data, len, 0, (struct sockaddr *)&switch_of[fd], sizeof(switch_of[fd]));
}

/* A member as a VM's lab backend makes one: bound by the kernel, sending to
 * its network's switch. */
static int member(const char *sockpath)
{
	struct sockaddr_un self = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0 && fd < 1024);
	switch_of[fd] = (struct sockaddr_un){.sun_family = AF_UNIX};
	snprintf(switch_of[fd].sun_path, sizeof(switch_of[fd].sun_path), "%s", sockpath);
	assert_int_equal(bind(fd, (struct sockaddr *)&self, sizeof(sa_family_t)), 0);
	assert_int_equal(to_switch(fd, "", 0), 0); /* the keepalive: joins */
	return fd;
}

static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void mac_of(unsigned n, uint8_t mac[6])
{
	const uint8_t m[6] = {0x52, 0x54, 0x00, 0xab, 0x00, (uint8_t)n};
	memcpy(mac, m, 6);
}

/* Sends an Ethernet frame from MAC n to dst carrying tag. */
static void send_frame(int fd, unsigned from, const uint8_t dst[6], const char *tag)
{
	uint8_t f[64] = {0};

	memcpy(f, dst, 6);
	mac_of(from, f + 6);
	f[12] = 0x88;
	f[13] = 0xb5; /* local experimental ethertype */
	snprintf((char *)f + 14, sizeof(f) - 14, "%s", tag);
	assert_int_equal(to_switch(fd, f, sizeof(f)), (ssize_t)sizeof(f));
}

static void send_to(int fd, unsigned from, unsigned to, const char *tag)
{
	uint8_t dst[6];

	mac_of(to, dst);
	send_frame(fd, from, dst, tag);
}

/* Whether fd receives a frame with tag within ms; frames with other tags
 * (left from earlier steps) are skipped. */
static bool got(int fd, const char *tag, int ms)
{
	uint8_t f[256];
	struct pollfd pfd = {fd, POLLIN, 0};

	while (poll(&pfd, 1, ms) > 0) {
		ssize_t n = recv(fd, f, sizeof(f), MSG_DONTWAIT);
		if (n >= 14 + (ssize_t)strlen(tag) && strcmp((char *)f + 14, tag) == 0)
			return true;
	}
	return false;
}

#define QUIET 150 /* ms to wait for a frame that must not come */

static void test_learn_flood_isolate(void **state)
{
	int a1 = member(path_a), a2 = member(path_a), a3 = member(path_a), b1 = member(path_b);

	usleep(50000);
	/* broadcast floods to every other member of A, never to B */
	send_frame(a1, 1, bcast, "hello-all");
	assert_true(got(a2, "hello-all", 1000));
	assert_true(got(a3, "hello-all", 1000));
	assert_false(got(a1, "hello-all", QUIET));
	assert_false(got(b1, "hello-all", QUIET));
	/* 1 was learnt: a unicast reply reaches a1 only */
	send_to(a2, 2, 1, "two-to-one");
	assert_true(got(a1, "two-to-one", 1000));
	assert_false(got(a3, "two-to-one", QUIET));
	/* unknown unicast floods */
	send_to(a1, 1, 9, "to-nobody");
	assert_true(got(a2, "to-nobody", 1000));
	assert_true(got(a3, "to-nobody", 1000));
	/* 2 was learnt from its frame above */
	send_to(a3, 3, 2, "three-to-two");
	assert_true(got(a2, "three-to-two", 1000));
	assert_false(got(a1, "three-to-two", QUIET));
	/* B's traffic stays on B: its only member has nobody to reach */
	send_frame(b1, 4, bcast, "b-all");
	assert_false(got(a1, "b-all", QUIET));
	assert_false(got(a2, "b-all", QUIET));
	assert_false(got(b1, "b-all", QUIET));
	close(a1);
	close(a2);
	close(a3);
	close(b1);
}

static void test_member_death(void **state)
{
	int a1 = member(path_a), a2 = member(path_a), a3 = member(path_a);

	usleep(50000);
	send_frame(a2, 2, bcast, "two-here");
	assert_true(got(a1, "two-here", 1000));
	assert_true(got(a3, "two-here", 1000));
	close(a2); /* the VM died */
	send_frame(a1, 1, bcast, "after-death");
	assert_true(got(a3, "after-death", 1000));
	/* the dead member's address is forgotten: frames for it flood again */
	send_to(a1, 1, 2, "for-the-dead-1");
	send_to(a1, 1, 2, "for-the-dead-2");
	assert_true(got(a3, "for-the-dead-2", 1000));
	send_to(a3, 3, 1, "still-works");
	assert_true(got(a1, "still-works", 1000));
	close(a1);
	close(a3);
}

/* A member that never reads (a stopped VM, a guest without receive buffers)
 * loses its own frames; the others get theirs. */
static void test_stuck_member(void **state)
{
	int a1 = member(path_a), a2 = member(path_a), stuck = member(path_a);
	uint8_t g[256];
	char tag[32];
	unsigned got_last = 0;

	usleep(50000);
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(tag, sizeof(tag), "burst-%u", i);
		send_frame(a1, 1, bcast, tag); /* blocks while the switch's queue is full */
		while (recv(a2, g, sizeof(g), MSG_DONTWAIT) > 0)
			if (strcmp((char *)g + 14, "burst-2999") == 0)
				got_last = 1;
	}
	if (!got_last)
		got_last = got(a2, "burst-2999", 2000);
	assert_true(got_last);
	send_to(a2, 2, 1, "after-burst");
	assert_true(got(a1, "after-burst", 1000));
	close(stuck);
	close(a1);
	close(a2);
}

static void test_hostile_datagrams(void **state)
{
	int a1 = member(path_a), a2 = member(path_a);
	size_t big = NET_FRAME_MAX + 100;
	uint8_t *f = xcalloc(1, big), g[256];
	struct pollfd pfd = {a2, POLLIN, 0};
	int size = 1 << 20;

	setsockopt(a1, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	usleep(50000);
	memset(f, 0xff, 12); /* broadcast, so it would flood if taken */
	assert_int_equal(to_switch(a1, f, big), (ssize_t)big); /* oversized */
	assert_int_equal(to_switch(a1, f, 13), 13);	       /* truncated header */
	assert_int_equal(to_switch(a1, f, 1), 1);	       /* one byte */
	assert_int_equal(to_switch(a1, "", 0), 0);	       /* zero-length: a keepalive */
	assert_int_equal(poll(&pfd, 1, 300), 0);	       /* none of it reached a2 */
	send_frame(a1, 1, bcast, "after-junk");
	assert_true(got(a2, "after-junk", 1000));
	/* an unbound sender is nobody: nothing it sends is forwarded */
	int anon = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path_a);
	memset(g, 0xff, sizeof(g));
	assert_int_equal(sendto(anon, g, sizeof(g), 0, (struct sockaddr *)&sa, sizeof(sa)),
			 (ssize_t)sizeof(g));
	assert_int_equal(poll(&pfd, 1, QUIET), 0);
	close(anon);
	free(f);
	close(a1);
	close(a2);
}

static void test_one_switch_per_network(void **state)
{
	struct tv_err err;
	struct lab_stats st = {0};
	char again[108];

	/* ensuring again finds the running switch */
	assert_int_equal(lab_ensure_switch(&paths, "A", again, sizeof(again), &err), 0);
	assert_string_equal(again, path_a);
	assert_int_equal(lab_switch_run(&paths, "B", 0, &st, &err), -1);
	assert_non_null(strstr(err.msg, "already serves it"));
	/* only the user may use the socket */
	char *cmd = xasprintf("test \"$(stat -c %%a '%s')\" = 600", path_a);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* What the VM process does before opening its NICs. */
static void test_nics_prepare(void **state)
{
	struct vm_nic nics[3] = {
	    {.mode = NET_MODE_USER}, {.mode = NET_MODE_LAB}, {.mode = NET_MODE_LAB}};
	struct tv_err err;
	char want[108];

	snprintf(nics[1].lab_name, sizeof(nics[1].lab_name), "D");
	snprintf(nics[2].lab_name, sizeof(nics[2].lab_name), "A");
	assert_int_equal(lab_nics_prepare(nics, 3, &err), 0);
	assert_string_equal(nics[0].lab_socket, "");
	assert_int_equal(lab_socket_path(&paths, "D", want, sizeof(want), &err), 0);
	assert_string_equal(nics[1].lab_socket, want);
	assert_string_equal(nics[2].lab_socket, path_a);
	int d = member(nics[1].lab_socket); /* its switch runs */
	close(d);
	snprintf(nics[1].lab_name, sizeof(nics[1].lab_name), "no/slash");
	nics[1].lab_socket[0] = 0;
	assert_int_equal(lab_nics_prepare(nics, 2, &err), -1);
	assert_non_null(strstr(err.msg, "lab network name"));
}

static void test_names(void **state)
{
	struct tv_err err;
	char p[108];
	char longname[70];

	assert_int_equal(lab_socket_path(&paths, "../etc", p, sizeof(p), &err), -1);
	assert_non_null(strstr(err.msg, "lab network name"));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(lab_socket_path(&paths, longname, p, sizeof(p), &err), -1);
	struct tv_paths deep = paths;
	char dir[120];
	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = 0;
	deep.runtime_dir = dir;
	assert_int_equal(lab_socket_path(&deep, "lab1", p, sizeof(p), &err), -1);
	assert_non_null(strstr(err.msg, "longer than a UNIX socket allows"));
}

/* The switch ends once its last member has been gone for the linger time. */
static void test_linger(void **state)
{
	struct tv_err err;
	pid_t pid = fork();
	pid_t done = 0;
	int status;

	if (pid == 0) {
		struct lab_stats st = {0};
		_exit(lab_switch_run(&paths, "C", 1, &st, &err) < 0 ? 1 : 0);
	}
	for (int i = 0; i < 300 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++)
		usleep(10000);
	assert_int_equal(done, pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char p[108];
	assert_int_equal(lab_socket_path(&paths, "C", p, sizeof(p), &err), 0);
	assert_int_not_equal(access(p, F_OK), 0); /* it removed its socket */
}

struct rx_log {
	unsigned frames;
	bool refuse;
	char last[64];
};

static bool rx_record(void *ctx, const void *frame, size_t len)
{
	struct rx_log *log = ctx;

	if (log->refuse)
		return false;
	log->frames++;
	snprintf(log->last, sizeof(log->last), "%s", (const char *)frame + 14);
	return true;
}

/* Runs the backend's poll round as the device's I/O thread does. */
static void backend_round(struct net_backend *b, int ms)
{
	struct pollfd pfd[4];
	int timeout = -1, n = b->ops->pollfds(b, pfd, 4, &timeout);

	poll(pfd, (nfds_t)n, timeout >= 0 && timeout < ms ? timeout : ms);
	b->ops->ready(b, pfd, n);
}

/* The lab backend, as a VM's NIC uses it, against a fake member. */
static void test_lab_backend(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_LAB};
	struct net_backend *b;
	struct rx_log log = {0};
	struct tv_err err;
	uint8_t f[64] = {0};
	struct iovec iov[2] = {{f, 20}, {f + 20, sizeof(f) - 20}};
	int a1 = member(path_a);

	snprintf(nic.lab_name, sizeof(nic.lab_name), "A");
	snprintf(nic.lab_socket, sizeof(nic.lab_socket), "%s", path_a);
	assert_int_equal(net_lab_open(&nic, &b, &err), 0);
	b->rx = rx_record;
	b->rx_ctx = &log;
	usleep(50000);
	/* the guest's frame, in two pieces, reaches the other member */
	memset(f, 0xff, 6);
	mac_of(7, f + 6);
	snprintf((char *)f + 14, sizeof(f) - 14, "from-vm");
	assert_int_equal(b->ops->send(b, iov, 2), 0);
	assert_true(got(a1, "from-vm", 1000));
	/* a frame for it reaches the guest */
	send_to(a1, 1, 7, "to-vm-1");
	backend_round(b, 1000);
	assert_int_equal(log.frames, 1);
	assert_string_equal(log.last, "to-vm-1");
	/* a guest without buffers: the frame is kept until it refills */
	log.refuse = true;
	send_to(a1, 1, 7, "to-vm-2");
	backend_round(b, 1000);
	assert_int_equal(log.frames, 1);
	log.refuse = false;
	b->ops->rx_ready(b);
	backend_round(b, 1000);
	assert_int_equal(log.frames, 2);
	assert_string_equal(log.last, "to-vm-2");
	/* a runt from the guest is dropped and counted */
	iov[0].iov_len = 10;
	assert_int_equal(b->ops->send(b, iov, 1), -1);
	assert_int_equal(b->tx_dropped, 1);
	b->ops->free(b);
	close(a1);
	/* no switch there: the error names the network and the socket */
	snprintf(nic.lab_socket, sizeof(nic.lab_socket), "%s/none.sock", home);
	assert_int_equal(net_lab_open(&nic, &b, &err), -1);
	assert_non_null(strstr(err.msg, "lab network A: cannot reach its switch at"));
}

/* A switch that does not read for a moment: the backend holds the frame it
 * has no room for (the NIC stops taking more from the guest) and sends it
 * once there is room; a switch that reads nothing for long costs that one
 * frame, counted, and the NIC goes on. */
static void test_lab_backend_full_switch(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_LAB};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct net_backend *b;
	struct tv_err err;
	uint8_t f[64] = {0}, in[128];
	struct iovec iov = {f, sizeof(f)};
	unsigned sent = 0, next = 0;
	int sw = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	(void)state;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/slow.sock", home);
	assert_int_equal(bind(sw, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(nic.lab_name, sizeof(nic.lab_name), "S");
	snprintf(nic.lab_socket, sizeof(nic.lab_socket), "%s", sa.sun_path);
	assert_int_equal(net_lab_open(&nic, &b, &err), 0);
	memset(f, 0xff, 6);
	mac_of(7, f + 6);
	/* frames numbered from 0, until the switch's queue is full */
	while (!b->ops->tx_busy(b) && sent < 5000) {
		f[14] = (uint8_t)sent;
		f[15] = (uint8_t)(sent >> 8);
		assert_int_equal(b->ops->send(b, &iov, 1), 0);
		sent++;
	}
	assert_true(b->ops->tx_busy(b));
	assert_int_equal(b->tx_dropped, 0);
	/* the switch reads: the held frame goes on the backend's next round,
	 * and every frame arrives once, in order */
	for (int round = 0; round < 2; round++) {
		ssize_t n;

		while ((n = recv(sw, in, sizeof(in), MSG_DONTWAIT)) >= 0) {
			if (n == 0)
				continue; /* the keepalive */
			assert_int_equal(n, sizeof(f));
			assert_int_equal(in[14] | in[15] << 8, next);
			next++;
		}
		if (round == 0)
			backend_round(b, 10);
	}
	assert_int_equal(next, sent);
	assert_false(b->ops->tx_busy(b));
	/* a switch that reads nothing: the held frame is dropped and counted
	 * after a while, and the NIC takes frames again */
	while (!b->ops->tx_busy(b) && sent < 10000) {
		assert_int_equal(b->ops->send(b, &iov, 1), 0);
		sent++;
	}
	assert_true(b->ops->tx_busy(b));
	backend_round(b, 10);
	assert_true(b->ops->tx_busy(b)); /* not yet */
	for (int i = 0; i < 2000 && b->ops->tx_busy(b); i++)
		backend_round(b, 10);
	assert_false(b->ops->tx_busy(b));
	assert_int_equal(b->tx_dropped, 1);
	b->ops->free(b);
	close(sw);
}

static void test_tap_errors(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_TAP};
	struct net_backend *b = NULL;
	struct tv_err err;

	snprintf(nic.ifname, sizeof(nic.ifname), "tvtest%u", (unsigned)getpid() % 10000);
	assert_int_equal(net_tap_open_at(&nic, "/nonexistent/tun", &b, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/tun does not exist"));
	assert_non_null(strstr(err.msg, "ip tuntap add dev tvtest"));
	assert_non_null(strstr(err.msg, "mode tap user "));
	assert_int_equal(net_tap_open_at(&nic, "/dev/null", &b, &err), -1);
	assert_non_null(strstr(err.msg, "/dev/null is not a tun device"));
	nic.ifname[0] = 0;
	assert_int_equal(net_tap_open(&nic, &b, &err), -1);
	assert_non_null(strstr(err.msg, "no interface named"));
	/* the real device: opens where tun is usable, else the advice */
	snprintf(nic.ifname, sizeof(nic.ifname), "tvtest%u", (unsigned)getpid() % 10000);
	if (net_tap_open(&nic, &b, &err) == 0) {
		assert_string_equal(b->ops->mode, "tap");
		b->ops->free(b);
	} else {
		assert_non_null(strstr(err.msg, "ip tuntap add dev tvtest"));
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learn_flood_isolate),
	    cmocka_unit_test(test_member_death),
	    cmocka_unit_test(test_stuck_member),
	    cmocka_unit_test(test_hostile_datagrams),
	    cmocka_unit_test(test_one_switch_per_network),
	    cmocka_unit_test(test_nics_prepare),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_linger),
	    cmocka_unit_test(test_lab_backend),
	    cmocka_unit_test(test_lab_backend_full_switch),
	    cmocka_unit_test(test_tap_errors),
	};
	/* lab_ensure_switch runs this program as the switch, as it runs the VM
	 * process's */
	if (argc > 1 && strcmp(argv[1], "lab-switch") == 0)
		return lab_switch_spawned(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
