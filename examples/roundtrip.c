/* Compresses a BF16 tensor with libdf11, decodes it back and checks every
 * bit: the smallest complete use of the library. Exit 0 on success. */
#include <df11.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	enum { N = 1 << 20 };
	uint16_t *w = malloc(N * sizeof *w), *back = malloc(N * sizeof *back);
	if (!w || !back)
		return 1;
	/* Weights of a trained model have a few common exponents and random
	 * sign and mantissa bits: a small LCG makes such words. */
	uint32_t x = 12345;
	for (size_t i = 0; i < N; i++) {
		x = x * 1664525u + 1013904223u;
		unsigned e = 118 + (x >> 29) % 6; /* exponents 118..123 */
		w[i] = (uint16_t)(((x >> 8) & 0x8000u) | (e << 7) | ((x >> 9) & 0x7fu));
	}
	size_t cap = df11_encode_bound(N), size = 0;
	uint8_t *enc = malloc(cap);
	df11_decoder *dec = df11_decoder_new(2);
	if (!enc || !dec)
		return 1;
	if (df11_encode(w, N, NULL, enc, cap, &size) != DF11_OK ||
	    df11_decode(dec, enc, size, back, N) != DF11_OK) {
		fprintf(stderr, "roundtrip: %s\n", df11_last_error());
		return 1;
	}
	if (memcmp(w, back, N * sizeof *w) != 0) {
		fprintf(stderr, "roundtrip: decoded words differ\n");
		return 1;
	}
	printf("libdf11 %s: %d BF16 words -> %zu bytes (%.2f bits/weight), "
	       "restored bit for bit\n", df11_version_string(), N, size,
	       8.0 * (double)size / N);
	df11_decoder_free(dec);
	free(enc);
	free(back);
	free(w);
	return 0;
}
