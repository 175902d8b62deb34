/* Network backends by mode: a new mode (passt) is one more row. */
#include "vm/net/net.h"

/* One row per mode; open is NULL for a mode this build lacks. */
static const struct {
	enum net_mode mode;
	const char *name;
	int (*open)(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err);
} net_modes[] = {
	{NET_MODE_USER, "user", net_user_open},
	{NET_MODE_LAB, "lab", net_lab_open},
	{NET_MODE_TAP, "tap", net_tap_open},
};

int net_backend_open(const struct vm_nic *nic, struct net_backend **out, struct tv_err *err)
{
	for (size_t i = 0; i < sizeof(net_modes) / sizeof(net_modes[0]); i++) {
		if (net_modes[i].mode != nic->mode)
			continue;
		if (net_modes[i].open == NULL)
			return tv_errf(err, "network mode \"%s\" is not available in this build",
				       net_modes[i].name);
		return net_modes[i].open(nic, out, err);
	}
	return tv_errf(err, "unknown network mode %d", (int)nic->mode);
}
