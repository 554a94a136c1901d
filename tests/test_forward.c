/*
 * The CPU reference forward pass (llm/forward_cpu.c), its config parser and
 * df11-run:
 *   - config.json parsing, Mistral-Nemo's head_dim and the refusals;
 *   - agreement with Hugging Face transformers (tests/fixtures, made by
 *     tests/fixtures/make_reference.py) on a tiny random Mistral, the same
 *     with a sliding window, and stories260K: every logit within
 *     ATOL + RTOL * |ref|, the same argmax at every prompt position and the
 *     same greedy continuation;
 *   - DF11 weights (df11-encoded in memory, and a .df11 container made by
 *     df11_pack) give the same logits as BF16 weights, bit for bit;
 *   - prefill == token-by-token decoding and 1 thread == 3 threads, bit for
 *     bit (the KV cache and the fixed summation order);
 *   - bad tokens, a full KV cache, missing or misshapen tensors;
 *   - df11-run's --dump-logits and generated tokens.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm/forward.h"
#include "synth/synth.h"
#include "tests/testutil.h"

/*
 * Tolerance against transformers: |ours - ref| <= ATOL + RTOL * |ref|.
 * Both sides compute in float32 from the same BF16 weights; they differ
 * only in summation order (our fixed 8-lane dot product vs oneDNN/MKL
 * sgemm blocking) and libm (expf, cosf). Measured: max |diff| 4.7e-6 on the
 * tiny Mistral (|logit| <= 5.4) and 5.1e-5 on stories260K (|logit| <= 16.4,
 * five layers). 1e-3 leaves 20x headroom for other compilers and CPUs,
 * while any real mistake (RoPE pairing, a norm weight, a mask off by one)
 * moves logits by 1e-2 or more.
 */
#define ATOL 1e-3
#define RTOL 1e-3

static uint8_t *slurp(const char *path, size_t *n_ret)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*n_ret = (size_t)n;
	return b;
}

/* A model folder of a fixture case: "$DF11_STORIES" or a source path. */
static char *case_dir(const char *model)
{
	if (!strcmp(model, "$DF11_STORIES"))
		return test_stories_dir();
	return test_source_path(model);
}

typedef struct loaded {
	df11_model *model;
	df11_llm_config cfg;
	df11_weights w;
} loaded;

static void load(const char *dir, loaded *L)
{
	df11_result r = df11_model_open(dir, &L->model);
	if (r)
		fail_msg("open %s: %s", dir, df11_last_error());
	const void *cj;
	size_t n;
	assert_int_equal(df11_model_file(L->model, "config.json", &cj, &n), DF11_OK);
	r = df11_llm_config_parse(cj, n, &L->cfg);
	if (r)
		fail_msg("config %s: %s", dir, df11_last_error());
	df11_weights_from_model(L->model, &L->w);
}

/* Every tensor of an opened checkpoint copied into memory, df11-encoded. */
static df11_weights_mem *encoded_copy(df11_model *m)
{
	df11_weights_mem *mem = df11_weights_mem_new();
	assert_non_null(mem);
	for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
		df11_tensor_desc d;
		assert_int_equal(df11_model_tensor(m, i, &d), DF11_OK);
		assert_int_equal(d.dtype, DF11_DTYPE_BF16);
		uint16_t *buf = malloc(d.nbytes + 2);
		assert_non_null(buf);
		assert_int_equal(df11_model_read(m, i, buf, d.nbytes), DF11_OK);
		assert_int_equal(df11_weights_mem_add(mem, d.name, d.ndim, d.shape,
						      buf, 1), DF11_OK);
		free(buf);
	}
	return mem;
}

/* Prompt logits [n x V] and `gen` greedy tokens after them. */
static float *run(const df11_llm_config *c, const df11_weights *w,
		  const int32_t *prompt, int n, int threads, int gen,
		  int32_t *gen_ret)
{
	df11_cpu_llm *m;
	df11_result r = df11_cpu_llm_new(c, w, n + gen + 1, threads, &m);
	if (r)
		fail_msg("df11_cpu_llm_new: %s", df11_last_error());
	float *logits = malloc((size_t)n * (size_t)c->vocab * sizeof(float));
	float *last = malloc((size_t)c->vocab * sizeof(float));
	assert_non_null(logits);
	assert_non_null(last);
	assert_int_equal(df11_cpu_llm_forward(m, prompt, n, 1, logits), DF11_OK);
	memcpy(last, logits + (size_t)(n - 1) * c->vocab, (size_t)c->vocab * sizeof(float));
	for (int i = 0; i < gen; i++) {
		gen_ret[i] = df11_argmax(last, c->vocab);
		assert_int_equal(df11_cpu_llm_forward(m, &gen_ret[i], 1, 0, last), DF11_OK);
	}
	free(last);
	df11_cpu_llm_free(m);
	return logits;
}

