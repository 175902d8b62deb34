# vm/net: network backends (the user-mode network on libslirp) and the text
# forms of forwards and MACs.
libtvvm_a_SOURCES += vm/net/net.h vm/net/net.c vm/net/backend.c vm/net/user.c
check_PROGRAMS += tests/unit/test-net
tests_unit_test_net_SOURCES = tests/unit/test-net.c
tests_unit_test_net_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_net_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-net
check_PROGRAMS += tests/unit/test-net-user
tests_unit_test_net_user_SOURCES = tests/unit/test-net-user.c
tests_unit_test_net_user_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_net_user_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test-net-user
