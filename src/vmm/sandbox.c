/* The VM process's confinement: no_new_privs, a seccomp allowlist and
 * Landlock (sandbox.h). The filter is written by hand in classic BPF. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sched.h>

#include "common/util.h"
#include "src/vmm/sandbox.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

/* The sanitizers' runtime makes calls of its own: LeakSanitizer's exit-time
 * scan stops the threads from a tracer it clones (sharing memory, not a
 * fork) that attaches to them with ptrace. Sanitizer builds only. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZERS 1
#endif
#endif

#define SC(n) {__NR_##n, #n}

/* System calls allowed without looking at their arguments. */
static const struct sc {
	int nr;
	const char *name;
} allowed[] = {
	/* Files: disks, qcow2, the log, snapshots, the kernel cache. */
	SC(read), SC(write), SC(readv), SC(writev), SC(pread64), SC(pwrite64),
	SC(preadv), SC(pwritev), SC(preadv2), SC(pwritev2), SC(lseek), SC(close),
	SC(close_range), SC(open), SC(openat), SC(stat), SC(fstat), SC(lstat),
	SC(newfstatat), SC(statx), SC(statfs), SC(fstatfs), SC(access), SC(faccessat),
	SC(faccessat2), SC(readlink), SC(readlinkat), SC(getdents64), SC(getcwd),
	SC(mkdir), SC(mkdirat), SC(rmdir), SC(rename), SC(renameat), SC(renameat2),
	SC(unlink), SC(unlinkat), SC(symlink), SC(symlinkat), SC(fchmod), SC(umask),
	SC(utimensat), SC(ftruncate), SC(fallocate), SC(fsync), SC(fdatasync),
	SC(sync_file_range), SC(flock), SC(fcntl), SC(dup), SC(dup2), SC(dup3),
	SC(pipe), SC(pipe2),
	/* Memory: guest RAM, memory images, the allocator. */
	SC(mmap), SC(munmap), SC(mremap), SC(mprotect), SC(madvise), SC(msync),
	SC(mincore), SC(brk),
	/* Waiting and events: the main loop, device and I/O threads. */
	SC(poll), SC(ppoll), SC(select), SC(pselect6), SC(epoll_create1), SC(epoll_ctl),
	SC(epoll_wait), SC(epoll_pwait), SC(eventfd2), SC(signalfd4), SC(timerfd_create),
	SC(timerfd_settime), SC(timerfd_gettime), SC(futex), SC(sched_yield),
	SC(nanosleep), SC(clock_nanosleep), SC(clock_gettime), SC(clock_getres),
	SC(gettimeofday), SC(time),
	/* The disks' rings, made before the filter and restricted to readv and
	 * writev (vm/block/uring.h): submitting to them is all that is left. */
	SC(io_uring_enter),
	/* Sockets: the control socket, lab networks, the user network. */
	SC(socketpair), SC(connect), SC(accept), SC(accept4), SC(bind), SC(listen),
	SC(sendto), SC(recvfrom), SC(sendmsg), SC(recvmsg), SC(sendmmsg), SC(recvmmsg),
	SC(setsockopt), SC(getsockopt), SC(getsockname), SC(getpeername), SC(shutdown),
	/* Threads and signals. */
	SC(set_robust_list), SC(rseq), SC(set_tid_address), SC(gettid), SC(getpid),
	SC(getpriority), SC(setpriority),
	SC(getppid), SC(rt_sigaction), SC(rt_sigprocmask), SC(rt_sigreturn),
	SC(sigaltstack), SC(sched_getaffinity), SC(restart_syscall), SC(exit),
	SC(exit_group),
	/* Small facts about the process and the host. */
	SC(getrandom), SC(uname), SC(getuid), SC(geteuid), SC(getgid), SC(getegid),
	SC(getrlimit), SC(prlimit64), SC(sysinfo), SC(membarrier),
#ifdef SANDBOX_SANITIZERS
	SC(ptrace), SC(wait4), SC(waitid), SC(getdents), /* the leak scan's tracer */
#endif
};

