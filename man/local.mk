# man/: manual pages.
man_MANS += man/termvisor.1 man/termvisor.conf.5
EXTRA_DIST += man/termvisor.1 man/termvisor.conf.5
man_MANS += man/termvisor-protocol.7
EXTRA_DIST += man/termvisor-protocol.7
man_MANS += man/termvisor-img.1
EXTRA_DIST += man/termvisor-img.1
man_MANS += man/termvisor-snapshot.5
EXTRA_DIST += man/termvisor-snapshot.5
man_MANS += man/termvisor-net.7
EXTRA_DIST += man/termvisor-net.7
