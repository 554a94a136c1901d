/* Code construction, canonical codes, the serialized table and its reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "synth/synth.h"
#include "huffman/huffman.h"

static uint64_t cost(const uint64_t *freq, const uint8_t *len)
{
	uint64_t c = 0;
	for (int s = 0; s < 256; s++)
		c += freq[s] * len[s];
	return c;
}

static uint64_t kraft(const uint8_t *len, unsigned L)
{
	uint64_t k = 0;
	for (int s = 0; s < 256; s++)
		if (len[s])
			k += (uint64_t)1 << (L - len[s]);
	return k;
}

/* Plain Huffman (no limit) by repeated minimum merging: the optimal cost. */
static uint64_t huffman_cost(const uint64_t *freq)
{
	uint64_t w[256];
	int n = 0;
	for (int s = 0; s < 256; s++)
		if (freq[s])
			w[n++] = freq[s];
	uint64_t total = 0;
	while (n > 1) {
		int a = 0, b = 1;
		if (w[b] < w[a]) { a = 1; b = 0; }
		for (int i = 2; i < n; i++) {
			if (w[i] < w[a]) { b = a; a = i; }
			else if (w[i] < w[b]) b = i;
		}
		uint64_t m = w[a] + w[b];
		total += m;
		int lo = a < b ? a : b, hi = a < b ? b : a;
		w[lo] = m;
		w[hi] = w[--n];
	}
	return total;
}

static void test_unlimited_is_optimal(void **state)
{
	(void)state;
	df11_rng r;
	df11_rng_seed(&r, 1);
	for (int iter = 0; iter < 200; iter++) {
		uint64_t freq[256] = {0};
		int n = 2 + (int)(df11_rng_next(&r) % 255);
		for (int i = 0; i < n; i++)
			freq[df11_rng_next(&r) % 256] += 1 + (df11_rng_next(&r) % (1u << (df11_rng_next(&r) % 30)));
		uint8_t len[256];
		int used = df11_huff_lengths(freq, 64, len);
		assert_true(used >= 1);
		if (used == 1)
			continue;
		assert_int_equal(cost(freq, len), huffman_cost(freq));
	}
}

/* Exhaustive search over all length vectors for tiny alphabets. */
static uint64_t best_limited(const uint64_t *w, int n, unsigned L, int i,
			     uint8_t *len, uint64_t k)
{
	if (k > ((uint64_t)1 << L))
		return UINT64_MAX;
	if (i == n) {
		uint64_t c = 0;
		for (int s = 0; s < n; s++)
			c += w[s] * len[s];
		return c;
	}
	uint64_t best = UINT64_MAX;
	for (unsigned l = 1; l <= L; l++) {
		len[i] = (uint8_t)l;
		uint64_t c = best_limited(w, n, L, i + 1, len,
					  k + ((uint64_t)1 << (L - l)));
		if (c < best)
			best = c;
	}
	return best;
}

static void test_limited_is_optimal(void **state)
{
	(void)state;
	df11_rng r;
	df11_rng_seed(&r, 2);
	for (int iter = 0; iter < 300; iter++) {
		int n = 2 + (int)(df11_rng_next(&r) % 6);
		unsigned L = 3 + (unsigned)(df11_rng_next(&r) % 3);
		if ((uint64_t)n > ((uint64_t)1 << L))
			continue;
		uint64_t freq[256] = {0}, w[8];
		for (int i = 0; i < n; i++) {
			/* Skewed weights so the limit binds. */
			w[i] = 1 + (df11_rng_next(&r) % (1u << (2 * i + 1)));
			freq[i * 7] = w[i];
		}
		uint8_t len[256], tmp[8];
		assert_int_equal(df11_huff_lengths(freq, L, len), n);
		for (int s = 0; s < 256; s++)
			assert_true(len[s] <= L);
		assert_int_equal(kraft(len, L), (uint64_t)1 << L);
		assert_int_equal(cost(freq, len), best_limited(w, n, L, 0, tmp, 0));
	}
}

static void test_fibonacci_limit(void **state)
{
	(void)state;
	/* Fibonacci weights make an unlimited code 40 deep. */
	uint64_t freq[256] = {0}, a = 1, b = 1;
	for (int s = 0; s < 40; s++) {
		freq[s + 100] = a;
		uint64_t c = a + b;
		a = b;
		b = c;
	}
	uint8_t len[256];
	assert_int_equal(df11_huff_lengths(freq, 64, len), 40);
	int longest = 0;
	for (int s = 0; s < 256; s++)
		longest = len[s] > longest ? len[s] : longest;
	assert_int_equal(longest, 39);
	assert_int_equal(df11_huff_lengths(freq, 12, len), 40);
	for (int s = 0; s < 256; s++)
		assert_true(len[s] <= 12);
	assert_int_equal(kraft(len, 12), 4096);
	/* 2 symbols cannot fit in 0 bits; 256 need 8. */
	uint64_t all[256];
	for (int s = 0; s < 256; s++)
		all[s] = 1;
	assert_int_equal(df11_huff_lengths(all, 7, len), -1);
	assert_int_equal(df11_huff_lengths(all, 8, len), 256);
	for (int s = 0; s < 256; s++)
		assert_int_equal(len[s], 8);
}

