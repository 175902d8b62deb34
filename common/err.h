/* Errors returned up the stack with their context, never printed deep inside. */
#ifndef TV_ERR_H
#define TV_ERR_H

#include <stddef.h>

#define TV_ERR_MAX 512

struct tv_err {
	char msg[TV_ERR_MAX];
};

/* Formats the message into e (when e is not NULL) and returns -1, so callers
 * can write `return tv_errf(err, "...")`. */
int tv_errf(struct tv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, appending ": strerror(errno)" for the errno saved at the call. */
int tv_errno(struct tv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with more context ("lab1.conf: " + msg). */
int tv_err_prefix(struct tv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
