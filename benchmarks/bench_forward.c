/*
 * BF16 vs DF11 forward pass, side by side in one process: the model-card
 * table (weights, post-load and peak GiB, time to first token
 * for 512-, 1024- and 2048-token prompts, prefill tokens/s, decode tokens/s at
 * batch 1, 8 and 32 with 128 prompt + 128 new tokens per sequence).
 *
 *   bench_forward [--synth PRESET | MODEL] [--device cuda|cpu] [--layers N]
 *                 [--seed S] [--repeat R] [--warmup W] [--quick]
 *                 [--threads T] [--json FILE]
 *
 * --synth nemo-12b (the default) makes, in memory, the very checkpoint
 * `df11-synth --preset nemo-12b` writes (same generator, names, shapes and
 * seed; synth/synth_model.c) and encodes it here, so a GPU run spends no
 * time writing and reading 41 GB of files. MODEL (a checkpoint folder or a
 * .df11 container) is read through df11_model_* instead (CUDA only).
 *
 * Each mode loads its weights once and runs every point, the BF16 mode
 * first, then the DF11 mode, then (CUDA) BF16 with cuBLASLt for every
 * product, so each mode's memory figures are its own. BF16 and DF11 take
 * the default path: the fused decode + matrix-vector kernel for calls of
 * up to 32 rows (decode steps; the BF16 mode then is a hand-fused BF16
 * GEMV), decode then cuBLASLt for larger ones (prefill).
 * Before anything is timed, the two modes must give the same logits at
 * every position of a 16-token prompt and the same 16 greedy tokens, bit
 * for bit; every timed run must then generate the tokens of that point's
 * first run, and the DF11 mode the tokens of the BF16 mode.
 *
 * --device cpu runs the same program on the CPU reference forward pass
 * (sequences one after another, DF11 weights decoded on every read): it
 * checks this program's logic in CI (`--synth tiny --quick`); its times are
 * not the benchmark.
 *
 * Stdout: a Markdown table; stderr: progress. --json FILE: one JSON line
 * per point and mode with every number.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "df11.h"
#include "tools/timing.h"
#include "llm/forward.h"
#include "synth/synth.h"
#ifdef DF11_BENCH_CUDA
#include <cuda_runtime_api.h>

#include "llm/forward_cuda.h"
#include "df11_cuda.h"
#endif

#define MAX_REPEAT 100
#define MAX_BATCH 64

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_forward: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void fail(const char *what, df11_result r)
{
	const char *msg = df11_last_error();
	die("%s: %s", what, msg[0] ? msg : df11_strerror(r));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of host memory (%zu bytes)", n);
	return p;
}

/* ------------------------------------------------------------------------
 * Weights in memory: every tensor as BF16 words (plain) and df11-encoded
 * (enc), in two df11_weights_mem stores.
 * ---------------------------------------------------------------------- */

typedef struct synth_weights {
	df11_weights_mem *plain, *enc;
	uint64_t bf16_bytes, enc_bytes;
} synth_weights;

static df11_weights_mem *mem_new(int threads)
{
	df11_weights_mem *m = df11_weights_mem_new();
	if (!m)
		die("out of host memory");
	df11_result r = df11_weights_mem_set_threads(m, threads);
	if (r)
		fail("weights", r);
	return m;
}

/* The synthetic checkpoint of preset p, generated and encoded on
 * `threads` threads. */
