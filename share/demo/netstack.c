/* The demo guest's network stack (see netstack.h). */
#include "netstack.h"

#define ETH_HLEN     14
#define ETH_ARP	     0x0806
#define ETH_IP	     0x0800
#define IP_HLEN	     20
#define IP_ICMP	     1
#define IP_TCP	     6
#define IP_UDP	     17
#define UDP_HLEN     8
#define TCP_HLEN     20
#define ICMP_HLEN    8
#define DHCP_FIXED   240 /* BOOTP header and the magic cookie */
#define DHCP_CLIENT  68
#define DHCP_SERVER  67
#define TCP_FIN	     0x01
#define TCP_SYN	     0x02
#define TCP_RST	     0x04
#define TCP_PSH	     0x08
#define TCP_ACK	     0x10
#define TCP_MSS	     1460
#define TCP_WINDOW   8192
#define IP_BROADCAST 0xffffffffu

static const uint8_t mac_broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint16_t ns_csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = sum;

	for (; len > 1; len -= 2, p += 2)
		acc += ns_get16(p);
	if (len)
		acc += (uint32_t)p[0] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)~acc;
}

/* The pseudo header's part of a UDP or TCP checksum. */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
}

static void eth_send(struct netstack *s, const uint8_t dst[6], uint16_t type, size_t len)
{
	memcpy(s->out_frame, dst, 6);
	memcpy(s->out_frame + 6, s->mac, 6);
	ns_put16(s->out_frame + 12, type);
	if (len < 60) /* the minimum Ethernet frame, without its FCS */
		memset(s->out_frame + len, 0, 60 - len);
	s->out++;
	s->tx(s->out_frame, len < 60 ? 60 : len);
}

/* The IPv4 packet whose payload (plen bytes) sits at out_frame + 34. */
static void ip_send(struct netstack *s, const uint8_t mac[6], uint32_t src, uint32_t dst,
		    uint8_t proto, size_t plen)
{
	uint8_t *ip = s->out_frame + ETH_HLEN;

	ip[0] = 0x45;
	ip[1] = 0;
	ns_put16(ip + 2, (uint16_t)(IP_HLEN + plen));
	ns_put16(ip + 4, s->ip_ident++);
	ns_put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = proto;
	ns_put16(ip + 10, 0);
	ns_put32(ip + 12, src);
	ns_put32(ip + 16, dst);
	ns_put16(ip + 10, ns_csum(ip, IP_HLEN, 0));
	eth_send(s, mac, ETH_IP, ETH_HLEN + IP_HLEN + plen);
}

static uint8_t *l4_out(struct netstack *s)
{
	return s->out_frame + ETH_HLEN + IP_HLEN;
}

/* ---- ARP ---- */

static void arp_learn(struct netstack *s, uint32_t ip, const uint8_t mac[6])
{
	unsigned i;

	if (!ip || (mac[0] & 1))
		return;
	for (i = 0; i < NS_ARP_MAX && s->arp[i].ip != ip; i++)
		;
	if (i == NS_ARP_MAX)
		i = s->arp_next++ % NS_ARP_MAX;
	s->arp[i].ip = ip;
	memcpy(s->arp[i].mac, mac, 6);
}

static void arp_send(struct netstack *s, uint16_t op, const uint8_t tha[6], uint32_t tpa,
		     const uint8_t dst[6])
{
	uint8_t *a = s->out_frame + ETH_HLEN;

	ns_put16(a, 1);
	ns_put16(a + 2, ETH_IP);
	a[4] = 6;
	a[5] = 4;
	ns_put16(a + 6, op);
	memcpy(a + 8, s->mac, 6);
	ns_put32(a + 14, s->ip);
	memcpy(a + 18, tha, 6);
	ns_put32(a + 24, tpa);
	eth_send(s, dst, ETH_ARP, ETH_HLEN + 28);
}