/* ------------------------------------------------------------------------
 * config.json
 * ---------------------------------------------------------------------- */

static df11_result parse(const char *json, df11_llm_config *c)
{
	return df11_llm_config_parse(json, strlen(json), c);
}

static void test_config_nemo(void **state)
{
	(void)state;
	/* Mistral-Nemo-Instruct-2407's config.json (abridged). */
	const char *nemo =
		"{\"architectures\": [\"MistralForCausalLM\"], \"head_dim\": 128,"
		" \"hidden_act\": \"silu\", \"hidden_size\": 5120,"
		" \"intermediate_size\": 14336, \"max_position_embeddings\": 1024000,"
		" \"model_type\": \"mistral\", \"num_attention_heads\": 32,"
		" \"num_hidden_layers\": 40, \"num_key_value_heads\": 8,"
		" \"rms_norm_eps\": 1e-05, \"rope_theta\": 1000000.0,"
		" \"sliding_window\": null, \"tie_word_embeddings\": false,"
		" \"torch_dtype\": \"bfloat16\", \"vocab_size\": 131072}";
	df11_llm_config c;
	assert_int_equal(parse(nemo, &c), DF11_OK);
	assert_int_equal(c.arch, DF11_ARCH_MISTRAL);
	assert_int_equal(c.hidden, 5120);
	assert_int_equal(c.intermediate, 14336);
	assert_int_equal(c.n_layers, 40);
	assert_int_equal(c.n_heads, 32);
	assert_int_equal(c.n_kv_heads, 8);
	assert_int_equal(c.head_dim, 128);  /* not 5120 / 32 = 160 */
	assert_int_equal(c.vocab, 131072);
	assert_int_equal(c.max_pos, 1024000);
	assert_int_equal(c.sliding_window, 0);
	assert_int_equal(c.tied, 0);
	assert_true(c.rope_theta == 1e6f);
	assert_true(c.norm_eps == 1e-5f);
}

static void test_config_defaults(void **state)
{
	(void)state;
	df11_llm_config c;
	/* head_dim null -> hidden / heads; no num_key_value_heads -> MHA;
	 * MistralConfig's default sliding_window is 4096. */
	assert_int_equal(parse("{\"architectures\": [\"MistralForCausalLM\"],"
			       " \"hidden_size\": 64, \"intermediate_size\": 128,"
			       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
			       " \"vocab_size\": 100, \"head_dim\": null}", &c), DF11_OK);
	assert_int_equal(c.head_dim, 16);
	assert_int_equal(c.n_kv_heads, 4);
	assert_int_equal(c.sliding_window, 4096);
	assert_true(c.rope_theta == 10000.0f);
	assert_true(c.norm_eps == 1e-6f);
	/* Llama ignores sliding_window; transformers 5 nests rope_theta. */
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"],"
			       " \"hidden_size\": 64, \"intermediate_size\": 128,"
			       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
			       " \"num_key_value_heads\": 2, \"vocab_size\": 100,"
			       " \"sliding_window\": 7, \"tie_word_embeddings\": true,"
			       " \"rope_parameters\": {\"rope_theta\": 500000.0,"
			       " \"rope_type\": \"default\"}}", &c), DF11_OK);
	assert_int_equal(c.arch, DF11_ARCH_LLAMA);
	assert_int_equal(c.sliding_window, 0);
	assert_int_equal(c.tied, 1);
	assert_true(c.rope_theta == 500000.0f);
}

