/* Internal to codec/: tuning constants and helpers of the CPU encoder
 * and decoders. */
#ifndef DF11_CODEC_UTIL_H
#define DF11_CODEC_UTIL_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "df11's CPU fast paths assume a little-endian host"
#endif

/* Blocks a CPU thread decodes side by side. */
#ifndef STREAMS
#define STREAMS 4
#endif

/* The hot loops are compiled twice, for x86-64-v3 (Haswell and later:
 * BMI2's flag-free variable shifts free the registers that shifts by %cl
 * tie up) and for baseline x86-64, and chosen when the library loads. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DF11_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DF11_HOT
#endif

/* How far ahead the passes over BF16 input prefetch (8 KiB): the
 * hardware prefetcher alone left them waiting on memory. */
#define PREFETCH_ELEMS 4096

/* Below this many elements per thread, threads cost more than they save. */
#define MIN_ELEMS_PER_THREAD (1u << 20)
#define MAX_THREADS 256

static inline int clamp_threads(int threads, uint64_t n_elems)
{
	uint64_t by_size = n_elems / MIN_ELEMS_PER_THREAD;
	int t = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
	if ((uint64_t)t > by_size)
		t = by_size < 1 ? 1 : (int)by_size;
	return t;
}

/* Exact exponent counts of src[0..n) (codec/histogram.c). */
void df11_count_exponents(const uint16_t *src, uint64_t n, uint64_t out[256]);

#endif
