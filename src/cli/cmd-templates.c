#include <inttypes.h>
#include <stdio.h>

#include "src/cli/cmd.h"
#include "src/core/paths.h"
#include "src/core/template.h"
#include "common/util.h"

static int cmd_templates_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct template *v;
	struct tv_paths paths;
	struct tv_err err;
	size_t n;

	if (argc > 1)
		return cmd_usage_error(self, "unexpected argument '%s'", argv[1]);
	if (paths_init(&paths, &err) < 0 || template_list(&paths, &v, &n, &err) < 0) {
		fprintf(stderr, "termvisor templates: %s\n", err.msg);
		return TV_EXIT_ERROR;
	}
	printf("%-16s %4s %7s %7s  %s\n", "NAME", "CPUS", "MEMORY", "DISK", "DESCRIPTION");
	for (size_t i = 0; i < n; i++) {
		char mem[32], disk[32] = "-";
		format_size(v[i].memory, mem, sizeof(mem));
		if (v[i].disk_size)
			format_size(v[i].disk_size, disk, sizeof(disk));
		printf("%-16s %4u %7s %7s  %s\n", v[i].name, v[i].cpus, mem, disk,
		       v[i].description ? v[i].description : "");
	}
	template_list_free(v, n);
	paths_free(&paths);
	return TV_EXIT_OK;
}

const struct cmd_entry cmd_templates_entry = {
	.name = "templates",
	.usage = "",
	.summary = "List the templates that 'termvisor create --template' can start from.",
	.exec = cmd_templates_exec,
};
