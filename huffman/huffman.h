/*
 * Canonical, length-limited Huffman codes over the 256 exponent values.
 *
 * Code construction is package-merge (Larmore & Hirschberg), which gives the
 * optimal code under a length limit. Codes are canonical (shorter codes
 * first, ties by symbol value) and written to the stream LSB-first, so a
 * decoder peeks the next T bits as (bits & (2^T - 1)) and looks them up.
 *
 * The functions marked DF11_HD are shared with the CUDA decoder.
 */
#ifndef DF11_HUFFMAN_H
#define DF11_HUFFMAN_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "common/bytes.h"

/* Bytes of the largest serialized table: 2 + one nibble per symbol. */
#define DF11_TABLE_MAX_SIZE (2u + 128u)

/* Bits the decode tables look up at once; longer codes take the slow path. */
#define DF11_TABLE_BITS 12

/* Lengths of the optimal prefix code for freq[] with no code longer than
 * max_len (1..64). Symbols with freq 0 get length 0. Returns the number of
 * coded symbols, or -1 if max_len is too small for that many symbols. With
 * exactly one used symbol, that symbol gets length 1. */
int df11_huff_lengths(const uint64_t freq[256], unsigned max_len,
		      uint8_t len_ret[256]);

/* Canonical codes for the lengths (each <= 15), bit-reversed so that the
 * code's first bit is bit 0: ready to be OR-ed into an LSB-first stream.
 * The one canonical code assignment of the encoder and every decode
 * table. */
DF11_HD void df11_huff_canonical(const uint8_t len[256], uint16_t code_ret[256])
{
	uint32_t count[17] = {0}, next[17];
	for (unsigned s = 0; s < 256; s++)
		count[len[s] & 15u]++;
	count[0] = 0;
	next[0] = next[1] = 0;
	for (unsigned l = 1; l < 16; l++)
		next[l + 1] = (next[l] + count[l]) << 1;
	for (unsigned s = 0; s < 256; s++) {
		unsigned l = len[s];
		code_ret[s] = 0;
		if (l == 0)
			continue;
		uint32_t c = next[l]++, r = 0;
		for (unsigned i = 0; i < l; i++)
			r |= ((c >> i) & 1u) << (l - 1u - i);
		code_ret[s] = (uint16_t)r;
	}
}

void df11_huff_codes(const uint8_t len[256], uint16_t code_ret[256]);

/* Serialized table (docs/FORMAT.md, "Code table"):
 *   u8 first symbol, u8 (symbol count - 1), then one nibble per symbol in
 *   [first, first + count), low nibble first: its code length, 0 = absent.
 * Writes at most DF11_TABLE_MAX_SIZE bytes; returns the size. The lengths
 * must hold at least one nonzero entry. */
size_t df11_huff_table_write(const uint8_t len[256], uint8_t *out);

/* Reads and validates a serialized table: size consistent with the count,
 * unused nibble zero, every length <= max_len, at least two symbols, and a
 * complete code (Kraft sum exactly 1), so every bit pattern decodes. */
df11_result df11_huff_table_read(const uint8_t *p, size_t size,
				 unsigned max_len, uint8_t len_ret[256]);

/* Canonical decoding state for codes of any length, MSB-first code values:
 * the codes of length l are first[l] .. first[l] + count[l] - 1, and their
 * symbols are sorted[offset[l] ...] in increasing symbol order. */
typedef struct df11_huff_canon {
	uint16_t first[16];
	uint16_t count[16];
	uint16_t offset[16];
	uint8_t sorted[256];
} df11_huff_canon;

DF11_HD void df11_huff_canon_init(const uint8_t len[256], df11_huff_canon *h)
{
	uint32_t code = 0, off = 0;
	for (unsigned l = 0; l < 16; l++)
		h->count[l] = 0;
	for (unsigned s = 0; s < 256; s++)
		h->count[len[s] & 15u]++;
	h->count[0] = 0;
	for (unsigned l = 1; l < 16; l++) {
		code = (code + h->count[l - 1]) << 1;
		h->first[l] = (uint16_t)code;
		h->offset[l] = (uint16_t)off;
		off += h->count[l];
	}
	h->first[0] = h->offset[0] = 0;
	uint32_t pos[16];
	for (unsigned l = 0; l < 16; l++)
		pos[l] = h->offset[l];
	for (unsigned s = 0; s < 256; s++)
		if (len[s])
			h->sorted[pos[len[s]]++] = (uint8_t)s;
}

