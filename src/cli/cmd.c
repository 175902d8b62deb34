#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "src/cli/cmd.h"

extern const struct cmd_entry cmd_help_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_create_entry;
extern const struct cmd_entry cmd_delete_entry;
extern const struct cmd_entry cmd_templates_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_img_entry;
extern const struct cmd_entry cmd_start_entry, cmd_stop_entry, cmd_pause_entry, cmd_resume_entry,
	cmd_status_entry, cmd_console_entry, cmd_autostart_entry;

const struct cmd_entry *const cmd_table[] = {
	&cmd_list_entry,
	&cmd_create_entry,
	&cmd_delete_entry,
	&cmd_templates_entry,
	&cmd_run_entry,
	&cmd_start_entry,
	&cmd_stop_entry,
	&cmd_pause_entry,
	&cmd_resume_entry,
	&cmd_status_entry,
	&cmd_console_entry,
	&cmd_autostart_entry,
	&cmd_img_entry,
	&cmd_help_entry,
	NULL,
};

const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		const struct cmd_entry *e = cmd_table[i];
		if (strcmp(e->name, name) == 0 || (e->alias && strcmp(e->alias, name) == 0))
			return e;
	}
	return NULL;
}

void cmd_print_usage(const struct cmd_entry *e, FILE *f)
{
	fprintf(f, "usage: termvisor %s%s%s\n", e->name, *e->usage ? " " : "", e->usage);
}

int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "termvisor %s: ", e->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cmd_print_usage(e, stderr);
	return TV_EXIT_USAGE;
}

int cmd_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}
