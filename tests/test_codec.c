/* Round trips of the tensor codec: every decoder equals the input word for
 * word, on degenerate, adversarial and realistic tensors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/parse.h"
#include "synth/synth.h"
#include "tests/testutil.h"

static uint16_t *alloc_words(uint64_t n)
{
	uint16_t *p = malloc(n * 2 + 2);
	assert_non_null(p);
	return p;
}

static int codec_of(const uint16_t *src, uint64_t n,
		    const df11_encode_options *opt)
{
	size_t size;
	uint8_t *enc = encode_alloc(src, n, opt, &size);
	df11_tensor_info info;
	assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
	free(enc);
	return info.codec;
}

static void test_empty(void **state)
{
	(void)state;
	uint16_t dummy = 0;
	assert_int_equal(roundtrip(&dummy, 0, NULL), 32);
	assert_int_equal(codec_of(&dummy, 0, NULL), DF11_CODEC_RAW);
}

static void test_one_element(void **state)
{
	(void)state;
	/* Also what a 0-dimensional (scalar) tensor is to the codec. */
	uint16_t v[] = {0x3f80};
	roundtrip(v, 1, NULL);
	uint16_t nan[] = {0x7fc1};
	roundtrip(nan, 1, NULL);
}

static void test_all_equal_and_zeros(void **state)
{
	(void)state;
	uint64_t n = 100000;
	uint16_t *v = alloc_words(n);
	for (uint64_t i = 0; i < n; i++)
		v[i] = 0x3c00;
	size_t size = roundtrip(v, n, NULL);
	assert_int_equal(codec_of(v, n, NULL), DF11_CODEC_SINGLE);
	assert_int_equal(size, 32 + n);
	memset(v, 0, n * 2);
	roundtrip(v, n, NULL);
	/* -0.0 among +0.0: same exponent, sign must survive. */
	v[777] = 0x8000;
	roundtrip(v, n, NULL);
	/* Same exponent, different mantissas and signs. */
	for (uint64_t i = 0; i < n; i++)
		v[i] = (uint16_t)(0x3f80 | (i & 0x7f) | ((i & 0x80) << 8));
	roundtrip(v, n, NULL);
	free(v);
}

static void test_all_bit_patterns(void **state)
{
	(void)state;
	/* NaN payloads, +-inf, +-0, subnormals: every one of the 65,536. */
	uint64_t n = 65536;
	uint16_t *v = alloc_words(n);
	for (uint64_t i = 0; i < n; i++)
		v[i] = (uint16_t)i;
	roundtrip(v, n, NULL);
	/* Shuffled, and repeated so that Huffman pays off on a skew. */
	df11_rng r;
	df11_rng_seed(&r, 9);
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = df11_rng_next(&r) % (i + 1);
		uint16_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	roundtrip(v, n, NULL);
	uint64_t m = 4 * n;
	uint16_t *w = alloc_words(m);
	for (uint64_t i = 0; i < m; i++)
		w[i] = (i % 4 == 0) ? v[i / 4] : (uint16_t)(0x3c00 | (i & 0x807f));
	roundtrip(w, m, NULL);
	assert_int_equal(codec_of(w, m, NULL), DF11_CODEC_HUFFMAN);
	free(w);
	free(v);
}

static void test_random_bits_stored_raw(void **state)
{
	(void)state;
	uint64_t n = 1 << 20;
	uint16_t *v = alloc_words(n);
	df11_rng r;
	df11_rng_seed(&r, 5);
	for (uint64_t i = 0; i < n; i++)
		v[i] = (uint16_t)df11_rng_next(&r);
	size_t size = roundtrip(v, n, NULL);
	assert_int_equal(codec_of(v, n, NULL), DF11_CODEC_RAW);
	assert_true(size <= 2 * n + 32);
	free(v);
}

static void check_gaussian(uint64_t rows, uint64_t cols, float std,
			   const df11_encode_options *opt)
{
	uint64_t n = rows * cols;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(rows * 31 + cols, rows, cols, std, v);
	size_t size = roundtrip(v, n, opt);
	df11_exponent_stats st;
	df11_exponent_histogram(v, n, &st);
	double bpw = 8.0 * (double)size / (double)n;
	/* The codec's whole overhead on realistic data: under 0.05 bits. */
	if (n >= (1u << 20))
		assert_true(bpw <= 8.0 + st.entropy_bits + 0.05);
	assert_true(bpw < 12.0);
	free(v);
}

