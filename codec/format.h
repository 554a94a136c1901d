/*
 * The encoded-tensor layout, defined once for the C compiler and nvcc.
 * docs/FORMAT.md is the prose version of this file.
 *
 * An encoded tensor is a byte string:
 *
 *   offset 0   header, 32 bytes (fields below, little-endian)
 *   then, each section starting at a multiple of 16 bytes from offset 0:
 *     table        code table (huffman only)            table_size bytes
 *     block_starts u64 per block: index of the first     8 * n_blocks
 *                  element whose code starts in the block
 *     gaps         4 bits per window, low nibble first   ceil(n_windows / 2)
 *     sm           sign|mantissa byte per element        n_elems
 *     stream       exponent bitstream, LSB-first, then   stream_bytes(...)
 *                  >= 8 zero bytes of padding
 *   raw codec: header, then n_elems little-endian u16 at offset 32.
 *   single codec: header, then the sm plane at offset 32.
 *
 * Header:
 *   0  u8[4] magic "DF1T"
 *   4  u8  codec            (enum df11_codec)
 *   5  u8  max_code_len     (huffman: longest code, 1..15, else 0)
 *   6  u8  window_log2      (huffman: 6..16, else 0)
 *   7  u8  block_log2       (huffman: 0..12, window_log2 + block_log2 <= 20)
 *   8  u64 n_elems
 *   16 u64 stream_bits      (huffman, else 0)
 *   24 u16 table_size       (huffman, else 0)
 *   26 u8  single_exponent  (single, else 0)
 *   27 u8  reserved[5]      (zero)
 *
 * Window k covers stream bits [k*W, (k+1)*W), W = 2^window_log2. Its gap is
 * the distance from k*W to the first code that starts at or after k*W,
 * always < max_code_len, or DF11_GAP_NONE when no code starts in the window
 * (only the last window can be so). A worker that owns window k starts at
 * k*W + gap[k] and decodes every code that starts inside the window. Block j
 * is windows [j*2^block_log2, (j+1)*2^block_log2); block_starts[j] says
 * where its first code's output goes.
 */
#ifndef DF11_FORMAT_H
#define DF11_FORMAT_H

#include <stdint.h>

#include "common/bf16.h"
#include "common/bytes.h"
#include "huffman/huffman.h"

#define DF11_TENSOR_MAGIC "DF1T"
#define DF11_HEADER_SIZE 32u
#define DF11_SECTION_ALIGN 16u
#define DF11_STREAM_PAD 8u
#define DF11_GAP_NONE 15u
#define DF11_DEFAULT_WINDOW_LOG2 11
#define DF11_DEFAULT_BLOCK_LOG2 6
#define DF11_MIN_WINDOW_LOG2 6 /* 64 bits: a window always holds a code start */
#define DF11_MAX_WINDOW_LOG2 16
#define DF11_MAX_BLOCK_LOG2 12
#define DF11_MAX_BLOCK_BITS_LOG2 20 /* window_log2 + block_log2: bounds scratch */

/* Gap of window k, from the packed nibble array. */
DF11_HD uint32_t df11_gap(const uint8_t *gaps, uint64_t k)
{
	return (gaps[k >> 1] >> ((k & 1u) * 4u)) & 0xfu;
}

/* The parsed header plus the section offsets derived from it. */
typedef struct df11_layout {
	uint64_t n_elems;
	uint64_t stream_bits;
	uint64_t n_windows, n_blocks;
	uint32_t codec, max_code_len, window_log2, block_log2;
	uint32_t table_size, single_exponent;
	uint64_t off_table, off_block_starts, off_gaps, off_sm, off_stream;
	uint64_t stream_bytes; /* data bytes, without padding */
	uint64_t total_size;
} df11_layout;

/* Computes section offsets from header fields. Returns 0 on success, -1 if
 * a field is out of range or a size overflows. Fields must be set first:
 * codec, n_elems, and for huffman max_code_len, window_log2, block_log2,
 * stream_bits, table_size. */
DF11_HD int df11_layout_compute(df11_layout *L)
{
	const uint64_t max_elems = (uint64_t)1 << 50; /* 2 PiB of BF16 */
	if (L->n_elems > max_elems)
		return -1;
	L->n_windows = L->n_blocks = 0;
	L->off_table = L->off_block_starts = L->off_gaps = 0;
	L->off_sm = L->off_stream = L->stream_bytes = 0;
	if (L->codec == 0u) {
		L->total_size = DF11_HEADER_SIZE + 2u * L->n_elems;
		return 0;
	}
	if (L->codec == 1u) {
		L->off_sm = DF11_HEADER_SIZE;
		L->total_size = DF11_HEADER_SIZE + L->n_elems;
		return 0;
	}
	if (L->codec != 2u)
		return -1;
	if (L->max_code_len < 1u || L->max_code_len > 15u ||
	    L->window_log2 < DF11_MIN_WINDOW_LOG2 ||
	    L->window_log2 > DF11_MAX_WINDOW_LOG2 ||
	    L->block_log2 > DF11_MAX_BLOCK_LOG2 ||
	    L->window_log2 + L->block_log2 > DF11_MAX_BLOCK_BITS_LOG2 ||
	    L->table_size < 3u ||
	    L->table_size > DF11_TABLE_MAX_SIZE)
		return -1;
	/* Every code is at least 1 bit and at most max_code_len bits. */
	if (L->stream_bits < L->n_elems ||
	    L->stream_bits > L->n_elems * L->max_code_len || L->n_elems == 0)
		return -1;
	L->n_windows = (L->stream_bits + ((uint64_t)1 << L->window_log2) - 1) >>
		       L->window_log2;
	L->n_blocks = (L->n_windows + ((uint64_t)1 << L->block_log2) - 1) >>
		      L->block_log2;
	L->stream_bytes = (L->stream_bits + 7u) / 8u;
	L->off_table = DF11_HEADER_SIZE;
	L->off_block_starts = df11_round_up16(L->off_table + L->table_size);
	L->off_gaps = df11_round_up16(L->off_block_starts + 8u * L->n_blocks);
	L->off_sm = df11_round_up16(L->off_gaps + (L->n_windows + 1u) / 2u);
	L->off_stream = df11_round_up16(L->off_sm + L->n_elems);
	L->total_size =
		df11_round_up16(L->off_stream + L->stream_bytes + DF11_STREAM_PAD);
	return 0;
}

#endif /* DF11_FORMAT_H */
