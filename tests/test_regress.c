/*
 * One test per bug found by the fuzzers (fuzz/) or the hostile-input tests,
 * each named after what it caught, as libdeflate keeps a test per class of
 * bug. A test here reproduces the failing input exactly and states the
 * expected behaviour; the fix lives in its own "fix: ..." commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "df11.h"
#include "df11/synth.h"
#include "tests/testutil.h"

/* Caught by fuzz_roundtrip (seed roundtrip/words_w16_b4_l15 with its block
 * byte set to 0): window_log2 15 or 16 with block_log2 0 ("default") made
 * df11_encode fail with "block_log2 6 out of range", a value the caller
 * never chose. The default now shrinks so that window_log2 + block_log2
 * stays within 20. */
static void test_default_block_log2_with_large_windows(void **state)
{
	(void)state;
	uint64_t n = 5000;
	uint16_t *v = malloc(n * 2);
	assert_non_null(v);
	df11_synth_matrix(1, 1, n, 0.02f, v);
	for (int w = 6; w <= 16; w++) {
		df11_encode_options opt = {.window_log2 = w};
		size_t size;
		uint8_t *enc = encode_alloc(v, n, &opt, &size);
		df11_tensor_info info;
		assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
		assert_int_equal(info.codec, DF11_CODEC_HUFFMAN);
		assert_int_equal(info.window_log2, w);
		assert_int_equal(info.block_log2, w + 6 <= 20 ? 6 : 20 - w);
		free(enc);
		roundtrip(v, n, &opt);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_block_log2_with_large_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
