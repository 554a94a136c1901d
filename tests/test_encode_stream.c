/* The encoder in pieces (codec/encode_stream.h) against df11_encode: the
 * runs it gives must cover the encoded tensor exactly once and equal
 * df11_encode's bytes, for every piece split, thread count and option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/encode_stream.h"
#include "synth/synth.h"

#define B DF11_ES_BLOCK

/* Encodes src[0..n) in pieces of `piece` elements (a multiple of B) on
 * `threads` threads; returns the assembled bytes (and their size), having
 * checked that no byte is given twice or left out. */
static uint8_t *stream_encode(const uint16_t *src, uint64_t n, uint64_t piece,
			      int threads, const df11_encode_options *opt,
			      size_t *size_ret)
{
	df11_enc_stream *es = df11_enc_stream_new(threads);
	assert_non_null(es);
	assert_int_equal(df11_enc_stream_begin(es, n, opt), DF11_OK);
	for (uint64_t f = 0; f < n; f += piece) {
		uint64_t c = n - f < piece ? n - f : piece;
		assert_int_equal(df11_enc_stream_count(es, src + f, f, c), DF11_OK);
	}
	df11_layout L;
	assert_int_equal(df11_enc_stream_plan(es, &L), DF11_OK);
	size_t total = (size_t)L.total_size;
	uint8_t *out = malloc(total), *seen = calloc(total, 1);
	size_t nseg_max = DF11_ES_MAX_SEGS(piece);
	df11_es_seg *seg = calloc(nseg_max, sizeof *seg);
	assert_non_null(out);
	assert_non_null(seen);
	assert_non_null(seg);
	memset(out, 0xa5, total);
	size_t cap = 0;
	uint8_t *buf = NULL;
	int nseg;
	for (uint64_t f = 0;; f += piece) {
		int last = f >= n;
		uint64_t c = last ? 0 : n - f < piece ? n - f : piece;
		if (last) {
			assert_int_equal(df11_enc_stream_finish(es, seg, &nseg),
					 DF11_OK);
		} else {
			size_t need = df11_enc_stream_need(es, f, c);
			if (need > cap) {
				free(buf);
				buf = malloc(cap = need);
				assert_non_null(buf);
			}
			/* Garbage in the scratch must not leak into the output. */
			memset(buf, 0x5a, cap);
			assert_int_equal(df11_enc_stream_code(es, src + f, f, c, buf,
							      cap, seg, &nseg),
					 DF11_OK);
			assert_true((size_t)nseg <= nseg_max);
		}
		for (int s = 0; s < nseg; s++) {
			assert_true(seg[s].off <= total &&
				    seg[s].len <= total - seg[s].off);
			for (size_t i = 0; i < seg[s].len; i++) {
				assert_int_equal(seen[seg[s].off + i], 0);
				seen[seg[s].off + i] = 1;
			}
			memcpy(out + seg[s].off, seg[s].p, seg[s].len);
		}
		if (last)
			break;
	}
	for (size_t i = 0; i < total; i++)
		assert_int_equal(seen[i], 1);
	free(seen);
	free(seg);
	free(buf);
	df11_enc_stream_free(es);
	*size_ret = total;
	return out;
}

/* df11_encode's output for the same options (any thread count). */
static void check_same(const uint16_t *src, uint64_t n,
		       const df11_encode_options *opt_in, int expect_codec)
{
	df11_encode_options opt = opt_in ? *opt_in : (df11_encode_options){0};
	size_t cap = df11_encode_bound(n), ref_size;
	uint8_t *ref = malloc(cap);
	assert_non_null(ref);
	opt.threads = 2;
	assert_int_equal(df11_encode(src, n, &opt, ref, cap, &ref_size), DF11_OK);
	if (expect_codec >= 0)
		assert_int_equal(ref[4], expect_codec);
	static const int threads[] = {1, 2, 3};
	static const uint64_t pieces[] = {1, 2, 4};
	for (size_t t = 0; t < 3; t++)
		for (size_t p = 0; p < 3; p++) {
			uint64_t piece = pieces[p] * B;
			if (p > 0 && piece / 2 >= n)
				continue; /* same split as a smaller piece */
			size_t size;
			uint8_t *got = stream_encode(src, n, piece, threads[t],
						     opt_in, &size);
			assert_int_equal(size, ref_size);
			assert_memory_equal(got, ref, size);
			free(got);
		}
	free(ref);
}

static uint16_t *weights(uint64_t n, uint64_t seed)
{
	uint16_t *w = malloc(2 * n);
	assert_non_null(w);
	df11_synth_matrix(seed, 1, n, 0.02f, w);
	return w;
}

/* Sizes around block and piece boundaries, realistic weights. */
static void test_sizes(void **state)
{
	(void)state;
	static const uint64_t sizes[] = {1, 2, 7, 4097, B - 1, B, B + 1,
					 2 * B + 12345, 4 * B + 3};
	uint16_t *w = weights(4 * B + 3, 1);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		check_same(w, sizes[i], NULL, sizes[i] < 4096 ? -1 : DF11_CODEC_HUFFMAN);
	free(w);
}

/* Small windows and blocks (many index entries, gaps at block joins),
 * short code limits, codes up to 15 bits, forced raw. */
static void test_options(void **state)
{
	(void)state;
	uint64_t n = 3 * B + 777;
	uint16_t *w = weights(n, 2);
	df11_encode_options o = {.window_log2 = 6, .block_log2 = 0};
	check_same(w, n, &o, DF11_CODEC_HUFFMAN);
	o = (df11_encode_options){.window_log2 = 16};
	check_same(w, n, &o, DF11_CODEC_HUFFMAN);
	o = (df11_encode_options){.max_code_len = 5};
	check_same(w, n, &o, DF11_CODEC_HUFFMAN);
	o = (df11_encode_options){.force_raw = 1};
	check_same(w, n, &o, DF11_CODEC_RAW);
	df11_synth_long_codes(3, n, w);
	check_same(w, n, NULL, DF11_CODEC_HUFFMAN);
	free(w);
}

