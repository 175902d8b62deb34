/* The demo guest's network stack (share/demo/netstack.c) on the host: frames in,
 * the frames it answers with out, hostile frames dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "share/demo/netstack.h"

#define SENT_MAX 8

static struct netstack s;
static uint8_t sent[SENT_MAX][NS_FRAME_MAX];
static size_t sent_len[SENT_MAX];
static unsigned nsent;

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t peer_mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
#define GUEST NS_IP(10, 0, 5, 2)
#define PEER  NS_IP(10, 0, 5, 9)

static void capture(const void *frame, size_t len)
{
	assert_true(len <= NS_FRAME_MAX);
	assert_true(len >= 60);
	if (nsent < SENT_MAX) {
		memcpy(sent[nsent], frame, len);
		sent_len[nsent] = len;
	}
	nsent++;
}

static int reset(void **state)
{
	memset(&s, 0, sizeof(s));
	memcpy(s.mac, guest_mac, 6);
	s.ip = GUEST;
	s.mask = NS_IP(255, 255, 255, 0);
	s.tx = capture;
	nsent = 0;
	return 0;
}

static uint32_t pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
}

/* A frame from the peer: Ethernet, IPv4 and the payload (whose checksum, for UDP
 * and TCP, the caller leaves zero: it is filled here). Returns the length. */
static size_t peer_ip(uint8_t *f, const uint8_t dst_mac[6], uint32_t src, uint32_t dst,
		      uint8_t proto, const void *payload, size_t plen)
{
	uint8_t *ip = f + 14, *p = ip + 20;

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	ns_put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ns_put16(ip + 2, (uint16_t)(20 + plen));
	ip[8] = 64;
	ip[9] = proto;
	ns_put32(ip + 12, src);
	ns_put32(ip + 16, dst);
	ns_put16(ip + 10, ns_csum(ip, 20, 0));
	memcpy(p, payload, plen);
	if (proto == 17)
		ns_put16(p + 6, ns_csum(p, plen, pseudo(src, dst, proto, plen)));
	else if (proto == 6)
		ns_put16(p + 16, ns_csum(p, plen, pseudo(src, dst, proto, plen)));
	return 14 + 20 + plen;
}

/* Checks a frame the guest sent to the peer and returns its IP payload. */
static const uint8_t *sent_ip(unsigned i, uint8_t proto, size_t *plen)
{
	const uint8_t *ip = sent[i] + 14;

	assert_memory_equal(sent[i], peer_mac, 6);
	assert_memory_equal(sent[i] + 6, guest_mac, 6);
	assert_int_equal(ns_get16(sent[i] + 12), 0x0800);
	assert_int_equal(ns_csum(ip, 20, 0), 0);
	assert_int_equal(ip[9], proto);
	assert_int_equal(ns_get32(ip + 12), GUEST);
	assert_int_equal(ns_get32(ip + 16), PEER);
	*plen = ns_get16(ip + 2) - 20u;
	if (proto != 1)
		assert_int_equal(ns_csum(ip + 20, *plen, pseudo(GUEST, PEER, proto, *plen)), 0);
	return ip + 20;
}

static void test_checksum(void **state)
{
	/* RFC 1071's example: the sum is 0xddf2, its complement 0x220d */
	static const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	uint8_t odd[3] = {0x01, 0x02, 0x03};

	assert_int_equal(ns_csum(d, sizeof(d), 0), 0x220d);
	assert_int_equal(ns_csum(odd, 3, 0), (uint16_t) ~(0x0102 + 0x0300));
	assert_int_equal(ns_csum(d, 0, 0), 0xffff);
}

static void test_parse_ip(void **state)
{
	uint32_t ip;
	unsigned prefix = 99;

	assert_true(ns_parse_ip("10.0.2.15", &ip, NULL));
	assert_int_equal(ip, NS_IP(10, 0, 2, 15));
	assert_true(ns_parse_ip("192.168.7.1/16", &ip, &prefix));
	assert_int_equal(ip, NS_IP(192, 168, 7, 1));
	assert_int_equal(prefix, 16);
	assert_false(ns_parse_ip("10.0.2", &ip, NULL));
	assert_false(ns_parse_ip("10.0.2.256", &ip, NULL));
	assert_false(ns_parse_ip("10.0.2.1.5", &ip, NULL));
	assert_false(ns_parse_ip("10..2.1", &ip, NULL));
	assert_false(ns_parse_ip("10.0.2.1/33", &ip, &prefix));
	assert_false(ns_parse_ip("10.0.2.1/", &ip, &prefix));
	assert_false(ns_parse_ip("10.0.2.1/24", &ip, NULL));
	assert_false(ns_parse_ip("", &ip, NULL));
	assert_false(ns_parse_ip("0001.2.3.4", &ip, NULL));
}

