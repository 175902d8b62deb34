#include <stdio.h>
#include <string.h>

#include "src/cli/cmd.h"
#include "src/vmm/verbs.h"

static void help_one(const struct cmd_entry *e)
{
	cmd_print_usage(e, stdout);
	printf("\n%s\n", e->summary);
	if (e->alias)
		printf("Alias: %s\n", e->alias);
	if (e->options)
		printf("\n%s", e->options);
}

static void help_all(void)
{
	printf("usage: termvisor [COMMAND [ARGS...]]\n\n"
	       "With no command, termvisor opens its terminal interface.\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < cmd_count(); i++)
		printf("  %-10s %s\n", cmd_at(i)->name, cmd_at(i)->summary);
	printf("\nRun 'termvisor help COMMAND' for a command's options; see termvisor(1).\n"
	       "\nA running VM's control socket takes these verbs (termvisor-protocol(7)):\n");
	int width = 10;
	for (const struct verb *v = vmm_verbs; v->type != 0; v++)
		if ((int)strlen(v->name) > width)
			width = (int)strlen(v->name);
	for (const struct verb *v = vmm_verbs; v->type != 0; v++)
		printf("  %-*s %s\n", width, v->name, v->help);
}

static int cmd_help_exec(const struct cmd_entry *self, int argc, char **argv)
{
	const struct cmd_entry *e;

	if (argc > 2)
		return cmd_usage_error(self, "too many arguments");
	if (argc < 2) {
		help_all();
		return TV_EXIT_OK;
	}
	e = cmd_find(argv[1]);
	if (e == NULL) {
		fprintf(stderr, "termvisor help: unknown command '%s'\n", argv[1]);
		return TV_EXIT_USAGE;
	}
	help_one(e);
	return TV_EXIT_OK;
}

const struct cmd_entry cmd_help_entry = {
	.name = "help",
	.usage = "[COMMAND]",
	.summary = "Show the commands, or one command's usage and options.",
	.exec = cmd_help_exec,
};
