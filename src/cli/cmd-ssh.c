/* `termvisor ssh NAME [ARGS...]`: ssh into the VM through its user network's
 * forward to the guest's port 22, as the definition's ssh_user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/paths.h"
#include "src/core/vmdef.h"
#include "common/util.h"

/* The first tcp forward to guest port 22 of a user-mode NIC. */
static bool ssh_forward(const struct vmdef *d, struct net_forward *out)
{
	for (size_t i = 0; i < d->nnets; i++) {
		if (d->nets[i].mode != NET_MODE_USER)
			continue;
		for (size_t j = 0; j < d->nets[i].nforwards; j++)
			if (net_forward_parse(d->nets[i].forwards[j], out, NULL) == 0 &&
			    strcmp(out->proto, "tcp") == 0 && out->guest_port == 22)
				return true;
	}
	return false;
}

static int cmd_ssh_exec(const struct cmd_entry *self, int argc, char **argv)
{
	struct tv_paths paths = {0};
	struct net_forward f;
	struct tv_err err;
	struct vmdef d;
	char *conf, *data, port[8];
	const char *host;
	char **av;
	int n = 0;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(self, "expected a VM name");
	if (vm_name_check(argv[1], &err) < 0 || paths_init(&paths, &err) < 0) {
		fprintf(stderr, "termvisor ssh: %s\n", err.msg);
		paths_free(&paths);
		return TV_EXIT_ERROR;
	}
	conf = paths_vm_conf(&paths, argv[1]);
	data = paths_vm_data(&paths, argv[1]);
	paths_free(&paths);
	if (vmdef_load(conf, data, &d, NULL, NULL, &err) < 0) {
		fprintf(stderr, "termvisor ssh: %s\n", err.msg);
		free(conf);
		free(data);
		return TV_EXIT_ERROR;
	}
	free(data);
	if (!ssh_forward(&d, &f)) {
		fprintf(stderr,
			"termvisor ssh: VM %s has no forward to its port 22; add one to its user "
			"network in %s, like forward = ( \"tcp::2222:22\" );\n",
			argv[1], conf);
		free(conf);
		vmdef_free(&d);
		return TV_EXIT_ERROR;
	}
	free(conf);
	/* A forward listening on every address is reached on loopback. */
	host = f.host_addr[0] == '\0' || strcmp(f.host_addr, "0.0.0.0") == 0 ? "127.0.0.1"
									     : f.host_addr;
	snprintf(port, sizeof(port), "%u", f.host_port);
	av = xcalloc((size_t)argc + 8, sizeof(char *));
	av[n++] = "ssh";
	av[n++] = "-p";
	av[n++] = port;
	if (d.ssh_user != NULL) {
		av[n++] = "-l";
		av[n++] = d.ssh_user;
	}
	av[n++] = (char *)host;
	for (int i = 2; i < argc; i++)
		av[n++] = argv[i];
	fflush(NULL);
	execvp("ssh", av);
	fprintf(stderr, "termvisor ssh: cannot run ssh (the Debian package openssh-client): %m\n");
	free(av);
	vmdef_free(&d);
	return TV_EXIT_ERROR;
}

const struct cmd_entry cmd_ssh_entry = {
	.name = "ssh",
	.alias = NULL,
	.usage = "NAME [SSH-ARGS...]",
	.summary = "ssh into a VM through its forward to the guest's port 22.",
	.options = "Runs ssh -p HOSTPORT [-l ssh_user] ADDRESS [SSH-ARGS...] with the first\n"
		   "tcp forward to guest port 22 of the VM's user network (its definition's\n"
		   "net = ( { mode = \"user\"; forward = ( \"tcp::2222:22\" ); } );), as the\n"
		   "definition's ssh_user when it names one.\n",
	.exec = cmd_ssh_exec,
};
