/* Files shipped with termvisor (templates, the demo guest), found whether it is
 * installed or run from its build tree. */
#ifndef TV_DATADIR_H
#define TV_DATADIR_H

/* The path of data file rel ("templates", "demo/demo.elf"), looking in
 * $TERMVISOR_DATADIR, then, when this binary runs from its build tree, the build
 * and source trees' share/, then the installed data directory. NULL when absent. */
char *datadir_find(const char *rel);

/* The directories searched, in order, NULL-terminated; free with datadir_free. */
char **datadir_list(void);
void datadir_free(char **dirs);

/* This program's own executable (for helpers that run termvisor again). */
char *self_exe(void);

#endif