static void test_degenerate(void **state)
{
	(void)state;
	uint64_t freq[256] = {0};
	uint8_t len[256];
	assert_int_equal(df11_huff_lengths(freq, 12, len), 0);
	freq[127] = 1000;
	assert_int_equal(df11_huff_lengths(freq, 12, len), 1);
	assert_int_equal(len[127], 1);
	freq[0] = 1;
	assert_int_equal(df11_huff_lengths(freq, 12, len), 2);
	assert_int_equal(len[127], 1);
	assert_int_equal(len[0], 1);
}

static void test_decode_table_matches_codes(void **state)
{
	(void)state;
	uint64_t freq[256] = {0};
	df11_rng r;
	df11_rng_seed(&r, 3);
	for (int s = 90; s < 140; s++)
		freq[s] = 1 + df11_rng_next(&r) % 100000;
	freq[3] = 1;
	freq[250] = 2;
	uint8_t len[256];
	uint16_t code[256], table[4096];
	uint64_t multi[4096];
	df11_huff_lengths(freq, 12, len);
	df11_huff_codes(len, code);
	df11_huff_fill_table(len, 12, table);
	df11_huff_fill_multi(table, 12, multi);
	for (int s = 0; s < 256; s++) {
		if (!len[s])
			continue;
		/* Every completion of the code's bits decodes to s. */
		for (uint32_t hi = 0; hi < (1u << (12 - len[s])); hi++) {
			uint32_t idx = code[s] | (hi << len[s]);
			assert_int_equal(table[idx] & 0xff, s);
			assert_int_equal(table[idx] >> 8, len[s]);
			assert_int_equal(df11_multi_symbol(multi[idx], 0), s);
		}
	}
	for (uint32_t idx = 0; idx < 4096; idx++) {
		uint64_t e = multi[idx];
		unsigned n = df11_multi_count(e), bits = df11_multi_bits(e), used = 0;
		assert_true(n >= 1 && n <= DF11_MULTI_MAX && bits <= 12);
		for (uint32_t k = 0; k < n; k++) {
			uint16_t t = table[(idx >> used) & 4095];
			assert_int_equal(df11_multi_symbol(e, k), t & 0xff);
			used += t >> 8;
		}
		assert_int_equal(used, bits);
		/* As many whole codes as fit (up to four), nothing else set. */
		uint16_t next = table[(idx >> used) & 4095];
		assert_true(n == DF11_MULTI_MAX || used + (next >> 8) > 12);
		assert_int_equal(e & ~((uint64_t)0xffffffffu >> (8 * (4 - n)) |
				       (uint64_t)63 << 48 | (uint64_t)7 << 61), 0);
	}
	/* Short codes: four per lookup, no more. */
	uint64_t skew[256] = {0};
	skew[10] = 8, skew[11] = 4, skew[12] = 2, skew[13] = 1, skew[14] = 1;
	df11_huff_lengths(skew, 12, len);
	df11_huff_fill_table(len, 12, table);
	df11_huff_fill_multi(table, 12, multi);
	assert_int_equal(len[10], 1);
	assert_int_equal(df11_multi_count(multi[0]), 4);
	assert_int_equal(df11_multi_bits(multi[0]), 4);
	assert_int_equal((uint32_t)multi[0], 0x0a0a0a0au);
}

static void test_slow_path_matches_codes(void **state)
{
	(void)state;
	/* Halving counts: codes of lengths 1..15 under a 15-bit limit. */
	uint64_t freq[256] = {0};
	for (int s = 0; s < 20; s++)
		freq[s * 11] = (uint64_t)1 << (40 - 2 * s);
	uint8_t len[256];
	uint16_t code[256], table[4096];
	assert_int_equal(df11_huff_lengths(freq, 15, len), 20);
	df11_huff_codes(len, code);
	df11_huff_fill_table(len, 12, table);
	df11_huff_canon h;
	df11_huff_canon_init(len, &h);
	int long_codes = 0;
	for (int s = 0; s < 256; s++) {
		if (!len[s])
			continue;
		for (uint64_t hi = 0; hi < 8; hi++) {
			uint64_t bits = code[s] | (hi << len[s]);
			assert_int_equal(df11_huff_decode_slow(&h, bits, 15),
					 (uint32_t)s | ((uint32_t)len[s] << 8));
			uint16_t t = table[bits & 4095];
			if (len[s] > 12)
				assert_int_equal(t, 0);
			else
				assert_int_equal(t, s | (len[s] << 8));
		}
		long_codes += len[s] > 12;
	}
	assert_true(long_codes >= 3);
}

