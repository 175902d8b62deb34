/* termvisor-engine: the VM process. `termvisor run` and `start` replace a
 * process of theirs with this program; it links the engine and nothing of the
 * interface, so a running VM carries only what it uses (src/vmm/vmm.h). */
#include <stdio.h>
#include <string.h>

#include "src/lab/lab.h"
#include "src/vmm/vmm.h"

int main(int argc, char **argv)
{
	struct vmm_opts o;
	struct tv_err err;

	if (argc > 1 && strcmp(argv[1], "lab-switch") == 0) /* a VM's lab network */
		return lab_switch_spawned(argc, argv);
	if (vmm_args_parse(argc, argv, &o, &err) < 0) {
		fprintf(stderr, "termvisor-engine: %s (this program is started by termvisor)\n",
			err.msg);
		return 2;
	}
	return vmm_main(&o);
}
