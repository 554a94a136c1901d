/* The encoder in pieces (codec/encode_stream.h): same bytes as
 * df11_encode, bounded memory. */
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "codec/codec_util.h"
#include "codec/encode_stream.h"
#include "common/error.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

struct df11_enc_stream {
	int threads;
	uint64_t n;
	unsigned wlog, blog, maxlen;
	int force_raw;
	uint64_t nb;               /* coding blocks */
	uint32_t (*hist)[256];     /* [nb]: exponent counts per block */
	uint8_t *last_exp;         /* [nb]: exponent of each block's last
				    * element (its code length starts the
				    * next block's index) */
	uint64_t *bit;             /* [nb + 1]: first stream bit per block */
	size_t blocks_cap;
	uint64_t counted, coded;   /* elements through pass 1, pass 2 */
	int planned;
	df11_layout L;
	uint8_t len[256];
	uint64_t code[256];
	uint64_t *pair;            /* 65536 entries */
	uint8_t table[DF11_TABLE_MAX_SIZE];
	uint8_t *window_gap;
	size_t wg_cap;
	uint64_t *block_starts;
	size_t bs_cap;
	uint8_t carry;             /* stream byte shared with the next block */
	uint8_t *head;             /* [0, off_sm) once finished */
	size_t head_cap;
	uint8_t tail[DF11_HEADER_SIZE + 2 * DF11_SECTION_ALIGN];
};

df11_enc_stream *df11_enc_stream_new(int threads)
{
	df11_enc_stream *es = calloc(1, sizeof *es);
	if (!es)
		return NULL;
	es->threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS
							       : threads;
	return es;
}

void df11_enc_stream_free(df11_enc_stream *es)
{
	if (!es)
		return;
	free(es->hist);
	free(es->bit);
	free(es->last_exp);
	free(es->pair);
	free(es->window_gap);
	free(es->block_starts);
	free(es->head);
	free(es);
}

df11_result df11_enc_stream_begin(df11_enc_stream *es, uint64_t n,
				  const df11_encode_options *opt)
{
	static const df11_encode_options defaults = {0};
	if (!opt)
		opt = &defaults;
	unsigned wlog, blog, maxlen;
	df11_result r = df11_enc_params(opt, &wlog, &blog, &maxlen);
	if (r)
		return r;
	if (n == 0 || n > ((uint64_t)1 << 50))
		return df11_fail(n ? DF11_LIMIT : DF11_INVALID_ARG,
				 "encode: %llu elements, need 1..2^50",
				 (unsigned long long)n);
	uint64_t nb = (n + DF11_ES_BLOCK - 1) >> DF11_ES_BLOCK_LOG2;
	if (nb > es->blocks_cap) {
		free(es->hist);
		free(es->bit);
		free(es->last_exp);
		es->hist = malloc((size_t)nb * sizeof *es->hist);
		es->bit = malloc(((size_t)nb + 1) * sizeof *es->bit);
		es->last_exp = malloc((size_t)nb);
		es->blocks_cap = es->hist && es->bit && es->last_exp ? (size_t)nb : 0;
		if (!es->blocks_cap)
			return df11_fail(DF11_NOMEM, "encode: counts of %llu "
					 "blocks", (unsigned long long)nb);
	}
	es->n = n;
	es->nb = nb;
	es->wlog = wlog;
	es->blog = blog;
	es->maxlen = maxlen;
	es->force_raw = opt->force_raw;
	es->counted = es->coded = 0;
	es->planned = 0;
	es->carry = 0;
	memset(&es->L, 0, sizeof es->L);
	return DF11_OK;
}

/* Checks a piece's place: in order, whole blocks but at the end. */
static df11_result piece_ok(const df11_enc_stream *es, uint64_t at,
			    uint64_t first, uint64_t cnt, const void *src)
{
	if (!src || cnt == 0 || first != at || cnt > es->n - first ||
	    (first + cnt != es->n && (cnt & (DF11_ES_BLOCK - 1))))
		return df11_fail(DF11_INVALID_ARG, "encode: piece %llu+%llu out "
				 "of order (at %llu of %llu)",
				 (unsigned long long)first,
				 (unsigned long long)cnt,
				 (unsigned long long)at,
				 (unsigned long long)es->n);
	return DF11_OK;
}

