/* The codec's test tensors (those of tests/test_codec.c plus layouts that
 * stress the GPU decomposition), shared by the CPU run of the kernel and
 * the GPU tests so that both check the same inputs. */
#ifndef DF11_TESTS_CUDA_CASES_H
#define DF11_TESTS_CUDA_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

typedef struct cuda_case {
	char name[64];
	uint16_t *data; /* n words */
	uint64_t n;
	df11_encode_options opt;
} cuda_case;

/* All cases; free with cuda_cases_free. */
size_t cuda_cases_make(cuda_case **cases_ret);
void cuda_cases_free(cuda_case *cases, size_t n);

/* Ranges [first, first + count) worth checking for a tensor of n elements
 * with the given block starts (u64 LE, n_blocks of them; may be NULL):
 * head, tail, middle, single elements and short runs on both sides of
 * block boundaries, and pseudo-random ones. Returns how many (at most
 * max). */
size_t cuda_case_ranges(uint64_t n, const uint8_t *block_starts,
			uint64_t n_blocks, uint64_t seed, uint64_t (*ranges)[2],
			size_t max);

/* "element 123 is 0x1234, expected 0x4321", or "" if equal. */
const char *cuda_case_diff(const uint16_t *want, const uint16_t *got,
			   uint64_t n);

/* The synthetic Mistral-Nemo layer: q, k, v, o, gate, up, down with every
 * dimension divided by `div` (1 = the real shapes). */
typedef struct cuda_matrix {
	const char *name;
	uint64_t rows, cols;
} cuda_matrix;
void cuda_nemo_layer(unsigned div, cuda_matrix out[7]);

#endif