static void test_config_refused(void **state)
{
	(void)state;
	df11_llm_config c;
#define BASE "\"hidden_size\": 64, \"intermediate_size\": 128, " \
	     "\"num_hidden_layers\": 2, \"vocab_size\": 100"
	assert_int_equal(parse("{\"architectures\": [\"GPT2LMHeadModel\"], "
			       BASE ", \"num_attention_heads\": 4}", &c), DF11_UNSUPPORTED);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 4, \"rope_scaling\":"
			       " {\"rope_type\": \"llama3\", \"factor\": 8.0}}", &c),
			 DF11_UNSUPPORTED);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 4, \"attention_bias\": true}", &c),
			 DF11_UNSUPPORTED);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}", &c),
			 DF11_UNSUPPORTED);
	/* 64 / 5 heads without head_dim; 6 heads over 4 KV heads. */
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 5}", &c), DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 6, \"head_dim\": 16,"
			       " \"num_key_value_heads\": 4}", &c), DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 4, \"head_dim\": 15}", &c),
			 DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"],"
			       " \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
			       " \"vocab_size\": 100, \"num_attention_heads\": 4}", &c),
			 DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": -4}", &c), DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": \"4\"}", &c), DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE
			       ", \"num_attention_heads\": 4, \"vocab_size\": 99999999999}",
			       &c), DF11_BAD_DATA);
	assert_int_equal(parse("[1, 2]", &c), DF11_BAD_DATA);
	assert_int_equal(parse("{\"architectures\": [", &c), DF11_BAD_DATA);
#undef BASE
}

/* ------------------------------------------------------------------------
 * The CUDA pass's layer buffer layout (planned in C, checked here).
 * ---------------------------------------------------------------------- */

static void check_layout(const df11_llm_config *c)
{
	df11_llm_layout L;
	df11_llm_layout_plan(c, &L);
	uint64_t n[DF11_W_COUNT], raw = 0;
	for (int k = 0; k < DF11_W_COUNT; k++) {
		uint64_t rows, cols;
		df11_llm_layer_shape(c, k, &rows, &cols);
		n[k] = rows * (cols ? cols : 1);
		raw += n[k];
	}
	/* Fused matrices are contiguous rows. */
	assert_int_equal(L.off[DF11_W_K], L.off[DF11_W_Q] + n[DF11_W_Q]);
	assert_int_equal(L.off[DF11_W_V], L.off[DF11_W_K] + n[DF11_W_K]);
	assert_int_equal(L.off[DF11_W_UP], L.off[DF11_W_GATE] + n[DF11_W_GATE]);
	/* Blocks 256-byte aligned, in order, not overlapping, in the buffer. */
	int starts[] = {DF11_W_Q, DF11_W_O, DF11_W_GATE, DF11_W_DOWN,
			DF11_W_ATTN_NORM, DF11_W_MLP_NORM};
	for (int i = 0; i < 6; i++)
		assert_int_equal(L.off[starts[i]] % DF11_LAYOUT_ALIGN, 0);
	int order[] = {DF11_W_Q, DF11_W_K, DF11_W_V, DF11_W_O, DF11_W_GATE,
		       DF11_W_UP, DF11_W_DOWN, DF11_W_ATTN_NORM, DF11_W_MLP_NORM};
	for (int i = 0; i + 1 < DF11_W_COUNT; i++)
		assert_true(L.off[order[i]] + n[order[i]] <= L.off[order[i + 1]]);
	assert_true(L.off[DF11_W_MLP_NORM] + n[DF11_W_MLP_NORM] <= L.layer_elems);
	assert_int_equal(L.layer_elems % DF11_LAYOUT_ALIGN, 0);
	/* Padding at most 6 blocks' worth: decode scratch (two buffers) is
	 * two layers of BF16 weights plus < 3 KB. */
	assert_true(L.layer_elems < raw + 6 * DF11_LAYOUT_ALIGN);
	/* lm_head slices fit a buffer, cover the vocabulary, start aligned. */
	uint64_t H = (uint64_t)c->hidden, V = (uint64_t)c->vocab, sr = (uint64_t)L.slice_rows;
	assert_true(sr >= 1 && sr * H <= L.layer_elems);
	assert_true((uint64_t)L.n_slices * sr >= V && (uint64_t)(L.n_slices - 1) * sr < V);
	if (L.n_slices > 1 && L.layer_elems / H >= DF11_LAYOUT_ALIGN)
		assert_int_equal(sr % DF11_LAYOUT_ALIGN, 0);
}

