#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/paths.h"
#include "src/core/vmops.h"
#include "src/core/runtime.h"
#include "src/core/fsutil.h"
#include "common/util.h"

static int delete_vm(const struct tv_paths *p, const char *name, bool yes, struct tv_err *err)
{
	if (!yes && vm_exists(p, name) && !vm_is_live(p, name)) {
		char *data = paths_vm_data(p, name);
		char *q = xasprintf("Delete VM '%s' with its disks and snapshots in %s?", name, data);
		bool ok = ask_yes_no(q);
		free(q);
		free(data);
		if (!ok)
			return tv_errf(err, isatty(0) ? "not deleted"
						     : "not deleted: no terminal to ask on; use --yes");
	}
	return vm_delete(p, name, err);
}

static int cmd_delete_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {0}};
	struct tv_paths paths;
	struct tv_err err;
	bool yes = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "y", opts, NULL)) != -1) {
		if (ch == 'y')
			yes = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor delete: %s\n", err.msg);
		return TV_EXIT_ERROR;
	}
	rc = delete_vm(&paths, argv[optind], yes, &err);
	if (rc < 0)
		fprintf(stderr, "termvisor delete: %s\n", err.msg);
	else
		printf("deleted VM '%s'\n", argv[optind]);
	paths_free(&paths);
	return rc < 0 ? TV_EXIT_ERROR : TV_EXIT_OK;
}

const struct cmd_entry cmd_delete_entry = {
	.name = "delete",
	.alias = "rm",
	.usage = "NAME [--yes]",
	.summary = "Delete a stopped VM: its definition, disks and snapshots.",
	.options = "  -y, --yes   do not ask for confirmation\n",
	.exec = cmd_delete_exec,
};
