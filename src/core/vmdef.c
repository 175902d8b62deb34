#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/cfgfile.h"
#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "common/util.h"
#include "vm/sha256.h"

#define DEFAULT_MEMORY (512ULL << 20)

/* A login name ssh will take: letters, digits, '.', '_', '-', not leading '-'. */
static bool ssh_user_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > 32 || u[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)u[i]) && strchr("._-", u[i]) == NULL)
			return false;
	return true;
}

/* Parsing context: the file for messages, and where warnings go. */
struct parse {
	const char *file;
	vmdef_warn_fn warn;
	void *ctx;
	struct tv_err *err;
};

static int fail(struct parse *p, const config_setting_t *s, const char *field, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static int fail(struct parse *p, const config_setting_t *s, const char *field, const char *fmt,
		...)
{
	char what[TV_ERR_MAX / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tv_errf(p->err, "%s:%u: %s: %s", p->file, s ? config_setting_source_line(s) : 0,
		       field, what);
}

static void warn(struct parse *p, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(struct parse *p, const config_setting_t *s, const char *fmt, ...)
{
	char what[TV_ERR_MAX / 2], msg[TV_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s:%u: %s", p->file, config_setting_source_line(s), what);
	if (p->warn)
		p->warn(p->ctx, msg);
	else
		fprintf(stderr, "termvisor: warning: %s\n", msg);
}

static int get_string(struct parse *p, const config_setting_t *s, const char *field, char **out)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(p, s, field, "expected a string in double quotes");
	v = config_setting_get_string(s);
	free(*out);
	*out = xstrdup(v);
	return 0;
}

static int get_path(struct parse *p, const config_setting_t *s, const char *field, char **out)
{
	if (get_string(p, s, field, out) < 0)
		return -1;
	if (**out == '\0')
		return fail(p, s, field, "expected a file name, not an empty string");
	return 0;
}

static int get_bool(struct parse *p, const config_setting_t *s, const char *field, bool *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(p, s, field, "expected true or false");
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

static int get_memory(struct parse *p, const config_setting_t *s, uint64_t *out)
{
	uint64_t v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		if (parse_size(config_setting_get_string(s), &v) < 0)
			return fail(p, s, "memory", "expected a size like 512M or 2G, not \"%s\"",
				    config_setting_get_string(s));
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: {
		long long mib = config_setting_get_int64(s);
		if (mib <= 0 || (unsigned long long)mib > (VMDEF_MAX_MEMORY >> 20))
			return fail(p, s, "memory", "expected a size like 512M or 2G, not %lld",
				    mib);
		v = (uint64_t)mib << 20; /* a bare number counts MiB, as with qemu -m */
		break;
	}
	default:
		return fail(p, s, "memory", "expected a size like 512M or 2G");
	}
	*out = v;
	return 0;
}

static int check_memory(uint64_t v, char *why, size_t len)
{
	char a[32], b[32], c[32];

	format_size(v, a, sizeof(a));
	format_size(VMDEF_MIN_MEMORY, b, sizeof(b));
	format_size(VMDEF_MAX_MEMORY, c, sizeof(c));
	if (v < VMDEF_MIN_MEMORY || v > VMDEF_MAX_MEMORY) {
		snprintf(why, len, "%s is out of range: expected %s to %s", a, b, c);
		return -1;
	}
	if (v % (1ULL << 20) != 0) {
		snprintf(why, len, "%s is not a whole number of megabytes (like 512M or 2G)", a);
		return -1;
	}
	return 0;
}

static int get_cpus(struct parse *p, const config_setting_t *s, unsigned *out)
{
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return fail(p, s, "cpus", "expected a whole number from 1 to %d",
			    VMDEF_MAX_CPUS);
	v = config_setting_get_int64(s);
	if (v < 1 || v > VMDEF_MAX_CPUS)
		return fail(p, s, "cpus", "expected a whole number from 1 to %d, not %lld",
			    VMDEF_MAX_CPUS, v);
	*out = (unsigned)v;
	return 0;
}

static bool is_list(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_LIST ||
	       config_setting_type(s) == CONFIG_TYPE_ARRAY;
}

static int parse_disk(struct parse *p, const config_setting_t *s, struct vmdef_disk *d,
		      unsigned idx)
{
	char field[48];
	bool have_format = false;

	snprintf(field, sizeof(field), "disks[%u]", idx);
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (get_path(p, s, field, &d->file) < 0)
			return -1;
	} else if (config_setting_type(s) == CONFIG_TYPE_GROUP) {
		for (int i = 0; i < config_setting_length(s); i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *key = config_setting_name(e);
			char sub[64];
			snprintf(sub, sizeof(sub), "%s.%s", field, key);
			if (strcmp(key, "file") == 0) {
				if (get_path(p, e, sub, &d->file) < 0)
					return -1;
			} else if (strcmp(key, "format") == 0) {
				if (config_setting_type(e) != CONFIG_TYPE_STRING ||
				    disk_format_parse(config_setting_get_string(e), &d->format) < 0)
					return fail(p, e, sub, "expected \"qcow2\" or \"raw\"");
				have_format = true;
			} else if (strcmp(key, "readonly") == 0) {
				if (get_bool(p, e, sub, &d->readonly) < 0)
					return -1;
			} else if (strcmp(key, "aio") == 0) {
				if (config_setting_type(e) != CONFIG_TYPE_STRING ||
				    disk_aio_parse(config_setting_get_string(e), &d->aio) < 0)
					return fail(p, e, sub, "expected \"threads\" or \"io_uring\"");
			} else if (strcmp(key, "on_error") == 0) {
				if (config_setting_type(e) != CONFIG_TYPE_STRING ||
				    disk_on_error_parse(config_setting_get_string(e), &d->on_error) < 0)
					return fail(p, e, sub, "expected \"pause\" or \"report\"");
			} else if (strcmp(key, "serial") == 0) {
				if (config_setting_type(e) != CONFIG_TYPE_STRING ||
				    !vm_disk_serial_valid(config_setting_get_string(e)))
					return fail(p, e, sub,
						    "expected 1 to %d printable characters without "
						    "spaces or commas, like \"data1\"",
						    VM_DISK_SERIAL_MAX);
				free(d->serial);
				d->serial = xstrdup(config_setting_get_string(e));
			} else {
				warn(p, e,
				     "%s: unknown setting '%s' (known: file, format, readonly, aio, "
				     "serial, on_error)",
				     field, key);
			}
		}
		if (d->file == NULL)
			return fail(p, s, field, "expected a file, like { file = \"disk.qcow2\"; }");
	} else {
		return fail(p, s, field,
			    "expected a group like { file = \"disk.qcow2\"; format = \"qcow2\"; }");
	}
	if (!have_format && disk_format_from_name(d->file, &d->format) < 0)
		return fail(p, s, field,
			    "cannot tell the format of \"%s\" from its name; add format = "
			    "\"qcow2\" or \"raw\"",
			    d->file);
	return 0;
}

static int parse_disks(struct parse *p, const config_setting_t *s, struct vmdef *d)
{
	int n;

	if (!is_list(s) && config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail(p, s, "disks",
			    "expected a list like ( { file = \"disk.qcow2\"; format = \"qcow2\"; } )");
	if (config_setting_type(s) == CONFIG_TYPE_GROUP) /* a single disk written bare */
		n = 1;
	else
		n = config_setting_length(s);
	if (n > VMDEF_MAX_DISKS)
		return fail(p, s, "disks", "%d disks, expected at most %d", n, VMDEF_MAX_DISKS);
	d->disks = xcalloc((size_t)n, sizeof(*d->disks));
	d->ndisks = (size_t)n;
	if (config_setting_type(s) == CONFIG_TYPE_GROUP)
		return parse_disk(p, s, &d->disks[0], 0);
	for (int i = 0; i < n; i++)
		if (parse_disk(p, config_setting_get_elem(s, (unsigned)i), &d->disks[i],
			       (unsigned)i) < 0)
			return -1;
	return 0;
}

static int parse_forwards(struct parse *p, const config_setting_t *s, const char *field,
			  struct vmdef_net *n)
{
	int count = 1;

	if (is_list(s))
		count = config_setting_length(s);
	else if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(p, s, field, "expected a list like ( \"tcp:127.0.0.1:2222:22\" )");
	if (count > NET_FORWARDS_MAX)
		return fail(p, s, field, "%d forwards, expected at most %d", count,
			    NET_FORWARDS_MAX);
	n->forwards = xcalloc((size_t)count, sizeof(char *));
	for (int i = 0; i < count; i++) {
		const config_setting_t *e = is_list(s) ? config_setting_get_elem(s, (unsigned)i) : s;
		struct net_forward f;
		struct tv_err why;
		char text[96];

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return fail(p, e, field, "expected strings like \"tcp:127.0.0.1:2222:22\"");
		if (net_forward_parse(config_setting_get_string(e), &f, &why) < 0)
			return fail(p, e, field, "%s", why.msg);
		for (size_t j = 0; j < n->nforwards; j++) {
			struct net_forward g;

			net_forward_parse(n->forwards[j], &g, NULL);
			if (strcmp(g.proto, f.proto) == 0 && g.host_port == f.host_port &&
			    strcmp(g.host_addr, f.host_addr[0] ? f.host_addr : "127.0.0.1") == 0)
				return fail(p, e, field, "\"%s\": host port %u is forwarded twice",
					    config_setting_get_string(e), f.host_port);
		}
		net_forward_format(&f, text, sizeof(text));
		n->forwards[n->nforwards++] = xstrdup(text);
	}
	return 0;
}

/* Each key of a NIC's group, and the modes it belongs to. */
static int parse_net_key(struct parse *p, const config_setting_t *e, const char *sub,
			 const char *key, struct vmdef_net *n, bool *have_mode)
{
	if (strcmp(key, "mode") == 0 || strcmp(key, "type") == 0) { /* type: the older name */
		if (config_setting_type(e) != CONFIG_TYPE_STRING ||
		    net_mode_parse(config_setting_get_string(e), &n->mode) < 0)
			return fail(p, e, sub, "expected \"user\", \"lab\" or \"tap\"");
		*have_mode = true;
	} else if (strcmp(key, "mac") == 0) {
		if (get_string(p, e, sub, &n->mac) < 0)
			return -1;
		if (!vmdef_mac_valid(n->mac))
			return fail(p, e, sub,
				    "expected a unicast MAC address like \"52:54:00:12:34:56\", not "
				    "\"%s\"",
				    n->mac);
	} else if (strcmp(key, "ifname") == 0 || strcmp(key, "bridge") == 0) {
		char **v = key[0] == 'i' ? &n->ifname : &n->bridge;

		if (get_string(p, e, sub, v) < 0)
			return -1;
		if (strlen(*v) == 0 || strlen(*v) > 15 || strchr(*v, '/') != NULL ||
		    strchr(*v, ' ') != NULL)
			return fail(p, e, sub,
				    "expected an interface name of 1 to 15 characters, not \"%s\"",
				    *v);
	} else if (strcmp(key, "name") == 0) {
		if (get_string(p, e, sub, &n->name) < 0)
			return -1;
		if (!vmdef_lab_name_valid(n->name))
			return fail(p, e, sub,
				    "expected a lab network name of 1 to 63 letters, digits, '-', "
				    "'_' or '.', not \"%s\"",
				    n->name);
	} else if (strcmp(key, "forward") == 0) {
		return parse_forwards(p, e, sub, n);
	} else {
		warn(p, e, "%s: unknown setting '%s' (known: mode, mac, forward, name, ifname, bridge)",
		     sub, key);
	}
	return 0;
}

static int parse_net(struct parse *p, const config_setting_t *s, struct vmdef_net *n,
		     unsigned idx)
{
	char field[48];
	bool have_mode = false;

	snprintf(field, sizeof(field), "net[%u]", idx);
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail(p, s, field, "expected a group like { mode = \"user\"; }");
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *key = config_setting_name(e);
		char sub[64];

		snprintf(sub, sizeof(sub), "%s.%s", field, key);
		if (parse_net_key(p, e, sub, key, n, &have_mode) < 0)
			return -1;
	}
	if (!have_mode)
		return fail(p, s, field, "expected mode = \"user\", \"lab\" or \"tap\"");
	if (n->mode == NET_MODE_TAP && n->ifname == NULL)
		return fail(p, s, field, "mode \"tap\" needs ifname = \"tv-lab1\" (or another)");
	if (n->mode == NET_MODE_LAB && n->name == NULL)
		return fail(p, s, field, "mode \"lab\" needs name = \"lab1\" (or another)");
	if (n->mode != NET_MODE_USER && n->nforwards > 0)
		return fail(p, s, field, "forward applies to mode \"user\" only");
	if (n->mode != NET_MODE_TAP && (n->ifname != NULL || n->bridge != NULL))
		return fail(p, s, field, "ifname and bridge apply to mode \"tap\" only");
	if (n->mode != NET_MODE_LAB && n->name != NULL)
		return fail(p, s, field, "name applies to mode \"lab\" only");
	return 0;
}

static int parse_nets(struct parse *p, const config_setting_t *s, struct vmdef *d)
{
	int n;

	if (!is_list(s))
		return fail(p, s, "net", "expected a list like ( { mode = \"user\"; } )");
	n = config_setting_length(s);
	if (n > VMDEF_MAX_NETS)
		return fail(p, s, "net", "%d interfaces, expected at most %d", n, VMDEF_MAX_NETS);
	d->nets = xcalloc((size_t)n, sizeof(*d->nets));
	d->nnets = (size_t)n;
	for (int i = 0; i < n; i++)
		if (parse_net(p, config_setting_get_elem(s, (unsigned)i), &d->nets[i],
			      (unsigned)i) < 0)
			return -1;
	return 0;
}

static char *name_from_file(const char *file)
{
	const char *base = strrchr(file, '/');
	char *name = xstrdup(base ? base + 1 : file);
	size_t len = strlen(name);

	if (len > 5 && strcmp(name + len - 5, ".conf") == 0)
		name[len - 5] = '\0';
	return name;
}

static int parse_root(struct parse *p, const config_setting_t *root, struct vmdef *d)
{
	char why[128];

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *key = config_setting_name(s);
		int rc = 0;

		if (strcmp(key, "name") == 0) {
			char *name = NULL;
			rc = get_string(p, s, "name", &name);
			if (rc == 0 && strcmp(name, d->name) != 0)
				rc = fail(p, s, "name",
					  "\"%s\" does not match the file name; expected \"%s\"",
					  name, d->name);
			free(name);
		} else if (strcmp(key, "description") == 0) {
			rc = get_string(p, s, "description", &d->description);
		} else if (strcmp(key, "cpus") == 0) {
			rc = get_cpus(p, s, &d->cpus);
		} else if (strcmp(key, "memory") == 0) {
			rc = get_memory(p, s, &d->memory);
			if (rc == 0 && check_memory(d->memory, why, sizeof(why)) < 0)
				rc = fail(p, s, "memory", "%s", why);
		} else if (strcmp(key, "kernel") == 0) {
			rc = get_path(p, s, "kernel", &d->kernel);
		} else if (strcmp(key, "initrd") == 0) {
			rc = get_path(p, s, "initrd", &d->initrd);
		} else if (strcmp(key, "cmdline") == 0) {
			rc = get_string(p, s, "cmdline", &d->cmdline);
			if (rc == 0 && strlen(d->cmdline) >= VMDEF_MAX_CMDLINE)
				rc = fail(p, s, "cmdline", "expected at most %d characters",
					  VMDEF_MAX_CMDLINE - 1);
		} else if (strcmp(key, "disks") == 0) {
			rc = parse_disks(p, s, d);
		} else if (strcmp(key, "net") == 0) {
			rc = parse_nets(p, s, d);
		} else if (strcmp(key, "autostart") == 0) {
			rc = get_bool(p, s, "autostart", &d->autostart);
		} else if (strcmp(key, "debug_exit") == 0) {
			rc = get_bool(p, s, "debug_exit", &d->debug_exit);
		} else if (strcmp(key, "sandbox") == 0) {
			bool on = true;
			rc = get_bool(p, s, "sandbox", &on);
			d->sandbox_off = !on;
		} else if (strcmp(key, "ssh_user") == 0) {
			rc = get_string(p, s, "ssh_user", &d->ssh_user);
			if (rc == 0 && !ssh_user_valid(d->ssh_user))
				rc = fail(p, s, "ssh_user",
					  "expected a user name of letters, digits, '.', '_' or '-', "
					  "not \"%s\"",
					  d->ssh_user);
		} else {
			warn(p, s,
			     "unknown setting '%s' (known: name, description, cpus, memory, kernel, "
			     "initrd, cmdline, disks, net, autostart, debug_exit, sandbox, ssh_user)",
			     key);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

int vmdef_load(const char *file, const char *datadir, struct vmdef *d, vmdef_warn_fn warnfn,
	       void *ctx, struct tv_err *err)
{
	struct parse p = {file, warnfn, ctx, err};
	char *name = name_from_file(file);
	config_t cfg;
	int rc = -1;

	vmdef_init(d, name, datadir);
	free(name);
	d->file = xstrdup(file);
	if (vm_name_check(d->name, err) < 0) {
		tv_err_prefix(err, "%s: ", file);
		vmdef_free(d);
		return -1;
	}
	config_init(&cfg);
	if (cfgfile_read(&cfg, file, err) < 0)
		goto out;
	rc = parse_root(&p, config_root_setting(&cfg), d);
out:
	config_destroy(&cfg);
	if (rc < 0)
		vmdef_free(d);
	return rc;
}

void vmdef_init(struct vmdef *d, const char *name, const char *datadir)
{
	memset(d, 0, sizeof(*d));
	d->name = xstrdup(name);
	d->datadir = datadir ? xstrdup(datadir) : NULL;
	d->cpus = 1;
	d->memory = DEFAULT_MEMORY;
}

void vmdef_free(struct vmdef *d)
{
	free(d->name);
	free(d->description);
	free(d->kernel);
	free(d->initrd);
	free(d->cmdline);
	for (size_t i = 0; i < d->ndisks; i++) {
		free(d->disks[i].file);
		free(d->disks[i].serial);
	}
	free(d->disks);
	for (size_t i = 0; i < d->nnets; i++) {
		free(d->nets[i].ifname);
		free(d->nets[i].bridge);
		free(d->nets[i].name);
		free(d->nets[i].mac);
		for (size_t j = 0; j < d->nets[i].nforwards; j++)
			free(d->nets[i].forwards[j]);
		free(d->nets[i].forwards);
	}
	free(d->nets);
	free(d->ssh_user);
	free(d->file);
	free(d->datadir);
	memset(d, 0, sizeof(*d));
}

int vmdef_validate(const struct vmdef *d, struct tv_err *err)
{
	char why[128];

	if (vm_name_check(d->name, err) < 0)
		return -1;
	if (d->cpus < 1 || d->cpus > VMDEF_MAX_CPUS)
		return tv_errf(err, "cpus: expected a whole number from 1 to %d, not %u",
			       VMDEF_MAX_CPUS, d->cpus);
	if (check_memory(d->memory, why, sizeof(why)) < 0)
		return tv_errf(err, "memory: %s", why);
	if (d->cmdline && strlen(d->cmdline) >= VMDEF_MAX_CMDLINE)
		return tv_errf(err, "cmdline: expected at most %d characters",
			       VMDEF_MAX_CMDLINE - 1);
	if (d->ndisks > VMDEF_MAX_DISKS)
		return tv_errf(err, "disks: expected at most %d", VMDEF_MAX_DISKS);
	for (size_t i = 0; i < d->ndisks; i++)
		if (d->disks[i].file == NULL || d->disks[i].file[0] == '\0')
			return tv_errf(err, "disks[%zu]: expected a file name", i);
	if (d->nnets > VMDEF_MAX_NETS)
		return tv_errf(err, "net: expected at most %d interfaces", VMDEF_MAX_NETS);
	for (size_t i = 0; i < d->nnets; i++) {
		const struct vmdef_net *n = &d->nets[i];

		if (n->mac && !vmdef_mac_valid(n->mac))
			return tv_errf(err, "net[%zu].mac: expected a unicast MAC address", i);
		if (n->mode == NET_MODE_LAB && (n->name == NULL || !vmdef_lab_name_valid(n->name)))
			return tv_errf(err, "net[%zu].name: expected a lab network name", i);
		if (n->mode == NET_MODE_TAP && n->ifname == NULL)
			return tv_errf(err, "net[%zu].ifname: mode \"tap\" needs an interface", i);
		for (size_t j = 0; j < n->nforwards; j++)
			if (net_forward_parse(n->forwards[j], &(struct net_forward){0}, err) < 0)
				return tv_err_prefix(err, "net[%zu].forward: ", i);
	}
	if (d->ssh_user && !ssh_user_valid(d->ssh_user))
		return tv_errf(err, "ssh_user: expected a user name, not \"%s\"", d->ssh_user);
	return 0;
}

static void add_string(config_setting_t *parent, const char *key, const char *v)
{
	if (v != NULL)
		config_setting_set_string(config_setting_add(parent, key, CONFIG_TYPE_STRING), v);
}

static void build_config(const struct vmdef *d, config_t *cfg)
{
	config_setting_t *root = config_root_setting(cfg), *list;
	char mem[32];

	add_string(root, "name", d->name);
	add_string(root, "description", d->description);
	config_setting_set_int(config_setting_add(root, "cpus", CONFIG_TYPE_INT), (int)d->cpus);
	format_size(d->memory, mem, sizeof(mem));
	add_string(root, "memory", mem);
	add_string(root, "kernel", d->kernel);
	add_string(root, "initrd", d->initrd);
	add_string(root, "cmdline", d->cmdline);
	list = config_setting_add(root, "disks", CONFIG_TYPE_LIST);
	for (size_t i = 0; i < d->ndisks; i++) {
		config_setting_t *g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);
		add_string(g, "file", d->disks[i].file);
		add_string(g, "format", disk_format_name(d->disks[i].format));
		config_setting_set_bool(config_setting_add(g, "readonly", CONFIG_TYPE_BOOL),
					d->disks[i].readonly);
		add_string(g, "aio", disk_aio_name(d->disks[i].aio));
		add_string(g, "serial", d->disks[i].serial);
		if (d->disks[i].on_error != VM_ON_ERROR_PAUSE)
			add_string(g, "on_error", disk_on_error_name(d->disks[i].on_error));
	}
	if (d->nnets > 0) {
		list = config_setting_add(root, "net", CONFIG_TYPE_LIST);
		for (size_t i = 0; i < d->nnets; i++) {
			const struct vmdef_net *n = &d->nets[i];
			config_setting_t *g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);
			add_string(g, "mode", net_mode_name(n->mode));
			add_string(g, "mac", n->mac);
			add_string(g, "name", n->name);
			add_string(g, "ifname", n->ifname);
			add_string(g, "bridge", n->bridge);
			if (n->nforwards > 0) {
				config_setting_t *a =
					config_setting_add(g, "forward", CONFIG_TYPE_LIST);
				for (size_t j = 0; j < n->nforwards; j++)
					config_setting_set_string(
						config_setting_add(a, NULL, CONFIG_TYPE_STRING),
						n->forwards[j]);
			}
		}
	}
	config_setting_set_bool(config_setting_add(root, "autostart", CONFIG_TYPE_BOOL),
				d->autostart);
	add_string(root, "ssh_user", d->ssh_user);
	if (d->debug_exit) /* test machines only: left out when off */
		config_setting_set_bool(config_setting_add(root, "debug_exit", CONFIG_TYPE_BOOL),
					true);
	if (d->sandbox_off) /* on unless said otherwise: left out when on */
		config_setting_set_bool(config_setting_add(root, "sandbox", CONFIG_TYPE_BOOL),
					false);
}

int vmdef_save(const struct vmdef *d, const char *file, struct tv_err *err)
{
	char *tmp = xasprintf("%s.tmp.%ld", file, (long)getpid());
	config_t cfg;
	FILE *f;
	int rc = -1;

	if (vmdef_validate(d, err) < 0)
		goto out_free;
	config_init(&cfg);
	build_config(d, &cfg);
	f = fopen(tmp, "w");
	if (f == NULL) {
		tv_errno(err, "%s: cannot write", file);
		goto out;
	}
	fprintf(f, "# termvisor VM definition; see termvisor.conf(5).\n"
		   "# Relative paths are inside this VM's data directory.\n\n");
	config_write(&cfg, f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		tv_errno(err, "%s: cannot write", file);
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, file) != 0) {
		tv_errno(err, "%s: cannot write", file);
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	config_destroy(&cfg);
out_free:
	free(tmp);
	return rc;
}

char *vmdef_path(const struct vmdef *d, const char *rel)
{
	return paths_resolve(d->datadir ? d->datadir : ".", rel);
}

const char *disk_format_name(enum disk_format f)
{
	return f == DISK_FORMAT_RAW ? "raw" : "qcow2";
}

int disk_format_parse(const char *s, enum disk_format *out)
{
	if (strcmp(s, "qcow2") == 0)
		*out = DISK_FORMAT_QCOW2;
	else if (strcmp(s, "raw") == 0)
		*out = DISK_FORMAT_RAW;
	else
		return -1;
	return 0;
}

int disk_format_from_name(const char *file, enum disk_format *out)
{
	const char *dot = strrchr(file, '.');

	if (dot == NULL || strchr(dot, '/') != NULL)
		return -1;
	if (strcmp(dot, ".qcow2") == 0)
		*out = DISK_FORMAT_QCOW2;
	else if (strcmp(dot, ".img") == 0 || strcmp(dot, ".raw") == 0 || strcmp(dot, ".iso") == 0)
		*out = DISK_FORMAT_RAW;
	else
		return -1;
	return 0;
}

const char *disk_aio_name(enum vm_disk_aio a)
{
	return a == VM_AIO_THREADS ? "threads" : a == VM_AIO_IO_URING ? "io_uring" : NULL;
}

int disk_aio_parse(const char *s, enum vm_disk_aio *out)
{
	if (strcmp(s, "threads") == 0)
		*out = VM_AIO_THREADS;
	else if (strcmp(s, "io_uring") == 0)
		*out = VM_AIO_IO_URING;
	else
		return -1;
	return 0;
}

const char *disk_on_error_name(enum vm_disk_on_error e)
{
	return e == VM_ON_ERROR_REPORT ? "report" : "pause";
}

int disk_on_error_parse(const char *s, enum vm_disk_on_error *out)
{
	if (strcmp(s, "pause") == 0)
		*out = VM_ON_ERROR_PAUSE;
	else if (strcmp(s, "report") == 0)
		*out = VM_ON_ERROR_REPORT;
	else
		return -1;
	return 0;
}

bool vmdef_mac_valid(const char *mac)
{
	unsigned first;

	if (strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (mac[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)mac[i])) {
			return false;
		}
	}
	if (sscanf(mac, "%2x", &first) != 1)
		return false;
	return (first & 1) == 0; /* multicast addresses cannot name one NIC */
}

bool vmdef_lab_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && strchr("-_.", name[i]) == NULL)
			return false;
	return true;
}

