# The CUDA forward pass (cuda/forward.cu): df11-run --device cuda and
# tests/test_forward_cuda. It always compiles where CUDA is enabled; it is
# linked into df11-run (and its test is built) only where libdf11_cuda
# (target df11_cuda) exists, so the build never depends on it.
if(NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(NOT TARGET CUDA::cublasLt)
  # A toolkit without cuBLASLt still builds libdf11_cuda and its tests.
  message(WARNING "df11: cuBLASLt not found: no CUDA forward pass "
          "(df11-run --device cuda, test_forward_cuda, bench_forward on a GPU)")
  return()
endif()

add_library(df11_forward_cuda STATIC ${CMAKE_CURRENT_LIST_DIR}/forward.cu)
# The static CUDA runtime, as libdf11_cuda uses: one runtime per program.
set_target_properties(df11_forward_cuda PROPERTIES
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_RUNTIME_LIBRARY Static)
target_include_directories(df11_forward_cuda PRIVATE ${CMAKE_SOURCE_DIR}
                           ${CMAKE_SOURCE_DIR}/include)
# libdf11_cuda's warning flags where cuda/CMakeLists.txt defines them.
if(DEFINED DF11_CUDA_WARNINGS)
  target_compile_options(df11_forward_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:${DF11_CUDA_WARNINGS}>)
else()
  target_compile_options(df11_forward_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow>)
  if(DF11_WERROR)
    target_compile_options(df11_forward_cuda PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
  endif()
endif()
# nvcc's host code is C++: the C programs that link this need libstdc++.
target_link_libraries(df11_forward_cuda PUBLIC df11 CUDA::cudart_static
                      CUDA::cublasLt stdc++)

# Link df11-run and bench_forward against it once every target is defined
# (tools/ and benchmarks/ are processed around cuda/, and df11_cuda may be
# defined after this file).
function(_df11_forward_cuda_link)
  if(TARGET df11_cuda AND TARGET df11-run)
    target_link_libraries(df11_forward_cuda PUBLIC df11_cuda)
    target_link_libraries(df11-run PRIVATE df11_forward_cuda)
    target_compile_definitions(df11-run PRIVATE DF11_RUN_CUDA)
  endif()
  if(TARGET df11_cuda AND TARGET bench_forward)
    target_link_libraries(bench_forward PRIVATE df11_forward_cuda)
    target_compile_definitions(bench_forward PRIVATE DF11_BENCH_CUDA)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR}
  CALL _df11_forward_cuda_link)
