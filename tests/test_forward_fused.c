/* The CUDA forward pass's decode-step arithmetic on the CPU: the reference
 * forward pass (llm/forward_cpu.c) with BF16 activations, as the CUDA pass
 * stores them, and every matrix product computed by the CPU run of the
 * fused decode + matrix-vector kernel (cuda/fused.h), which the CUDA pass
 * uses for steps of up to 32 rows:
 *   - with df11-encoded weights and with the same weights through the
 *     kernel's BF16 loader, logits and greedy tokens are identical, bit
 *     for bit;
 *   - both agree with the reference (same BF16 rounding, its own summation
 *     order) within the CUDA forward pass's tolerance, on the tiny Mistral
 *     fixtures and on stories260K.
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
#include "llm/forward.h"
#include "tests/cuda_upload.h"
#include "tests/fused_run.h"
#include "tests/testutil.h"

/* The CUDA forward pass's tolerance against the BF16-emulating reference
 * (tests/test_forward_cuda.c, docs/FORWARD.md). */
#define ATOL 0.15
#define RTOL 0.05

/* Every matrix of a model, as the fused kernel sees it. */
typedef struct fused_tensor {
	char name[DF11_LLM_NAME_MAX];
	uint64_t rows, cols;
	uint16_t *bf16;
	emul_tensor enc;
	uint8_t *index;
	df11f_matrix m_enc, m_bf16;
} fused_tensor;

typedef struct fused_model {
	fused_tensor *t;
	size_t n;
	int encoded;       /* use the encoded matrices (else the BF16 loader) */
	float *head;       /* lm_head products of the current call (n, V) */
	uint64_t launches;
} fused_model;

static fused_tensor *find(fused_model *F, const char *name)
{
	for (size_t i = 0; i < F->n; i++)
		if (!strcmp(F->t[i].name, name))
			return &F->t[i];
	fail_msg("no matrix %s", name);
	return NULL;
}

/* The hook (df11_cpu_matmul_fn): one fused launch per product; lm_head,
 * which the reference multiplies in slices, in one launch at its first
 * slice. */
static void fused_matmul(void *ctx, const char *name, uint64_t row0,
			 const uint16_t *w, float *out, int ld_out,
			 const float *in, int n, int N, int K, int accumulate)
{
	fused_model *F = ctx;
	fused_tensor *T = find(F, name);
	assert_int_equal(T->cols, (uint64_t)K);
	assert_true(n >= 1 && n <= (int)DF11F_MAX_B);
	/* The reference hands over the same BF16 rows. */
	assert_memory_equal(w, T->bf16 + row0 * T->cols, 2 * (size_t)N * K);
	/* GEMM inputs are BF16 already (BF16 activations): exact. */
	uint16_t *x = malloc(2 * (size_t)n * K);
	assert_non_null(x);
	for (size_t i = 0; i < (size_t)n * K; i++) {
		x[i] = df11_f32_to_bf16(in[i]);
		assert_true(df11_bf16_to_f32(x[i]) == in[i] || in[i] != in[i]);
	}
	const df11f_matrix *M = F->encoded ? &T->m_enc : &T->m_bf16;
	float *y = out;
	uint64_t ldy = (uint64_t)ld_out;
	const int whole = row0 != 0 || (uint64_t)N != T->rows;
	if (whole) {
		if (row0 == 0) {
			free(F->head);
			F->head = malloc(4 * (size_t)n * T->rows);
			assert_non_null(F->head);
		}
		y = F->head;
		ldy = T->rows;
	}
	if (!whole || row0 == 0) {
		df11f_launch L;
		assert_int_equal(df11f_launch_init(&L, x, (uint64_t)K, (uint64_t)K, n,
						   accumulate), DF11_OK);
		assert_int_equal(df11f_launch_add(&L, M, y, ldy), DF11_OK);
		assert_int_equal(fused_run_launch(&L), 0);
		F->launches++;
	}
	if (whole)
		for (int b = 0; b < n; b++)
			memcpy(out + (size_t)b * ld_out, F->head + (size_t)b * T->rows + row0,
			       4 * (size_t)N);
	free(x);
}

/* The seven matrices of every layer and lm_head of a checkpoint, encoded
 * (Huffman where it pays) with their fused indices. */
static void fused_load(fused_model *F, const df11_llm_config *c,
		       const df11_weights *w)
{
	memset(F, 0, sizeof *F);
	F->t = calloc((size_t)c->n_layers * 7 + 1, sizeof *F->t);
	assert_non_null(F->t);
	for (int l = 0; l <= c->n_layers; l++)
		for (int k = 0; k < 7; k++) {
			if (l == c->n_layers && k > 0)
				break;
			fused_tensor *T = &F->t[F->n++];
			if (l == c->n_layers) {
				snprintf(T->name, sizeof T->name, "%s",
					 df11_llm_lm_head_name(c));
				T->rows = (uint64_t)c->vocab;
				T->cols = (uint64_t)c->hidden;
			} else {
				df11_llm_layer_name(T->name, l, df11_llm_layer_suffix[k]);
				df11_llm_layer_shape(c, k, &T->rows, &T->cols);
			}
			const uint64_t n = T->rows * T->cols;
			T->bf16 = malloc(2 * n);
			assert_non_null(T->bf16);
			assert_int_equal(w->read(w->ctx, T->name, 0, n, T->bf16), DF11_OK);
			tensor_load(&T->enc, T->bf16, n, NULL);
			if (T->enc.P.layout.codec == DF11_CODEC_HUFFMAN) {
				uint32_t err = 0;
				T->index = fused_index_make(&T->enc, T->rows, T->cols, &err);
				assert_int_equal(err, 0);
			}
			assert_int_equal(df11f_matrix_from_tensor(&T->m_enc, &T->enc.t,
								  T->index, T->rows,
								  T->cols), DF11_OK);
			df11f_matrix_from_bf16(&T->m_bf16, T->bf16, T->rows);
		}
}

