/* Validating an encoded tensor's header, code table and index before any
 * decoder touches its stream; df11_inspect. */
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
