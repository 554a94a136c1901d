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

/* BF16 <-> float: df11_f32_to_bf16, df11_bf16_to_f32. */
#include "common/bf16.h"

/* A weight matrix [rows x cols] of a trained network: each row has its own
 * scale (log-normal spread around std), values are Gaussian with a heavy
 * tail, and about 1 in 100,000 values is an outlier of 10-60 row scales. */
void df11_synth_matrix(uint64_t seed, uint64_t rows, uint64_t cols, float std,
		       uint16_t *out);

/* A norm weight vector: values near `center` with a small spread. */
void df11_synth_norm(uint64_t seed, uint64_t n, float center, uint16_t *out);

/* Words whose exponent counts halve from one exponent to the next (n/2 of
 * exponent 100, n/4 of 101, ...), shuffled, random sign and mantissa: an
 * optimal code then has codes of every length up to the 15-bit limit, past
 * the 12-bit decode tables, spread across windows and blocks. */
void df11_synth_long_codes(uint64_t seed, uint64_t n, uint16_t *out);

/* ------------------------------------------------------------------------
 * Synthetic checkpoints with the structure of Mistral-Nemo-Instruct-2407
 * (synth/synth_model.c): what df11-synth writes and bench_forward generates
 * in memory, the same bytes for the same preset, layer count and seed.
 * ---------------------------------------------------------------------- */

typedef struct df11_synth_preset {
	const char *name;
	uint64_t hidden, inter, layers, heads, kv_heads, head_dim, vocab;
	uint64_t max_pos;
} df11_synth_preset;

/* "nemo-12b", "small" or "tiny"; NULL for another name. */
const df11_synth_preset *df11_synth_preset_find(const char *name);

typedef struct df11_synth_tensor {
	char name[96];
	uint64_t rows, cols; /* cols == 0: a norm vector of rows elements */
} df11_synth_tensor;

/* Most tensors of a synthetic checkpoint (400 layers). */
#define DF11_SYNTH_MAX_TENSORS 4096

/* The tensors of preset p with `layers` decoder layers, in the order of the
 * model's state_dict, into out[DF11_SYNTH_MAX_TENSORS]. Returns how many,
 * or -1 if there would be more than DF11_SYNTH_MAX_TENSORS. */
int df11_synth_tensors(const df11_synth_preset *p, uint64_t layers,
		       df11_synth_tensor *out);

/* Tensor t's BF16 words (rows x max(cols, 1) of them) for seed, made on
 * `threads` threads; the same words whatever the thread count. */
void df11_synth_tensor_data(const df11_synth_tensor *t, uint64_t seed,
			    int threads, uint16_t *out);

/* config.json of preset p with `layers` layers (malloc'd; NULL if out of
 * memory). */
char *df11_synth_config_json(const df11_synth_preset *p, uint64_t layers);

#endif
