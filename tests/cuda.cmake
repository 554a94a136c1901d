# GPU decoder tests.
#
# test_cuda_emul runs the kernel's per-thread functions on the CPU; it needs
# neither nvcc nor a GPU, so it builds and runs in every configuration.
df11_add_test(test_cuda_emul test_cuda_emul.c cuda_cases.c
              ${CMAKE_SOURCE_DIR}/cuda/plan.c)
target_link_libraries(test_cuda_emul PRIVATE df11_testutil)
