/*
 * The tensor codec: BF16 words <-> Huffman-coded exponent bitstream, raw
 * sign|mantissa bytes and a block/window index. Layout: df11/format.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "df11/codec_internal.h"
#include "df11/error.h"
#include "df11/format.h"
#include "df11/parallel.h"
#include "huffman/huffman.h"

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

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint16_t load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline void store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline void store32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static int clamp_threads(int threads, uint64_t n_elems)
{
	uint64_t by_size = n_elems / MIN_ELEMS_PER_THREAD;
	int t = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
	if ((uint64_t)t > by_size)
		t = by_size < 1 ? 1 : (int)by_size;
	return t;
}

/* ---------------------------------------------------------------- stats */

DF11_HOT static void histogram(const uint16_t *src, uint64_t n, uint64_t out[256])
{
	/* Eight sub-histograms break the store-to-load dependency on runs of
	 * equal exponents (the common case: a few exponents dominate); two
	 * 8-byte loads feed eight counts. */
	uint32_t h[8][256];
	memset(h, 0, sizeof h);
	memset(out, 0, 256 * sizeof out[0]);
	while (n) {
		/* Keep u32 counters from overflowing. */
		uint64_t m = n < (1u << 30) ? n : (1u << 30);
		uint64_t i = 0;
		for (; i + 8 <= m; i += 8) {
			uint64_t x, y;
			memcpy(&x, src + i, 8);
			memcpy(&y, src + i + 4, 8);
			h[0][(x >> 7) & 0xff]++;
			h[1][(x >> 23) & 0xff]++;
			h[2][(x >> 39) & 0xff]++;
			h[3][(x >> 55) & 0xff]++;
			h[4][(y >> 7) & 0xff]++;
			h[5][(y >> 23) & 0xff]++;
			h[6][(y >> 39) & 0xff]++;
			h[7][(y >> 55) & 0xff]++;
		}
		for (; i < m; i++)
			h[0][df11_bf16_exponent(src[i])]++;
		for (int s = 0; s < 256; s++) {
			uint64_t sum = 0;
			for (int k = 0; k < 8; k++) {
				sum += h[k][s];
				h[k][s] = 0;
			}
			out[s] += sum;
		}
		src += m;
		n -= m;
	}
}

/* Histogram of exponent pairs, from PAIR_HIST_MIN elements on: one count
 * per two elements. Of four words loaded as x, (x >> 7) masked to the low
 * byte of each 16-bit lane, ORed with itself shifted by 8, holds e0 | e1 << 8
 * in bits 0..15 and e2 | e3 << 8 in bits 32..47: four elements cost one
 * load, five ALU operations and two increments instead of four. Two
 * tables (summed in the end) keep runs of equal pairs from chaining their
 * increments. Returns -1 if the tables cannot be had (the caller then
 * counts one by one). */
#define PAIR_HIST_MIN (1u << 21)
DF11_HOT static int pair_histogram(const uint16_t *src, uint64_t n,
				   uint64_t out[256])
{
	uint32_t(*ph)[65536] = calloc(2, sizeof *ph);
	if (!ph)
		return -1;
	memset(out, 0, 256 * sizeof out[0]);
	uint64_t tail = n & 7;
	n -= tail;
	while (n) {
		uint64_t m = n < (1u << 30) ? n : (1u << 30);
		for (uint64_t i = 0; i < m; i += 8) {
			uint64_t x, y;
			if ((i & 31) == 0)
				__builtin_prefetch(src + i + PREFETCH_ELEMS);
			memcpy(&x, src + i, 8);
			memcpy(&y, src + i + 4, 8);
			x = (x >> 7) & 0x00ff00ff00ff00ffu;
			y = (y >> 7) & 0x00ff00ff00ff00ffu;
			x |= x >> 8;
			y |= y >> 8;
			ph[0][(uint16_t)x]++;
			ph[1][(uint16_t)(x >> 32)]++;
			ph[0][(uint16_t)y]++;
			ph[1][(uint16_t)(y >> 32)]++;
		}
		for (uint32_t k = 0; k < 65536; k++) {
			uint64_t c = (uint64_t)ph[0][k] + ph[1][k];
			out[k & 0xff] += c;
			out[k >> 8] += c;
		}
		if (n > m)
			memset(ph, 0, 2 * sizeof *ph);
		src += m;
		n -= m;
	}
	for (uint64_t i = 0; i < tail; i++)
		out[df11_bf16_exponent(src[i])]++;
	free(ph);
	return 0;
}

/* Exact exponent counts: by pairs for long inputs, else one by one. */
static void count_exponents(const uint16_t *src, uint64_t n, uint64_t out[256])
{
	if (n < PAIR_HIST_MIN || pair_histogram(src, n, out) != 0)
		histogram(src, n, out);
}

