/* A scratch directory for fuzz targets that parse files: made once per
 * process under $TMPDIR (the runner's own, tests/fuzz/lib.sh), reused by
 * every input. */
#ifndef TV_FUZZ_SCRATCH_H
#define TV_FUZZ_SCRATCH_H
#include <stdio.h>
#include <stdlib.h>

static const char *fuzz_scratch_dir(const char *name)
{
	static char dir[4096];
	const char *t = getenv("TMPDIR");

	if (dir[0] == 0) {
		snprintf(dir, sizeof(dir), "%s/tv-fuzz-%s.XXXXXX", t != NULL && *t ? t : "/tmp", name);
		if (mkdtemp(dir) == NULL)
			abort();
	}
	return dir;
}
#endif