static void fused_free(fused_model *F)
{
	for (size_t i = 0; i < F->n; i++) {
		free(F->t[i].bf16);
		free(F->t[i].index);
		tensor_free(&F->t[i].enc);
	}
	free(F->t);
	free(F->head);
}

/* Prompt logits [n x V] and `gen` greedy tokens, BF16 activations, through
 * the fused kernel (F) or the reference's own products (F NULL). */
static float *run(const df11_llm_config *c, const df11_weights *w,
		  fused_model *F, const int32_t *prompt, int n, int gen,
		  int32_t *gen_ret)
{
	df11_cpu_llm *m;
	assert_int_equal(df11_cpu_llm_new(c, w, n + gen + 1, 1, &m), DF11_OK);
	df11_cpu_llm_set_bf16_activations(m, 1);
	if (F)
		df11_cpu_llm_set_matmul(m, fused_matmul, F);
	const size_t V = (size_t)c->vocab;
	float *logits = malloc(4 * (size_t)n * V), *last = malloc(4 * V);
	assert_true(logits && last);
	assert_int_equal(df11_cpu_llm_forward(m, prompt, n, 1, logits), DF11_OK);
	memcpy(last, logits + (size_t)(n - 1) * V, 4 * V);
	for (int i = 0; i < gen; i++) {
		gen_ret[i] = df11_argmax(last, (int)V);
		assert_int_equal(df11_cpu_llm_forward(m, &gen_ret[i], 1, 0, last), DF11_OK);
	}
	free(last);
	df11_cpu_llm_free(m);
	return logits;
}

static void check_model(const char *dir, const char *name)
{
	df11_model *model;
	if (df11_model_open(dir, &model))
		fail_msg("open %s: %s", dir, df11_last_error());
	const void *cj;
	size_t cn;
	df11_llm_config c;
	assert_int_equal(df11_model_file(model, "config.json", &cj, &cn), DF11_OK);
	assert_int_equal(df11_llm_config_parse(cj, cn, &c), DF11_OK);
	df11_weights w;
	df11_weights_from_model(model, &w);

	const int32_t words[] = {1, 403, 407, 61, 78, 60, 63, 92, 100, 69, 5, 2, 30, 250};
	const int n = 14, gen = 6;
	int32_t prompt[14];
	for (int i = 0; i < n; i++)
		prompt[i] = words[i] % c.vocab;
	int32_t g_ref[8], g_enc[8], g_bf[8];
	fused_model F;
	fused_load(&F, &c, &w);
	float *ref = run(&c, &w, NULL, prompt, n, gen, g_ref);
	F.encoded = 1;
	float *enc = run(&c, &w, &F, prompt, n, gen, g_enc);
	const uint64_t launches = F.launches;
	F.encoded = 0;
	float *bf = run(&c, &w, &F, prompt, n, gen, g_bf);
	assert_int_equal(F.launches, 2 * launches);
	assert_true(launches >= (uint64_t)(1 + gen) * (uint64_t)(7 * c.n_layers + 1));

	const size_t V = (size_t)c.vocab, bytes = 4 * (size_t)n * V;
	if (memcmp(enc, bf, bytes))
		fail_msg("%s: encoded and BF16 weights give different logits", name);
	assert_memory_equal(g_enc, g_bf, sizeof(int32_t) * gen);
	assert_memory_not_equal(enc, ref, bytes); /* another summation order */
	double max_diff = 0;
	for (size_t i = 0; i < (size_t)n * V; i++) {
		double d = fabs((double)enc[i] - ref[i]);
		max_diff = fmax(max_diff, d);
		if (!(d <= ATOL + RTOL * fabs((double)ref[i])))
			fail_msg("%s: logit %zu = %.7g, reference %.7g", name, i,
				 enc[i], ref[i]);
	}
	print_message("%s: fused kernel (CPU run) vs reference, BF16 activations: "
		      "max |diff| %.3g; %llu launches per mode\n", name, max_diff,
		      (unsigned long long)launches);
	free(ref);
	free(enc);
	free(bf);
	fused_free(&F);
	df11_model_close(model);
}

static void test_tiny_mistral(void **state)
{
	(void)state;
	char *dir = test_source_path("tests/fixtures/tiny-mistral");
	check_model(dir, "tiny-mistral");
	free(dir);
	dir = test_source_path("tests/fixtures/tiny-mistral-sw");
	check_model(dir, "tiny-mistral-sw");
	free(dir);
}

static void test_stories260k(void **state)
{
	(void)state;
	char *dir = test_stories_dir();
	check_model(dir, "stories260K");
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_mistral),
		cmocka_unit_test(test_stories260k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