void df11_exponent_histogram(const uint16_t *src, uint64_t n_elems,
			     df11_exponent_stats *stats_ret)
{
	memset(stats_ret, 0, sizeof *stats_ret);
	if (!src || n_elems == 0)
		return;
	count_exponents(src, n_elems, stats_ret->count);
	stats_ret->n_elems = n_elems;
	double h = 0;
	for (int s = 0; s < 256; s++) {
		if (!stats_ret->count[s])
			continue;
		stats_ret->distinct++;
		double p = (double)stats_ret->count[s] / (double)n_elems;
		h -= p * log2(p);
	}
	stats_ret->entropy_bits = h;
}

/* --------------------------------------------------------------- encode */

size_t df11_encode_bound(uint64_t n_elems)
{
	if (n_elems > (SIZE_MAX - DF11_HEADER_SIZE) / 2)
		return SIZE_MAX;
	return DF11_HEADER_SIZE + 2 * (size_t)n_elems;
}

static void write_header(uint8_t *dst, const df11_layout *L)
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

/* Pair code table entries: the two codes, then their total length. */
#define PAIR_LEN_SHIFT 59

typedef struct enc_job {
	const uint16_t *src;
	uint64_t n_elems;
	int threads;
	uint64_t (*hist)[256];       /* [threads][256] */
	const uint64_t *code;        /* bit-reversed code, per exponent */
	const uint64_t *pair;        /* codes of exponent pairs, e0 | e1 << 8 */
	const uint8_t *len;          /* code length, per exponent */
	uint64_t *start_bit;         /* [threads + 1] */
	uint8_t **chunk_out;         /* [threads]: where each chunk writes */
	uint8_t *sm;                 /* sign|mantissa plane */
	uint8_t *window_gap;         /* one byte per window */
	uint64_t *block_starts;
	unsigned window_log2, block_log2;
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
	count_exponents(J->src + b, e - b, J->hist[i]);
}

/* Encodes one chunk. Its first code starts at absolute bit start_bit[i];
 * out points at the byte holding that bit, whose lower (start_bit & 7) bits
 * are left zero for the previous chunk. Slack: 8 bytes past the end. */