static void arp_input(struct netstack *s, const uint8_t *a, size_t len)
{
	if (len < 28 || ns_get16(a) != 1 || ns_get16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4) {
		s->dropped++;
		return;
	}
	uint16_t op = ns_get16(a + 6);
	uint32_t spa = ns_get32(a + 14), tpa = ns_get32(a + 24);
	if (op == 2 || (op == 1 && s->ip && tpa == s->ip))
		arp_learn(s, spa, a + 8);
	if (op == 1 && s->ip && tpa == s->ip)
		arp_send(s, 2, a + 8, spa, a + 8);
}

/* The next hop towards ip: ip itself on the local network, else the gateway. */
static uint32_t next_hop(const struct netstack *s, uint32_t ip)
{
	if (s->mask && (ip & s->mask) != (s->ip & s->mask) && s->gw)
		return s->gw;
	return ip;
}

int ns_resolve_known(struct netstack *s, uint32_t ip, uint8_t mac[6])
{
	uint32_t hop = next_hop(s, ip);

	if (ip == IP_BROADCAST ||
	    (s->mask && (ip | s->mask) == IP_BROADCAST && (ip & s->mask) == (s->ip & s->mask))) {
		memcpy(mac, mac_broadcast, 6);
		return 1;
	}
	for (unsigned i = 0; i < NS_ARP_MAX; i++) {
		if (hop && s->arp[i].ip == hop) {
			memcpy(mac, s->arp[i].mac, 6);
			return 1;
		}
	}
	return 0;
}

void ns_announce(struct netstack *s)
{
	static const uint8_t zero[6];

	if (s->ip)
		arp_send(s, 1, zero, s->ip, mac_broadcast);
}

int ns_resolve(struct netstack *s, uint32_t ip, uint8_t mac[6])
{
	static const uint8_t zero[6];

	if (ns_resolve_known(s, ip, mac))
		return 1;
	arp_send(s, 1, zero, next_hop(s, ip), mac_broadcast);
	return 0;
}

/* ---- ICMP ---- */

int ns_send_ping(struct netstack *s, const uint8_t mac[6], uint32_t dst, uint16_t id, uint16_t seq)
{
	uint8_t *icmp = l4_out(s);
	static const char pattern[] = "termvisor demo ping 0123456789abcdef";
	size_t len = ICMP_HLEN + sizeof(pattern) - 1;

	icmp[0] = 8;
	icmp[1] = 0;
	ns_put16(icmp + 2, 0);
	ns_put16(icmp + 4, id);
	ns_put16(icmp + 6, seq);
	memcpy(icmp + ICMP_HLEN, pattern, sizeof(pattern) - 1);
	ns_put16(icmp + 2, ns_csum(icmp, len, 0));
	s->ping_id = id;
	s->ping_seq = seq;
	s->ping_got = 0;
	ip_send(s, mac, s->ip, dst, IP_ICMP, len);
	return 0;
}

static void icmp_input(struct netstack *s, const uint8_t *eth, uint32_t src, const uint8_t *icmp,
		       size_t len)
{
	if (len < ICMP_HLEN || ns_csum(icmp, len, 0) != 0) {
		s->dropped++;
		return;
	}
	if (icmp[0] == 8 && icmp[1] == 0 && s->ip) { /* echo request: the same data back */
		uint8_t *out = l4_out(s);
		if (len > NS_FRAME_MAX - ETH_HLEN - IP_HLEN)
			return;
		memcpy(out, icmp, len);
		out[0] = 0;
		ns_put16(out + 2, 0);
		ns_put16(out + 2, ns_csum(out, len, 0));
		ip_send(s, eth + 6, s->ip, src, IP_ICMP, len);
	} else if (icmp[0] == 0 && ns_get16(icmp + 4) == s->ping_id &&
		   ns_get16(icmp + 6) == s->ping_seq) {
		s->ping_got = 1;
		s->ping_from = src;
	}
}

/* ---- UDP ---- */

