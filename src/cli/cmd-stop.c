#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/core/client.h"
#include "src/cli/cmd.h"
#include "src/vmm/vmm.h"
#include "common/util.h"

/* How long past the server's own deadline we wait to see the VM end. */
#define STOP_GRACE_MS 10000

static int stop_vm(const struct tv_paths *p, const char *name, bool force, uint32_t timeout_ms,
		   struct tv_err *err)
{
	struct tv_client *c = client_connect(p, name, err);
	int rc;

	if (c == NULL)
		return -1;
	rc = force ? client_request(c, PROTO_FORCE_OFF, NULL, 0, NULL, NULL, err)
		   : client_stop(c, timeout_ms, err);
	if (rc == 0)
		rc = client_wait_exit(c, (force ? 0 : (int)timeout_ms) + STOP_GRACE_MS, err);
	client_close(c);
	return rc;
}

static int cmd_stop_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 't'},
		{0},
	};
	struct tv_paths paths = {0};
	struct tv_err err;
	uint32_t timeout_ms = VMM_STOP_TIMEOUT_MS;
	bool force = false;
	int ch, rc = TV_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "ft:", opts, NULL)) != -1) {
		char *end;
		double s;
		switch (ch) {
		case 'f':
			force = true;
			break;
		case 't':
			s = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(s > 0) || s > 86400)
				return cmd_usage_error(self,
						       "--timeout: expected seconds (0 < S <= 86400), "
						       "not '%s'",
						       optarg);
			timeout_ms = (uint32_t)(s * 1000);
			if (timeout_ms == 0)
				timeout_ms = 1;
			break;
		default:
			return cmd_usage_error(self, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0 ||
	    stop_vm(&paths, argv[optind], force, timeout_ms, &err) < 0) {
		fprintf(stderr, "termvisor stop: %s\n", err.msg);
		rc = TV_EXIT_ERROR;
	} else {
		printf("stopped VM %s\n", argv[optind]);
	}
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_stop_entry = {
	.name = "stop",
	.alias = NULL,
	.usage = "NAME [--force] [--timeout S]",
	.summary = "Stop a VM: press its power button, force it off if it does not stop in time.",
	.options = "  --force       power off at once, as pulling the plug (disks stay consistent)\n"
		   "  --timeout S   seconds the guest gets to shut down before it is forced off\n"
		   "                (default 30)\n"
		   "Waits until the VM has ended.\n",
	.exec = cmd_stop_exec,
};
