/* The encoder: BF16 words -> header, code table, block/window index,
 * sign|mantissa plane and exponent bitstream (layout: codec/format.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "codec/codec_util.h"
#include "codec/encode_stream.h"
#include "codec/parse.h"
#include "common/error.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

size_t df11_encode_bound(uint64_t n_elems)
{
	if (n_elems > (SIZE_MAX - DF11_HEADER_SIZE) / 2)
		return SIZE_MAX;
	return DF11_HEADER_SIZE + 2 * (size_t)n_elems;
}

void df11_enc_header(uint8_t *dst, const df11_layout *L)
{
	memset(dst, 0, DF11_HEADER_SIZE);
	memcpy(dst, DF11_TENSOR_MAGIC, 4);
	dst[4] = (uint8_t)L->codec;
	dst[5] = (uint8_t)L->max_code_len;
	dst[6] = (uint8_t)L->window_log2;
	dst[7] = (uint8_t)L->block_log2;
	df11_wr64(dst + 8, L->n_elems);
	df11_wr64(dst + 16, L->stream_bits);
	df11_wr16(dst + 24, (uint16_t)L->table_size);
	dst[26] = (uint8_t)L->single_exponent;
}

typedef struct enc_job {
	const uint16_t *src;
	uint64_t n_elems;
	int threads;
	uint64_t (*hist)[256];       /* [threads][256] */
	df11_enc_code C;
	uint64_t *start_bit;         /* [threads + 1] */
	uint8_t **chunk_out;         /* [threads]: where each chunk writes */
	uint8_t *sm;                 /* sign|mantissa plane */
} enc_job;

static void chunk_range(uint64_t n, int threads, int i, uint64_t *b,
			uint64_t *e)
{
	*b = n / (uint64_t)threads * (uint64_t)i;
	*e = i + 1 == threads ? n : n / (uint64_t)threads * (uint64_t)(i + 1);
}

static void enc_histogram(void *arg, int i)
{
	enc_job *J = arg;
	uint64_t b, e;
	chunk_range(J->n_elems, J->threads, i, &b, &e);
	df11_count_exponents(J->src + b, e - b, J->hist[i]);
}

/* Encodes elements [b, e): src and sm point at element b. The first code
 * starts at absolute bit start_bit; out points at the byte holding that
 * bit, whose lower (start_bit & 7) bits are left zero for the previous
 * range. prev_len: the code length of element b - 1 (0 when b is 0).
 * Slack: 8 bytes past the end. */