static void make_synth(synth_weights *sw, const df11_synth_preset *p,
		       uint64_t layers, uint64_t seed, int threads)
{
	static df11_synth_tensor list[DF11_SYNTH_MAX_TENSORS];
	int n = df11_synth_tensors(p, layers, list);
	if (n < 0)
		die("--layers %llu: too many tensors", (unsigned long long)layers);
	sw->plain = mem_new(threads);
	sw->enc = mem_new(threads);
	uint64_t largest = 0;
	for (int i = 0; i < n; i++) {
		uint64_t ne = list[i].rows * (list[i].cols ? list[i].cols : 1);
		largest = ne > largest ? ne : largest;
	}
	uint16_t *buf = xmalloc(largest * 2);
	double gen = 0, enc = 0;
	for (int i = 0; i < n; i++) {
		const df11_synth_tensor *t = &list[i];
		uint64_t shape[2] = {t->rows, t->cols};
		int ndim = t->cols ? 2 : 1;
		double t0 = df11_now_s();
		df11_synth_tensor_data(t, seed, threads, buf);
		double t1 = df11_now_s();
		df11_result r = df11_weights_mem_add(sw->enc, t->name, ndim, shape,
						     buf, 1);
		double t2 = df11_now_s();
		if (!r)
			r = df11_weights_mem_add(sw->plain, t->name, ndim, shape, buf, 0);
		if (r)
			fail(t->name, r);
		gen += t1 - t0;
		enc += t2 - t1;
		df11_weights w;
		const void *data;
		size_t size;
		df11_weights_mem_provider(sw->enc, &w);
		if ((r = w.encoded(w.ctx, t->name, &data, &size)))
			fail(t->name, r);
		sw->bf16_bytes += t->rows * (t->cols ? t->cols : 1) * 2;
		sw->enc_bytes += size;
	}
	free(buf);
	fprintf(stderr, "bench_forward: synthetic %s, %llu layers: %.2f GB of BF16 "
		"made in %.1f s, encoded to %.2f GB (%.2f%%) in %.1f s, %d threads\n",
		p->name, (unsigned long long)layers, sw->bf16_bytes / 1e9, gen,
		sw->enc_bytes / 1e9, 100.0 * sw->enc_bytes / sw->bf16_bytes, enc,
		threads);
}

/* ------------------------------------------------------------------------
 * A forward pass of either device: B sequences of the same length.
 * ---------------------------------------------------------------------- */

/* BF16 and DF11 run the default path (the fused decode + matrix-vector
 * kernel for calls of up to 32 rows, decode then cuBLASLt above); the
 * third mode, CUDA only, is BF16 with cuBLASLt for every call, the
 * baseline the DF11 mode is held to. */
enum { MODE_BF16, MODE_DF11, MODE_BF16_GEMM, N_MODES };
static const char *const mode_name[] = {"bf16", "df11", "bf16-cublaslt"};

typedef struct runner {
	int cuda, mode, batch;
	const df11_llm_config *cfg;
	const df11_weights *w;
	int threads;
	df11_cpu_llm *cpu[MAX_BATCH];  /* CPU: one model per sequence */
#ifdef DF11_BENCH_CUDA
	df11_cuda_llm *gpu;
#endif
	float *last;                   /* CPU: [vocab] */
} runner;

static void cpu_free(runner *R)
{
	for (int b = 0; b < MAX_BATCH; b++) {
		df11_cpu_llm_free(R->cpu[b]);
		R->cpu[b] = NULL;
	}
}

/* Buffers for B sequences of up to max_tokens tokens per call and max_seq
 * positions. */
static void runner_shape(runner *R, int B, int max_seq, int max_tokens)
{
	if (B > MAX_BATCH)
		die("batch %d: at most %d", B, MAX_BATCH);
	R->batch = B;
#ifdef DF11_BENCH_CUDA
	if (R->cuda) {
		df11_result r;
		if (!R->gpu) {
			df11_cuda_llm_options o = {
				.mode = R->mode == MODE_DF11 ? DF11_CUDA_LLM_DF11
							     : DF11_CUDA_LLM_BF16,
				.batch = B, .max_seq = max_seq, .max_tokens = max_tokens,
				.gemm_only = R->mode == MODE_BF16_GEMM,
			};
			r = df11_cuda_llm_new(R->cfg, R->w, &o, &R->gpu);
		} else {
			r = df11_cuda_llm_reshape(R->gpu, B, max_seq, max_tokens);
		}
		if (r)
			fail("CUDA forward pass", r);
		return;
	}
#endif
	(void)max_tokens;
	cpu_free(R);
	for (int b = 0; b < B; b++) {
		df11_result r = df11_cpu_llm_new(R->cfg, R->w, max_seq, R->threads,
						 &R->cpu[b]);
		if (r)
			fail("CPU forward pass", r);
	}
}

static void runner_free(runner *R)
{
	cpu_free(R);
#ifdef DF11_BENCH_CUDA
	df11_cuda_llm_free(R->gpu);
	R->gpu = NULL;
#endif
}

/* n tokens of each sequence (tokens: [B x n]) from position 0 or from
 * where the last call stopped (reset first). all_logits (may be NULL):
 * [B x n x vocab]. next: the argmax of each sequence's last row, [B]. */
