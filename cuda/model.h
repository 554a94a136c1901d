/*
 * Internal: what libdf11_cuda keeps of an uploaded model, shared by its
 * decode (cuda/df11_cuda.cu) and fused matrix-vector (cuda/fused.cu) parts.
 */
#ifndef DF11_CUDA_MODEL_H
#define DF11_CUDA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/decode_kernel.h"
#include "df11_cuda.h"

typedef struct cuda_tensor {
	df11k_tensor t;         /* device addresses */
	uint8_t *block_starts;  /* host copy (huffman): ranges to items */
	uint8_t *fused;         /* device: fused index (huffman), or NULL */
	uint64_t rows, cols;    /* its matrix shape once prepared (0: not) */
} cuda_tensor;

struct df11_cuda_model {
	uint8_t *mem;           /* device image */
	size_t mem_size;
	int owned;              /* mem came from cudaMalloc here */
	unsigned int *err;      /* device: DF11K_ERR_* bits */
	size_t n;
	cuda_tensor *tensors;
};

#endif /* DF11_CUDA_MODEL_H */
