# tests/: cmocka unit tests (tests/unit), script tests, end-to-end scenarios.
TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LDADD = $(TV_ALL) $(TV_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test-util
tests_unit_test_util_SOURCES = tests/unit/test-util.c
tests_unit_test_util_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_LDADD = $(TEST_LDADD)

TESTS += tests/unit/test-util

check_PROGRAMS += tests/unit/test-vmdef tests/unit/test-paths
tests_unit_test_vmdef_SOURCES = tests/unit/test-vmdef.c
tests_unit_test_vmdef_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_vmdef_LDADD = $(TEST_LDADD)
tests_unit_test_paths_SOURCES = tests/unit/test-paths.c
tests_unit_test_paths_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_paths_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-vmdef tests/unit/test-paths
EXTRA_DIST += tests/lib.sh
EXTRA_DIST += tests/kvm-in-qemu.sh

TESTS += tests/cli/list.sh tests/cli/create-delete.sh tests/cli/examples.sh tests/cli/templates.sh \
	tests/cli/snapshot.sh tests/cli/net.sh
EXTRA_DIST += tests/cli/list.sh tests/cli/create-delete.sh tests/cli/examples.sh tests/cli/templates.sh \
	tests/cli/snapshot.sh tests/cli/net.sh

check_PROGRAMS += tests/unit/test-vtpane
tests_unit_test_vtpane_SOURCES = tests/unit/test-vtpane.c
tests_unit_test_vtpane_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_vtpane_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-vtpane

# The console screen (src/vmm/vtscreen.c) against libvterm's own screen.
check_PROGRAMS += tests/unit/test-vtscreen
tests_unit_test_vtscreen_SOURCES = tests/unit/test-vtscreen.c
tests_unit_test_vtscreen_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_vtscreen_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-vtscreen

check_PROGRAMS += tests/unit/test-protocol
tests_unit_test_protocol_SOURCES = tests/unit/test-protocol.c
tests_unit_test_protocol_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_protocol_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-protocol

# A snapshot's console file: screens come back whole; bad files are refused.
check_PROGRAMS += tests/unit/test-console-file
tests_unit_test_console_file_SOURCES = tests/unit/test-console-file.c
tests_unit_test_console_file_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_console_file_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-console-file

# The engine's command line: every setting comes back, the restore included.
check_PROGRAMS += tests/unit/test-vmm-args
tests_unit_test_vmm_args_SOURCES = tests/unit/test-vmm-args.c
tests_unit_test_vmm_args_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_vmm_args_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-vmm-args

check_PROGRAMS += tests/unit/test-sandbox
tests_unit_test_sandbox_SOURCES = tests/unit/test-sandbox.c
tests_unit_test_sandbox_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_sandbox_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-sandbox

TESTS += tests/e2e/tui-list.sh tests/e2e/tui-demo.sh tests/e2e/tui-workstation.sh
EXTRA_DIST += tests/e2e/tui-list.sh tests/e2e/tui-demo.sh tests/e2e/tui-workstation.sh

check_PROGRAMS += tests/unit/test-control
tests_unit_test_control_SOURCES = tests/unit/test-control.c
tests_unit_test_control_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_control_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-control

check_PROGRAMS += tests/unit/test-settings
tests_unit_test_settings_SOURCES = tests/unit/test-settings.c
tests_unit_test_settings_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_settings_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-settings

# Detached VMs end to end (the demo guest on /dev/kvm, terminals through tmux).
DETACH_TESTS = tests/e2e/detach.sh tests/e2e/hostile-socket.sh tests/e2e/autostart.sh \
	tests/e2e/guest-ends.sh tests/e2e/start-errors.sh
TESTS += $(DETACH_TESTS)
EXTRA_DIST += $(DETACH_TESTS)
# Machine snapshots of a running VM end to end (the demo guest: its counter,
# its note, its screen; switching children; 100 rollbacks; kill -9).
TESTS += tests/e2e/snapshot.sh
EXTRA_DIST += tests/e2e/snapshot.sh
# A full host disk pauses the VM, resume finishes the held writes (the demo
# guest's disk on a small tmpfs; needs root to mount it).
TESTS += tests/e2e/disk-full.sh
EXTRA_DIST += tests/e2e/disk-full.sh
# A guest flooding its console, spinning both vCPUs and hammering ports at
# once (the demo guest's `stress all`) leaves status, console attach, pause,
# resume and stop answering within a second.
TESTS += tests/e2e/flood.sh
EXTRA_DIST += tests/e2e/flood.sh

check_PROGRAMS += tests/unit/test-acpi tests/unit/test-decompress
tests_unit_test_acpi_SOURCES = tests/unit/test-acpi.c
tests_unit_test_acpi_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_acpi_LDADD = $(TEST_LDADD)
tests_unit_test_decompress_SOURCES = tests/unit/test-decompress.c
tests_unit_test_decompress_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_decompress_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-acpi tests/unit/test-decompress
TESTS += tests/unit/acpi-iasl.sh
EXTRA_DIST += tests/unit/acpi-iasl.sh
# A distribution kernel (fetched once with apt-get download) boots far enough
# to show its banner, e820 map, ACPI tables and CPU count; the debian-minimal
# guest goes on to a root shell (2 vCPUs, the disk on io_uring), and again
# with 1 vCPU and the disk on I/O threads.
TESTS += tests/linux/debian-cloud.sh tests/linux/debian-minimal.sh tests/linux/debian-shell.sh \
	tests/linux/debian-shell-threads.sh
EXTRA_DIST += tests/linux/debian-cloud.sh tests/linux/debian-minimal.sh tests/linux/debian-shell.sh \
	tests/linux/debian-shell-threads.sh
# A bzImage through its own entry with little RAM: the initrd stays clear of
# where the kernel runs and decompresses, or the run is refused.
TESTS += tests/linux/bzimage-initrd.sh
EXTRA_DIST += tests/linux/bzimage-initrd.sh
# The same guest to a root shell and back under QEMU emulating everything:
# the template's guest is checked where there is no /dev/kvm too.
TESTS += tests/linux/debian-shell-qemu.sh
EXTRA_DIST += tests/linux/debian-shell-qemu.sh
# The debian template (debootstrap from apt's mirror): failures leave nothing;
# a full install, with the packages cached under the build directory.
TESTS += tests/linux/debian-fail.sh tests/linux/debian.sh
EXTRA_DIST += tests/linux/debian-fail.sh tests/linux/debian.sh tests/linux/fetch-kernel.sh

check_PROGRAMS += tests/unit/test-runtime
tests_unit_test_runtime_SOURCES = tests/unit/test-runtime.c
tests_unit_test_runtime_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_runtime_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-runtime

# The Linux tests keep the kernel package they fetched in the build tree, so
# reruns need no network; distclean removes it.
distclean-local:
	-rm -rf tests/linux/cache

# The control socket's verb table: whole, unique, documented, listed by help.
check_PROGRAMS += tests/unit/test-verbs
tests_unit_test_verbs_SOURCES = tests/unit/test-verbs.c
tests_unit_test_verbs_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_verbs_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-verbs

# Where the initrd goes beside a kernel (loaded, and where it runs).
check_PROGRAMS += tests/unit/test-boot
tests_unit_test_boot_SOURCES = tests/unit/test-boot.c
tests_unit_test_boot_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_boot_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-boot

# The debian-minimal template's VM boots to its login prompt in the interface.
TESTS += tests/linux/debian-minimal-tui.sh
EXTRA_DIST += tests/linux/debian-minimal-tui.sh

# What `make check` builds before it runs the tests, built without running
# them: tests/kvm-in-qemu.sh builds on the host so the emulated machine only
# runs the tests.
check-programs: all-am $(check_PROGRAMS) $(check_SCRIPTS) $(check_DATA)
.PHONY: check-programs
# The test list, for ./dev check (which runs those needing /dev/kvm elsewhere).
print-tests:
	@echo $(TESTS)
.PHONY: print-tests

# The snapshot tree on disk: commit, abort, recovery, the index, pruning, names.
check_PROGRAMS += tests/unit/test-snapstore
tests_unit_test_snapstore_SOURCES = tests/unit/test-snapstore.c
tests_unit_test_snapstore_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_snapstore_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-snapstore

# Reading the VM process's JSON replies.
check_PROGRAMS += tests/unit/test-json
tests_unit_test_json_SOURCES = tests/unit/test-json.c
tests_unit_test_json_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_json_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-json

# Clones of a running VM, resumed from a machine snapshot (the demo guest on /dev/kvm).
TESTS += tests/e2e/clone.sh
EXTRA_DIST += tests/e2e/clone.sh

# Lab networks: the switch (learning, flooding, isolation, hostile datagrams)
# and the tap backend's errors, on the host.
check_PROGRAMS += tests/unit/test-labswitch
tests_unit_test_labswitch_SOURCES = tests/unit/test-labswitch.c
tests_unit_test_labswitch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_labswitch_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-labswitch

# The demo guest's network stack, built for the host: checksums, ARP, ICMP,
# UDP, DHCP and the TCP echo service, and hostile frames dropped.
check_PROGRAMS += tests/unit/test-demo-net
tests_unit_test_demo_net_SOURCES = tests/unit/test-demo-net.c share/demo/netstack.c \
	share/demo/netstack.h
tests_unit_test_demo_net_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_demo_net_LDADD = $(CMOCKA_LIBS)
TESTS += tests/unit/test-demo-net

# Lab networks with termvisor's own VMs (the demo guest's net command; needs
# /dev/kvm, listed in tests/kvm-in-qemu.sh).
TESTS += tests/guests/net/lab.sh
EXTRA_DIST += tests/guests/net/lab.sh
# tap devices: root makes one with ip tuntap, a demo VM pings the host through
# it (needs /dev/kvm and root: tests/kvm-in-qemu.sh).
TESTS += tests/guests/net/tap.sh
EXTRA_DIST += tests/guests/net/tap.sh
# `termvisor lab-switch` in the foreground.
TESTS += tests/cli/lab-switch.sh
EXTRA_DIST += tests/cli/lab-switch.sh

# The snapshot tree's rows in the interface: branches, dates, marks, deletes, 200 snapshots.
check_PROGRAMS += tests/unit/test-snaptree
tests_unit_test_snaptree_SOURCES = tests/unit/test-snaptree.c
tests_unit_test_snaptree_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_snaptree_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-snaptree

# Editing a definition in $EDITOR the way visudo does (scripts as the editor).
check_PROGRAMS += tests/unit/test-editdef
tests_unit_test_editdef_SOURCES = tests/unit/test-editdef.c
tests_unit_test_editdef_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_editdef_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-editdef

# Snapshots by keyboard in the interface at 80x24 (the demo guest on /dev/kvm):
# take with t, the tree with T, roll back with r and y, rename, delete, a
# stopped VM's disk-only snapshot.
TESTS += tests/e2e/tui-snapshots.sh
EXTRA_DIST += tests/e2e/tui-snapshots.sh

# The snapshot tree view, the snapshot actions and the definition editor
# against stand-ins for the application object, the overlays and the model
# (their sources built into the test: ui/app.c is not needed).
check_PROGRAMS += tests/unit/test-view-snapshots
tests_unit_test_view_snapshots_SOURCES = tests/unit/test-view-snapshots.c ui/view-snapshots.c \
	ui/actions-snap.c ui/editdef.c
tests_unit_test_view_snapshots_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_view_snapshots_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-view-snapshots

# The help view against a stand-in for the application object that frees a
# view when its tab closes.
check_PROGRAMS += tests/unit/test-view-help
tests_unit_test_view_help_SOURCES = tests/unit/test-view-help.c ui/view-help.c
tests_unit_test_view_help_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_view_help_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-view-help

# The console view's copy mode (search, selection, copy, paste) against
# stand-ins for the application object, the model and the VM's connection.
check_PROGRAMS += tests/unit/test-view-console
tests_unit_test_view_console_SOURCES = tests/unit/test-view-console.c ui/view-console.c
tests_unit_test_view_console_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_view_console_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-view-console

# A running VM's events to a subscribed client (the demo guest on /dev/kvm),
# heard with a small client that prints them.
check_PROGRAMS += tests/e2e/tv-events
tests_e2e_tv_events_SOURCES = tests/e2e/tv-events.c
tests_e2e_tv_events_LDADD = $(TV_ALL) $(TV_LIBS)
TESTS += tests/e2e/subscribe.sh
EXTRA_DIST += tests/e2e/subscribe.sh

# The interface's layouts for many terminal sizes, and its key table (every
# action reachable, one action per key, footer and help from the table,
# rebinding from termvisor.conf).
check_PROGRAMS += tests/unit/test-layout tests/unit/test-keys
tests_unit_test_layout_SOURCES = tests/unit/test-layout.c
tests_unit_test_layout_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_layout_LDADD = $(TEST_LDADD)
tests_unit_test_keys_SOURCES = tests/unit/test-keys.c
tests_unit_test_keys_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_keys_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-layout tests/unit/test-keys
