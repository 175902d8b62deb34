# tests/demo: the demo guest driven through its serial console.
DEMO_TESTS = tests/demo/termvisor.sh tests/demo/qemu.sh
TESTS += $(DEMO_TESTS)
EXTRA_DIST += $(DEMO_TESTS) tests/demo/demo-shell.py
