# df11-run: the Llama / Mistral forward pass (CPU reference; the CUDA
# forward pass is linked in when cuda/forward.cmake built df11_forward_cuda).
df11_add_tool(df11-run ${CMAKE_CURRENT_SOURCE_DIR}/df11-run.c)
