#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

int tv_errf(struct tv_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int tv_errno(struct tv_err *e, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	size_t n;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

int tv_err_prefix(struct tv_err *e, const char *fmt, ...)
{
	char prefix[TV_ERR_MAX / 2], old[TV_ERR_MAX];
	size_t n, m, rest;
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	n = strlen(prefix);
	memcpy(e->msg, prefix, n);
	rest = sizeof(e->msg) - 1 - n;
	m = strnlen(old, rest);
	memcpy(e->msg + n, old, m);
	e->msg[n + m] = '\0';
	return -1;
}