static void test_arp(void **state)
{
	uint8_t f[60] = {0}, *a = f + 14, mac[6];

	memcpy(f, bcast, 6);
	memcpy(f + 6, peer_mac, 6);
	ns_put16(f + 12, 0x0806);
	ns_put16(a, 1);
	ns_put16(a + 2, 0x0800);
	a[4] = 6, a[5] = 4;
	ns_put16(a + 6, 1);
	memcpy(a + 8, peer_mac, 6);
	ns_put32(a + 14, PEER);
	ns_put32(a + 24, GUEST);
	ns_input(&s, f, sizeof(f));
	assert_int_equal(nsent, 1);
	assert_memory_equal(sent[0], peer_mac, 6);
	assert_int_equal(ns_get16(sent[0] + 14 + 6), 2); /* a reply */
	assert_memory_equal(sent[0] + 14 + 8, guest_mac, 6);
	assert_int_equal(ns_get32(sent[0] + 14 + 14), GUEST);
	assert_int_equal(ns_get32(sent[0] + 14 + 24), PEER);
	/* and the asker was learnt */
	assert_true(ns_resolve_known(&s, PEER, mac));
	assert_memory_equal(mac, peer_mac, 6);
	/* for someone else: no answer */
	ns_put32(a + 24, NS_IP(10, 0, 5, 77));
	ns_input(&s, f, sizeof(f));
	assert_int_equal(nsent, 1);
	/* truncated: dropped */
	ns_put32(a + 24, GUEST);
	ns_input(&s, f, 14 + 20);
	assert_int_equal(nsent, 1);
	assert_int_equal(s.dropped, 1);
	/* resolving an unknown address asks by broadcast */
	assert_false(ns_resolve(&s, NS_IP(10, 0, 5, 3), mac));
	assert_int_equal(nsent, 2);
	assert_memory_equal(sent[1], bcast, 6);
	assert_int_equal(ns_get32(sent[1] + 14 + 24), NS_IP(10, 0, 5, 3));
	/* off the network, through the gateway */
	s.gw = PEER;
	assert_true(ns_resolve(&s, NS_IP(8, 8, 8, 8), mac));
	assert_memory_equal(mac, peer_mac, 6);
}

static void test_ping(void **state)
{
	uint8_t icmp[128] = {8, 0, 0, 0, 0x12, 0x34, 0, 7}, f[256];
	size_t plen, ilen = 40;

	memcpy(icmp + 8, "abcdefghijklmnopqrstuvwxyz012345", 32);
	ns_put16(icmp + 2, ns_csum(icmp, ilen, 0));
	ns_input(&s, f, peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, ilen));
	assert_int_equal(nsent, 1);
	const uint8_t *r = sent_ip(0, 1, &plen);
	assert_int_equal(plen, ilen);
	assert_int_equal(r[0], 0);
	assert_int_equal(ns_csum(r, plen, 0), 0);
	assert_memory_equal(r + 4, icmp + 4, ilen - 4);
	/* our own ping and its reply */
	ns_send_ping(&s, peer_mac, PEER, 0x7464, 3);
	assert_int_equal(nsent, 2);
	const uint8_t *q = sent_ip(1, 1, &plen);
	assert_int_equal(q[0], 8);
	assert_true(plen <= sizeof(icmp));
	memcpy(icmp, q, plen);
	icmp[0] = 0;
	ns_put16(icmp + 2, 0);
	ns_put16(icmp + 2, ns_csum(icmp, plen, 0));
	ns_input(&s, f, peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, plen));
	assert_true(s.ping_got);
	assert_int_equal(s.ping_from, PEER);
}

