/* The fast CPU decoder: multi-symbol table lookups, several blocks
 * interleaved per thread, threads across blocks; whole tensors or ranges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "codec/codec_util.h"
#include "codec/parse.h"
#include "common/error.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

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
	b->elem = df11_block_start_elem(P, j);
	b->remaining = df11_block_start_elem(P, j + 1) - b->elem;
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
			bits[k] = df11_load64(s + (pos[k] >> 3)) >> (pos[k] & 7);
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
				df11_store32(o[k], (uint32_t)e);
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
		uint64_t bits = df11_load64(s + (b->pos >> 3)) >> (b->pos & 7);
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

df11_result df11_decode_parsed(df11_decoder *d, const df11_parsed *P,
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
	J->block_lo = df11_block_of(P, first);
	J->block_hi = df11_block_of(P, first + count - 1) + 1;
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

uint64_t df11_decode_piece_end(const df11_parsed *P, uint64_t first,
			       uint64_t want)
{
	uint64_t n = P->layout.n_elems;
	uint64_t end = want < n - first ? first + want : n;
	if (P->layout.codec != DF11_CODEC_HUFFMAN || end == n)
		return end;
	/* Blocks j0 .. j1 - 1 end at or before `end`; a piece decodes its
	 * blocks STREAMS at a time (decode_blocks). */
	uint64_t j0 = df11_block_of(P, first), j1 = df11_block_of(P, end);
	uint64_t whole = (j1 - j0) / STREAMS * STREAMS;
	if (whole)
		return df11_block_start_elem(P, j0 + whole);
	return j1 > j0 ? df11_block_start_elem(P, j1) : end;
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
	return df11_decode_parsed(d, &P, 0, n_elems, dst);
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
	return df11_decode_parsed(d, &P, first, count, dst);
}

