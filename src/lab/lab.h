/* Private lab networks: a layer-2 switch per named network, run as the user.
 *
 * Each network has one UNIX datagram socket, RUNTIME/lab/NAME.sock (mode 0600
 * in the user's 0700 runtime directory), and one switch process holding
 * RUNTIME/lab/NAME.lock for its life. A member (a VM's NIC, or a QEMU guest
 * through `-netdev dgram`) binds a socket of its own and sends Ethernet frames
 * to the switch, one frame per datagram with no header; the switch learns the
 * member from the datagram's source address. A zero-length datagram is a
 * member's keepalive: it is never forwarded. termvisor-net(7) tells more. */
#ifndef TV_LAB_H
#define TV_LAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "src/core/paths.h"

#define LAB_MEMBERS_MAX	    64
#define LAB_MACS_MAX	    1024
#define LAB_MAC_AGE_S	    300 /* a learnt address is forgotten after this */
#define LAB_KEEPALIVE_S	    5	/* members send a keepalive this often */
#define LAB_MEMBER_SILENT_S 30	/* a member that sent keepalives and fell silent leaves */
#define LAB_LINGER_S	    30	/* the switch exits this long after its last member left */

/* What one switch did, printed when `termvisor lab-switch` ends. */
struct lab_stats {
	uint64_t frames_in, frames_out, flooded, dropped_runt, dropped_oversized, dropped_busy,
	    members_joined, members_left;
};

/* The network's socket and lock paths; -1 when the name is not valid or the
 * path does not fit a UNIX socket address. */
int lab_socket_path(const struct tv_paths *p, const char *name, char *sockpath, size_t len,
		    struct tv_err *err);

/* Makes sure network name's switch runs, starting it in the background when
 * none does (this program run as `lab-switch NAME`, see lab_switch_spawned),
 * and gives its socket's path. */
int lab_ensure_switch(const struct tv_paths *p, const char *name, char *sockpath, size_t len,
		      struct tv_err *err);

/* Runs the switch of network name in the foreground until it has had no
 * member for linger_s seconds (0: until a signal ends it). Fails when another
 * switch serves the network. */
int lab_switch_run(const struct tv_paths *p, const char *name, unsigned linger_s,
		   struct lab_stats *stats, struct tv_err *err);

/* For the VM process, before it opens its NICs' backends: every lab NIC
 * without a socket gets its network's, the switch started when none runs. */
struct vm_nic;
int lab_nics_prepare(struct vm_nic *nics, size_t n, struct tv_err *err);

/* The main of a program that lab_ensure_switch runs as `lab-switch NAME`
 * (argv[1] is "lab-switch"): the switch, quietly, ending LAB_LINGER_S after
 * its last member left. Returns the exit status. */
int lab_switch_spawned(int argc, char **argv);

/* The switch itself on a bound socket (src/lab/switch.c), for lab_switch_run
 * and the background switch. Returns when idle for linger_s seconds or when
 * *stop becomes non-zero; -1 only when it cannot allocate its tables. */
int lab_switch_loop(int fd, unsigned linger_s, volatile int *stop, struct lab_stats *stats);

#endif
