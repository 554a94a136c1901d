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

/* rel under the source tree ($DF11_SOURCE_DIR, which ctest sets; else the
 * current folder), malloc'd. */
char *test_source_path(const char *rel);

/* The stories260K checkpoint folder: $DF11_STORIES, else the copy in
 * tests/fixtures; fails the current test if neither has it. malloc'd. */
char *test_stories_dir(void);

#endif