static void test_layout(void **state)
{
	(void)state;
	df11_llm_config c;
	const char *nemo =
		"{\"architectures\": [\"MistralForCausalLM\"], \"head_dim\": 128,"
		" \"hidden_size\": 5120, \"intermediate_size\": 14336,"
		" \"num_attention_heads\": 32, \"num_hidden_layers\": 40,"
		" \"num_key_value_heads\": 8, \"vocab_size\": 131072}";
	assert_int_equal(parse(nemo, &c), DF11_OK);
	check_layout(&c);
	df11_llm_layout L;
	df11_llm_layout_plan(&c, &L);
	/* 272,629,760 matrix weights + 2 norms of 5120 per layer, no padding
	 * needed; lm_head in 3 slices. */
	assert_int_equal(L.layer_elems, 272640000);
	assert_int_equal(L.slice_rows, 53248);
	assert_int_equal(L.n_slices, 3);
	/* Odd sizes: nothing a multiple of 128. */
	c.hidden = 97;
	c.intermediate = 203;
	c.n_heads = 3;
	c.n_kv_heads = 1;
	c.head_dim = 34;
	c.vocab = 1001;
	check_layout(&c);
	c.vocab = 7;
	check_layout(&c);
	c.hidden = 4096;    /* a buffer that holds fewer than 128 rows */
	c.intermediate = 8;
	c.n_heads = 1;
	c.head_dim = 2;
	c.vocab = 50000;
	check_layout(&c);
}

/* ------------------------------------------------------------------------
 * Against transformers.
 * ---------------------------------------------------------------------- */

static void test_reference_fixtures(void **state)
{
	(void)state;
	char *ref_path = test_source_path("tests/fixtures/reference.json");
	json_error_t jerr;
	json_t *ref = json_load_file(ref_path, 0, &jerr);
	if (!ref)
		fail_msg("%s: %s", ref_path, jerr.text);
	json_t *cases = json_object_get(ref, "cases");
	assert_true(json_array_size(cases) >= 3);
	for (size_t ci = 0; ci < json_array_size(cases); ci++) {
		json_t *cs = json_array_get(cases, ci);
		const char *name = json_string_value(json_object_get(cs, "name"));
		char *dir = case_dir(json_string_value(json_object_get(cs, "model")));
		loaded L;
		load(dir, &L);
		json_t *jp = json_object_get(cs, "prompt"), *jg = json_object_get(cs, "generated");
		int n = (int)json_array_size(jp), ng = (int)json_array_size(jg);
		assert_int_equal(json_integer_value(json_object_get(cs, "rows")), n);
		assert_int_equal(json_integer_value(json_object_get(cs, "vocab")), L.cfg.vocab);
		int32_t prompt[64], gen[64];
		assert_true(n <= 64 && ng <= 64);
		for (int i = 0; i < n; i++)
			prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));

		char rel[256];
		snprintf(rel, sizeof rel, "tests/fixtures/%s",
			 json_string_value(json_object_get(cs, "logits")));
		char *lp = test_source_path(rel);
		size_t size;
		float *want = (float *)slurp(lp, &size);
		size_t V = (size_t)L.cfg.vocab;
		assert_int_equal(size, (size_t)n * V * sizeof(float));

		float *got = run(&L.cfg, &L.w, prompt, n, 2, ng, gen);
		double max_err = 0.0;
		for (int t = 0; t < n; t++) {
			for (size_t v = 0; v < V; v++) {
				double a = got[t * V + v], b = want[t * V + v];
				double err = fabs(a - b);
				if (err > max_err)
					max_err = err;
				if (!(err <= ATOL + RTOL * fabs(b)))
					fail_msg("%s: logit [%d, %zu] = %.7g, transformers "
						 "%.7g", name, t, v, a, b);
			}
			assert_int_equal(df11_argmax(got + t * V, (int)V),
					 df11_argmax(want + t * V, (int)V));
		}
		for (int i = 0; i < ng; i++)
			if (gen[i] != json_integer_value(json_array_get(jg, i)))
				fail_msg("%s: generated token %d is %d, transformers %lld",
					 name, i, gen[i],
					 (long long)json_integer_value(json_array_get(jg, i)));
		print_message("%s: max |logit - transformers| = %.3g\n", name, max_err);
		free(got);
		free(want);
		free(lp);
		free(dir);
		df11_model_close(L.model);
	}
	json_decref(ref);
	free(ref_path);
}

/* ------------------------------------------------------------------------
 * Bit-exactness and determinism.
 * ---------------------------------------------------------------------- */

