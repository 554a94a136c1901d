/* libdf11_cuda on a GPU: every decode equals the CPU reference decoder
 * byte for byte (codec test cases, ranges, batches, a whole Mistral-Nemo
 * layer, a CUDA graph), errors come back as result codes, and corrupt data
 * is flagged. Without a usable GPU every test is skipped with a message and
 * the program exits 0. */
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
#include "cuda/kernels.h"
#include "cuda/model.h"
#include "df11_cuda.h"
#include "codec/parse.h"
#include "synth/synth.h"
#include "tests/cuda_cases.h"
#include "tests/cuda_upload.h"
#include "tests/fused_run.h"
#include "tests/testutil.h"

#define CK(call)                                                          \
	do {                                                              \
		cudaError_t e_ = (call);                                  \
		if (e_ != cudaSuccess)                                    \
			fail_msg("%s: %s", #call, cudaGetErrorString(e_)); \
	} while (0)

#define OK(call)                                                          \
	do {                                                              \
		df11_result r_ = (call);                                  \
		if (r_ != DF11_OK)                                        \
			fail_msg("%s: %s", #call, df11_last_error());     \
	} while (0)

static int have_gpu = -1;

static void need_gpu(void)
{
	if (have_gpu < 0) {
		have_gpu = df11_cuda_available() == DF11_OK;
		if (!have_gpu)
			print_message("no CUDA device: GPU decode tests skipped "
				      "(%s)\n", df11_last_error());
	}
	if (!have_gpu)
		skip();
}

/* A device output of `count` words between guard words, poisoned. */
#define GUARD 64
typedef struct dev_out {
	uint16_t *mem, *dst;
	uint64_t count;
	uint16_t *host; /* count + 2 * GUARD words */
} dev_out;

static void out_init(dev_out *o, uint64_t count, int misalign)
{
	size_t bytes = (count + 2 * GUARD) * 2;
	CK(cudaMalloc((void **)&o->mem, bytes));
	CK(cudaMemset(o->mem, 0xa5, bytes));
	/* cudaMemset may still run when it returns, and the decodes go to
	 * non-blocking streams that do not wait for it. */
	CK(cudaDeviceSynchronize());
	o->dst = o->mem + GUARD + (misalign ? 1 : 0);
	o->count = count;
	o->host = malloc(bytes);
	assert_non_null(o->host);
}

/* Waits for the GPU and compares; frees o. */
static void out_check(dev_out *o, const uint16_t *want, const char *what)
{
	size_t bytes = (o->count + 2 * GUARD) * 2;
	CK(cudaDeviceSynchronize());
	CK(cudaMemcpy(o->host, o->mem, bytes, cudaMemcpyDeviceToHost));
	uint64_t lead = (uint64_t)(o->dst - o->mem);
	const char *d = cuda_case_diff(want, o->host + lead, o->count);
	if (d[0])
		fail_msg("%s: %s", what, d);
	for (uint64_t i = 0; i < lead; i++)
		if (o->host[i] != 0xa5a5)
			fail_msg("%s: guard before the output overwritten", what);
	for (uint64_t i = lead + o->count; i < o->count + 2 * GUARD; i++)
		if (o->host[i] != 0xa5a5)
			fail_msg("%s: guard after the output overwritten", what);
	CK(cudaFree(o->mem));
	free(o->host);
}

typedef struct enc_set {
	size_t n;
	uint8_t **enc;
	size_t *size;
	uint16_t **ref; /* reference decoder output */
	uint64_t *elems;
} enc_set;

static void set_init(enc_set *s, size_t n)
{
	s->n = n;
	s->enc = calloc(n, sizeof *s->enc);
	s->size = calloc(n, sizeof *s->size);
	s->ref = calloc(n, sizeof *s->ref);
	s->elems = calloc(n, sizeof *s->elems);
	assert_true(s->enc && s->size && s->ref && s->elems);
}

static void set_put(enc_set *s, size_t i, const uint16_t *src, uint64_t n,
		    const df11_encode_options *opt)
{
	s->enc[i] = encode_alloc(src, n, opt, &s->size[i]);
	s->ref[i] = malloc(n * 2 + 2);
	assert_non_null(s->ref[i]);
	OK(df11_decode_reference(s->enc[i], s->size[i], s->ref[i], n));
	s->elems[i] = n;
}

static void set_free(enc_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->enc[i]);
		free(s->ref[i]);
	}
	free(s->enc);
	free(s->size);
	free(s->ref);
	free(s->elems);
}

