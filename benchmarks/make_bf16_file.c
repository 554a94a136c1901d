/* Writes a safetensors file holding one BF16 matrix of about BYTES bytes
 * with the statistics of trained weights (synth/synth.h): the single-tensor
 * inputs of bench_e2e.sh, where the largest tensor is the whole file.
 *
 * usage: make_bf16_file OUT BYTES [SEED] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth.h"

#define COLS 5120u /* a nemo-12b hidden row */
#define ROWS_PER_CALL 2048u

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: make_bf16_file OUT BYTES [SEED]\n");
		return 2;
	}
	uint64_t bytes = strtoull(argv[2], NULL, 10);
	uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
	uint64_t rows = bytes / (2u * COLS);
	if (rows == 0) {
		fprintf(stderr, "make_bf16_file: at least %u bytes\n", 2 * COLS);
		return 2;
	}
	FILE *f = fopen(argv[1], "wb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	char json[256];
	int n = snprintf(json, sizeof json,
			 "{\"weight\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64
			 ",%u],\"data_offsets\":[0,%" PRIu64 "]}}",
			 rows, COLS, rows * COLS * 2);
	while (n % 8) /* the data area starts 8-aligned */
		json[n++] = ' ';
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (8 * i));
	uint16_t *buf = malloc((size_t)ROWS_PER_CALL * COLS * 2);
	int ok = buf && fwrite(len, 8, 1, f) == 1 &&
		 fwrite(json, (size_t)n, 1, f) == 1;
	for (uint64_t r = 0; ok && r < rows; r += ROWS_PER_CALL) {
		uint64_t k = rows - r < ROWS_PER_CALL ? rows - r : ROWS_PER_CALL;
		df11_synth_matrix(seed * 1000003u + r, k, COLS, 0.02f, buf);
		ok = fwrite(buf, 2 * COLS, (size_t)k, f) == k;
	}
	free(buf);
	if (fclose(f) != 0 || !ok) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
