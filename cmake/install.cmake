# cmake --install: public headers, libdf11 (shared + static), libdf11_cuda
# where CUDA is built, the programs, the HDF5 filter plugin, pkg-config
# files and a CMake package (find_package(df11) -> df11::df11,
# df11::df11_static, df11::df11_cuda, df11::df11_cuda_static).
#
# Components: "runtime" (the shared libraries: what the Python package
# ships), "programs" (programs, HDF5 plugin) and "development" (headers,
# static libraries, df11.pc, the CMake package).
include(CMakePackageConfigHelpers)
set(DF11_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/df11)
set(DF11_HDF5_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/hdf5/plugin
    CACHE STRING "Where the HDF5 filter plugin is installed (HDF5_PLUGIN_PATH)")

install(FILES ${CMAKE_SOURCE_DIR}/include/df11.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)
install(TARGETS df11 EXPORT df11Targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
                NAMELINK_COMPONENT development)
install(TARGETS df11_static EXPORT df11Targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)

set(_df11_pc_files df11)
if(TARGET df11_cuda)
  install(FILES ${CMAKE_SOURCE_DIR}/include/df11_cuda.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)
  install(TARGETS df11_cuda EXPORT df11Targets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
                  NAMELINK_COMPONENT development)
  install(TARGETS df11_cuda_static EXPORT df11Targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
  list(APPEND _df11_pc_files df11_cuda)
  if(DF11_CUDA_RUNTIME STREQUAL "Static")
    set(DF11_PC_CUDART "-lcudart_static -ldl -lrt")
  else()
    set(DF11_PC_CUDART "-lcudart")
  endif()
  set(DF11_PC_CUDA_LIBDIR ${CUDAToolkit_LIBRARY_DIR})
  set(DF11_PC_CUDA_INCDIR ${CUDAToolkit_INCLUDE_DIRS})
endif()

install(TARGETS ${DF11_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT programs)
if(TARGET df11_h5filter)
  install(TARGETS df11_h5filter
          LIBRARY DESTINATION ${DF11_HDF5_PLUGIN_INSTALL_DIR} COMPONENT programs)
endif()

# The .pc files locate the prefix from their own folder, so that an
# installation moved with --prefix (or DESTDIR) stays usable.
file(RELATIVE_PATH _df11_pc_up /x/${CMAKE_INSTALL_LIBDIR}/pkgconfig /x)
set(DF11_PC_PREFIX "\${pcfiledir}/${_df11_pc_up}")
foreach(_pc ${_df11_pc_files})
  configure_file(${CMAKE_SOURCE_DIR}/cmake/${_pc}.pc.in
                 ${CMAKE_BINARY_DIR}/${_pc}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${_pc}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)
endforeach()

install(EXPORT df11Targets NAMESPACE df11:: DESTINATION ${DF11_CMAKE_DIR}
        COMPONENT development)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/df11-config.cmake.in
  ${CMAKE_BINARY_DIR}/df11-config.cmake INSTALL_DESTINATION ${DF11_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/df11-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/df11-config.cmake
              ${CMAKE_BINARY_DIR}/df11-config-version.cmake
        DESTINATION ${DF11_CMAKE_DIR} COMPONENT development)
