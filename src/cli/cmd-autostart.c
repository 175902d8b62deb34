#include <stdio.h>

#include "src/core/catalog.h"
#include "src/cli/cmd.h"
#include "src/vmm/vmm.h"
#include "src/core/runtime.h"

static int cmd_autostart_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct catalog c;
	struct tv_err err;
	int rc = TV_EXIT_OK;

	if (argc != 1)
		return cmd_usage_error(self, "no arguments expected");
	if (paths_init(&paths, &err) < 0 || catalog_load(&paths, &c, &err) < 0) {
		fprintf(stderr, "termvisor autostart: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct catalog_entry *e = &c.v[i];
		pid_t pid;

		if (!e->ok) {
			/* A broken definition might have asked for autostart. */
			fprintf(stderr, "termvisor autostart: skipped: %s\n", e->error);
			rc = TV_EXIT_ERROR;
			continue;
		}
		if (!e->def.autostart)
			continue;
		if (vm_is_live(&paths, e->name)) {
			printf("VM %s already runs\n", e->name);
			continue;
		}
		if (vmm_start(&paths, &e->def, &pid, &err) < 0) {
			fprintf(stderr, "termvisor autostart: %s: %s\n", e->name, err.msg);
			rc = TV_EXIT_ERROR;
			continue;
		}
		printf("started VM %s (pid %ld)\n", e->name, (long)pid);
	}
	catalog_free(&c);
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_autostart_entry = {
	.name = "autostart",
	.alias = NULL,
	.usage = "",
	.summary = "Start every VM whose definition says autostart = true.",
	.options = "VMs that already run are left alone. Exit status 1 when one failed to\n"
		   "start or a definition is broken; the others are started all the same.\n"
		   "share/systemd/termvisor-autostart.service runs this at login or boot.\n",
	.exec = cmd_autostart_exec,
};
