/* The command line between the launcher (`termvisor run`, `start`) and
 * termvisor-engine: every setting its own argument, since paths may hold any
 * character. Both directions live here so they cannot drift. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/settings.h"
#include "src/vmm/vmm.h"
#include "vm/layout.h"

#define ENGINE_NAME "termvisor-engine"

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_APPEND,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_DISK,
	OPT_DISK_FORMAT,
	OPT_DISK_READONLY,
	OPT_DISK_AIO,
	OPT_DISK_SERIAL,
	OPT_DISK_ON_ERROR,
	OPT_KERNEL_CACHE,
	OPT_REBOOT_EXIT,
	OPT_NO_EXTRACT,
	OPT_VERBOSE,
	OPT_NAME,
	OPT_DETACH,
	OPT_REPORT_FD,
	OPT_DEBUG_EXIT,
	OPT_RESTORE,
	OPT_RESTORE_TAG,
	OPT_KEEP_AUTOMATIC,
	OPT_NET,
	OPT_NO_SANDBOX,
};

static const struct option engine_opts[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"append", required_argument, NULL, OPT_APPEND},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"disk", required_argument, NULL, OPT_DISK},
	{"disk-format", required_argument, NULL, OPT_DISK_FORMAT},
	{"disk-readonly", no_argument, NULL, OPT_DISK_READONLY},
	{"disk-aio", required_argument, NULL, OPT_DISK_AIO},
	{"disk-serial", required_argument, NULL, OPT_DISK_SERIAL},
	{"disk-on-error", required_argument, NULL, OPT_DISK_ON_ERROR},
	{"kernel-cache", required_argument, NULL, OPT_KERNEL_CACHE},
	{"on-reboot-exit", no_argument, NULL, OPT_REBOOT_EXIT},
	{"no-extract", no_argument, NULL, OPT_NO_EXTRACT},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"name", required_argument, NULL, OPT_NAME},
	{"detach", no_argument, NULL, OPT_DETACH},
	{"report-fd", required_argument, NULL, OPT_REPORT_FD},
	{"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
	{"restore", required_argument, NULL, OPT_RESTORE},
	{"restore-tag", required_argument, NULL, OPT_RESTORE_TAG},
	{"keep-automatic", required_argument, NULL, OPT_KEEP_AUTOMATIC},
	{"net", required_argument, NULL, OPT_NET},
	{"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
	{0},
};

struct argv_buf {
	char **v;
	size_t n, cap;
};

static void argv_add(struct argv_buf *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xreallocarray(a->v, a->cap, sizeof(char *));
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

static void argv_opt(struct argv_buf *a, const char *name, const char *value)
{
	if (value == NULL)
		return;
	argv_add(a, name);
	argv_add(a, value);
}

char **vmm_argv(const struct vmm_opts *o, const char *prog)
{
	const struct vm_config *c = &o->cfg;
	struct argv_buf a = {0};
	char num[32];

	argv_add(&a, prog);
	argv_opt(&a, "--name", o->name);
	if (o->detach) {
		argv_add(&a, "--detach");
		snprintf(num, sizeof(num), "%d", o->report_fd);
		argv_opt(&a, "--report-fd", num);
	}
	argv_opt(&a, "--kernel", c->kernel);
	argv_opt(&a, "--initrd", c->initrd);
	argv_opt(&a, "--append", c->cmdline);
	snprintf(num, sizeof(num), "%u", c->cpus);
	argv_opt(&a, "--cpus", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)c->memory);
	argv_opt(&a, "--memory", num);
	for (size_t i = 0; i < c->ndisks; i++) {
		argv_opt(&a, "--disk", o->disks[i].path);
		argv_opt(&a, "--disk-format", o->disks[i].format);
		if (o->disks[i].readonly)
			argv_add(&a, "--disk-readonly");
		if (o->disks[i].aio != VM_AIO_DEFAULT)
			argv_opt(&a, "--disk-aio",
				 o->disks[i].aio == VM_AIO_THREADS ? "threads" : "io_uring");
		argv_opt(&a, "--disk-serial", o->disks[i].serial);
		if (o->disks[i].on_error == VM_ON_ERROR_REPORT)
			argv_opt(&a, "--disk-on-error", "report");
	}
	for (size_t i = 0; i < c->nnics && i < NET_NICS_MAX; i++) {
		char *net = vmm_net_format(&o->nics[i]);

		argv_opt(&a, "--net", net);
		free(net);
	}
	argv_opt(&a, "--kernel-cache", c->kernel_cache);
	if (o->reboot_exit)
		argv_add(&a, "--on-reboot-exit");
	if (c->bzimage_entry)
		argv_add(&a, "--no-extract");
	if (c->verbose)
		argv_add(&a, "--verbose");
	if (c->debug_exit)
		argv_add(&a, "--debug-exit");
	if (o->no_sandbox)
		argv_add(&a, "--no-sandbox");
	argv_opt(&a, "--restore", o->restore_dir);
	argv_opt(&a, "--restore-tag", o->restore_tag);
	if (o->keep_automatic_set) {
		snprintf(num, sizeof(num), "%u", o->keep_automatic);
		argv_opt(&a, "--keep-automatic", num);
	}
	return a.v;
}

void vmm_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

static int number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s || v > max)
		return -1;
	*out = v;
	return 0;
}

int vmm_args_parse(int argc, char **argv, struct vmm_opts *o, struct tv_err *err)
{
	struct vm_disk *last = NULL;
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->cfg.cpus = 1;
	o->cfg.memory = 512 * MIB;
	o->cfg.disks = o->disks;
	o->cfg.nics = o->nics;
	o->report_fd = -1;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", engine_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_KERNEL: o->cfg.kernel = optarg; break;
		case OPT_INITRD: o->cfg.initrd = optarg; break;
		case OPT_APPEND: o->cfg.cmdline = optarg; break;
		case OPT_CPUS:
			if (number(optarg, 1u << 16, &v) < 0)
				return tv_errf(err, "--cpus: expected a number");
			o->cfg.cpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			if (number(optarg, UINT64_MAX, &v) < 0)
				return tv_errf(err, "--memory: expected a number of bytes");
			o->cfg.memory = v;
			break;
		case OPT_DISK:
			if (o->cfg.ndisks == VMDEF_MAX_DISKS)
				return tv_errf(err, "too many disks");
			last = &o->disks[o->cfg.ndisks++];
			last->path = optarg;
			break;
		case OPT_DISK_FORMAT:
		case OPT_DISK_READONLY:
		case OPT_DISK_AIO:
		case OPT_DISK_SERIAL:
		case OPT_DISK_ON_ERROR:
			if (last == NULL)
				return tv_errf(err, "a disk option before any --disk");
			if (ch == OPT_DISK_FORMAT)
				last->format = optarg;
			else if (ch == OPT_DISK_SERIAL)
				last->serial = optarg;
			else if (ch == OPT_DISK_ON_ERROR && strcmp(optarg, "report") == 0)
				last->on_error = VM_ON_ERROR_REPORT;
			else if (ch == OPT_DISK_ON_ERROR && strcmp(optarg, "pause") == 0)
				last->on_error = VM_ON_ERROR_PAUSE;
			else if (ch == OPT_DISK_ON_ERROR)
				return tv_errf(err, "--disk-on-error: expected pause or report");
			else if (ch == OPT_DISK_READONLY)
				last->readonly = true;
			else if (strcmp(optarg, "threads") == 0)
				last->aio = VM_AIO_THREADS;
			else if (strcmp(optarg, "io_uring") == 0)
				last->aio = VM_AIO_IO_URING;
			else
				return tv_errf(err, "--disk-aio: expected threads or io_uring");
			break;
		case OPT_NET:
			if (o->cfg.nnics == NET_NICS_MAX)
				return tv_errf(err, "--net: at most %d network interfaces",
					       NET_NICS_MAX);
			if (vmm_net_parse(optarg, &o->nics[o->cfg.nnics], err) < 0)
				return -1;
			o->cfg.nnics++;
			break;
		case OPT_KERNEL_CACHE: o->cfg.kernel_cache = optarg; break;
		case OPT_REBOOT_EXIT: o->reboot_exit = true; break;
		case OPT_NO_EXTRACT: o->cfg.bzimage_entry = true; break;
		case OPT_VERBOSE: o->cfg.verbose = true; break;
		case OPT_DEBUG_EXIT: o->cfg.debug_exit = true; break;
		case OPT_NO_SANDBOX: o->no_sandbox = true; break;
		case OPT_NAME: o->name = optarg; break;
		case OPT_RESTORE: o->restore_dir = optarg; break;
		case OPT_RESTORE_TAG: o->restore_tag = optarg; break;
		case OPT_KEEP_AUTOMATIC:
			if (number(optarg, SETTINGS_KEEP_AUTOMATIC_MAX, &v) < 0)
				return tv_errf(err, "--keep-automatic: expected 0 to %d",
					       SETTINGS_KEEP_AUTOMATIC_MAX);
			o->keep_automatic = (unsigned)v;
			o->keep_automatic_set = true;
			break;
		case OPT_DETACH: o->detach = true; break;
		case OPT_REPORT_FD:
			if (number(optarg, 1u << 20, &v) < 0)
				return tv_errf(err, "--report-fd: expected a file descriptor");
			o->report_fd = (int)v;
			break;
		default:
			return tv_errf(err, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind != argc || o->cfg.kernel == NULL)
		return tv_errf(err, "expected --kernel FILE and options only");
	if (o->restore_tag != NULL && o->restore_dir == NULL)
		return tv_errf(err, "--restore-tag needs --restore DIR");
	return 0;
}

/* One key=value of a --net text into nic; -1 for an unknown key. */
static int net_option(const char *text, const char *tok, struct vm_nic *nic, bool *have_mac,
		      struct tv_err *err)
{
	const char *v = strchr(tok, '=');
	size_t klen = v != NULL ? (size_t)(v - tok) : strlen(tok);
	char *field = NULL;
	size_t cap = 0;

