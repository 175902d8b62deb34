#include <stdio.h>

#include "src/vmproc-engine.h"

/* Until the KVM engine is linked in, starting a VM reports that plainly. */
struct vm_engine *engine_open(const struct tv_paths *p, const struct vmdef *def,
			      engine_output_fn out, void *ctx, struct tv_err *err)
{
	tv_errf(err, "VM %s: this build has no engine to run it", def->name);
	return NULL;
}

int engine_start(struct vm_engine *e, struct tv_err *err)
{
	return tv_errf(err, "no engine");
}

int engine_exit_fd(const struct vm_engine *e)
{
	return -1;
}

int engine_exit_reason(const struct vm_engine *e, char *buf, size_t len)
{
	snprintf(buf, len, "no engine");
	return 1;
}

int engine_pause(struct vm_engine *e, struct tv_err *err)
{
	return tv_errf(err, "no engine");
}

int engine_resume(struct vm_engine *e, struct tv_err *err)
{
	return tv_errf(err, "no engine");
}

bool engine_paused(const struct vm_engine *e)
{
	return false;
}

int engine_power_button(struct vm_engine *e, struct tv_err *err)
{
	return tv_errf(err, "no engine");
}

void engine_force_off(struct vm_engine *e)
{
}

void engine_input(struct vm_engine *e, const void *bytes, size_t len)
{
}

void engine_close(struct vm_engine *e)
{
}

const char *engine_exit_details(const struct vm_engine *e)
{
	return "";
}

bool engine_wants_restart(const struct vm_engine *e)
{
	return false;
}

int engine_restart(struct vm_engine *e, struct tv_err *err)
{
	return tv_errf(err, "no engine");
}

void engine_input_flush(struct vm_engine *e)
{
}

bool engine_input_pending(const struct vm_engine *e)
{
	return false;
}