void vmdef_add_default_net(struct vmdef *d)
{
	struct vm_nic nic = {.mode = NET_MODE_USER};

	net_mac_generate(nic.mac);
	vmdef_add_net(d, &nic);
}

void vmdef_add_net(struct vmdef *d, const struct vm_nic *nic)
{
	struct vmdef_net *n;
	char text[96];

	d->nets = xreallocarray(d->nets, d->nnets + 1, sizeof(*d->nets));
	n = &d->nets[d->nnets++];
	memset(n, 0, sizeof(*n));
	n->mode = nic->mode;
	net_mac_format(nic->mac, text, sizeof(text));
	n->mac = xstrdup(text);
	if (nic->nforwards > 0)
		n->forwards = xcalloc(nic->nforwards, sizeof(*n->forwards));
	for (unsigned i = 0; i < nic->nforwards && i < NET_FORWARDS_MAX; i++) {
		net_forward_format(&nic->forwards[i], text, sizeof(text));
		n->forwards[n->nforwards++] = xstrdup(text);
	}
	if (nic->lab_name[0])
		n->name = xstrdup(nic->lab_name);
	if (nic->ifname[0])
		n->ifname = xstrdup(nic->ifname);
	if (nic->bridge[0])
		n->bridge = xstrdup(nic->bridge);
}

