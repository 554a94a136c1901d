/*
 * bench_dfloat11_export: seconds per decoder layer to write the official
 * DFloat11 format (df11_export_dfloat11), side by side with the official
 * compressor (the `dfloat11` package's compress_model on a CPU) on one
 * layer of the same checkpoint.
 *
 *   df11-synth --preset nemo-12b --layers 2 -o /tmp/nemo2
 *   bench_dfloat11_export /tmp/nemo2 [--repeat R] [--official SCRIPT]
 *
 * Per thread count (1 and all CPUs): the layers exported as groups
 * (pattern_dict of the decoder layers only), timed R times, median over
 * the layer count; then the whole checkpoint (embedding, lm_head, layers)
 * once. The first export is read back and compared bit for bit with the
 * input before anything is timed. --official runs SCRIPT
 * (benchmarks/official_compress_layer.py) on layer 0 and prints the ratio.
 *
 * Then the other direction: every compressed weight of the export read
 * (decoded) through df11_model_read, next to the same weights read from a
 * .df11 container of the input (df11's own codec), median of R, GB/s of
 * BF16 out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "df11.h"

static const char layer_patterns[] =
	"{\"model\\\\.layers\\\\.\\\\d+\": [\"self_attn.q_proj\", "
	"\"self_attn.k_proj\", \"self_attn.v_proj\", \"self_attn.o_proj\", "
	"\"mlp.gate_proj\", \"mlp.up_proj\", \"mlp.down_proj\"]}";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, df11_result r)
{
	fprintf(stderr, "bench_dfloat11_export: %s: %s\n", what,
		r ? df11_last_error() : "failed");
	exit(1);
}

/* Every tensor of the export equals the input's. */
static void check(const char *in, const char *out)
{
	df11_model *a, *b;
	df11_result r;
	if ((r = df11_model_open(in, &a)) || (r = df11_model_open(out, &b)))
		die("open", r);
	uint64_t n_checked = 0;
	for (size_t i = 0; i < df11_model_num_tensors(b); i++) {
		df11_tensor_desc db, da;
		size_t j;
		df11_model_tensor(b, i, &db);
		if ((r = df11_model_find(a, db.name, &j)))
			die(db.name, r);
		df11_model_tensor(a, j, &da);
		void *pa = malloc(da.nbytes + 1), *pb = malloc(db.nbytes + 1);
		if (!pa || !pb || da.nbytes != db.nbytes)
			die(db.name, 0);
		if ((r = df11_model_read(a, j, pa, da.nbytes)) ||
		    (r = df11_model_read(b, i, pb, db.nbytes)))
			die(db.name, r);
		if (memcmp(pa, pb, da.nbytes)) {
			fprintf(stderr, "bench_dfloat11_export: %s differs\n",
				db.name);
			exit(1);
		}
		n_checked += db.compressed != 0;
		free(pa);
		free(pb);
	}
	printf("check: %s reads back bit for bit (%llu compressed weights)\n",
	       out, (unsigned long long)n_checked);
	df11_model_close(a);
	df11_model_close(b);
}

static double export_once(const char *in, const char *out, int threads,
			  const char *patterns, df11_dfloat11_stats *st)
{
	df11_dfloat11_options opt = {.threads = threads, .force = 1,
				     .pattern_dict = patterns};
	double t0 = now();
	df11_result r = df11_export_dfloat11(in, out, &opt, st);
	if (r)
		die("export", r);
	return now() - t0;
}

