# bench: files added to the build by this folder
EXTRA_DIST += bench/demo-boot.py
EXTRA_DIST += bench/console-attach.sh bench/console-attach.py
EXTRA_DIST += bench/boot.sh bench/boot.py bench/first-byte.S
EXTRA_DIST += bench/virtio-blk.sh
EXTRA_DIST += bench/snapshot.sh bench/snapshot.py
EXTRA_DIST += bench/many.sh bench/many.py
EXTRA_DIST += bench/net.sh bench/net.py bench/net-faults.py bench/nested-kvm-trace.sh
# The console pane alone on a terminal (bench/console.sh); not installed.
noinst_PROGRAMS += bench/vtdrive
bench_vtdrive_SOURCES = bench/vtdrive.c
bench_vtdrive_LDADD = $(TV_ALL) $(TV_LIBS)
# A VM process with a generator for a guest: the interface's figures on a
# host without /dev/kvm (bench/console-ui.py, CONSOLE_UI_STANDIN=1).
noinst_PROGRAMS += bench/standin
bench_standin_SOURCES = bench/standin.c
bench_standin_LDADD = $(TV_ALL) $(TV_LIBS)
EXTRA_DIST += bench/console.sh bench/console-data.py bench/console-ui.py
