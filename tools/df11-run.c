/*
 * df11-run: a minimal Llama / Mistral forward pass over a checkpoint folder,
 * a .safetensors file or a .df11 container, for checking and timing.
 *
 *   df11-run MODEL [--device cpu|cuda] --tokens 1,2,3 [--generate N]
 *            [--batch B] [--dump-logits FILE] [--weights df11|bf16]
 *            [--threads T] [--stats] [--repeat R] [--warmup W]
 *
 * Prints the N greedily generated token ids of each sequence, one line per
 * sequence (comma-separated). --dump-logits writes float32 little-endian
 * logits [prompt tokens x vocab] of the first sequence, one row per prompt
 * position. --stats prints timings and memory on stderr as JSON lines:
 * with --repeat R (after W untimed --warmup runs) the whole prompt +
 * generation runs R times, the p50/p95 time to first token and median
 * decode rate are reported, and every run must generate the same tokens.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "df11.h"
#include "tools/timing.h"
#include "llm/forward.h"
#ifdef DF11_RUN_CUDA
#include "llm/forward_cuda.h"
#endif

#define MAX_PROMPT (1 << 20)

static const char *prog = "df11-run";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s MODEL [--device cpu|cuda] --tokens 1,2,3 [--generate N]\n"
		"          [--batch B] [--dump-logits FILE] [--weights df11|bf16]\n"
		"          [--threads T] [--stats] [--repeat R] [--warmup W]\n", prog);
	exit(2);
}

static void die(const char *what, df11_result r)
{
	const char *msg = df11_last_error();
	fprintf(stderr, "%s: %s: %s\n", prog, what, msg[0] ? msg : df11_strerror(r));
	exit(1);
}

static long parse_long(const char *s, const char *opt, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s: \"%s\" is not an integer in [%ld, %ld]\n",
			prog, opt, s, lo, hi);
		exit(2);
	}
	return v;
}

/* "1,2,3" -> tokens; every id checked against the vocabulary later. */
static int32_t *parse_tokens(const char *s, int *n_ret)
{
	int cap = 16, n = 0;
	int32_t *t = malloc((size_t)cap * sizeof *t);
	const char *p = s;
	while (t) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
			fprintf(stderr, "%s: --tokens: \"%s\" is not a comma-separated "
				"list of token ids\n", prog, s);
			exit(2);
		}
		if (n == cap) {
			if (cap >= MAX_PROMPT) {
				fprintf(stderr, "%s: --tokens: more than %d tokens\n",
					prog, MAX_PROMPT);
				exit(2);
			}
			cap *= 2;
			int32_t *g = realloc(t, (size_t)cap * sizeof *t);
			if (!g)
				free(t);
			t = g;
			if (!t)
				break;
		}
		t[n++] = (int32_t)v;
		if (!*end)
			break;
		p = end + 1;
	}
	if (!t) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	*n_ret = n;
	return t;
}

/* Writes rows x vocab floats to path through a temporary name, so a failed
 * run leaves no partial file. */
static void dump_logits(const char *path, const float *logits, size_t n)
{
	size_t len = strlen(path) + 32;
	char *tmp = malloc(len);
	if (!tmp) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	int ok = f != NULL;
	/* Little-endian on every machine this runs on (x86-64, aarch64). */
	if (ok)
		ok = fwrite(logits, sizeof(float), n, f) == n;
	if (f && fclose(f) != 0)
		ok = 0;
	if (ok && rename(tmp, path) != 0)
		ok = 0;
	if (!ok) {
		int e = errno;
		remove(tmp);
		fprintf(stderr, "%s: --dump-logits %s: %s\n", prog, path, strerror(e));
		exit(1);
	}
	free(tmp);
}

typedef struct run_args {
	const char *model, *dump;
	int cuda, generate, batch, threads, stats, bf16, repeat, warmup;
	int32_t *prompt;
	int n_prompt;
} run_args;

