/* The CPU run of the fused decode + matrix-vector kernel (cuda/fused.h):
 * the kernel's per-thread functions for every thread of every CTA, phase by
 * phase, over the launch parameters libdf11_cuda builds (cuda/fused_plan.c),
 * and the prepare launches that make the fused index. Checks:
 *   - the index: every segment's entry point equals the sum of the code
 *     lengths before it, and its size stays under 0.02 bits per weight;
 *   - df11-encoded weights (Huffman, single exponent, raw) give the same
 *     bits as the same weights in BF16 through the BF16 loader, for every
 *     batch 1..32, with and without accumulation;
 *   - both agree with a double-precision product;
 *   - a corrupt index is flagged, never read or written out of bounds.
 * Needs no GPU and no nvcc. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cuda/fused.h"
#include "cuda/fused_plan.h"
#include "cuda/plan.h"
#include "synth/synth.h"
#include "tests/cuda_upload.h"
#include "tests/fused_run.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------- launches */

/* ------------------------------------------------------------- products */

/* x (batch, ldx) BF16 activations: N(0, 1) rounded, with some exact zeros
 * and a -0.0. */
static uint16_t *make_x(uint64_t seed, int batch, uint64_t ldx)
{
	df11_rng r;
	df11_rng_seed(&r, seed);
	uint16_t *x = malloc(2 * batch * ldx + 16);
	assert_non_null(x);
	for (uint64_t i = 0; i < batch * ldx; i++) {
		float v = df11_rng_normal(&r);
		x[i] = i % 97 == 5 ? 0 : df11_f32_to_bf16(v);
	}
	x[0] = 0x8000;
	return x;
}

/* Checks y against double precision: |y - ref| <= 1e-5 * sum |w x| (float
 * sums of up to 2^16 terms in a fixed order), plus y0 where accumulating. */
static void check_product(const uint16_t *w, uint64_t rows, uint64_t cols,
			  const uint16_t *x, uint64_t ldx, int batch,
			  const float *y, uint64_t ldy, const float *y0,
			  const char *what)
{
	for (int b = 0; b < batch; b++)
		for (uint64_t n = 0; n < rows; n++) {
			double s = 0, mag = 0;
			for (uint64_t k = 0; k < cols; k++) {
				double p = (double)df11_bf16_to_f32(w[n * cols + k]) *
					   df11_bf16_to_f32(x[b * ldx + k]);
				s += p;
				mag += fabs(p);
			}
			double base = y0 ? y0[b * ldy + n] : 0.0;
			double got = y[b * ldy + n];
			if (!(fabs(got - (base + s)) <= 1e-5 * (mag + fabs(base)) + 1e-30))
				fail_msg("%s: y[%d][%llu] = %.9g, expected %.9g",
					 what, b, (unsigned long long)n, got,
					 base + s);
		}
}

/* Runs one launch of matrix M over x and returns y (batch, ldy), starting
 * from y0 when accumulating. */
static float *product(const df11f_matrix *M, uint64_t cols, const uint16_t *x,
		      uint64_t ldx, int batch, int accumulate, uint64_t ldy,
		      const float *y0, uint32_t *err)
{
	float *y = malloc(4 * (batch * ldy) + 4);
	assert_non_null(y);
	if (accumulate)
		memcpy(y, y0, 4 * batch * ldy);
	else
		memset(y, 0xff, 4 * batch * ldy);
	df11f_launch L;
	assert_int_equal(df11f_launch_init(&L, x, ldx, cols, batch, accumulate),
			 DF11_OK);
	assert_int_equal(df11f_launch_add(&L, M, y, ldy), DF11_OK);
	*err = fused_run_launch(&L);
	return y;
}

/* Encodes w (rows, cols) with opt, makes its index, and checks the fused
 * product against the BF16 loader's, bit for bit, and against double
 * precision, for the given batches. */
