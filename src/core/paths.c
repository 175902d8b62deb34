#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/paths.h"
#include "common/util.h"

#define VM_NAME_MAX 64

static const char *env_dir(const char *var)
{
	const char *v = getenv(var);

	/* The XDG spec says relative paths in these variables are to be ignored. */
	return v != NULL && v[0] == '/' ? v : NULL;
}

static char *xdg_dir(const char *var, const char *home_rel, const char *home)
{
	const char *v = env_dir(var);

	if (v != NULL)
		return xasprintf("%s/termvisor", v);
	return xasprintf("%s/%s/termvisor", home, home_rel);
}

int paths_init(struct tv_paths *p, struct tv_err *err)
{
	const char *top = getenv("TERMVISOR_HOME");
	const char *home, *run;

	memset(p, 0, sizeof(*p));
	if (top != NULL && top[0] != '\0') {
		char *abs = top[0] == '/' ? xstrdup(top) : NULL;
		if (abs == NULL) {
			char *cwd = getcwd(NULL, 0);
			if (cwd == NULL)
				return tv_errno(err, "TERMVISOR_HOME: cannot resolve '%s'", top);
			abs = xasprintf("%s/%s", cwd, top);
			free(cwd);
		}
		p->config_dir = abs;
		p->vms_dir = xasprintf("%s/vms", abs);
		p->data_dir = xasprintf("%s/data", abs);
		p->cache_dir = xasprintf("%s/cache", abs);
		p->runtime_dir = xasprintf("%s/run", abs);
		return 0;
	}
	home = env_dir("HOME");
	if (home == NULL)
		return tv_errf(err, "HOME is not set to an absolute path; set HOME or TERMVISOR_HOME");
	p->config_dir = xdg_dir("XDG_CONFIG_HOME", ".config", home);
	p->vms_dir = xasprintf("%s/vms", p->config_dir);
	p->data_dir = xdg_dir("XDG_DATA_HOME", ".local/share", home);
	p->cache_dir = xdg_dir("XDG_CACHE_HOME", ".cache", home);
	run = env_dir("XDG_RUNTIME_DIR");
	if (run != NULL)
		p->runtime_dir = xasprintf("%s/termvisor", run);
	else
		p->runtime_dir = xasprintf("/tmp/termvisor-%u", (unsigned)getuid());
	return 0;
}

void paths_free(struct tv_paths *p)
{
	free(p->config_dir);
	free(p->vms_dir);
	free(p->data_dir);
	free(p->cache_dir);
	free(p->runtime_dir);
	memset(p, 0, sizeof(*p));
}

char *paths_settings_file(const struct tv_paths *p)
{
	return xasprintf("%s/termvisor.conf", p->config_dir);
}

char *paths_vm_conf(const struct tv_paths *p, const char *name)
{
	return xasprintf("%s/%s.conf", p->vms_dir, name);
}

char *paths_vm_data(const struct tv_paths *p, const char *name)
{
	return xasprintf("%s/%s", p->data_dir, name);
}

char *paths_vm_runtime(const struct tv_paths *p, const char *name, const char *suffix)
{
	return xasprintf("%s/%s.%s", p->runtime_dir, name, suffix);
}

int paths_mkdir(const char *dir, mode_t mode, struct tv_err *err)
{
	char *copy = xstrdup(dir);
	struct stat st;
	int rc = 0;

	for (char *s = copy + 1;; s++) {
		char c = *s;
		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			rc = tv_errno(err, "cannot create directory %s", copy);
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (rc == 0 && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
		rc = tv_errf(err, "%s exists but is not a directory", dir);
	free(copy);
	return rc;
}

int paths_runtime_ensure(const struct tv_paths *p, struct tv_err *err)
{
	struct stat st;

	if (paths_mkdir(p->runtime_dir, 0700, err) < 0)
		return -1;
	if (lstat(p->runtime_dir, &st) < 0)
		return tv_errno(err, "%s", p->runtime_dir);
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
		return tv_errf(err, "%s: not a directory owned by this user; refusing to use it",
			       p->runtime_dir);
	if ((st.st_mode & 077) != 0 && chmod(p->runtime_dir, 0700) < 0)
		return tv_errno(err, "%s: cannot make it private (mode 0700)", p->runtime_dir);
	return 0;
}

char *paths_resolve(const char *base, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("%s/%s", base, path);
}

int name_check(const char *what, const char *name, size_t max, struct tv_err *err)
{
	size_t len = strlen(name);

	if (len == 0)
		return tv_errf(err, "a %s cannot be empty", what);
	if (len > max)
		return tv_errf(err, "%s '%.20s...' is too long (at most %zu characters)", what, name,
			       max);
	if (name[0] == '.' || name[0] == '-')
		return tv_errf(err, "%s '%s' must not start with '%c'", what, name, name[0]);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.')
			continue;
		if (c == '/')
			return tv_errf(err, "%s '%s' must not contain '/'", what, name);
		return tv_errf(err,
			       "%s '%s' has the character '%c'; use letters, digits, '-', "
			       "'_' and '.'",
			       what, name, c >= 0x20 && c < 0x7f ? c : '?');
	}
	return 0;
}

int vm_name_check(const char *name, struct tv_err *err)
{
	return name_check("VM name", name, VM_NAME_MAX, err);
}
