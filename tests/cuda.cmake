# GPU decoder tests.
#
# test_cuda_emul runs the kernel's per-thread functions on the CPU; it needs
# neither nvcc nor a GPU, so it builds and runs in every configuration.
df11_add_test(test_cuda_emul test_cuda_emul.c cuda_cases.c cuda_upload.c
              ${CMAKE_SOURCE_DIR}/cuda/plan.c)
target_link_libraries(test_cuda_emul PRIVATE df11_testutil)
if(DEFINED DF11_CUDA_CTA_LOG2) # the same CTA size as libdf11_cuda
  target_compile_definitions(test_cuda_emul PRIVATE
                             DF11K_THREADS_LOG2=${DF11_CUDA_CTA_LOG2})
endif()
if(DEFINED DF11_CUDA_STAGED_STEP) # and the same step length
  target_compile_definitions(test_cuda_emul PRIVATE
                             DF11K2_STEP=${DF11_CUDA_STAGED_STEP})
endif()
if(DEFINED DF11_CUDA_RUN_LOG2) # and the same runs
  target_compile_definitions(test_cuda_emul PRIVATE
                             DF11K2_RUN_LOG2=${DF11_CUDA_RUN_LOG2})
endif()
# The extremes of those build options: 32-thread CTAs with 32-lookup
# steps and 64-bit runs, 256-thread CTAs with 8-lookup steps and runs of
# whole windows (up to 2^16 bits).
foreach(cfg "5;32;6" "8;8;16")
  list(GET cfg 0 cta)
  list(GET cfg 1 step)
  list(GET cfg 2 run)
  set(t test_cuda_emul_cta${cta}_step${step}_run${run})
  df11_add_test(${t} test_cuda_emul.c cuda_cases.c cuda_upload.c
                ${CMAKE_SOURCE_DIR}/cuda/plan.c)
  target_link_libraries(${t} PRIVATE df11_testutil)
  target_compile_definitions(${t} PRIVATE DF11K_THREADS_LOG2=${cta}
                             DF11K2_STEP=${step} DF11K2_RUN_LOG2=${run})
endforeach()

# test_cuda_gpu runs libdf11_cuda on a GPU; where there is none it skips
# every test with a message and passes.
if(DF11_ENABLE_CUDA)
  df11_add_test(test_cuda_gpu test_cuda_gpu.c cuda_cases.c cuda_upload.c
                fused_run.c)
  target_link_libraries(test_cuda_gpu PRIVATE df11_cuda_static df11_testutil)
  set_tests_properties(test_cuda_gpu PROPERTIES TIMEOUT 900)
endif()

# The fused decode + matrix-vector kernel on the CPU (cuda/fused.h).
df11_add_test(test_fused_emul test_fused_emul.c cuda_upload.c fused_run.c
              ${CMAKE_SOURCE_DIR}/cuda/plan.c ${CMAKE_SOURCE_DIR}/cuda/fused_plan.c)
target_link_libraries(test_fused_emul PRIVATE df11_testutil)
