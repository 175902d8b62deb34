/* termvisor-engine: the VM process of `termvisor run`, which replaces itself
 * with this program. It links the engine and nothing of the interface, so a
 * running VM carries only what it uses (src/runvm.h). */
#include "src/vmm/runvm.h"

int main(int argc, char **argv)
{
	return runvm_main(argc, argv);
}