static void check_matrix(const uint16_t *w, uint64_t rows, uint64_t cols,
			 const df11_encode_options *opt, const int *batches,
			 int n_batches, const char *name)
{
	emul_tensor T;
	tensor_load(&T, w, rows * cols, opt);
	uint8_t *index = NULL;
	if (T.P.layout.codec == DF11_CODEC_HUFFMAN) {
		uint32_t err = 0;
		index = fused_index_make(&T, rows, cols, &err);
		assert_int_equal(err, 0);
	}
	df11f_matrix enc, plain;
	assert_int_equal(df11f_matrix_from_tensor(&enc, &T.t, index, rows, cols),
			 DF11_OK);
	df11f_matrix_from_bf16(&plain, w, rows);
	for (int i = 0; i < n_batches; i++) {
		const int batch = batches[i];
		const uint64_t ldx = cols + (uint64_t)(batch % 3), ldy = rows + 5;
		uint16_t *x = make_x(rows * 31 + cols + (uint64_t)batch, batch, ldx);
		float *y0 = malloc(4 * batch * ldy + 4);
		assert_non_null(y0);
		for (uint64_t j = 0; j < batch * ldy; j++)
			y0[j] = (float)(j % 7) - 3.0f;
		for (int acc = 0; acc < 2; acc++) {
			char what[160];
			snprintf(what, sizeof what, "%s, batch %d%s", name, batch,
				 acc ? ", accumulating" : "");
			uint32_t e1 = 0, e2 = 0;
			float *ye = product(&enc, cols, x, ldx, batch, acc, ldy, y0, &e1);
			float *yb = product(&plain, cols, x, ldx, batch, acc, ldy, y0, &e2);
			assert_int_equal(e1, 0);
			assert_int_equal(e2, 0);
			for (int b = 0; b < batch; b++)
				if (memcmp(ye + b * ldy, yb + b * ldy, 4 * rows))
					fail_msg("%s: encoded and BF16 weights give "
						 "different bits", what);
			check_product(w, rows, cols, x, ldx, batch, ye, ldy,
				      acc ? y0 : NULL, what);
			/* Nothing written past the rows of y. */
			for (int b = 0; b < batch; b++)
				for (uint64_t n = rows; n < ldy; n++) {
					uint32_t u, u0 = 0xffffffffu;
					memcpy(&u, &ye[b * ldy + n], 4);
					if (acc)
						memcpy(&u0, &y0[b * ldy + n], 4);
					assert_int_equal(u, u0);
				}
			free(ye);
			free(yb);
		}
		free(x);
		free(y0);
	}
	free(index);
	tensor_free(&T);
}

/* ---------------------------------------------------------------- tests */

static const int all_batches[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32};

/* Trained-weight statistics, shapes around every edge: one row, rows not a
 * multiple of 32, columns under, at and over a segment, not a multiple
 * of 8, many segments (more than the CTA's warps). */
static void test_shapes(void **state)
{
	(void)state;
	static const uint64_t shapes[][2] = {
		{1, 1},    {3, 5},     {7, 8},     {33, 1000}, {32, 1024},
		{40, 1030}, {35, 3000}, {64, 2048}, {5, 17 * 1024 + 3},
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		uint64_t rows = shapes[i][0], cols = shapes[i][1];
		uint16_t *w = malloc(2 * rows * cols + 2);
		assert_non_null(w);
		df11_synth_matrix(100 + i, rows, cols, 0.02f, w);
		char name[64];
		snprintf(name, sizeof name, "%llu x %llu", (unsigned long long)rows,
			 (unsigned long long)cols);
		const int few[] = {1, 5, 32};
		if (rows * cols > 100000)
			check_matrix(w, rows, cols, NULL, few, 3, name);
		else
			check_matrix(w, rows, cols, NULL, all_batches,
				     (int)(sizeof all_batches / sizeof all_batches[0]),
				     name);
		free(w);
	}
}

/* Small windows and blocks put many blocks and runs inside each segment,
 * so the seek crosses block and run boundaries everywhere; codes up to 15
 * bits take the slow path. */
static void test_layouts_and_long_codes(void **state)
{
	(void)state;
	const uint64_t rows = 45, cols = 2000;
	uint16_t *w = malloc(2 * rows * cols);
	assert_non_null(w);
	const int batches[] = {1, 6, 32};
	static const int layouts[][2] = {{6, 0}, {6, 3}, {8, 1}, {11, 6}, {16, 4}};
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			df11_synth_matrix(7, rows, cols, 0.05f, w);
		else
			df11_synth_long_codes(8, rows * cols, w);
		for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
			df11_encode_options o;
			memset(&o, 0, sizeof o);
			o.window_log2 = layouts[i][0];
			o.block_log2 = layouts[i][1];
			char name[80];
			snprintf(name, sizeof name, "%s, window 2^%d, block 2^%d",
				 pass ? "long codes" : "trained", o.window_log2,
				 o.block_log2);
			check_matrix(w, rows, cols, &o, batches, 3, name);
		}
	}
	free(w);
}

