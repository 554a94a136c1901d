/* Exponent histograms: what the encoder builds its code from, and
 * df11_exponent_histogram for reports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "codec/codec_util.h"
#include "codec/parse.h"
#include "common/error.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

DF11_HOT static void histogram(const uint16_t *src, uint64_t n, uint64_t out[256])
{
	/* Eight sub-histograms break the store-to-load dependency on runs of
	 * equal exponents (the common case: a few exponents dominate); two
	 * 8-byte loads feed eight counts. */
	uint32_t h[8][256];
	memset(h, 0, sizeof h);
	memset(out, 0, 256 * sizeof out[0]);
	while (n) {
		/* Keep u32 counters from overflowing. */
		uint64_t m = n < (1u << 30) ? n : (1u << 30);
		uint64_t i = 0;
		for (; i + 8 <= m; i += 8) {
			uint64_t x, y;
			memcpy(&x, src + i, 8);
			memcpy(&y, src + i + 4, 8);
			h[0][(x >> 7) & 0xff]++;
			h[1][(x >> 23) & 0xff]++;
			h[2][(x >> 39) & 0xff]++;
			h[3][(x >> 55) & 0xff]++;
			h[4][(y >> 7) & 0xff]++;
			h[5][(y >> 23) & 0xff]++;
			h[6][(y >> 39) & 0xff]++;
			h[7][(y >> 55) & 0xff]++;
		}
		for (; i < m; i++)
			h[0][df11_bf16_exponent(src[i])]++;
		for (int s = 0; s < 256; s++) {
			uint64_t sum = 0;
			for (int k = 0; k < 8; k++) {
				sum += h[k][s];
				h[k][s] = 0;
			}
			out[s] += sum;
		}
		src += m;
		n -= m;
	}
}

/* Histogram of exponent pairs, from PAIR_HIST_MIN elements on: one count
 * per two elements. Of four words loaded as x, (x >> 7) masked to the low
 * byte of each 16-bit lane, ORed with itself shifted by 8, holds e0 | e1 << 8
 * in bits 0..15 and e2 | e3 << 8 in bits 32..47: four elements cost one
 * load, five ALU operations and two increments instead of four. Two
 * tables (summed in the end) keep runs of equal pairs from chaining their
 * increments. Returns -1 if the tables cannot be had (the caller then
 * counts one by one). */
#define PAIR_HIST_MIN (1u << 21)
DF11_HOT static int pair_histogram(const uint16_t *src, uint64_t n,
				   uint64_t out[256])
{
	uint32_t(*ph)[65536] = calloc(2, sizeof *ph);
	if (!ph)
		return -1;
	memset(out, 0, 256 * sizeof out[0]);
	uint64_t tail = n & 7;
	n -= tail;
	while (n) {
		uint64_t m = n < (1u << 30) ? n : (1u << 30);
		for (uint64_t i = 0; i < m; i += 8) {
			uint64_t x, y;
			if ((i & 31) == 0)
				__builtin_prefetch(src + i + PREFETCH_ELEMS);
			memcpy(&x, src + i, 8);
			memcpy(&y, src + i + 4, 8);
			x = (x >> 7) & 0x00ff00ff00ff00ffu;
			y = (y >> 7) & 0x00ff00ff00ff00ffu;
			x |= x >> 8;
			y |= y >> 8;
			ph[0][(uint16_t)x]++;
			ph[1][(uint16_t)(x >> 32)]++;
			ph[0][(uint16_t)y]++;
			ph[1][(uint16_t)(y >> 32)]++;
		}
		for (uint32_t k = 0; k < 65536; k++) {
			uint64_t c = (uint64_t)ph[0][k] + ph[1][k];
			out[k & 0xff] += c;
			out[k >> 8] += c;
		}
		if (n > m)
			memset(ph, 0, 2 * sizeof *ph);
		src += m;
		n -= m;
	}
	for (uint64_t i = 0; i < tail; i++)
		out[df11_bf16_exponent(src[i])]++;
	free(ph);
	return 0;
}

/* Exact exponent counts: by pairs for long inputs, else one by one. */
void df11_count_exponents(const uint16_t *src, uint64_t n, uint64_t out[256])
{
	if (n < PAIR_HIST_MIN || pair_histogram(src, n, out) != 0)
		histogram(src, n, out);
}

void df11_exponent_histogram(const uint16_t *src, uint64_t n_elems,
			     df11_exponent_stats *stats_ret)
{
	memset(stats_ret, 0, sizeof *stats_ret);
	if (!src || n_elems == 0)
		return;
	df11_count_exponents(src, n_elems, stats_ret->count);
	stats_ret->n_elems = n_elems;
	double h = 0;
	for (int s = 0; s < 256; s++) {
		if (!stats_ret->count[s])
			continue;
		stats_ret->distinct++;
		double p = (double)stats_ret->count[s] / (double)n_elems;
		h -= p * log2(p);
	}
	stats_ret->entropy_bits = h;
}