/* One exponent (single codec) and random words (stored raw). */
static void test_single_and_raw(void **state)
{
	(void)state;
	uint64_t n = 2 * B + 5;
	uint16_t *w = malloc(2 * n);
	assert_non_null(w);
	uint64_t x = 88172645463325252u;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[i] = (uint16_t)((x & 0x807f) | (120u << 7));
	}
	check_same(w, n, NULL, DF11_CODEC_SINGLE);
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[i] = (uint16_t)x;
	}
	check_same(w, n, NULL, DF11_CODEC_RAW);
	free(w);
}

/* A window boundary inside the last code before a range join (where
 * df11_encode's threads or the pieces' blocks meet): the window's first
 * code is the next range's first, and its gap must be recorded by that
 * range. Once, both encoders left it unset (an index the parser refuses).
 * Exponents 120/121/122 at 1/2, 1/4, 1/4 have codes of 1, 2, 2 bits;
 * element B - 1 gets a 2-bit code and X/Y swaps across the join move its
 * end (the join's stream bit) to one past a window boundary. */
static void test_window_at_join(void **state)
{
	(void)state;
	uint64_t n = 2 * B, x = 2463534242u;
	uint16_t *w = malloc(2 * n);
	assert_non_null(w);
	for (uint64_t i = 0; i < n; i++)
		w[i] = (uint16_t)((i < n / 2 ? 120u : i < 3 * n / 4 ? 121u : 122u) << 7 |
				  (i & 0x7f));
	for (uint64_t i = n - 1; i > 0; i--) { /* shuffle */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t k = x % (i + 1);
		uint16_t t = w[i];
		w[i] = w[k];
		w[k] = t;
	}
#define EXP(v) ((v) >> 7 & 0xff)
#define LEN(v) (EXP(v) == 120 ? 1u : 2u)
	uint64_t y = B;
	while (EXP(w[y]) == 120)
		y++;
	uint16_t t = w[B - 1];
	w[B - 1] = w[y];
	w[y] = t;
	uint64_t bits = 0;
	for (uint64_t i = 0; i < B; i++)
		bits += LEN(w[i]);
	const uint64_t W = 1u << 11;
	uint64_t a = 0, c = B;
	while ((bits - 1) % W != 0) { /* an X before the join for a Y after */
		while (EXP(w[a]) != 120)
			a++;
		while (EXP(w[c]) == 120)
			c++;
		t = w[a];
		w[a] = w[c];
		w[c] = t;
		bits++;
	}
	assert_int_equal(LEN(w[B - 1]), 2);
#undef EXP
#undef LEN
	/* df11_encode on two threads splits at B as well. */
	df11_encode_options o = {.threads = 2};
	size_t cap = df11_encode_bound(n), size;
	uint8_t *enc = malloc(cap);
	uint16_t *back = malloc(2 * n);
	df11_decoder *d = df11_decoder_new(2);
	assert_int_equal(df11_encode(w, n, &o, enc, cap, &size), DF11_OK);
	assert_int_equal(enc[4], DF11_CODEC_HUFFMAN);
	assert_int_equal(df11_decode(d, enc, size, back, n), DF11_OK);
	assert_memory_equal(back, w, 2 * n);
	check_same(w, n, NULL, DF11_CODEC_HUFFMAN);
	o.window_log2 = 6;
	assert_int_equal(df11_encode(w, n, &o, enc, cap, &size), DF11_OK);
	assert_int_equal(df11_decode(d, enc, size, back, n), DF11_OK);
	assert_memory_equal(back, w, 2 * n);
	o.threads = 0;
	check_same(w, n, &o, DF11_CODEC_HUFFMAN);
	df11_decoder_free(d);
	free(back);
	free(enc);
	free(w);
}

/* Misuse is refused, not crashed on. */
static void test_misuse(void **state)
{
	(void)state;
	uint16_t w[16] = {0};
	df11_enc_stream *es = df11_enc_stream_new(2);
	assert_non_null(es);
	assert_int_equal(df11_enc_stream_begin(es, 0, NULL), DF11_INVALID_ARG);
	assert_int_equal(df11_enc_stream_begin(es, 16, NULL), DF11_OK);
	/* out of order, plan before counting all */
	assert_int_equal(df11_enc_stream_count(es, w, 4, 12), DF11_INVALID_ARG);
	df11_layout L;
	assert_int_equal(df11_enc_stream_plan(es, &L), DF11_INVALID_ARG);
	assert_int_equal(df11_enc_stream_count(es, w, 0, 16), DF11_OK);
	df11_es_seg seg[8];
	int nseg;
	uint8_t out[64];
	assert_int_equal(df11_enc_stream_code(es, w, 0, 16, out, sizeof out, seg,
					      &nseg),
			 DF11_INVALID_ARG); /* before plan */
	assert_int_equal(df11_enc_stream_plan(es, &L), DF11_OK);
	assert_int_equal(df11_enc_stream_finish(es, seg, &nseg), DF11_INVALID_ARG);
	assert_int_equal(df11_enc_stream_code(es, w, 0, 16, out, 1, seg, &nseg),
			 DF11_BUFFER_TOO_SMALL);
	df11_enc_stream_free(es);
	df11_enc_stream_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_single_and_raw),
		cmocka_unit_test(test_window_at_join),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
