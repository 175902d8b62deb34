/* File-system and prompt helpers used by several subcommands. */
#ifndef TV_FSUTIL_H
#define TV_FSUTIL_H

#include <stdbool.h>

/* Removes a directory tree without following symbolic links; 0 or -1 (errno). */
int remove_tree(const char *dir);

/* Asks question on the terminal and reads y/yes; false without a terminal. */
bool ask_yes_no(const char *question);

#endif