static void test_gaussian_scales(void **state)
{
	(void)state;
	float scales[] = {1e-4f, 0.02f, 1.0f, 300.0f};
	for (int i = 0; i < 4; i++)
		check_gaussian(512, 2048, scales[i], NULL);
}

static void test_heavy_tails_outliers(void **state)
{
	(void)state;
	uint64_t n = 1 << 20;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(77, 1024, 1024, 0.01f, v);
	df11_rng r;
	df11_rng_seed(&r, 6);
	for (int k = 0; k < 200; k++) { /* extreme outliers, inf, nan */
		uint64_t i = df11_rng_next(&r) % n;
		uint16_t specials[] = {0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x0001,
				       0x8001, 0x7f7f, 0x4700};
		v[i] = specials[k % 8];
	}
	roundtrip(v, n, NULL);
	assert_int_equal(codec_of(v, n, NULL), DF11_CODEC_HUFFMAN);
	free(v);
}

static void test_odd_lengths_and_layouts(void **state)
{
	(void)state;
	/* Lengths that are not a multiple of any block, small windows and
	 * blocks so that there are many of each, and short code limits. */
	uint64_t lens[] = {2, 3, 17, 255, 1000, 65537, 100003};
	df11_encode_options opts[] = {
		{0},
		{.window_log2 = 6, .block_log2 = 0},
		{.window_log2 = 6, .block_log2 = 3},
		{.window_log2 = 9, .block_log2 = 1, .max_code_len = 5},
		{.window_log2 = 16, .block_log2 = 4},
		{.threads = 2, .window_log2 = 7, .block_log2 = 2},
	};
	uint16_t *v = alloc_words(100003);
	df11_synth_matrix(4, 1, 100003, 0.02f, v);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
		for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
			roundtrip(v, lens[i], &opts[k]);
	free(v);
}

/* Exponent counts that halve from one exponent to the next force codes of
 * every length up to the limit of 15, past the 12-bit lookup tables. */
static void test_long_codes(void **state)
{
	(void)state;
	uint64_t n = 1 << 20;
	uint16_t *v = alloc_words(n);
	df11_synth_long_codes(13, n, v);
	size_t size;
	uint8_t *enc = encode_alloc(v, n, NULL, &size);
	df11_tensor_info info;
	assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
	assert_int_equal(info.max_code_len, 15);
	free(enc);
	roundtrip(v, n, NULL);
	df11_encode_options opt = {.window_log2 = 6, .block_log2 = 2};
	roundtrip(v, n, &opt);
	free(v);
}

static void test_threads_give_identical_bytes(void **state)
{
	(void)state;
	uint64_t n = 5u << 20;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(8, 5 * 1024, 1024, 0.02f, v);
	size_t s1, s2, s3;
	df11_encode_options o1 = {.threads = 1}, o2 = {.threads = 2},
			    o3 = {.threads = 5};
	uint8_t *a = encode_alloc(v, n, &o1, &s1);
	uint8_t *b = encode_alloc(v, n, &o2, &s2);
	uint8_t *c = encode_alloc(v, n, &o3, &s3);
	assert_int_equal(s1, s2);
	assert_int_equal(s1, s3);
	assert_memory_equal(a, b, s1);
	assert_memory_equal(a, c, s1);
	free(a);
	free(b);
	free(c);
	free(v);
}

static void test_large_tensor(void **state)
{
	(void)state;
	/* 64M elements: the size of a real projection matrix. */
	uint64_t rows = 8192, cols = 8192, n = rows * cols;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(64, rows, cols, 0.02f, v);
	df11_encode_options opt = {.threads = 2};
	size_t size;
	uint8_t *enc = encode_alloc(v, n, &opt, &size);
	uint16_t *out = alloc_words(n);
	memset(out, 0xee, n * 2);
	assert_int_equal(df11_decode_reference(enc, size, out, n), DF11_OK);
	assert_memory_equal(v, out, n * 2);
	df11_decoder *d = df11_decoder_new(2);
	memset(out, 0xee, n * 2);
	assert_int_equal(df11_decode(d, enc, size, out, n), DF11_OK);
	assert_memory_equal(v, out, n * 2);
	/* Rows 4000..4003 only. */
	memset(out, 0xee, 8 * cols);
	assert_int_equal(df11_decode_range(d, enc, size, 4000 * cols, 4 * cols, out),
			 DF11_OK);
	assert_memory_equal(v + 4000 * cols, out, 8 * cols);
	/* A 16 MiB range from an odd element into a buffer that is not
	 * 64-byte aligned (streaming stores cover only whole lines). */
	uint64_t first = 1000003, count = (uint64_t)8 << 20;
	memset(out, 0xee, 2 * count + 64);
	assert_int_equal(df11_decode_range(d, enc, size, first, count, out + 3),
			 DF11_OK);
	assert_memory_equal(v + first, out + 3, 2 * count);
	assert_int_equal(out[2], 0xeeee);
	assert_int_equal(out[3 + count], 0xeeee);
	df11_decoder_free(d);
	df11_exponent_stats st;
	df11_exponent_histogram(v, n, &st);
	double bpw = 8.0 * (double)size / (double)n;
	print_message("64M elements: %.4f bits/weight, 8 + H = %.4f\n", bpw,
		      8 + st.entropy_bits);
	assert_true(bpw <= 8.0 + st.entropy_bits + 0.05);
	free(out);
	free(enc);
	free(v);
}

