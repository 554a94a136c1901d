/* The CPU run of libdf11_cuda's upload (the count and entry launches of
 * cuda/decode_kernel.h and cuda/decode_staged.h) on test tensors, shared by
 * the CPU runs of the decode and fused kernels. */
#ifndef DF11_TESTS_CUDA_UPLOAD_H
#define DF11_TESTS_CUDA_UPLOAD_H

#include <stdint.h>

#include "codec/parse.h"
#include "cuda/decode_kernel.h"
#include "df11.h"

/* A tensor as libdf11_cuda holds it, in host memory. */
typedef struct emul_tensor {
	uint8_t *enc; /* exact size: ASan sees any over-read */
	size_t size;
	uint8_t *tables;
	uint32_t *win_off; /* made by the count launch */
	uint32_t *run_off; /* made by the entry launch */
	df11_parsed P;
	df11k_tensor t;
	uint16_t *ref;
	uint64_t n;
} emul_tensor;

/* Encodes src (n words) with opt, checks it against the reference decoder,
 * and runs the upload's launches (huffman: win_off, run_off). */
void tensor_load(emul_tensor *T, const uint16_t *src, uint64_t n,
		 const df11_encode_options *opt);
void tensor_free(emul_tensor *T);

/* One CTA of the count launch (df11k_count_kernel); ORs its error bits
 * into *err. */
void run_count_cta(const df11k_batch *b, uint32_t cta, uint32_t *err);

/* The upload's count launch (win_off) and entry launch (run_off) for one
 * huffman tensor; their error bits. */
uint32_t run_count(const df11k_tensor *t, uint32_t *win_off);
uint32_t run_entries(const df11k_tensor *t, uint32_t *run_off);

#endif