int vmdef_nic(const struct vmdef *d, size_t i, struct vm_nic *nic, struct tv_err *err)
{
	const struct vmdef_net *n = &d->nets[i];

	memset(nic, 0, sizeof(*nic));
	nic->mode = n->mode;
	if (n->mac != NULL) {
		if (net_mac_parse(n->mac, nic->mac, err) < 0)
			return tv_err_prefix(err, "net[%zu].mac: ", i);
	} else {
		/* Stable across starts: from the VM's name and the NIC's place. */
		uint8_t h[SHA256_DIGEST_LEN];
		char *seed = xasprintf("%s/%zu", d->name, i);
		struct sha256 sh;

		sha256_init(&sh);
		sha256_update(&sh, seed, strlen(seed));
		sha256_final(&sh, h);
		free(seed);
		nic->mac[0] = 0x52;
		nic->mac[1] = 0x54;
		nic->mac[2] = 0x00;
		memcpy(nic->mac + 3, h, 3);
	}
	for (size_t j = 0; j < n->nforwards && j < NET_FORWARDS_MAX; j++) {
		if (net_forward_parse(n->forwards[j], &nic->forwards[j], err) < 0)
			return tv_err_prefix(err, "net[%zu].forward: ", i);
		nic->nforwards++;
	}
	if (n->name != NULL)
		snprintf(nic->lab_name, sizeof(nic->lab_name), "%s", n->name);
	if (n->ifname != NULL)
		snprintf(nic->ifname, sizeof(nic->ifname), "%s", n->ifname);
	if (n->bridge != NULL)
		snprintf(nic->bridge, sizeof(nic->bridge), "%s", n->bridge);
	return 0;
}
