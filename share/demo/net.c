/* The `net` command: the network stack (netstack.c) on the virtio-net device, and the
 * waiting its subcommands do.  The stack also runs while the shell waits for a key
 * (net_idle_poll), so a demo guest with an address answers ARP and pings at its
 * prompt. */
#include "demo.h"
#include "netstack.h"

#define ARP_TRIES   3
#define PING_TRIES  3
#define DHCP_TRIES  3
#define RECV_WAIT_S 5    /* `net recv`'s wait unless told */
#define RECV_WAIT_MAX 600
#define TX_SPIN	    100000

static struct netstack st;
static int st_ready;

static void net_tx(const void *frame, size_t len)
{
	for (unsigned spin = 0; vnet_send(frame, len) < 0; spin++) {
		if (spin == TX_SPIN)
			return; /* the device took nothing for a long while: lost */
		cpu_relax();
	}
}

static void net_rx(const uint8_t *frame, size_t len)
{
	ns_input(&st, frame, len);
}

static void net_setup(void)
{
	if (st_ready)
		return;
	memcpy(st.mac, nic.mac, 6);
	st.tx = net_tx;
	st_ready = 1;
}

static int net_ready(void)
{
	if (!nic.present) {
		if (nic.error)
			printf("net: no network device (virtio-net at PCI %02x:%02x.%u unusable: "
			       "%s)\n",
			       nic.pci.bus, nic.pci.dev, nic.pci.fn, nic.error);
		else
			printf("net: no network device\n");
		return 0;
	}
	net_setup();
	return 1;
}

void net_idle_poll(void)
{
	if (!nic.present)
		return;
	net_setup();
	vnet_poll(net_rx);
}

/* Runs the stack until done(arg) holds or ms have passed; 1 when it held. */
static int net_wait(int (*done)(void), uint64_t ms)
{
	uint64_t until = ticks + (ms * DEMO_TICK_HZ + 999) / 1000;

	for (;;) {
		vnet_poll(net_rx);
		if (done())
			return 1;
		if (ticks >= until)
			return 0;
		irq_wait(); /* the next tick, or a frame's interrupt */
	}
}

/* Serves until a key is pressed. */
static void net_serve(void)
{
	while (console_trygetc() < 0) {
		vnet_poll(net_rx);
		irq_wait();
	}
}

static void ip_format(uint32_t ip, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
}

static int have_address(void)
{
	if (st.ip)
		return 1;
	printf("net: no address (net dhcp, or net ip A.B.C.D/NN first)\n");
	return 0;
}

static uint8_t resolved_mac[6];
static uint32_t resolving;

static int resolved(void)
{
	return ns_resolve_known(&st, resolving, resolved_mac);
}

/* The next hop's Ethernet address, asking by ARP a few times. */
static int net_resolve(uint32_t ip)
{
	resolving = ip;
	for (unsigned i = 0; i < ARP_TRIES; i++)
		if (ns_resolve(&st, ip, resolved_mac) || net_wait(resolved, 1000))
			return 1;
	return 0;
}

static int port_parse(const char **s, uint16_t *port)
{
	unsigned v = 0, digits = 0;

	for (; **s >= '0' && **s <= '9'; (*s)++, digits++)
		if ((v = v * 10 + (unsigned)(**s - '0')) > 65535)
			return 0;
	if (!digits || !v || (**s && **s != ' '))
		return 0;
	*port = (uint16_t)v;
	return 1;
}

static int got_lease(void)
{
	return st.dhcp == NS_DHCP_BOUND || st.dhcp == NS_DHCP_REFUSED;
}

static void net_dhcp(const char *arg)
{
	char ip[16], gw[16];

	st.ip = st.mask = st.gw = 0;
	for (unsigned i = 0; i < DHCP_TRIES && st.dhcp != NS_DHCP_BOUND; i++) {
		ns_dhcp_start(&st, (uint32_t)rdtsc() ^ i);
		net_wait(got_lease, 2000);
	}
	if (st.dhcp != NS_DHCP_BOUND) {
		st.dhcp = NS_DHCP_IDLE;
		st.ip = 0;
		printf("net: dhcp failed\n");
		return;
	}
	ip_format(st.ip, ip, sizeof(ip));
	ip_format(st.gw, gw, sizeof(gw));
	ns_announce(&st);
	printf("net: lease %s gw %s\n", ip, gw);
}

static void net_ip(const char *arg)
{
	uint32_t ip;
	unsigned prefix = 24;
	char text[16];

	if (!ns_parse_ip(arg, &ip, &prefix) || !ip) {
		printf("usage: net ip A.B.C.D/NN\n");
		return;
	}
	st.ip = ip;
	st.mask = prefix ? ~0u << (32 - prefix) : 0;
	st.gw = 0;
	st.dhcp = NS_DHCP_IDLE;
	ns_announce(&st);
	ip_format(ip, text, sizeof(text));
	printf("net: address %s/%u\n", text, prefix);
}

static int ping_back(void)
{
	return st.ping_got;
}

static void net_ping(const char *arg)
{
	uint32_t ip;
	char text[16];
	static uint16_t seq;

	if (!ns_parse_ip(arg, &ip, NULL)) {
		printf("usage: net ping A.B.C.D\n");
		return;
	}
	if (!have_address())
		return;
	if (net_resolve(ip)) {
		for (unsigned i = 0; i < PING_TRIES; i++) {
			ns_send_ping(&st, resolved_mac, ip, 0x7464, ++seq);
			if (net_wait(ping_back, 1000)) {
				ip_format(st.ping_from, text, sizeof(text));
				printf("net: reply from %s\n", text);
				return;
			}
		}
	}
	printf("net: no reply\n");
}

