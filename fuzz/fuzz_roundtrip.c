/*
 * Fuzz target: encode then decode, with every encoder parameter taken from
 * the input (as zstd's tests/fuzz/huf_round_trip.c does). Aborts on any
 * difference between the input words and what any decoder gives back.
 *
 * Input layout:
 *   byte 0  window_log2  = 6 + b % 11                     (6..16)
 *   byte 1  block_log2   = b % (min(12, 20 - window_log2) + 1)
 *   byte 2  max_code_len = 2 + b % 14                     (2..15)
 *   byte 3  bits 0-1: threads - 1; bits 2-3: data mode; bit 7: force_raw
 *   rest    the data, by mode:
 *     0  little-endian BF16 words, as they are
 *     1  runs: (exponent, sign|mantissa, run length - 1) triples, so that a
 *        short input makes skewed exponent statistics and long codes
 *     2  Fibonacci: exponent k (from byte 4 on) gets fib(k) copies, the
 *        worst case for code length, forcing lengths up to max_code_len
 *        and the decoders' slow path; later bytes give the mantissas
 *     3  synthetic weights (df11_synth_matrix): seed, rows, cols, scale
 */
#include "df11.h"
#include "codec/encode_stream.h"
#include "codec/format.h"
#include "synth/synth.h"
#include "fuzz/fuzz.h"

#define MAX_ELEMS (1u << 14)

static uint64_t make_data(fuzz_in *in, int mode, uint16_t *w)
{
	uint64_t n = 0;
	switch (mode) {
	case 0:
		while (in->n >= 2 && n < MAX_ELEMS) {
			w[n++] = (uint16_t)(in->p[0] | (in->p[1] << 8));
			in->p += 2;
			in->n -= 2;
		}
		break;
	case 1:
		while (in->n >= 3 && n < MAX_ELEMS) {
			unsigned e = fuzz_u8(in), sm = fuzz_u8(in);
			unsigned run = fuzz_u8(in) + 1u;
			for (unsigned i = 0; i < run && n < MAX_ELEMS; i++)
				w[n++] = df11_bf16_join(e, (sm + i) & 0xffu);
		}
		break;
	case 2: {
		unsigned syms = 2 + fuzz_u8(in) % 20u, base = fuzz_u8(in);
		uint64_t a = 1, b = 1;
		for (unsigned k = 0; k < syms && n < MAX_ELEMS; k++) {
			for (uint64_t i = 0; i < a && n < MAX_ELEMS; i++)
				w[n++] = df11_bf16_join((base + k) & 0xffu,
							fuzz_u8(in));
			uint64_t c = a + b;
			a = b;
			b = c;
		}
		break;
	}
	default: {
		uint64_t seed = fuzz_u64(in);
		uint64_t rows = 1 + fuzz_u8(in) % 64u;
		uint64_t cols = 1 + (fuzz_u8(in) | (fuzz_u8(in) << 8)) % 4096u;
		float std = (float)(1 + fuzz_u8(in)) * 1e-3f;
		if (rows * cols > MAX_ELEMS)
			rows = MAX_ELEMS / cols;
		df11_synth_matrix(seed, rows, cols, std, w);
		n = rows * cols;
		break;
	}
	}
	return n;
}

