/* The user network (libslirp) on the host, no VM needed: a guest's DHCP
 * DISCOVER and REQUEST get an offer and an ACK for 10.0.2.15 (which info()
 * then reports), a forward's port in use is an error naming the forward and
 * the port, a connection to a forward becomes traffic for the guest, and a
 * guest with no room makes the backend hold frames and poll no sockets until
 * rx_ready. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/net/net.h"

#define GUEST_MAC "\x52\x54\x00\x12\x34\x56"

struct sink {
	bool full; /* the guest has no receive buffer */
	unsigned frames;
	uint8_t last[2048];
	size_t last_len;
	bool saw_offer, saw_ack, saw_to_guest_22;
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void note(struct sink *s, const uint8_t *f, size_t len)
{
	if (len >= 14 + 20 + 8 && be16(f + 12) == 0x0800 && f[14 + 9] == 17 &&
	    be16(f + 34) == 67 && len >= 42 + 244) {
		const uint8_t *opt = f + 42 + 240;
		uint32_t yi;

		memcpy(&yi, f + 42 + 16, 4);
		if (yi == htonl(0x0a00020f) && opt[0] == 53 && opt[2] == 2)
			s->saw_offer = true;
		if (yi == htonl(0x0a00020f) && opt[0] == 53 && opt[2] == 5)
			s->saw_ack = true;
	}
	/* The forward's connection: a SYN to 10.0.2.15:22, or first the ARP
	 * request that must come before it. */
	if (len >= 14 + 20 + 4 && be16(f + 12) == 0x0800 && f[14 + 9] == 6 && be16(f + 36) == 22)
		s->saw_to_guest_22 = true;
	if (len >= 42 && be16(f + 12) == 0x0806 && be16(f + 20) == 1 &&
	    memcmp(f + 38, "\x0a\x00\x02\x0f", 4) == 0)
		s->saw_to_guest_22 = true;
}

static bool sink_rx(void *ctx, const void *frame, size_t len)
{
	struct sink *s = ctx;

	if (s->full)
		return false;
	s->frames++;
	s->last_len = len < sizeof(s->last) ? len : sizeof(s->last);
	memcpy(s->last, frame, s->last_len);
	note(s, frame, len);
	return true;
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A DHCP message of type (1 discover, 3 request) from the guest. */
static size_t dhcp_frame(uint8_t *f, uint8_t type)
{
	uint8_t *ip = f + 14, *udp = ip + 20, *b = udp + 8;
	uint8_t *o = b + 240;
	size_t blen, len;
	uint16_t c;

	memset(f, 0, 600);
	memset(f, 0xFF, 6);
	memcpy(f + 6, GUEST_MAC, 6);
	f[12] = 0x08;
	b[0] = 1; /* BOOTREQUEST */
	b[1] = 1;
	b[2] = 6;
	b[4] = 0x12; /* xid */
	memcpy(b + 28, GUEST_MAC, 6);
	memcpy(b + 236, "\x63\x82\x53\x63", 4);
	*o++ = 53, *o++ = 1, *o++ = type;
	if (type == 3) {
		*o++ = 50, *o++ = 4, memcpy(o, "\x0a\x00\x02\x0f", 4), o += 4;
		*o++ = 54, *o++ = 4, memcpy(o, "\x0a\x00\x02\x02", 4), o += 4;
	}
	*o++ = 255;
	blen = (size_t)(o - b) < 300 ? 300 : (size_t)(o - b);
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + blen) >> 8);
	udp[5] = (uint8_t)(8 + blen);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((28 + blen) >> 8);
	ip[3] = (uint8_t)(28 + blen);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xFF, 4);
	c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	len = 14 + 28 + blen;
	return len;
}

static void send_frame(struct net_backend *b, uint8_t *f, size_t len)
{
	struct iovec iov = {f, len};

	assert_int_equal(b->ops->send(b, &iov, 1), 0);
}