int ns_send_udp(struct netstack *s, const uint8_t mac[6], uint32_t dst, uint16_t sport,
		uint16_t dport, const void *data, size_t len)
{
	uint8_t *udp = l4_out(s);
	size_t ulen = UDP_HLEN + len;
	uint16_t sum;

	if (len > NS_FRAME_MAX - ETH_HLEN - IP_HLEN - UDP_HLEN)
		return -1;
	ns_put16(udp, sport);
	ns_put16(udp + 2, dport);
	ns_put16(udp + 4, (uint16_t)ulen);
	ns_put16(udp + 6, 0);
	memcpy(udp + UDP_HLEN, data, len);
	sum = ns_csum(udp, ulen, pseudo_sum(s->ip, dst, IP_UDP, ulen));
	ns_put16(udp + 6, sum ? sum : 0xffff);
	ip_send(s, mac, s->ip, dst, IP_UDP, ulen);
	return 0;
}

static void dhcp_input(struct netstack *s, const uint8_t *d, size_t len);

static void udp_input(struct netstack *s, const uint8_t *eth, uint32_t src, uint32_t dst,
		      const uint8_t *udp, size_t len)
{
	if (len < UDP_HLEN || ns_get16(udp + 4) < UDP_HLEN || ns_get16(udp + 4) > len) {
		s->dropped++;
		return;
	}
	len = ns_get16(udp + 4);
	if (ns_get16(udp + 6) && ns_csum(udp, len, pseudo_sum(src, dst, IP_UDP, len)) != 0) {
		s->dropped++;
		return;
	}
	uint16_t sport = ns_get16(udp), dport = ns_get16(udp + 2);
	const uint8_t *data = udp + UDP_HLEN;
	size_t dlen = len - UDP_HLEN;

	if (dport == DHCP_CLIENT && s->dhcp != NS_DHCP_IDLE) {
		dhcp_input(s, data, dlen);
	} else if (!s->ip) {
		return;
	} else if (dport == s->udp_echo_port && dport) {
		ns_send_udp(s, eth + 6, src, dport, sport, data, dlen);
	} else if (dport == s->udp_recv_port && dport && !s->udp_got) {
		s->udp_len = dlen < NS_UDP_KEEP ? dlen : NS_UDP_KEEP;
		memcpy(s->udp_data, data, s->udp_len);
		s->udp_from = src;
		s->udp_from_port = sport;
		s->udp_got = 1;
	}
}

/* ---- DHCP ---- */

static void dhcp_send(struct netstack *s, uint8_t type)
{
	uint8_t msg[DHCP_FIXED + 32], *o = msg + DHCP_FIXED;
	uint32_t ip = s->ip;

	memset(msg, 0, sizeof(msg));
	msg[0] = 1; /* BOOTREQUEST */
	msg[1] = 1;
	msg[2] = 6;
	ns_put32(msg + 4, s->dhcp_xid);
	ns_put16(msg + 10, 0x8000); /* answer by broadcast: we have no address yet */
	memcpy(msg + 28, s->mac, 6);
	ns_put32(msg + 236, 0x63825363);
	*o++ = 53, *o++ = 1, *o++ = type;
	if (type == 3) {
		*o++ = 50, *o++ = 4, ns_put32(o, s->dhcp_offer), o += 4;
		*o++ = 54, *o++ = 4, ns_put32(o, s->dhcp_server), o += 4;
	}
	*o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 6; /* mask, router, DNS */
	*o++ = 255;
	s->ip = 0;
	ns_send_udp(s, mac_broadcast, IP_BROADCAST, DHCP_CLIENT, DHCP_SERVER, msg,
		    (size_t)(o - msg));
	s->ip = ip;
}

void ns_dhcp_start(struct netstack *s, uint32_t xid)
{
	s->dhcp_xid = xid;
	s->dhcp = NS_DHCP_SELECTING;
	dhcp_send(s, 1);
}

/* The options a DHCP answer carries; a malformed list ends the walk. */
struct dhcp_opts {
	uint8_t type;
	uint32_t mask, router, server;
};

