/*
 * Shared by the fuzz targets. Each target is one file that defines
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang,
 * -DDF11_BUILD_FUZZERS=ON) or with replay.c, whose main() runs a committed
 * corpus through it so the corpus is a plain ctest test with any compiler.
 *
 * A target aborts (FUZZ_CHECK) on a broken property, not only on a crash:
 * wrong data handed back is the bug that matters most to an inference
 * engine.
 */
#ifndef DF11_FUZZ_H
#define DF11_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                              \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: check failed: %s: ",       \
				__FILE__, __LINE__, #cond);                \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			abort();                                           \
		}                                                          \
	} while (0)

/* Fuzz input consumed front to back; reads past the end give zeros, so a
 * short input is still a valid (if dull) parameter set. */
typedef struct fuzz_in {
	const uint8_t *p;
	size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint32_t fuzz_u32(fuzz_in *in)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)fuzz_u8(in) << (8 * i);
	return v;
}

static inline uint64_t fuzz_u64(fuzz_in *in)
{
	uint64_t lo = fuzz_u32(in);
	return lo | ((uint64_t)fuzz_u32(in) << 32);
}

/* A 64-bit mix of the whole input (FNV-1a): derives "random" choices, such
 * as decode ranges, from inputs that are not parameter blocks. */
static inline uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#endif
