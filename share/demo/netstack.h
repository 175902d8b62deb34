/* The demo guest's network stack: Ethernet, ARP, IPv4, ICMP echo, UDP, a DHCP client
 * and a TCP echo service for one connection at a time.  It knows no device and no
 * clock: frames come in through ns_input and go out through the tx hook, and the
 * `net` command (net.c) does the waiting.  Everything a peer sends is checked against
 * the frame's length before it is read.  It builds for the guest and for the host's
 * unit test alike. */
#ifndef DEMO_NETSTACK_H
#define DEMO_NETSTACK_H

#include <stddef.h>
#include <stdint.h>

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define NS_FRAME_MAX 1514 /* what the stack sends and takes: no jumbo frames */
#define NS_ARP_MAX   8
#define NS_UDP_KEEP  256 /* bytes of a received datagram kept for `net recv` */

/* IPv4 addresses are kept in host order: 10.0.2.15 is 0x0a00020f. */
#define NS_IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

enum ns_dhcp_state {
	NS_DHCP_IDLE,
	NS_DHCP_SELECTING,
	NS_DHCP_REQUESTING,
	NS_DHCP_BOUND,
	NS_DHCP_REFUSED
};
enum ns_tcp_state {
	NS_TCP_CLOSED,
	NS_TCP_LISTEN,
	NS_TCP_SYN_RCVD,
	NS_TCP_ESTABLISHED,
	NS_TCP_LAST_ACK
};

struct netstack {
	uint8_t mac[6];
	uint32_t ip, mask, gw; /* 0: none */
	void (*tx)(const void *frame, size_t len);
	uint64_t in, out, dropped; /* frames taken, sent, and refused as malformed */

	struct {
		uint32_t ip;
		uint8_t mac[6];
	} arp[NS_ARP_MAX];
	unsigned arp_next;

	/* ICMP echo: the reply awaited by `net ping` */
	uint16_t ping_id, ping_seq;
	int ping_got;
	uint32_t ping_from;

	/* UDP */
	uint16_t udp_echo_port; /* 0: no echo service */
	uint16_t udp_recv_port; /* 0: nobody waits */
	int udp_got;
	uint32_t udp_from;
	uint16_t udp_from_port;
	size_t udp_len;
	uint8_t udp_data[NS_UDP_KEEP];

	/* DHCP client */
	enum ns_dhcp_state dhcp;
	uint32_t dhcp_xid, dhcp_offer, dhcp_server;

	/* TCP echo service, one connection at a time */
	struct {
		enum ns_tcp_state state;
		uint16_t port, peer_port;
		uint32_t peer, snd_nxt, rcv_nxt, iss;
		uint8_t peer_mac[6];
		uint64_t echoed;
	} tcp;

	uint16_t ip_ident;
	uint8_t out_frame[NS_FRAME_MAX];
};

/* Big-endian fields of packets, at any alignment. */
static inline uint16_t ns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t ns_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void ns_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void ns_put32(uint8_t *p, uint32_t v)
{
	ns_put16(p, (uint16_t)(v >> 16));
	ns_put16(p + 2, (uint16_t)v);
}

/* The Internet checksum (RFC 1071) of data, added to a partial sum. */
uint16_t ns_csum(const void *data, size_t len, uint32_t sum);

/* One received frame; answers what needs an answer through s->tx. */
void ns_input(struct netstack *s, const uint8_t *frame, size_t len);

/* The Ethernet address for sending to ip (through the gateway when it is not on
 * the local network): 1 when known, else 0 after asking for it with ARP. */
int ns_resolve(struct netstack *s, uint32_t ip, uint8_t mac[6]);
/* A gratuitous ARP for our address: a switch learns where we are before we are
 * asked anything. */
void ns_announce(struct netstack *s);
/* The same without asking: 1 when known. */
int ns_resolve_known(struct netstack *s, uint32_t ip, uint8_t mac[6]);

int ns_send_udp(struct netstack *s, const uint8_t mac[6], uint32_t dst, uint16_t sport,
		uint16_t dport, const void *data, size_t len);
int ns_send_ping(struct netstack *s, const uint8_t mac[6], uint32_t dst, uint16_t id, uint16_t seq);

/* DHCP: starts over with a DISCOVER; ns_input does the rest (REQUEST on an
 * offer, the address on the ACK). */
void ns_dhcp_start(struct netstack *s, uint32_t xid);

/* The TCP echo service on port (0: off; a live connection is reset). */
void ns_tcp_listen(struct netstack *s, uint16_t port, uint32_t iss);

/* "10.0.2.15" and "10.0.2.15/24"; 0 when s is not an address. */
int ns_parse_ip(const char *s, uint32_t *ip, unsigned *prefix);

#endif
