# Checkpoint programs (issue 3): df11-encode, -decode, -verify, -info, -synth.
add_library(df11_toolcommon STATIC ${CMAKE_CURRENT_SOURCE_DIR}/common.c)
target_include_directories(df11_toolcommon PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(df11_toolcommon PRIVATE ${DF11_C_WARNINGS})
target_link_libraries(df11_toolcommon PUBLIC df11)

foreach(t encode decode verify info synth)
  df11_add_tool(df11-${t} ${CMAKE_CURRENT_SOURCE_DIR}/df11-${t}.c)
  target_link_libraries(df11-${t} PRIVATE df11_toolcommon)
endforeach()
target_link_libraries(df11-info PRIVATE PkgConfig::JANSSON)
