/* The verb table of the control socket and the handlers of the verbs that act
 * on the VM (the connection's own verbs are in control.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/runtime.h"
#include "src/vmm/control.h"
#include "src/vmm/verbs.h"
#include "src/vmm/vmm-int.h"
#include "vm/dev/virtio-pci.h"

static enum verb_result verb_status(struct verb_call *call)
{
	struct vmm *v = call->vm;
	struct proto_status st;
	int rows = 0, cols = 0;

	memset(&st, 0, sizeof(st));
	st.state = vmm_state(v);
	st.clients = (uint16_t)control_attached(call->ctl);
	st.pid = (uint32_t)getpid();
	st.cpus = v->o->cfg.cpus;
	st.memory = v->o->cfg.memory;
	st.started = (uint64_t)v->started;
	st.uptime_ms = (monotonic_ns() - v->started_ns) / 1000000;
	if (v->con[v->primary].cb)
		console_buf_size(v->con[v->primary].cb, &rows, &cols);
	st.rows = (uint16_t)rows;
	st.cols = (uint16_t)cols;
	snprintf(st.name, sizeof(st.name), "%s", v->name);
	if (v->vm != NULL)
		vm_hold_reason(v->vm, st.reason, sizeof(st.reason));
	proto_put_status(call->out, &st);
	return VERB_REPLIED;
}

/* Each NIC: what the VM was started with, and its backend's state (the
 * DHCP lease the user network handed out). */
static enum verb_result verb_net_info(struct verb_call *call)
{
	struct vmm *v = call->vm;
	const struct vm_config *c = &v->o->cfg;
	char addr[NET_NICS_MAX][64] = {{0}};
	struct proto_buf b = {0};

	for (size_t i = 0; i < c->nnics && i < NET_NICS_MAX && v->vm != NULL; i++)
		virtio_net_info(v->vm, (unsigned)i, addr[i], sizeof(addr[i]));
	proto_kv_put_nics(&b, c->nics, MIN(c->nnics, NET_NICS_MAX), addr);
	proto_put_frame(call->out, PROTO_NET_REPLY, b.data, b.len);
	proto_buf_free(&b);
	return VERB_REPLIED;
}

static enum verb_result verb_pause(struct verb_call *call)
{
	struct vmm *v = call->vm;

	if (vmm_pause(v, &call->err) < 0)
		return VERB_ERROR;
	vm_runtime_set_paused(&v->paths, v->name, true);
	vmm_log(v, "paused");
	control_event(v->ctl, PROTO_EV_PAUSED, "");
	return VERB_OK;
}

static enum verb_result verb_resume(struct verb_call *call)
{
	struct vmm *v = call->vm;

	if (vm_resume(v->vm, &call->err) < 0)
		return VERB_ERROR;
	vm_runtime_set_paused(&v->paths, v->name, false);
	vmm_log(v, "resumed");
	control_event(v->ctl, PROTO_EV_RESUMED, "");
	return VERB_OK;
}

/* A verb ended the run (a rollback that could not boot the guest again):
 * nothing is left to act on. */
static bool machine_gone(struct verb_call *call)
{
	struct vmm *v = call->vm;

	if (v->vm != NULL)
		return false;
	tv_errf(&call->err, "VM %s has ended", v->name);
	return true;
}

static enum verb_result verb_stop(struct verb_call *call)
{
	uint32_t timeout_ms;

	if (machine_gone(call))
		return VERB_ERROR;
	proto_get_u32(call->f, &timeout_ms);
	return vmm_begin_stop(call->vm, timeout_ms, &call->err) < 0 ? VERB_ERROR : VERB_OK;
}

static enum verb_result verb_force_off(struct verb_call *call)
{
	struct vmm *v = call->vm;

	if (machine_gone(call))
		return VERB_ERROR;
	vmm_log(v, "forced off");
	vm_request_stop(v->vm);
	return VERB_OK;
}

static enum verb_result verb_input(struct verb_call *call)
{
	if (((struct vmm *)call->vm)->vm == NULL)
		return VERB_SILENT;
	vmm_input(call->vm, control_client_port(call->cl), call->f->payload, call->f->len);
	return VERB_SILENT;
}

