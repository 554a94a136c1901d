# Checkpoint I/O: safetensors reader, .df11 container, the df11-* programs.
add_library(df11_model_testutil STATIC model_testutil.c)
target_compile_options(df11_model_testutil PRIVATE ${DF11_C_WARNINGS})
target_link_libraries(df11_model_testutil PUBLIC df11_internal df11_synth
                      PkgConfig::CMOCKA m)

df11_add_test(test_safetensors test_safetensors.c)
target_link_libraries(test_safetensors PRIVATE df11_model_testutil)

df11_add_test(test_container test_container.c)
target_link_libraries(test_container PRIVATE df11_model_testutil)

# The programs end to end (needs python3 with numpy and safetensors, which
# scripts/setup.sh installs).
add_test(NAME test_tools
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/test_tools.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(test_tools PROPERTIES TIMEOUT 300)

# The README example (scripts/example.sh) with the programs built here.
add_test(NAME example COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/example.sh)
set_tests_properties(example PROPERTIES
  ENVIRONMENT "DF11_BIN=${CMAKE_BINARY_DIR}/bin")

# Tensors above one piece, which df11_pack encodes in pieces.
df11_add_test(test_pack_stream test_pack_stream.c)
target_link_libraries(test_pack_stream PRIVATE df11_model_testutil)

# Output files through O_DIRECT (df11/outfile.h).
df11_add_test(test_outfile test_outfile.c)
target_link_libraries(test_outfile PRIVATE df11_model_testutil)