DF11_HOT static void enc_chunk(void *arg, int ci)
{
	enc_job *J = arg;
	uint64_t b, e;
	chunk_range(J->n_elems, J->threads, ci, &b, &e);
	const uint64_t W = (uint64_t)1 << J->window_log2;
	const uint64_t bmask = ((uint64_t)1 << J->block_log2) - 1;
	const uint64_t *code = J->code;
	const uint8_t *len = J->len;
	const uint64_t *pair = J->pair;
	const uint64_t pos0 = J->start_bit[ci] & ~(uint64_t)7;
	uint64_t boundary = (J->start_bit[ci] + W - 1) & ~(W - 1);
	uint8_t *const p0 = J->chunk_out[ci];
	uint8_t *p = p0;
	uint64_t acc = 0;
	unsigned nacc = (unsigned)(J->start_bit[ci] & 7);
	/* The next code starts at bit pos0 + 8 * (p - p0) + nacc < pos0 +
	 * 8 * (p - p0) + 8. A fast group (below) is at most 56 bits, so its
	 * last code starts at most 55 bits past its first: no code of the
	 * group can reach the next window boundary while p < slow_at. */
#define DF11_SLOW_AT()                                                   \
	(boundary - pos0 > 63 ? p0 + ((boundary - pos0 - 63) >> 3) : p0)
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
		store64(p, acc);       \
		p += nacc >> 3;        \
		acc >>= nacc & ~7u;    \
		nacc &= 7u;            \
	} while (0)

	enum { SUB = 4096 };
	for (uint64_t s = b; s < e; s += SUB) {
		uint64_t end = e - s < SUB ? e : s + SUB;
		const uint16_t *src = J->src;
		uint8_t *sm = J->sm;
		/* Split the planes first (vectorized), then code the exponents. */
		uint8_t ex[SUB];
		for (uint64_t i = s; i < end; i += 32)
			__builtin_prefetch(src + i + PREFETCH_ELEMS);
		for (uint64_t i = s; i < end; i++) {
			sm[i] = df11_bf16_sm(src[i]);
			ex[i - s] = (uint8_t)df11_bf16_exponent(src[i]);
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
				uint64_t c0 = pair[load16(x)], c1 = pair[load16(x + 2)];
				uint64_t c2 = pair[load16(x + 4)], c3 = pair[load16(x + 6)];
				unsigned l0 = (unsigned)(c0 >> PAIR_LEN_SHIFT);
				unsigned l1 = (unsigned)(c1 >> PAIR_LEN_SHIFT);
				unsigned l2 = (unsigned)(c2 >> PAIR_LEN_SHIFT);
				unsigned l3 = (unsigned)(c3 >> PAIR_LEN_SHIFT);
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
	store64(p, acc);
}

static df11_result encode_single(const uint16_t *src, uint64_t n,
				 unsigned exponent, uint8_t *dst)
{
	df11_layout L = {.codec = DF11_CODEC_SINGLE, .n_elems = n,
			 .single_exponent = exponent};
	df11_layout_compute(&L);
	write_header(dst, &L);
	for (uint64_t i = 0; i < n; i++)
		dst[L.off_sm + i] = df11_bf16_sm(src[i]);
	return DF11_OK;
}

static void encode_raw(const uint16_t *src, uint64_t n, uint8_t *dst)
{
	df11_layout L = {.codec = DF11_CODEC_RAW, .n_elems = n};
	df11_layout_compute(&L);
	write_header(dst, &L);
	memcpy(dst + DF11_HEADER_SIZE, src, 2 * n);
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
	if ((r = df11_check_reserved(opt->reserved, 8, "encode options")))
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
		     .window_log2 = wlog, .block_log2 = blog};
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
	J.code = code;
	J.len = len;
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
	for (unsigned a = 0; a < 256; a++)
		for (unsigned c = 0; len[a] && c < 256; c++)
			if (len[c])
				pair[a | c << 8] = (code[a] | code[c] << len[a]) |
						   (uint64_t)(len[a] + len[c])
							   << PAIR_LEN_SHIFT;
	J.pair = pair;
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
	J.window_gap = window_gap;
	J.block_starts = block_starts;
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

	write_header(dst, &L);
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

/* ---------------------------------------------------------------- parse */

df11_result df11_parse(const void *src_v, size_t size, df11_parsed *P)
{
	const uint8_t *src = src_v;
	memset(P, 0, sizeof *P);
	if (!src)
		return df11_fail(DF11_INVALID_ARG, "decode: NULL input");
	if (size < DF11_HEADER_SIZE)
		return df11_fail(DF11_BAD_DATA, "tensor: %zu bytes, shorter than "
				 "its %u-byte header", size, DF11_HEADER_SIZE);
	if (memcmp(src, DF11_TENSOR_MAGIC, 4) != 0)
		return df11_fail(DF11_BAD_DATA, "tensor: bad magic");
	df11_layout *L = &P->layout;
	L->codec = src[4];
	L->max_code_len = src[5];
	L->window_log2 = src[6];
	L->block_log2 = src[7];
	L->n_elems = df11_rd64(src + 8);
	L->stream_bits = df11_rd64(src + 16);
	L->table_size = df11_rd16(src + 24);
	L->single_exponent = src[26];
	for (int i = 27; i < 32; i++)
		if (src[i])
			return df11_fail(DF11_BAD_DATA, "tensor: reserved header "
					 "byte %d is not zero", i);
	if (L->codec > DF11_CODEC_HUFFMAN)
		return df11_fail(DF11_UNSUPPORTED, "tensor: codec %u",
				 (unsigned)L->codec);
	if (L->codec != DF11_CODEC_HUFFMAN &&
	    (L->max_code_len || L->window_log2 || L->block_log2 ||
	     L->stream_bits || L->table_size))
		return df11_fail(DF11_BAD_DATA, "tensor: huffman fields set in a "
				 "codec-%u header", (unsigned)L->codec);
	if (L->codec != DF11_CODEC_SINGLE && L->single_exponent)
		return df11_fail(DF11_BAD_DATA, "tensor: exponent set in a "
				 "codec-%u header", (unsigned)L->codec);
	if (L->codec == DF11_CODEC_HUFFMAN &&
	    L->window_log2 + L->block_log2 > DF11_MAX_BLOCK_BITS_LOG2)
		return df11_fail(DF11_BAD_DATA, "tensor: blocks of 2^%u bits, "
				 "limit 2^%d", L->window_log2 + L->block_log2,
				 DF11_MAX_BLOCK_BITS_LOG2);
	if (df11_layout_compute(L) != 0)
		return df11_fail(DF11_BAD_DATA, "tensor: header fields out of "
				 "range (%llu elements, %llu stream bits)",
				 (unsigned long long)L->n_elems,
				 (unsigned long long)L->stream_bits);
	if (L->total_size != size)
		return df11_fail(DF11_BAD_DATA, "tensor: %zu bytes, header says "
				 "%llu", size, (unsigned long long)L->total_size);
	P->base = src;
	if (L->codec != DF11_CODEC_HUFFMAN)
		return DF11_OK;

	df11_result r = df11_huff_table_read(src + L->off_table, L->table_size,
					     L->max_code_len, P->code_len);
	if (r != DF11_OK)
		return r;
	unsigned longest = 0;
	for (int s = 0; s < 256; s++)
		if (P->code_len[s] > longest)
			longest = P->code_len[s];
	if (longest != L->max_code_len)
		return df11_fail(DF11_BAD_DATA, "tensor: longest code %u, header "
				 "says %u", longest, (unsigned)L->max_code_len);
	P->block_starts = src + L->off_block_starts;
	P->gaps = src + L->off_gaps;
	P->sm = src + L->off_sm;
	P->stream = src + L->off_stream;

	/* The index must be plausible before any worker trusts it. */
	uint64_t prev = 0;
	for (uint64_t j = 0; j < L->n_blocks; j++) {
		uint64_t s = df11_rd64(P->block_starts + 8 * j);
		if ((j == 0 && s != 0) || s < prev || s > L->n_elems)
			return df11_fail(DF11_BAD_DATA, "tensor: block %llu starts "
					 "at element %llu (previous %llu, total "
					 "%llu)", (unsigned long long)j,
					 (unsigned long long)s,
					 (unsigned long long)prev,
					 (unsigned long long)L->n_elems);
		prev = s;
	}
	for (uint64_t k = 0; k < L->n_windows; k++) {
		uint32_t g = df11_gap(P->gaps, k);
		if (g >= L->max_code_len &&
		    (g != DF11_GAP_NONE || k + 1 != L->n_windows))
			return df11_fail(DF11_BAD_DATA, "tensor: window %llu has "
					 "gap %u", (unsigned long long)k, g);
	}
	if ((L->n_windows & 1) && (P->gaps[L->n_windows / 2] >> 4))
		return df11_fail(DF11_BAD_DATA, "tensor: unused gap nibble set");
	return DF11_OK;
}

df11_result df11_inspect(const void *src, size_t size, df11_tensor_info *I)
{
	df11_parsed P;
	if (!I)
		return df11_fail(DF11_INVALID_ARG, "inspect: NULL info");
	memset(I, 0, sizeof *I);
	df11_result r = df11_parse(src, size, &P);
	if (r != DF11_OK)
		return r;
	const df11_layout *L = &P.layout;
	I->n_elems = L->n_elems;
	I->codec = (int)L->codec;
	I->max_code_len = (int)L->max_code_len;
	I->window_log2 = (int)L->window_log2;
	I->block_log2 = (int)L->block_log2;
	I->stream_bits = L->stream_bits;
	I->n_windows = L->n_windows;
	I->n_blocks = L->n_blocks;
	I->encoded_size = (size_t)L->total_size;
	I->table_bytes = L->table_size;
	I->index_bytes = (size_t)(8 * L->n_blocks + (L->n_windows + 1) / 2);
	memcpy(I->code_len, P.code_len, 256);
	if (L->codec == DF11_CODEC_HUFFMAN) {
		for (int s = 0; s < 256; s++)
			I->distinct_exponents += P.code_len[s] != 0;
	} else if (L->codec == DF11_CODEC_SINGLE) {
		I->distinct_exponents = 1;
	}
	return DF11_OK;
}

/* ------------------------------------------------------- fast decoding */

/* Exponents a stream decodes before they are joined with their sign and
 * mantissa bytes: small, so that scratch, tables and the stream stay in L1
 * together (whole-block scratch evicted the tables and cost 2x). */
#define CHUNK_ROUNDS 128
#define CHUNK_BYTES (CHUNK_ROUNDS * 3 * DF11_MULTI_MAX + 16)

struct df11_decoder {
	int threads;
	uint8_t table_len[256]; /* lengths the tables were built for */
	int have_tables;
	uint16_t single[1u << DF11_TABLE_BITS];
	uint64_t multi[1u << DF11_TABLE_BITS];
	df11_huff_canon canon; /* for codes longer than the tables */
	uint8_t (*scratch)[STREAMS][CHUNK_BYTES]; /* per thread */
};

df11_decoder *df11_decoder_new(int threads)
{
	df11_decoder *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS
							      : threads;
	d->scratch = malloc(sizeof *d->scratch * (size_t)d->threads);
	if (!d->scratch) {
		free(d);
		return NULL;
	}
	return d;
}

void df11_decoder_free(df11_decoder *d)
{
	if (!d)
		return;
	free(d->scratch);
	free(d);
}

/* Builds the decode tables for P unless the last tensor used the same
 * code lengths. */
static void prepare(df11_decoder *d, const df11_parsed *P)
{
	if (d->have_tables && memcmp(d->table_len, P->code_len, 256) == 0)
		return;
	/* Always 2^12 entries, even for shorter codes: the mask is then a
	 * constant in the hot loops. */
	memcpy(d->table_len, P->code_len, 256);
	df11_huff_fill_table(P->code_len, DF11_TABLE_BITS, d->single);
	df11_huff_fill_multi(d->single, DF11_TABLE_BITS, d->multi);
	df11_huff_canon_init(P->code_len, &d->canon);
	d->have_tables = 1;
}

/* Where the first code of window k starts (stream_bits if none does). */
static inline uint64_t window_start(const df11_parsed *P, uint64_t k)
{
	const df11_layout *L = &P->layout;
	if (k >= L->n_windows)
		return L->stream_bits;
	uint32_t g = df11_gap(P->gaps, k);
	if (g == DF11_GAP_NONE)
		return L->stream_bits;
	return (k << L->window_log2) + g;
}

static inline uint64_t block_start_elem(const df11_parsed *P, uint64_t j)
{
	if (j >= P->layout.n_blocks)
		return P->layout.n_elems;
	return df11_rd64(P->block_starts + 8 * j);
}

/* What decoded elements go where: dst receives [first, first + count). */
typedef struct dec_out {
	const uint8_t *sm;
	uint16_t *dst;
	uint64_t first, count;
	int stream; /* non-temporal stores */
} dec_out;

/* Decoding state of one block's exponent stream. */
typedef struct bstream {
	uint64_t j;         /* block */
	uint64_t pos, end;  /* current bit; where the next block's codes begin */
	uint64_t elem;      /* element of the next exponent */
	uint64_t remaining; /* exponents still to decode */
	uint8_t *buf;       /* CHUNK_BYTES of scratch */
} bstream;

/* Sets up block j, after checking that its index entries are consistent:
 * its codes start before the next block's first bit, the last one runs at
 * most max_code_len - 1 bits past it, and it has no more codes than bits. */
static df11_result block_begin(const df11_parsed *P, uint64_t j, uint8_t *buf,
			       bstream *b)
{
	const df11_layout *L = &P->layout;
	const unsigned wb = L->window_log2 + L->block_log2;
	b->j = j;
	b->elem = block_start_elem(P, j);
	b->remaining = block_start_elem(P, j + 1) - b->elem;
	b->pos = window_start(P, j << L->block_log2);
	b->end = window_start(P, (j + 1) << L->block_log2);
	b->buf = buf;
	if (b->end < b->pos || b->remaining > b->end - b->pos ||
	    b->end > ((j + 1) << wb) + L->max_code_len - 1 ||
	    (b->remaining && b->pos >= ((j + 1) << wb)))
		return df11_fail(DF11_BAD_DATA, "block %llu: %llu codes in bits "
				 "%llu..%llu", (unsigned long long)j,
				 (unsigned long long)b->remaining,
				 (unsigned long long)b->pos,
				 (unsigned long long)b->end);
	return DF11_OK;
}

/* Rounds of three lookups that b can surely take: each keeps at most
 * 3 * DF11_MULTI_MAX exponents and consumes at most 45 bits, and
 * pos <= limit before a load keeps the 8-byte load inside the stream's
 * padding. */
static inline uint64_t safe_rounds(const bstream *b, uint64_t limit)
{
	uint64_t by_out = b->remaining / (3 * DF11_MULTI_MAX);
	uint64_t by_bits = b->pos > limit ? 0 : (limit - b->pos) / 45 + 1;
	uint64_t r = by_out < by_bits ? by_out : by_bits;
	return r < CHUNK_ROUNDS ? r : CHUNK_ROUNDS;
}

/* Compiled for AVX2 and for baseline x86-64, chosen at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void join_planes(const uint8_t *exps, const uint8_t *sm, uint16_t *dst,
			uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		dst[i] = df11_bf16_join(exps[i], sm[i]);
}

/* Large outputs are written with non-temporal stores: they would not fit
 * in cache anyway, and plain stores read every output line from memory
 * before writing it (one core decoded 2.7 -> 3.1 GB/s with them). Each
 * worker orders them with sfence_streamed() before it reports. Where
 * AVX2 is missing, plain stores. */
#define STREAM_MIN_BYTES ((uint64_t)8 << 20)
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
static int can_stream(void)
{
	return __builtin_cpu_supports("avx2");
}

__attribute__((target("avx2"))) static inline __m256i
join16(const uint8_t *exps, const uint8_t *sm)
{
	__m256i e = _mm256_cvtepu8_epi16(_mm_loadu_si128((const void *)exps));
	__m256i m = _mm256_cvtepu8_epi16(_mm_loadu_si128((const void *)sm));
	__m256i sign = _mm256_slli_epi16(
		_mm256_and_si256(m, _mm256_set1_epi16(0x80)), 8);
	__m256i mant = _mm256_and_si256(m, _mm256_set1_epi16(0x7f));
	return _mm256_or_si256(_mm256_or_si256(sign, _mm256_slli_epi16(e, 7)),
			       mant);
}

/* Whole 64-byte lines of dst take streaming stores; the partial lines at
 * either end (shared with the neighbouring flushes) plain ones. */
__attribute__((target("avx2"))) static void
join_planes_stream(const uint8_t *exps, const uint8_t *sm, uint16_t *dst,
		   uint64_t n)
{
	uint64_t head = (((uintptr_t)0 - (uintptr_t)dst) & 63) / 2, i;
	if (((uintptr_t)dst & 1) || n < head + 32) {
		join_planes(exps, sm, dst, n);
		return;
	}
	join_planes(exps, sm, dst, head);
	for (i = head; i + 32 <= n; i += 32) {
		_mm256_stream_si256((void *)(dst + i), join16(exps + i, sm + i));
		_mm256_stream_si256((void *)(dst + i + 16),
				    join16(exps + i + 16, sm + i + 16));
	}
	join_planes(exps + i, sm + i, dst + i, n - i);
}

static void sfence_streamed(int streamed)
{
	if (streamed)
		_mm_sfence();
}
#else
static int can_stream(void) { return 0; }
#define join_planes_stream join_planes /* never chosen */
static void sfence_streamed(int streamed) { (void)streamed; }
#endif

/* Joins the n exponents in b->buf with their sign|mantissa bytes into the
 * part of the output that wants them. */
static inline void flush(bstream *b, uint64_t n, const dec_out *out)
{
	uint64_t lo = b->elem > out->first ? b->elem : out->first;
	uint64_t hi = b->elem + n, want_hi = out->first + out->count;
	hi = hi < want_hi ? hi : want_hi;
	if (lo < hi)
		(out->stream ? join_planes_stream : join_planes)(
			b->buf + (lo - b->elem), out->sm + lo,
			out->dst + (lo - out->first), hi - lo);
	b->elem += n;
	b->remaining -= n;
}

/* Each lookup writes 4 bytes and keeps 0..4 of them; 0 marks a code
 * longer than the table, decoded bit by bit (rare: each such code has
 * probability below 2^-12). One 8-byte load gives 57 usable bits; three
 * lookups take at most 45. N streams advance in lock step: each lookup
 * depends on the previous one's length, so interleaving independent chains
 * keeps the core busy. */
static inline __attribute__((always_inline)) void
decode_rounds(const df11_decoder *d, const uint8_t *s,
				 unsigned maxlen, bstream *b, int n,
				 uint64_t rounds, uint64_t *produced)
{
	const uint64_t *multi = d->multi;
	const uint64_t mask = ((uint64_t)1 << DF11_TABLE_BITS) - 1;
	uint64_t pos[STREAMS];
	uint8_t *o[STREAMS];
	for (int k = 0; k < n; k++) {
		pos[k] = b[k].pos;
		o[k] = b[k].buf;
	}
	while (rounds--) {
		uint64_t bits[STREAMS];
#pragma GCC unroll 8
		for (int k = 0; k < n; k++)
			bits[k] = load64(s + (pos[k] >> 3)) >> (pos[k] & 7);
#pragma GCC unroll 3
		for (int step = 0; step < 3; step++) {
#pragma GCC unroll 8
			for (int k = 0; k < n; k++) {
				uint64_t e = multi[bits[k] & mask];
				if (__builtin_expect(df11_multi_count(e) == 0, 0)) {
					uint32_t x = df11_huff_decode_slow(
						&d->canon, bits[k], maxlen);
					e = (x & 0xffu) | ((uint64_t)(x >> 8) << 48) |
					    ((uint64_t)1 << 61);
				}
				store32(o[k], (uint32_t)e);
				o[k] += df11_multi_count(e);
				bits[k] >>= df11_multi_bits(e);
				pos[k] += df11_multi_bits(e);
			}
		}
	}
	for (int k = 0; k < n; k++) {
		b[k].pos = pos[k];
		produced[k] = (uint64_t)(o[k] - b[k].buf);
	}
}

/* Decodes what is left of b on its own and checks that exactly the
 * block's codes were consumed. */
DF11_HOT static df11_result block_finish(const df11_decoder *d, const df11_parsed *P,
				bstream *b, const dec_out *out)
{
	const uint8_t *s = P->stream;
	const uint64_t limit = P->layout.stream_bits;
	const unsigned maxlen = P->layout.max_code_len;
	const uint64_t mask = ((uint64_t)1 << DF11_TABLE_BITS) - 1;
	uint64_t rounds, produced;
	while ((rounds = safe_rounds(b, limit)) > 0) {
		decode_rounds(d, s, maxlen, b, 1, rounds, &produced);
		flush(b, produced, out);
	}
	uint64_t n = 0;
	while (n < b->remaining && b->pos <= limit) {
		uint64_t bits = load64(s + (b->pos >> 3)) >> (b->pos & 7);
		uint32_t e = d->single[bits & mask];
		if (e == 0)
			e = df11_huff_decode_slow(&d->canon, bits, maxlen);
		b->buf[n++] = (uint8_t)e;
		b->pos += e >> 8;
	}
	if (n != b->remaining || b->pos != b->end)
		return df11_fail(DF11_BAD_DATA, "block %llu: codes end at bit "
				 "%llu, next block starts at %llu",
				 (unsigned long long)b->j,
				 (unsigned long long)b->pos,
				 (unsigned long long)b->end);
	flush(b, n, out);
	return DF11_OK;
}

/* Decodes blocks j .. j + STREAMS - 1 (those below hi), side by side. */
DF11_HOT static df11_result decode_blocks(const df11_decoder *d, const df11_parsed *P,
				 uint64_t j, uint64_t hi,
				 uint8_t (*scratch)[CHUNK_BYTES],
				 const dec_out *out)
{
	bstream b[STREAMS];
	int n = hi - j < STREAMS ? (int)(hi - j) : STREAMS;
	df11_result r;
	for (int k = 0; k < n; k++)
		if ((r = block_begin(P, j + (uint64_t)k, scratch[k], &b[k])) !=
		    DF11_OK)
			return r;
	const uint64_t limit = P->layout.stream_bits;
	while (n == STREAMS) {
		uint64_t rounds = CHUNK_ROUNDS, produced[STREAMS];
		for (int k = 0; k < STREAMS; k++) {
			uint64_t rk = safe_rounds(&b[k], limit);
			rounds = rk < rounds ? rk : rounds;
		}
		if (rounds == 0)
			break;
		decode_rounds(d, P->stream, P->layout.max_code_len, b, STREAMS,
			      rounds, produced);
		for (int k = 0; k < STREAMS; k++)
			flush(&b[k], produced[k], out);
	}
	for (int k = 0; k < n; k++)
		if ((r = block_finish(d, P, &b[k], out)) != DF11_OK)
			return r;
	return DF11_OK;
}

typedef struct dec_job {
	const df11_decoder *d;
	const df11_parsed *P;
	dec_out out;
	uint64_t block_lo, block_hi;
	int threads;
	df11_result result[MAX_THREADS];
	char message[MAX_THREADS][160];
} dec_job;

static void dec_worker(void *arg, int t)
{
	dec_job *J = arg;
	uint64_t nb = J->block_hi - J->block_lo;
	uint64_t lo = J->block_lo + nb * (uint64_t)t / (uint64_t)J->threads;
	uint64_t hi = J->block_lo + nb * (uint64_t)(t + 1) / (uint64_t)J->threads;
	J->result[t] = DF11_OK;
	for (uint64_t j = lo; j < hi; j += STREAMS) {
		df11_result r = decode_blocks(J->d, J->P, j, hi, J->d->scratch[t],
					      &J->out);
		if (r != DF11_OK) {
			J->result[t] = r;
			snprintf(J->message[t], sizeof J->message[t], "%s",
				 df11_last_error());
			break;
		}
	}
	/* This thread's streaming stores are visible before it reports. */
	sfence_streamed(J->out.stream);
}

/* The first block whose elements reach past `elem`. */
static uint64_t block_of(const df11_parsed *P, uint64_t elem)
{
	uint64_t lo = 0, hi = P->layout.n_blocks; /* invariant: answer in [lo, hi) */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (block_start_elem(P, mid) <= elem)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static df11_result decode_range(df11_decoder *d, const df11_parsed *P,
				 uint64_t first, uint64_t count, uint16_t *dst)
{
	const df11_layout *L = &P->layout;
	if (count == 0)
		return DF11_OK;
	if (L->codec == DF11_CODEC_RAW) {
		memcpy(dst, P->base + DF11_HEADER_SIZE + 2 * first, 2 * count);
		return DF11_OK;
	}
	if (L->codec == DF11_CODEC_SINGLE) {
		const uint8_t *sm = P->base + L->off_sm + first;
		for (uint64_t i = 0; i < count; i++)
			dst[i] = df11_bf16_join(L->single_exponent, sm[i]);
		return DF11_OK;
	}
	prepare(d, P);
	dec_job *J = calloc(1, sizeof *J);
	if (!J)
		return df11_fail(DF11_NOMEM, "decode job");
	J->d = d;
	J->P = P;
	J->out = (dec_out){P->sm, dst, first, count,
			   2 * count >= STREAM_MIN_BYTES && can_stream()};
	J->block_lo = block_of(P, first);
	J->block_hi = block_of(P, first + count - 1) + 1;
	uint64_t nb = J->block_hi - J->block_lo;
	int T = clamp_threads(d->threads, count);
	if ((uint64_t)T > nb)
		T = (int)nb;
	J->threads = T;
	df11_parallel_run(T, dec_worker, J);
	df11_result r = DF11_OK;
	for (int t = 0; t < T && r == DF11_OK; t++) {
		if (J->result[t] != DF11_OK)
			r = df11_fail(J->result[t], "%s", J->message[t]);
	}
	free(J);
	return r;
}

df11_result df11_decode(df11_decoder *d, const void *src, size_t src_size,
			uint16_t *dst, uint64_t n_elems)
{
	df11_parsed P;
	if (!d || (!dst && n_elems))
		return df11_fail(DF11_INVALID_ARG, "decode: NULL decoder or output");
	df11_result r = df11_parse(src, src_size, &P);
	if (r != DF11_OK)
		return r;
	if (n_elems != P.layout.n_elems)
		return df11_fail(DF11_INVALID_ARG, "decode: output holds %llu "
				 "elements, tensor has %llu",
				 (unsigned long long)n_elems,
				 (unsigned long long)P.layout.n_elems);
	return decode_range(d, &P, 0, n_elems, dst);
}

df11_result df11_decode_range(df11_decoder *d, const void *src,
			      size_t src_size, uint64_t first, uint64_t count,
			      uint16_t *dst)
{
	df11_parsed P;
	if (!d || (!dst && count))
		return df11_fail(DF11_INVALID_ARG, "decode: NULL decoder or output");
	df11_result r = df11_parse(src, src_size, &P);
	if (r != DF11_OK)
		return r;
	if (first > P.layout.n_elems || count > P.layout.n_elems - first)
		return df11_fail(DF11_INVALID_ARG, "decode: range %llu+%llu past "
				 "%llu elements", (unsigned long long)first,
				 (unsigned long long)count,
				 (unsigned long long)P.layout.n_elems);
	return decode_range(d, &P, first, count, dst);
}

/* ---------------------------------------------------- reference decoder */

df11_result df11_decode_reference(const void *src, size_t src_size,
				  uint16_t *dst, uint64_t n_elems)
{
	df11_parsed P;
	df11_result r = df11_parse(src, src_size, &P);
	if (r != DF11_OK)
		return r;
	const df11_layout *L = &P.layout;
	if (n_elems != L->n_elems || (!dst && n_elems))
		return df11_fail(DF11_INVALID_ARG, "decode: output holds %llu "
				 "elements, tensor has %llu",
				 (unsigned long long)n_elems,
				 (unsigned long long)L->n_elems);
	if (L->codec == DF11_CODEC_RAW) {
		const uint8_t *p = P.base + DF11_HEADER_SIZE;
		for (uint64_t i = 0; i < n_elems; i++)
			dst[i] = df11_rd16(p + 2 * i);
		return DF11_OK;
	}
	if (L->codec == DF11_CODEC_SINGLE) {
		for (uint64_t i = 0; i < n_elems; i++)
			dst[i] = df11_bf16_join(L->single_exponent,
						P.base[L->off_sm + i]);
		return DF11_OK;
	}

	/* Canonical decoding one bit at a time, as in zlib's puff.c: count[l]
	 * codes of length l, symbols sorted by (length, value). */
	unsigned count[17] = {0}, offs[17];
	uint8_t symbol[256];
	for (int s = 0; s < 256; s++)
		count[P.code_len[s]]++;
	offs[1] = 0;
	for (int l = 1; l < 16; l++)
		offs[l + 1] = offs[l] + count[l];
	for (int s = 0; s < 256; s++)
		if (P.code_len[s])
			symbol[offs[P.code_len[s]]++] = (uint8_t)s;

	const uint64_t W = (uint64_t)1 << L->window_log2;
	uint64_t pos = 0, next_window = 0;
	for (uint64_t i = 0; i < n_elems; i++) {
		/* Every window boundary passed: this code is the first to start
		 * in that window. Check the index says so. */
		while (next_window < L->n_windows && next_window * W <= pos) {
			uint64_t k = next_window++;
			if (df11_gap(P.gaps, k) != pos - k * W)
				return df11_fail(DF11_BAD_DATA, "window %llu: gap %u, "
						 "first code at +%llu",
						 (unsigned long long)k,
						 df11_gap(P.gaps, k),
						 (unsigned long long)(pos - k * W));
			if ((k & ((1u << L->block_log2) - 1)) == 0 &&
			    block_start_elem(&P, k >> L->block_log2) != i)
				return df11_fail(DF11_BAD_DATA, "block %llu: index "
						 "says element %llu, first code "
						 "is element %llu",
						 (unsigned long long)(k >> L->block_log2),
						 (unsigned long long)block_start_elem(
							 &P, k >> L->block_log2),
						 (unsigned long long)i);
		}
		int code = 0, first = 0, index = 0, sym = -1;
		for (unsigned l = 1; l <= L->max_code_len; l++) {
			if (pos >= L->stream_bits)
				return df11_fail(DF11_BAD_DATA, "stream ends inside "
						 "code %llu", (unsigned long long)i);
			code |= (P.stream[pos >> 3] >> (pos & 7)) & 1;
			pos++;
			int c = (int)count[l];
			if (code - c < first) {
				sym = symbol[index + (code - first)];
				break;
			}
			index += c;
			first = (first + c) << 1;
			code <<= 1;
		}
		if (sym < 0) /* impossible for a complete code */
			return df11_fail(DF11_BAD_DATA, "invalid code at bit %llu",
					 (unsigned long long)pos);
		dst[i] = df11_bf16_join((uint32_t)sym, P.sm[i]);
	}
	if (pos != L->stream_bits)
		return df11_fail(DF11_BAD_DATA, "codes end at bit %llu, stream has "
				 "%llu", (unsigned long long)pos,
				 (unsigned long long)L->stream_bits);
	for (uint64_t k = next_window; k < L->n_windows; k++)
		if (df11_gap(P.gaps, k) != DF11_GAP_NONE ||
		    ((k & ((1u << L->block_log2) - 1)) == 0 &&
		     block_start_elem(&P, k >> L->block_log2) != n_elems))
			return df11_fail(DF11_BAD_DATA, "window %llu: no code starts "
					 "there but the index says one does",
					 (unsigned long long)k);
	/* Padding bits and bytes are zero: a cheap check for stray data. */
	if ((L->stream_bits & 7) &&
	    (P.stream[L->stream_bits >> 3] >> (L->stream_bits & 7)))
		return df11_fail(DF11_BAD_DATA, "nonzero padding bits");
	for (uint64_t b = L->stream_bytes; b < L->total_size - L->off_stream; b++)
		if (P.stream[b])
			return df11_fail(DF11_BAD_DATA, "nonzero padding byte");
	return DF11_OK;
}