/* The same weights, served as BF16 from the checkpoint and df11-encoded
 * from memory: identical logits, bit for bit, and identical tokens. */
static void check_df11_equals_bf16(const char *dir)
{
	loaded L;
	load(dir, &L);
	df11_weights_mem *mem = encoded_copy(L.model);
	df11_weights wenc;
	df11_weights_mem_provider(mem, &wenc);
	/* Make sure the test exercises Huffman decoding, not raw copies. */
	const void *e;
	size_t es;
	df11_tensor_info info;
	char name[DF11_LLM_NAME_MAX];
	df11_llm_layer_name(name, 0, df11_llm_layer_suffix[DF11_W_GATE]);
	assert_int_equal(wenc.encoded(wenc.ctx, name, &e, &es), DF11_OK);
	assert_int_equal(df11_inspect(e, es, &info), DF11_OK);
	assert_int_equal(info.codec, DF11_CODEC_HUFFMAN);

	int32_t prompt[] = {1, 5, 9, 200, 13, 77, 3, 42, 8, 150};
	int n = 10, ng = 6;
	int32_t g1[8], g2[8];
	float *a = run(&L.cfg, &L.w, prompt, n, 1, ng, g1);
	float *b = run(&L.cfg, &wenc, prompt, n, 1, ng, g2);
	assert_memory_equal(a, b, (size_t)n * L.cfg.vocab * sizeof(float));
	assert_memory_equal(g1, g2, (size_t)ng * sizeof(int32_t));
	free(a);
	free(b);
	df11_weights_mem_free(mem);
	df11_model_close(L.model);
}

/* The checkpoint packed into a .df11 container (df11_pack, what
 * df11-encode writes) and run from there: the same logits, bit for bit,
 * as from the BF16 folder, with weights decoded layer by layer. */
static void check_container_equals_bf16(const char *dir)
{
	char tmpl[] = "/tmp/df11-fwd-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char path[256];
	snprintf(path, sizeof path, "%s/model.df11", tmpl);
	df11_pack_options po = {0};
	po.threads = 2;
	if (df11_pack(dir, path, &po, NULL))
		fail_msg("df11_pack %s: %s", dir, df11_last_error());
	loaded A, B;
	load(dir, &A);
	load(path, &B);
	/* The container really holds the layers encoded. */
	char name[DF11_LLM_NAME_MAX];
	int ndim, compressed = 0;
	uint64_t shape[DF11_MAX_DIMS];
	df11_llm_layer_name(name, 0, df11_llm_layer_suffix[DF11_W_DOWN]);
	assert_int_equal(B.w.shape(B.w.ctx, name, &ndim, shape, &compressed), DF11_OK);
	assert_true(compressed);
	assert_memory_equal(&A.cfg, &B.cfg, sizeof A.cfg);

	int32_t prompt[] = {1, 5, 9, 200, 13, 77, 3, 42, 8, 150, 4, 2};
	int n = 12, ng = 6;
	int32_t g1[8], g2[8];
	float *a = run(&A.cfg, &A.w, prompt, n, 2, ng, g1);
	float *b = run(&B.cfg, &B.w, prompt, n, 2, ng, g2);
	assert_memory_equal(a, b, (size_t)n * A.cfg.vocab * sizeof(float));
	assert_memory_equal(g1, g2, (size_t)ng * sizeof(int32_t));
	free(a);
	free(b);
	df11_model_close(A.model);
	df11_model_close(B.model);
	remove(path);
	rmdir(tmpl);
}

static void test_df11_bit_exact_fixtures(void **state)
{
	(void)state;
	char *tiny = test_source_path("tests/fixtures/tiny-mistral");
	check_df11_equals_bf16(tiny);
	check_container_equals_bf16(tiny);
	free(tiny);
	char *st = test_stories_dir();
	check_df11_equals_bf16(st);
	check_container_equals_bf16(st);
	free(st);
}

/* A synthetic model with trained-like weight statistics (df11_synth_*),
 * head_dim 32 != hidden / heads = 24, served plain and encoded. */
