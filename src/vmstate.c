#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/vmstate.h"
#include "vm/util.h"

const char *vm_state_name(enum vm_state s)
{
	switch (s) {
	case VM_RUNNING:
		return "running";
	case VM_PAUSED:
		return "paused";
	case VM_CRASHED:
		return "crashed";
	case VM_STOPPED:
		break;
	}
	return "stopped";
}

static pid_t read_pid(const char *file, time_t *mtime)
{
	FILE *f = fopen(file, "r");
	struct stat st;
	long pid = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0)
		pid = 0;
	if (fstat(fileno(f), &st) == 0)
		*mtime = st.st_mtime;
	fclose(f);
	return (pid_t)pid;
}

void vm_status_probe(const struct tv_paths *p, const char *name, struct vm_status *st)
{
	char *pidfile = paths_vm_runtime(p, name, "pid");
	char *pausefile = paths_vm_runtime(p, name, "paused");
	time_t started = 0;
	pid_t pid = read_pid(pidfile, &started);

	memset(st, 0, sizeof(*st));
	if (pid > 0) {
		if (kill(pid, 0) == 0 || errno == EPERM) {
			st->state = access(pausefile, F_OK) == 0 ? VM_PAUSED : VM_RUNNING;
			st->pid = pid;
			time_t now = time(NULL);
			st->uptime_s = now > started ? (uint64_t)(now - started) : 0;
		} else {
			st->state = VM_CRASHED;
		}
	}
	free(pidfile);
	free(pausefile);
}

bool vm_is_live(const struct tv_paths *p, const char *name)
{
	struct vm_status st;

	vm_status_probe(p, name, &st);
	return st.state == VM_RUNNING || st.state == VM_PAUSED;
}