	if (v == NULL)
		return tv_errf(err, "--net %s: \"%s\": expected KEY=VALUE", text, tok);
	v++;
	if (klen == 3 && strncmp(tok, "mac", 3) == 0) {
		*have_mac = true;
		return net_mac_parse(v, nic->mac, err) < 0 ? tv_err_prefix(err, "--net %s: ", text)
							  : 0;
	}
	if (klen == 7 && strncmp(tok, "forward", 7) == 0) {
		if (nic->mode != NET_MODE_USER)
			return tv_errf(err, "--net %s: forward applies to mode user only", text);
		if (nic->nforwards == NET_FORWARDS_MAX)
			return tv_errf(err, "--net %s: at most %d forwards", text, NET_FORWARDS_MAX);
		if (net_forward_parse(v, &nic->forwards[nic->nforwards], err) < 0)
			return tv_err_prefix(err, "--net %s: ", text);
		nic->nforwards++;
		return 0;
	}
	if (klen == 4 && strncmp(tok, "name", 4) == 0 && nic->mode == NET_MODE_LAB)
		field = nic->lab_name, cap = sizeof(nic->lab_name);
	else if (klen == 6 && strncmp(tok, "ifname", 6) == 0 && nic->mode == NET_MODE_TAP)
		field = nic->ifname, cap = sizeof(nic->ifname);
	else if (klen == 6 && strncmp(tok, "bridge", 6) == 0 && nic->mode == NET_MODE_TAP)
		field = nic->bridge, cap = sizeof(nic->bridge);
	else if (klen == 6 && strncmp(tok, "socket", 6) == 0 && nic->mode == NET_MODE_LAB)
		field = nic->lab_socket, cap = sizeof(nic->lab_socket);
	if (field == NULL)
		return tv_errf(err,
			       "--net %s: unknown option \"%.*s\" (user: mac, forward; lab: mac, "
			       "name; tap: mac, ifname, bridge)",
			       text, (int)klen, tok);
	if (*v == '\0' || strlen(v) >= cap)
		return tv_errf(err, "--net %s: %.*s: expected 1 to %zu characters", text, (int)klen,
			       tok, cap - 1);
	snprintf(field, cap, "%s", v);
	return 0;
}

