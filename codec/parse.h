/* Internal: a validated view of an encoded tensor, shared by the CPU
 * decoders, the container code and the CUDA upload path. */
#ifndef DF11_CODEC_PARSE_H
#define DF11_CODEC_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "codec/format.h"

typedef struct df11_parsed {
	df11_layout layout;
	const uint8_t *base;         /* the encoded tensor */
	uint8_t code_len[256];       /* huffman: code length per exponent */
	const uint8_t *block_starts; /* u64 LE per block */
	const uint8_t *gaps;         /* nibble per window */
	const uint8_t *sm;           /* sign|mantissa plane */
	const uint8_t *stream;       /* exponent bitstream */
} df11_parsed;

/* Validates the header, the code table and the index (block starts
 * nondecreasing from 0 to n_elems, every gap below max_code_len or NONE in
 * the last window only); size must equal the encoded size exactly. */
df11_result df11_parse(const void *src, size_t size, df11_parsed *parsed_ret);

/* Decodes elements [first, first + count) of a parsed tensor with the
 * fast decoder (the range is the caller's to check): a tensor parsed
 * once, decoded in pieces. */
df11_result df11_decode_parsed(df11_decoder *d, const df11_parsed *P,
			       uint64_t first, uint64_t count, uint16_t *dst);

/* Where to end a piece of a tensor decoded in pieces that starts at
 * element `first` and holds at most `want` elements (want > 0, first
 * below n_elems): at a block boundary that gives the fast decoder whole
 * groups of blocks to decode side by side, so that no block is decoded
 * for two pieces and none alone where a group would do; else at the
 * last block boundary in reach; else at first + want (blocks larger than
 * the piece). Never past n_elems, always past first. */
uint64_t df11_decode_piece_end(const df11_parsed *P, uint64_t first,
			       uint64_t want);

/* The first element of block j (n_elems past the last block). */
static inline uint64_t df11_block_start_elem(const df11_parsed *P, uint64_t j)
{
	if (j >= P->layout.n_blocks)
		return P->layout.n_elems;
	return df11_rd64(P->block_starts + 8 * j);
}

/* The block holding element elem: the last block that starts at or
 * before it (0 for a tensor without blocks). */
static inline uint64_t df11_block_of(const df11_parsed *P, uint64_t elem)
{
	uint64_t lo = 0, hi = P->layout.n_blocks; /* answer in [lo, hi) */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (df11_block_start_elem(P, mid) <= elem)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

#endif
