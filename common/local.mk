# common/: what every part of termvisor shares (errors, allocation, I/O and
# size helpers): the engine, the VM process, the command line and the interface.
libtvcommon_a_SOURCES += common/err.c common/err.h common/util.c common/util.h
libtvcommon_a_SOURCES += common/crc32c.c common/crc32c.h common/bytes.h