/* One round of the NIC thread's loop: poll the backend's descriptors. */
static int spin(struct net_backend *b, int ms)
{
	struct pollfd pfd[64];
	int timeout = ms, n = b->ops->pollfds(b, pfd, 64, &timeout);

	if (timeout < 0 || timeout > ms)
		timeout = ms;
	poll(pfd, (nfds_t)n, timeout);
	b->ops->ready(b, pfd, n);
	return n;
}

static struct net_backend *open_user(struct vm_nic *nic, struct sink *s)
{
	struct net_backend *b = NULL;
	struct tv_err err;

	if (net_backend_open(nic, &b, &err) != 0)
		fail_msg("%s", err.msg);
	b->rx = sink_rx;
	b->rx_ctx = s;
	return b;
}

static void test_dhcp_lease(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_USER};
	struct sink s = {0};
	struct net_backend *b;
	uint8_t f[600];
	char info[64];

	(void)state;
	b = open_user(&nic, &s);
	b->ops->info(b, info, sizeof(info));
	assert_string_equal(info, "");
	send_frame(b, f, dhcp_frame(f, 1));
	for (int i = 0; i < 20 && !s.saw_offer; i++)
		spin(b, 10);
	assert_true(s.saw_offer);
	send_frame(b, f, dhcp_frame(f, 3));
	for (int i = 0; i < 20 && !s.saw_ack; i++)
		spin(b, 10);
	assert_true(s.saw_ack);
	b->ops->info(b, info, sizeof(info));
	assert_string_equal(info, "10.0.2.15");
	b->ops->free(b);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	getsockname(fd, (struct sockaddr *)&a, &alen);
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_port_in_use(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_USER, .nforwards = 1};
	struct net_backend *b = NULL;
	struct tv_err err;
	char want[96];
	uint16_t port;
	int fd = listen_any(&port);

	(void)state;
	nic.forwards[0] = (struct net_forward){.proto = "tcp", .host_port = port, .guest_port = 22};
	assert_int_equal(net_backend_open(&nic, &b, &err), -1);
	snprintf(want, sizeof(want), "forward tcp:127.0.0.1:%u:22: host port %u", port, port);
	if (strstr(err.msg, want) == NULL || strstr(err.msg, "already in use") == NULL)
		fail_msg("\"%s\" does not name \"%s\" in use", err.msg, want);
	close(fd);
}

static void test_forward_reaches_guest(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_USER, .nforwards = 1};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sink s = {0};
	struct net_backend *b;
	uint16_t port;
	int fd = listen_any(&port), c;

	(void)state;
	close(fd); /* a port free a moment ago */
	nic.forwards[0] = (struct net_forward){.proto = "tcp", .host_port = port, .guest_port = 22};
	b = open_user(&nic, &s);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	a.sin_port = htons(port);
	connect(c, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < 50 && !s.saw_to_guest_22; i++)
		spin(b, 20);
	assert_true(s.saw_to_guest_22);
	close(c);
	b->ops->free(b);
}

/* A guest with no room: the frame waits, the sockets are not polled (no
 * busy loop), and rx_ready hands the frame over. */
static void test_no_room(void **state)
{
	struct vm_nic nic = {.mode = NET_MODE_USER};
	struct sink s = {.full = true};
	struct net_backend *b;
	uint8_t f[600];

	(void)state;
	b = open_user(&nic, &s);
	send_frame(b, f, dhcp_frame(f, 1)); /* the offer comes at once, and waits */
	assert_int_equal(s.frames, 0);
	assert_int_equal(spin(b, 10), 0);
	b->ops->rx_ready(b); /* still full: nothing moves */
	assert_int_equal(s.frames, 0);
	s.full = false;
	b->ops->rx_ready(b);
	assert_true(s.frames >= 1);
	assert_true(s.saw_offer);
	b->ops->free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dhcp_lease),
	    cmocka_unit_test(test_port_in_use),
	    cmocka_unit_test(test_forward_reaches_guest),
	    cmocka_unit_test(test_no_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