/* Named in the report only: calls the filter refuses. */
static const struct sc forbidden[] = {
	SC(execve), SC(execveat), SC(fork), SC(vfork), SC(clone), SC(clone3), SC(ioctl),
	SC(socket), SC(prctl), SC(kill), SC(tgkill), SC(tkill), SC(ptrace), SC(wait4),
	SC(waitid), SC(mount), SC(umount2), SC(pivot_root), SC(chroot), SC(chdir),
	SC(fchdir), SC(unshare), SC(setns), SC(kexec_load), SC(kexec_file_load), SC(bpf),
	SC(perf_event_open), SC(init_module), SC(finit_module), SC(delete_module),
	SC(process_vm_readv), SC(process_vm_writev), SC(keyctl), SC(add_key),
	SC(request_key), SC(personality), SC(setuid), SC(setgid), SC(setreuid),
	SC(setregid), SC(setresuid), SC(setresgid), SC(setgroups), SC(capset),
	SC(reboot), SC(swapon), SC(swapoff), SC(acct), SC(quotactl), SC(syslog),
	SC(userfaultfd), SC(memfd_create), SC(name_to_handle_at), SC(open_by_handle_at),
	SC(pidfd_open), SC(pidfd_getfd), SC(pidfd_send_signal), SC(link), SC(linkat),
	SC(chmod), SC(fchmodat), SC(chown), SC(fchown), SC(lchown), SC(fchownat),
	SC(truncate), SC(mknod), SC(mknodat), SC(setpriority), SC(sched_setaffinity),
	SC(sched_setscheduler), SC(ioperm), SC(iopl), SC(modify_ldt), SC(vhangup),
	SC(settimeofday), SC(clock_settime), SC(adjtimex), SC(sethostname),
	SC(setdomainname), SC(fanotify_init), SC(inotify_init1), SC(open_tree),
	SC(move_mount), SC(fsopen), SC(fsmount), SC(fsconfig), SC(fspick),
	SC(landlock_create_ruleset), SC(landlock_add_rule), SC(landlock_restrict_self),
	SC(seccomp), SC(io_uring_setup), SC(io_uring_register), SC(io_pgetevents), SC(io_setup), SC(io_submit), SC(sendfile),
	SC(splice), SC(tee), SC(vmsplice), SC(copy_file_range), SC(mlock), SC(mlockall),
	SC(munlock), SC(arch_prctl), SC(set_mempolicy), SC(mbind), SC(migrate_pages),
	SC(move_pages), SC(kcmp), SC(lookup_dcookie), SC(getrusage), SC(times),
	SC(getpriority), SC(sched_getparam), SC(sched_getscheduler), SC(getpgid),
	SC(setpgid), SC(getsid), SC(setsid), SC(rt_sigtimedwait), SC(rt_sigqueueinfo),
	SC(rt_tgsigqueueinfo), SC(rt_sigsuspend), SC(pause), SC(alarm), SC(setitimer),
	SC(getitimer), SC(timer_create), SC(futex_waitv), SC(get_robust_list), SC(getdents),
};

const char *sandbox_syscall_name(long nr)
{
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		if (allowed[i].nr == nr)
			return allowed[i].name;
	for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++)
		if (forbidden[i].nr == nr)
			return forbidden[i].name;
	return NULL;
}

/* ---- the report: in a signal handler, so write(2) and no stdio ---- */

static char *put_str(char *p, char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_num(char *p, char *end, unsigned long v)
{
	char digits[24];
	size_t n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0 && p < end)
		*p++ = digits[--n];
	return p;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[256], *p = line, *end = line + sizeof(line) - 1;
	char comm[17] = "";
	const char *name = NULL;
	long nr = si->si_syscall;

	(void)sig;
	(void)uc;
	if (si->si_arch == AUDIT_ARCH_X86_64 && !(nr & __X32_SYSCALL_BIT))
		name = sandbox_syscall_name(nr);
	syscall(__NR_prctl, PR_GET_NAME, comm, 0, 0, 0);
	comm[16] = '\0';
	p = put_str(p, end, "\ntermvisor: sandbox: forbidden system call ");
	if (si->si_arch != AUDIT_ARCH_X86_64)
		p = put_str(p, end, "of another architecture ");
	else if (nr & __X32_SYSCALL_BIT)
		p = put_str(p, end, "of the x32 ABI ");
	p = put_str(p, end, name ? name : "number");
	p = put_str(p, end, " (");
	p = put_num(p, end, (unsigned long)nr);
	p = put_str(p, end, ") in thread ");
	p = put_num(p, end, (unsigned long)syscall(__NR_gettid));
	p = put_str(p, end, " (");
	p = put_str(p, end, comm);
	p = put_str(p, end, "); the VM process ends\n");
	(void)!write(2, line, (size_t)(p - line));
	/* Straight to the kernel: no exit handlers run in a signal handler. */
	syscall(__NR_exit_group, SANDBOX_EXIT_STATUS);
}

