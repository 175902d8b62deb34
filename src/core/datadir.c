#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/datadir.h"
#include "common/util.h"

char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return xstrdup("termvisor");
	buf[n] = '\0';
	return xstrdup(buf);
}

static bool running_uninstalled(void)
{
#if defined(TV_BUILDDIR)
	char *exe = self_exe(), *slash = strrchr(exe, '/');
	bool yes = false;

	if (slash != NULL) {
		*slash = '\0';
		char *real_build = realpath(TV_BUILDDIR, NULL), *real_exe = realpath(exe, NULL);
		yes = real_build && real_exe && strcmp(real_build, real_exe) == 0;
		free(real_build);
		free(real_exe);
	}
	free(exe);
	return yes;
#else
	return false;
#endif
}

char **datadir_list(void)
{
	char **dirs = xcalloc(5, sizeof(char *));
	const char *env = getenv("TERMVISOR_DATADIR");
	size_t n = 0;

	if (env && *env)
		dirs[n++] = xstrdup(env);
#if defined(TV_BUILDDIR) && defined(TV_SRCDIR)
	if (running_uninstalled()) {
		dirs[n++] = xstrdup(TV_BUILDDIR "/share");
		dirs[n++] = xstrdup(TV_SRCDIR "/share");
	}
#endif
	dirs[n++] = xstrdup(TV_PKGDATADIR);
	return dirs;
}

void datadir_free(char **dirs)
{
	for (size_t i = 0; dirs && dirs[i]; i++)
		free(dirs[i]);
	free(dirs);
}

char *datadir_find(const char *rel)
{
	char **dirs = datadir_list(), *found = NULL;

	for (size_t i = 0; dirs[i] && !found; i++) {
		char *path = xasprintf("%s/%s", dirs[i], rel);
		if (access(path, F_OK) == 0)
			found = path;
		else
			free(path);
	}
	datadir_free(dirs);
	return found;
}