int main(int argc, char **argv)
{
	const char *in = NULL, *official = NULL;
	int repeat = 3;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--official") && i + 1 < argc)
			official = argv[++i];
		else if (argv[i][0] != '-' && !in)
			in = argv[i];
		else {
			fprintf(stderr, "usage: bench_dfloat11_export MODEL_DIR "
				"[--repeat R] [--official SCRIPT]\n");
			return 2;
		}
	}
	if (!in || repeat < 1) {
		fprintf(stderr, "usage: bench_dfloat11_export MODEL_DIR "
			"[--repeat R] [--official SCRIPT]\n");
		return 2;
	}
	char out[] = "/tmp/bench-dfl-XXXXXX";
	if (!mkdtemp(out))
		die("mkdtemp", 0);
	char dst[64];
	snprintf(dst, sizeof dst, "%s/out", out);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus = ncpu < 1 ? 1 : (int)ncpu;
	df11_dfloat11_stats st;
	export_once(in, dst, cpus, NULL, &st);
	check(in, dst);
	printf("input: %s; %d CPUs online\n", in, cpus);
	printf("%-28s %8s %12s %12s %10s\n", "run", "threads", "s/layer",
	       "GB/s(BF16)", "ratio");
	double ours1 = 0;
	int tlist[2] = {1, cpus};
	for (int k = 0; k < (cpus > 1 ? 2 : 1); k++) {
		double *t = calloc((size_t)repeat, sizeof *t);
		uint64_t layers = 0, bytes = 0;
		for (int r = 0; r < repeat; r++) {
			t[r] = export_once(in, dst, tlist[k], layer_patterns, &st);
			layers = st.n_groups;
			bytes = st.bf16_bytes;
		}
		qsort(t, (size_t)repeat, sizeof *t, cmp_d);
		double med = t[repeat / 2] / (double)layers;
		if (k == 0)
			ours1 = med;
		printf("%-28s %8d %12.3f %12.3f %10s\n", "df11 layers (median)",
		       tlist[k], med, (double)bytes / (double)layers / med / 1e9,
		       "");
		free(t);
	}
	double full = export_once(in, dst, cpus, NULL, &st);
	printf("%-28s %8d %12s %12.3f   total %.2f s, %llu groups, "
	       "%.2f%% of BF16\n", "df11 whole checkpoint", cpus, "-",
	       (double)st.bf16_bytes / full / 1e9, full,
	       (unsigned long long)st.n_groups,
	       100.0 * (double)st.stored_bytes / (double)st.bf16_bytes);
	if (official) {
		char cmd[4096];
		snprintf(cmd, sizeof cmd, "python3 '%s' '%s' | tail -1", official,
			 in);
		FILE *p = popen(cmd, "r");
		char line[4096] = "";
		if (!p || !fgets(line, sizeof line, p)) {
			fprintf(stderr, "bench_dfloat11_export: %s did not run\n",
				official);
		} else {
			pclose(p);
			const char *s = strstr(line, "\"seconds\": [");
			double sec = s ? atof(s + 12) : 0;
			if (sec > 0)
				printf("%-28s %8d %12.3f %12s %9.0fx\n",
				       "official compress_model", 1, sec, "",
				       sec / ours1);
			else
				fprintf(stderr, "official: %s", line);
		}
	}
	/* Reading: the DFloat11 export vs a .df11 container. */
	char ct[64];
	snprintf(ct, sizeof ct, "%s/in.df11", out);
	df11_pack_options po = {.threads = cpus, .force = 1};
	df11_result pr = df11_pack(in, ct, &po, NULL);
	if (pr)
		die("pack", pr);
	const char *paths[2] = {dst, ct}, *labels[2] = {"read DFloat11 export",
							 "read .df11 container"};
	for (int k = 0; k < (cpus > 1 ? 2 : 1); k++)
		for (int w = 0; w < 2; w++) {
			df11_model *m;
			df11_result r = df11_model_open(paths[w], &m);
			if (r)
				die(paths[w], r);
			df11_model_set_threads(m, tlist[k]);
			double *t = calloc((size_t)repeat, sizeof *t);
			uint64_t bytes = 0;
			uint8_t *buf = NULL;
			for (int rep = 0; rep < repeat; rep++) {
				bytes = 0;
				double t0 = now();
				for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
					df11_tensor_desc d;
					df11_model_tensor(m, i, &d);
					if (!d.compressed)
						continue;
					buf = realloc(buf, d.nbytes);
					if (!buf || (r = df11_model_read(m, i, buf, d.nbytes)))
						die("read", r);
					bytes += d.nbytes;
				}
				t[rep] = now() - t0;
			}
			qsort(t, (size_t)repeat, sizeof *t, cmp_d);
			printf("%-28s %8d %12s %12.3f   %.2f s for %.2f GB\n",
			       labels[w], tlist[k], "-",
			       (double)bytes / t[repeat / 2] / 1e9, t[repeat / 2],
			       (double)bytes / 1e9);
			free(buf);
			free(t);
			df11_model_close(m);
		}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", out);
	return 0;
}
