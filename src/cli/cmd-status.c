#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "src/core/client.h"
#include "src/cli/netinfo.h"
#include "src/cli/cmd.h"
#include "src/core/json.h"
#include "src/core/runtime.h"
#include "common/util.h"

#define LOG_TAIL_LINES 10

static void print_text(const char *name, const struct vm_status *vs, const struct proto_status *ps,
		       const char *tail, const char *why, const char *net)
{
	char mem[32];

	if (ps == NULL) {
		printf("name:     %s\nstate:    %s%s%s\n", name, vm_state_name(vs->state),
		       why ? ": " : "", why ? why : "");
		netinfo_text(stdout, net);
		if (tail)
			printf("log (last lines):\n%s\n", tail);
		return;
	}
	format_size(ps->memory, mem, sizeof(mem));
	printf("name:     %s\n", name);
	printf("state:    %s%s%s\n", proto_state_name(ps->state), ps->reason[0] ? ": " : "",
	       ps->reason);
	printf("pid:      %" PRIu32 "\n", ps->pid);
	printf("uptime:   %" PRIu64 " s\n", ps->uptime_ms / 1000);
	printf("cpus:     %" PRIu32 "\n", ps->cpus);
	printf("memory:   %s\n", mem);
	printf("console:  %ux%u, %u attached\n", ps->cols, ps->rows, ps->clients);
	netinfo_text(stdout, net);
}

static void print_json(const char *name, const struct vm_status *vs,
		       const struct proto_status *ps, const char *tail, const char *why,
		       const char *net)
{
	printf("{\"version\": 1, \"name\": ");
	json_string(stdout, name);
	printf(", \"nics\": ");
	netinfo_json(stdout, net);
	if (ps == NULL) {
		printf(", \"state\": \"%s\", \"reason\": ", vm_state_name(vs->state));
		json_string(stdout, why);
		printf(", \"pid\": null, \"uptime\": null, \"log_tail\": ");
		json_string(stdout, tail);
		printf("}\n");
		return;
	}
	printf(", \"state\": \"%s\", \"reason\": ", proto_state_name(ps->state));
	json_string(stdout, ps->reason[0] ? ps->reason : NULL);
	printf(", \"pid\": %" PRIu32 ", \"uptime\": %" PRIu64
	       ", \"cpus\": %" PRIu32 ", \"memory\": %" PRIu64
	       ", \"console\": {\"rows\": %u, \"cols\": %u, \"attached\": %u}}\n",
	       ps->pid, ps->uptime_ms / 1000, ps->cpus, ps->memory,
	       ps->rows, ps->cols, ps->clients);
}

static int cmd_status_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	struct tv_paths paths = {0};
	struct proto_status ps;
	struct vm_status vs;
	struct tv_err err;
	char *conf, *data, *tail = NULL, *why = NULL, *net;
	struct vmdef def;
	bool have_def;
	bool json = false, live;
	int ch, rc = TV_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor status: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	conf = paths_vm_conf(&paths, argv[optind]);
	vm_status_probe(&paths, argv[optind], &vs);
	live = vs.state == VM_RUNNING || vs.state == VM_PAUSED;
	if (!live && access(conf, F_OK) < 0) {
		fprintf(stderr, "termvisor status: no VM named '%s' (looked for %s)\n",
			argv[optind], conf);
		rc = TV_EXIT_ERROR;
		goto out;
	}
	if (live && client_oneshot_status(&paths, argv[optind], &ps, &err) < 0) {
		fprintf(stderr, "termvisor status: %s\n", err.msg);
		rc = TV_EXIT_ERROR;
		goto out;
	}
	/* A crash's reason is its log's last line (the sandbox's report, the
	 * engine's account), as the interface shows it. */
	if (vs.state == VM_CRASHED) {
		tail = vm_log_tail(&paths, argv[optind], LOG_TAIL_LINES);
		why = vm_log_tail(&paths, argv[optind], 1);
	}
	data = paths_vm_data(&paths, argv[optind]);
	have_def = vmdef_load(conf, data, &def, NULL, NULL, &err) == 0;
	free(data);
	net = netinfo_get(&paths, argv[optind], live, have_def ? &def : NULL);
	if (have_def)
		vmdef_free(&def);
	if (json)
		print_json(argv[optind], &vs, live ? &ps : NULL, tail, why, net);
	else
		print_text(argv[optind], &vs, live ? &ps : NULL, tail, why, net);
	free(net);
out:
	free(tail);
	free(why);
	free(conf);
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.alias = NULL,
	.usage = "NAME [--json]",
	.summary = "Show a VM's state; a running VM answers on its control socket.",
	.options = "  --json   one JSON object: name, nics (mode, mac, address, forwards), state,\n"
		   "           reason (why a VM paused itself, or null), pid, uptime, cpus, memory,\n"
		   "           console {rows, cols, attached}; log_tail for a stopped VM\n",
	.exec = cmd_status_exec,
};
