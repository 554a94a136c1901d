# The forward pass: config parser, CPU reference vs transformers fixtures,
# DF11 == BF16 bit for bit, df11-run.
df11_add_test(test_forward test_forward.c)
target_link_libraries(test_forward PRIVATE df11_llm df11_testutil PkgConfig::JANSSON)
add_dependencies(test_forward df11-run)

# The CUDA forward pass on a GPU (skips itself without one). Built where
# llm/CMakeLists.txt made df11_llm_cuda.
if(TARGET df11_llm_cuda)
  df11_add_test(test_forward_cuda test_forward_cuda.c)
  target_link_libraries(test_forward_cuda PRIVATE df11_llm_cuda df11_testutil)
endif()

# The decode-step arithmetic of the CUDA forward pass on the CPU: the
# reference with every product through the fused kernel's CPU run.
df11_add_test(test_forward_fused test_forward_fused.c cuda_upload.c fused_run.c
              ${CMAKE_SOURCE_DIR}/cuda/plan.c ${CMAKE_SOURCE_DIR}/cuda/fused_plan.c)
target_link_libraries(test_forward_fused PRIVATE df11_llm df11_testutil)
