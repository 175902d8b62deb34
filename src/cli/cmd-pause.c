#include <stdio.h>

#include "src/core/client.h"
#include "src/cli/cmd.h"

static int cmd_pause_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct tv_err err;

	if (argc != 2 || argv[1][0] == '-')
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[1], &err) < 0 || paths_init(&paths, &err) < 0 ||
	    client_oneshot(&paths, argv[1], client_pause, &err) < 0) {
		fprintf(stderr, "termvisor pause: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	printf("paused VM %s\n", argv[1]);
	paths_free(&paths);
	return TV_EXIT_OK;
}

const struct cmd_entry cmd_pause_entry = {
	.name = "pause",
	.alias = NULL,
	.usage = "NAME",
	.summary = "Pause a running VM's vCPUs (its memory and console stay).",
	.options = NULL,
	.exec = cmd_pause_exec,
};