static void runner_forward(runner *R, const int32_t *tokens, int n, int reset,
			   float *all_logits, int32_t *next)
{
	const int V = R->cfg->vocab;
	df11_result r = DF11_OK;
#ifdef DF11_BENCH_CUDA
	if (R->cuda) {
		if (reset)
			df11_cuda_llm_reset(R->gpu);
		r = df11_cuda_llm_forward(R->gpu, tokens, n, all_logits != NULL,
					  all_logits, next);
		if (r)
			fail("forward", r);
		return;
	}
#endif
	for (int b = 0; b < R->batch && !r; b++) {
		if (reset)
			df11_cpu_llm_reset(R->cpu[b]);
		const int32_t *tk = tokens + (size_t)b * n;
		if (all_logits) {
			float *lg = all_logits + (size_t)b * n * V;
			r = df11_cpu_llm_forward(R->cpu[b], tk, n, 1, lg);
			next[b] = df11_argmax(lg + (size_t)(n - 1) * V, V);
		} else {
			r = df11_cpu_llm_forward(R->cpu[b], tk, n, 0, R->last);
			next[b] = df11_argmax(R->last, V);
		}
	}
	if (r)
		fail("forward", r);
}

/* ------------------------------------------------------------------------
 * Points.
 * ---------------------------------------------------------------------- */

/* What one point measures: B sequences of `prompt` tokens, then `gen`
 * greedy tokens each (the first from the prompt's pass). */
typedef struct point {
	const char *label;
	int batch, prompt, gen;
} point;

typedef struct result {
	int runs;
	double ttft_ms[MAX_REPEAT];    /* prompt in, first tokens out */
	double decode_ms[MAX_REPEAT];  /* the gen - 1 further steps */
	double ttft_p50, ttft_p95, decode_p50;
	double prefill_tok_s, decode_tok_s;
	int32_t *tokens;               /* [B x gen] of the first run */
	size_t mem_kv, mem_act, mem_peak;
} result;

/* n deterministic token ids in [3, vocab). */
static void prompt_tokens(int32_t *t, int n, uint64_t seed, int vocab)
{
	uint64_t x = seed;
	for (int i = 0; i < n; i++) {
		x = (x * 1103515245u + 12345u) % 2147483648u;
		t[i] = vocab > 3 ? 3 + (int32_t)((x / 16) % (uint64_t)(vocab - 3)) : 0;
	}
}

/* warmup + repeat runs of point P; every run must give the first run's
 * tokens. */
static void run_point(runner *R, const point *P, int warmup, int repeat,
		      result *res)
{
	int B = P->batch, T = P->prompt, G = P->gen;
	memset(res, 0, sizeof *res);
	runner_shape(R, B, T + G, T);
	int32_t *toks = xmalloc((size_t)B * T * sizeof *toks);
	int32_t next[MAX_BATCH];
	res->tokens = xmalloc((size_t)B * G * sizeof *res->tokens);
	int32_t *got = xmalloc((size_t)B * G * sizeof *got);
	for (int b = 0; b < B; b++)
		prompt_tokens(toks + (size_t)b * T, T, 1000u * (unsigned)T + (unsigned)b,
			      R->cfg->vocab);
	for (int it = 0; it < warmup + repeat; it++) {
		double t0 = df11_now_s();
		runner_forward(R, toks, T, 1, NULL, next);
		double t1 = df11_now_s();
		for (int i = 0; i < G; i++) {
			for (int b = 0; b < B; b++)
				got[(size_t)b * G + i] = next[b];
			if (i + 1 < G)
				runner_forward(R, next, 1, 0, NULL, next);
		}
		double t2 = df11_now_s();
		if (it == 0)
			memcpy(res->tokens, got, (size_t)B * G * sizeof *got);
		else if (memcmp(res->tokens, got, (size_t)B * G * sizeof *got))
			die("%s (%s): run %d generated other tokens than run 0: the "
			    "forward pass is not deterministic", P->label,
			    mode_name[R->mode], it);
		if (it >= warmup) {
			res->ttft_ms[res->runs] = (t1 - t0) * 1e3;
			res->decode_ms[res->runs] = (t2 - t1) * 1e3;
			res->runs++;
		}
	}
	res->ttft_p50 = df11_percentile(res->ttft_ms, res->runs, 50);
	res->ttft_p95 = df11_percentile(res->ttft_ms, res->runs, 95);
	res->decode_p50 = df11_percentile(res->decode_ms, res->runs, 50);
	res->prefill_tok_s = (double)B * T / res->ttft_p50 * 1e3;
	res->decode_tok_s = G > 1 ? (double)B * (G - 1) / res->decode_p50 * 1e3 : 0;
#ifdef DF11_BENCH_CUDA
	if (R->cuda) {
		df11_cuda_llm_memory mem;
		df11_cuda_llm_get_memory(R->gpu, &mem);
		res->mem_kv = mem.kv_cache;
		res->mem_act = mem.activations;
		res->mem_peak = mem.peak;
	}
#endif
	free(toks);
	free(got);
}

