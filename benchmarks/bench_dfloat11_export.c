/*
 * bench_dfloat11_export: seconds per decoder layer to write the official
 * DFloat11 format (df11_export_dfloat11), side by side with the official
 * compressor (the `dfloat11` package's compress_model on a CPU) on one
 * layer of the same checkpoint.
 *
 *   df11-synth --preset nemo-12b --layers 2 -o /tmp/nemo2
 *   bench_dfloat11_export /tmp/nemo2 [--repeat R] [--official SCRIPT]
 *
 * The decoder layers' projection weights are first copied into a
 * checkpoint of their own (so that per-layer times are not those of
 * copying the embedding); per thread count (1 and all CPUs) it is
 * exported R times: median wall seconds and CPU seconds (user + system of
 * the process) per layer. Then the whole checkpoint (embedding, lm_head,
 * layers) once. Each export's first run is read back and compared bit for
 * bit with its input before anything is timed. --official runs SCRIPT
 * (benchmarks/official_compress_layer.py) on layer 0 and prints the ratio.
 *
 * Group coding alone, per core: layer 0's seven projections as one group
 * in memory, coded by the writer's group coder (df11_dfl_encode_group: no
 * files) and by df11's own encoder (df11_encode, one thread) side by
 * side, median of R, GB/s of BF16 in; the first is checked against the
 * export's buffers, the second decoded back, before anything is timed.
 *
 * Then the other direction: every compressed weight of the export read
 * (decoded) through df11_model_read, next to the same weights read from a
 * .df11 container of the input (df11's own codec), median of R, GB/s of
 * BF16 out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "df11.h"
#include "df11/dfloat11.h"
#include "df11/model_internal.h"
#include "tools/timing.h"

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
	       (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
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

/* The decoder layers' projections of in, as dir/model.safetensors, with
 * in's config.json. Returns the layer count. */
static uint64_t layers_only(const char *in, const char *dir)
{
	df11_model *m;
	df11_result r = df11_model_open(in, &m);
	if (r)
		die(in, r);
	size_t nt = df11_model_num_tensors(m), *pick = calloc(nt + 1, sizeof *pick);
	size_t np = 0;
	uint64_t off = 0, layers = 0;
	char *json = malloc(1u << 20);
	size_t jn = 0;
	jn += (size_t)snprintf(json + jn, (1u << 20) - jn, "{");
	for (size_t i = 0; i < nt; i++) {
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		unsigned long long l;
		int at = 0;
		if (sscanf(d.name, "model.layers.%llu.%n", &l, &at) != 1 || !at ||
		    !strstr(d.name, "_proj.weight") || d.ndim != 2)
			continue;
		if (l + 1 > layers)
			layers = l + 1;
		pick[np++] = i;
		jn += (size_t)snprintf(json + jn, (1u << 20) - jn,
				       "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":"
				       "[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
				       np > 1 ? "," : "", d.name,
				       (unsigned long long)d.shape[0],
				       (unsigned long long)d.shape[1],
				       (unsigned long long)off,
				       (unsigned long long)(off + d.nbytes));
		off += d.nbytes;
	}
	jn += (size_t)snprintf(json + jn, (1u << 20) - jn, "}");
	while (jn % 8)
		json[jn++] = ' ';
	char path[256];
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	FILE *f = fopen(path, "wb");
	uint8_t hl[8];
	for (int k = 0; k < 8; k++)
		hl[k] = (uint8_t)((uint64_t)jn >> (8 * k));
	if (!f || fwrite(hl, 1, 8, f) != 8 || fwrite(json, 1, jn, f) != jn)
		die(path, 0);
	uint8_t *buf = NULL;
	for (size_t k = 0; k < np; k++) {
		df11_tensor_desc d;
		df11_model_tensor(m, pick[k], &d);
		buf = realloc(buf, d.nbytes);
		if (!buf || (r = df11_model_read(m, pick[k], buf, d.nbytes)) ||
		    fwrite(buf, 1, d.nbytes, f) != d.nbytes)
			die(d.name, r);
	}
	const void *cfg;
	size_t cn;
	if (fclose(f) != 0 || (r = df11_model_file(m, "config.json", &cfg, &cn)))
		die("config.json", r);
	snprintf(path, sizeof path, "%s/config.json", dir);
	f = fopen(path, "wb");
	if (!f || fwrite(cfg, 1, cn, f) != cn || fclose(f) != 0)
		die(path, 0);
	free(buf);
	free(json);
	free(pick);
	df11_model_close(m);
	return layers;
}