typedef struct piece_job {
	df11_enc_stream *es;
	const uint16_t *src;
	uint64_t first, cnt, nblk;
	int threads;
	df11_enc_code C;
	uint8_t *sm;
	uint8_t **slot;
} piece_job;

static void block_range(const piece_job *J, uint64_t j, uint64_t *b,
			uint64_t *e)
{
	*b = j * DF11_ES_BLOCK;
	*e = *b + DF11_ES_BLOCK < J->cnt ? *b + DF11_ES_BLOCK : J->cnt;
}

static void count_worker(void *arg, int t)
{
	piece_job *J = arg;
	for (uint64_t j = (uint64_t)t; j < J->nblk; j += (uint64_t)J->threads) {
		uint64_t b, e, h[256];
		block_range(J, j, &b, &e);
		df11_count_exponents(J->src + b, e - b, h);
		uint64_t gj = (J->first >> DF11_ES_BLOCK_LOG2) + j;
		uint32_t *out = J->es->hist[gj];
		for (int s = 0; s < 256; s++)
			out[s] = (uint32_t)h[s]; /* a block's count fits */
		J->es->last_exp[gj] = (uint8_t)df11_bf16_exponent(J->src[e - 1]);
	}
}

static int piece_threads(const df11_enc_stream *es, uint64_t nblk)
{
	return (uint64_t)es->threads < nblk ? es->threads : (int)nblk;
}

df11_result df11_enc_stream_count(df11_enc_stream *es, const uint16_t *src,
				  uint64_t first, uint64_t cnt)
{
	df11_result r = piece_ok(es, es->counted, first, cnt, src);
	if (r)
		return r;
	piece_job J = {.es = es, .src = src, .first = first, .cnt = cnt,
		       .nblk = (cnt + DF11_ES_BLOCK - 1) >> DF11_ES_BLOCK_LOG2};
	J.threads = piece_threads(es, J.nblk);
	df11_parallel_run(J.threads, count_worker, &J);
	es->counted += cnt;
	return DF11_OK;
}

df11_result df11_enc_stream_plan(df11_enc_stream *es, df11_layout *L_ret)
{
	df11_layout *L = &es->L;
	memset(L, 0, sizeof *L);
	L->n_elems = es->n;
	if (es->counted != es->n)
		return df11_fail(DF11_INVALID_ARG, "encode: %llu of %llu elements "
				 "counted", (unsigned long long)es->counted,
				 (unsigned long long)es->n);
	L->codec = DF11_CODEC_RAW;
	if (!es->force_raw) {
		uint64_t freq[256] = {0};
		for (uint64_t j = 0; j < es->nb; j++)
			for (int s = 0; s < 256; s++)
				freq[s] += es->hist[j][s];
		int used = df11_huff_lengths(freq, es->maxlen, es->len);
		if (used < 1)
			return df11_fail(DF11_INVALID_ARG, "encode: no code of "
					 "length <= %u", es->maxlen);
		if (used == 1) {
			unsigned exponent = 0;
			while (!freq[exponent])
				exponent++;
			L->codec = DF11_CODEC_SINGLE;
			L->single_exponent = exponent;
		} else {
			uint16_t codes[256];
			unsigned longest = 0;
			df11_huff_codes(es->len, codes);
			for (int s = 0; s < 256; s++) {
				es->code[s] = codes[s];
				if (es->len[s] > longest)
					longest = es->len[s];
			}
			es->bit[0] = 0;
			for (uint64_t j = 0; j < es->nb; j++) {
				uint64_t bits = 0;
				for (int s = 0; s < 256; s++)
					bits += (uint64_t)es->hist[j][s] * es->len[s];
				es->bit[j + 1] = es->bit[j] + bits;
			}
			L->codec = DF11_CODEC_HUFFMAN;
			L->max_code_len = longest;
			L->window_log2 = es->wlog;
			L->block_log2 = es->blog;
			L->stream_bits = es->bit[es->nb];
			L->table_size = (uint32_t)df11_huff_table_write(es->len,
									es->table);
			if (df11_layout_compute(L) != 0 ||
			    L->total_size >= df11_encode_bound(es->n)) {
				/* Incompressible: stored as is. */
				memset(L, 0, sizeof *L);
				L->n_elems = es->n;
				L->codec = DF11_CODEC_RAW;
			}
		}
	}
	df11_layout_compute(L);
	if (L->codec == DF11_CODEC_HUFFMAN) {
		if (!es->pair && !(es->pair = malloc(65536 * sizeof *es->pair)))
			return df11_fail(DF11_NOMEM, "encode: pair code table");
		df11_enc_pair_table(es->len, es->code, es->pair);
		if (L->n_windows > es->wg_cap) {
			free(es->window_gap);
			es->wg_cap = 0;
			if (!(es->window_gap = malloc((size_t)L->n_windows)))
				return df11_fail(DF11_NOMEM, "encode: index of %llu "
						 "windows",
						 (unsigned long long)L->n_windows);
			es->wg_cap = (size_t)L->n_windows;
		}
		if (L->n_blocks > es->bs_cap) {
			free(es->block_starts);
			es->bs_cap = 0;
			if (!(es->block_starts = malloc((size_t)L->n_blocks *
							sizeof *es->block_starts)))
				return df11_fail(DF11_NOMEM, "encode: index of %llu "
						 "blocks",
						 (unsigned long long)L->n_blocks);
			es->bs_cap = (size_t)L->n_blocks;
		}
		memset(es->window_gap, DF11_GAP_NONE, (size_t)L->n_windows);
		for (uint64_t j = 0; j < L->n_blocks; j++)
			es->block_starts[j] = es->n;
	}
	es->planned = 1;
	if (L_ret)
		*L_ret = *L;
	return DF11_OK;
}