static void synth_model(df11_llm_config *c, df11_weights_mem *plain,
			df11_weights_mem *enc)
{
	memset(c, 0, sizeof *c);
	c->arch = DF11_ARCH_MISTRAL;
	c->hidden = 96;
	c->intermediate = 200;
	c->n_layers = 3;
	c->n_heads = 4;
	c->n_kv_heads = 2;
	c->head_dim = 32;
	c->vocab = 300;
	c->max_pos = 256;
	c->sliding_window = 6;
	c->rope_theta = 10000.0f;
	c->norm_eps = 1e-5f;
	uint64_t seed = 99;
	uint16_t *buf = malloc(300 * 200 * 2);
	assert_non_null(buf);
	const char *top[] = {"model.embed_tokens.weight", "lm_head.weight",
			     "model.norm.weight"};
	uint64_t shapes[3][2] = {{300, 96}, {300, 96}, {96, 0}};
	for (int i = 0; i < 3; i++) {
		int nd = shapes[i][1] ? 2 : 1;
		if (nd == 2)
			df11_synth_matrix(seed++, shapes[i][0], shapes[i][1], 0.05f, buf);
		else
			df11_synth_norm(seed++, shapes[i][0], 1.0f, buf);
		assert_int_equal(df11_weights_mem_add(plain, top[i], nd, shapes[i], buf, 0), DF11_OK);
		assert_int_equal(df11_weights_mem_add(enc, top[i], nd, shapes[i], buf, 1), DF11_OK);
	}
	char name[DF11_LLM_NAME_MAX];
	for (int l = 0; l < c->n_layers; l++)
		for (int k = 0; k < DF11_W_COUNT; k++) {
			uint64_t shape[2];
			df11_llm_layer_shape(c, k, &shape[0], &shape[1]);
			int nd = shape[1] ? 2 : 1;
			if (nd == 2)
				df11_synth_matrix(seed++, shape[0], shape[1], 0.08f, buf);
			else
				df11_synth_norm(seed++, shape[0], 1.0f, buf);
			df11_llm_layer_name(name, l, df11_llm_layer_suffix[k]);
			assert_int_equal(df11_weights_mem_add(plain, name, nd, shape, buf, 0), DF11_OK);
			assert_int_equal(df11_weights_mem_add(enc, name, nd, shape, buf, 1), DF11_OK);
		}
	free(buf);
}

static void test_synthetic_bit_exact_and_deterministic(void **state)
{
	(void)state;
	df11_llm_config c;
	df11_weights_mem *plain = df11_weights_mem_new(), *enc = df11_weights_mem_new();
	assert_non_null(plain);
	assert_non_null(enc);
	synth_model(&c, plain, enc);
	df11_weights wp, we;
	df11_weights_mem_provider(plain, &wp);
	df11_weights_mem_provider(enc, &we);
	int32_t prompt[16];
	for (int i = 0; i < 16; i++)
		prompt[i] = (int32_t)((i * 37 + 11) % c.vocab);
	size_t V = (size_t)c.vocab, bytes = 16 * V * sizeof(float);
	int32_t g1[8], g2[8], g3[8];
	float *a = run(&c, &wp, prompt, 16, 1, 8, g1);
	float *b = run(&c, &we, prompt, 16, 1, 8, g2);
	float *d = run(&c, &we, prompt, 16, 3, 8, g3);
	assert_memory_equal(a, b, bytes);
	assert_memory_equal(g1, g2, sizeof g1);
	/* The thread count does not change a bit. */
	assert_memory_equal(a, d, bytes);
	assert_memory_equal(g1, g3, sizeof g1);

	/* Token by token through the KV cache == the prompt in one pass;
	 * a prompt split 5 + 11 too. */
	df11_cpu_llm *m;
	assert_int_equal(df11_cpu_llm_new(&c, &we, 16, 2, &m), DF11_OK);
	float *row = malloc(V * sizeof(float));
	assert_non_null(row);
	for (int t = 0; t < 16; t++) {
		assert_int_equal(df11_cpu_llm_forward(m, &prompt[t], 1, 0, row), DF11_OK);
		assert_memory_equal(row, a + t * V, V * sizeof(float));
	}
	assert_int_equal(df11_cpu_llm_pos(m), 16);
	/* The cache is full now. */
	assert_int_equal(df11_cpu_llm_forward(m, prompt, 1, 0, row), DF11_LIMIT);
	df11_cpu_llm_reset(m);
	float *split = malloc(bytes);
	assert_non_null(split);
	assert_int_equal(df11_cpu_llm_forward(m, prompt, 5, 1, split), DF11_OK);
	assert_int_equal(df11_cpu_llm_forward(m, prompt + 5, 11, 1, split + 5 * V), DF11_OK);
	assert_memory_equal(split, a, bytes);

	/* The sliding window (6) matters: the same model without it gives
	 * different logits from position 6 on, and the same before. */
	df11_llm_config full = c;
	full.sliding_window = 0;
	int32_t g4[8];
	float *e = run(&full, &we, prompt, 16, 1, 8, g4);
	assert_memory_equal(e, a, 6 * V * sizeof(float));
	assert_memory_not_equal(e + 6 * V, a + 6 * V, V * sizeof(float));

	free(e);
	free(split);
	free(row);
	df11_cpu_llm_free(m);
	free(a);
	free(b);
	free(d);
	df11_weights_mem_free(plain);
	df11_weights_mem_free(enc);
}

