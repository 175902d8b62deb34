#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "src/cli/cmd.h"
#include "src/cli/attach.h"
#include "src/core/protocol.h"
#include "src/core/settings.h"

static int cmd_console_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {{"read-only", no_argument, NULL, 'r'}, {0}};
	struct tv_settings set;
	struct tv_paths paths = {0};
	struct tv_err err;
	bool readonly = false;
	uint8_t console = PROTO_CONSOLE_PRIMARY;
	int ch, rc = TV_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "r", opts, NULL)) != -1) {
		if (ch == 'r')
			readonly = true;
		else
			return cmd_usage_error(self, "unknown option");
	}
	if (optind + 2 == argc) {
		if (strcmp(argv[optind + 1], "ttyS0") == 0)
			console = PROTO_CONSOLE_SERIAL;
		else if (strcmp(argv[optind + 1], "hvc0") == 0)
			console = PROTO_CONSOLE_HVC;
		else
			return cmd_usage_error(self, "console '%s': expected ttyS0 or hvc0",
					       argv[optind + 1]);
	} else if (optind + 1 != argc) {
		return cmd_usage_error(self, "expected one VM name");
	}
	if (vm_name_check(argv[optind], &err) < 0 || paths_init(&paths, &err) < 0 ||
	    settings_load(&paths, &set, &err) < 0 ||
	    terminal_attach(&paths, argv[optind], readonly, console, set.console_escape, &err) < 0) {
		fprintf(stderr, "termvisor console: %s\n", err.msg);
		rc = TV_EXIT_ERROR;
	}
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_console_entry = {
	.name = "console",
	.alias = NULL,
	.usage = "NAME [ttyS0|hvc0] [--read-only]",
	.summary = "Attach this terminal to a running VM's console (^] detaches).",
	.options = "  --read-only   watch only; keys are not sent to the guest\n"
		   "A VM has two consoles: ttyS0 (the serial port) and hvc0 (virtio). Without\n"
		   "one named, the kernel's (its command line's last console=) is shown.\n"
		   "The current screen and its history are shown first. The detach key is\n"
		   "console_escape in termvisor.conf(5). Several terminals may attach at once.\n",
	.exec = cmd_console_exec,
};
