# tests/demo: the demo guest driven through its serial console.
DEMO_TESTS = tests/demo/termvisor.sh tests/demo/qemu.sh tests/demo/net-qemu.sh
TESTS += $(DEMO_TESTS)
EXTRA_DIST += $(DEMO_TESTS) tests/demo/demo-shell.py tests/demo/demo-net.py tests/demo/qemu-pc.sh
