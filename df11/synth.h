/* Internal: deterministic synthetic BF16 weights with the statistics of
 * trained LLM tensors (used by tests, benchmarks and df11-synth). */
#ifndef DF11_SYNTH_H
#define DF11_SYNTH_H

#include <stdint.h>

typedef struct df11_rng {
	uint64_t s[4];
} df11_rng;

void df11_rng_seed(df11_rng *r, uint64_t seed);
uint64_t df11_rng_next(df11_rng *r);     /* xoshiro256** */
double df11_rng_uniform(df11_rng *r);    /* [0, 1) */
float df11_rng_normal(df11_rng *r);      /* N(0, 1) */

/* float32 -> BF16 with round-to-nearest-even (NaN stays NaN). */
uint16_t df11_f32_to_bf16(float f);
float df11_bf16_to_f32(uint16_t h);

/* A weight matrix [rows x cols] of a trained network: each row has its own
 * scale (log-normal spread around std), values are Gaussian with a heavy
 * tail, and about 1 in 100,000 values is an outlier of 10-60 row scales. */
void df11_synth_matrix(uint64_t seed, uint64_t rows, uint64_t cols, float std,
		       uint16_t *out);

/* A norm weight vector: values near `center` with a small spread. */
void df11_synth_norm(uint64_t seed, uint64_t n, float center, uint16_t *out);

#endif
