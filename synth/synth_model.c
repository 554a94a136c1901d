/*
 * Synthetic checkpoints with the structure of Mistral-Nemo-Instruct-2407:
 * presets, the tensor list in state_dict order, each tensor's words and
 * config.json. df11-synth writes them to disk; bench_forward makes the same
 * words in memory.
 *
 * Each tensor's seed is mix(seed, hash(name)); a matrix is made in blocks
 * of CHUNK_ROWS rows, block c seeded with mix(tensor seed, c), so the words
 * do not depend on the thread count.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parallel.h"
#include "synth/synth.h"

#define CHUNK_ROWS 64

static const df11_synth_preset presets[] = {
	{"nemo-12b", 5120, 14336, 40, 32, 8, 128, 131072, 1024000},
	{"tiny", 64, 160, 2, 4, 2, 16, 256, 4096},
	/* The same structure at ~50 MB per layer: tests and benchmarks. */
	{"small", 1024, 3584, 8, 8, 2, 128, 32768, 32768},
};

const df11_synth_preset *df11_synth_preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
		if (!strcmp(name, presets[i].name))
			return &presets[i];
	return NULL;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int add(df11_synth_tensor *t, int *n, const char *name, uint64_t rows,
	       uint64_t cols)
{
	if (*n >= DF11_SYNTH_MAX_TENSORS)
		return -1;
	df11_synth_tensor *s = &t[(*n)++];
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->rows = rows;
	s->cols = cols;
	return 0;
}

int df11_synth_tensors(const df11_synth_preset *p, uint64_t layers,
		       df11_synth_tensor *t)
{
	int n = 0;
	char nm[96];
	uint64_t q = p->heads * p->head_dim, kv = p->kv_heads * p->head_dim;
	add(t, &n, "model.embed_tokens.weight", p->vocab, p->hidden);
	for (uint64_t l = 0; l < layers; l++) {
		struct { const char *s; uint64_t r, c; } parts[] = {
			{"self_attn.q_proj.weight", q, p->hidden},
			{"self_attn.k_proj.weight", kv, p->hidden},
			{"self_attn.v_proj.weight", kv, p->hidden},
			{"self_attn.o_proj.weight", p->hidden, q},
			{"mlp.gate_proj.weight", p->inter, p->hidden},
			{"mlp.up_proj.weight", p->inter, p->hidden},
			{"mlp.down_proj.weight", p->hidden, p->inter},
			{"input_layernorm.weight", p->hidden, 0},
			{"post_attention_layernorm.weight", p->hidden, 0},
		};
		for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
			snprintf(nm, sizeof nm, "model.layers.%" PRIu64 ".%s", l,
				 parts[k].s);
			if (add(t, &n, nm, parts[k].r, parts[k].c))
				return -1;
		}
	}
	if (add(t, &n, "model.norm.weight", p->hidden, 0) ||
	    add(t, &n, "lm_head.weight", p->vocab, p->hidden))
		return -1;
	return n;
}

typedef struct gen_job {
	const df11_synth_tensor *t;
	uint64_t seed;
	uint16_t *out;
	int threads;
} gen_job;

static void gen_worker(void *arg, int i)
{
	const gen_job *g = arg;
	const df11_synth_tensor *t = g->t;
	uint64_t chunks = (t->rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
	for (uint64_t c = (uint64_t)i; c < chunks; c += (uint64_t)g->threads) {
		uint64_t r0 = c * CHUNK_ROWS;
		uint64_t nr = t->rows - r0 < CHUNK_ROWS ? t->rows - r0 : CHUNK_ROWS;
		df11_synth_matrix(mix(g->seed, c), nr, t->cols, 0.02f,
				  g->out + r0 * t->cols);
	}
}

void df11_synth_tensor_data(const df11_synth_tensor *t, uint64_t seed,
			    int threads, uint16_t *out)
{
	uint64_t s = mix(seed, name_hash(t->name));
	if (!t->cols) {
		df11_synth_norm(s, t->rows, 1.0f, out);
		return;
	}
	gen_job g = {t, s, out, threads > 0 ? threads : 1};
	df11_parallel_run(g.threads, gen_worker, &g);
}

char *df11_synth_config_json(const df11_synth_preset *p, uint64_t layers)
{
	char *s = malloc(2048);
	if (!s)
		return NULL;
	snprintf(s, 2048,
		 "{\n"
		 "  \"architectures\": [\n    \"MistralForCausalLM\"\n  ],\n"
		 "  \"attention_dropout\": 0.0,\n"
		 "  \"bos_token_id\": 1,\n"
		 "  \"eos_token_id\": 2,\n"
		 "  \"head_dim\": %" PRIu64 ",\n"
		 "  \"hidden_act\": \"silu\",\n"
		 "  \"hidden_size\": %" PRIu64 ",\n"
		 "  \"initializer_range\": 0.02,\n"
		 "  \"intermediate_size\": %" PRIu64 ",\n"
		 "  \"max_position_embeddings\": %" PRIu64 ",\n"
		 "  \"model_type\": \"mistral\",\n"
		 "  \"num_attention_heads\": %" PRIu64 ",\n"
		 "  \"num_hidden_layers\": %" PRIu64 ",\n"
		 "  \"num_key_value_heads\": %" PRIu64 ",\n"
		 "  \"rms_norm_eps\": 1e-05,\n"
		 "  \"rope_theta\": 1000000.0,\n"
		 "  \"sliding_window\": null,\n"
		 "  \"tie_word_embeddings\": false,\n"
		 "  \"torch_dtype\": \"bfloat16\",\n"
		 "  \"transformers_version\": \"4.42.0.dev0\",\n"
		 "  \"use_cache\": true,\n"
		 "  \"vocab_size\": %" PRIu64 "\n"
		 "}\n",
		 p->head_dim, p->hidden, p->inter, p->max_pos, p->heads, layers,
		 p->kv_heads, p->vocab);
	return s;
}
