# Hostile and corrupted inputs, and one regression test per bug that the
# fuzzers or these tests found (issue 6). Included by tests/CMakeLists.txt.
df11_add_test(test_regress test_regress.c)
target_link_libraries(test_regress PRIVATE df11_testutil)