static double export_once(const char *in, const char *out, int threads,
			  const char *patterns, df11_dfloat11_stats *st)
{
	df11_dfloat11_options opt = {.threads = threads, .force = 1,
				     .pattern_dict = patterns};
	double t0 = df11_now_s();
	df11_result r = df11_export_dfloat11(in, out, &opt, st);
	if (r)
		die("export", r);
	return df11_now_s() - t0;
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	return t[n / 2];
}

/* Layer 0's group of the layers-only checkpoint lin, coded in memory by
 * the DFloat11 group coder and by df11_encode, one core each. dfl: its
 * export, whose buffers the coder's output must equal. */
static void group_coding(const char *lin, const char *dfl, int repeat)
{
	static const char *const proj[] = {
		"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
		"self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
		"mlp.down_proj"};
	df11_model *m;
	df11_result r = df11_model_open(lin, &m);
	if (r)
		die(lin, r);
	uint64_t n = 0;
	for (int k = 0; k < 7; k++) {
		char name[128];
		size_t i;
		df11_tensor_desc d;
		snprintf(name, sizeof name, "model.layers.0.%s.weight", proj[k]);
		if ((r = df11_model_find(m, name, &i)))
			die(name, r);
		df11_model_tensor(m, i, &d);
		n += d.n_elems;
	}
	uint16_t *w = malloc(2 * n);
	size_t cap = df11_encode_bound(n);
	uint8_t *stream = malloc(4 * n + 8), *sm = malloc(n), *dst = malloc(cap);
	uint16_t *back = malloc(2 * n);
	if (!w || !stream || !sm || !dst || !back)
		die("group buffers", 0);
	uint64_t at = 0;
	for (int k = 0; k < 7; k++) {
		char name[128];
		size_t i;
		df11_tensor_desc d;
		snprintf(name, sizeof name, "model.layers.0.%s.weight", proj[k]);
		df11_model_find(m, name, &i);
		df11_model_tensor(m, i, &d);
		if ((r = df11_model_read(m, i, w + at, d.nbytes)))
			die(name, r);
		at += d.n_elems;
	}
	df11_model_close(m);
	/* Every output page touched once before timing, for both. */
	memset(stream, 0, 4 * n + 8);
	memset(sm, 0, n);
	memset(dst, 0, cap);
	uint64_t nb = 0;
	size_t dn = 0;
	if ((r = df11_dfl_encode_group(w, n, stream, sm, &nb)))
		die("df11_dfl_encode_group", r);
	df11_model *x;
	if ((r = df11_model_open(dfl, &x)))
		die(dfl, r);
	int found = 0;
	for (size_t i = 0; i < df11_dfl_group_count(x); i++) {
		df11_dfl_group *g = df11_dfl_group_get(x, i);
		if (strcmp(g->name, "model.layers.0"))
			continue;
		found = 1;
		if (g->n != n || g->n_bytes != nb || memcmp(g->stream, stream, nb) ||
		    memcmp(g->sm, sm, n))
			die("group coder output differs from the export", 0);
	}
	df11_model_close(x);
	if (!found)
		die("model.layers.0 not in the export", 0);
	df11_encode_options eo = {.threads = 1};
	df11_decoder *dec = df11_decoder_new(1);
	if ((r = df11_encode(w, n, &eo, dst, cap, &dn)) || !dec ||
	    (r = df11_decode(dec, dst, dn, back, n)) || memcmp(back, w, 2 * n))
		die("df11_encode round trip", r);
	df11_decoder_free(dec);
	double *ta = calloc((size_t)repeat, sizeof *ta);
	double *tb = calloc((size_t)repeat, sizeof *tb);
	for (int rep = 0; rep < repeat; rep++) {
		/* Interleaved, so both see the same machine. */
		double t0 = df11_now_s();
		if ((r = df11_dfl_encode_group(w, n, stream, sm, &nb)))
			die("df11_dfl_encode_group", r);
		double t1 = df11_now_s();
		if ((r = df11_encode(w, n, &eo, dst, cap, &dn)))
			die("df11_encode", r);
		ta[rep] = t1 - t0;
		tb[rep] = df11_now_s() - t1;
	}
	double a = median(ta, repeat), b = median(tb, repeat);
	printf("group coding, one core, layer 0 (%llu BF16 weights, %.2f GB):\n",
	       (unsigned long long)n, 2.0 * (double)n / 1e9);
	printf("%-28s %8d %10.3f %10s %12.3f   %.2f%% of BF16\n",
	       "DFloat11 group coder", 1, a, "-", 2.0 * (double)n / a / 1e9,
	       100.0 * (double)(nb + n) / (2.0 * (double)n));
	printf("%-28s %8d %10.3f %10s %12.3f   %.2f%% of BF16\n",
	       "df11_encode (own codec)", 1, b, "-", 2.0 * (double)n / b / 1e9,
	       100.0 * (double)dn / (2.0 * (double)n));
	free(ta);
	free(tb);
	free(w);
	free(stream);
	free(sm);
	free(dst);
	free(back);
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
	char dst[64], lin[64];
	snprintf(dst, sizeof dst, "%s/out", out);
	snprintf(lin, sizeof lin, "%s/layers", out);
	if (mkdir(lin, 0755) != 0)
		die(lin, 0);
	uint64_t n_layers = layers_only(in, lin);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus = ncpu < 1 ? 1 : (int)ncpu;
	df11_dfloat11_stats st;
	export_once(lin, dst, cpus, NULL, &st);
	check(lin, dst);
	export_once(in, dst, cpus, NULL, &st);
	check(in, dst);
	printf("input: %s, %llu decoder layers; %d CPUs online\n", in,
	       (unsigned long long)n_layers, cpus);
	printf("%-28s %8s %10s %10s %12s %10s\n", "run", "threads", "s/layer",
	       "cpu-s/lay", "GB/s(BF16)", "ratio");
	double ours1 = 0;
	int tlist[2] = {1, cpus};
	for (int k = 0; k < (cpus > 1 ? 2 : 1); k++) {
		double *t = calloc((size_t)repeat, sizeof *t),
		       *c = calloc((size_t)repeat, sizeof *c);
		uint64_t layers = 0, bytes = 0;
		for (int r = 0; r < repeat; r++) {
			double c0 = cpu_now();
			t[r] = export_once(lin, dst, tlist[k], NULL, &st);
			c[r] = cpu_now() - c0;
			layers = st.n_groups;
			bytes = st.bf16_bytes;
		}
		if (layers != n_layers)
			die("layer groups", 0);
		qsort(t, (size_t)repeat, sizeof *t, cmp_d);
		qsort(c, (size_t)repeat, sizeof *c, cmp_d);
		double med = t[repeat / 2] / (double)layers;
		if (k == 0)
			ours1 = med;
		printf("%-28s %8d %10.3f %10.3f %12.3f %10s\n",
		       "df11 layers (median)", tlist[k], med,
		       c[repeat / 2] / (double)layers,
		       (double)bytes / (double)layers / med / 1e9, "");
		free(t);
		free(c);
	}
	export_once(lin, dst, cpus, NULL, &st);
	group_coding(lin, dst, repeat);
	double full = export_once(in, dst, cpus, NULL, &st);
	printf("%-28s %8d %10s %10s %12.3f   total %.2f s, %llu groups, "
	       "%.2f%% of BF16\n", "df11 whole checkpoint", cpus, "-", "-",
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
			const char *e = strstr(line, "\"elements\": ");
			double sec = s ? atof(s + 12) : 0;
			double elems = e ? atof(e + 12) : 0;
			if (sec > 0)
				printf("%-28s %8d %10.3f %10s %12.4f %9.0fx\n",
				       "official compress_model", 1, sec, "-",
				       2 * elems / sec / 1e9, sec / ours1);
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
				double t0 = df11_now_s();
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
				t[rep] = df11_now_s() - t0;
			}
			qsort(t, (size_t)repeat, sizeof *t, cmp_d);
			printf("%-28s %8d %10s %10s %12.3f   %.2f s for %.2f GB\n",
			       labels[w], tlist[k], "-", "-",
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