/* The bit-exactness check: prompt logits at every position and greedy
 * tokens of a 16-token prompt. */
typedef struct check {
	float *logits;   /* [n x vocab] */
	int32_t tokens[16];
} check;

static void run_check(runner *R, check *c)
{
	const int n = 16, G = 16;
	int32_t toks[16], next[MAX_BATCH];
	runner_shape(R, 1, n + G, n);
	prompt_tokens(toks, n, 7, R->cfg->vocab);
	c->logits = xmalloc((size_t)n * R->cfg->vocab * sizeof(float));
	runner_forward(R, toks, n, 1, c->logits, next);
	for (int i = 0; i < G; i++) {
		c->tokens[i] = next[0];
		if (i + 1 < G)
			runner_forward(R, next, 1, 0, NULL, next);
	}
}

/* ------------------------------------------------------------------------ */

typedef struct mode_run {
	check chk;
	result res[8];
	size_t weights, scratch, post_load, peak;
	double load_s;
} mode_run;

static void print_json(FILE *f, const char *mode, const point *P,
		       const result *r)
{
	fprintf(f, "{\"mode\": \"%s\", \"label\": \"%s\", \"batch\": %d, "
		"\"prompt\": %d, \"generate\": %d, \"runs\": %d, "
		"\"ttft_ms_p50\": %.3f, \"ttft_ms_p95\": %.3f, "
		"\"decode_ms_p50\": %.3f, \"prefill_tok_s\": %.1f, "
		"\"decode_tok_s\": %.2f, \"kv_cache\": %zu, \"activations\": %zu, "
		"\"peak\": %zu, \"ttft_ms\": [", mode, P->label, P->batch, P->prompt,
		P->gen, r->runs, r->ttft_p50, r->ttft_p95, r->decode_p50,
		r->prefill_tok_s, r->decode_tok_s, r->mem_kv, r->mem_act,
		r->mem_peak);
	for (int i = 0; i < r->runs; i++)
		fprintf(f, "%s%.3f", i ? ", " : "", r->ttft_ms[i]);
	fprintf(f, "], \"decode_ms\": [");
	for (int i = 0; i < r->runs; i++)
		fprintf(f, "%s%.3f", i ? ", " : "", r->decode_ms[i]);
	fprintf(f, "]}\n");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_forward [--synth PRESET | MODEL] [--device cuda|cpu]\n"
		"                     [--layers N] [--seed S] [--repeat R] [--warmup W]\n"
		"                     [--quick] [--threads T] [--json FILE]\n");
	exit(2);
}

static long num(const char *s, const char *opt, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die("%s: \"%s\" is not an integer in [%ld, %ld]", opt, s, lo, hi);
	return v;
}

int main(int argc, char **argv)
{
	const char *synth = NULL, *model_path = NULL, *json_path = NULL;
	int cuda = 1, quick = 0, repeat = 5, warmup = 1, threads = 0;
	long layers = -1;
	uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(s, "--quick")) {
			quick = 1;
		} else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			usage();
		} else if (s[0] == '-') {
			if (!v)
				usage();
			i++;
			if (!strcmp(s, "--synth"))
				synth = v;
			else if (!strcmp(s, "--device")) {
				if (strcmp(v, "cuda") && strcmp(v, "cpu"))
					usage();
				cuda = !strcmp(v, "cuda");
			} else if (!strcmp(s, "--layers"))
				layers = num(v, s, 0, 400);
			else if (!strcmp(s, "--seed"))
				seed = (uint64_t)num(v, s, 0, 1L << 62);
			else if (!strcmp(s, "--repeat"))
				repeat = (int)num(v, s, 1, MAX_REPEAT / 2);
			else if (!strcmp(s, "--warmup"))
				warmup = (int)num(v, s, 0, MAX_REPEAT / 2);
			else if (!strcmp(s, "--threads"))
				threads = (int)num(v, s, 1, 256);
			else if (!strcmp(s, "--json"))
				json_path = v;
			else
				usage();
		} else if (!model_path) {
			model_path = s;
		} else {
			usage();
		}
	}
	if (synth && model_path)
		usage();
	if (!synth && !model_path)
		synth = "nemo-12b";
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 && n <= 256 ? (int)n : 1;
	}
