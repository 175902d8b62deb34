/* libFuzzer target for the control socket and the console buffer. The first
 * two bytes split the input: what a client sends to a VM process's socket
 * (frames or garbage), and what the guest prints on its console. Whatever
 * they hold, the server must answer without crashing, never call the engine
 * with a request that is not well formed, and the console must render. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/vmm/console-buf.h"
#include "src/core/runtime.h"
#include "src/vmm/control.h"
#include "src/vmm/vmm-int.h"
#include "src/vmm/vtguard.h"

static struct control *ctl;
static struct console_buf *cb;
static char path[108];
static unsigned stops;
static struct vmm_opts fuzz_opts;
static char fuzz_machine; /* stands for the engine's VM: never looked into */
static struct vmm fuzz_vm = {.o = &fuzz_opts, .name = "fuzz", .vm = (struct vm *)&fuzz_machine};

/* The VM process's real verb table (src/vmm/verbs.c) drives the server; what
 * its handlers call in the VM process and the engine is stood in for here. */
void vmm_log(struct vmm *v, const char *fmt, ...)
{
}

uint8_t vmm_state(void *vm)
{
	return PROTO_STATE_RUNNING;
}

int vmm_begin_stop(struct vmm *v, uint32_t timeout_ms, struct tv_err *err)
{
	stops++;
	return 0;
}

/* The guest's output as the VM process passes it on: through the guard once,
 * then into libvterm and out to the clients. */
static void guest_output(const uint8_t *bytes, size_t len)
{
	uint8_t *guarded = malloc(len + 1);
	size_t n = vtguard_filter(&fuzz_vm.con[CONSOLE_SERIAL].guard, bytes, len, guarded);

	control_console_output(ctl, CONSOLE_SERIAL, guarded, n);
	free(guarded);
}

void vmm_input(struct vmm *v, unsigned port, const void *bytes, size_t len)
{
	/* Guest echo: input comes back as console output. */
	guest_output(bytes, len);
}

int vmm_pause(struct vmm *v, struct tv_err *err)
{
	return 0;
}

int vm_resume(struct vm *vm, struct tv_err *err)
{
	return 0;
}

void vm_request_stop(struct vm *vm)
{
}

/* No device holds this VM: a status has no reason to report. */
bool vm_hold_reason(const struct vm *vm, char *buf, size_t len)
{
	if (len > 0)
		buf[0] = '\0';
	return false;
}

void virtio_net_info(struct vm *vm, unsigned n, char *buf, size_t len)
{
	if (len > 0)
		buf[0] = '\0';
}

void vm_runtime_set_paused(const struct tv_paths *p, const char *name, bool paused)
{
}

/* The snapshot verbs work on the engine and the store: stood in for by
 * reading their key=value payload and answering with a typed reply. */
static enum verb_result snapshot_verb(struct verb_call *call)
{
	char tag[65], flag[8];

	if (proto_kv_get(call->f->payload, call->f->len, "tag", tag, sizeof(tag)) < 0)
		return tv_errf(&call->err, "no tag"), VERB_ERROR;
	proto_kv_get(call->f->payload, call->f->len, "discard", flag, sizeof(flag));
	proto_put_frame(call->out, PROTO_SNAPSHOT_REPLY, "{}", 2);
	return VERB_REPLIED;
}

enum verb_result vmm_verb_snapshot_take(struct verb_call *call)
{
	return snapshot_verb(call);
}

enum verb_result vmm_verb_snapshot_rollback(struct verb_call *call)
{
	return snapshot_verb(call);
}

enum verb_result vmm_verb_snapshot_delete(struct verb_call *call)
{
	return snapshot_verb(call);
}

enum verb_result vmm_verb_snapshot_rename(struct verb_call *call)
{
	return snapshot_verb(call);
}

static void setup(void)
{
	struct tv_err err;
	const char *tmp = getenv("TMPDIR");
	char dir[80];

	snprintf(dir, sizeof(dir), "%s/tv-fuzzctl.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/vm.sock", dir);
	cb = console_buf_new(24, 80, 50);
	ctl = control_new(&(struct control_conf){.path = path, .name = "fuzz", .cb = {cb},
						 .verbs = vmm_verbs, .vm = &fuzz_vm,
						 .state = vmm_state},
			  &err);
	fuzz_vm.ctl = ctl;
	if (ctl == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
}

/* Runs the server until it has nothing more to do. */
static void serve(int client)
{
	int idle = 0;

	while (idle < 3) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS + 1];
		size_t n = control_pollfds(ctl, pfd, CONTROL_MAX_CLIENTS + 1);
		char sink[65536];

		if (poll(pfd, n, 0) <= 0)
			idle++;
		control_handle(ctl, pfd, n);
		while (client >= 0 && recv(client, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct proto_buf screen = {0};
	size_t split;
	int fd;

	if (ctl == NULL)
		setup();
	if (size < 2)
		return 0;
	split = 2 + ((size_t)data[0] << 8 | data[1]) % (size - 1);
	if (split > size)
		split = size;

	/* The guest's part: console output, then a replay. */
	guest_output(data + split, size - split);
	console_buf_render(cb, 1 + data[1] % 60, &screen);
	proto_buf_free(&screen);

	/* The client's part, sent on a fresh connection. */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	serve(fd);
	for (size_t off = 2; off < split;) {
		ssize_t n = send(fd, data + off, split - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN)
			break;
		if (n > 0)
			off += (size_t)n;
		serve(fd);
	}
	serve(fd);
	close(fd);
	serve(-1);
	return 0;
}

#include "tests/fuzz/standalone.h"
