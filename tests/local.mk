# tests/: cmocka unit tests (tests/unit), script tests, end-to-end scenarios.
TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LDADD = $(TV_ALL) $(TV_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test-util
tests_unit_test_util_SOURCES = tests/unit/test-util.c
tests_unit_test_util_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_LDADD = $(TEST_LDADD)

TESTS += tests/unit/test-util
EXTRA_DIST += tests/lib.sh
