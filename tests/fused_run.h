/* The CPU run of libdf11_cuda's fused decode + matrix-vector kernel
 * (cuda/fused.h, cuda/fused.cu) and of its prepare launches, shared by the
 * tests that run it. */
#ifndef DF11_TESTS_FUSED_RUN_H
#define DF11_TESTS_FUSED_RUN_H

#include <stdint.h>

#include "cuda/fused.h"
#include "tests/cuda_upload.h"

/* The fused kernel's prepare launches (cuda/fused.h) on T as a (rows,
 * cols) matrix, checking every segment's entry point against the sum of
 * the code lengths before it: its fused index (malloc'd,
 * df11f_index_size bytes) and their error bits. */
uint8_t *fused_index_make(const emul_tensor *T, uint64_t rows, uint64_t cols,
			  uint32_t *err);

/* Every CTA of launch L, in reverse order, each thread by thread per
 * phase (the FMA kernel, or the tensor-core one for batch widths from
 * DF11F_MMA_NB, with the warp's mma emulated from its lanes' fragments);
 * the error bits. */
uint32_t fused_run_launch(const df11f_launch *L);

#endif
