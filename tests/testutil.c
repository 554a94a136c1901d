#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

uint8_t *encode_alloc(const uint16_t *src, uint64_t n,
		      const df11_encode_options *opt, size_t *size_ret)
{
	size_t cap = df11_encode_bound(n);
	uint8_t *buf = malloc(cap);
	assert_non_null(buf);
	df11_result r = df11_encode(src, n, opt, buf, cap, size_ret);
	if (r != DF11_OK)
		fail_msg("encode failed: %s", df11_last_error());
	return buf;
}

static void expect_equal_words(const uint16_t *want, const uint16_t *got,
			       uint64_t n, const char *what)
{
	if (n && memcmp(want, got, n * 2) != 0) {
		uint64_t i = 0;
		while (want[i] == got[i])
			i++;
		fail_msg("%s: element %llu is 0x%04x, expected 0x%04x", what,
			 (unsigned long long)i, got[i], want[i]);
	}
}

size_t roundtrip(const uint16_t *src, uint64_t n, const df11_encode_options *opt)
{
	size_t size;
	uint8_t *enc = encode_alloc(src, n, opt, &size);
	/* Poison the output so unwritten elements show. */
	uint16_t *out = malloc(n * 2 + 2);
	assert_non_null(out);

	memset(out, 0xa5, n * 2);
	df11_result r = df11_decode_reference(enc, size, out, n);
	if (r != DF11_OK)
		fail_msg("reference decode: %s", df11_last_error());
	expect_equal_words(src, out, n, "reference decoder");

	int threads[] = {1, 3};
	for (int t = 0; t < 2; t++) {
		df11_decoder *d = df11_decoder_new(threads[t]);
		assert_non_null(d);
		memset(out, 0x5a, n * 2);
		r = df11_decode(d, enc, size, out, n);
		if (r != DF11_OK)
			fail_msg("fast decode (%d threads): %s", threads[t],
				 df11_last_error());
		expect_equal_words(src, out, n, "fast decoder");

		/* Ranges: the head, the tail, and a middle slice. */
		uint64_t ranges[3][2] = {{0, n < 7 ? n : 7},
					 {n > 1000 ? n - 1000 : 0, n > 1000 ? 1000 : n},
					 {n / 3, n / 3}};
		for (int k = 0; k < 3; k++) {
			memset(out, 0x33, n * 2);
			r = df11_decode_range(d, enc, size, ranges[k][0],
					      ranges[k][1], out);
			if (r != DF11_OK)
				fail_msg("range decode: %s", df11_last_error());
			expect_equal_words(src + ranges[k][0], out, ranges[k][1],
					   "range decoder");
		}
		df11_decoder_free(d);
	}
	free(out);
	free(enc);
	return size;
}

char *test_source_path(const char *rel)
{
	const char *src = getenv("DF11_SOURCE_DIR");
	size_t n = strlen(src ? src : ".") + strlen(rel) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", src ? src : ".", rel);
	return p;
}

char *test_stories_dir(void)
{
	const char *env = getenv("DF11_STORIES");
	char *p = env ? strdup(env) : test_source_path("tests/fixtures/stories260K");
	assert_non_null(p);
	size_t n = strlen(p) + 32;
	char *st = malloc(n);
	assert_non_null(st);
	snprintf(st, n, "%s/model.safetensors", p);
	int ok = access(st, R_OK) == 0;
	free(st);
	if (!ok)
		fail_msg("stories260K not found at %s", p);
	return p;
}
