/* Just enough JSON writing for stable machine-readable output. */
#ifndef TV_JSON_H
#define TV_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal (quotes included); NULL writes null. */
void json_string(FILE *f, const char *s);

#endif
