# Checkpoint I/O: safetensors reader, .df11 container, the df11-* programs.
add_library(df11_model_testutil STATIC model_testutil.c)
target_include_directories(df11_model_testutil PUBLIC ${CMAKE_SOURCE_DIR})
target_compile_options(df11_model_testutil PRIVATE ${DF11_C_WARNINGS})
target_link_libraries(df11_model_testutil PUBLIC df11 PkgConfig::CMOCKA m)

df11_add_test(test_safetensors test_safetensors.c)
target_link_libraries(test_safetensors PRIVATE df11_model_testutil)
