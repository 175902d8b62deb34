#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/core/fsutil.h"

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Never crosses into another file system: a template builder's tree that is
 * somehow still mounted (proc, sys, a bound /dev) is left alone, not emptied. */
int remove_tree(const char *dir)
{
	if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

bool ask_yes_no(const char *question)
{
	char line[32];
	FILE *tty = fopen("/dev/tty", "r+");
	bool yes;

	if (tty == NULL)
		return false;
	fprintf(tty, "%s [y/N] ", question);
	fflush(tty);
	if (fgets(line, sizeof(line), tty) == NULL) {
		fclose(tty);
		return false;
	}
	fclose(tty);
	for (char *p = line; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	yes = strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0;
	return yes;
}