/* CUDA-emulation mode (what test_forward_cuda compares the GPU with)
 * rounds something, stays near float32 and is as deterministic. */
static void test_bf16_emulation(void **state)
{
	(void)state;
	char *dir = test_stories_dir();
	loaded L;
	load(dir, &L);
	int32_t prompt[] = {1, 403, 407, 261, 378, 260, 363, 292, 300, 269};
	int n = 10;
	size_t V = (size_t)L.cfg.vocab, bytes = (size_t)n * V * sizeof(float);
	float *f32 = run(&L.cfg, &L.w, prompt, n, 1, 0, NULL);
	float *emu[2];
	for (int i = 0; i < 2; i++) {
		df11_cpu_llm *m;
		assert_int_equal(df11_cpu_llm_new(&L.cfg, &L.w, n, 1 + 2 * i, &m), DF11_OK);
		df11_cpu_llm_set_bf16_activations(m, 1);
		emu[i] = malloc(bytes);
		assert_non_null(emu[i]);
		assert_int_equal(df11_cpu_llm_forward(m, prompt, n, 1, emu[i]), DF11_OK);
		df11_cpu_llm_free(m);
	}
	assert_memory_equal(emu[0], emu[1], bytes);
	assert_memory_not_equal(emu[0], f32, bytes);
	double max_diff = 0;
	for (size_t i = 0; i < (size_t)n * V; i++)
		max_diff = fmax(max_diff, fabs((double)emu[0][i] - f32[i]));
	/* Measured 0.6 (stories260K is small, so BF16 rounding weighs). */
	assert_true(max_diff < 2.0);
	print_message("stories260K: max |bf16 emulation - float32| = %.3g\n", max_diff);
	free(emu[0]);
	free(emu[1]);
	free(f32);
	free(dir);
	df11_model_close(L.model);
}

static void test_bad_input(void **state)
{
	(void)state;
	df11_llm_config c;
	df11_weights_mem *plain = df11_weights_mem_new(), *enc = df11_weights_mem_new();
	synth_model(&c, plain, enc);
	df11_weights w;
	df11_weights_mem_provider(plain, &w);
	df11_cpu_llm *m;
	assert_int_equal(df11_cpu_llm_new(&c, &w, 8, 1, &m), DF11_OK);
	float *logits = malloc((size_t)c.vocab * 9 * sizeof(float));
	int32_t bad[] = {1, 300}, neg[] = {-1}, many[9] = {0};
	assert_int_equal(df11_cpu_llm_forward(m, bad, 2, 0, logits), DF11_INVALID_ARG);
	assert_int_equal(df11_cpu_llm_forward(m, neg, 1, 0, logits), DF11_INVALID_ARG);
	assert_int_equal(df11_cpu_llm_forward(m, many, 9, 1, logits), DF11_LIMIT);
	assert_int_equal(df11_cpu_llm_forward(m, many, 0, 1, logits), DF11_INVALID_ARG);
	assert_int_equal(df11_cpu_llm_pos(m), 0);
	df11_cpu_llm_free(m);

	/* A config that disagrees with the tensors. */
	df11_llm_config wrong = c;
	wrong.intermediate = 201;
	assert_int_equal(df11_cpu_llm_new(&wrong, &w, 8, 1, &m), DF11_BAD_DATA);
	assert_non_null(strstr(df11_last_error(), "gate_proj"));
	wrong = c;
	wrong.n_layers = 4;
	assert_int_equal(df11_cpu_llm_new(&wrong, &w, 8, 1, &m), DF11_NOT_FOUND);
	assert_non_null(strstr(df11_last_error(), "model.layers.3."));
	wrong = c;
	wrong.tied = 1;   /* lm_head would be embed_tokens: shapes agree */
	assert_int_equal(df11_cpu_llm_new(&wrong, &w, 8, 1, &m), DF11_OK);
	df11_cpu_llm_free(m);
	free(logits);
	df11_weights_mem_free(plain);
	df11_weights_mem_free(enc);
}

