/* Reading a libconfig file (VM definitions, settings, templates) the one
 * way: `@include "FILE"` is relative to the including file's directory, every
 * file it names (and what those include, 10 deep at most) must be a regular
 * file we can read, and errors read "FILE:LINE: message". libconfig itself
 * exits the whole process when an @include names a directory or a device,
 * so the includes are checked before it reads anything. */
#ifndef TV_CFGFILE_H
#define TV_CFGFILE_H

#include <libconfig.h>

#include "common/err.h"

/* cfg has been config_init()ed; on success it holds the file's settings. */
int cfgfile_read(config_t *cfg, const char *file, struct tv_err *err);

#endif
