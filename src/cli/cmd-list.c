#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/catalog.h"
#include "src/cli/cmd.h"
#include "src/core/json.h"
#include "src/cli/netinfo.h"
#include "src/core/vmdisk.h"
#include "src/core/runtime.h"
#include "common/util.h"

static void format_uptime(uint64_t s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

/* A crashed VM's last words, from its log, indented under its line. */
static void print_crash_tail(const struct tv_paths *p, const char *name)
{
	char *tail = vm_log_tail(p, name, 3);

	for (char *line = tail, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		printf("    | %s\n", line);
	}
	free(tail);
}

static void list_text(const struct tv_paths *p, const struct catalog *c)
{
	printf("%-20s %-8s %7s %7s %4s %7s %5s %9s\n", "NAME", "STATE", "PID", "UPTIME", "CPUS",
	       "MEMORY", "DISKS", "SNAPSHOTS");
	for (size_t i = 0; i < c->n; i++) {
		const struct catalog_entry *e = &c->v[i];
		char mem[32], pid[24] = "-", up[32] = "-", snaps[16] = "-";
		struct vm_status st;
		int nsnap;

		if (!e->ok) {
			printf("%-20s %-8s %7s %7s %4s %7s %5s %9s  %s\n", e->name, "broken", "-",
			       "-", "-", "-", "-", "-", e->error);
			continue;
		}
		vm_status_probe(p, e->name, &st);
		if (st.pid > 0) {
			snprintf(pid, sizeof(pid), "%ld", (long)st.pid);
			format_uptime(st.uptime_s, up, sizeof(up));
		}
		nsnap = vmdisk_snapshot_count(&e->def);
		if (nsnap >= 0)
			snprintf(snaps, sizeof(snaps), "%d", nsnap);
		format_size(e->def.memory, mem, sizeof(mem));
		printf("%-20s %-8s %7s %7s %4u %7s %5zu %9s\n", e->name, vm_state_name(st.state),
		       pid, up, e->def.cpus, mem, e->def.ndisks, snaps);
		if (st.state == VM_CRASHED)
			print_crash_tail(p, e->name);
		else if (st.state == VM_PAUSED && st.reason[0])
			printf("    | paused: %s\n", st.reason);
	}
}

static void list_json(const struct tv_paths *p, const struct catalog *c)
{
	printf("{\"version\": 1, \"vms\": [");
	for (size_t i = 0; i < c->n; i++) {
		const struct catalog_entry *e = &c->v[i];
		struct vm_status st;

		printf("%s\n  {\"name\": ", i ? "," : "");
		json_string(stdout, e->name);
		printf(", \"file\": ");
		json_string(stdout, e->file);
		if (!e->ok) {
			printf(", \"state\": \"broken\", \"error\": ");
			json_string(stdout, e->error);
			printf("}");
			continue;
		}
		vm_status_probe(p, e->name, &st);
		printf(", \"state\": \"%s\"", vm_state_name(st.state));
		if (st.state == VM_PAUSED) {
			printf(", \"reason\": ");
			json_string(stdout, st.reason[0] ? st.reason : NULL);
		}
		if (st.state == VM_CRASHED) {
			char *tail = vm_log_tail(p, e->name, 3);
			printf(", \"log_tail\": ");
			json_string(stdout, tail);
			free(tail);
		}
		if (st.pid > 0)
			printf(", \"pid\": %ld, \"uptime\": %" PRIu64, (long)st.pid, st.uptime_s);
		else
			printf(", \"pid\": null, \"uptime\": null");
		printf(", \"cpus\": %u, \"memory\": %" PRIu64 ", \"disks\": [", e->def.cpus,
		       e->def.memory);
		for (size_t j = 0; j < e->def.ndisks; j++) {
			char *path = vmdef_path(&e->def, e->def.disks[j].file);
			printf("%s{\"file\": ", j ? ", " : "");
			json_string(stdout, path);
			printf(", \"format\": \"%s\", \"readonly\": %s}",
			       disk_format_name(e->def.disks[j].format),
			       e->def.disks[j].readonly ? "true" : "false");
			free(path);
		}
		int nsnap = vmdisk_snapshot_count(&e->def);
		if (nsnap >= 0)
			printf("], \"snapshots\": %d", nsnap);
		else
			printf("], \"snapshots\": null");
		char *net = netinfo_get(p, e->name, st.state == VM_RUNNING || st.state == VM_PAUSED,
					&e->def);
		printf(", \"nics\": ");
		netinfo_json(stdout, net);
		free(net);
		printf(", \"autostart\": %s, \"description\": ", e->def.autostart ? "true" : "false");
		json_string(stdout, e->def.description);
		printf("}");
	}
	printf("%s]}\n", c->n ? "\n" : "");
}

static int cmd_list_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	struct tv_paths paths;
	struct catalog c;
	struct tv_err err;
	bool json = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind != argc)
		return cmd_usage_error(self, "unexpected argument '%s'", argv[optind]);
	if (paths_init(&paths, &err) < 0 || catalog_load(&paths, &c, &err) < 0) {
		fprintf(stderr, "termvisor list: %s\n", err.msg);
		return TV_EXIT_ERROR;
	}
	for (size_t i = 0; i < c.n; i++) {
		for (size_t j = 0; j < c.v[i].nwarnings; j++)
			fprintf(stderr, "termvisor: warning: %s\n", c.v[i].warnings[j]);
		if (!c.v[i].ok)
			fprintf(stderr, "termvisor: %s\n", c.v[i].error);
	}
	if (json)
		list_json(&paths, &c);
	else
		list_text(&paths, &c);
	int rc = c.nbroken ? TV_EXIT_ERROR : TV_EXIT_OK;
	catalog_free(&c);
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.alias = "ls",
	.usage = "[--json]",
	.summary = "List the defined VMs with their state, vCPUs, memory, disks and snapshots.",
	.options = "  --json   one JSON document (see termvisor(1), JSON OUTPUT)\n"
		   "Exit status 1 when a definition is broken; the others are still listed.\n",
	.exec = cmd_list_exec,
};
