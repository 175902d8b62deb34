/* What the test guests print on their console, captured for the unit tests
 * that run them on /dev/kvm (test-engine, test-memimg). */
#ifndef TV_TEST_GUEST_CONSOLE_H
#define TV_TEST_GUEST_CONSOLE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/util.h"
#include "vm/vm.h"

struct capture {
	pthread_mutex_t lock;
	char buf[16384];
	size_t len;
};

/* The console_sink output function; ctx is a struct capture. */
static inline void capture_out(void *ctx, unsigned port, const void *bytes, size_t len)
{
	struct capture *c = ctx;

	pthread_mutex_lock(&c->lock);
	len = MIN(len, sizeof(c->buf) - 1 - c->len);
	memcpy(c->buf + c->len, bytes, len);
	c->len += len;
	c->buf[c->len] = 0;
	pthread_mutex_unlock(&c->lock);
}

static inline bool captured(struct capture *c, const char *s)
{
	bool found;

	pthread_mutex_lock(&c->lock);
	found = strstr(c->buf, s) != NULL;
	pthread_mutex_unlock(&c->lock);
	return found;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* The VM of cfg, its console captured in c; fails the test when it cannot
 * be made. */
static inline struct vm *guest_vm_new(struct vm_config *cfg, struct capture *c)
{
	struct tv_err err;
	struct vm *vm = NULL;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	cfg->console = (struct console_sink){.output = capture_out, .ctx = c};
	if (vm_new(&vm, cfg, &err) < 0)
		fail_msg("%s", err.msg);
	return vm;
}

#endif
