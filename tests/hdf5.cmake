# Tests of the HDF5 filter plugin and df11-export --hdf5. Only
# with DF11_WITH_HDF5; the h5dump and h5py tests only where those exist.
if(NOT DF11_WITH_HDF5)
  return()
endif()

set(_df11_h5_env
  "HDF5_PLUGIN_PATH=${DF11_H5_PLUGIN_DIR}"
  "DF11_H5_PLUGIN=$<TARGET_FILE:df11_h5filter>"
  "DF11_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "DF11_BIN_DIR=${CMAKE_BINARY_DIR}/bin")

df11_add_test(test_hdf5 test_hdf5.c)
target_link_libraries(test_hdf5 PRIVATE df11_hdf5 ${CMAKE_DL_LIBS})
add_dependencies(test_hdf5 df11_h5filter)
set_tests_properties(test_hdf5 PROPERTIES ENVIRONMENT "${_df11_h5_env}")

# Real readers: h5py (its wheel bundles its own libhdf5) and h5dump.
find_program(DF11_H5DUMP h5dump)
find_package(Python3 COMPONENTS Interpreter)
set(_df11_h5py OFF)
if(Python3_Interpreter_FOUND)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import h5py, numpy"
                  RESULT_VARIABLE _df11_h5py_rc OUTPUT_QUIET ERROR_QUIET)
  if(_df11_h5py_rc EQUAL 0)
    set(_df11_h5py ON)
  endif()
endif()
if(_df11_h5py)
  set(_df11_h5_readers_args --plugin-dir ${DF11_H5_PLUGIN_DIR})
  if(DF11_H5DUMP)
    list(APPEND _df11_h5_readers_args --h5dump ${DF11_H5DUMP})
  else()
    message(STATUS "df11: h5dump not found (apt install hdf5-tools): its checks skip")
  endif()
  if(TARGET df11-export)
    list(APPEND _df11_h5_readers_args --export $<TARGET_FILE:df11-export>)
  endif()
  add_test(NAME hdf5_readers
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/hdf5_readers.py
                   ${_df11_h5_readers_args})
  set(_df11_readers_env ${_df11_h5_env})
  if(DF11_SANITIZE)
    # The sanitized plugin loads into python and h5dump, which are not
    # built with ASan: preload the runtimes so it runs checked there too.
    # Leak checks stay in test_hdf5; the interpreter itself "leaks".
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE _asan OUTPUT_STRIP_TRAILING_WHITESPACE)
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libubsan.so
                    OUTPUT_VARIABLE _ubsan OUTPUT_STRIP_TRAILING_WHITESPACE)
    list(APPEND _df11_readers_env "LD_PRELOAD=${_asan}:${_ubsan}"
         "ASAN_OPTIONS=abort_on_error=1:detect_leaks=0")
  endif()
  set_tests_properties(hdf5_readers PROPERTIES ENVIRONMENT "${_df11_readers_env}"
                       TIMEOUT 300)
else()
  message(STATUS "df11: python3 with h5py + numpy not found (scripts/setup.sh): hdf5_readers skipped")
endif()
