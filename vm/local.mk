# vm/: the engine. It never includes ncurses.
libtvvm_a_SOURCES += vm/mem.c vm/mem.h
# The KVM engine core: VM, vCPUs, boot.
libtvvm_a_SOURCES += vm/vm.h vm/vm-int.h vm/layout.h vm/console.h vm/kvm.c vm/vcpu.c \
	vm/boot.c vm/boot.h
# Host-side kernel extraction and its content hash; ACPI tables.
libtvvm_a_SOURCES += vm/decompress.c vm/decompress.h vm/sha256.c vm/sha256.h
libtvvm_a_SOURCES += vm/acpi.c vm/acpi.h
# Guest memory images of machine snapshots.
libtvvm_a_SOURCES += vm/memimg.c vm/memimg-file.c vm/memimg.h vm/memimg-int.h
check_PROGRAMS += tests/unit/test-memimg
tests_unit_test_memimg_SOURCES = tests/unit/test-memimg.c tests/unit/guest-console.h
tests_unit_test_memimg_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_memimg_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-memimg
# Machine snapshots: the state file (format and parser apart, for the fuzz
# target) and the KVM side of take and restore.
libtvvm_a_SOURCES += vm/snapshot.c vm/snapshot.h vm/snapstate.c vm/snapstate.h
# Network backends for lab networks (src/lab's switch) and host tap devices.
libtvvm_a_SOURCES += vm/net/lab.c vm/net/tap.c vm/net/tap.h vm/net/rxhold.c \
	vm/net/rxhold.h
