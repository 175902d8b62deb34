/* A VM's network interfaces for `status` and `list`: from the running VM
 * (its net-info reply, with the DHCP lease) or, when it is not running, from
 * its definition (no address). Both as the same "key=value" lines. */
#ifndef TV_NETINFO_H
#define TV_NETINFO_H

#include <stdbool.h>
#include <stdio.h>

#include "src/core/paths.h"
#include "src/core/vmdef.h"

/* The lines for VM name: asked of the VM when live (falling back to def
 * when it does not answer), else made from def (which may be NULL: none).
 * Free it. */
char *netinfo_get(const struct tv_paths *p, const char *name, bool live, const struct vmdef *def);
/* A JSON array of {"mode", "mac", "address" (null when none), "forwards"}. */
void netinfo_json(FILE *f, const char *kv);
/* One line per interface: "net0:     user 52:54:00:.. 10.0.2.15 forwards ...". */
void netinfo_text(FILE *f, const char *kv);

#endif