static void net_echo(const char *arg, int tcp)
{
	uint16_t port;

	if (!port_parse(&arg, &port) || *arg) {
		printf("usage: net %s-echo PORT\n", tcp ? "tcp" : "udp");
		return;
	}
	if (!have_address())
		return;
	if (tcp)
		ns_tcp_listen(&st, port, (uint32_t)rdtsc());
	else
		st.udp_echo_port = port;
	printf("net: echo on %u\n", port);
	net_serve();
	if (tcp) {
		printf("net: echo stopped (%lu bytes echoed)\n", st.tcp.echoed);
		ns_tcp_listen(&st, 0, 0);
	} else {
		printf("net: echo stopped\n");
		st.udp_echo_port = 0;
	}
}

static void net_send(const char *arg)
{
	char addr[16];
	uint32_t ip;
	uint16_t port;
	size_t n = 0;

	while (arg[n] && arg[n] != ' ' && n < sizeof(addr) - 1)
		addr[n] = arg[n], n++;
	addr[n] = 0;
	arg += n;
	while (*arg == ' ')
		arg++;
	if (!ns_parse_ip(addr, &ip, NULL) || !port_parse(&arg, &port)) {
		printf("usage: net send A.B.C.D PORT TEXT\n");
		return;
	}
	while (*arg == ' ')
		arg++;
	if (!have_address())
		return;
	if (!net_resolve(ip)) {
		printf("net: %s does not answer ARP\n", addr);
		return;
	}
	ns_send_udp(&st, resolved_mac, ip, port, port, arg, strlen(arg));
	printf("net: sent %zu bytes to %s:%u\n", strlen(arg), addr, port);
}

static int udp_arrived(void)
{
	return st.udp_got;
}

static void net_recv(const char *arg)
{
	uint16_t port = 0;
	unsigned secs = RECV_WAIT_S, digits = 0;
	char from[16], text[NS_UDP_KEEP + 1];

	if (port_parse(&arg, &port) && *arg == ' ') {
		for (secs = 0, arg++; *arg >= '0' && *arg <= '9' && secs <= RECV_WAIT_MAX; arg++, digits++)
			secs = secs * 10 + (unsigned)(*arg - '0');
		if (!digits || !secs || secs > RECV_WAIT_MAX)
			port = 0;
	}
	if (!port || *arg) {
		printf("usage: net recv PORT [SECONDS]   (SECONDS 1 to %u, default %u)\n",
		       (unsigned)RECV_WAIT_MAX, (unsigned)RECV_WAIT_S);
		return;
	}
	if (!have_address())
		return;
	st.udp_got = 0;
	st.udp_recv_port = port;
	/* From here a datagram is kept: a sender may go (a test waits for it). */
	printf("net: waiting on %u for %u s\n", port, secs);
	int got = net_wait(udp_arrived, (uint64_t)secs * 1000);
	st.udp_recv_port = 0;
	if (!got) {
		printf("net: nothing\n");
		return;
	}
	for (size_t i = 0; i < st.udp_len; i++) /* the peer's bytes, made printable */
		text[i] =
		    st.udp_data[i] >= 0x20 && st.udp_data[i] < 0x7f ? (char)st.udp_data[i] : '.';
	text[st.udp_len] = 0;
	ip_format(st.udp_from, from, sizeof(from));
	printf("net: got %s from %s\n", text, from);
}

static void net_mac(const char *arg)
{
	const uint8_t *m = nic.mac;

	printf("net: mac %02x:%02x:%02x:%02x:%02x:%02x\n", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void net_stats(const char *arg)
{
	printf("net: frames in %lu out %lu (dropped: %lu malformed, %lu by the driver)\n",
	       nic.frames_in, nic.frames_out, st.dropped, nic.dropped_in);
}

static void net_udp_echo(const char *arg)
{
	net_echo(arg, 0);
}

static void net_tcp_echo(const char *arg)
{
	net_echo(arg, 1);
}

/* clang-format off */
static const struct {
	const char *name;
	void (*run)(const char *arg);
} net_cmds[] = {
	{"dhcp", net_dhcp},
	{"ip", net_ip},
	{"ping", net_ping},
	{"send", net_send},
	{"recv", net_recv},
	{"udp-echo", net_udp_echo},
	{"tcp-echo", net_tcp_echo},
	{"mac", net_mac},
	{"stats", net_stats},
};
/* clang-format on */

void cmd_net(const char *arg)
{
	size_t n = 0;

	while (arg[n] && arg[n] != ' ')
		n++;
	const char *rest = arg + n;
	while (*rest == ' ')
		rest++;
	if (!net_ready())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(net_cmds); i++) {
		if (strlen(net_cmds[i].name) == n && strncmp(arg, net_cmds[i].name, n) == 0) {
			net_cmds[i].run(rest);
			return;
		}
	}
	printf("usage: net dhcp | ip A.B.C.D/NN | ping A.B.C.D | send A.B.C.D PORT TEXT"
	       " | recv PORT [SECONDS] | udp-echo PORT | tcp-echo PORT | mac | stats\n");
}
