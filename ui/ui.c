#include <stdio.h>
#include <unistd.h>

#include "ui/ui.h"

int ui_main(void)
{
	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "termvisor: the interface needs a terminal; "
				"'termvisor help' lists the commands\n");
		return 2;
	}
	fprintf(stderr, "termvisor: the interface is not built yet\n");
	return 1;
}