/* Decodes the code at the bottom of `bits` (LSB-first, at least max_len
 * valid bits) one bit at a time; the slow path for codes longer than the
 * lookup table. Returns symbol | (length << 8), or 0 if nothing matched
 * (impossible for a complete code). */
DF11_HD uint32_t df11_huff_decode_slow(const df11_huff_canon *h, uint64_t bits,
				       unsigned max_len)
{
	uint32_t code = 0;
	for (unsigned l = 1; l <= max_len; l++) {
		code = (code << 1) | (uint32_t)((bits >> (l - 1)) & 1u);
		uint32_t d = code - h->first[l];
		if (code >= h->first[l] && d < h->count[l])
			return h->sorted[h->offset[l] + d] | (l << 8);
	}
	return 0;
}

/* Single-symbol decode table with 2^bits entries:
 *   15     12 11      8 7            0
 *   +--------+---------+--------------+
 *   |   0    |  length |    symbol    |
 *   +--------+---------+--------------+
 * Codes longer than `bits` leave their prefix's entry 0 (length 0): the
 * decoder then takes df11_huff_decode_slow. Lengths must be a complete
 * code. */
DF11_HD void df11_huff_fill_table(const uint8_t len[256], unsigned bits,
				  uint16_t *table)
{
	uint16_t code[256];
	df11_huff_canonical(len, code);
	for (unsigned s = 0; s < 256; s++) {
		unsigned l = len[s];
		if (l == 0)
			continue;
		uint32_t r = code[s];
		if (l > bits) {
			table[r & ((1u << bits) - 1u)] = 0;
			continue;
		}
		for (uint32_t idx = r; idx < (1u << bits); idx += 1u << l)
			table[idx] = (uint16_t)(s | (l << 8));
	}
}

/* Multi-symbol table for the CPU fast path, 2^bits 64-bit entries:
 *   63   61 60  54 53    48 47     32 31                             0
 *   +------+------+--------+---------+-------------------------------+
 *   |count |  0   |  bits  |    0    | symbol 4 | 3 | 2 | symbol 1   |
 *   +------+------+--------+---------+-------------------------------+
 * count (1..4) whole codes fit in the peeked bits; bits is their total
 * length; unused symbol bytes are zero. count 0: the first code is longer
 * than `bits` (take the slow path). The decoder stores the low 4 bytes as
 * they are, advances by `e >> 61` and shifts by `(e >> 48) & 63`. */
#define DF11_MULTI_MAX 4

/* The whole codes at the bottom of `idx`, an index of `bits` bits into
 * `single` (df11_huff_fill_table with the same bits), at most max_count of
 * them: returns how many, their symbols in *syms_ret (one byte each, the
 * first lowest) and their total length in *used_ret. Every multi-symbol
 * table (the CPU decoder's, the GPU kernels') is built from it. */
DF11_HD unsigned df11_huff_multi_run(const uint16_t *single, unsigned bits,
				     uint32_t idx, unsigned max_count,
				     uint32_t *syms_ret, unsigned *used_ret)
{
	const uint32_t mask = (1u << bits) - 1u;
	unsigned used = 0, count = 0;
	uint32_t syms = 0;
	while (count < max_count) {
		/* Only bits [used, bits) of idx are known; a length of 0 marks
		 * a code longer than the table. */
		uint16_t e = single[(idx >> used) & mask];
		unsigned l = e >> 8;
		if (l == 0 || used + l > bits)
			break;
		syms |= (uint32_t)(e & 0xffu) << (8 * count);
		used += l;
		count++;
	}
	*syms_ret = syms;
	*used_ret = used;
	return count;
}
void df11_huff_fill_multi(const uint16_t *single, unsigned bits,
			  uint64_t *multi);

static inline unsigned df11_multi_count(uint64_t e) { return (unsigned)(e >> 61); }
static inline unsigned df11_multi_bits(uint64_t e)
{
	return (unsigned)(e >> 48) & 63u;
}
static inline unsigned df11_multi_symbol(uint64_t e, unsigned k)
{
	return (unsigned)(e >> (8 * k)) & 0xffu;
}

#endif /* DF11_HUFFMAN_H */
