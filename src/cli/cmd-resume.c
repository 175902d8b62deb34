#include <stdio.h>

#include "src/core/client.h"
#include "src/cli/cmd.h"

static int cmd_resume_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct tv_err err;

	if (argc != 2 || argv[1][0] == '-')
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[1], &err) < 0 || paths_init(&paths, &err) < 0 ||
	    client_oneshot(&paths, argv[1], client_resume, &err) < 0) {
		fprintf(stderr, "termvisor resume: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	printf("resumed VM %s\n", argv[1]);
	paths_free(&paths);
	return TV_EXIT_OK;
}

const struct cmd_entry cmd_resume_entry = {
	.name = "resume",
	.alias = NULL,
	.usage = "NAME",
	.summary = "Resume a paused VM.",
	.options = NULL,
	.exec = cmd_resume_exec,
};