static df11_cuda_model *upload(const enc_set *s)
{
	df11_cuda_model *m = NULL;
	OK(df11_cuda_upload((const void *const *)s->enc, s->size, s->n, NULL, 0,
			    &m));
	return m;
}

/* ------------------------------------------------------------- tests */

/* DF11_GPU_TEST_RANGES=n checks n ranges per case instead of 48 (for the
 * slow compute-sanitizer runs). */
static void test_codec_cases(void **state)
{
	(void)state;
	need_gpu();
	const char *env = getenv("DF11_GPU_TEST_RANGES");
	size_t max_ranges = 48;
	if (env && atoi(env) > 0 && atoi(env) < 48)
		max_ranges = (size_t)atoi(env);
	cuda_case *cases;
	size_t n = cuda_cases_make(&cases);
	enc_set s;
	set_init(&s, n);
	for (size_t i = 0; i < n; i++)
		set_put(&s, i, cases[i].data, cases[i].n, &cases[i].opt);
	df11_cuda_model *m = upload(&s);
	cudaStream_t stream;
	CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
	for (size_t i = 0; i < n; i++) {
		const char *name = cases[i].name;
		uint64_t ne = s.elems[i];
		assert_int_equal(df11_cuda_tensor_elems(m, i), ne);
		if (ne == 0) {
			OK(df11_cuda_decode(m, i, NULL, stream));
			continue;
		}
		for (int mis = 0; mis < 2; mis++) {
			dev_out o;
			out_init(&o, ne, mis);
			OK(df11_cuda_decode(m, i, o.dst, stream));
			out_check(&o, s.ref[i], name);
			/* The window kernel too (cuda/kernels.h). */
			out_init(&o, ne, mis);
			df11_cuda_job j = {i, 0, ne, o.dst};
			OK(df11_cuda_decode_batch_kernel(m, &j, 1,
							 DF11_CUDA_KERNEL_WINDOW,
							 stream));
			out_check(&o, s.ref[i], name);
		}
		df11_parsed P;
		OK(df11_parse(s.enc[i], s.size[i], &P));
		uint64_t ranges[48][2];
		size_t nr = cuda_case_ranges(ne, P.block_starts, P.layout.n_blocks,
					     ne, ranges, max_ranges);
		for (size_t k = 0; k < nr; k++) {
			dev_out o;
			out_init(&o, ranges[k][1], (int)(k & 1));
			OK(df11_cuda_decode_range(m, i, ranges[k][0], ranges[k][1],
						  o.dst, stream));
			out_check(&o, s.ref[i] + ranges[k][0], name);
		}
		/* The same ranges, DF11_CUDA_MAX_BATCH per launch. */
		for (size_t k = 0; k < nr; k += DF11_CUDA_MAX_BATCH) {
			size_t nj = nr - k < DF11_CUDA_MAX_BATCH ? nr - k
								 : DF11_CUDA_MAX_BATCH;
			df11_cuda_job jobs[DF11_CUDA_MAX_BATCH];
			dev_out o[DF11_CUDA_MAX_BATCH];
			for (size_t j = 0; j < nj; j++) {
				out_init(&o[j], ranges[k + j][1], 0);
				jobs[j] = (df11_cuda_job){i, ranges[k + j][0],
							  ranges[k + j][1], o[j].dst};
			}
			OK(df11_cuda_decode_batch(m, jobs, nj, stream));
			for (size_t j = 0; j < nj; j++)
				out_check(&o[j], s.ref[i] + ranges[k + j][0], name);
		}
	}
	OK(df11_cuda_check(m, stream));
	CK(cudaStreamDestroy(stream));
	df11_cuda_model_free(m);
	set_free(&s);
	cuda_cases_free(cases, n);
}