/* ---- the filter ---- */

#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))

struct prog {
	struct sock_filter *f;
	size_t n, cap;
};

static void emit(struct prog *p, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 256;
		p->f = xrealloc(p->f, p->cap * sizeof(*p->f));
	}
	p->f[p->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

#define LD_NR(p) emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0)
#define RET(p, v) emit(p, BPF_RET | BPF_K, (v), 0, 0)
#define ALLOW SECCOMP_RET_ALLOW
#define TRAP SECCOMP_RET_TRAP

/* if (A == nr) return ALLOW */
static void allow_nr(struct prog *p, int nr)
{
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	RET(p, ALLOW);
}

/* A system call allowed only for some values of one argument (its low 32
 * bits): if (A == nr) { A = arg; allow when A is one of vals, or when
 * (A & mask) == eq with a mask; else trap }. Other calls skip the block with
 * A (the number) unchanged. */
static void allow_arg(struct prog *p, int nr, unsigned arg, const uint32_t *vals, size_t n,
		      uint32_t mask, uint32_t eq)
{
	size_t len = 1 + 2 * n + (mask ? 3 : 0) + 1; /* load, tests, trap */

	emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, (uint8_t)len);
	emit(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)ARG_LO(arg), 0, 0);
	for (size_t i = 0; i < n; i++) {
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, vals[i], 0, 1);
		RET(p, ALLOW);
	}
	if (mask) {
		emit(p, BPF_ALU | BPF_AND | BPF_K, mask, 0, 0);
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, eq, 0, 1);
		RET(p, ALLOW);
	}
	RET(p, TRAP);
}