static void dhcp_options(const uint8_t *o, size_t len, struct dhcp_opts *out)
{
	for (size_t i = 0; i < len;) {
		uint8_t code = o[i];
		if (code == 0) {
			i++;
			continue;
		}
		if (code == 255 || i + 1 >= len || i + 2 + o[i + 1] > len)
			return;
		uint8_t olen = o[i + 1];
		const uint8_t *v = o + i + 2;
		if (code == 53 && olen >= 1)
			out->type = v[0];
		else if (code == 1 && olen >= 4)
			out->mask = ns_get32(v);
		else if (code == 3 && olen >= 4)
			out->router = ns_get32(v);
		else if (code == 54 && olen >= 4)
			out->server = ns_get32(v);
		i += 2 + (size_t)olen;
	}
}

static void dhcp_input(struct netstack *s, const uint8_t *d, size_t len)
{
	struct dhcp_opts o = {0};

	if (len < DHCP_FIXED || d[0] != 2 || ns_get32(d + 4) != s->dhcp_xid ||
	    memcmp(d + 28, s->mac, 6) != 0 || ns_get32(d + 236) != 0x63825363) {
		s->dropped++;
		return;
	}
	dhcp_options(d + DHCP_FIXED, len - DHCP_FIXED, &o);
	if (s->dhcp == NS_DHCP_SELECTING && o.type == 2 && ns_get32(d + 16)) {
		s->dhcp_offer = ns_get32(d + 16);
		s->dhcp_server = o.server ? o.server : ns_get32(d + 20);
		s->dhcp = NS_DHCP_REQUESTING;
		dhcp_send(s, 3);
	} else if (s->dhcp == NS_DHCP_REQUESTING && o.type == 5) {
		s->ip = ns_get32(d + 16);
		s->mask = o.mask ? o.mask : NS_IP(255, 255, 255, 0);
		s->gw = o.router;
		s->dhcp = NS_DHCP_BOUND;
	} else if (s->dhcp == NS_DHCP_REQUESTING && o.type == 6) {
		s->dhcp = NS_DHCP_REFUSED;
	}
}

/* ---- TCP ---- */

static void tcp_send(struct netstack *s, const uint8_t mac[6], uint32_t dst, uint16_t sport,
		     uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, const void *data,
		     size_t len)
{
	uint8_t *t = l4_out(s);
	size_t hlen = TCP_HLEN + ((flags & TCP_SYN) ? 4 : 0);

	if (len > NS_FRAME_MAX - ETH_HLEN - IP_HLEN - hlen)
		return;
	ns_put16(t, sport);
	ns_put16(t + 2, dport);
	ns_put32(t + 4, seq);
	ns_put32(t + 8, ack);
	t[12] = (uint8_t)(hlen / 4) << 4;
	t[13] = flags;
	ns_put16(t + 14, TCP_WINDOW);
	ns_put16(t + 16, 0);
	ns_put16(t + 18, 0);
	if (flags & TCP_SYN) { /* the largest segment we take */
		t[20] = 2, t[21] = 4;
		ns_put16(t + 22, TCP_MSS);
	}
	if (len)
		memcpy(t + hlen, data, len);
	ns_put16(t + 16, ns_csum(t, hlen + len, pseudo_sum(s->ip, dst, IP_TCP, hlen + len)));
	ip_send(s, mac, s->ip, dst, IP_TCP, hlen + len);
}

/* What the connection sends: the peer is known. */
static void tcp_reply(struct netstack *s, uint8_t flags, const void *data, size_t len)
{
	tcp_send(s, s->tcp.peer_mac, s->tcp.peer, s->tcp.port, s->tcp.peer_port, s->tcp.snd_nxt,
		 s->tcp.rcv_nxt, flags, data, len);
}

/* A segment nobody takes gets a reset (RFC 793's rules for the CLOSED state). */
static void tcp_reset(struct netstack *s, const uint8_t *eth, uint32_t src, const uint8_t *t,
		      size_t dlen)
{
	uint8_t flags = t[13];

	if (flags & TCP_RST)
		return;
	if (flags & TCP_ACK)
		tcp_send(s, eth + 6, src, ns_get16(t + 2), ns_get16(t), ns_get32(t + 8), 0, TCP_RST,
			 0, 0);
	else
		tcp_send(s, eth + 6, src, ns_get16(t + 2), ns_get16(t), 0,
			 ns_get32(t + 4) + (uint32_t)dlen + ((flags & TCP_SYN) ? 1 : 0),
			 TCP_RST | TCP_ACK, 0, 0);
}

