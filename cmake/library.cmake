# libdf11 as a shared library (libdf11.so.0, exporting only the DF11_API
# functions) and a static one (libdf11.a), both from the same objects.
set(_df11_objects $<TARGET_OBJECTS:df11_base> $<TARGET_OBJECTS:df11_rest>)

add_library(df11 SHARED ${_df11_objects})
set_target_properties(df11 PROPERTIES VERSION ${PROJECT_VERSION}
                      SOVERSION ${PROJECT_VERSION_MAJOR})
target_link_options(df11 PRIVATE -Wl,--no-undefined)

add_library(df11_static STATIC ${_df11_objects})
set_target_properties(df11_static PROPERTIES OUTPUT_NAME df11)

foreach(_lib df11 df11_static)
  target_include_directories(${_lib} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${_lib} PRIVATE PkgConfig::XXHASH PkgConfig::JANSSON m
                        PUBLIC Threads::Threads)
endforeach()
add_library(df11::df11 ALIAS df11)
add_library(df11::df11_static ALIAS df11_static)

# What the programs, tests, benchmarks and the layers above libdf11 (llm/,
# synth/, hdf5/, cuda/) link: the static library with its internal headers
# (the repository root on the include path).
add_library(df11_internal INTERFACE)
target_include_directories(df11_internal INTERFACE ${CMAKE_SOURCE_DIR})
target_link_libraries(df11_internal INTERFACE df11_static
                      PkgConfig::XXHASH PkgConfig::JANSSON m)