#ifndef DF11_BENCH_CUDA
	if (cuda)
		die("--device cuda: this build has no CUDA forward pass (configure "
		    "with nvcc); --device cpu runs the CPU reference");
#else
	if (cuda && df11_cuda_available() != DF11_OK)
		die("no usable GPU: %s", df11_last_error());
#endif
	if (!cuda && !synth)
		die("--device cpu needs --synth (it compares BF16 reads with DF11 "
		    "decodes of the same in-memory weights)");

	/* The weights and the config. */
	/* w[mode]: synthetic weights as BF16 words for the BF16 mode and
	 * df11-encoded for the DF11 mode; a checkpoint serves both. */
	synth_weights sw;
	memset(&sw, 0, sizeof sw);
	df11_model *model = NULL;
	df11_weights w[2];
	df11_llm_config cfg;
	df11_result r;
	const char *what;
	if (synth) {
		const df11_synth_preset *p = df11_synth_preset_find(synth);
		if (!p)
			die("--synth %s: unknown preset (tiny, small, nemo-12b)", synth);
		uint64_t nl = layers >= 0 ? (uint64_t)layers : p->layers;
		make_synth(&sw, p, nl, seed, threads);
		char *cj = df11_synth_config_json(p, nl);
		if (!cj)
			die("out of host memory");
		if ((r = df11_llm_config_parse(cj, strlen(cj), &cfg)))
			fail("config", r);
		free(cj);
		df11_weights_mem_provider(sw.plain, &w[MODE_BF16]);
		df11_weights_mem_provider(sw.enc, &w[MODE_DF11]);
		what = synth;
	} else {
		if ((r = df11_model_open(model_path, &model)))
			fail(model_path, r);
		const void *cj;
		size_t cjn;
		if ((r = df11_model_file(model, "config.json", &cj, &cjn)))
			fail("config.json", r);
		if ((r = df11_llm_config_parse(cj, cjn, &cfg)))
			fail(model_path, r);
		df11_model_set_threads(model, threads);
		df11_weights_from_model(model, &w[MODE_BF16]);
		w[MODE_DF11] = w[MODE_BF16];
		what = model_path;
	}

	/* The points: the model card's shapes, or small ones with --quick. */
	point pts[8];
	int np = 0;
	int t1 = quick ? 32 : 512, t2 = quick ? 64 : 2048;
	int dp = quick ? 16 : 128, dg = quick ? 8 : 128;
	pts[np++] = (point){"ttft512", 1, t1, 1};
	pts[np++] = (point){"ttft1024", 1, quick ? 48 : 1024, 1};
	pts[np++] = (point){"ttft2048", 1, t2, 1};
	const int nt = np; /* the TTFT points; the decode points follow */
	pts[np++] = (point){"decode1", 1, dp, dg};
	pts[np++] = (point){"decode8", quick ? 2 : 8, dp, dg};
	pts[np++] = (point){"decode32", quick ? 4 : 32, dp, dg};
	if (quick) {
		pts[0].label = "ttft-short";
		pts[1].label = "ttft-mid";
		pts[2].label = "ttft-long";
		pts[nt + 1].label = "decode2";
		pts[nt + 2].label = "decode4";
	}
	if (t2 + 1 > cfg.max_pos)
		die("the %d-token prompt exceeds max_position_embeddings %d", t2,
		    cfg.max_pos);

	FILE *jf = NULL;
	if (json_path && !(jf = fopen(json_path, "w")))
		die("%s: %s", json_path, strerror(errno));

	static mode_run mr[N_MODES];
	for (int mode = MODE_BF16; mode < (cuda ? N_MODES : MODE_BF16_GEMM); mode++) {
		runner R;
		memset(&R, 0, sizeof R);
		R.cuda = cuda;
		R.mode = mode;
		R.cfg = &cfg;
		R.threads = threads;
		R.last = xmalloc((size_t)cfg.vocab * sizeof(float));
		R.w = &w[mode == MODE_DF11 ? MODE_DF11 : MODE_BF16];
		fprintf(stderr, "bench_forward: %s mode: loading\n", mode_name[mode]);
		double l0 = df11_now_s();
		run_check(&R, &mr[mode].chk);
		mr[mode].load_s = df11_now_s() - l0;
#ifdef DF11_BENCH_CUDA
		if (cuda) {
			df11_cuda_llm_memory mem;
			df11_cuda_llm_get_memory(R.gpu, &mem);
			mr[mode].weights = mem.weights;
			mr[mode].scratch = mem.scratch;
			mr[mode].post_load = mem.post_load;
		}
#endif
		if (mode == MODE_DF11) {
			size_t nb = (size_t)16 * cfg.vocab * sizeof(float);
			if (memcmp(mr[0].chk.logits, mr[1].chk.logits, nb))
				die("DF11 logits differ from BF16 logits");
			if (memcmp(mr[0].chk.tokens, mr[1].chk.tokens,
				   sizeof mr[0].chk.tokens))
				die("DF11 tokens differ from BF16 tokens");
			fprintf(stderr, "bench_forward: check: DF11 logits (16 prompt "
				"positions) and 16 greedy tokens identical to BF16, bit "
				"for bit\n");
		}
		for (int i = 0; i < np; i++) {
			fprintf(stderr, "bench_forward: %s mode: %s (batch %d, %d + %d "
				"tokens)\n", mode_name[mode], pts[i].label, pts[i].batch,
				pts[i].prompt, pts[i].gen);
			result *res = &mr[mode].res[i];
			run_point(&R, &pts[i], warmup, repeat, res);
			if (mode == MODE_DF11 &&
			    memcmp(res->tokens, mr[0].res[i].tokens,
				   (size_t)pts[i].batch * pts[i].gen * sizeof(int32_t)))
				die("%s: DF11 generated other tokens than BF16", pts[i].label);
			if (jf)
				print_json(jf, mode_name[mode], &pts[i], res);
			if (res->mem_peak > mr[mode].peak)
				mr[mode].peak = res->mem_peak;
		}
		runner_free(&R);
		free(R.last);
	}
	if (jf && fclose(jf))
		die("%s: %s", json_path, strerror(errno));

	/* The table. */
	const double G = 1024.0 * 1024 * 1024;
	char dev[512] = "CPU reference (sequences one after another)";