void ns_tcp_listen(struct netstack *s, uint16_t port, uint32_t iss)
{
	if (s->tcp.state >= NS_TCP_SYN_RCVD)
		tcp_reply(s, TCP_RST, 0, 0);
	s->tcp.state = port ? NS_TCP_LISTEN : NS_TCP_CLOSED;
	s->tcp.port = port;
	s->tcp.iss = iss;
}

/* The data of an in-order segment goes straight back; a FIN closes our side too. */
static void tcp_established(struct netstack *s, uint32_t seq, uint8_t flags, const uint8_t *data,
			    size_t dlen)
{
	if (seq != s->tcp.rcv_nxt) {
		if (dlen || (flags & TCP_FIN))
			tcp_reply(s, TCP_ACK, 0, 0); /* old or early: say where we are */
		return;
	}
	if (dlen) {
		s->tcp.rcv_nxt += (uint32_t)dlen;
		tcp_reply(s, TCP_ACK | TCP_PSH, data, dlen);
		s->tcp.snd_nxt += (uint32_t)dlen;
		s->tcp.echoed += dlen;
	}
	if (flags & TCP_FIN) {
		s->tcp.rcv_nxt++;
		tcp_reply(s, TCP_FIN | TCP_ACK, 0, 0);
		s->tcp.snd_nxt++;
		s->tcp.state = NS_TCP_LAST_ACK;
	}
}