DF11_HOT void df11_enc_range(const df11_enc_code *J, const uint16_t *src_b,
			     uint8_t *sm_b, uint64_t b, uint64_t e,
			     uint64_t start_bit, unsigned prev_len, uint8_t *out)
{
	const uint64_t W = (uint64_t)1 << J->window_log2;
	const uint64_t bmask = ((uint64_t)1 << J->block_log2) - 1;
	const uint64_t *code = J->code;
	const uint8_t *len = J->len;
	const uint64_t *pair = J->pair;
	const uint64_t pos0 = start_bit & ~(uint64_t)7;
	/* The first window this range indexes: the first boundary after the
	 * previous range's last code start. A boundary inside that code (it
	 * ends at start_bit) has this range's first code as its first. */
	uint64_t boundary = prev_len ? ((start_bit - prev_len) & ~(W - 1)) + W
				     : (start_bit + W - 1) & ~(W - 1);
	uint8_t *const p0 = out;
	uint8_t *p = p0;
	uint64_t acc = 0;
	unsigned nacc = (unsigned)(start_bit & 7);
	/* The next code starts at bit pos0 + 8 * (p - p0) + nacc < pos0 +
	 * 8 * (p - p0) + 8. A fast group (below) is at most 56 bits, so its
	 * last code starts at most 55 bits past its first: no code of the
	 * group can reach the next window boundary while p < slow_at. */
#define DF11_SLOW_AT()                                                   \
	(boundary > pos0 + 63 ? p0 + ((boundary - pos0 - 63) >> 3) : p0)
	uint8_t *slow_at = DF11_SLOW_AT();

	/* One code: record the window gap (and block start) when this code
	 * is the first to start at or after a window boundary, then append
	 * it. Codes are at most 15 bits, windows at least 64: at most one
	 * boundary per code. */
#define DF11_EMIT_CHECKED(sym, i)                                              \
	do {                                                                   \
		uint64_t pos = pos0 + ((uint64_t)(p - p0) << 3) + nacc;        \
		if (pos >= boundary) {                                         \
			uint64_t k = boundary >> J->window_log2;               \
			J->window_gap[k] = (uint8_t)(pos - boundary);          \
			if ((k & bmask) == 0)                                  \
				J->block_starts[k >> J->block_log2] = (i);     \
			boundary += W;                                         \
			slow_at = DF11_SLOW_AT();                              \
		}                                                              \
		acc |= code[sym] << nacc;                                      \
		nacc += len[sym];                                              \
		DF11_FLUSH();                                                  \
	} while (0)
#define DF11_FLUSH()                   \
	do {                           \
		df11_store64(p, acc);       \
		p += nacc >> 3;        \
		acc >>= nacc & ~7u;    \
		nacc &= 7u;            \
	} while (0)

	enum { SUB = 4096 };
	for (uint64_t s = b; s < e; s += SUB) {
		uint64_t end = e - s < SUB ? e : s + SUB;
		const uint16_t *src = src_b + (s - b);
		uint8_t *sm = sm_b + (s - b);
		/* Split the planes first (vectorized), then code the exponents. */
		uint8_t ex[SUB];
		for (uint64_t i = 0; i < end - s; i += 32)
			__builtin_prefetch(src + i + PREFETCH_ELEMS);
		for (uint64_t i = 0; i < end - s; i++) {
			sm[i] = df11_bf16_sm(src[i]);
			ex[i] = (uint8_t)df11_bf16_exponent(src[i]);
		}
		uint64_t i = s;
		/* Eight codes at a time: four lookups of the codes of exponent
		 * pairs, assembled side by side (not one chain through nacc)
		 * and appended with one flush when they take at most 56 bits
		 * (with < 8 pending: one 8-byte store), which weights' codes of
		 * 2-4 bits always do. Else, or near a window boundary, code by
		 * code. */
		for (; i + 8 <= end; i += 8) {
			const uint8_t *x = ex + (i - s);
			if (__builtin_expect(p < slow_at, 1)) {
				uint64_t c0 = pair[df11_load16(x)], c1 = pair[df11_load16(x + 2)];
				uint64_t c2 = pair[df11_load16(x + 4)], c3 = pair[df11_load16(x + 6)];
				unsigned l0 = (unsigned)(c0 >> DF11_PAIR_LEN_SHIFT);
				unsigned l1 = (unsigned)(c1 >> DF11_PAIR_LEN_SHIFT);
				unsigned l2 = (unsigned)(c2 >> DF11_PAIR_LEN_SHIFT);
				unsigned l3 = (unsigned)(c3 >> DF11_PAIR_LEN_SHIFT);
				uint64_t g0 = (uint32_t)c0 | (uint64_t)(uint32_t)c1 << l0;
				uint64_t g1 = (uint32_t)c2 | (uint64_t)(uint32_t)c3 << l2;
				unsigned n0 = l0 + l1, n1 = l2 + l3;
				if (__builtin_expect(n0 + n1 <= 56, 1)) {
					acc |= (g0 | g1 << n0) << nacc;
					nacc += n0 + n1;
					DF11_FLUSH();
					continue;
				}
			}
			for (unsigned q = 0; q < 8; q++)
				DF11_EMIT_CHECKED(x[q], i + q);
		}
		for (; i < end; i++) {
			uint32_t e0 = ex[i - s];
			DF11_EMIT_CHECKED(e0, i);
		}
	}
#undef DF11_EMIT_CHECKED
#undef DF11_FLUSH
#undef DF11_SLOW_AT
	df11_store64(p, acc);
}

