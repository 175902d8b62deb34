#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/cli/cmd.h"
#include "src/lab/lab.h"

static int cmd_lab_switch_exec(const struct cmd_entry *self, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"linger", required_argument, NULL, 'l'},
	    {0},
	};
	struct tv_paths paths = {0};
	struct lab_stats st = {0};
	struct tv_err err;
	unsigned long linger = LAB_LINGER_S;
	char path[108];
	int ch, rc = TV_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'l':
			linger = strtoul(optarg, &end, 10);
			if (end == optarg || *end != '\0' || optarg[0] == '-' || linger > 86400)
				return cmd_usage_error(self,
						       "--linger: expected seconds (0 to 86400), "
						       "not '%s'",
						       optarg);
			break;
		default:
			return cmd_usage_error(self, "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(self, "expected one lab network name");
	if (paths_init(&paths, &err) < 0 ||
	    lab_socket_path(&paths, argv[optind], path, sizeof(path), &err) < 0) {
		fprintf(stderr, "termvisor lab-switch: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	printf("lab network %s: switch on %s\n", argv[optind], path);
	fflush(stdout);
	if (lab_switch_run(&paths, argv[optind], (unsigned)linger, &st, &err) < 0) {
		fprintf(stderr, "termvisor lab-switch: %s\n", err.msg);
		rc = TV_EXIT_ERROR;
	} else {
		printf("lab network %s: %" PRIu64 " frames in, %" PRIu64 " out (%" PRIu64
		       " flooded), %" PRIu64 " dropped (%" PRIu64 " short, %" PRIu64
		       " oversized, %" PRIu64 " to a full member); %" PRIu64 " members joined\n",
		       argv[optind], st.frames_in, st.frames_out, st.flooded,
		       st.dropped_runt + st.dropped_oversized + st.dropped_busy, st.dropped_runt,
		       st.dropped_oversized, st.dropped_busy, st.members_joined);
	}
	paths_free(&paths);
	return rc;
}

const struct cmd_entry cmd_lab_switch_entry = {
    .name = "lab-switch",
    .alias = NULL,
    .usage = "NAME [--linger S]",
    .summary = "Run the switch of private lab network NAME in the foreground.",
    .options = "  --linger S    end S seconds after the last member left (default 30;\n"
	       "                0: run until interrupted)\n"
	       "VMs start the switch of their lab networks themselves; run it by hand to\n"
	       "watch it, or to let QEMU guests join first (termvisor-net(7)).\n",
    .exec = cmd_lab_switch_exec,
};
