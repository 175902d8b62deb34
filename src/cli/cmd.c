#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "src/cli/cmd.h"
#include "src/core/client.h"
#include "src/vmm/verbs.h"

extern const struct cmd_entry cmd_help_entry;
extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_create_entry;
extern const struct cmd_entry cmd_delete_entry;
extern const struct cmd_entry cmd_templates_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_img_entry;
extern const struct cmd_entry cmd_snapshot_entry, cmd_clone_entry;
extern const struct cmd_entry cmd_lab_switch_entry;
extern const struct cmd_entry cmd_start_entry, cmd_stop_entry, cmd_status_entry,
	cmd_console_entry, cmd_autostart_entry, cmd_ssh_entry;

static const struct cmd_entry *const cmd_table[] = {
	&cmd_list_entry,
	&cmd_create_entry,
	&cmd_delete_entry,
	&cmd_templates_entry,
	&cmd_run_entry,
	&cmd_start_entry,
	&cmd_stop_entry,
	&cmd_status_entry,
	&cmd_console_entry,
	&cmd_ssh_entry,
	&cmd_autostart_entry,
	&cmd_snapshot_entry,
	&cmd_clone_entry,
	&cmd_img_entry,
	&cmd_lab_switch_entry,
	&cmd_help_entry,
	NULL,
};

/* `termvisor pause NAME` and its kind: send the verb, say it is done. */
static int cmd_verb_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct tv_err err;

	if (argc != 2 || argv[1][0] == '-')
		return cmd_usage_error(self, "expected one VM name");
	if (vm_name_check(argv[1], &err) < 0 || paths_init(&paths, &err) < 0 ||
	    client_verb(&paths, argv[1], self->verb->type, NULL, 0, &err) < 0) {
		fprintf(stderr, "termvisor %s: %s\n", self->name, err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	printf("%s VM %s\n", self->verb->done, argv[1]);
	paths_free(&paths);
	return TV_EXIT_OK;
}

static struct cmd_entry verb_cmds[16];
static size_t nverb_cmds;

static void verb_cmds_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (const struct verb *v = vmm_verbs; v->type != 0; v++) {
		if (v->command == NULL || nverb_cmds == ARRAY_SIZE(verb_cmds))
			continue;
		verb_cmds[nverb_cmds++] = (struct cmd_entry){
			.name = v->command,
			.usage = "NAME",
			.summary = v->help,
			.exec = cmd_verb_exec,
			.verb = v,
		};
	}
}

size_t cmd_count(void)
{
	verb_cmds_init();
	return ARRAY_SIZE(cmd_table) - 1 + nverb_cmds;
}

const struct cmd_entry *cmd_at(size_t i)
{
	verb_cmds_init();
	if (i < ARRAY_SIZE(cmd_table) - 1)
		return cmd_table[i];
	i -= ARRAY_SIZE(cmd_table) - 1;
	return i < nverb_cmds ? &verb_cmds[i] : NULL;
}

const struct cmd_entry *cmd_find(const char *name)
{
	for (size_t i = 0; i < cmd_count(); i++) {
		const struct cmd_entry *e = cmd_at(i);
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
