/* The reference decoder: one bit at a time, single-threaded, checking every
 * window gap and block start of the index. It shares no decoding code
 * with the fast decoders (its canonical decode is written out here, as in
 * zlib's puff.c), so it can serve as their oracle. */
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
			    df11_block_start_elem(&P, k >> L->block_log2) != i)
				return df11_fail(DF11_BAD_DATA, "block %llu: index "
						 "says element %llu, first code "
						 "is element %llu",
						 (unsigned long long)(k >> L->block_log2),
						 (unsigned long long)df11_block_start_elem(
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
		     df11_block_start_elem(&P, k >> L->block_log2) != n_elems))
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

