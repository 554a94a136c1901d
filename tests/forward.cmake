# The forward pass: config parser, CPU reference vs transformers fixtures,
# DF11 == BF16 bit for bit, df11-run.
df11_add_test(test_forward test_forward.c)
target_link_libraries(test_forward PRIVATE PkgConfig::JANSSON)
add_dependencies(test_forward df11-run)

# The CUDA forward pass on a GPU (skips itself without one). Built where
# cuda/forward.cmake made df11_forward_cuda and libdf11_cuda exists.
if(TARGET df11_forward_cuda AND TARGET df11_cuda)
  df11_add_test(test_forward_cuda test_forward_cuda.c)
  target_link_libraries(test_forward_cuda PRIVATE df11_forward_cuda df11_cuda)
endif()
