# vm/dev: files added to the build by this folder
libtvvm_a_SOURCES += vm/dev/dev.c vm/dev/dev.h vm/dev/serial8250.c vm/dev/i8042.c \
	vm/dev/mc146818.c vm/dev/debug-exit.c
libtvvm_a_SOURCES += vm/dev/acpi-pm.c vm/dev/acpi-pm.h
# virtio: split virtqueues (guest rings checked as hostile input).
libtvvm_a_SOURCES += vm/dev/virtio-queue.c vm/dev/virtio-queue.h
check_PROGRAMS += tests/unit/test-virtqueue
tests_unit_test_virtqueue_SOURCES = tests/unit/test-virtqueue.c tests/unit/vring.h
tests_unit_test_virtqueue_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_virtqueue_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-virtqueue
# PCI bus and the virtio devices on it.
libtvvm_a_SOURCES += vm/dev/pci.c vm/dev/pci.h vm/dev/virtio-pci.c vm/dev/virtio-pci.h \
	vm/dev/virtio-blk.c vm/dev/virtio-rng.c vm/dev/virtio-console.c \
	vm/dev/virtio-net.c vm/dev/virtio-net-queue.c vm/dev/virtio-net.h
check_PROGRAMS += tests/unit/test-pci
tests_unit_test_pci_SOURCES = tests/unit/test-pci.c
tests_unit_test_pci_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_pci_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-pci
check_PROGRAMS += tests/unit/test-virtio-net
tests_unit_test_virtio_net_SOURCES = tests/unit/test-virtio-net.c tests/unit/vring.h
tests_unit_test_virtio_net_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_virtio_net_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-virtio-net
