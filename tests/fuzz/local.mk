# tests/fuzz: libFuzzer targets, built and run for a bounded time by a script.
EXTRA_DIST += tests/fuzz/scratch.h
EXTRA_DIST += tests/fuzz/standalone.h
EXTRA_DIST += tests/fuzz/lib.sh
TESTS += tests/fuzz/qcow2.sh
EXTRA_DIST += tests/fuzz/qcow2.sh tests/fuzz/fuzz-qcow2.c
TESTS += tests/fuzz/virtqueue.sh
EXTRA_DIST += tests/fuzz/virtqueue.sh tests/fuzz/fuzz-virtqueue.c
TESTS += tests/fuzz/control.sh
EXTRA_DIST += tests/fuzz/control.sh tests/fuzz/fuzz-control.c
TESTS += tests/fuzz/vmdef.sh
EXTRA_DIST += tests/fuzz/vmdef.sh tests/fuzz/fuzz-vmdef.c
TESTS += tests/fuzz/devices.sh
EXTRA_DIST += tests/fuzz/devices.sh tests/fuzz/fuzz-devices.c
TESTS += tests/fuzz/snapstate.sh
EXTRA_DIST += tests/fuzz/snapstate.sh tests/fuzz/fuzz-snapstate.c
TESTS += tests/fuzz/snapindex.sh
EXTRA_DIST += tests/fuzz/snapindex.sh tests/fuzz/fuzz-snapindex.c