/* A tensor decoded in pieces cut by df11_decode_piece_end, for reaches
 * below one block up to many blocks, from a block's start and from inside
 * a block: every cut lies past its start and within reach; it falls on a
 * block boundary whenever one is in reach, after whole groups of four
 * blocks (the decoder's side-by-side width) whenever a group is; and the
 * pieces decode to the input word for word. */
static void test_piece_cuts(void **state)
{
	(void)state;
	uint64_t n = 100003;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(7, 1, n, 0.02f, v);
	/* 128-bit blocks: about 47 codes each. */
	df11_encode_options opt = {.window_log2 = 6, .block_log2 = 1};
	size_t size;
	uint8_t *enc = encode_alloc(v, n, &opt, &size);
	df11_parsed P;
	assert_int_equal(df11_parse(enc, size, &P), DF11_OK);
	assert_int_equal(P.layout.codec, DF11_CODEC_HUFFMAN);
	assert_true(P.layout.n_blocks > 1000);
	df11_decoder *d = df11_decoder_new(1);
	assert_non_null(d);
	uint16_t *out = alloc_words(n);
	static const uint64_t wants[] = {1, 7, 50, 97, 200, 1000, 4099};
	int grouped = 0, element_cuts = 0;
	for (size_t w = 0; w < sizeof wants / sizeof *wants; w++) {
		uint64_t want = wants[w];
		for (uint64_t start = 0; start <= 13; start += 13) {
			memset(out, 0xee, 2 * n);
			if (start)
				assert_int_equal(df11_decode_parsed(d, &P, 0, start, out),
						 DF11_OK);
			for (uint64_t first = start; first < n;) {
				uint64_t end = df11_decode_piece_end(&P, first, want);
				assert_true(end > first && end <= n &&
					    end - first <= want);
				uint64_t reach = first + want < n ? first + want : n;
				uint64_t j0 = df11_block_of(&P, first);
				uint64_t blocks = df11_block_of(&P, reach) - j0;
				uint64_t j1 = df11_block_of(&P, end);
				if (end == n) {
					/* the rest, whatever it holds */
				} else if (blocks >= 4) {
					assert_int_equal(df11_block_start_elem(&P, j1), end);
					assert_int_equal((j1 - j0) % 4, 0);
					grouped++;
				} else if (blocks >= 1) {
					assert_int_equal(df11_block_start_elem(&P, j1), end);
				} else {
					assert_int_equal(end, first + want);
					element_cuts++;
				}
				assert_int_equal(df11_decode_parsed(d, &P, first, end - first,
								    out + first),
						 DF11_OK);
				first = end;
			}
			assert_memory_equal(v, out, 2 * n);
		}
	}
	assert_true(grouped > 100 && element_cuts > 100);
	df11_decoder_free(d);
	free(out);
	free(enc);
	free(v);
}

/* Histograms as the encoder takes them (one by one for short inputs, by
 * pairs of exponents from 2^21 elements on) against a plain count, on an
 * odd length with every exponent present; and the round trip of such a
 * tensor coded by one thread and by two. */
static void test_histogram_counts(void **state)
{
	(void)state;
	uint64_t n = ((uint64_t)1 << 21) + 13;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(65, 1, n, 0.02f, v);
	for (uint64_t i = 0; i < 65536; i++)
		v[(i * 2654435761u) % n] = (uint16_t)i;
	for (uint64_t len = n - 8; len <= n; len += 4) {
		uint64_t want[256] = {0};
		for (uint64_t i = 0; i < len; i++)
			want[(v[i] >> 7) & 0xff]++;
		df11_exponent_stats st;
		df11_exponent_histogram(v, len, &st);
		assert_memory_equal(st.count, want, sizeof want);
		assert_int_equal(st.distinct, 256);
	}
	for (int t = 1; t <= 2; t++) {
		df11_encode_options opt = {.threads = t};
		roundtrip(v, n, &opt);
	}
	free(v);
}

