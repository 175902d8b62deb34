#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cmd.h"
#include "src/paths.h"
#include "src/vmstate.h"
#include "src/vmutil.h"
#include "vm/util.h"

static int delete_vm(const struct tv_paths *p, const char *name, bool yes, struct tv_err *err)
{
	char *conf = paths_vm_conf(p, name), *data = paths_vm_data(p, name);
	int rc = -1;

	if (access(conf, F_OK) < 0 && access(data, F_OK) < 0) {
		tv_errf(err, "no VM named '%s' (looked for %s)", name, conf);
		goto out;
	}
	if (vm_is_live(p, name)) {
		tv_errf(err, "VM '%s' is running; stop it first (termvisor stop %s)", name, name);
		goto out;
	}
	if (!yes) {
		char *q = xasprintf("Delete VM '%s' with its disks and snapshots in %s?", name, data);
		bool ok = ask_yes_no(q);
		free(q);
		if (!ok) {
			if (isatty(0))
				tv_errf(err, "not deleted");
			else
				tv_errf(err, "not deleted: no terminal to ask on; use --yes");
			goto out;
		}
	}
	/* The definition first: a VM whose data removal fails half-way is no longer
	 * listed as whole, and the data left can be removed by hand. */
	if (unlink(conf) < 0 && errno != ENOENT) {
		tv_errno(err, "cannot remove %s", conf);
		goto out;
	}
	if (remove_tree(data) < 0) {
		tv_errno(err, "cannot remove %s", data);
		goto out;
	}
	rc = 0;
out:
	free(conf);
	free(data);
	return rc;
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
