// tests/test_main.cpp: doctest's runner for the caf_tests binary. Suites mirror the source folders;
// the suite "gpu" needs a GPU and skips itself (with a message) where there is none.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