/* The seven matrices of a real-size Mistral-Nemo layer decoded as one
 * batch, directly and replayed from a CUDA graph; embedding-style rows.
 * DF11_GPU_TEST_NEMO_DIV=d divides every dimension by d (for the slow
 * compute-sanitizer runs). */
static void test_nemo_layer(void **state)
{
	(void)state;
	need_gpu();
	cuda_matrix mat[7];
	const char *div = getenv("DF11_GPU_TEST_NEMO_DIV");
	cuda_nemo_layer(div && atoi(div) > 0 ? (unsigned)atoi(div) : 1, mat);
	enc_set s;
	set_init(&s, 7);
	df11_encode_options opt = {.threads = 8};
	for (int i = 0; i < 7; i++) {
		uint64_t n = mat[i].rows * mat[i].cols;
		uint16_t *w = malloc(n * 2);
		assert_non_null(w);
		df11_synth_matrix(100 + (uint64_t)i, mat[i].rows, mat[i].cols, 0.02f, w);
		set_put(&s, (size_t)i, w, n, &opt);
		assert_memory_equal(s.ref[i], w, n * 2);
		free(w);
	}
	/* Into caller-provided device memory this time. */
	size_t need = df11_cuda_upload_size((const void *const *)s.enc, s.size, 7);
	assert_true(need > 0);
	void *mem;
	CK(cudaMalloc(&mem, need));
	df11_cuda_model *m = NULL;
	OK(df11_cuda_upload((const void *const *)s.enc, s.size, 7, mem, need, &m));

	cudaStream_t stream;
	CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
	df11_cuda_job jobs[7];
	dev_out o[7];
	for (int i = 0; i < 7; i++) {
		out_init(&o[i], s.elems[i], 0);
		jobs[i] = (df11_cuda_job){(size_t)i, 0, s.elems[i], o[i].dst};
	}
	OK(df11_cuda_decode_batch(m, jobs, 7, stream));
	for (int i = 0; i < 7; i++)
		out_check(&o[i], s.ref[i], mat[i].name);

	/* Captured in a graph: no allocation, copy or sync inside. */
	for (int i = 0; i < 7; i++) {
		out_init(&o[i], s.elems[i], 0);
		jobs[i].dst = o[i].dst;
	}
	cudaGraph_t graph;
	cudaGraphExec_t exec;
	CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
	OK(df11_cuda_decode_batch(m, jobs, 7, stream));
	CK(cudaStreamEndCapture(stream, &graph));
	CK(cudaGraphInstantiate(&exec, graph, 0));
	CK(cudaGraphLaunch(exec, stream));
	CK(cudaStreamSynchronize(stream));
	for (int i = 0; i < 7; i++)
		out_check(&o[i], s.ref[i], "graph replay");
	CK(cudaGraphExecDestroy(exec));
	CK(cudaGraphDestroy(graph));

	/* Rows 7, 1000 (or the middle one of a small up_proj) and the last of
	 * up_proj, as an embedding lookup. */
	uint64_t mid = mat[5].rows > 2000 ? 1000 : mat[5].rows / 2;
	uint64_t rows[3] = {7 % mat[5].rows, mid, mat[5].rows - 1};
	for (int k = 0; k < 3; k++) {
		dev_out r;
		out_init(&r, mat[5].cols, 0);
		OK(df11_cuda_decode_range(m, 5, rows[k] * mat[5].cols, mat[5].cols,
					  r.dst, stream));
		out_check(&r, s.ref[5] + rows[k] * mat[5].cols, "up_proj row");
	}
	OK(df11_cuda_check(m, stream));
	CK(cudaStreamDestroy(stream));
	df11_cuda_model_free(m);
	CK(cudaFree(mem));
	set_free(&s);
}

