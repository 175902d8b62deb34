/* The subcommand table: one file per subcommand, each exporting one entry. The
 * table is the documentation: `termvisor help`, --help and the man page follow it. */
#ifndef TV_CMD_H
#define TV_CMD_H

struct cmd_entry {
	const char *name;
	const char *alias;   /* NULL when none */
	const char *usage;   /* arguments after the command name */
	const char *summary; /* one line for `termvisor help` */
	const char *options; /* option lines for `termvisor help CMD`, or NULL */
	int (*exec)(const struct cmd_entry *self, int argc, char **argv);
	/* A command that only sends one verb to a live VM: made from the verb
	 * table (src/vmm/verbs.h), not written here. */
	const struct verb *verb;
};

/* Exit statuses shared by every subcommand. */
enum {
	TV_EXIT_OK = 0,
	TV_EXIT_ERROR = 1, /* the request failed; the message says why */
	TV_EXIT_USAGE = 2, /* bad command line */
};

struct verb;

/* Every command: the table's, then one for each verb that names a command. */
size_t cmd_count(void);
const struct cmd_entry *cmd_at(size_t i);

const struct cmd_entry *cmd_find(const char *name);
void cmd_print_usage(const struct cmd_entry *e, FILE *f);
/* Prints "usage: ..." to stderr and returns TV_EXIT_USAGE. */
int cmd_usage_error(const struct cmd_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help before a "--". */
int cmd_wants_help(int argc, char **argv);

#endif
