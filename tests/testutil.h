/* Helpers shared by the cmocka tests. */
#ifndef DF11_TESTUTIL_H
#define DF11_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

/* Encodes src with opt, decodes it with the reference decoder, the fast
 * decoder on 1 and on 3 threads, and a few ranges; fails the current test
 * unless every result equals src word for word. Returns the encoded size. */
size_t roundtrip(const uint16_t *src, uint64_t n, const df11_encode_options *opt);

/* Encodes src into a fresh buffer; *size_ret gets its size. */
uint8_t *encode_alloc(const uint16_t *src, uint64_t n,
		      const df11_encode_options *opt, size_t *size_ret);

#endif
