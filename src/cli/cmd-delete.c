#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/bases.h"
#include "src/core/paths.h"
#include "src/core/vmops.h"
#include "src/core/runtime.h"
#include "src/core/fsutil.h"
#include "src/core/snapstore.h"
#include "common/util.h"

/* "3 snapshots", or what is known when the tree's index cannot be read. */
static char *snapshots_text(const char *data)
{
	struct tv_err e;
	int n = snapstore_count(data, &e);

	if (n < 0)
		return xasprintf("its snapshots (their index is unreadable: %s)", e.msg);
	return xasprintf("%d snapshot%s", n, n == 1 ? "" : "s");
}

/* The linked-clone bases that the deleted VM was the last to use. The VM is
 * gone either way: a failure here is reported, not an error of the delete. */
static void remove_unused_bases(const struct tv_paths *p)
{
	struct tv_err e;
	char **gone;
	size_t n;

	if (bases_gc(p, &gone, &n, &e) < 0) {
		fprintf(stderr, "termvisor delete: linked-clone bases kept: %s\n", e.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		printf("removed the base %s/%s, which no VM uses any more\n", BASES_DIR, gone[i]);
	bases_names_free(gone, n);
}

static int delete_vm(const struct tv_paths *p, const char *name, bool yes, struct tv_err *err)
{
	char *data = paths_vm_data(p, name), *snaps = snapshots_text(data);
	int rc = 0;

	if (!yes && vm_exists(p, name) && !vm_is_live(p, name)) {
		char *q = xasprintf("Delete VM '%s' with its disks and %s in %s?", name, snaps, data);
		bool ok = ask_yes_no(q);
		free(q);
		if (!ok)
			rc = tv_errf(err, isatty(0) ? "not deleted"
						    : "not deleted: no terminal to ask on; use --yes");
	}
	if (rc == 0)
		rc = vm_delete(p, name, err);
	if (rc == 0) {
		printf("deleted VM '%s' and %s\n", name, snaps);
		remove_unused_bases(p);
	}
	free(snaps);
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
