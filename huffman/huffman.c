#include "huffman/huffman.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/*
 * Package-merge, in the "coin collector" form. Level L holds the used
 * symbols sorted by weight. Each higher level merges the same leaves with
 * packages made by pairing adjacent items of the level below. The optimal
 * code takes the 2n-2 lightest items of the last level; a symbol's length is
 * the number of those items (recursively, through packages) that contain
 * it. Because merging is stable and packages keep their order, the first m
 * items of a level contain exactly its first p packages, which were made
 * from the first 2p items of the level below: counting needs only the
 * item kinds per level, not the package contents.
 */
#define PM_MAX_ITEMS 512 /* n leaves + n packages, n <= 256 */

typedef struct pm_item {
	uint64_t weight;
	int16_t leaf; /* symbol index in sorted order, or -1 for a package */
} pm_item;

static int cmp_sym_freq(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b; /* [0] = freq, [1] = symbol */
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : (x[1] > y[1]);
}

int df11_huff_lengths(const uint64_t freq[256], unsigned max_len,
		      uint8_t len_ret[256])
{
	uint64_t sorted[256][2];
	int n = 0;

	memset(len_ret, 0, 256);
	for (int s = 0; s < 256; s++) {
		if (freq[s]) {
			sorted[n][0] = freq[s];
			sorted[n][1] = (uint64_t)s;
			n++;
		}
	}
	if (n == 0)
		return 0;
	if (n == 1) {
		len_ret[sorted[0][1]] = 1;
		return 1;
	}
	if (max_len < 1 || max_len > 64 ||
	    (max_len < 9 && (uint64_t)n > ((uint64_t)1 << max_len)))
		return -1;
	qsort(sorted, (size_t)n, sizeof sorted[0], cmp_sym_freq);

	/* kinds[l][i]: leaf index of item i at level l, or -1 for a package.
	 * Level max_len-1 is the deepest (leaves only), level 0 the last. */
	int16_t(*kinds)[PM_MAX_ITEMS] = malloc(sizeof(*kinds) * max_len);
	int *counts = malloc(sizeof(int) * max_len);
	if (!kinds || !counts) {
		free(kinds);
		free(counts);
		return -1;
	}
	pm_item prev[PM_MAX_ITEMS], cur[PM_MAX_ITEMS];
	int nprev = n;
	for (int i = 0; i < n; i++) {
		prev[i].weight = sorted[i][0];
		prev[i].leaf = (int16_t)i;
		kinds[max_len - 1][i] = (int16_t)i;
	}
	counts[max_len - 1] = n;
	for (int level = (int)max_len - 2; level >= 0; level--) {
		int npk = nprev / 2, li = 0, pi = 0, k = 0;
		while (li < n || pi < npk) {
			uint64_t pw = pi < npk ? prev[2 * pi].weight +
							 prev[2 * pi + 1].weight
					       : UINT64_MAX;
			/* Leaves first on ties: deterministic output. */
			if (li < n && sorted[li][0] <= pw) {
				cur[k].weight = sorted[li][0];
				cur[k].leaf = (int16_t)li;
				li++;
			} else {
				cur[k].weight = pw;
				cur[k].leaf = -1;
				pi++;
			}
			kinds[level][k] = cur[k].leaf;
			k++;
		}
		memcpy(prev, cur, sizeof(pm_item) * (size_t)k);
		nprev = k;
		counts[level] = k;
	}

	int take = 2 * n - 2;
	unsigned lens[256] = {0};
	for (unsigned level = 0; level < max_len && take > 0; level++) {
		int packages = 0;
		if (take > counts[level])
			take = counts[level];
		for (int i = 0; i < take; i++) {
			if (kinds[level][i] >= 0)
				lens[kinds[level][i]]++;
			else
				packages++;
		}
		take = 2 * packages;
	}
	free(kinds);
	free(counts);
	for (int i = 0; i < n; i++) {
		if (lens[i] == 0 || lens[i] > max_len)
			return -1;
		len_ret[sorted[i][1]] = (uint8_t)lens[i];
	}
	return n;
}