/* ------------------------------------------------------------------------
 * df11-run.
 * ---------------------------------------------------------------------- */

static void test_tool(void **state)
{
	(void)state;
	const char *bin = getenv("DF11_BIN_DIR");
	assert_non_null(bin);
	char *tiny = test_source_path("tests/fixtures/tiny-mistral");
	char out[] = "/tmp/df11-run-test-XXXXXX";
	int fd = mkstemp(out);
	assert_true(fd >= 0);
	close(fd);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s/df11-run %s --device cpu --tokens 1,17,200,45,3 "
		 "--generate 4 --batch 2 --dump-logits %s > %s.txt", bin, tiny, out, out);
	assert_int_equal(system(cmd), 0);

	loaded L;
	load(tiny, &L);
	int32_t prompt[] = {1, 17, 200, 45, 3}, gen[4];
	float *want = run(&L.cfg, &L.w, prompt, 5, 1, 4, gen);
	size_t size;
	uint8_t *got = slurp(out, &size);
	assert_int_equal(size, 5 * (size_t)L.cfg.vocab * sizeof(float));
	assert_memory_equal(got, want, size);
	free(got);
	char expect[256], txt[300];
	snprintf(expect, sizeof expect, "%d,%d,%d,%d\n%d,%d,%d,%d\n", gen[0], gen[1],
		 gen[2], gen[3], gen[0], gen[1], gen[2], gen[3]);
	snprintf(txt, sizeof txt, "%s.txt", out);
	got = slurp(txt, &size);
	assert_int_equal(size, strlen(expect));
	assert_memory_equal(got, expect, size);
	free(got);

	/* The same from a .df11 container (what df11-encode writes). */
	char dir[] = "/tmp/df11-run-ct-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char ct[256], out2[256];
	snprintf(ct, sizeof ct, "%s/tiny.df11", dir);
	snprintf(out2, sizeof out2, "%s/logits", dir);
	assert_int_equal(df11_pack(tiny, ct, NULL, NULL), DF11_OK);
	snprintf(cmd, sizeof cmd, "%s/df11-run %s --tokens 1,17,200,45,3 --generate 4 "
		 "--dump-logits %s > %s.txt", bin, ct, out2, out2);
	assert_int_equal(system(cmd), 0);
	got = slurp(out2, &size);
	assert_int_equal(size, 5 * (size_t)L.cfg.vocab * sizeof(float));
	assert_memory_equal(got, want, size);
	free(got);
	snprintf(txt, sizeof txt, "%s.txt", out2);
	got = slurp(txt, &size);
	assert_int_equal(size, strlen(expect) / 2);
	assert_memory_equal(got, expect, size);
	free(got);
	remove(txt);
	remove(out2);
	remove(ct);
	rmdir(dir);
	snprintf(txt, sizeof txt, "%s.txt", out);

	/* Refusals: one line on stderr, non-zero status, no output file. */
	remove(out);
	snprintf(cmd, sizeof cmd, "%s/df11-run %s --tokens 1,256 --dump-logits %s "
		 "2>/dev/null", bin, tiny, out);
	assert_int_not_equal(system(cmd), 0);
	assert_int_not_equal(access(out, F_OK), 0);
	snprintf(cmd, sizeof cmd, "%s/df11-run %s --tokens 1,x 2>/dev/null", bin, tiny);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s/df11-run /nonexistent --tokens 1 2>/dev/null", bin);
	assert_int_not_equal(system(cmd), 0);
	remove(txt);
	free(want);
	free(tiny);
	df11_model_close(L.model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_nemo),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_reference_fixtures),
		cmocka_unit_test(test_df11_bit_exact_fixtures),
		cmocka_unit_test(test_synthetic_bit_exact_and_deterministic),
		cmocka_unit_test(test_bf16_emulation),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_tool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