static void tcp_input(struct netstack *s, const uint8_t *eth, uint32_t src, uint32_t dst,
		      const uint8_t *t, size_t len)
{
	size_t hlen;

	if (len < TCP_HLEN || (hlen = (size_t)(t[12] >> 4) * 4) < TCP_HLEN || hlen > len ||
	    ns_csum(t, len, pseudo_sum(src, dst, IP_TCP, len)) != 0) {
		s->dropped++;
		return;
	}
	uint16_t sport = ns_get16(t), dport = ns_get16(t + 2);
	uint32_t seq = ns_get32(t + 4), ack = ns_get32(t + 8);
	uint8_t flags = t[13];
	const uint8_t *data = t + hlen;
	size_t dlen = len - hlen;
	int ours;

	/* A new connection while the last one waits for its final ACK: that ACK
	 * no longer matters (a peer that closes and connects again at once). */
	if (s->tcp.state == NS_TCP_LAST_ACK && dport == s->tcp.port &&
	    (flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN &&
	    (src != s->tcp.peer || sport != s->tcp.peer_port))
		s->tcp.state = NS_TCP_LISTEN;
	ours = s->tcp.state >= NS_TCP_SYN_RCVD && src == s->tcp.peer && sport == s->tcp.peer_port;

	if (s->tcp.state == NS_TCP_CLOSED || dport != s->tcp.port ||
	    (s->tcp.state != NS_TCP_LISTEN && !ours)) {
		tcp_reset(s, eth, src, t, dlen); /* no service, or busy with another peer */
		return;
	}
	if (flags & TCP_RST) {
		if (ours)
			s->tcp.state = NS_TCP_LISTEN;
		return;
	}
	switch (s->tcp.state) {
	case NS_TCP_LISTEN:
		if ((flags & (TCP_SYN | TCP_ACK)) != TCP_SYN) {
			tcp_reset(s, eth, src, t, dlen);
			return;
		}
		s->tcp.peer = src;
		s->tcp.peer_port = sport;
		memcpy(s->tcp.peer_mac, eth + 6, 6);
		s->tcp.rcv_nxt = seq + 1;
		s->tcp.snd_nxt = s->tcp.iss;
		s->tcp.iss += 64000;
		tcp_reply(s, TCP_SYN | TCP_ACK, 0, 0);
		s->tcp.snd_nxt++;
		s->tcp.state = NS_TCP_SYN_RCVD;
		return;
	case NS_TCP_SYN_RCVD:
		if (flags & TCP_SYN) { /* our SYN-ACK was lost: again */
			s->tcp.snd_nxt--;
			tcp_reply(s, TCP_SYN | TCP_ACK, 0, 0);
			s->tcp.snd_nxt++;
			return;
		}
		if (!(flags & TCP_ACK) || ack != s->tcp.snd_nxt)
			return;
		s->tcp.state = NS_TCP_ESTABLISHED;
		tcp_established(s, seq, flags, data, dlen);
		return;
	case NS_TCP_ESTABLISHED:
		tcp_established(s, seq, flags, data, dlen);
		return;
	case NS_TCP_LAST_ACK:
		if ((flags & TCP_ACK) && ack == s->tcp.snd_nxt)
			s->tcp.state = NS_TCP_LISTEN;
		else if (flags & TCP_FIN) { /* our FIN was lost: again */
			s->tcp.snd_nxt--;
			tcp_reply(s, TCP_FIN | TCP_ACK, 0, 0);
			s->tcp.snd_nxt++;
		}
		return;
	default:
		return;
	}
}

/* ---- IPv4 and Ethernet ---- */

static void ip_input(struct netstack *s, const uint8_t *eth, const uint8_t *ip, size_t len)
{
	size_t hlen, tlen;

	if (len < IP_HLEN || (ip[0] >> 4) != 4 || (hlen = (size_t)(ip[0] & 15) * 4) < IP_HLEN ||
	    hlen > len || (tlen = ns_get16(ip + 2)) < hlen || tlen > len ||
	    ns_csum(ip, hlen, 0) != 0) {
		s->dropped++;
		return;
	}
	if (ns_get16(ip + 6) & 0x3fff) { /* a fragment: never reassembled here */
		s->dropped++;
		return;
	}
	uint32_t src = ns_get32(ip + 12), dst = ns_get32(ip + 16);
	int for_us = dst == IP_BROADCAST || (s->ip && dst == s->ip) ||
		     (s->ip && s->mask && dst == (s->ip | ~s->mask)) ||
		     (!s->ip && s->dhcp != NS_DHCP_IDLE);
	if (!for_us)
		return;
	const uint8_t *p = ip + hlen;
	size_t plen = tlen - hlen;
	if (ip[9] == IP_ICMP)
		icmp_input(s, eth, src, p, plen);
	else if (ip[9] == IP_UDP)
		udp_input(s, eth, src, dst, p, plen);
	else if (ip[9] == IP_TCP && dst == s->ip)
		tcp_input(s, eth, src, dst, p, plen);
}

void ns_input(struct netstack *s, const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN || len > NS_FRAME_MAX + 4) {
		s->dropped++;
		return;
	}
	if (memcmp(f, s->mac, 6) != 0 && memcmp(f, mac_broadcast, 6) != 0)
		return; /* someone else's, or multicast we never joined */
	s->in++;
	if (ns_get16(f + 12) == ETH_ARP)
		arp_input(s, f + ETH_HLEN, len - ETH_HLEN);
	else if (ns_get16(f + 12) == ETH_IP)
		ip_input(s, f, f + ETH_HLEN, len - ETH_HLEN);
}

int ns_parse_ip(const char *str, uint32_t *ip, unsigned *prefix)
{
	uint32_t v = 0;
	unsigned part = 0, digits = 0, n = 0;

	for (;; str++) {
		if (*str >= '0' && *str <= '9') {
			n = n * 10 + (unsigned)(*str - '0');
			if (++digits > 3 || n > 255)
				return 0;
			continue;
		}
		if (!digits)
			return 0;
		v = v << 8 | n;
		part++;
		n = digits = 0;
		if (*str == '.' && part < 4)
			continue;
		break;
	}
	if (part != 4)
		return 0;
	if (*str == '/' && prefix) {
		unsigned p = 0;
		if (!str[1])
			return 0;
		for (str++; *str >= '0' && *str <= '9'; str++)
			if ((p = p * 10 + (unsigned)(*str - '0')) > 32)
				return 0;
		if (p == 0 && str[-1] != '0')
			return 0;
		*prefix = p;
	}
	if (*str)
		return 0;
	*ip = v;
	return 1;
}