static void test_inspect_and_errors(void **state)
{
	(void)state;
	uint64_t n = 300000;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(10, 300, 1000, 0.02f, v);
	size_t size;
	uint8_t *enc = encode_alloc(v, n, NULL, &size);
	df11_tensor_info info;
	assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
	assert_int_equal(info.n_elems, n);
	assert_int_equal(info.codec, DF11_CODEC_HUFFMAN);
	assert_true(info.max_code_len <= DF11_MAX_CODE_LEN);
	assert_int_equal(info.encoded_size, size);
	/* Wrong sizes, truncation, bad magic, bad output size. */
	assert_int_equal(df11_inspect(enc, size - 1, &info), DF11_BAD_DATA);
	assert_int_equal(df11_inspect(enc, 31, &info), DF11_BAD_DATA);
	uint16_t *out = alloc_words(n);
	df11_decoder *d = df11_decoder_new(1);
	assert_int_equal(df11_decode(d, enc, size, out, n - 1), DF11_INVALID_ARG);
	assert_int_equal(df11_decode_range(d, enc, size, n - 5, 6, out),
			 DF11_INVALID_ARG);
	enc[0] ^= 1;
	assert_int_equal(df11_decode(d, enc, size, out, n), DF11_BAD_DATA);
	enc[0] ^= 1;
	/* Too small an output buffer for the encoder. */
	size_t got;
	assert_int_equal(df11_encode(v, n, NULL, out, 100, &got),
			 DF11_BUFFER_TOO_SMALL);
	df11_encode_options bad = {.window_log2 = 3};
	assert_int_equal(df11_encode(v, n, &bad, enc, size, &got),
			 DF11_INVALID_ARG);
	assert_string_not_equal(df11_strerror(DF11_BAD_DATA), "");
	df11_decoder_free(d);
	free(out);
	free(enc);
	free(v);
}

/* Every single-bit flip in the stream: the decoders either refuse or
 * agree with each other (the container's checksums catch the rest). */
static void test_stream_bit_flips(void **state)
{
	(void)state;
	uint64_t n = 3000;
	uint16_t *v = alloc_words(n);
	df11_synth_matrix(12, 3, 1000, 0.02f, v);
	df11_encode_options opt = {.window_log2 = 6, .block_log2 = 1};
	size_t size;
	uint8_t *enc = encode_alloc(v, n, &opt, &size);
	df11_parsed P;
	assert_int_equal(df11_parse(enc, size, &P), DF11_OK);
	uint16_t *a = alloc_words(n), *b = alloc_words(n);
	df11_decoder *d = df11_decoder_new(1);
	int refused = 0, total = 0;
	for (uint64_t bit = 0; bit < 8 * (uint64_t)P.layout.off_sm; bit++) {
		enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		df11_result ra = df11_decode_reference(enc, size, a, n);
		df11_result rb = df11_decode(d, enc, size, b, n);
		if (ra == DF11_OK && rb == DF11_OK)
			assert_memory_equal(a, b, n * 2);
		refused += ra != DF11_OK;
		total++;
		enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (uint64_t bit = 8 * P.layout.off_stream; bit < 8 * size; bit += 3) {
		enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		df11_result ra = df11_decode_reference(enc, size, a, n);
		df11_result rb = df11_decode(d, enc, size, b, n);
		/* A flip in a code changes its length or value: the reference
		 * catches length changes; equal-length swaps decode alike. */
		if (ra == DF11_OK && rb == DF11_OK)
			assert_memory_equal(a, b, n * 2);
		enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	print_message("header+index flips refused by the reference: %d of %d\n",
		      refused, total);
	df11_decoder_free(d);
	free(a);
	free(b);
	free(enc);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_one_element),
		cmocka_unit_test(test_all_equal_and_zeros),
		cmocka_unit_test(test_all_bit_patterns),
		cmocka_unit_test(test_random_bits_stored_raw),
		cmocka_unit_test(test_gaussian_scales),
		cmocka_unit_test(test_heavy_tails_outliers),
		cmocka_unit_test(test_odd_lengths_and_layouts),
		cmocka_unit_test(test_long_codes),
		cmocka_unit_test(test_threads_give_identical_bytes),
		cmocka_unit_test(test_inspect_and_errors),
		cmocka_unit_test(test_stream_bit_flips),
		cmocka_unit_test(test_histogram_counts),
		cmocka_unit_test(test_large_tensor),
		cmocka_unit_test(test_piece_cuts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