static void test_errors(void **state)
{
	(void)state;
	need_gpu();
	uint64_t n = 100000;
	uint16_t *w = malloc(n * 2);
	assert_non_null(w);
	df11_synth_matrix(3, 100, 1000, 0.02f, w);
	enc_set s;
	set_init(&s, 1);
	set_put(&s, 0, w, n, NULL);
	df11_cuda_model *m = upload(&s);
	dev_out o;
	out_init(&o, n, 0);
	assert_int_equal(df11_cuda_decode(NULL, 0, o.dst, 0), DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_decode(m, 1, o.dst, 0), DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_decode(m, 0, NULL, 0), DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_decode(m, 0, (uint16_t *)((char *)o.dst + 1), 0),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_decode_range(m, 0, n - 5, 6, o.dst, 0),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_decode_range(m, 0, n, 0, o.dst, 0), DF11_OK);
	df11_cuda_job jobs[DF11_CUDA_MAX_BATCH + 1];
	for (int k = 0; k <= DF11_CUDA_MAX_BATCH; k++)
		jobs[k] = (df11_cuda_job){0, 0, 1, o.dst};
	assert_int_equal(df11_cuda_decode_batch(m, jobs, DF11_CUDA_MAX_BATCH + 1, 0),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_cuda_tensor_elems(m, 1), 0);
	OK(df11_cuda_check(m, 0));
	CK(cudaFree(o.mem));
	free(o.host);
	df11_cuda_model_free(m);

	/* Upload: malformed tensor, too little caller memory. */
	s.enc[0][0] ^= 1;
	assert_int_equal(df11_cuda_upload_size((const void *const *)s.enc, s.size, 1),
			 0);
	assert_int_equal(df11_cuda_upload((const void *const *)s.enc, s.size, 1,
					  NULL, 0, &m), DF11_BAD_DATA);
	assert_null(m);
	s.enc[0][0] ^= 1;
	size_t need = df11_cuda_upload_size((const void *const *)s.enc, s.size, 1);
	void *mem;
	CK(cudaMalloc(&mem, need));
	assert_int_equal(df11_cuda_upload((const void *const *)s.enc, s.size, 1,
					  mem, need - 1, &m), DF11_BUFFER_TOO_SMALL);
	CK(cudaFree(mem));
	set_free(&s);
	free(w);
}

/* A stream that disagrees with its index: refused at upload. */
static void test_corrupt_flag(void **state)
{
	(void)state;
	need_gpu();
	uint64_t n = 200000;
	uint16_t *w = malloc(n * 2);
	assert_non_null(w);
	df11_synth_matrix(5, 200, 1000, 0.02f, w);
	df11_encode_options opt = {.window_log2 = 8, .block_log2 = 3};
	size_t size;
	uint8_t *enc = encode_alloc(w, n, &opt, &size);
	df11_parsed P;
	OK(df11_parse(enc, size, &P));
	uint8_t *gaps = enc + P.layout.off_gaps;
	uint64_t k = 37;
	uint32_t g = df11_gap(gaps, k), g2 = g == 0 ? 1 : g - 1;
	gaps[k >> 1] = (uint8_t)((gaps[k >> 1] & ~(0xfu << ((k & 1) * 4))) |
				 (g2 << ((k & 1) * 4)));
	const void *encs[1] = {enc};
	df11_cuda_model *m = NULL;
	/* df11_parse accepts it; the upload's count kernel does not. */
	assert_int_equal(df11_cuda_upload(encs, &size, 1, NULL, 0, &m),
			 DF11_BAD_DATA);
	assert_null(m);
	gaps[k >> 1] = (uint8_t)((gaps[k >> 1] & ~(0xfu << ((k & 1) * 4))) |
				 (g << ((k & 1) * 4)));
	OK(df11_cuda_upload(encs, &size, 1, NULL, 0, &m));
	dev_out o;
	out_init(&o, n, 0);
	OK(df11_cuda_decode(m, 0, o.dst, 0));
	out_check(&o, w, "restored tensor");
	OK(df11_cuda_check(m, 0));
	df11_cuda_model_free(m);
	free(enc);
	free(w);
}

/* ------------------------------------------------ fused products */

/* sum_k |w x| of output (b, n): the scale of its rounding. */
static double magnitude(const uint16_t *w, uint64_t cols, const uint16_t *x,
			uint64_t n, int b)
{
	double m = 0;
	for (uint64_t k = 0; k < cols; k++)
		m += fabs((double)df11_bf16_to_f32(w[n * cols + k]) *
			  df11_bf16_to_f32(x[(uint64_t)b * cols + k]));
	return m;
}