/* The other codecs go through the same loop: raw words, and a single
 * exponent (sign|mantissa bytes only). */
static void test_raw_and_single(void **state)
{
	(void)state;
	const uint64_t rows = 37, cols = 1100;
	uint16_t *w = malloc(2 * rows * cols);
	assert_non_null(w);
	const int batches[] = {1, 4, 32};
	df11_synth_matrix(9, rows, cols, 0.02f, w);
	df11_encode_options o;
	memset(&o, 0, sizeof o);
	o.force_raw = 1;
	check_matrix(w, rows, cols, &o, batches, 3, "raw");
	df11_rng r;
	df11_rng_seed(&r, 10);
	for (uint64_t i = 0; i < rows * cols; i++)
		w[i] = df11_bf16_join(120, (uint32_t)df11_rng_next(&r) & 0xffu);
	emul_tensor T;
	tensor_load(&T, w, rows * cols, NULL);
	assert_int_equal(T.P.layout.codec, DF11_CODEC_SINGLE);
	tensor_free(&T);
	check_matrix(w, rows, cols, NULL, batches, 3, "single exponent");
	free(w);
}

/* Several matrices in one launch (q, k and v), each to its own columns of
 * one output, equal the matrices launched alone. */
static void test_several_matrices(void **state)
{
	(void)state;
	const uint64_t cols = 1500, rows[3] = {96, 32, 40}, ldy = 96 + 32 + 40;
	const int batch = 3;
	emul_tensor T[3];
	uint8_t *index[3];
	df11f_matrix M[3];
	uint16_t *w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = malloc(2 * rows[i] * cols);
		assert_non_null(w[i]);
		df11_synth_matrix(20 + i, rows[i], cols, 0.02f, w[i]);
		tensor_load(&T[i], w[i], rows[i] * cols, NULL);
		uint32_t err = 0;
		index[i] = fused_index_make(&T[i], rows[i], cols, &err);
		assert_int_equal(err, 0);
		assert_int_equal(df11f_matrix_from_tensor(&M[i], &T[i].t, index[i],
							  rows[i], cols), DF11_OK);
	}
	uint16_t *x = make_x(5, batch, cols);
	float *y = malloc(4 * batch * ldy), *y1 = malloc(4 * batch * ldy);
	assert_true(y && y1);
	df11f_launch L;
	assert_int_equal(df11f_launch_init(&L, x, cols, cols, batch, 0), DF11_OK);
	uint64_t off = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(df11f_launch_add(&L, &M[i], y + off, ldy), DF11_OK);
		off += rows[i];
	}
	assert_int_equal(fused_run_launch(&L), 0);
	off = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(df11f_launch_init(&L, x, cols, cols, batch, 0), DF11_OK);
		assert_int_equal(df11f_launch_add(&L, &M[i], y1 + off, ldy), DF11_OK);
		assert_int_equal(fused_run_launch(&L), 0);
		off += rows[i];
	}
	assert_memory_equal(y, y1, 4 * batch * ldy);
	df11f_matrix extra = M[0];
	assert_int_equal(df11f_launch_add(&L, &extra, y, ldy), DF11_OK);
	assert_int_equal(df11f_launch_add(&L, &extra, y, ldy), DF11_OK);
	assert_int_equal(df11f_launch_add(&L, &extra, y, ldy), DF11_OK);
	assert_int_equal(df11f_launch_add(&L, &extra, y, ldy), DF11_LIMIT);
	for (int i = 0; i < 3; i++) {
		free(w[i]);
		free(index[i]);
		tensor_free(&T[i]);
	}
	free(x);
	free(y);
	free(y1);
}

/* The index costs at most 0.02 bits per weight on the shapes of
 * Mistral-Nemo (and every model whose columns are a multiple of 1024). */
