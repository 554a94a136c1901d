# Hostile and corrupted inputs, and one regression test per bug that the
# fuzzers or these tests found. Included by tests/CMakeLists.txt.
#
# alloc_track.c counts the library's heap use through -Wl,--wrap (libdf11
# is a static library), so tests can bound what a hostile input costs.
set(DF11_ALLOC_WRAP
  "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=strdup")

add_library(df11_hostile_util STATIC hostile_util.c alloc_track.c)
target_compile_options(df11_hostile_util PRIVATE ${DF11_C_WARNINGS})
target_link_libraries(df11_hostile_util PUBLIC df11_internal PkgConfig::CMOCKA)

df11_add_test(test_regress test_regress.c)
target_link_libraries(test_regress PRIVATE df11_hostile_util df11_testutil
  df11_model_testutil ${DF11_ALLOC_WRAP})

# Hostile encoded tensors.
df11_add_test(test_hostile_codec test_hostile_codec.c)
target_link_libraries(test_hostile_codec PRIVATE df11_hostile_util df11_testutil
  ${DF11_ALLOC_WRAP})

# Hostile checkpoint files: safetensors headers, container directories,
# truncation at every section boundary, every bit flip of a container.
df11_add_test(test_hostile_file test_hostile_file.c)
target_link_libraries(test_hostile_file PRIVATE df11_hostile_util
  df11_testutil df11_model_testutil ${DF11_ALLOC_WRAP})