#ifdef DF11_BENCH_CUDA
	if (cuda) {
		struct cudaDeviceProp prop;
		int d = 0, drv = 0;
		cudaGetDevice(&d);
		cudaDriverGetVersion(&drv);
		if (cudaGetDeviceProperties(&prop, d) == cudaSuccess)
			snprintf(dev, sizeof dev, "%.256s, %d SMs, %.0f GiB, driver %d.%d",
				 prop.name, prop.multiProcessorCount,
				 prop.totalGlobalMem / G, drv / 1000, drv % 1000 / 10);
	}
#endif
	df11_llm_layout lay;
	df11_llm_layout_plan(&cfg, &lay);
	double layer_bytes = 0;
	for (int k = 0; k < DF11_W_COUNT; k++) {
		uint64_t rows, cols;
		df11_llm_layer_shape(&cfg, k, &rows, &cols);
		layer_bytes += 2.0 * rows * (cols ? cols : 1);
	}
	printf("%s (%s), %s; median of %d timed runs after %d warm-up%s\n\n",
	       what, synth ? "synthetic, in memory" : "from disk", dev, repeat,
	       warmup, warmup == 1 ? "" : "s");
	printf("| %s | BF16 | DF11 | DF11 / BF16 | target |\n", what);
	printf("| --- | ---: | ---: | ---: | --- |\n");
	/* BF16 and DF11 columns: the default path (fused up to 32 rows). */
	if (cuda) {
		printf("| weights GiB | %.2f | %.2f | %.3f | <= 0.68 |\n",
		       mr[0].weights / G, mr[1].weights / G,
		       (double)mr[1].weights / mr[0].weights);
		printf("| post-load GiB | %.2f | %.2f | %.3f | |\n", mr[0].post_load / G,
		       mr[1].post_load / G, (double)mr[1].post_load / mr[0].post_load);
		printf("| peak GiB | %.2f | %.2f | %.3f | |\n", mr[0].peak / G,
		       mr[1].peak / G, (double)mr[1].peak / mr[0].peak);
		printf("| decode scratch GiB | 0 | %.3f | %.2f layers | <= 2 layers |\n",
		       mr[1].scratch / G, mr[1].scratch / layer_bytes);
	} else {
		printf("| weights GiB (host) | %.4f | %.4f | %.3f | <= 0.68 |\n",
		       sw.bf16_bytes / G, sw.enc_bytes / G,
		       (double)sw.enc_bytes / (double)sw.bf16_bytes);
	}
	for (int i = 0; i < nt; i++) {
		const result *b = &mr[0].res[i], *d = &mr[1].res[i];
		printf("| TTFT p50 / p95 ms, %d-token prompt | %.1f / %.1f | %.1f / %.1f "
		       "| %.3f | |\n", pts[i].prompt, b->ttft_p50, b->ttft_p95,
		       d->ttft_p50, d->ttft_p95, d->ttft_p50 / b->ttft_p50);
	}
	printf("| prefill tokens/s (%d-token prompt) | %.0f | %.0f | %.3f (time) "
	       "| |\n", pts[2].prompt, mr[0].res[2].prefill_tok_s,
	       mr[1].res[2].prefill_tok_s,
	       mr[0].res[2].prefill_tok_s / mr[1].res[2].prefill_tok_s);
	for (int i = nt; i < np; i++) {
		const result *b = &mr[0].res[i], *d = &mr[1].res[i];
		printf("| decode tokens/s, batch %d | %.1f | %.1f | %.3f (time/token) "
		       "| |\n", pts[i].batch, b->decode_tok_s, d->decode_tok_s,
		       b->decode_tok_s / d->decode_tok_s);
	}
	if (cuda) {
		/* Against BF16 with cuBLASLt for every product. */
		const result *g = mr[MODE_BF16_GEMM].res, *d = mr[MODE_DF11].res;
		/* Prefill time: the TTFT points, and the 128-token prompts of
		 * the decode points at batch 1. */
		const int pre[] = {nt, 0, 1, 2};
		for (int j = 0; j < 4; j++) {
			const int i = pre[j];
			printf("| prefill ms (TTFT p50), %d-token prompt, BF16 cuBLASLt "
			       "| %.1f | %.1f | %.3f | <= 1.05 |\n", pts[i].prompt,
			       g[i].ttft_p50, d[i].ttft_p50, d[i].ttft_p50 / g[i].ttft_p50);
		}
		for (int i = nt; i < np; i++)
			printf("| decode tokens/s, batch %d, BF16 cuBLASLt | %.1f | %.1f "
			       "| %.3f (time/token) | %s |\n", pts[i].batch,
			       g[i].decode_tok_s, d[i].decode_tok_s,
			       g[i].decode_tok_s / d[i].decode_tok_s,
			       pts[i].batch == 1 ? "<= 1.0" : "<= 1.1");
		printf("| TTFT p95 ms, batch %d, BF16 cuBLASLt | %.1f | %.1f | %.3f | |\n",
		       pts[np - 1].batch, g[np - 1].ttft_p95, d[np - 1].ttft_p95,
		       d[np - 1].ttft_p95 / g[np - 1].ttft_p95);
	}
	printf("\nDecode: %d prompt + %d new tokens per sequence, tokens/s over the "
	       "%d steps after the first token. Load (check included): BF16 %.1f s, "
	       "DF11 %.1f s. Before timing, DF11 and BF16 gave bit-identical logits "
	       "and tokens; every point's tokens matched across modes and runs.\n",
	       dp, dg, dg - 1, mr[0].load_s, mr[1].load_s);
	for (int m = 0; m < N_MODES; m++) {
		free(mr[m].chk.logits);
		for (int i = 0; i < np; i++)
			free(mr[m].res[i].tokens);
	}
	df11_weights_mem_free(sw.plain);
	df11_weights_mem_free(sw.enc);
	df11_model_close(model);
	return 0;
}