static void test_table_roundtrip(void **state)
{
	(void)state;
	uint64_t freq[256] = {0};
	for (int s = 100; s < 131; s++)
		freq[s] = (uint64_t)(s - 99) * (s - 99) * (s - 99);
	uint8_t len[256], back[256], buf[DF11_TABLE_MAX_SIZE];
	df11_huff_lengths(freq, 12, len);
	size_t n = df11_huff_table_write(len, buf);
	assert_int_equal(n, 2 + 16);
	assert_int_equal(df11_huff_table_read(buf, n, 12, back), DF11_OK);
	assert_memory_equal(len, back, 256);
	/* Widest table: all 256 symbols. */
	for (int s = 0; s < 256; s++)
		freq[s] = 1;
	df11_huff_lengths(freq, 12, len);
	n = df11_huff_table_write(len, buf);
	assert_int_equal(n, DF11_TABLE_MAX_SIZE);
	assert_int_equal(df11_huff_table_read(buf, n, 12, back), DF11_OK);
	assert_memory_equal(len, back, 256);
}

static void test_table_reader_rejects(void **state)
{
	(void)state;
	uint8_t len[256];
	/* Symbols 10..13 with lengths 1,2,3,3: complete. */
	uint8_t good[] = {10, 3, 0x21, 0x33};
	assert_int_equal(df11_huff_table_read(good, sizeof good, 12, len), DF11_OK);
	assert_int_equal(df11_huff_table_read(good, sizeof good, 2, len),
			 DF11_BAD_DATA); /* length 3 past limit 2 */
	uint8_t over[] = {10, 3, 0x21, 0x23};     /* 1,2,3,2: sum > 1 */
	assert_int_equal(df11_huff_table_read(over, sizeof over, 12, len),
			 DF11_BAD_DATA);
	assert_non_null(strstr(df11_last_error(), "over-subscribed"));
	uint8_t under[] = {10, 3, 0x21, 0x43};    /* 1,2,3,4: sum < 1 */
	assert_int_equal(df11_huff_table_read(under, sizeof under, 12, len),
			 DF11_BAD_DATA);
	assert_non_null(strstr(df11_last_error(), "incomplete"));
	uint8_t past[] = {10, 1, 0xd1};           /* length 13 */
	assert_int_equal(df11_huff_table_read(past, sizeof past, 12, len),
			 DF11_BAD_DATA);
	assert_non_null(strstr(df11_last_error(), "limit 12"));
	assert_int_equal(df11_huff_table_read(good, sizeof good, 16, len),
			 DF11_BAD_DATA); /* limit past the format's 15 */
	assert_int_equal(df11_huff_table_read(good, 3, 12, len), DF11_BAD_DATA);
	assert_int_equal(df11_huff_table_read(good, 1, 12, len), DF11_BAD_DATA);
	assert_int_equal(df11_huff_table_read(good, 0, 12, len), DF11_BAD_DATA);
	uint8_t wrap[] = {250, 9, 0x11, 0, 0, 0, 0}; /* symbols 250..259 */
	assert_int_equal(df11_huff_table_read(wrap, sizeof wrap, 12, len),
			 DF11_BAD_DATA);
	uint8_t one[] = {7, 0, 0x01};             /* a single symbol */
	assert_int_equal(df11_huff_table_read(one, sizeof one, 12, len),
			 DF11_BAD_DATA);
	uint8_t odd[] = {7, 2, 0x11, 0x10};       /* unused nibble set */
	assert_int_equal(df11_huff_table_read(odd, sizeof odd, 12, len),
			 DF11_BAD_DATA);
	uint8_t big[] = {10, 3, 0x21, 0x33, 0};   /* trailing byte */
	assert_int_equal(df11_huff_table_read(big, sizeof big, 12, len),
			 DF11_BAD_DATA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited_is_optimal),
		cmocka_unit_test(test_limited_is_optimal),
		cmocka_unit_test(test_fibonacci_limit),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_decode_table_matches_codes),
		cmocka_unit_test(test_slow_path_matches_codes),
		cmocka_unit_test(test_table_roundtrip),
		cmocka_unit_test(test_table_reader_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
