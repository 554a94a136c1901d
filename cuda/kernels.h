/*
 * libdf11_cuda's decode kernels by name, for benchmarks and tests that
 * compare them (not part of the installed API). df11_cuda_decode,
 * df11_cuda_decode_range and df11_cuda_decode_batch use the staged kernel.
 */
#ifndef DF11_CUDA_KERNELS_H
#define DF11_CUDA_KERNELS_H

#include "df11_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
	DF11_CUDA_KERNEL_WINDOW = 0, /* one thread per window run, 16-byte
					stores from registers (decode_kernel.h) */
	DF11_CUDA_KERNEL_STAGED = 1  /* warps staged through shared memory
					(decode_staged.h): the default */
};

/* df11_cuda_decode_batch with the given kernel. */
df11_result df11_cuda_decode_batch_kernel(const df11_cuda_model *m,
					  const df11_cuda_job *jobs,
					  size_t n_jobs, int kernel,
					  cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* DF11_CUDA_KERNELS_H */