/* Timings of the timed runs (--repeat), after --warmup untimed ones. */
#define MAX_REPEAT 1000
typedef struct run_times {
	int n;
	double ttft_ms[MAX_REPEAT];   /* prompt in, first token out */
	double decode_ms[MAX_REPEAT]; /* the generate - 1 further steps */
	int decode_steps;             /* per sequence and run */
} run_times;

static void oom(void)
{
	fprintf(stderr, "%s: out of memory\n", prog);
	exit(1);
}

/* Run `it` generated `got`; the first run's tokens are the output, and
 * every later run must reproduce them exactly. */
static void check_repeat(int it, int32_t *gen, const int32_t *got, size_t n)
{
	if (it == 0)
		memcpy(gen, got, n * sizeof *gen);
	else if (memcmp(gen, got, n * sizeof *gen) != 0) {
		fprintf(stderr, "%s: run %d generated other tokens than run 0: "
			"the forward pass is not deterministic\n", prog, it);
		exit(1);
	}
}

static void record(const run_args *a, run_times *tm, int it, double ttft,
		   double dec)
{
	if (it < a->warmup || tm->n >= MAX_REPEAT)
		return;
	tm->ttft_ms[tm->n] = ttft;
	tm->decode_ms[tm->n] = dec;
	tm->n++;
}

/* CPU: the B sequences run one after another through one model. */
static void run_cpu(const run_args *a, const df11_llm_config *cfg,
		    const df11_weights *w, float *prompt_logits, int32_t *gen,
		    run_times *tm)
{
	int V = cfg->vocab, G = a->generate, max_seq = a->n_prompt + (G > 0 ? G : 1);
	df11_cpu_llm *m;
	df11_result r = df11_cpu_llm_new(cfg, w, max_seq, a->threads, &m);
	if (r)
		die("CPU forward pass", r);
	float *last = malloc((size_t)V * sizeof(float));
	int32_t *got = malloc(((size_t)a->batch * G + 1) * sizeof *got);
	if (!last || !got)
		oom();
	tm->decode_steps = G > 1 ? G - 1 : 0;
	for (int it = 0; it < a->warmup + a->repeat; it++) {
		double ttft = 0, dec = 0;
		for (int b = 0; b < a->batch; b++) {
			df11_cpu_llm_reset(m);
			double t0 = df11_now_ms();
			if (it == 0 && b == 0 && prompt_logits) {
				r = df11_cpu_llm_forward(m, a->prompt, a->n_prompt, 1,
							 prompt_logits);
				if (!r)
					memcpy(last, prompt_logits + (size_t)(a->n_prompt - 1) * V,
					       (size_t)V * sizeof(float));
			} else {
				r = df11_cpu_llm_forward(m, a->prompt, a->n_prompt, 0, last);
			}
			if (r)
				die("forward (prompt)", r);
			double t1 = df11_now_ms();
			ttft += t1 - t0;
			for (int i = 0; i < G; i++) {
				int32_t next = df11_argmax(last, V);
				got[(size_t)b * G + i] = next;
				if (i + 1 == G)
					break;
				if ((r = df11_cpu_llm_forward(m, &next, 1, 0, last)))
					die("forward (decode)", r);
			}
			dec += df11_now_ms() - t1;
		}
		check_repeat(it, gen, got, (size_t)a->batch * G);
		record(a, tm, it, ttft, dec);
	}
	free(got);
	free(last);
	df11_cpu_llm_free(m);
}

