/* Just enough JSON writing for stable machine-readable output. */
#ifndef TV_JSON_H
#define TV_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes s as a JSON string literal (quotes included); NULL writes null. */
void json_string(FILE *f, const char *s);

/* Reading, for replies of the form {"key": value, ...} (the VM process's
 * snapshot replies): copies the value of key at the top level into out as
 * text (a string without its quotes, \\n and \\t decoded, \\u escapes as
 * '?'; a number, true, false or null as written), cut to outlen - 1 bytes.
 * -1 when absent, an object or array, or the text is malformed; never reads
 * past js + len. */
int json_flat_get(const char *js, size_t len, const char *key, char *out, size_t outlen);

#endif
