/*
 * Internal to libdf11: the encoder in pieces, for tensors larger than the
 * memory one should spend on them (the container writer uses it).
 *
 * Every section offset of an encoded tensor depends only on n_elems and
 * stream_bits (codec/format.h), and stream_bits = sum(count[e] * len[e])
 * is known once the exponents are counted. So a tensor is encoded in two
 * passes over its elements, piece by piece, in order:
 *
 *   begin(n)                     once per tensor
 *   count(piece) ...             pass 1: per-block exponent counts
 *   plan()                       code lengths, codec, layout, total size
 *   code(piece, out) ...         pass 2: the piece's sign|mantissa bytes
 *                                and exponent bits, as byte runs at their
 *                                offsets in the encoded tensor
 *   finish()                     the rest: header, code table, index,
 *                                zero padding
 *
 * Together the runs cover the encoded tensor exactly once, and the bytes
 * equal df11_encode's output for the same options, whatever the piece
 * sizes and thread count. Memory: a 1 KiB count per block of input, the
 * index (one byte per 2^window_log2 stream bits), and the caller's piece
 * buffers; none of it grows with anything but the tensor's length.
 */
#ifndef DF11_ENCODE_STREAM_H
#define DF11_ENCODE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "codec/format.h"

/* Coding tables and index outputs of df11_enc_range (codec/encode.c). */
typedef struct df11_enc_code {
	const uint64_t *code;        /* bit-reversed code, per exponent */
	const uint64_t *pair;        /* codes of exponent pairs, e0 | e1 << 8 */
	const uint8_t *len;          /* code length, per exponent */
	uint8_t *window_gap;         /* one byte per window */
	uint64_t *block_starts;      /* per index block */
	unsigned window_log2, block_log2;
} df11_enc_code;

/* Pair code table entries: the two codes, then their total length. */
#define DF11_PAIR_LEN_SHIFT 59

void df11_enc_header(uint8_t *dst, const df11_layout *L);
/* opt's window_log2, block_log2 and max_code_len with the defaults
 * applied, checked (DF11_INVALID_ARG if out of range or a reserved field
 * is set). */
df11_result df11_enc_params(const df11_encode_options *opt, unsigned *wlog_ret,
			    unsigned *blog_ret, unsigned *maxlen_ret);
/* Fills the 65536-entry pair table for the exponents that have codes. */
void df11_enc_pair_table(const uint8_t len[256], const uint64_t code[256],
			 uint64_t *pair);
void df11_enc_range(const df11_enc_code *C, const uint16_t *src,
		    uint8_t *sm, uint64_t b, uint64_t e, uint64_t start_bit,
		    unsigned prev_len, uint8_t *out);

/* Elements per coding block: a piece is a whole number of blocks (but
 * the tensor's last); a thread codes one block at a time. 4 MiB of BF16. */
#define DF11_ES_BLOCK_LOG2 21
#define DF11_ES_BLOCK ((uint64_t)1 << DF11_ES_BLOCK_LOG2)

/* A run of bytes of the encoded tensor: len bytes at offset off. */
typedef struct df11_es_seg {
	uint64_t off;
	const uint8_t *p;
	size_t len;
} df11_es_seg;

/* Runs one piece can give: its sign|mantissa bytes and one per block. */
#define DF11_ES_MAX_SEGS(piece_elems) \
	(2 + ((piece_elems) + DF11_ES_BLOCK - 1) / DF11_ES_BLOCK)

typedef struct df11_enc_stream df11_enc_stream;

df11_enc_stream *df11_enc_stream_new(int threads);
void df11_enc_stream_free(df11_enc_stream *es);

/* Starts a tensor of n_elems > 0 elements with opt's window_log2,
 * block_log2, max_code_len and force_raw (threads come from _new). */
df11_result df11_enc_stream_begin(df11_enc_stream *es, uint64_t n_elems,
				  const df11_encode_options *opt);
/* Pass 1: src holds elements [first, first + cnt); pieces come in order,
 * first a multiple of DF11_ES_BLOCK, cnt too unless the piece is the
 * tensor's last. */
df11_result df11_enc_stream_count(df11_enc_stream *es, const uint16_t *src,
				  uint64_t first, uint64_t cnt);
/* After pass 1: chooses the codec as df11_encode does; *layout_ret gets
 * the layout (codec, total_size, section offsets). */
df11_result df11_enc_stream_plan(df11_enc_stream *es, df11_layout *layout_ret);
/* Scratch bytes df11_enc_stream_code needs for a piece. */
size_t df11_enc_stream_need(const df11_enc_stream *es, uint64_t first,
			    uint64_t cnt);
/* Pass 2, same pieces as pass 1 (any split into whole blocks will do),
 * in order. seg (room for DF11_ES_MAX_SEGS(cnt)) gets the runs, which
 * point into out and stay valid until out is reused. */
df11_result df11_enc_stream_code(df11_enc_stream *es, const uint16_t *src,
				 uint64_t first, uint64_t cnt, uint8_t *out,
				 size_t out_cap, df11_es_seg *seg, int *nseg_ret);
/* After the last piece: the remaining runs (at most 4), pointing into es
 * (valid until the next begin). */
df11_result df11_enc_stream_finish(df11_enc_stream *es, df11_es_seg *seg,
				   int *nseg_ret);

#endif
