/*
 * Fuzz target: the serialized Huffman code table (df11_huff_table_read).
 *
 * Input: byte 0 is the maximum code length the caller allows (0..16, so
 * out-of-range values are tried too), the rest is the table. A table the
 * reader accepts must be a complete prefix code within the limit; then
 * every decoder structure built from it (canonical slow path, single and
 * multi-symbol lookup tables) must turn each symbol's code back into that
 * symbol, and writing the lengths back out must read in unchanged.
 */
#include "fuzz/fuzz.h"
#include "huffman/huffman.h"

static void check_table(const uint8_t len[256], unsigned max_len,
			uint64_t noise)
{
	unsigned used = 0, longest = 0;
	uint64_t kraft = 0; /* scaled by 2^15 */
	for (unsigned s = 0; s < 256; s++) {
		FUZZ_CHECK(len[s] <= max_len, "symbol %u length %u > %u", s,
			   len[s], max_len);
		if (!len[s])
			continue;
		used++;
		kraft += (uint64_t)1 << (15 - len[s]);
		if (len[s] > longest)
			longest = len[s];
	}
	FUZZ_CHECK(used >= 2, "%u symbols", used);
	FUZZ_CHECK(kraft == (uint64_t)1 << 15, "Kraft sum %llu/32768",
		   (unsigned long long)kraft);

	uint16_t code[256];
	df11_huff_codes(len, code);
	df11_huff_canon canon;
	df11_huff_canon_init(len, &canon);
	unsigned bits = longest < DF11_TABLE_BITS ? longest : DF11_TABLE_BITS;
	static uint16_t single[1u << DF11_TABLE_BITS];
	static uint64_t multi[1u << DF11_TABLE_BITS];
	df11_huff_fill_table(len, bits, single);
	df11_huff_fill_multi(single, bits, multi);

	for (unsigned s = 0; s < 256; s++) {
		unsigned l = len[s];
		if (!l)
			continue;
		/* The code, followed by arbitrary later bits. */
		uint64_t stream = code[s] | (noise << l);
		noise = noise * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t x = df11_huff_decode_slow(&canon, stream, longest);
		FUZZ_CHECK(x == (s | (l << 8)), "slow decode of symbol %u "
			   "gave 0x%x", s, x);
		uint32_t idx = (uint32_t)(stream & ((1u << bits) - 1u));
		uint32_t e = single[idx];
		uint64_t m = multi[idx];
		unsigned mc = df11_multi_count(m), mb = df11_multi_bits(m);
		if (l <= bits) {
			FUZZ_CHECK(e == (s | (l << 8)), "table entry for "
				   "symbol %u is 0x%x", s, e);
			FUZZ_CHECK(mc >= 1 && mc <= DF11_MULTI_MAX &&
				   df11_multi_symbol(m, 0) == s && mb >= l &&
				   mb <= bits, "multi entry for symbol %u is "
				   "0x%llx", s, (unsigned long long)m);
		} else {
			FUZZ_CHECK(e == 0 && mc == 0, "symbol %u (length %u > "
				   "%u) has entries 0x%x 0x%llx", s, l, bits, e,
				   (unsigned long long)m);
		}
	}

	uint8_t out[DF11_TABLE_MAX_SIZE], back[256];
	size_t n = df11_huff_table_write(len, out);
	FUZZ_CHECK(n >= 3 && n <= DF11_TABLE_MAX_SIZE, "wrote %zu bytes", n);
	FUZZ_CHECK(df11_huff_table_read(out, n, longest, back) == DF11_OK &&
		   memcmp(back, len, 256) == 0, "written table reads back "
		   "differently");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned max_len = data[0] % 17u;
	uint8_t len[256];
	df11_result r = df11_huff_table_read(data + 1, size - 1, max_len, len);
	if (r == DF11_OK)
		check_table(len, max_len, fuzz_hash(data, size));
	else
		FUZZ_CHECK(r == DF11_BAD_DATA, "result %d", (int)r);
	return 0;
}
