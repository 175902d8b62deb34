# tests/guests: freestanding test guests (no libc), loaded by the engine as
# PVH ELF images, and the script tests that run them through `termvisor run`.
# They are built with their own flags: nothing from AM_CFLAGS/CFLAGS (no
# sanitizers, no host ABI assumptions).
GUEST_CCFLAGS = -std=gnu11 -O2 -g0 -ffreestanding -fno-builtin -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-mno-red-zone -mgeneral-regs-only -mcmodel=small -Wall -Wextra -Wno-unused-parameter
GUEST_LINKFLAGS = -nostdlib -static -no-pie -Wl,-T,$(srcdir)/tests/guests/guest.ld \
	-Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
GUEST_COMMON = $(srcdir)/tests/guests/start.S $(srcdir)/tests/guests/lib.c
GUEST_DEPS = $(GUEST_COMMON) $(srcdir)/tests/guests/guest.h $(srcdir)/tests/guests/guest.ld
TEST_GUESTS = tests/guests/serial.elf tests/guests/smp.elf tests/guests/timer.elf \
	tests/guests/reboot.elf tests/guests/triple.elf tests/guests/user.elf \
	tests/guests/poweroff.elf

tests/guests/%.elf: $(srcdir)/tests/guests/%.c $(GUEST_DEPS)
	@$(MKDIR_P) tests/guests
	$(AM_V_CCLD)$(CC) $(GUEST_CCFLAGS) -I$(srcdir)/tests/guests $(GUEST_LINKFLAGS) \
		-o $@ $(GUEST_COMMON) $<

check_DATA = $(TEST_GUESTS)
CLEANFILES += $(TEST_GUESTS)
EXTRA_DIST += tests/guests/guest.ld tests/guests/start.S tests/guests/lib.c \
	tests/guests/guest.h $(TEST_GUESTS:.elf=.c)

GUEST_TESTS = tests/guests/serial.sh tests/guests/smp.sh tests/guests/timer.sh \
	tests/guests/reboot.sh tests/guests/triple.sh tests/guests/user.sh \
	tests/guests/run-errors.sh tests/guests/poweroff.sh \
	tests/guests/run-name.sh tests/guests/console-keys.sh tests/guests/run-engine.sh \
	tests/guests/run-start-same.sh tests/guests/kernel-cache.sh tests/guests/run-guard.sh \
	tests/guests/net/user-net.sh
TESTS += $(GUEST_TESTS)
EXTRA_DIST += $(GUEST_TESTS) tests/guests/mkbzimage.py
# CMOS RTC interrupts (IRQ 8).
TEST_GUESTS += tests/guests/rtc.elf
TESTS += tests/guests/rtc.sh
EXTRA_DIST += tests/guests/rtc.sh
# ACPI tables and the PM1 device, from inside a guest.
TEST_GUESTS += tests/guests/acpi.elf
# Machine snapshots: a counter, the PIT and every vCPU's LAPIC timer.
TEST_GUESTS += tests/guests/snap.elf
TESTS += tests/guests/acpi.sh
EXTRA_DIST += tests/guests/acpi.sh

# Memory images restored under a running guest (tests/unit/test-memimg).
TEST_GUESTS += tests/guests/memsnap.elf

# The engine API (pause/resume, stop, console input, device ranges) on the guests.
check_PROGRAMS += tests/unit/test-engine
tests_unit_test_engine_SOURCES = tests/unit/test-engine.c tests/unit/guest-console.h
tests_unit_test_engine_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_engine_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-engine

# Machine snapshots, engine side: the state file parser (any host), and on
# /dev/kvm the snap guest rolled back and restored, and refused restores.
check_PROGRAMS += tests/unit/test-snapshot
tests_unit_test_snapshot_SOURCES = tests/unit/test-snapshot.c
tests_unit_test_snapshot_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_snapshot_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-snapshot