static void enc_chunk(void *arg, int ci)
{
	enc_job *J = arg;
	uint64_t b, e;
	chunk_range(J->n_elems, J->threads, ci, &b, &e);
	unsigned prev_len = b ? J->C.len[df11_bf16_exponent(J->src[b - 1])] : 0;
	df11_enc_range(&J->C, J->src + b, J->sm + b, b, e, J->start_bit[ci],
		       prev_len, J->chunk_out[ci]);
}

void df11_enc_pair_table(const uint8_t len[256], const uint64_t code[256],
			 uint64_t *pair)
{
	for (unsigned a = 0; a < 256; a++)
		for (unsigned c = 0; len[a] && c < 256; c++)
			if (len[c])
				pair[a | c << 8] = (code[a] | code[c] << len[a]) |
						   (uint64_t)(len[a] + len[c])
							   << DF11_PAIR_LEN_SHIFT;
}

static df11_result encode_single(const uint16_t *src, uint64_t n,
				 unsigned exponent, uint8_t *dst)
{
	df11_layout L = {.codec = DF11_CODEC_SINGLE, .n_elems = n,
			 .single_exponent = exponent};
	df11_layout_compute(&L);
	df11_enc_header(dst, &L);
	for (uint64_t i = 0; i < n; i++)
		dst[L.off_sm + i] = df11_bf16_sm(src[i]);
	return DF11_OK;
}

static void encode_raw(const uint16_t *src, uint64_t n, uint8_t *dst)
{
	df11_layout L = {.codec = DF11_CODEC_RAW, .n_elems = n};
	df11_layout_compute(&L);
	df11_enc_header(dst, &L);
	memcpy(dst + DF11_HEADER_SIZE, src, 2 * n);
}

df11_result df11_enc_params(const df11_encode_options *opt, unsigned *wlog_ret,
			    unsigned *blog_ret, unsigned *maxlen_ret)
{
	df11_result r = df11_check_reserved(opt->reserved, 8, "encode options");
	if (r)
		return r;
	unsigned wlog = opt->window_log2 ? (unsigned)opt->window_log2
					 : DF11_DEFAULT_WINDOW_LOG2;
	unsigned blog = opt->block_log2 ? (unsigned)opt->block_log2
					: DF11_DEFAULT_BLOCK_LOG2;
	/* The default shrinks for large windows: a block stays within
	 * 2^DF11_MAX_BLOCK_BITS_LOG2 bits, which bounds decoder scratch. */
	if (!opt->block_log2 && wlog <= DF11_MAX_WINDOW_LOG2 &&
	    wlog + blog > DF11_MAX_BLOCK_BITS_LOG2)
		blog = DF11_MAX_BLOCK_BITS_LOG2 - wlog;
	unsigned maxlen = opt->max_code_len ? (unsigned)opt->max_code_len
					    : DF11_MAX_CODE_LEN;
	if (wlog < DF11_MIN_WINDOW_LOG2 || wlog > DF11_MAX_WINDOW_LOG2 ||
	    blog > DF11_MAX_BLOCK_LOG2 || wlog + blog > DF11_MAX_BLOCK_BITS_LOG2 ||
	    maxlen < 2 || maxlen > DF11_MAX_CODE_LEN)
		return df11_fail(DF11_INVALID_ARG, "encode: window_log2 %u, "
				 "block_log2 %u, max_code_len %u out of range",
				 wlog, blog, maxlen);
	*wlog_ret = wlog;
	*blog_ret = blog;
	*maxlen_ret = maxlen;
	return DF11_OK;
}