static void test_hostile_ip(void **state)
{
	uint8_t icmp[16] = {8, 0, 0, 0, 0, 1, 0, 1}, f[NS_FRAME_MAX + 64];
	size_t len;

	ns_put16(icmp + 2, ns_csum(icmp, sizeof(icmp), 0));
	len = peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	ns_put16(f + 14 + 2, 200); /* longer than the frame */
	ns_put16(f + 14 + 10, 0);
	ns_put16(f + 14 + 10, ns_csum(f + 14, 20, 0));
	ns_input(&s, f, len);
	len = peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	f[14] = 0x44; /* a header shorter than 20 bytes */
	ns_input(&s, f, len);
	len = peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	f[14 + 10] ^= 1; /* a bad header checksum */
	ns_input(&s, f, len);
	len = peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	ns_put16(f + 14 + 6, 0x2000); /* a fragment */
	ns_put16(f + 14 + 10, 0);
	ns_put16(f + 14 + 10, ns_csum(f + 14, 20, 0));
	ns_input(&s, f, len);
	ns_input(&s, f, 5); /* shorter than an Ethernet header */
	ns_input(&s, f, 0);
	ns_input(&s, f, NS_FRAME_MAX + 60); /* larger than any frame it takes */
	len = peer_ip(f, guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	ns_input(&s, f, 14 + 10); /* cut inside the IP header */
	assert_int_equal(nsent, 0);
	assert_int_equal(s.dropped, 8);
	/* the same packet whole is answered */
	ns_input(&s, f, len);
	assert_int_equal(nsent, 1);
}

static void test_udp(void **state)
{
	uint8_t u[8 + 5] = {0x30, 0x39, 0x1f, 0x90, 0, 13, 0, 0, 'h', 'e', 'l', 'l', 'o'}, f[128];
	size_t plen;

	s.udp_echo_port = 8080;
	ns_input(&s, f, peer_ip(f, guest_mac, PEER, GUEST, 17, u, sizeof(u)));
	assert_int_equal(nsent, 1);
	const uint8_t *r = sent_ip(0, 17, &plen);
	assert_int_equal(ns_get16(r), 8080);
	assert_int_equal(ns_get16(r + 2), 12345);
	assert_int_equal(ns_get16(r + 4), 13);
	assert_memory_equal(r + 8, "hello", 5);
	/* a UDP length past the packet: dropped */
	ns_put16(u + 4, 40);
	ns_input(&s, f, peer_ip(f, guest_mac, PEER, GUEST, 17, u, sizeof(u)));
	assert_int_equal(nsent, 1);
	assert_int_equal(s.dropped, 1);
	/* a bad checksum: dropped */
	ns_put16(u + 4, 13);
	size_t len = peer_ip(f, guest_mac, PEER, GUEST, 17, u, sizeof(u));
	f[14 + 20 + 8] ^= 0x20;
	ns_input(&s, f, len);
	assert_int_equal(s.dropped, 2);
	/* `net recv` keeps the datagram */
	s.udp_echo_port = 0;
	s.udp_recv_port = 8080;
	ns_input(&s, f, peer_ip(f, guest_mac, PEER, GUEST, 17, u, sizeof(u)));
	assert_true(s.udp_got);
	assert_int_equal(s.udp_len, 5);
	assert_memory_equal(s.udp_data, "hello", 5);
	assert_int_equal(s.udp_from, PEER);
	assert_int_equal(s.udp_from_port, 12345);
}

/* A DHCP answer of type type from server 10.0.5.1, for xid. */
static size_t dhcp_answer(uint8_t *f, uint32_t xid, uint8_t type)
{
	uint8_t m[8 + 240 + 32] = {0}, *d = m + 8, *o = d + 240;

	ns_put16(m, 67);
	ns_put16(m + 2, 68);
	ns_put16(m + 4, sizeof(m));
	d[0] = 2, d[1] = 1, d[2] = 6;
	ns_put32(d + 4, xid);
	ns_put32(d + 16, NS_IP(10, 0, 5, 15));
	memcpy(d + 28, guest_mac, 6);
	ns_put32(d + 236, 0x63825363);
	*o++ = 53, *o++ = 1, *o++ = type;
	*o++ = 54, *o++ = 4, ns_put32(o, NS_IP(10, 0, 5, 1)), o += 4;
	*o++ = 1, *o++ = 4, ns_put32(o, NS_IP(255, 255, 255, 0)), o += 4;
	*o++ = 3, *o++ = 4, ns_put32(o, NS_IP(10, 0, 5, 1)), o += 4;
	*o++ = 255;
	return peer_ip(f, bcast, NS_IP(10, 0, 5, 1), 0xffffffff, 17, m, sizeof(m));
}

static void test_dhcp(void **state)
{
	uint8_t f[400];
	size_t len;

	s.ip = s.mask = 0;
	ns_dhcp_start(&s, 0xfeed);
	assert_int_equal(nsent, 1);
	assert_memory_equal(sent[0], bcast, 6);
	assert_int_equal(ns_get32(sent[0] + 14 + 16), 0xffffffff);
	assert_int_equal(ns_get16(sent[0] + 14 + 20 + 2), 67);
	assert_int_equal(ns_get32(sent[0] + 14 + 28 + 4), 0xfeed);
	assert_int_equal(sent[0][14 + 28 + 240 + 2], 1); /* DISCOVER */
	/* another client's offer: ignored */
	ns_input(&s, f, dhcp_answer(f, 0xbeef, 2));
	assert_int_equal(nsent, 1);
	/* an offer with an option that runs past the end: still safe */
	len = dhcp_answer(f, 0xfeed, 2);
	f[14 + 20 + 8 + 240 + 4] = 200; /* option 54's length */
	ns_put16(f + 14 + 20 + 6, 0);
	ns_input(&s, f, len);
	assert_int_equal(s.dhcp, NS_DHCP_REQUESTING); /* offered; the server from siaddr */
	ns_dhcp_start(&s, 0xfeed);
	nsent = 0;
	ns_input(&s, f, dhcp_answer(f, 0xfeed, 2));
	assert_int_equal(s.dhcp, NS_DHCP_REQUESTING);
	assert_int_equal(nsent, 1);
	assert_int_equal(sent[0][14 + 28 + 240 + 2], 3); /* REQUEST */
	ns_input(&s, f, dhcp_answer(f, 0xfeed, 5));
	assert_int_equal(s.dhcp, NS_DHCP_BOUND);
	assert_int_equal(s.ip, NS_IP(10, 0, 5, 15));
	assert_int_equal(s.gw, NS_IP(10, 0, 5, 1));
	assert_int_equal(s.mask, NS_IP(255, 255, 255, 0));
}

/* A TCP segment from the peer's port 40000 to the guest's port. */
static size_t tcp_seg(uint8_t *f, uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags,
		      const char *data)
{
	uint8_t t[20 + 64] = {0};
	size_t dlen = data ? strlen(data) : 0;

	ns_put16(t, 40000);
	ns_put16(t + 2, port);
	ns_put32(t + 4, seq);
	ns_put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	ns_put16(t + 14, 65535);
	memcpy(t + 20, data ? data : "", dlen);
	return peer_ip(f, guest_mac, PEER, GUEST, 6, t, 20 + dlen);
}

static void test_tcp_echo(void **state)
{
	uint8_t f[200];
	size_t plen;
	const uint8_t *t;

	ns_tcp_listen(&s, 7777, 1000);
	ns_input(&s, f, tcp_seg(f, 7777, 500, 0, 0x02, NULL)); /* SYN */
	assert_int_equal(nsent, 1);
	t = sent_ip(0, 6, &plen);
	assert_int_equal(t[13], 0x12); /* SYN, ACK */
	assert_int_equal(ns_get32(t + 4), 1000);
	assert_int_equal(ns_get32(t + 8), 501);
	assert_int_equal(t[20], 2);				  /* the MSS option */
	ns_input(&s, f, tcp_seg(f, 7777, 501, 1001, 0x10, NULL)); /* ACK */
	assert_int_equal(s.tcp.state, NS_TCP_ESTABLISHED);
	ns_input(&s, f, tcp_seg(f, 7777, 501, 1001, 0x18, "ping me")); /* data */
	assert_int_equal(nsent, 2);
	t = sent_ip(1, 6, &plen);
	assert_int_equal(plen, 20 + 7);
	assert_int_equal(ns_get32(t + 4), 1001);
	assert_int_equal(ns_get32(t + 8), 508);
	assert_memory_equal(t + 20, "ping me", 7);
	/* a retransmission is only acknowledged */
	ns_input(&s, f, tcp_seg(f, 7777, 501, 1001, 0x18, "ping me"));
	assert_int_equal(nsent, 3);
	t = sent_ip(2, 6, &plen);
	assert_int_equal(plen, 20);
	/* another peer meanwhile: reset */
	size_t len = tcp_seg(f, 7777, 9, 0, 0x02, NULL);
	ns_put16(f + 14 + 20, 40001);
	ns_put16(f + 14 + 20 + 16, 0);
	ns_put16(f + 14 + 20 + 16, ns_csum(f + 34, 20, pseudo(PEER, GUEST, 6, 20)));
	ns_input(&s, f, len);
	t = sent_ip(3, 6, &plen);
	assert_true(t[13] & 0x04);
	/* FIN: ours follows, then the last ACK makes it listen again */
	ns_input(&s, f, tcp_seg(f, 7777, 508, 1008, 0x11, NULL));
	t = sent_ip(4, 6, &plen);
	assert_int_equal(t[13], 0x11);
	assert_int_equal(ns_get32(t + 8), 509);
	assert_int_equal(s.tcp.state, NS_TCP_LAST_ACK);
	ns_input(&s, f, tcp_seg(f, 7777, 509, 1009, 0x10, NULL));
	assert_int_equal(s.tcp.state, NS_TCP_LISTEN);
	assert_int_equal(s.tcp.echoed, 7);
	/* a peer that connects again before its last ACK came is served */
	ns_input(&s, f, tcp_seg(f, 7777, 600, 0, 0x02, NULL));
	ns_input(&s, f, tcp_seg(f, 7777, 601, 1001 + 64000, 0x11, NULL));
	assert_int_equal(s.tcp.state, NS_TCP_LAST_ACK);
	len = tcp_seg(f, 7777, 700, 0, 0x02, NULL);
	ns_put16(f + 14 + 20, 40002);
	ns_put16(f + 14 + 20 + 16, 0);
	ns_put16(f + 14 + 20 + 16, ns_csum(f + 34, 20, pseudo(PEER, GUEST, 6, 20)));
	nsent = 0;
	ns_input(&s, f, len);
	assert_int_equal(s.tcp.state, NS_TCP_SYN_RCVD);
	t = sent_ip(0, 6, &plen);
	assert_int_equal(t[13], 0x12);
	assert_int_equal(ns_get16(t + 2), 40002);
	ns_tcp_listen(&s, 7777, 1000);
	nsent = 0;
	/* a closed port resets */
	ns_input(&s, f, tcp_seg(f, 9, 1, 0, 0x02, NULL));
	t = sent_ip(0, 6, &plen);
	assert_int_equal(t[13], 0x14);
	assert_int_equal(ns_get32(t + 8), 2);
	/* a header length past the segment: dropped */
	len = tcp_seg(f, 7777, 1, 0, 0x02, NULL);
	f[14 + 20 + 12] = 15 << 4;
	ns_input(&s, f, len);
	assert_int_equal(nsent, 1);
}

/* Valid frames of every kind with random bytes changed and random lengths: whatever
 * the stack sends back stays within a frame (capture checks), nothing reads past
 * the input (the sanitizer builds check). */
static void test_mangled_frames(void **state)
{
	uint8_t base[5][400], f[400];
	size_t blen[5];
	uint8_t icmp[16] = {8, 0, 0, 0, 0, 1, 0, 1}, u[13] = {0x30, 0x39, 0x1f, 0x90, 0, 13};
	uint64_t x = 88172645463325252ull;

	ns_put16(icmp + 2, ns_csum(icmp, sizeof(icmp), 0));
	blen[0] = peer_ip(base[0], guest_mac, PEER, GUEST, 1, icmp, sizeof(icmp));
	blen[1] = peer_ip(base[1], guest_mac, PEER, GUEST, 17, u, sizeof(u));
	blen[2] = tcp_seg(base[2], 7777, 5, 0, 0x02, NULL);
	blen[3] = tcp_seg(base[3], 7777, 6, 1001, 0x19, "data");
	blen[4] = dhcp_answer(base[4], 0xfeed, 2);
	s.udp_echo_port = 8080;
	for (unsigned round = 0; round < 20000; round++) {
		unsigned k = round % 5;
		if (round % 1000 == 0) {
			ns_tcp_listen(&s, 7777, 1000);
			ns_dhcp_start(&s, 0xfeed);
			s.ip = GUEST;
		}
		memcpy(f, base[k], sizeof(f));
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		for (unsigned m = 0; m < 1 + x % 4; m++)
			f[14 + (x >> (8 + 8 * m)) % (blen[k] - 14)] ^= (uint8_t)(x >> (40 + m));
		size_t len = x & 0x100000 ? blen[k] : (x >> 24) % sizeof(f);
		nsent = 0;
		ns_input(&s, f, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_checksum, reset),
	    cmocka_unit_test_setup(test_parse_ip, reset),
	    cmocka_unit_test_setup(test_arp, reset),
	    cmocka_unit_test_setup(test_ping, reset),
	    cmocka_unit_test_setup(test_hostile_ip, reset),
	    cmocka_unit_test_setup(test_udp, reset),
	    cmocka_unit_test_setup(test_dhcp, reset),
	    cmocka_unit_test_setup(test_tcp_echo, reset),
	    cmocka_unit_test_setup(test_mangled_frames, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
