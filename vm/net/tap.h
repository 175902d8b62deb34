/* The tap backend's opening with the tun device named, so that tests can make
 * it unusable; net_tap_open uses /dev/net/tun. */
#ifndef TV_NET_TAP_H
#define TV_NET_TAP_H

#include "vm/net/net.h"

int net_tap_open_at(const struct vm_nic *nic, const char *tun_dev, struct net_backend **out,
		    struct tv_err *err);

#endif
