#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/protocol.h"
#include "src/vmproc-engine.h"
#include "vm/dev/acpi-pm.h"
#include "common/util.h"
#include "vm/vm.h"

/* Keys the guest has not taken yet (its UART is not reading): kept, up to a
 * bound, and offered again from the main loop. */
#define INPUT_BACKLOG_MAX 65536

struct vm_engine {
	struct vm *vm;
	struct vm_config cfg;
	struct vm_disk *disks;
	char *kernel, *initrd;
	char **disk_paths;
	size_t ndisks;
	struct proto_buf input;
	bool restarted; /* the last run ended in a guest reset that we followed */
};

static void engine_free(struct vm_engine *e)
{
	for (size_t i = 0; i < e->ndisks; i++)
		free(e->disk_paths[i]);
	free(e->disk_paths);
	free(e->disks);
	free(e->kernel);
	free(e->initrd);
	proto_buf_free(&e->input);
	free(e);
}

struct vm_engine *engine_open(const struct tv_paths *p, const struct vmdef *def,
			      engine_output_fn out, void *ctx, struct tv_err *err)
{
	struct vm_engine *e;

	if (def->kernel == NULL) {
		tv_errf(err, "VM %s has no kernel; set kernel in %s", def->name,
			def->file ? def->file : "its definition");
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->kernel = vmdef_path(def, def->kernel);
	e->initrd = def->initrd ? vmdef_path(def, def->initrd) : NULL;
	e->ndisks = def->ndisks;
	e->disks = xcalloc(def->ndisks ? def->ndisks : 1, sizeof(*e->disks));
	e->disk_paths = xcalloc(def->ndisks ? def->ndisks : 1, sizeof(char *));
	for (size_t i = 0; i < def->ndisks; i++) {
		e->disk_paths[i] = vmdef_path(def, def->disks[i].file);
		e->disks[i].path = e->disk_paths[i];
		e->disks[i].format = disk_format_name(def->disks[i].format);
		e->disks[i].readonly = def->disks[i].readonly;
		e->disks[i].aio = def->disks[i].aio;
		e->disks[i].serial = def->disks[i].serial;
	}
	e->cfg = (struct vm_config){
		.cpus = def->cpus,
		.memory = def->memory,
		.kernel = e->kernel,
		.initrd = e->initrd,
		.cmdline = def->cmdline,
		.debug_exit = def->debug_exit,
		.disks = e->disks,
		.ndisks = e->ndisks,
		.console = {.output = out, .ctx = ctx},
	};
	if (vm_new(&e->vm, &e->cfg, err) < 0) {
		tv_err_prefix(err, "VM %s: ", def->name);
		engine_free(e);
		return NULL;
	}
	return e;
}

int engine_start(struct vm_engine *e, struct tv_err *err)
{
	return vm_start(e->vm, err);
}

int engine_exit_fd(const struct vm_engine *e)
{
	return vm_exit_fd(e->vm);
}

bool engine_wants_restart(const struct vm_engine *e)
{
	return vm_exit_reason(e->vm) == VM_EXIT_REBOOT;
}

int engine_restart(struct vm_engine *e, struct tv_err *err)
{
	vm_free(e->vm);
	e->vm = NULL;
	if (vm_new(&e->vm, &e->cfg, err) < 0 || vm_start(e->vm, err) < 0)
		return -1;
	e->restarted = true;
	return 0;
}

int engine_exit_reason(const struct vm_engine *e, char *buf, size_t len)
{
	enum vm_exit_reason r = e->vm ? vm_exit_reason(e->vm) : VM_EXIT_HOST_ERROR;
	const char *msg = e->vm ? vm_exit_message(e->vm) : "";

	switch (r) {
	case VM_EXIT_POWEROFF:
		snprintf(buf, len, "the guest powered off");
		return 0;
	case VM_EXIT_STOPPED:
		snprintf(buf, len, "forced off");
		return 0;
	default:
		snprintf(buf, len, "%s%s%s", vm_exit_reason_name(r), *msg ? ": " : "", msg);
		/* Only the first line: the rest (a register dump) is in the log. */
		buf[strcspn(buf, "\n")] = '\0';
		return 1;
	}
}

const char *engine_exit_details(const struct vm_engine *e)
{
	return e->vm ? vm_exit_message(e->vm) : "";
}

int engine_pause(struct vm_engine *e, struct tv_err *err)
{
	return vm_pause(e->vm, err);
}

int engine_resume(struct vm_engine *e, struct tv_err *err)
{
	return vm_resume(e->vm, err);
}

bool engine_paused(const struct vm_engine *e)
{
	return vm_paused(e->vm);
}

int engine_power_button(struct vm_engine *e, struct tv_err *err)
{
	return acpi_pm_power_button(e->vm, err);
}

void engine_force_off(struct vm_engine *e)
{
	vm_request_stop(e->vm);
}

void engine_input_flush(struct vm_engine *e)
{
	size_t n;

	if (e->input.len == 0)
		return;
	n = console_input(e->vm, e->input.data, e->input.len);
	proto_buf_consume(&e->input, n);
}

void engine_input(struct vm_engine *e, const void *bytes, size_t len)
{
	engine_input_flush(e);
	if (e->input.len == 0) {
		size_t n = console_input(e->vm, bytes, len);
		bytes = (const uint8_t *)bytes + n;
		len -= n;
	}
	/* Beyond the bound the typing is lost, as on a serial line. */
	len = MIN(len, INPUT_BACKLOG_MAX - MIN(e->input.len, (size_t)INPUT_BACKLOG_MAX));
	proto_buf_append(&e->input, bytes, len);
}

bool engine_input_pending(const struct vm_engine *e)
{
	return e->input.len > 0;
}

void engine_close(struct vm_engine *e)
{
	if (e == NULL)
		return;
	if (e->vm)
		vm_free(e->vm);
	engine_free(e);
}
