#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/cli/cmd.h"
#include "src/cli/attach.h"
#include "src/core/protocol.h"
#include "src/core/settings.h"
#include "src/vmm/vmm.h"

static int cmd_start_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {{"attach", no_argument, NULL, 'a'},
					     {"no-sandbox", no_argument, NULL, 'S'}, {0}};
	struct tv_settings set;
	struct tv_paths paths = {0};
	struct tv_err err;
	bool attach = false, no_sandbox = false;
	pid_t pid = 0;
	int ch, rc = TV_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
		if (ch == 'a')
			attach = true;
		else if (ch == 'S')
			no_sandbox = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, "expected one VM name");
	if (paths_init(&paths, &err) < 0 || settings_load(&paths, &set, &err) < 0 ||
	    vmm_start_name_opts(&paths, argv[optind], no_sandbox, &pid, &err) < 0) {
		fprintf(stderr, "termvisor start: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	if (attach) {
		if (terminal_attach(&paths, argv[optind], false, PROTO_CONSOLE_PRIMARY, set.console_escape,
				    &err) < 0) {
			fprintf(stderr, "termvisor start: %s\n", err.msg);
			rc = TV_EXIT_ERROR;
		}
	} else {
		printf("started VM %s (pid %ld)\n", argv[optind], (long)pid);
	}
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_start_entry = {
	.name = "start",
	.alias = NULL,
	.usage = "NAME [--attach] [--no-sandbox]",
	.summary = "Start a VM in the background; it keeps running when the terminal goes.",
	.options = "  --attach       attach this terminal to its console once it runs\n"
		   "  --no-sandbox   run the VM process without its sandbox (system call\n"
		   "                 filter, Landlock), for debugging; see termvisor(1)\n"
		   "Start-up errors (kernel, disks, /dev/kvm) are reported before the command\n"
		   "returns, with exit status 1; so is a VM that already runs.\n",
	.exec = cmd_start_exec,
};
