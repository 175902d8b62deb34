#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "src/cli/cmd.h"
#include "ui/ui.h"

static void print_version(void)
{
	printf("termvisor %s\n", PACKAGE_VERSION);
}

int main(int argc, char **argv)
{
	const struct cmd_entry *e;

	/* `run` hands over to termvisor-engine at once and prints only ASCII:
	 * loading the locale there would only delay the guest's start. */
	if (argc < 2 || strcmp(argv[1], "run") != 0)
		setlocale(LC_ALL, "");
	if (argc < 2)
		return ui_main();
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		print_version();
		return TV_EXIT_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		char *help_argv[] = {"help", NULL};
		return cmd_find("help")->exec(cmd_find("help"), 1, help_argv);
	}
	e = cmd_find(argv[1]);
	if (e == NULL) {
		fprintf(stderr, "termvisor: unknown command '%s'; 'termvisor help' lists them\n",
			argv[1]);
		return TV_EXIT_USAGE;
	}
	if (cmd_wants_help(argc - 1, argv + 1) && strcmp(e->name, "run") != 0) {
		char *help_argv[] = {"help", (char *)e->name, NULL};
		return cmd_find("help")->exec(cmd_find("help"), 2, help_argv);
	}
	return e->exec(e, argc - 1, argv + 1);
}
