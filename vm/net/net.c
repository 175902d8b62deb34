/* The text forms of modes, forwards and MACs that definitions, the command
 * line and `status` share. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vm/net/net.h"

const char *net_mode_name(enum net_mode m)
{
	return m == NET_MODE_TAP ? "tap" : m == NET_MODE_LAB ? "lab" : "user";
}

int net_mode_parse(const char *s, enum net_mode *out)
{
	if (strcmp(s, "user") == 0)
		*out = NET_MODE_USER;
	else if (strcmp(s, "lab") == 0)
		*out = NET_MODE_LAB;
	else if (strcmp(s, "tap") == 0)
		*out = NET_MODE_TAP;
	else
		return -1;
	return 0;
}

/* A port from text: 1 to 65535, digits only. */
static int port_parse(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int net_forward_parse(const char *text, struct net_forward *f, struct tv_err *err)
{
	const char *part[4];
	size_t len[4];
	unsigned n = 0;
	const char *p = text;
	struct in_addr a;

	memset(f, 0, sizeof(*f));
	for (;;) {
		const char *c = strchr(p, ':');

		if (n == 4)
			return tv_errf(err,
				       "forward \"%s\": too many parts (expected "
				       "tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT)",
				       text);
		part[n] = p;
		len[n] = c != NULL ? (size_t)(c - p) : strlen(p);
		n++;
		if (c == NULL)
			break;
		p = c + 1;
	}
	if (n < 3)
		return tv_errf(err,
			       "forward \"%s\": expected tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT", text);
	if (!((len[0] == 3 && memcmp(part[0], "tcp", 3) == 0) ||
	      (len[0] == 3 && memcmp(part[0], "udp", 3) == 0)))
		return tv_errf(err, "forward \"%s\": protocol \"%.*s\", expected tcp or udp", text,
			       (int)len[0], part[0]);
	memcpy(f->proto, part[0], 3);
	if (n == 4 && len[1] > 0) {
		if (len[1] >= sizeof(f->host_addr))
			return tv_errf(err, "forward \"%s\": host address too long", text);
		memcpy(f->host_addr, part[1], len[1]);
		if (inet_pton(AF_INET, f->host_addr, &a) != 1)
			return tv_errf(err,
				       "forward \"%s\": host address \"%s\", expected an IPv4 "
				       "address like 127.0.0.1",
				       text, f->host_addr);
	}
	if (port_parse(part[n - 2], len[n - 2], &f->host_port) != 0)
		return tv_errf(err, "forward \"%s\": host port \"%.*s\", expected 1 to 65535", text,
			       (int)len[n - 2], part[n - 2]);
	if (port_parse(part[n - 1], len[n - 1], &f->guest_port) != 0)
		return tv_errf(err, "forward \"%s\": guest port \"%.*s\", expected 1 to 65535", text,
			       (int)len[n - 1], part[n - 1]);
	return 0;
}

void net_forward_format(const struct net_forward *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s:%u:%u", f->proto, f->host_addr[0] ? f->host_addr : "127.0.0.1",
		 f->host_port, f->guest_port);
}

int net_mac_parse(const char *text, uint8_t mac[6], struct tv_err *err)
{
	uint8_t m[6];

	if (strlen(text) != 17)
		goto bad;
	for (unsigned i = 0; i < 6; i++) {
		char byte[3] = {text[3 * i], text[3 * i + 1], '\0'};

		if (!isxdigit((unsigned char)byte[0]) || !isxdigit((unsigned char)byte[1]) ||
		    (i < 5 && text[3 * i + 2] != ':'))
			goto bad;
		m[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	if (m[0] & 1)
		return tv_errf(err, "MAC \"%s\" is a multicast address; a NIC needs a unicast one",
			       text);
	memcpy(mac, m, 6);
	return 0;
bad:
	return tv_errf(err, "MAC \"%s\", expected six hex bytes like 52:54:00:12:34:56", text);
}

void net_mac_format(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

void net_mac_generate(uint8_t mac[6])
{
	uint8_t r[3] = {0};
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno != EINTR)
			break; /* never on Linux >= 3.17; a zero tail is still a valid MAC */
		if (n > 0)
			got += (size_t)n;
	}
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	memcpy(mac + 3, r, 3);
}