void df11_huff_codes(const uint8_t len[256], uint16_t code_ret[256])
{
	df11_huff_canonical(len, code_ret);
}

size_t df11_huff_table_write(const uint8_t len[256], uint8_t *out)
{
	int first = -1, last = -1;
	for (int s = 0; s < 256; s++) {
		if (len[s]) {
			if (first < 0)
				first = s;
			last = s;
		}
	}
	if (first < 0)
		return 0;
	unsigned count = (unsigned)(last - first + 1);
	out[0] = (uint8_t)first;
	out[1] = (uint8_t)(count - 1);
	size_t size = 2 + (count + 1) / 2;
	memset(out + 2, 0, size - 2);
	for (unsigned i = 0; i < count; i++)
		out[2 + i / 2] |= (uint8_t)(len[first + (int)i] << (4 * (i & 1)));
	return size;
}

df11_result df11_huff_table_read(const uint8_t *p, size_t size,
				 unsigned max_len, uint8_t len_ret[256])
{
	memset(len_ret, 0, 256);
	if (max_len < 1 || max_len > DF11_MAX_CODE_LEN)
		return df11_fail(DF11_BAD_DATA, "code table: maximum length %u "
				 "outside 1..%d", max_len, DF11_MAX_CODE_LEN);
	if (size < 2)
		return df11_fail(DF11_BAD_DATA, "code table: truncated (%zu bytes)",
				 size);
	unsigned first = p[0], count = (unsigned)p[1] + 1u;
	if (first + count > 256)
		return df11_fail(DF11_BAD_DATA, "code table: symbols %u..%u past 255",
				 first, first + count - 1);
	if (size != 2 + (count + 1) / 2)
		return df11_fail(DF11_BAD_DATA, "code table: %zu bytes for %u "
				 "symbols, expected %u", size, count,
				 2 + (count + 1) / 2);
	if ((count & 1u) && (p[2 + count / 2] >> 4))
		return df11_fail(DF11_BAD_DATA, "code table: unused nibble not zero");
	/* Kraft sum scaled by 2^max_len: must be exactly 2^max_len. */
	uint64_t kraft = 0;
	unsigned used = 0;
	for (unsigned i = 0; i < count; i++) {
		unsigned l = (p[2 + i / 2] >> (4 * (i & 1u))) & 0xfu;
		if (l > max_len)
			return df11_fail(DF11_BAD_DATA, "code table: symbol %u has "
					 "length %u, limit %u", first + i, l,
					 max_len);
		if (l) {
			kraft += (uint64_t)1 << (max_len - l);
			used++;
		}
		len_ret[first + i] = (uint8_t)l;
	}
	if (used < 2)
		return df11_fail(DF11_BAD_DATA, "code table: %u symbols, need at "
				 "least 2", used);
	if (kraft > ((uint64_t)1 << max_len))
		return df11_fail(DF11_BAD_DATA, "code table: over-subscribed "
				 "(Kraft sum %llu/%llu)",
				 (unsigned long long)kraft,
				 (unsigned long long)1 << max_len);
	if (kraft < ((uint64_t)1 << max_len))
		return df11_fail(DF11_BAD_DATA, "code table: incomplete (Kraft "
				 "sum %llu/%llu)", (unsigned long long)kraft,
				 (unsigned long long)1 << max_len);
	return DF11_OK;
}

void df11_huff_fill_multi(const uint16_t *single, unsigned bits,
			  uint64_t *multi)
{
	for (uint32_t idx = 0; idx < (1u << bits); idx++) {
		uint32_t syms;
		unsigned used;
		uint64_t count = df11_huff_multi_run(single, bits, idx,
						     DF11_MULTI_MAX, &syms, &used);
		multi[idx] = syms | ((uint64_t)used << 48) | (count << 61);
	}
}