int vmm_net_parse(const char *text, struct vm_nic *nic, struct tv_err *err)
{
	char *copy = xstrdup(text), *save = NULL;
	char *tok = strtok_r(copy, ",", &save);
	bool have_mac = false;
	int rc = 0;

	memset(nic, 0, sizeof(*nic));
	if (tok == NULL || net_mode_parse(tok, &nic->mode) < 0)
		rc = tv_errf(err, "--net %s: expected user, lab or tap first (like "
				  "user,forward=tcp::2222:22)",
			     text);
	while (rc == 0 && (tok = strtok_r(NULL, ",", &save)) != NULL)
		rc = net_option(text, tok, nic, &have_mac, err);
	if (rc == 0 && nic->mode == NET_MODE_LAB && nic->lab_name[0] == '\0')
		rc = tv_errf(err, "--net %s: lab needs name=LAB", text);
	if (rc == 0 && nic->mode == NET_MODE_TAP && nic->ifname[0] == '\0')
		rc = tv_errf(err, "--net %s: tap needs ifname=IFACE", text);
	if (rc == 0 && !have_mac)
		net_mac_generate(nic->mac);
	free(copy);
	return rc;
}

char *vmm_net_format(const struct vm_nic *nic)
{
	char mac[18], fwd[96];
	char *s, *t;

	net_mac_format(nic->mac, mac, sizeof(mac));
	s = xasprintf("%s,mac=%s", net_mode_name(nic->mode), mac);
	for (unsigned i = 0; i < nic->nforwards && i < NET_FORWARDS_MAX; i++) {
		net_forward_format(&nic->forwards[i], fwd, sizeof(fwd));
		t = xasprintf("%s,forward=%s", s, fwd);
		free(s);
		s = t;
	}
	if (nic->lab_name[0]) {
		t = xasprintf("%s,name=%s", s, nic->lab_name);
		free(s);
		s = t;
	}
	if (nic->lab_socket[0]) {
		t = xasprintf("%s,socket=%s", s, nic->lab_socket);
		free(s);
		s = t;
	}
	if (nic->ifname[0]) {
		t = xasprintf("%s,ifname=%s", s, nic->ifname);
		free(s);
		s = t;
	}
	if (nic->bridge[0]) {
		t = xasprintf("%s,bridge=%s", s, nic->bridge);
		free(s);
		s = t;
	}
	return s;
}

char *vmm_engine_path(void)
{
	const char *env = getenv("TERMVISOR_ENGINE");
	char buf[4096];
	ssize_t n;

	if (env != NULL && *env != '\0')
		return xstrdup(env);
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		char *slash = strrchr(buf, '/');
		if (slash != NULL) {
			char *beside = xasprintf("%.*s/" ENGINE_NAME, (int)(slash - buf), buf);
			if (access(beside, X_OK) == 0)
				return beside;
			free(beside);
		}
	}
#ifdef TV_PKGLIBEXECDIR
	return xstrdup(TV_PKGLIBEXECDIR "/" ENGINE_NAME);
#else
	return xstrdup(ENGINE_NAME);
#endif
}
