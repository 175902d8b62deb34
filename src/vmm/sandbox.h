/* The VM process's confinement, installed once its set-up is done (the
 * machine built, the control socket bound):
 *
 *   no_new_privs   nothing it runs can gain privileges
 *   seccomp        an allowlist of system calls, for every thread
 *                  (SECCOMP_FILTER_FLAG_TSYNC), threads made later included:
 *                  what the vCPU loop, the devices, disk I/O, snapshots, the
 *                  control socket, the user network and a guest reset need;
 *                  execve, fork-style clone, ptrace, mount, bpf, module
 *                  loading and the rest are forbidden. clone3 answers ENOSYS
 *                  (the C library then makes its threads with clone, which
 *                  the filter checks for CLONE_THREAD).
 *   Landlock       where the kernel has it: file access only beneath the
 *                  paths given with sandbox_allow (the VM's own files)
 *
 * A forbidden call ends the process: a SIGSYS handler writes
 *   termvisor: sandbox: forbidden system call NAME (NR) in thread TID (COMM)
 * to stderr (the VM's log) and exits with SANDBOX_EXIT_STATUS. The pid file
 * stays behind, so the VM then reads as crashed (runtime.h). A thread that
 * blocks SIGSYS cannot run the handler (the kernel then kills the process
 * without a word): threads that block signals leave SIGSYS out.
 *
 * The list of what is allowed is documented in termvisor(1) (SANDBOX). */
#ifndef TV_SANDBOX_H
#define TV_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* The exit status of a VM process that made a forbidden system call. */
#define SANDBOX_EXIT_STATUS 6

/* What Landlock lets the process do beneath a path. */
enum sandbox_access {
	SANDBOX_READ,      /* read files (list directories) */
	SANDBOX_READ_WRITE, /* a file: read, write, truncate; a directory: also
			     * create, remove and rename beneath it */
};

#define SANDBOX_MAX_PATHS 64

struct sandbox {
	struct {
		char *path;
		enum sandbox_access access;
	} allow[SANDBOX_MAX_PATHS];
	size_t nallow;
};

/* Adds a path Landlock leaves open (copied). Paths that do not exist when the
 * sandbox is installed are left out. Beyond SANDBOX_MAX_PATHS, an error at
 * install. */
void sandbox_allow(struct sandbox *s, const char *path, enum sandbox_access access);
void sandbox_free(struct sandbox *s);

/* Installs the sandbox on the calling process, every thread. note gets one
 * line for the log saying what applies (Landlock's ABI, or that the kernel
 * has none and only the filter applies). Returns -1 with err when the filter
 * could not be installed; the process is then unconfined. */
int sandbox_install(const struct sandbox *s, char *note, size_t notelen, struct tv_err *err);

/* The name of system call nr (x86-64), or NULL when the table lacks it. */
const char *sandbox_syscall_name(long nr);

#endif