/* Bytes block j's bits may touch, with the coder's 8-byte slack. */
static size_t slot_size(const df11_enc_stream *es, uint64_t j)
{
	return (size_t)df11_round_up16((es->bit[j + 1] - es->bit[j]) / 8 + 16);
}

size_t df11_enc_stream_need(const df11_enc_stream *es, uint64_t first,
			    uint64_t cnt)
{
	if (es->L.codec == DF11_CODEC_RAW)
		return 2 * (size_t)cnt;
	if (es->L.codec == DF11_CODEC_SINGLE)
		return (size_t)cnt;
	size_t need = (size_t)df11_round_up16(cnt);
	uint64_t j0 = first >> DF11_ES_BLOCK_LOG2;
	uint64_t j1 = (first + cnt + DF11_ES_BLOCK - 1) >> DF11_ES_BLOCK_LOG2;
	for (uint64_t j = j0; j < j1 && j < es->nb; j++)
		need += slot_size(es, j);
	return need;
}

static void code_worker(void *arg, int t)
{
	piece_job *J = arg;
	const df11_enc_stream *es = J->es;
	for (uint64_t j = (uint64_t)t; j < J->nblk; j += (uint64_t)J->threads) {
		uint64_t b, e;
		block_range(J, j, &b, &e);
		uint64_t gj = (J->first >> DF11_ES_BLOCK_LOG2) + j;
		unsigned prev_len = gj ? es->len[es->last_exp[gj - 1]] : 0;
		df11_enc_range(&J->C, J->src + b, J->sm + b, J->first + b,
			       J->first + e, es->bit[gj], prev_len, J->slot[j]);
	}
}

