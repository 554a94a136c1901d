# Official DFloat11 checkpoints: fixtures made by the official compressor
# (tests/fixtures/make_dfloat11.py), hostile variants, a CPU model of the
# official kernel. Included by tests/CMakeLists.txt.
add_library(df11_dfl_testutil STATIC dfl_testutil.c)
target_compile_options(df11_dfl_testutil PRIVATE ${DF11_C_WARNINGS})
target_link_libraries(df11_dfl_testutil PUBLIC df11_internal PkgConfig::CMOCKA
  PkgConfig::JANSSON df11_model_testutil)

df11_add_test(test_dfloat11 test_dfloat11.c)
target_link_libraries(test_dfloat11 PRIVATE df11_dfl_testutil
  df11_model_testutil PkgConfig::JANSSON)

df11_add_test(test_dfloat11_write test_dfloat11_write.c)
target_link_libraries(test_dfloat11_write PRIVATE df11_dfl_testutil
  df11_model_testutil PkgConfig::JANSSON)

# The official loader on df11's export (needs torch, transformers and the
# dfloat11 package in Python; skipped otherwise).
add_test(NAME dfloat11_official_loader
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/dfloat11_official.sh
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(dfloat11_official_loader PROPERTIES SKIP_RETURN_CODE 77)

# The programs on official folders.
add_test(NAME test_dfloat11_tools
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_dfloat11_tools.sh
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(test_dfloat11_tools PROPERTIES TIMEOUT 300)