#ifdef DF11_RUN_CUDA
static void run_cuda(const run_args *a, const df11_llm_config *cfg,
		     const df11_weights *w, float *prompt_logits, int32_t *gen,
		     run_times *tm)
{
	int B = a->batch, T = a->n_prompt, V = cfg->vocab, G = a->generate;
	df11_cuda_llm_options opt = {
		.mode = a->bf16 ? DF11_CUDA_LLM_BF16 : DF11_CUDA_LLM_DF11,
		.batch = B,
		.max_seq = T + (G > 0 ? G : 1),
		.max_tokens = T,
	};
	df11_cuda_llm *m;
	df11_result r = df11_cuda_llm_new(cfg, w, &opt, &m);
	if (r)
		die("CUDA forward pass", r);
	int32_t *toks = malloc((size_t)B * (size_t)T * sizeof *toks);
	int32_t *next = malloc((size_t)B * sizeof *next);
	int32_t *got = malloc(((size_t)B * G + 1) * sizeof *got);
	/* All logits of all sequences when dumping; sequence 0 is written. */
	float *all = prompt_logits ? malloc((size_t)B * T * V * sizeof(float)) : NULL;
	if (!toks || !next || !got || (prompt_logits && !all))
		oom();
	for (int b = 0; b < B; b++)
		memcpy(toks + (size_t)b * T, a->prompt, (size_t)T * sizeof *toks);
	tm->decode_steps = G > 1 ? G - 1 : 0;
	for (int it = 0; it < a->warmup + a->repeat; it++) {
		df11_cuda_llm_reset(m);
		float *lg = it == 0 ? all : NULL;
		double t0 = df11_now_ms();
		if ((r = df11_cuda_llm_forward(m, toks, T, lg != NULL, lg, next)))
			die("forward (prompt)", r);
		double t1 = df11_now_ms();
		for (int i = 0; i < G; i++) {
			for (int b = 0; b < B; b++)
				got[(size_t)b * G + i] = next[b];
			if (i + 1 == G)
				break;
			if ((r = df11_cuda_llm_forward(m, next, 1, 0, NULL, next)))
				die("forward (decode)", r);
		}
		double t2 = df11_now_ms();
		check_repeat(it, gen, got, (size_t)B * G);
		record(a, tm, it, t1 - t0, t2 - t1);
	}
	if (all)
		memcpy(prompt_logits, all, (size_t)T * V * sizeof(float));
	if (a->stats) {
		df11_cuda_llm_memory mem;
		df11_cuda_llm_get_memory(m, &mem);
		fprintf(stderr, "{\"memory\": {\"weights\": %zu, \"scratch\": %zu, "
			"\"kv_cache\": %zu, \"activations\": %zu, \"post_load\": %zu, "
			"\"peak\": %zu}}\n", mem.weights, mem.scratch, mem.kv_cache,
			mem.activations, mem.post_load, mem.peak);
	}
	free(all);
	free(toks);
	free(next);
	free(got);
	df11_cuda_llm_free(m);
}
#endif