static void check_equal(const uint16_t *want, const uint16_t *got, uint64_t n,
			const char *what)
{
	if (n == 0 || memcmp(want, got, 2 * n) == 0)
		return;
	uint64_t i = 0;
	while (want[i] == got[i])
		i++;
	FUZZ_CHECK(0, "%s: element %llu of %llu is 0x%04x, expected 0x%04x",
		   what, (unsigned long long)i, (unsigned long long)n, got[i],
		   want[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t src[MAX_ELEMS], out[MAX_ELEMS];
	fuzz_in in = {data, size};
	df11_encode_options opt = {0};
	opt.window_log2 = 6 + fuzz_u8(&in) % 11;
	int bmax = 20 - opt.window_log2 < 12 ? 20 - opt.window_log2 : 12;
	opt.block_log2 = fuzz_u8(&in) % (bmax + 1);
	opt.max_code_len = 2 + fuzz_u8(&in) % 14;
	uint8_t flags = fuzz_u8(&in);
	opt.threads = 1 + (flags & 3);
	opt.force_raw = flags >> 7;
	uint64_t n = make_data(&in, (flags >> 2) & 3, src);

	size_t cap = df11_encode_bound(n), size_enc = 0;
	uint8_t *enc = malloc(cap);
	FUZZ_CHECK(enc != NULL, "out of memory");
	df11_result r = df11_encode(src, n, &opt, enc, cap, &size_enc);
	/* More exponents than codes of max_code_len bits can name: the only
	 * case where encoding may refuse. */
	df11_exponent_stats st;
	df11_exponent_histogram(src, n, &st);
	if (!opt.force_raw && st.distinct > (1u << opt.max_code_len)) {
		FUZZ_CHECK(r == DF11_INVALID_ARG, "encode of %u exponents in "
			   "%d-bit codes: %d", st.distinct, opt.max_code_len,
			   (int)r);
		free(enc);
		return 0;
	}
	FUZZ_CHECK(r == DF11_OK, "encode (w %d, b %d, len %d, %llu elements): "
		   "%s", opt.window_log2, opt.block_log2, opt.max_code_len,
		   (unsigned long long)n, df11_last_error());
	FUZZ_CHECK(size_enc > 0 && size_enc <= cap, "encoded %zu bytes, "
		   "bound %zu", size_enc, cap);

	df11_tensor_info info;
	r = df11_inspect(enc, size_enc, &info);
	FUZZ_CHECK(r == DF11_OK, "inspect: %s", df11_last_error());
	FUZZ_CHECK(info.n_elems == n && info.encoded_size == size_enc,
		   "inspect: %llu elements, %zu bytes",
		   (unsigned long long)info.n_elems, info.encoded_size);
	/* block_log2 0 asks for the default: 6, or less for big windows. */
	int want_b = opt.block_log2 ? opt.block_log2
		   : opt.window_log2 + 6 <= 20 ? 6 : 20 - opt.window_log2;
	if (info.codec == DF11_CODEC_HUFFMAN)
		FUZZ_CHECK(info.window_log2 == opt.window_log2 &&
			   info.block_log2 == want_b &&
			   info.max_code_len <= opt.max_code_len,
			   "inspect: layout %d/%d/%d, asked %d/%d/%d",
			   info.window_log2, info.block_log2, info.max_code_len,
			   opt.window_log2, want_b, opt.max_code_len);
	FUZZ_CHECK(!opt.force_raw || info.codec == DF11_CODEC_RAW,
		   "force_raw gave codec %d", info.codec);

	memset(out, 0xa5, 2 * n);
	r = df11_decode_reference(enc, size_enc, out, n);
	FUZZ_CHECK(r == DF11_OK, "reference decode: %s", df11_last_error());
	check_equal(src, out, n, "reference decoder");

	df11_decoder *d = df11_decoder_new(opt.threads);
	FUZZ_CHECK(d != NULL, "decoder_new");
	memset(out, 0x5a, 2 * n);
	r = df11_decode(d, enc, size_enc, out, n);
	FUZZ_CHECK(r == DF11_OK, "fast decode: %s", df11_last_error());
	check_equal(src, out, n, "fast decoder");

	/* Ranges from the input's hash, plus the head and the tail. */
	uint64_t h = fuzz_hash(data, size);
	for (int k = 0; k < 4; k++) {
		uint64_t f, c;
		if (k == 0) {
			f = 0;
			c = n < 5 ? n : 5;
		} else if (k == 1) {
			c = n < 77 ? n : 77;
			f = n - c;
		} else {
			f = n ? h % (n + 1) : 0;
			c = (h >> 24) % (n - f + 1);
			h = h * 6364136223846793005ull + 1;
		}
		memset(out, 0x33, 2 * c);
		r = df11_decode_range(d, enc, size_enc, f, c, out);
		FUZZ_CHECK(r == DF11_OK, "range %llu+%llu: %s",
			   (unsigned long long)f, (unsigned long long)c,
			   df11_last_error());
		check_equal(src + f, out, c, "range decoder");
	}
	df11_decoder_free(d);

	/* The encoded bytes depend on the data and layout only, not on the
	 * thread count. */
	if (opt.threads > 1) {
		uint8_t *one = malloc(cap);
		size_t size_one = 0;
		FUZZ_CHECK(one != NULL, "out of memory");
		opt.threads = 1;
		r = df11_encode(src, n, &opt, one, cap, &size_one);
		FUZZ_CHECK(r == DF11_OK && size_one == size_enc &&
			   memcmp(one, enc, size_enc) == 0,
			   "encoding with 1 thread gives different bytes");
		free(one);
	}

	/* The encoder in pieces (one piece here) gives the same bytes. */
	if (n > 0) {
		uint8_t *pcs = calloc(1, size_enc);
		FUZZ_CHECK(pcs != NULL, "out of memory");
		df11_enc_stream *es = df11_enc_stream_new(1 + (flags & 3));
		df11_layout L;
		df11_es_seg seg[DF11_ES_MAX_SEGS(MAX_ELEMS)];
		int nseg = 0;
		size_t need = 0;
		uint8_t *buf = NULL;
		FUZZ_CHECK(es && df11_enc_stream_begin(es, n, &opt) == DF11_OK &&
			   df11_enc_stream_count(es, src, 0, n) == DF11_OK &&
			   df11_enc_stream_plan(es, &L) == DF11_OK &&
			   L.total_size == size_enc,
			   "pieces: plan: %s", df11_last_error());
		need = df11_enc_stream_need(es, 0, n);
		buf = malloc(need ? need : 1);
		FUZZ_CHECK(buf != NULL, "out of memory");
		for (int pass = 0; pass < 2; pass++) {
			r = pass ? df11_enc_stream_finish(es, seg, &nseg)
				 : df11_enc_stream_code(es, src, 0, n, buf, need,
							seg, &nseg);
			FUZZ_CHECK(r == DF11_OK, "pieces: %s", df11_last_error());
			for (int i = 0; i < nseg; i++) {
				FUZZ_CHECK(seg[i].off + seg[i].len <= size_enc,
					   "pieces: run past the end");
				memcpy(pcs + seg[i].off, seg[i].p, seg[i].len);
			}
		}
		FUZZ_CHECK(memcmp(pcs, enc, size_enc) == 0,
			   "pieces give different bytes");
		free(buf);
		free(pcs);
		df11_enc_stream_free(es);
	}
	free(enc);
	return 0;
}