static void test_index_size(void **state)
{
	(void)state;
	static const uint64_t shapes[][2] = {
		{6144, 5120}, {5120, 4096}, {28672, 5120}, {5120, 14336}, {131072, 5120},
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		double bits = 8.0 * (double)df11f_index_size(shapes[i][0], shapes[i][1]) /
			      ((double)shapes[i][0] * (double)shapes[i][1]);
		assert_true(bits <= 0.02);
		assert_true(bits > 0.015);
	}
	df11f_launch L;
	assert_int_equal(df11f_launch_init(&L, NULL, 10, 10, 0, 0), DF11_INVALID_ARG);
	assert_int_equal(df11f_launch_init(&L, NULL, 10, 10, 33, 0), DF11_INVALID_ARG);
	assert_int_equal(df11f_launch_init(&L, NULL, 9, 10, 1, 0), DF11_INVALID_ARG);
	assert_int_equal(df11f_launch_init(&L, NULL, DF11F_MAX_COLS + 1,
					   DF11F_MAX_COLS + 1, 1, 0), DF11_INVALID_ARG);
}

/* A segment length or tile start changed in the index (device memory
 * overwritten) makes the lanes that read it flag the matrix; with the
 * stream reads clamped, nothing is read outside the tensor (ASan). */
static void test_corrupt_index(void **state)
{
	(void)state;
	const uint64_t rows = 70, cols = 2100;
	uint16_t *w = malloc(2 * rows * cols);
	assert_non_null(w);
	df11_synth_matrix(30, rows, cols, 0.02f, w);
	emul_tensor T;
	tensor_load(&T, w, rows * cols, NULL);
	uint32_t err = 0;
	uint8_t *index = fused_index_make(&T, rows, cols, &err);
	assert_int_equal(err, 0);
	const uint64_t size = df11f_index_size(rows, cols);
	uint8_t *bad = malloc(size);
	assert_non_null(bad);
	uint16_t *x = make_x(3, 2, cols);
	const uint64_t seg0 = df11f_index_seg_offset(rows);
	const uint64_t hits[] = {seg0, seg0 + 2 * 7, size - 2, 0, 8 * 2};
	for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
		for (int delta = -1; delta <= 1; delta += 2) {
			memcpy(bad, index, size);
			if (hits[i] < seg0) {
				uint64_t v;
				memcpy(&v, bad + hits[i], 8);
				v += (uint64_t)(int64_t)delta;
				memcpy(bad + hits[i], &v, 8);
			} else {
				uint16_t v;
				memcpy(&v, bad + hits[i], 2);
				v = (uint16_t)(v + delta);
				memcpy(bad + hits[i], &v, 2);
			}
			df11f_matrix M;
			assert_int_equal(df11f_matrix_from_tensor(&M, &T.t, bad, rows,
								  cols), DF11_OK);
			uint32_t e = 0;
			float *y = product(&M, cols, x, cols, 2, 0, rows, NULL, &e);
			if (e != DF11F_ERR_INDEX)
				fail_msg("index byte %llu moved by %d: not flagged",
					 (unsigned long long)hits[i], delta);
			free(y);
		}
	}
	/* A tile start far past the stream: reads clamp, lanes flag. */
	memcpy(bad, index, size);
	uint64_t far = (uint64_t)1 << 40;
	memcpy(bad, &far, 8);
	df11f_matrix M;
	assert_int_equal(df11f_matrix_from_tensor(&M, &T.t, bad, rows, cols), DF11_OK);
	uint32_t e = 0;
	free(product(&M, cols, x, cols, 2, 0, rows, NULL, &e));
	assert_int_equal(e, DF11F_ERR_INDEX);
	/* The pack launch refuses starts that no segment can have. */
	const uint64_t ns = df11f_n_segs(cols), n = rows * ns;
	uint64_t *start = malloc(8 * (n + 1));
	assert_non_null(start);
	for (uint64_t s = 0; s <= n; s++)
		start[s] = s * 1024;
	start[3] = start[2] + 1; /* 1 bit for 1024 codes */
	uint32_t pb = 0;
	for (uint64_t s = 0; s < n; s++)
		df11f_index_pack(cols, rows, s, start, bad, &pb);
	assert_int_equal(pb, 1);
	free(start);
	assert_int_equal(df11f_matrix_from_tensor(&M, &T.t, NULL, rows, cols),
			 DF11_INVALID_ARG);
	assert_int_equal(df11f_matrix_from_tensor(&M, &T.t, index, rows + 1, cols),
			 DF11_INVALID_ARG);
	free(x);
	free(bad);
	free(index);
	tensor_free(&T);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_layouts_and_long_codes),
		cmocka_unit_test(test_raw_and_single),
		cmocka_unit_test(test_several_matrices),
		cmocka_unit_test(test_index_size),
		cmocka_unit_test(test_corrupt_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
