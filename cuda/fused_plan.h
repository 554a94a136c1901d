/*
 * Host side of the fused decode + matrix-vector kernel (cuda/fused.h):
 * turning tensors and BF16 matrices into the kernel's launch parameters.
 * Plain C, shared by libdf11_cuda and the CPU run of the kernel
 * (tests/test_fused_emul.c), so that the test exercises the parameters the
 * GPU gets.
 */
#ifndef DF11_CUDA_FUSED_PLAN_H
#define DF11_CUDA_FUSED_PLAN_H

#include <stdint.h>

#include "cuda/fused.h"
#include "df11.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor t (df11k_tensor_init; device or host addresses) as a (rows,
 * cols) matrix; index: its fused index (huffman only, df11f_index_size
 * bytes, 8-aligned). */
df11_result df11f_matrix_from_tensor(df11f_matrix *M, const df11k_tensor *t,
				     const uint8_t *index, uint64_t rows,
				     uint64_t cols);

/* A plain BF16 (rows, cols) row-major matrix. */
void df11f_matrix_from_bf16(df11f_matrix *M, const uint16_t *w, uint64_t rows);

/* An empty launch multiplying x (batch, ldx) BF16 by matrices of `cols`
 * columns: y = (0) or y += (1) x W^T. */
df11_result df11f_launch_init(df11f_launch *L, const uint16_t *x, uint64_t ldx,
			      uint64_t cols, int batch, int accumulate);

/* Adds matrix M (rows x L's cols), writing y[b * ldy + n]. */
df11_result df11f_launch_add(df11f_launch *L, const df11f_matrix *M, float *y,
			     uint64_t ldy);

/* Threads per CTA and dynamic shared-memory bytes of L's launch. */
uint32_t df11f_launch_threads(const df11f_launch *L);
uint32_t df11f_launch_smem(const df11f_launch *L);

#ifdef __cplusplus
}
#endif

#endif /* DF11_CUDA_FUSED_PLAN_H */
