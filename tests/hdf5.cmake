# Tests of the HDF5 filter plugin and df11-export --hdf5 (issue 7). Only
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
