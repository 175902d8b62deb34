# vm/block: disk images (driver table + raw + qcow2)
libtvvm_a_SOURCES += vm/block/block.c vm/block/block.h vm/block/block-int.h \
	vm/block/raw.c vm/block/qcow2.c vm/block/qcow2.h vm/block/qcow2-cache.c \
	vm/block/qcow2-cluster.c vm/block/qcow2-refcount.c vm/block/qcow2-snapshot.c \
	vm/block/map.c vm/block/map.h vm/block/uring.c vm/block/uring.h

# Tests of the block layer (kept with it so the folder owns its checks).
check_PROGRAMS += tests/unit/test-qcow2
tests_unit_test_qcow2_SOURCES = tests/unit/test-qcow2.c
tests_unit_test_qcow2_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_qcow2_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-qcow2
TESTS += tests/block/qemu-interop.sh
EXTRA_DIST += tests/block/qemu-interop.sh
check_PROGRAMS += tests/unit/test-qcow2-meta
tests_unit_test_qcow2_meta_SOURCES = tests/unit/test-qcow2-meta.c
tests_unit_test_qcow2_meta_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_qcow2_meta_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-qcow2-meta
