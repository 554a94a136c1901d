#include "synth/synth.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void df11_rng_seed(df11_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t df11_rng_next(df11_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double df11_rng_uniform(df11_rng *r)
{
	return (double)(df11_rng_next(r) >> 11) * 0x1.0p-53;
}

float df11_rng_normal(df11_rng *r)
{
	/* Box-Muller; the second value is discarded for simplicity. */
	double u1 = df11_rng_uniform(r), u2 = df11_rng_uniform(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void df11_synth_matrix(uint64_t seed, uint64_t rows, uint64_t cols, float std,
		       uint16_t *out)
{
	df11_rng r;
	df11_rng_seed(&r, seed);
	for (uint64_t i = 0; i < rows; i++) {
		float scale = std * expf(0.3f * df11_rng_normal(&r));
		for (uint64_t j = 0; j < cols; j++) {
			uint64_t bits = df11_rng_next(&r);
			/* Box-Muller from one 64-bit draw: 32 bits each. */
			double u1 = ((double)(bits >> 32) + 0.5) * 0x1.0p-32;
			double u2 = (double)(bits & 0xffffffffu) * 0x1.0p-32;
			float z = (float)(sqrt(-2.0 * log(u1)) *
					  cos(6.283185307179586 * u2));
			/* Heavy tail: 2% of values from a wider Gaussian. */
			if ((bits & 0x3f) == 0)
				z *= 3.0f;
			float v = scale * z;
			if ((bits >> 8 & 0x1ffff) == 0) /* ~1e-5: outlier */
				v = scale * (10.0f + 50.0f * (float)df11_rng_uniform(&r)) *
				    ((bits >> 40) & 1 ? -1.0f : 1.0f);
			out[i * cols + j] = df11_f32_to_bf16(v);
		}
	}
}

void df11_synth_norm(uint64_t seed, uint64_t n, float center, uint16_t *out)
{
	df11_rng r;
	df11_rng_seed(&r, seed);
	for (uint64_t i = 0; i < n; i++)
		out[i] = df11_f32_to_bf16(center * (1.0f + 0.1f * df11_rng_normal(&r)));
}

void df11_synth_long_codes(uint64_t seed, uint64_t n, uint16_t *out)
{
	df11_rng r;
	df11_rng_seed(&r, seed);
	uint64_t i = 0;
	for (int e = 0; i < n; e++) {
		uint64_t run = (n >> (e + 1)) ? (n >> (e + 1)) : n - i;
		for (uint64_t k = 0; k < run && i < n; k++, i++)
			out[i] = (uint16_t)(((100 + e) << 7) |
					    (df11_rng_next(&r) & 0x807f));
	}
	for (i = n - 1; i > 0 && n > 0; i--) {
		uint64_t j = df11_rng_next(&r) % (i + 1);
		uint16_t t = out[i];
		out[i] = out[j];
		out[j] = t;
	}
}
