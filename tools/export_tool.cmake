# df11-export (issue 7): checkpoint -> HDF5 with the df11 filter. Only with
# DF11_WITH_HDF5 (hdf5/CMakeLists.txt). The filter is compiled in, so the
# tool registers it itself and needs no HDF5_PLUGIN_PATH.
if(DF11_WITH_HDF5)
  df11_add_tool(df11-export df11-export.c ${CMAKE_SOURCE_DIR}/hdf5/df11_h5filter.c)
  target_link_libraries(df11-export PRIVATE df11_hdf5 ${CMAKE_DL_LIBS})
endif()
