# tests/guests/virtio: the virtio-pci test guest (its own small driver) and
# the script that runs it against qcow2 images. Built like the other test
# guests: freestanding, with the shared entry code, helpers and linker script.
VIRTIO_GUEST_CCFLAGS = -std=gnu11 -O2 -g0 -ffreestanding -fno-builtin -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-mno-red-zone -mgeneral-regs-only -mcmodel=small -Wall -Wextra -Wno-unused-parameter
VIRTIO_GUEST_LINKFLAGS = -nostdlib -static -no-pie -Wl,-T,$(srcdir)/tests/guests/guest.ld \
	-Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
VIRTIO_GUEST_COMMON = $(srcdir)/tests/guests/start.S $(srcdir)/tests/guests/lib.c

tests/guests/virtio/virtio-guest.elf: $(srcdir)/tests/guests/virtio/virtio-guest.c \
		$(VIRTIO_GUEST_COMMON) $(srcdir)/tests/guests/guest.h $(srcdir)/tests/guests/guest.ld
	@$(MKDIR_P) tests/guests/virtio
	$(AM_V_CCLD)$(CC) $(VIRTIO_GUEST_CCFLAGS) -I$(srcdir)/tests/guests $(VIRTIO_GUEST_LINKFLAGS) \
		-o $@ $(VIRTIO_GUEST_COMMON) $(srcdir)/tests/guests/virtio/virtio-guest.c

VIRTIO_GUEST_ELF = tests/guests/virtio/virtio-guest.elf
check_SCRIPTS += $(VIRTIO_GUEST_ELF)
CLEANFILES += $(VIRTIO_GUEST_ELF)
TESTS += tests/guests/virtio/virtio.sh tests/guests/virtio/hvc-input.sh tests/guests/virtio/hvc-console.sh
EXTRA_DIST += tests/guests/virtio/virtio.sh tests/guests/virtio/hvc-input.sh tests/guests/virtio/hvc-console.sh \
	tests/guests/virtio/virtio-guest.c

# A host helper: runs a command with io_uring refused by seccomp.
check_PROGRAMS += tests/guests/virtio/deny-io-uring
tests_guests_virtio_deny_io_uring_SOURCES = tests/guests/virtio/deny-io-uring.c
TESTS += tests/guests/virtio/io-uring-fallback.sh
EXTRA_DIST += tests/guests/virtio/io-uring-fallback.sh
# A reset while 1 MiB of hvc0 output is on its way: no hang.
TESTS += tests/guests/virtio/hvc-reset.sh
EXTRA_DIST += tests/guests/virtio/hvc-reset.sh