int main(int argc, char **argv)
{
	run_args a = {.batch = 1, .threads = 0, .repeat = 1};
	const char *device = "cpu", *tokens = NULL;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			usage();
		} else if (!strcmp(s, "--stats")) {
			a.stats = 1;
		} else if (s[0] == '-' && s[1] == '-') {
			if (!v)
				usage();
			i++;
			if (!strcmp(s, "--device"))
				device = v;
			else if (!strcmp(s, "--tokens"))
				tokens = v;
			else if (!strcmp(s, "--generate"))
				a.generate = (int)parse_long(v, s, 0, 1 << 20);
			else if (!strcmp(s, "--batch"))
				a.batch = (int)parse_long(v, s, 1, 4096);
			else if (!strcmp(s, "--repeat"))
				a.repeat = (int)parse_long(v, s, 1, MAX_REPEAT);
			else if (!strcmp(s, "--warmup"))
				a.warmup = (int)parse_long(v, s, 0, 100);
			else if (!strcmp(s, "--threads"))
				a.threads = (int)parse_long(v, s, 1, 1024);
			else if (!strcmp(s, "--dump-logits"))
				a.dump = v;
			else if (!strcmp(s, "--weights")) {
				if (strcmp(v, "df11") && strcmp(v, "bf16"))
					usage();
				/* CUDA only: the CPU reads what the checkpoint
				 * holds (a .df11 decoded as it goes). */
				a.bf16 = !strcmp(v, "bf16");
			} else
				usage();
		} else if (!a.model) {
			a.model = s;
		} else {
			usage();
		}
	}
	if (!a.model || !tokens)
		usage();
	if (!strcmp(device, "cuda"))
		a.cuda = 1;
	else if (strcmp(device, "cpu"))
		usage();
	if (a.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		a.threads = n > 0 && n < 64 ? (int)n : 1;
	}
	a.prompt = parse_tokens(tokens, &a.n_prompt);
	if ((long)a.n_prompt + a.generate > (1 << 24)) {
		fprintf(stderr, "%s: prompt plus --generate is too long\n", prog);
		return 2;
	}

	df11_model *model;
	df11_result r = df11_model_open(a.model, &model);
	if (r)
		die(a.model, r);
	const void *cj;
	size_t cj_size;
	if ((r = df11_model_file(model, "config.json", &cj, &cj_size)))
		die("config.json", r);
	df11_llm_config cfg;
	if ((r = df11_llm_config_parse(cj, cj_size, &cfg)))
		die(a.model, r);
	df11_model_set_threads(model, a.threads);
	df11_weights w;
	df11_weights_from_model(model, &w);
	for (int i = 0; i < a.n_prompt; i++)
		if (a.prompt[i] >= cfg.vocab) {
			fprintf(stderr, "%s: --tokens: id %d is outside the vocabulary "
				"[0, %d)\n", prog, a.prompt[i], cfg.vocab);
			return 2;
		}

	size_t V = (size_t)cfg.vocab;
	float *prompt_logits = a.dump ? malloc((size_t)a.n_prompt * V * sizeof(float)) : NULL;
	int32_t *gen = malloc(((size_t)a.batch * (size_t)a.generate + 1) * sizeof *gen);
	if ((a.dump && !prompt_logits) || !gen) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	run_times tm = {0};
	if (a.cuda) {
#ifdef DF11_RUN_CUDA
		run_cuda(&a, &cfg, &w, prompt_logits, gen, &tm);
#else
		fprintf(stderr, "%s: --device cuda: this build has no CUDA forward "
			"pass (configure with nvcc and libdf11_cuda)\n", prog);
		return 1;
#endif
	} else {
		run_cpu(&a, &cfg, &w, prompt_logits, gen, &tm);
	}
	if (a.dump)
		dump_logits(a.dump, prompt_logits, (size_t)a.n_prompt * V);
	for (int b = 0; b < a.batch && a.generate > 0; b++) {
		for (int i = 0; i < a.generate; i++)
			printf("%s%d", i ? "," : "", gen[(size_t)b * a.generate + i]);
		printf("\n");
	}
	if (a.stats) {
		/* Medians and p95 over the timed runs. */
		double p50 = df11_percentile(tm.ttft_ms, tm.n, 50), p95 = df11_percentile(tm.ttft_ms, tm.n, 95);
		double dec = df11_percentile(tm.decode_ms, tm.n, 50);
		double tok = (double)a.batch * a.n_prompt;
		double steps = (double)a.batch * tm.decode_steps;
		fprintf(stderr, "{\"device\": \"%s\", \"weights\": \"%s\", \"batch\": %d, "
			"\"prompt\": %d, \"generate\": %d, \"runs\": %d, "
			"\"ttft_ms_p50\": %.3f, \"ttft_ms_p95\": %.3f, "
			"\"prefill_tok_s\": %.1f, \"decode_ms_p50\": %.3f, "
			"\"decode_tok_s\": %.1f}\n", device,
			!a.cuda ? "as stored" : a.bf16 ? "bf16" : "df11", a.batch,
			a.n_prompt, a.generate, tm.n, p50, p95,
			p50 > 0 ? tok / p50 * 1e3 : 0.0, dec,
			dec > 0 ? steps / dec * 1e3 : 0.0);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: writing the output failed\n", prog);
		return 1;
	}
	free(gen);
	free(prompt_logits);
	free(a.prompt);
	df11_model_close(model);
	return 0;
}
