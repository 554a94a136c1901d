/*
 * bench_tensor: df11_encode / df11_decode throughput on one tensor of a
 * checkpoint, through the C API alone. benchmarks/bench_python.py runs it
 * beside the Python binding on the same tensor to measure the binding's
 * overhead.
 *
 * Each figure is the median of R runs, in seconds, for two output
 * policies: "reuse" (one output buffer for every run, as a caller that
 * keeps its buffers would) and "fresh" (malloc before and free after each
 * run, as an API that returns a new object per call does). The decoded
 * tensor is compared with the input before anything is timed.
 *
 * usage: bench_tensor CHECKPOINT TENSOR [--runs R] [--threads N]
 * prints one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "df11.h"
#include "tools/timing.h"

static void die(const char *what)
{
	fprintf(stderr, "bench_tensor: %s: %s\n", what, df11_last_error());
	exit(1);
}

int main(int argc, char **argv)
{
	int runs = 7, threads = 1;
	const char *path = NULL, *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!path)
			path = argv[i];
		else if (!name)
			name = argv[i];
		else
			path = NULL, i = argc;
	}
	if (!path || !name || runs < 1 || runs > 1000 || threads < 1) {
		fprintf(stderr, "usage: bench_tensor CHECKPOINT TENSOR "
			"[--runs R] [--threads N]\n");
		return 2;
	}
	df11_model *m;
	size_t idx;
	df11_tensor_desc d;
	if (df11_model_open(path, &m) || df11_model_find(m, name, &idx) ||
	    df11_model_tensor(m, idx, &d))
		die(path);
	if (d.dtype != DF11_DTYPE_BF16)
		die("not a BF16 tensor");
	uint64_t n = d.n_elems;
	uint16_t *src = malloc(n * 2), *dst = malloc(n * 2);
	size_t cap = df11_encode_bound(n), size = 0;
	uint8_t *enc = malloc(cap);
	df11_decoder *dec = df11_decoder_new(threads);
	if (!src || !dst || !enc || !dec)
		die("out of memory");
	if (df11_model_read(m, idx, src, n * 2))
		die("read");
	df11_model_close(m);
	df11_encode_options opt = {.threads = threads};
	if (df11_encode(src, n, &opt, enc, cap, &size) ||
	    df11_decode(dec, enc, size, dst, n))
		die("warm-up");
	if (memcmp(src, dst, n * 2)) {
		fprintf(stderr, "bench_tensor: decoded tensor differs\n");
		return 1;
	}
	double *t = malloc(4 * (size_t)runs * sizeof *t);
	if (!t)
		die("out of memory");
	double *er = t, *ef = t + runs, *dr = t + 2 * runs, *df = t + 3 * runs;
	for (int r = 0; r < runs; r++) {
		size_t s;
		double t0 = df11_now_s();
		if (df11_encode(src, n, &opt, enc, cap, &s))
			die("encode");
		er[r] = df11_now_s() - t0;
		t0 = df11_now_s();
		uint8_t *fresh = malloc(cap);
		if (!fresh || df11_encode(src, n, &opt, fresh, cap, &s))
			die("encode");
		free(fresh);
		ef[r] = df11_now_s() - t0;
		t0 = df11_now_s();
		if (df11_decode(dec, enc, size, dst, n))
			die("decode");
		dr[r] = df11_now_s() - t0;
		t0 = df11_now_s();
		uint16_t *fd = malloc(n * 2);
		if (!fd || df11_decode(dec, enc, size, fd, n))
			die("decode");
		free(fd);
		df[r] = df11_now_s() - t0;
	}
	printf("{\"n_elems\": %llu, \"encoded_bytes\": %zu, \"threads\": %d, "
	       "\"runs\": %d, \"encode_reuse_s\": %.6f, \"encode_fresh_s\": "
	       "%.6f, \"decode_reuse_s\": %.6f, \"decode_fresh_s\": %.6f}\n",
	       (unsigned long long)n, size, threads, runs, df11_median(er, runs),
	       df11_median(ef, runs), df11_median(dr, runs), df11_median(df, runs));
	free(t);
	free(src);
	free(dst);
	free(enc);
	df11_decoder_free(dec);
	return 0;
}