/* df11_cuda_gemv on the GPU against the CPU run of the same kernels
 * (tests/fused_run.c): the prepare's index byte for byte; encoded and BF16
 * weights bit for bit; the CPU run bit for bit at batch widths 1-8 (the
 * same fmaf in the same order) and within 1e-5 of the magnitude on the
 * tensor cores; y past each matrix's rows untouched; a captured graph
 * replays the same bits. */
static void test_gemv(void **state)
{
	(void)state;
	need_gpu();
	static const uint64_t shapes[][2] = {{33, 1030}, {96, 5120}, {40, 14336}};
	static const int batches[] = {1, 2, 3, 5, 8, 9, 16, 17, 32};
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		const uint64_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols;
		const uint64_t ldy = rows + 3;
		uint16_t *w = malloc(2 * n);
		assert_non_null(w);
		df11_synth_matrix(40 + si, rows, cols, 0.02f, w);
		emul_tensor T;
		tensor_load(&T, w, n, NULL);
		uint32_t err = 0;
		uint8_t *index = fused_index_make(&T, rows, cols, &err);
		assert_int_equal(err, 0);
		const void *encs[1] = {T.enc};
		df11_cuda_model *m = NULL;
		OK(df11_cuda_upload(encs, &T.size, 1, NULL, 0, &m));
		df11_cuda_gemv_job job = {0, NULL, 0, NULL, ldy};
		float *yd = NULL;
		CK(cudaMalloc((void **)&yd, 4 * DF11F_MAX_B * ldy));
		job.y = yd;
		uint16_t *xd = NULL;
		CK(cudaMalloc((void **)&xd, 2 * DF11F_MAX_B * cols));
		/* Not prepared yet. */
		assert_int_equal(df11_cuda_gemv(m, &job, 1, xd, cols, cols, 1, 0, 0),
				 DF11_INVALID_ARG);
		assert_int_equal(df11_cuda_gemv_prepare(m, 0, rows + 1, cols),
				 DF11_INVALID_ARG);
		OK(df11_cuda_gemv_prepare(m, 0, rows, cols));
		const size_t isize = df11_cuda_gemv_index_size(m, 0);
		assert_int_equal(isize, df11f_index_size(rows, cols));
		uint8_t *dindex = malloc(isize);
		assert_non_null(dindex);
		CK(cudaMemcpy(dindex, m->tensors[0].fused, isize, cudaMemcpyDeviceToHost));
		assert_memory_equal(dindex, index, isize);

		uint16_t *wd = NULL;
		CK(cudaMalloc((void **)&wd, 2 * n));
		CK(cudaMemcpy(wd, w, 2 * n, cudaMemcpyHostToDevice));
		df11_cuda_gemv_job bjob = {0, wd, rows, yd, ldy};
		uint16_t *x = malloc(2 * DF11F_MAX_B * cols);
		float *y0 = malloc(4 * DF11F_MAX_B * ldy), *ye = malloc(4 * DF11F_MAX_B * ldy);
		float *yb = malloc(4 * DF11F_MAX_B * ldy), *yc = malloc(4 * DF11F_MAX_B * ldy);
		assert_true(x && y0 && ye && yb && yc);
		df11_rng r;
		df11_rng_seed(&r, 7 + si);
		for (uint64_t i = 0; i < DF11F_MAX_B * cols; i++)
			x[i] = df11_f32_to_bf16(df11_rng_normal(&r));
		for (uint64_t i = 0; i < DF11F_MAX_B * ldy; i++)
			y0[i] = (float)(i % 5) - 2.0f;
		CK(cudaMemcpy(xd, x, 2 * DF11F_MAX_B * cols, cudaMemcpyHostToDevice));
		df11f_matrix M;
		OK(df11f_matrix_from_tensor(&M, &T.t, index, rows, cols));
		for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
			for (int acc = 0; acc < 2; acc++) {
				const int B = batches[bi];
				const size_t bytes = 4 * (size_t)B * ldy;
				CK(cudaMemcpy(yd, y0, bytes, cudaMemcpyHostToDevice));
				OK(df11_cuda_gemv(m, &job, 1, xd, cols, cols, B, acc, 0));
				CK(cudaMemcpy(ye, yd, bytes, cudaMemcpyDeviceToHost));
				CK(cudaMemcpy(yd, y0, bytes, cudaMemcpyHostToDevice));
				OK(df11_cuda_gemv(NULL, &bjob, 1, xd, cols, cols, B, acc, 0));
				CK(cudaMemcpy(yb, yd, bytes, cudaMemcpyDeviceToHost));
				OK(df11_cuda_check(m, 0));
				if (memcmp(ye, yb, bytes))
					fail_msg("%llu x %llu, batch %d: encoded and BF16 "
						 "weights give different bits",
						 (unsigned long long)rows,
						 (unsigned long long)cols, B);
				memcpy(yc, y0, bytes);
				df11f_launch L;
				OK(df11f_launch_init(&L, x, cols, cols, B, acc));
				OK(df11f_launch_add(&L, &M, yc, ldy));
				assert_int_equal(fused_run_launch(&L), 0);
				for (int b = 0; b < B; b++)
					for (uint64_t i = 0; i < ldy; i++) {
						float g = ye[b * ldy + i], c = yc[b * ldy + i];
						if (i >= rows || L.nb < DF11F_MMA_NB) {
							if (memcmp(&g, &c, 4))
								fail_msg("batch %d: y[%d][%llu] = %.9g "
									 "on the GPU, %.9g on the CPU",
									 B, b, (unsigned long long)i,
									 g, c);
						} else if (!(fabs((double)g - c) <=
							     1e-5 * (magnitude(w, cols, x, i, b) +
								     fabs((double)y0[b * ldy + i] * acc)))) {
							fail_msg("batch %d: y[%d][%llu] = %.9g on "
								 "the GPU, %.9g on the CPU", B, b,
								 (unsigned long long)i, g, c);
						}
					}
			}
		/* A captured launch replays the same bits. */
		cudaStream_t s;
		CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
		cudaGraph_t g;
		cudaGraphExec_t ge;
		CK(cudaMemcpy(yd, y0, 4 * 8 * ldy, cudaMemcpyHostToDevice));
		CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
		OK(df11_cuda_gemv(m, &job, 1, xd, cols, cols, 8, 0, s));
		CK(cudaStreamEndCapture(s, &g));
		CK(cudaGraphInstantiate(&ge, g, 0));
		CK(cudaGraphLaunch(ge, s));
		CK(cudaStreamSynchronize(s));
		CK(cudaMemcpy(yb, yd, 4 * 8 * ldy, cudaMemcpyDeviceToHost));
		OK(df11_cuda_gemv(m, &job, 1, xd, cols, cols, 8, 0, 0));
		CK(cudaMemcpy(ye, yd, 4 * 8 * ldy, cudaMemcpyDeviceToHost));
		assert_memory_equal(ye, yb, 4 * 8 * ldy);
		CK(cudaGraphExecDestroy(ge));
		CK(cudaGraphDestroy(g));
		CK(cudaStreamDestroy(s));
		/* A segment length changed in device memory: flagged. */
		uint16_t v;
		uint8_t *seg = m->tensors[0].fused + df11f_index_seg_offset(rows) + 2 * 3;
		CK(cudaMemcpy(&v, seg, 2, cudaMemcpyDeviceToHost));
		v++;
		CK(cudaMemcpy(seg, &v, 2, cudaMemcpyHostToDevice));
		OK(df11_cuda_gemv(m, &job, 1, xd, cols, cols, 1, 0, 0));
		assert_int_equal(df11_cuda_check(m, 0), DF11_BAD_DATA);
		assert_int_equal(df11_cuda_gemv(m, &job, 1, xd, cols, cols, 33, 0, 0),
				 DF11_INVALID_ARG);
		CK(cudaFree(yd));
		CK(cudaFree(xd));
		CK(cudaFree(wd));
		df11_cuda_model_free(m);
		free(dindex);
		free(index);
		free(x);
		free(y0);
		free(ye);
		free(yb);
		free(yc);
		tensor_free(&T);
		free(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_cases),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_corrupt_flag),
		cmocka_unit_test(test_nemo_layer),
		cmocka_unit_test(test_gemv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