static void build_filter(struct prog *p)
{
	static const uint32_t ioctls[] = {
		TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, FIONBIO, FIONREAD, FIOCLEX,
		FIONCLEX, TUNSETIFF, SIOCGIFINDEX, SIOCBRADDIF,
		TIOCOUTQ, /* SIOCOUTQ: what a paced console client has not read */
	};
	static const uint32_t families[] = {AF_UNIX, AF_INET, AF_INET6};
	static const uint32_t prctls[] = {
		PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_DUMPABLE,
#ifdef SANDBOX_SANITIZERS
		PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_PDEATHSIG,
#endif
	};
	const uint32_t self[] = {(uint32_t)getpid()};

	/* Only the x86-64 ABI: another architecture's numbers mean other calls. */
	emit(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	RET(p, TRAP);
	LD_NR(p);
	/* x32 calls share the architecture with their own numbers. */
	emit(p, BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
	RET(p, TRAP);
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		allow_nr(p, allowed[i].nr);
	/* A new io_uring ring, or a change to one, would be a way around this
	 * filter (a ring's operations are not system calls): refused with EPERM,
	 * so that a disk set up later falls back to its I/O threads. */
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1);
	RET(p, SECCOMP_RET_ERRNO | EPERM);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 1);
	RET(p, SECCOMP_RET_ERRNO | EPERM);
	/* clone3 hides its flags in memory the filter cannot read: ENOSYS makes
	 * the C library fall back to clone. */
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	RET(p, SECCOMP_RET_ERRNO | ENOSYS);
	/* clone for threads only: no new process. */
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
	emit(p, BPF_LD | BPF_W | BPF_ABS, (uint32_t)ARG_LO(0), 0, 0);
#ifdef SANDBOX_SANITIZERS
	emit(p, BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD | CLONE_VM, 0, 1);
#else
	emit(p, BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
#endif
	RET(p, ALLOW);
	RET(p, TRAP);
	/* ioctl: KVM's (type 0xAE), the terminal's, a tap device's. */
	allow_arg(p, __NR_ioctl, 1, ioctls, ARRAY_SIZE(ioctls), 0xff00, 0xae00);
	allow_arg(p, __NR_socket, 0, families, ARRAY_SIZE(families), 0, 0);
	allow_arg(p, __NR_prctl, 0, prctls, ARRAY_SIZE(prctls), 0, 0);
	/* Signals to this process only (pthread_kill, raise, abort). */
	allow_arg(p, __NR_tgkill, 0, self, 1, 0, 0);
	allow_arg(p, __NR_kill, 0, self, 1, 0, 0);
	RET(p, TRAP);
}

/* ---- Landlock ---- */

static uint64_t landlock_handled(int abi)
{
	uint64_t h = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		     LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		     LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		     LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		     LANDLOCK_ACCESS_FS_MAKE_SYM;

	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return h;
}

static uint64_t rule_access(enum sandbox_access a, bool dir, uint64_t handled)
{
	uint64_t r = LANDLOCK_ACCESS_FS_READ_FILE;

	if (dir)
		r |= LANDLOCK_ACCESS_FS_READ_DIR;
	if (a == SANDBOX_READ_WRITE) {
		r |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
		if (dir)
			r |= LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
			     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
			     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |
			     LANDLOCK_ACCESS_FS_REFER;
	}
	return r & handled;
}

/* Returns the ABI in force, 0 when the kernel has no Landlock, -1 on error. */
static int landlock_apply(const struct sandbox *s, struct tv_err *err)
{
	struct landlock_ruleset_attr attr = {0};
	int abi = (int)syscall(__NR_landlock_create_ruleset, NULL, 0,
			       LANDLOCK_CREATE_RULESET_VERSION);
	int rs;

	if (abi < 0) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			return 0;
		return tv_errno(err, "Landlock");
	}
	attr.handled_access_fs = landlock_handled(abi);
	rs = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return tv_errno(err, "Landlock: cannot create a rule set");
	for (size_t i = 0; i < s->nallow; i++) {
		struct landlock_path_beneath_attr pb = {0};
		struct stat st;
		/* O_PATH follows symbolic links: the rule is on what they name. */
		int fd = open(s->allow[i].path, O_PATH | O_CLOEXEC);

		if (fd < 0)
			continue; /* nothing there to allow */
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		pb.parent_fd = fd;
		pb.allowed_access = rule_access(s->allow[i].access, S_ISDIR(st.st_mode),
						attr.handled_access_fs);
		if (syscall(__NR_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
			tv_errno(err, "Landlock: %s", s->allow[i].path);
			close(fd);
			close(rs);
			return -1;
		}
		close(fd);
	}
	if (syscall(__NR_landlock_restrict_self, rs, 0) < 0) {
		tv_errno(err, "Landlock: cannot restrict the process");
		close(rs);
		return -1;
	}
	close(rs);
	return abi;
}

void sandbox_allow(struct sandbox *s, const char *path, enum sandbox_access access)
{
	if (path == NULL || *path == '\0')
		return;
	if (s->nallow == SANDBOX_MAX_PATHS) {
		s->nallow++; /* reported by sandbox_install */
		return;
	}
	if (s->nallow > SANDBOX_MAX_PATHS)
		return;
	s->allow[s->nallow].path = xstrdup(path);
	s->allow[s->nallow].access = access;
	s->nallow++;
}

void sandbox_free(struct sandbox *s)
{
	for (size_t i = 0; i < MIN(s->nallow, (size_t)SANDBOX_MAX_PATHS); i++)
		free(s->allow[i].path);
	s->nallow = 0;
}

int sandbox_install(const struct sandbox *s, char *note, size_t notelen, struct tv_err *err)
{
	struct sigaction sa = {0};
	struct prog p = {0};
	struct sock_fprog fprog;
	sigset_t sys;
	int abi;
	long rc;

	if (s->nallow > SANDBOX_MAX_PATHS)
		return tv_errf(err, "sandbox: more than %d paths to allow", SANDBOX_MAX_PATHS);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return tv_errno(err, "sandbox: SIGSYS");
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return tv_errno(err, "sandbox: no_new_privs");
	abi = landlock_apply(s, err);
	if (abi < 0)
		return -1;
	build_filter(&p);
	fprog.len = (unsigned short)p.n;
	fprog.filter = p.f;
	rc = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
	free(p.f);
	if (rc != 0) {
		if (rc > 0)
			return tv_errf(err, "sandbox: thread %ld cannot take the system call filter",
				       rc);
		return tv_errno(err, "sandbox: cannot install the system call filter");
	}
	if (abi > 0)
		snprintf(note, notelen,
			 "sandbox on: system call filter, Landlock (ABI %d) limits files to the "
			 "VM's own", abi);
	else
		snprintf(note, notelen,
			 "sandbox on: system call filter; this kernel has no Landlock, so file "
			 "access is not limited");
	return 0;
}
