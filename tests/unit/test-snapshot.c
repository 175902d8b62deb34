/* Machine snapshots, engine side (vm/snapshot.h): the state file parser on
 * any host; on /dev/kvm the snap guest (tests/guests/snap.c) rolled back
 * with 1, 2 and 4 vCPUs, restored into a VM never started, and refusals
 * (another vCPU count or memory size, damaged files) that leave the VM
 * running. Guest memory is copied by the test itself where the memory image
 * is not part of what a test checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/unit/guest-console.h"
#include "vm/block/block.h"
#include "vm/dev/virtio-pci.h"
#include "vm/snapshot.h"
#include "vm/snapstate.h"
#include "vm/vm.h"

#define GUEST_MEM (32u << 20)

/* ---- helpers ---- */

static char *tmpdir(void)
{
	char *d = xstrdup("/tmp/tv-snap-test.XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void rmdir_all(char *d)
{
	char *cmd = xasprintf("rm -rf '%s'", d);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(d);
}

static char *path_in(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static int need_kvm(void)
{
	return access("/dev/kvm", R_OK | W_OK) == 0;
}

/* The counter lines "count N live L" of buf: checks that N rises by exactly
 * 1 from line to line; returns the last N (0 if none) and the live value of
 * each of the last lines in live[] (newest last). */
struct counts {
	uint64_t first, last;
	unsigned lines;
	unsigned live[8];
	bool consecutive;
	uint64_t broken_at;
};

static struct counts parse_counts(const char *buf)
{
	struct counts r = {.consecutive = true};
	const char *p = buf;

	while ((p = strstr(p, "count ")) != NULL) {
		unsigned long long n;
		unsigned live;
		if (sscanf(p, "count %llu live %u\n", &n, &live) == 2 && strchr(p, '\n')) {
			if (r.lines == 0)
				r.first = n;
			else if (n != r.last + 1 && r.consecutive) {
				r.consecutive = false;
				r.broken_at = n;
			}
			r.last = n;
			memmove(r.live, r.live + 1, sizeof(r.live) - sizeof(r.live[0]));
			r.live[7] = live;
			r.lines++;
		}
		p += 6;
	}
	return r;
}

static uint64_t last_count(struct capture *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = parse_counts(c->buf).last;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void wait_count(struct capture *c, struct vm *vm, uint64_t n)
{
	uint64_t t0 = monotonic_ns();

	while (last_count(c) < n) {
		if (vm_exit_reason(vm) != VM_EXIT_NONE)
			fail_msg("guest ended (%s) before count %" PRIu64 ": %s",
				 vm_exit_reason_name(vm_exit_reason(vm)), n, c->buf);
		if (monotonic_ns() - t0 > 60000000000ULL)
			fail_msg("count %" PRIu64 " not reached in 60 s: %s", n, c->buf);
		sleep_ms(5);
	}
}

static struct vm *snap_guest_disks(unsigned cpus, uint64_t memory, struct capture *c,
				   const struct vm_disk *disks, size_t ndisks)
{
	char *kernel = xasprintf("%s/tests/guests/snap.elf", TV_BUILDDIR);
	struct vm_config cfg = {
		.cpus = cpus,
		.memory = memory,
		.kernel = kernel,
		.console = {.output = capture_out, .ctx = c},
		.debug_exit = true,
		.disks = disks,
		.ndisks = ndisks,
		.verbose = getenv("TV_VERBOSE") != NULL, /* the engine's timings */
	};
	struct tv_err err;
	struct vm *vm = NULL;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	if (vm_new(&vm, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	free(kernel);
	return vm;
}

static struct vm *snap_guest(unsigned cpus, uint64_t memory, struct capture *c)
{
	return snap_guest_disks(cpus, memory, c, NULL, 0);
}

/* A snap guest running, its counter at least at count. */
static struct vm *started(unsigned cpus, uint64_t memory, struct capture *c, uint64_t count)
{
	struct tv_err err;
	struct vm *vm = snap_guest(cpus, memory, c);

	if (vm_start(vm, &err) < 0)
		fail_msg("%s", err.msg);
	wait_count(c, vm, count);
	return vm;
}

/* Guest RAM below 3 GiB (all of it at these sizes). */
static uint8_t *mem_copy(struct vm *vm)
{
	uint64_t size = vm_config(vm)->memory;
	uint8_t *buf = xmalloc(size);

	assert_int_equal(gmem_read(vm_mem(vm), 0, buf, size), 0);
	return buf;
}

static void mem_put(struct vm *vm, const uint8_t *buf)
{
	assert_int_equal(gmem_write(vm_mem(vm), 0, buf, vm_config(vm)->memory), 0);
}

/* A snapshot of a running snap guest: memory copied by the test, the state
 * file by the engine, and the console output up to that moment. */
struct saved {
	char *dir;
	uint8_t *mem;
	char out[65536];
	size_t out_len;
	uint64_t count;
};

static void save(struct vm *vm, struct capture *c, struct saved *s)
{
	struct tv_err err;
	uint64_t bytes = 0, t0;

	s->dir = tmpdir();
	assert_int_equal(vm_pause(vm, &err), 0);
	s->mem = mem_copy(vm);
	t0 = monotonic_ns();
	if (vm_snapshot_save_state(vm, s->dir, &bytes, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("state file: %" PRIu64 " bytes, written in %.2f ms (%u vCPUs)\n", bytes,
		      (monotonic_ns() - t0) / 1e6, vm_ncpus(vm));
	assert_true(vm_paused(vm)); /* it was paused: it stays so */
	pthread_mutex_lock(&c->lock);
	memcpy(s->out, c->buf, c->len + 1);
	s->out_len = c->len;
	pthread_mutex_unlock(&c->lock);
	s->count = parse_counts(s->out).last;
	assert_int_equal(vm_resume(vm, &err), 0);
}

static void saved_free(struct saved *s)
{
	free(s->mem);
	rmdir_all(s->dir);
}

/* Memory and state back as saved, the output back to what it was then. */
static void restore(struct vm *vm, struct capture *c, struct saved *s)
{
	struct tv_err err;
	uint64_t t0;

	assert_int_equal(vm_pause(vm, &err), 0);
	mem_put(vm, s->mem);
	t0 = monotonic_ns();
	if (vm_snapshot_load_state(vm, s->dir, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("state restored in %.2f ms\n", (monotonic_ns() - t0) / 1e6);
	pthread_mutex_lock(&c->lock);
	memcpy(c->buf, s->out, s->out_len + 1);
	c->len = s->out_len;
	pthread_mutex_unlock(&c->lock);
	assert_int_equal(vm_resume(vm, &err), 0);
}

/* The output since boot reads as one run: every count once, in order, up to
 * at least until; the last lines show every vCPU's timer ticking. */
static void assert_continues(struct capture *c, struct vm *vm, uint64_t until, unsigned cpus)
{
	struct counts r;

	wait_count(c, vm, until);
	pthread_mutex_lock(&c->lock);
	r = parse_counts(c->buf);
	pthread_mutex_unlock(&c->lock);
	if (!r.consecutive)
		fail_msg("the counter jumped at %" PRIu64 ": %s", r.broken_at, c->buf);
	assert_int_equal(r.first, 1);
	for (unsigned i = 5; i < 8; i++)
		if (r.live[i] != cpus)
			fail_msg("count %" PRIu64 ": %u of %u vCPU timers ticked: %s", r.last - 7 + i,
				 r.live[i], cpus, c->buf);
}

/* ---- the state file, on any host ---- */

/* A well-formed state file for 2 vCPUs and 2 devices, made by the writer. */
static struct snap_writer sample(void)
{
	struct vm_snapshot_info info = {.cpus = 2, .memory = 64 << 20, .ndevices = 2, .ndisks = 1,
					.taken_ns = 123, .guest_ns = 456};
	struct snap_writer w;
	uint8_t zero[8192] = {0};
	uint8_t msrs[8 + 32] = {2};

	snapw_init(&w);
	for (uint32_t cpu = 0; cpu < 2; cpu++)
		for (uint32_t t = SNAP_P_MP_STATE; t <= SNAP_P_EVENTS; t++) {
			uint32_t len = t == SNAP_P_XSAVE ? 4096 : 0;
			switch (t) {
			case SNAP_P_MP_STATE: len = sizeof(struct kvm_mp_state); break;
			case SNAP_P_REGS: len = sizeof(struct kvm_regs); break;
			case SNAP_P_SREGS: len = sizeof(struct kvm_sregs); break;
			case SNAP_P_XCRS: len = sizeof(struct kvm_xcrs); break;
			case SNAP_P_DEBUGREGS: len = sizeof(struct kvm_debugregs); break;
			case SNAP_P_LAPIC: len = sizeof(struct kvm_lapic_state); break;
			case SNAP_P_TSC_KHZ: len = 8; break;
			case SNAP_P_EVENTS: len = sizeof(struct kvm_vcpu_events); break;
			}
			if (t == SNAP_P_MSRS)
				snapw_part(&w, t, cpu, msrs, sizeof(msrs));
			else
				snapw_part(&w, t, cpu, zero, len);
		}
	snapw_part(&w, SNAP_P_PIT2, 0, zero, sizeof(struct kvm_pit_state2));
	snapw_part(&w, SNAP_P_CLOCK, 0, zero, sizeof(struct kvm_clock_data));
	for (uint32_t chip = 0; chip < 3; chip++) {
		struct kvm_irqchip ic;
		memset(&ic, 0, sizeof(ic));
		ic.chip_id = chip;
		snapw_part(&w, SNAP_P_IRQCHIP, chip, &ic, sizeof(ic));
	}
	{
		struct kvm_cpuid_entry2 leaf0 = {.function = 0, .eax = 0xd};
		snapw_part(&w, SNAP_P_CPUID, 0, &leaf0, sizeof(leaf0));
	}
	snapw_device(&w, 0, "serial0", "abcd", 4);
	snapw_device(&w, 1, "debug-exit", NULL, 0);
	snapw_finish(&w, &info);
	return w;
}

static int write_state(const char *dir, const void *buf, size_t len)
{
	char *p = path_in(dir, VM_SNAPSHOT_STATE);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	free(p);
	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, buf, len), 0);
	close(fd);
	return 0;
}

/* What a state file of this exact content gives vm_snapshot_read_info. */
static int info_of(const char *dir, const void *buf, size_t len, struct vm_snapshot_info *info,
		   struct tv_err *err)
{
	write_state(dir, buf, len);
	return vm_snapshot_read_info(dir, info, err);
}

static void assert_has(const char *msg, const char *a, const char *b)
{
	if (strstr(msg, a) == NULL || (b != NULL && strstr(msg, b) == NULL))
		fail_msg("expected \"%s\"%s%s in: %s", a, b ? " and " : "", b ? b : "", msg);
}

static void test_state_file(void **state)
{
	struct snap_writer w = sample();
	struct vm_snapshot_info info;
	struct tv_err err;
	char *dir = tmpdir();
	uint8_t *bad = xmalloc(w.len);

	(void)state;
	/* The sample reads back whole. */
	if (info_of(dir, w.buf, w.len, &info, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(info.version, SNAP_VERSION);
	assert_int_equal(info.cpus, 2);
	assert_int_equal(info.memory, 64 << 20);
	assert_int_equal(info.ndevices, 2);
	assert_int_equal(info.ndisks, 1);
	assert_int_equal(info.taken_ns, 123);
	assert_int_equal(info.guest_ns, 456);

	/* Any one flipped byte is refused, naming the file. */
	for (size_t off = 0; off < w.len; off += 1 + off / 7) {
		memcpy(bad, w.buf, w.len);
		bad[off] ^= 0x20;
		if (info_of(dir, bad, w.len, &info, &err) == 0)
			fail_msg("a flipped byte at offset %zu went unnoticed", off);
		assert_has(err.msg, "/state: ", NULL);
	}
	/* A flip inside a part's payload: that part's checksum, named. */
	memcpy(bad, w.buf, w.len);
	bad[SNAP_HDR_SIZE + SNAP_PART_HDR_SIZE + 4 + SNAP_PART_HDR_SIZE + 10] ^= 1;
	assert_int_equal(info_of(dir, bad, w.len, &info, &err), -1);
	assert_has(err.msg, "vCPU 0 REGS", "crc32");
	/* In the header: the header's checksum. */
	memcpy(bad, w.buf, w.len);
	bad[17] ^= 1;
	assert_int_equal(info_of(dir, bad, w.len, &info, &err), -1);
	assert_has(err.msg, "header field crc32", NULL);

	/* Truncated anywhere. */
	for (size_t len = 0; len < w.len; len += 1 + len / 5) {
		if (info_of(dir, w.buf, len, &info, &err) == 0)
			fail_msg("a file cut to %zu of %zu bytes was accepted", len, w.len);
		assert_has(err.msg, "/state: ", NULL);
	}
	assert_int_equal(info_of(dir, w.buf, w.len - 5, &info, &err), -1);
	assert_has(err.msg, "truncated", NULL);
	/* Bytes after END. */
	memcpy(bad, w.buf, w.len);
	{
		uint8_t *longer = xmalloc(w.len + 1);
		memcpy(longer, w.buf, w.len);
		longer[w.len] = 0;
		assert_int_equal(info_of(dir, longer, w.len + 1, &info, &err), -1);
		assert_has(err.msg, "after END", NULL);
		free(longer);
	}

	/* A newer version: refused as such, before any checksum. */
	memcpy(bad, w.buf, w.len);
	bad[8] = SNAP_VERSION + 1;
	assert_int_equal(info_of(dir, bad, w.len, &info, &err), -1);
	assert_has(err.msg, "field version", "newer");

	/* No file at all, and a directory in its place. */
	{
		char *p = path_in(dir, VM_SNAPSHOT_STATE);
		unlink(p);
		assert_int_equal(vm_snapshot_read_info(dir, &info, &err), -1);
		assert_has(err.msg, "/state", NULL);
		assert_int_equal(mkdir(p, 0700), 0);
		assert_int_equal(vm_snapshot_read_info(dir, &info, &err), -1);
		assert_has(err.msg, "not a regular file", NULL);
		rmdir(p);
		free(p);
	}
	free(bad);
	snapw_free(&w);
	rmdir_all(dir);
}

/* Writing a part with a hostile count (MSRs) or a device with a bad name:
 * refused with the field named. */
static void test_state_fields(void **state)
{
	struct snap_writer w = sample();
	struct vm_snapshot_info info;
	struct tv_err err;
	char *dir = tmpdir();
	uint8_t *p;
	size_t off = SNAP_HDR_SIZE;

	(void)state;
	/* Walk to vCPU 0's MSRS part and claim 1000 MSRs in 40 bytes. */
	for (int i = 0; i < SNAP_P_MSRS - 1; i++) {
		uint32_t len;
		memcpy(&len, w.buf + off + 8, 4);
		off += SNAP_PART_HDR_SIZE + len;
	}
	p = w.buf + off;
	memcpy(p + SNAP_PART_HDR_SIZE, &(uint32_t){1000}, 4);
	{
		/* Reseal the part so only the field is wrong. */
		uint32_t len, crc;
		memcpy(&len, p + 8, 4);
		crc = snap_crc32(snap_crc32(0, p, 12), p + SNAP_PART_HDR_SIZE, len);
		memcpy(p + 12, &crc, 4);
	}
	assert_int_equal(info_of(dir, w.buf, w.len, &info, &err), -1);
	assert_has(err.msg, "vCPU 0 MSRS", "does not hold 1000 MSRs");
	snapw_free(&w);
	rmdir_all(dir);
}

/* ---- on /dev/kvm ---- */

static void rollback(unsigned cpus)
{
	struct capture c;
	struct saved s;
	struct vm *vm;

	if (!need_kvm())
		skip();
	vm = started(cpus, GUEST_MEM, &c, 5);
	save(vm, &c, &s);
	assert_true(s.count >= 5);
	/* It runs on, well past the snapshot. */
	wait_count(&c, vm, s.count + 15);
	restore(vm, &c, &s);
	/* From the snapshot's counter on: one run, no jump back or forward. */
	assert_continues(&c, vm, s.count + 15, cpus);
	/* A second rollback to the same snapshot works as well. */
	restore(vm, &c, &s);
	assert_continues(&c, vm, s.count + 10, cpus);
	assert_int_equal(vm_exit_reason(vm), VM_EXIT_NONE);
	vm_free(vm);
	saved_free(&s);
}

static void test_rollback_1(void **state)
{
	(void)state;
	rollback(1);
}

static void test_rollback_2(void **state)
{
	(void)state;
	rollback(2);
}

static void test_rollback_4(void **state)
{
	(void)state;
	rollback(4);
}

/* A VM built by vm_new and never started, given the snapshot: its vCPUs
 * start where the snapshot's were (not at the boot entry), every AP too. */
static void test_restore_unstarted(void **state)
{
	struct capture c, c2;
	struct saved s;
	struct tv_err err;
	struct vm *vm, *vm2;
	const unsigned cpus = 2;

	(void)state;
	if (!need_kvm())
		skip();
	vm = started(cpus, GUEST_MEM, &c, 5);
	save(vm, &c, &s);
	vm_free(vm);

	vm2 = snap_guest(cpus, GUEST_MEM, &c2);
	mem_put(vm2, s.mem);
	if (vm_snapshot_load_state(vm2, s.dir, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(vm_paused(vm2)); /* not paused before: not paused after */
	memcpy(c2.buf, s.out, s.out_len + 1);
	c2.len = s.out_len;
	assert_int_equal(vm_start(vm2, &err), 0);
	assert_continues(&c2, vm2, s.count + 15, cpus);
	/* No second boot: the banner is there once, from before the snapshot. */
	assert_true(strstr(strstr(c2.buf, "cpus up") + 1, "cpus up") == NULL);
	vm_free(vm2);
	saved_free(&s);
}

/* The VM is still running, unharmed, after a refused restore. */
static void assert_still_runs(struct vm *vm, struct capture *c)
{
	uint64_t n = last_count(c);

	assert_int_equal(vm_exit_reason(vm), VM_EXIT_NONE);
	assert_false(vm_paused(vm));
	wait_count(c, vm, n + 3);
	pthread_mutex_lock(&c->lock);
	assert_true(parse_counts(c->buf).consecutive);
	pthread_mutex_unlock(&c->lock);
}

/* A running VM of another shape refuses the snapshot in dir and runs on. */
static char *new_disk(const char *dir, const char *name, const char *fmt);

static void refused_by_other(unsigned cpus, uint64_t memory, const struct vm_disk *disks,
			     size_t ndisks, const char *dir, const char *msg1, const char *msg2)
{
	struct capture c;
	struct tv_err err;
	struct vm *vm = snap_guest_disks(cpus, memory, &c, disks, ndisks);

	assert_int_equal(vm_start(vm, &err), 0);
	wait_count(&c, vm, 2);
	assert_int_equal(vm_snapshot_load_state(vm, dir, &err), -1);
	assert_has(err.msg, msg1, msg2);
	assert_still_runs(vm, &c);
	vm_free(vm);
}

/* Restores that must be refused: another vCPU count, memory size or device list,
 * damaged or newer files. Each names the file and the field; the VM keeps
 * running as if nothing was asked. */
/* The part of this type (a device: of this name) in a state file. */
static uint8_t *part_of(uint8_t *buf, size_t len, uint32_t type, const char *dev)
{
	size_t off = SNAP_HDR_SIZE;
	uint32_t l;

	while (off + SNAP_PART_HDR_SIZE <= len) {
		uint8_t *p = buf + off;
		memcpy(&l, p + 8, 4);
		if (p[0] == type &&
		    (dev == NULL ||
		     memcmp(p + SNAP_PART_HDR_SIZE + SNAP_DEV_HDR_SIZE, dev, strlen(dev)) == 0))
			return p;
		off += SNAP_PART_HDR_SIZE + l;
	}
	fail_msg("no part of type %" PRIu32 " in the state file", type);
	abort(); /* fail_msg does not return */
}

/* A part's checksum made good again after its payload was changed. */
static void part_recrc(uint8_t *p)
{
	uint32_t l, crc;

	memcpy(&l, p + 8, 4);
	crc = snap_crc32(snap_crc32(0, p, 12), p + SNAP_PART_HDR_SIZE, l);
	memcpy(p + 12, &crc, 4);
}

static void test_refused(void **state)
{
	struct capture c;
	struct saved s;
	struct tv_err err;
	struct vm *vm;
	char *st;
	uint8_t *buf;
	size_t len;
	int fd;
	struct stat sb;

	(void)state;
	if (!need_kvm())
		skip();
	vm = started(2, GUEST_MEM, &c, 3);
	save(vm, &c, &s);

	refused_by_other(1, GUEST_MEM, NULL, 0, s.dir, "/state: field cpus 2", "this VM has 1");
	refused_by_other(2, 2 * GUEST_MEM, NULL, 0, s.dir, "/state: field memory 32M",
			 "this VM has 64M");
	/* Same vCPUs and memory, one device more (a disk's virtio-blk): refused
	 * by the device list, naming the device or the count. */
	{
		char *d0 = new_disk(s.dir, "other.qcow2", "qcow2");
		struct vm_disk disk = {.path = d0, .format = "qcow2"};

		refused_by_other(2, GUEST_MEM, &disk, 1, s.dir, "/state: ", "this VM has");
		free(d0);
	}

	/* Damaged files, into the VM they came from. */
	st = path_in(s.dir, VM_SNAPSHOT_STATE);
	assert_int_equal(stat(st, &sb), 0);
	len = (size_t)sb.st_size;
	buf = xmalloc(len);
	fd = open(st, O_RDONLY);
	assert_int_equal(read_full(fd, buf, len), 0);
	close(fd);
	/* A flipped byte in vCPU 1's LAPIC (mid-file). */
	{
		uint8_t *bad = xmalloc(len);
		size_t off = SNAP_HDR_SIZE;
		memcpy(bad, buf, len);
		for (int i = 0; i < SNAP_VCPU_PARTS + SNAP_P_LAPIC - 1; i++) {
			uint32_t l;
			memcpy(&l, bad + off + 8, 4);
			off += SNAP_PART_HDR_SIZE + l;
		}
		bad[off + SNAP_PART_HDR_SIZE + 0x80] ^= 0x40;
		write_state(s.dir, bad, len);
		assert_int_equal(vm_snapshot_load_state(vm, s.dir, &err), -1);
		assert_has(err.msg, "/state: vCPU 1 LAPIC", "checksum");
		assert_still_runs(vm, &c);
		/* Truncated. */
		write_state(s.dir, buf, len - 100);
		assert_int_equal(vm_snapshot_load_state(vm, s.dir, &err), -1);
		assert_has(err.msg, "/state: ", "truncated");
		assert_still_runs(vm, &c);
		/* Newer. */
		memcpy(bad, buf, len);
		bad[8] = SNAP_VERSION + 1;
		write_state(s.dir, bad, len);
		assert_int_equal(vm_snapshot_load_state(vm, s.dir, &err), -1);
		assert_has(err.msg, "/state: field version", "newer");
		assert_still_runs(vm, &c);
		free(bad);
	}
	/* A device state that passes its checksum but not its device's check
	 * (the UART's receive queue head out of range): refused before anything
	 * changed, naming the device. */
	{
		uint8_t *bad = xmalloc(len);
		uint8_t *p;
		memcpy(bad, buf, len);
		p = part_of(bad, len, SNAP_P_DEVICE, "serial0");
		/* struct serial_state: 12 bytes of registers, then rx_head. */
		p[SNAP_PART_HDR_SIZE + SNAP_DEV_HDR_SIZE + 7 + 12] = 0xff;
		p[SNAP_PART_HDR_SIZE + SNAP_DEV_HDR_SIZE + 7 + 13] = 0xff;
		part_recrc(p);
		write_state(s.dir, bad, len);
		assert_int_equal(vm_snapshot_load_state(vm, s.dir, &err), -1);
		assert_has(err.msg, "/state: device 0: serial0", "receive queue out of range");
		assert_still_runs(vm, &c);
		free(bad);
	}
	/* A snapshot taken where the CPU said something else (the vendor
	 * string of leaf 0 changed, checksums intact): refused, naming the
	 * leaf and register, before anything changed. */
	{
		uint8_t *bad = xmalloc(len);
		uint8_t *p;
		uint32_t ebx;
		struct kvm_cpuid_entry2 e;
		memcpy(bad, buf, len);
		p = part_of(bad, len, SNAP_P_CPUID, NULL);
		memcpy(&e, p + SNAP_PART_HDR_SIZE, sizeof(e));
		assert_int_equal(e.function, 0); /* KVM lists leaf 0 first */
		ebx = e.ebx ^ 0x20202020;
		memcpy(p + SNAP_PART_HDR_SIZE + offsetof(struct kvm_cpuid_entry2, ebx), &ebx, 4);
		part_recrc(p);
		write_state(s.dir, bad, len);
		assert_int_equal(vm_snapshot_load_state(vm, s.dir, &err), -1);
		assert_has(err.msg, "/state: CPUID leaf 0x0.0 EBX", "another CPU or kernel");
		assert_still_runs(vm, &c);
		free(bad);
	}
	/* Put back whole, it restores. */
	write_state(s.dir, buf, len);
	restore(vm, &c, &s);
	assert_continues(&c, vm, s.count + 8, 2);
	free(buf);
	free(st);
	vm_free(vm);
	saved_free(&s);
}

/* The header of a state file taken from a real VM. */
static void test_read_info_real(void **state)
{
	struct capture c;
	struct saved s;
	struct tv_err err;
	struct vm_snapshot_info info;
	struct vm *vm;

	(void)state;
	if (!need_kvm())
		skip();
	vm = started(4, GUEST_MEM, &c, 2);
	save(vm, &c, &s);
	if (vm_snapshot_read_info(s.dir, &info, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(info.cpus, 4);
	assert_int_equal(info.memory, GUEST_MEM);
	assert_true(info.ndevices >= 5);
	assert_int_equal(info.ndisks, 0);
	assert_true(info.guest_ns > 0);
	vm_free(vm);
	saved_free(&s);
}

/* A guest halted in the kernel (waiting for a UART interrupt, no exits to
 * userspace): saving and restoring its state neither hangs nor loses the
 * interrupt path, and the restored guest reads the next line typed. */
static void test_idle_guest(void **state)
{
	char *kernel = xasprintf("%s/tests/guests/serial.elf", TV_BUILDDIR);
	struct capture c;
	struct vm_config cfg = {
		.cpus = 1, .memory = GUEST_MEM, .kernel = kernel,
		.console = {.output = capture_out, .ctx = &c}, .debug_exit = true};
	struct tv_err err;
	struct vm *vm;
	char *dir = tmpdir();
	uint64_t t0;

	(void)state;
	if (!need_kvm()) {
		free(kernel);
		rmdir_all(dir);
		skip();
	}
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	if (vm_new(&vm, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(vm_start(vm, &err), 0);
	console_input(vm, CONSOLE_SERIAL, "first\n", 6);
	while (!captured(&c, "echo (polled): FIRST"))
		sleep_ms(5);
	sleep_ms(300); /* into its interrupt wait: sti; hlt */
	alarm(120);    /* a hang is a failure, not a stuck test run */
	t0 = monotonic_ns();
	if (vm_snapshot_save_state(vm, dir, NULL, &err) < 0 ||
	    vm_snapshot_load_state(vm, dir, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("idle guest: save and restore %.1f ms\n", (monotonic_ns() - t0) / 1e6);
	alarm(0);
	console_input(vm, CONSOLE_SERIAL, "second\nquit\n", 12);
	assert_int_equal(vm_wait(vm), VM_EXIT_DEBUG);
	assert_int_equal(vm_exit_code(vm), 0);
	assert_true(captured(&c, "echo (interrupt): SECOND"));
	vm_free(vm);
	free(kernel);
	rmdir_all(dir);
}

/* ---- disks ---- */

static char *new_disk(const char *dir, const char *name, const char *fmt)
{
	char *p = path_in(dir, name);
	struct tv_err err;

	if (blk_create(p, fmt, 4 << 20, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	return p;
}

static bool has_snapshot(struct blk *b, const char *tag)
{
	struct blk_snapshot *l;
	struct tv_err err;
	bool found = false;
	int n;

	if (blk_snapshot_list(b, &l, &n, &err) < 0)
		fail_msg("%s", err.msg);
	for (int i = 0; i < n; i++)
		found |= strcmp(l[i].name, tag) == 0;
	blk_snapshot_list_free(l, n);
	return found;
}

static void fill(struct blk *b, uint8_t v)
{
	uint8_t buf[8192];
	struct tv_err err;

	memset(buf, v, sizeof(buf));
	if (blk_pwrite(b, buf, sizeof(buf), 65536, &err) < 0)
		fail_msg("%s", err.msg);
}

static uint8_t first_byte(struct blk *b)
{
	uint8_t buf[8192];
	struct tv_err err;

	if (blk_pread(b, buf, sizeof(buf), 65536, &err) < 0)
		fail_msg("%s", err.msg);
	for (size_t i = 1; i < sizeof(buf); i++)
		assert_int_equal(buf[i], buf[0]);
	return buf[0];
}

/* ---- the whole snapshot: state, memory image, disks ---- */

/* vm_snapshot_take into a new directory under parent; the output so far
 * kept in s (memory stays the engine's business). */
static void take(struct vm *vm, struct capture *c, const char *parent, const char *name,
		 const char *tag, struct saved *s)
{
	struct vm_snapshot_stats st;
	struct tv_err err;
	uint64_t t0;

	memset(s, 0, sizeof(*s));
	s->dir = path_in(parent, name);
	assert_int_equal(mkdir(s->dir, 0700), 0);
	/* Paused around the take, so the output read below is the output at
	 * the take (a take on a running VM resumes it at once). */
	assert_int_equal(vm_pause(vm, &err), 0);
	t0 = monotonic_ns();
	if (vm_snapshot_take(vm, s->dir, tag, &st, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(vm_paused(vm));
	print_message("take: %.2f ms (vCPUs held %.2f ms), state %" PRIu64 " bytes, memory %" PRIu64
		      " pages (%s), %" PRIu64 " bytes on disk\n",
		      (monotonic_ns() - t0) / 1e6, st.pause_ns / 1e6, st.state_bytes,
		      st.mem.pages_written, st.mem.full ? "full" : "diff", st.mem.disk_bytes);
	assert_true(st.state_bytes > 0);
	pthread_mutex_lock(&c->lock);
	memcpy(s->out, c->buf, c->len + 1);
	s->out_len = c->len;
	pthread_mutex_unlock(&c->lock);
	s->count = parse_counts(s->out).last;
	assert_int_equal(vm_resume(vm, &err), 0);
}

static void roll_back(struct vm *vm, struct capture *c, const struct saved *s, const char *tag)
{
	struct tv_err err;
	bool was_paused = vm_paused(vm);
	uint64_t t0;

	assert_int_equal(vm_pause(vm, &err), 0);
	t0 = monotonic_ns();
	if (vm_snapshot_restore(vm, s->dir, tag, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("restore: %.2f ms\n", (monotonic_ns() - t0) / 1e6);
	assert_true(vm_paused(vm));
	pthread_mutex_lock(&c->lock);
	memcpy(c->buf, s->out, s->out_len + 1);
	c->len = s->out_len;
	pthread_mutex_unlock(&c->lock);
	if (!was_paused)
		assert_int_equal(vm_resume(vm, &err), 0);
}

/* A running 2-vCPU guest with a qcow2 disk: take (state, memory image,
 * disk snapshot), let it run on and write the disk, restore: the counter
 * goes on from the take's value with every timer ticking, the disk reads
 * as it did at the take, and the disk snapshot checks clean. Then the same
 * snapshot into a new VM that was never started. */
static void test_take_restore(void **state)
{
	char *dir = tmpdir(), *d0 = new_disk(dir, "d0.qcow2", "qcow2");
	struct vm_disk disk = {.path = d0, .format = "qcow2"};
	struct capture c, c2;
	struct saved s;
	struct tv_err err;
	struct vm *vm, *vm2;
	struct blk *b;
	const unsigned cpus = 2;

	(void)state;
	if (!need_kvm()) {
		free(d0);
		rmdir_all(dir);
		skip();
	}
	vm = snap_guest_disks(cpus, GUEST_MEM, &c, &disk, 1);
	assert_int_equal(vm_start(vm, &err), 0);
	wait_count(&c, vm, 5);
	fill(virtio_blk_disk(vm, 0), 0x31);
	take(vm, &c, dir, "s1", "s1", &s);
	assert_true(s.count >= 5);
	/* A second take of the same name is refused by the disk; nothing left. */
	{
		struct saved dup;
		char *st;
		dup.dir = path_in(dir, "dup");
		assert_int_equal(mkdir(dup.dir, 0700), 0);
		assert_int_equal(vm_snapshot_take(vm, dup.dir, "s1", NULL, &err), -1);
		assert_has(err.msg, "disk 0", "exists already");
		st = path_in(dup.dir, VM_SNAPSHOT_STATE);
		assert_int_equal(access(st, F_OK), -1);
		free(st);
		st = path_in(dup.dir, VM_SNAPSHOT_MEMORY);
		assert_int_equal(access(st, F_OK), -1);
		free(st);
		free(dup.dir);
	}
	fill(virtio_blk_disk(vm, 0), 0x32);
	wait_count(&c, vm, s.count + 15);
	if (vm_snapshot_check(vm, s.dir, "s1", &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(vm_snapshot_check(vm, s.dir, "nosuch", &err), -1);
	assert_has(err.msg, "disk 0", "no internal snapshot named 'nosuch'");
	roll_back(vm, &c, &s, "s1");
	assert_int_equal(first_byte(virtio_blk_disk(vm, 0)), 0x31);
	assert_continues(&c, vm, s.count + 15, cpus);
	vm_free(vm);

	/* Into a VM never started: it runs from the snapshot, not from boot. */
	vm2 = snap_guest_disks(cpus, GUEST_MEM, &c2, &disk, 1);
	roll_back(vm2, &c2, &s, "s1");
	assert_false(vm_paused(vm2));
	assert_int_equal(vm_start(vm2, &err), 0);
	assert_continues(&c2, vm2, s.count + 10, cpus);
	assert_true(strstr(strstr(c2.buf, "cpus up") + 1, "cpus up") == NULL);
	vm_free(vm2);
	assert_int_equal(blk_open(&b, d0, "qcow2", 0, &err), 0);
	assert_true(has_snapshot(b, "s1"));
	blk_close(b, NULL);
	free(s.dir);
	free(d0);
	rmdir_all(dir);
}
/* The internal snapshots of a running VM's disks: created on every disk,
 * renamed, applied (the data read afterwards is the snapshot's), deleted;
 * a create that fails on the second disk leaves none on the first. The
 * guest runs on throughout, and the images check clean afterwards. */
static void test_disk_snapshots(void **state)
{
	char *dir = tmpdir();
	char *d0 = new_disk(dir, "d0.qcow2", "qcow2"), *d1 = new_disk(dir, "d1.qcow2", "qcow2");
	struct vm_disk disks[2] = {{.path = d0, .format = "qcow2"}, {.path = d1, .format = "qcow2"}};
	struct blk_check_result cr;
	struct capture c;
	struct tv_err err;
	struct vm *vm;
	struct blk *b0, *b1;

	(void)state;
	if (!need_kvm()) {
		free(d0);
		free(d1);
		rmdir_all(dir);
		skip();
	}
	vm = snap_guest_disks(1, GUEST_MEM, &c, disks, 2);
	assert_int_equal(vm_start(vm, &err), 0);
	wait_count(&c, vm, 2);
	b0 = virtio_blk_disk(vm, 0);
	b1 = virtio_blk_disk(vm, 1);
	assert_non_null(b0);
	assert_non_null(b1);
	assert_null(virtio_blk_disk(vm, 2));
	fill(b0, 0x11);
	fill(b1, 0x21);
	if (vm_disk_snapshot(vm, VM_DISK_SNAP_CREATE, "one", NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(has_snapshot(b0, "one") && has_snapshot(b1, "one"));
	fill(b0, 0x12);
	fill(b1, 0x22);
	if (vm_disk_snapshot(vm, VM_DISK_SNAP_RENAME, "one", "two", &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(has_snapshot(b0, "two") && !has_snapshot(b0, "one") && has_snapshot(b1, "two"));
	if (vm_disk_snapshot(vm, VM_DISK_SNAP_APPLY, "two", NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(first_byte(b0), 0x11);
	assert_int_equal(first_byte(b1), 0x21);
	/* Unknown name: refused, naming the disk. */
	assert_int_equal(vm_disk_snapshot(vm, VM_DISK_SNAP_APPLY, "nope", NULL, &err), -1);
	assert_has(err.msg, "disk 0", "nope");
	/* Disk 1 alone has "dup": the create fails there and undoes disk 0. */
	if (blk_snapshot_create(b1, "dup", 0, 0, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(vm_disk_snapshot(vm, VM_DISK_SNAP_CREATE, "dup", NULL, &err), -1);
	assert_has(err.msg, "disk 1", "exists already");
	assert_false(has_snapshot(b0, "dup"));
	assert_true(has_snapshot(b1, "dup"));
	if (vm_disk_snapshot(vm, VM_DISK_SNAP_DELETE, "two", NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(has_snapshot(b0, "two") || has_snapshot(b1, "two"));
	/* The guest never noticed. */
	assert_still_runs(vm, &c);
	vm_free(vm);
	assert_int_equal(blk_open(&b0, d0, "qcow2", 0, &err), 0);
	assert_int_equal(blk_check(b0, 0, &cr, &err), 0);
	assert_true(cr.corruptions == 0 && cr.leaks == 0);
	blk_close(b0, NULL);
	free(d0);
	free(d1);
	rmdir_all(dir);
}

/* A take on a VM with a raw disk is refused, naming the disk, and leaves
 * nothing behind; the VM runs on. */
static void test_raw_disk_refused(void **state)
{
	char *dir = tmpdir(), *snap = path_in(dir, "snap");
	char *raw = new_disk(dir, "d.raw", "raw");
	struct vm_disk disk = {.path = raw, .format = "raw"};
	struct capture c;
	struct tv_err err;
	struct vm *vm;
	char *st;

	(void)state;
	if (!need_kvm()) {
		free(raw);
		free(snap);
		rmdir_all(dir);
		skip();
	}
	assert_int_equal(mkdir(snap, 0700), 0);
	vm = snap_guest_disks(1, GUEST_MEM, &c, &disk, 1);
	assert_int_equal(vm_start(vm, &err), 0);
	wait_count(&c, vm, 2);
	assert_int_equal(vm_snapshot_take(vm, snap, "t", NULL, &err), -1);
	assert_has(err.msg, raw, "cannot hold snapshots");
	st = path_in(snap, VM_SNAPSHOT_STATE);
	assert_int_equal(access(st, F_OK), -1);
	assert_int_equal(vm_disk_snapshot(vm, VM_DISK_SNAP_CREATE, "t", NULL, &err), -1);
	assert_has(err.msg, raw, "cannot hold snapshots");
	assert_still_runs(vm, &c);
	vm_free(vm);
	free(st);
	free(raw);
	free(snap);
	rmdir_all(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_state_fields),
		cmocka_unit_test(test_rollback_1),
		cmocka_unit_test(test_rollback_2),
		cmocka_unit_test(test_rollback_4),
		cmocka_unit_test(test_restore_unstarted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_read_info_real),
		cmocka_unit_test(test_idle_guest),
		cmocka_unit_test(test_disk_snapshots),
		cmocka_unit_test(test_take_restore),
		cmocka_unit_test(test_raw_disk_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