df11_result df11_encode(const uint16_t *src, uint64_t n_elems,
			const df11_encode_options *opt, void *dst_v,
			size_t dst_capacity, size_t *dst_size_ret)
{
	static const df11_encode_options defaults = {0};
	uint8_t *dst = dst_v;
	df11_result r = DF11_OK;
	if (!opt)
		opt = &defaults;
	if (dst_size_ret)
		*dst_size_ret = 0;
	if ((!src && n_elems) || !dst || !dst_size_ret)
		return df11_fail(DF11_INVALID_ARG, "encode: NULL buffer");
	unsigned wlog, blog, maxlen;
	if ((r = df11_enc_params(opt, &wlog, &blog, &maxlen)))
		return r;
	if (n_elems > ((uint64_t)1 << 50))
		return df11_fail(DF11_LIMIT, "encode: %llu elements, limit 2^50",
				 (unsigned long long)n_elems);
	size_t raw_size = df11_encode_bound(n_elems);
	if (dst_capacity < raw_size)
		return df11_fail(DF11_BUFFER_TOO_SMALL, "encode: %zu bytes given, "
				 "%zu needed", dst_capacity, raw_size);
	if (n_elems == 0 || opt->force_raw) {
		encode_raw(src, n_elems, dst);
		*dst_size_ret = raw_size;
		return DF11_OK;
	}

	int T = clamp_threads(opt->threads, n_elems);
	enc_job J = {.src = src, .n_elems = n_elems, .threads = T,
		     .C = {.window_log2 = wlog, .block_log2 = blog}};
	uint8_t **priv = NULL;
	uint64_t *pair = NULL;
	uint8_t *window_gap = NULL;
	uint64_t *block_starts = NULL;
	J.hist = calloc((size_t)T, sizeof *J.hist);
	J.start_bit = calloc((size_t)T + 1, sizeof *J.start_bit);
	J.chunk_out = calloc((size_t)T, sizeof *J.chunk_out);
	priv = calloc((size_t)T, sizeof *priv);
	if (!J.hist || !J.start_bit || !J.chunk_out || !priv) {
		r = df11_fail(DF11_NOMEM, "encode: index buffers");
		goto out;
	}
	df11_parallel_run(T, enc_histogram, &J);

	uint64_t freq[256] = {0};
	for (int t = 0; t < T; t++)
		for (int s = 0; s < 256; s++)
			freq[s] += J.hist[t][s];
	uint8_t len[256];
	int used = df11_huff_lengths(freq, maxlen, len);
	if (used < 1) {
		r = df11_fail(DF11_INVALID_ARG, "encode: no code of length <= %u",
			      maxlen);
		goto out;
	}
	if (used == 1) {
		unsigned exponent = 0;
		while (!freq[exponent])
			exponent++;
		r = encode_single(src, n_elems, exponent, dst);
		*dst_size_ret = DF11_HEADER_SIZE + n_elems;
		goto out;
	}

	uint16_t codes[256];
	uint64_t code[256];
	df11_huff_codes(len, codes);
	unsigned longest = 0;
	for (int s = 0; s < 256; s++) {
		code[s] = codes[s];
		if (len[s] > longest)
			longest = len[s];
	}
	J.C.code = code;
	J.C.len = len;
	for (int t = 0; t < T; t++) {
		uint64_t bits = 0;
		for (int s = 0; s < 256; s++)
			bits += J.hist[t][s] * len[s];
		J.start_bit[t + 1] = J.start_bit[t] + bits;
	}

	uint8_t table[DF11_TABLE_MAX_SIZE];
	df11_layout L = {.codec = DF11_CODEC_HUFFMAN, .n_elems = n_elems,
			 .max_code_len = longest, .window_log2 = wlog,
			 .block_log2 = blog, .stream_bits = J.start_bit[T]};
	L.table_size = (uint32_t)df11_huff_table_write(len, table);
	if (df11_layout_compute(&L) != 0 || L.total_size >= raw_size) {
		/* Incompressible (e.g. random bits): store as is. */
		encode_raw(src, n_elems, dst);
		*dst_size_ret = raw_size;
		goto out;
	}

	/* Codes of exponent pairs: entry e0 | e1 << 8 holds code(e0) |
	 * code(e1) << len(e0) and, from bit PAIR_LEN_SHIFT, their total
	 * length. Only entries of exponents that occur are written, and only
	 * they are read (512 KiB of address space, a page per exponent
	 * touched). */
	if (!(pair = malloc(65536 * sizeof *pair))) {
		r = df11_fail(DF11_NOMEM, "encode: pair code table");
		goto out;
	}
	df11_enc_pair_table(len, code, pair);
	J.C.pair = pair;
	window_gap = malloc(L.n_windows);
	block_starts = malloc(L.n_blocks * sizeof *block_starts);
	if (!window_gap || !block_starts) {
		r = df11_fail(DF11_NOMEM, "encode: index of %llu windows",
			      (unsigned long long)L.n_windows);
		goto out;
	}
	memset(window_gap, DF11_GAP_NONE, L.n_windows);
	for (uint64_t j = 0; j < L.n_blocks; j++)
		block_starts[j] = n_elems;
	J.C.window_gap = window_gap;
	J.C.block_starts = block_starts;
	J.sm = dst + L.off_sm;

	uint8_t *stream = dst + L.off_stream;
	memset(stream, 0, L.total_size - L.off_stream);
	if (T == 1) {
		J.chunk_out[0] = stream;
	} else {
		/* Each chunk is coded into a buffer of its own, then moved into
		 * place. The buffers lie past the encoded tensor, in the part of
		 * dst a raw copy would use, when they fit (they do unless the
		 * exponents barely compress): no fresh memory per call, whose
		 * first touch costs more than the coding on some machines. */
		uint64_t at = df11_round_up16(L.total_size);
		for (int t = 0; t < T; t++) {
			uint64_t bits = J.start_bit[t + 1] - J.start_bit[t];
			size_t need = (size_t)df11_round_up16(bits / 8 + 16);
			if (at <= dst_capacity && need <= dst_capacity - at) {
				J.chunk_out[t] = dst + at;
				at += need;
			} else if (!(J.chunk_out[t] = priv[t] = malloc(need))) {
				r = df11_fail(DF11_NOMEM, "encode: chunk buffer");
				goto out;
			}
			J.chunk_out[t][0] = 0;
		}
	}
	df11_parallel_run(T, enc_chunk, &J);
	if (T > 1) {
		/* Chunk t's first byte is shared with chunk t-1's last. */
		for (int t = 0; t < T; t++) {
			uint64_t b = J.start_bit[t], e = J.start_bit[t + 1];
			uint64_t first = b >> 3, last = (e + 7) >> 3;
			stream[first] |= J.chunk_out[t][0];
			if (last > first + 1)
				memcpy(stream + first + 1, J.chunk_out[t] + 1,
				       (size_t)(last - first - 1));
		}
	}
	/* The last flush may leave nonzero bits only inside the data bytes;
	 * the padding must read as zero. */
	memset(stream + L.stream_bytes, 0,
	       L.total_size - L.off_stream - L.stream_bytes);

	df11_enc_header(dst, &L);
	memset(dst + DF11_HEADER_SIZE, 0, L.off_sm - DF11_HEADER_SIZE);
	memcpy(dst + L.off_table, table, L.table_size);
	for (uint64_t j = 0; j < L.n_blocks; j++)
		df11_wr64(dst + L.off_block_starts + 8 * j, block_starts[j]);
	uint8_t *gaps = dst + L.off_gaps;
	for (uint64_t k = 0; k < L.n_windows; k++)
		gaps[k >> 1] |= (uint8_t)(window_gap[k] << ((k & 1) * 4));
	/* Zero the gap between the sm plane and the stream. */
	memset(dst + L.off_sm + n_elems, 0, L.off_stream - L.off_sm - n_elems);
	*dst_size_ret = (size_t)L.total_size;
out:
	if (priv)
		for (int t = 0; t < T; t++)
			free(priv[t]);
	free(priv);
	free(pair);
	free(J.hist);
	free(J.start_bit);
	free(J.chunk_out);
	free(window_gap);
	free(block_starts);
	return r;
}