df11_result df11_enc_stream_code(df11_enc_stream *es, const uint16_t *src,
				 uint64_t first, uint64_t cnt, uint8_t *out,
				 size_t out_cap, df11_es_seg *seg, int *nseg_ret)
{
	*nseg_ret = 0;
	df11_result r = piece_ok(es, es->coded, first, cnt, src);
	if (r)
		return r;
	if (!es->planned)
		return df11_fail(DF11_INVALID_ARG, "encode: piece before plan");
	if (!out || out_cap < df11_enc_stream_need(es, first, cnt))
		return df11_fail(DF11_BUFFER_TOO_SMALL, "encode: %zu bytes of "
				 "piece buffer, %zu needed", out_cap,
				 df11_enc_stream_need(es, first, cnt));
	const df11_layout *L = &es->L;
	int n = 0;
	if (L->codec == DF11_CODEC_RAW) {
		memcpy(out, src, 2 * (size_t)cnt); /* little-endian host */
		seg[n++] = (df11_es_seg){DF11_HEADER_SIZE + 2 * first, out,
					 2 * (size_t)cnt};
	} else if (L->codec == DF11_CODEC_SINGLE) {
		for (uint64_t i = 0; i < cnt; i++)
			out[i] = df11_bf16_sm(src[i]);
		seg[n++] = (df11_es_seg){L->off_sm + first, out, (size_t)cnt};
	} else {
		uint8_t *slots[256];
		uint8_t **slot = slots;
		piece_job J = {.es = es, .src = src, .first = first, .cnt = cnt,
			       .nblk = (cnt + DF11_ES_BLOCK - 1) >>
				       DF11_ES_BLOCK_LOG2,
			       .sm = out,
			       .C = {.code = es->code, .pair = es->pair,
				     .len = es->len, .window_gap = es->window_gap,
				     .block_starts = es->block_starts,
				     .window_log2 = L->window_log2,
				     .block_log2 = L->block_log2}};
		if (J.nblk > sizeof slots / sizeof slots[0] &&
		    !(slot = malloc((size_t)J.nblk * sizeof *slot)))
			return df11_fail(DF11_NOMEM, "encode: piece slots");
		J.slot = slot;
		J.threads = piece_threads(es, J.nblk);
		uint64_t j0 = first >> DF11_ES_BLOCK_LOG2;
		size_t at = (size_t)df11_round_up16(cnt);
		for (uint64_t j = 0; j < J.nblk; j++) {
			slot[j] = out + at;
			slot[j][0] = 0;
			at += slot_size(es, j0 + j);
		}
		df11_parallel_run(J.threads, code_worker, &J);
		seg[n++] = (df11_es_seg){L->off_sm + first, out, (size_t)cnt};
		/* Block j's first byte holds the previous block's last bits
		 * (its low bits, left zero by the coder); a block's last,
		 * partial byte goes out with the next block. */
		for (uint64_t j = 0; j < J.nblk; j++) {
			uint64_t b = es->bit[j0 + j], e = es->bit[j0 + j + 1];
			size_t full = (size_t)((e >> 3) - (b >> 3));
			slot[j][0] |= es->carry;
			if (full)
				seg[n++] = (df11_es_seg){L->off_stream + (b >> 3),
							 slot[j], full};
			es->carry = (e & 7) ? slot[j][full] : 0;
		}
		if (slot != slots)
			free(slot);
	}
	es->coded += cnt;
	*nseg_ret = n;
	return DF11_OK;
}

df11_result df11_enc_stream_finish(df11_enc_stream *es, df11_es_seg *seg,
				   int *nseg_ret)
{
	static const uint8_t zeros[DF11_SECTION_ALIGN];
	const df11_layout *L = &es->L;
	*nseg_ret = 0;
	if (!es->planned || es->coded != es->n)
		return df11_fail(DF11_INVALID_ARG, "encode: %llu of %llu elements "
				 "coded", (unsigned long long)es->coded,
				 (unsigned long long)es->n);
	size_t head = L->codec == DF11_CODEC_HUFFMAN ? (size_t)L->off_sm
						       : DF11_HEADER_SIZE;
	if (head > es->head_cap) {
		free(es->head);
		es->head_cap = 0;
		if (!(es->head = malloc(head)))
			return df11_fail(DF11_NOMEM, "encode: %zu-byte index", head);
		es->head_cap = head;
	}
	uint8_t *h = es->head;
	memset(h, 0, head);
	df11_enc_header(h, L);
	int n = 0;
	seg[n++] = (df11_es_seg){0, h, head};
	if (L->codec != DF11_CODEC_HUFFMAN) {
		*nseg_ret = n;
		return DF11_OK;
	}
	memcpy(h + L->off_table, es->table, L->table_size);
	for (uint64_t j = 0; j < L->n_blocks; j++)
		df11_wr64(h + L->off_block_starts + 8 * j, es->block_starts[j]);
	uint8_t *gaps = h + L->off_gaps;
	for (uint64_t k = 0; k < L->n_windows; k++)
		gaps[k >> 1] |= (uint8_t)(es->window_gap[k] << ((k & 1) * 4));
	uint64_t sm_end = L->off_sm + L->n_elems;
	if (L->off_stream > sm_end)
		seg[n++] = (df11_es_seg){sm_end, zeros,
					 (size_t)(L->off_stream - sm_end)};
	/* The last partial stream byte, then zero padding. */
	uint64_t t0 = L->off_stream + (L->stream_bits >> 3);
	memset(es->tail, 0, sizeof es->tail);
	es->tail[0] = es->carry;
	seg[n++] = (df11_es_seg){t0, es->tail, (size_t)(L->total_size - t0)};
	*nseg_ret = n;
	return DF11_OK;
}