const struct verb vmm_verbs[] = {
	{
		.type = PROTO_HELLO,
		.name = "hello",
		.payload = VP_U32,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = control_verb_hello,
		.help = "Open the conversation with the protocol version; the reply names the server.",
	},
	{
		.type = PROTO_STATUS,
		.name = "status",
		.payload = VP_EMPTY,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = verb_status,
		.help = "The VM's state, pid, vCPUs, memory, start time, uptime, clients, console size.",
	},
	{
		.type = PROTO_NET_INFO,
		.name = "net-info",
		.payload = VP_EMPTY,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = verb_net_info,
		.help = "Each network interface's mode, MAC, address (its DHCP lease) and forwards.",
	},
	{
		.type = PROTO_PAUSE,
		.name = "pause",
		.payload = VP_EMPTY,
		.states = VS_RUNNING,
		.attach = VA_ANY,
		.handler = verb_pause,
		.help = "Pause a running VM's vCPUs (its memory and console stay).",
		.command = "pause",
		.done = "paused",
	},
	{
		.type = PROTO_RESUME,
		.name = "resume",
		.payload = VP_EMPTY,
		.states = VS_PAUSED,
		.attach = VA_ANY,
		.handler = verb_resume,
		.help = "Let a paused VM's vCPUs run again.",
		.command = "resume",
		.done = "resumed",
	},
	{
		.type = PROTO_STOP,
		.name = "stop",
		.payload = VP_U32,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = verb_stop,
		.help = "Press the power button; force off after the timeout (ms; 0: 30 s).",
	},
	{
		.type = PROTO_FORCE_OFF,
		.name = "force-off",
		.payload = VP_EMPTY,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = verb_force_off,
		.help = "End the VM at once, like pulling the plug.",
	},
	{
		.type = PROTO_ATTACH,
		.name = "attach",
		.payload = VP_ATTACH,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = control_verb_attach,
		.help = "Attach to a console (ttyS0, hvc0), read-write or read-only: its screen, then its output.",
	},
	{
		.type = PROTO_INPUT,
		.name = "input",
		.payload = VP_BYTES,
		.states = VS_ANY,
		.attach = VA_READ_WRITE,
		.handler = verb_input,
		.help = "Bytes typed at the attached console, for the guest (no reply).",
	},
	{
		.type = PROTO_WINSIZE,
		.name = "winsize",
		.payload = VP_SIZE,
		.states = VS_ANY,
		.attach = VA_ATTACHED,
		.handler = control_verb_winsize,
		.help = "The attached client's window changed size.",
	},
	{
		.type = PROTO_PACE,
		.name = "pace",
		.payload = VP_FLAG,
		.states = VS_ANY,
		.attach = VA_ATTACHED,
		.handler = control_verb_pace,
		.help = "1: while the guest floods, send screens at the frame rate, then the lines missed; 0: every byte.",
	},
	{
		.type = PROTO_DETACH,
		.name = "detach",
		.payload = VP_EMPTY,
		.states = VS_ANY,
		.attach = VA_ATTACHED,
		.handler = control_verb_detach,
		.help = "Stop receiving the console.",
	},
	{
		.type = PROTO_SUBSCRIBE,
		.name = "subscribe",
		.payload = VP_EMPTY,
		.states = VS_ANY,
		.attach = VA_ANY,
		.handler = control_verb_subscribe,
		.help = "Receive the VM's events (state changes, snapshots) without attaching.",
	},
	{
		.type = PROTO_SNAPSHOT_TAKE,
		.name = "snapshot-take",
		.payload = VP_BYTES,
		.states = VS_LIVE,
		.attach = VA_ANY,
		.handler = vmm_verb_snapshot_take,
		.help = "Snapshot the whole machine (tag=, description=, automatic=1); reply: figures.",
	},
	{
		.type = PROTO_SNAPSHOT_ROLLBACK,
		.name = "snapshot-rollback",
		.payload = VP_BYTES,
		.states = VS_LIVE,
		.attach = VA_ANY,
		.handler = vmm_verb_snapshot_rollback,
		.help = "Put the machine back to snapshot tag=, saving it first unless discard=1.",
	},
	{
		.type = PROTO_SNAPSHOT_DELETE,
		.name = "snapshot-delete",
		.payload = VP_BYTES,
		.states = VS_LIVE,
		.attach = VA_ANY,
		.handler = vmm_verb_snapshot_delete,
		.help = "Delete snapshot tag= (its children stay whole).",
	},
	{
		.type = PROTO_SNAPSHOT_RENAME,
		.name = "snapshot-rename",
		.payload = VP_BYTES,
		.states = VS_LIVE,
		.attach = VA_ANY,
		.handler = vmm_verb_snapshot_rename,
		.help = "Rename snapshot tag= to new= (its disks' snapshots too).",
	},
	{.type = 0},
};

const struct verb *verb_find(const struct verb *table, uint16_t type)
{
	for (const struct verb *v = table; v->type != 0; v++)
		if (v->type == type)
			return v;
	return NULL;
}

const struct verb *verb_find_command(const struct verb *table, const char *command)
{
	for (const struct verb *v = table; v->type != 0; v++)
		if (v->command != NULL && strcmp(v->command, command) == 0)
			return v;
	return NULL;
}

int verb_check_payload(const struct verb *v, const struct proto_frame *f, struct tv_err *err)
{
	uint32_t u;
	uint16_t rows, cols;
	uint8_t mode, console;

	switch (v->payload) {
	case VP_EMPTY:
		if (f->len != 0)
			return tv_errf(err, "%s: expected no payload", v->name);
		return 0;
	case VP_U32:
		if (proto_get_u32(f, &u) < 0)
			return tv_errf(err, "%s: expected a 4-byte %s", v->name,
				       v->type == PROTO_HELLO ? "version" : "timeout in milliseconds");
		return 0;
	case VP_SIZE:
		if (proto_get_size(f, &rows, &cols) < 0)
			return tv_errf(err, "%s: expected %d..%d rows and columns", v->name,
				       PROTO_MIN_DIM, PROTO_MAX_DIM);
		return 0;
	case VP_ATTACH:
		if (proto_get_attach(f, &mode, &console, &rows, &cols) < 0)
			return tv_errf(err,
				       "%s: expected mode 0 or 1, console 0 to 2 and a size of %d..%d "
				       "rows and columns",
				       v->name, PROTO_MIN_DIM, PROTO_MAX_DIM);
		return 0;
	case VP_BYTES:
		return 0;
	case VP_FLAG:
		if (f->len != 1 || f->payload[0] > 1)
			return tv_errf(err, "%s: expected one byte, 0 or 1", v->name);
		return 0;
	}
	return tv_errf(err, "%s: unknown payload kind", v->name);
}

void verb_states_text(unsigned states, char *buf, size_t len)
{
	static const uint8_t order[] = {PROTO_STATE_RUNNING, PROTO_STATE_PAUSED,
					PROTO_STATE_STOPPING};
	size_t n = 0, k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (states & (1u << order[i]))
			k++;
	for (size_t i = 0, seen = 0; i < ARRAY_SIZE(order); i++) {
		if (!(states & (1u << order[i])))
			continue;
		seen++;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s",
				      seen == 1 ? "" : seen == k ? " or " : ", ",
				      proto_state_name(order[i]));
		if (n >= len)
			break;
	}
}
