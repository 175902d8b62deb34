/* VM definitions: one libconfig file per VM, parsed into validated, typed
 * structs, and written back readably (the create path and the TUI write them).
 * See termvisor.conf(5) for the syntax. */
#ifndef TV_VMDEF_H
#define TV_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vm/vm.h"

#define VMDEF_MAX_CPUS 64
#define VMDEF_MIN_MEMORY (2ULL << 20)
#define VMDEF_MAX_MEMORY (1ULL << 40)
#define VMDEF_MAX_CMDLINE 4096
#define VMDEF_MAX_DISKS 16
#define VMDEF_MAX_NETS NET_NICS_MAX

enum disk_format { DISK_FORMAT_QCOW2, DISK_FORMAT_RAW };

struct vmdef_disk {
	char *file; /* as written: relative to the VM's data directory unless absolute */
	enum disk_format format;
	bool readonly;
	enum vm_disk_aio aio; /* VM_AIO_DEFAULT unless the definition says */
	char *serial;         /* the guest's serial for it, or NULL (the engine's default) */
	enum vm_disk_on_error on_error; /* a write the host refuses: pause (default) or report */
};

struct vmdef_net {
	enum net_mode mode; /* vm/net/net.h: user, lab or tap */
	char *mac;          /* "52:54:00:..."; NULL: one derived from the VM's name */
	char **forwards;    /* user only: "tcp:127.0.0.1:2222:22", as net_forward_format writes them */
	size_t nforwards;
	char *name;         /* lab only: the lab network's name */
	char *ifname;       /* tap only */
	char *bridge;       /* tap only, or NULL */
};

struct vmdef {
	char *name;
	char *description;
	unsigned cpus;
	uint64_t memory; /* bytes */
	char *kernel;    /* paths as written, relative to datadir unless absolute */
	char *initrd;
	char *cmdline;
	struct vmdef_disk *disks;
	size_t ndisks;
	struct vmdef_net *nets;
	size_t nnets;
	bool autostart;
	bool debug_exit; /* the debug-exit port, for test machines */
	bool sandbox_off; /* sandbox = false: the VM process runs unconfined */
	char *ssh_user;  /* `termvisor ssh` logs in as this user, or NULL (ssh's default) */
	char *file;    /* the definition file it came from, or NULL */
	char *datadir; /* where relative paths point */
};

/* Called for each warning (unknown keys and the like), already formatted as
 * "FILE:LINE: message". */
typedef void (*vmdef_warn_fn)(void *ctx, const char *msg);

/* A fresh definition with the defaults: 1 vCPU, 512M. */
void vmdef_init(struct vmdef *d, const char *name, const char *datadir);
void vmdef_free(struct vmdef *d);

/* Parses file. The VM's name defaults to the file's name without ".conf"; a
 * `name` field that differs is an error. Errors read
 * "FILE:LINE: FIELD: expected ...", and d then holds nothing to free. warn
 * may be NULL (warnings go to stderr). */
int vmdef_load(const char *file, const char *datadir, struct vmdef *d, vmdef_warn_fn warn,
	       void *ctx, struct tv_err *err);

/* Checks every field (what vmdef_load checks, for definitions built in code). */
int vmdef_validate(const struct vmdef *d, struct tv_err *err);

/* Writes the definition to file atomically (a temporary file, then rename). */
int vmdef_save(const struct vmdef *d, const char *file, struct tv_err *err);

/* Resolves one of the definition's paths against its data directory. */
char *vmdef_path(const struct vmdef *d, const char *rel);

const char *disk_format_name(enum disk_format f);
int disk_format_parse(const char *s, enum disk_format *out);
/* qcow2 for ".qcow2", raw for ".img", ".raw", ".iso"; -1 when the name says nothing. */
int disk_format_from_name(const char *file, enum disk_format *out);
/* "threads" / "io_uring" (NULL for the default); parse returns -1 for
 * anything else. */
const char *disk_aio_name(enum vm_disk_aio a);
int disk_aio_parse(const char *s, enum vm_disk_aio *out);
const char *disk_on_error_name(enum vm_disk_on_error e); /* "pause" / "report" */
int disk_on_error_parse(const char *s, enum vm_disk_on_error *out);

/* "52:54:00:12:34:56": six hex pairs, unicast. */
bool vmdef_mac_valid(const char *mac);
/* A lab network's name: 1 to 63 letters, digits, '-', '_' or '.', not
 * starting with '.'. */
bool vmdef_lab_name_valid(const char *name);
/* A new VM's network: one NIC on the user network with a fresh MAC. */
void vmdef_add_default_net(struct vmdef *d);
/* Adds NIC nic (as `--net` gives it) to d's network cards. */
void vmdef_add_net(struct vmdef *d, const struct vm_nic *nic);
/* NIC i of d as the engine takes it (the MAC derived from the VM's name
 * when the definition has none, lab_socket left empty). */
int vmdef_nic(const struct vmdef *d, size_t i, struct vm_nic *nic, struct tv_err *err);

#endif
