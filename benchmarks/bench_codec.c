/*
 * bench_codec: the tensor codec against zlib and zstd on the same bytes.
 *
 * Data: the attention and MLP matrices of one Mistral-Nemo layer (q, k, v,
 * o, gate, up; 199M BF16 weights, 380 MiB), synthetic with realistic
 * statistics (df11_synth_matrix: per-row scale spread, heavy tail,
 * outliers). Each tensor is compressed on its own, as a checkpoint would be.
 *
 * Reports bits per weight against 8 + H(exponent) and against the
 * unconstrained Huffman optimum, and encode/decode throughput in BF16
 * bytes per second on 1 thread and on N threads (median of R runs). Every
 * decoder's output is compared with the input before anything is timed.
 *
 * usage: bench_codec [--scale F] [--runs R] [--threads N] [--no-zlib6]
 *                    [--only NAME]   (one codec: df11, zstd, zlib)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>
#include <zstd.h>

#include "df11.h"
#include "tools/timing.h"
#include "common/parallel.h"
#include "synth/synth.h"
#include "huffman/huffman.h"

typedef struct tensor {
	const char *name;
	uint64_t rows, cols;
	float std;
	uint16_t *data;
	uint64_t n;
} tensor;

static tensor tensors[] = {
	{"q_proj", 4096, 5120, 0.020f, NULL, 0},
	{"k_proj", 1024, 5120, 0.025f, NULL, 0},
	{"v_proj", 1024, 5120, 0.012f, NULL, 0},
	{"o_proj", 5120, 4096, 0.010f, NULL, 0},
	{"gate_proj", 14336, 5120, 0.018f, NULL, 0},
	{"up_proj", 14336, 5120, 0.015f, NULL, 0},
};
#define NT (sizeof tensors / sizeof tensors[0])

static void die(const char *what)
{
	fprintf(stderr, "bench_codec: %s\n", what);
	exit(1);
}

/* ---- a codec under test: compress/decompress one chunk of bytes ---- */

typedef struct codec {
	const char *name;
	int level;
	size_t (*bound)(size_t n);
	size_t (*compress)(const struct codec *c, const void *src, size_t n,
			   void *dst, size_t cap);
	void (*decompress)(const struct codec *c, const void *src, size_t n,
			   void *dst, size_t dst_n);
} codec;

static size_t zlib_bound(size_t n) { return compressBound((uLong)n); }
static size_t zlib_compress(const codec *c, const void *src, size_t n,
			    void *dst, size_t cap)
{
	uLongf out = (uLongf)cap;
	if (compress2(dst, &out, src, (uLong)n, c->level) != Z_OK)
		die("zlib compress failed");
	return out;
}
static void zlib_decompress(const codec *c, const void *src, size_t n,
			    void *dst, size_t dst_n)
{
	(void)c;
	uLongf out = (uLongf)dst_n;
	if (uncompress(dst, &out, src, (uLong)n) != Z_OK || out != dst_n)
		die("zlib decompress failed");
}
static size_t zstd_bound(size_t n) { return ZSTD_compressBound(n); }
static size_t zstd_compress(const codec *c, const void *src, size_t n,
			    void *dst, size_t cap)
{
	size_t r = ZSTD_compress(dst, cap, src, n, c->level);
	if (ZSTD_isError(r))
		die("zstd compress failed");
	return r;
}
static void zstd_decompress(const codec *c, const void *src, size_t n,
			    void *dst, size_t dst_n)
{
	(void)c;
	size_t r = ZSTD_decompress(dst, dst_n, src, n);
	if (ZSTD_isError(r) || r != dst_n)
		die("zstd decompress failed");
}
static size_t df11_bound(size_t n) { return df11_encode_bound(n / 2); }
static size_t df11_compress1(const codec *c, const void *src, size_t n,
			     void *dst, size_t cap)
{
	df11_encode_options o = {.threads = c->level};
	size_t size;
	if (df11_encode(src, n / 2, &o, dst, cap, &size) != DF11_OK)
		die(df11_last_error());
	return size;
}
static void df11_decompress1(const codec *c, const void *src, size_t n,
			     void *dst, size_t dst_n)
{
	static _Thread_local df11_decoder *d[2];
	int slot = c->level > 1;
	if (!d[slot] && !(d[slot] = df11_decoder_new(c->level)))
		die("out of memory");
	if (df11_decode(d[slot], src, n, dst, dst_n / 2) != DF11_OK)
		die(df11_last_error());
}

/* A compressed tensor as `parts` independently compressed chunks, so a
 * baseline can use several threads too. */
typedef struct packed {
	int parts;
	uint8_t *buf[8];
	size_t size[8];
	size_t off[9]; /* byte ranges of the input */
} packed;

typedef struct par_job {
	const codec *c;
	tensor *t;
	packed *p;
	uint16_t *out;
} par_job;

static void par_compress(void *arg, int i)
{
	par_job *J = arg;
	const uint8_t *src = (const uint8_t *)J->t->data + J->p->off[i];
	size_t n = J->p->off[i + 1] - J->p->off[i];
	J->p->size[i] = J->c->compress(J->c, src, n, J->p->buf[i],
				       J->c->bound(n));
}

static void par_decompress(void *arg, int i)
{
	par_job *J = arg;
	J->c->decompress(J->c, J->p->buf[i], J->p->size[i],
			 (uint8_t *)J->out + J->p->off[i],
			 J->p->off[i + 1] - J->p->off[i]);
}

typedef struct result {
	double bytes_in, bytes_out, enc_s, dec_s;
} result;

/* parts: chunks per tensor, each handled by its own thread (baselines);
 * df11 itself is given all threads and one part. */
static result run_codec(const codec *c, int parts, int runs, uint16_t **outs)
{
	result res = {0};
	double enc[64], dec[64];
	packed p[NT];
	for (size_t k = 0; k < NT; k++) {
		tensor *t = &tensors[k];
		size_t bytes = 2 * t->n;
		p[k].parts = parts;
		for (int i = 0; i <= parts; i++)
			p[k].off[i] = (bytes / 2 / (size_t)parts) * 2 * (size_t)i;
		p[k].off[parts] = bytes;
		for (int i = 0; i < parts; i++) {
			p[k].buf[i] = malloc(c->bound(p[k].off[i + 1] - p[k].off[i]));
			if (!p[k].buf[i])
				die("out of memory");
		}
	}
	for (int r = 0; r < runs; r++) {
		double t0 = df11_now_s();
		for (size_t k = 0; k < NT; k++) {
			par_job J = {c, &tensors[k], &p[k], NULL};
			df11_parallel_run(parts, par_compress, &J);
		}
		enc[r] = df11_now_s() - t0;
		t0 = df11_now_s();
		for (size_t k = 0; k < NT; k++) {
			par_job J = {c, &tensors[k], &p[k], outs[k]};
			df11_parallel_run(parts, par_decompress, &J);
		}
		dec[r] = df11_now_s() - t0;
		if (r == 0) /* check before the timings count */
			for (size_t k = 0; k < NT; k++)
				if (memcmp(outs[k], tensors[k].data, 2 * tensors[k].n))
					die("decoded data differs from the input");
	}
	for (size_t k = 0; k < NT; k++) {
		res.bytes_in += 2.0 * (double)tensors[k].n;
		for (int i = 0; i < parts; i++) {
			res.bytes_out += (double)p[k].size[i];
			free(p[k].buf[i]);
		}
		memset(outs[k], 0, 2 * tensors[k].n); /* poison for the next */
	}
	res.enc_s = df11_median(enc, runs);
	res.dec_s = df11_median(dec, runs);
	return res;
}

static void gen_tensor(void *arg, int i)
{
	size_t k = *(size_t *)arg + (size_t)i;
	tensor *t = &tensors[k];
	if (k < NT)
		df11_synth_matrix(1234 + k, t->rows, t->cols, t->std, t->data);
}

int main(int argc, char **argv)
{
	double scale = 1.0;
	int runs = 5, threads = 2, zlib6 = 1;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--scale") && i + 1 < argc)
			scale = atof(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-zlib6"))
			zlib6 = 0;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: bench_codec [--scale F] [--runs R] "
				"[--threads N] [--no-zlib6] [--only NAME]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 64 || threads < 1 || threads > 8 || scale <= 0)
		die("bad arguments");

	uint16_t *outs[NT];
	double total = 0;
	for (size_t k = 0; k < NT; k++) {
		tensor *t = &tensors[k];
		t->rows = (uint64_t)((double)t->rows * scale);
		if (t->rows < 1)
			t->rows = 1;
		t->n = t->rows * t->cols;
		t->data = malloc(2 * t->n);
		outs[k] = malloc(2 * t->n);
		if (!t->data || !outs[k])
			die("out of memory");
		total += 2.0 * (double)t->n;
	}
	for (size_t k = 0; k < NT; k += 2)
		df11_parallel_run(2, gen_tensor, &k); /* two tensors at a time */

	/* Entropy and Huffman optimum, tensor by tensor (as encoded). */
	double h_bits = 0, opt_bits = 0, lim_bits = 0, n_all = 0;
	for (size_t k = 0; k < NT; k++) {
		df11_exponent_stats st;
		df11_exponent_histogram(tensors[k].data, tensors[k].n, &st);
		uint8_t len[256], len15[256];
		df11_huff_lengths(st.count, 64, len);
		df11_huff_lengths(st.count, DF11_MAX_CODE_LEN, len15);
		for (int s = 0; s < 256; s++) {
			opt_bits += (double)st.count[s] * len[s];
			lim_bits += (double)st.count[s] * len15[s];
		}
		h_bits += st.entropy_bits * (double)tensors[k].n;
		n_all += (double)tensors[k].n;
	}

	printf("data: %zu tensors of one Mistral-Nemo layer, %.1f MiB BF16, "
	       "%.0fM weights\n", NT, total / 1048576.0, n_all / 1e6);
	printf("exponent entropy H = %.4f bits; Huffman optimum %.4f; "
	       "limited to %d bits %.4f\n", h_bits / n_all, opt_bits / n_all,
	       DF11_MAX_CODE_LEN, lim_bits / n_all);
	printf("median of %d runs; throughput in BF16 bytes per second "
	       "(GB = 1e9)\n\n", runs);
	printf("%-14s %7s %9s %8s %10s %10s\n", "codec", "threads", "bits/wt",
	       "ratio", "encode", "decode");

	codec codecs[] = {
		{"df11", 1, df11_bound, df11_compress1, df11_decompress1},
		{"zstd -1", 1, zstd_bound, zstd_compress, zstd_decompress},
		{"zstd -3", 3, zstd_bound, zstd_compress, zstd_decompress},
		{"zlib -1", 1, zlib_bound, zlib_compress, zlib_decompress},
		{"zlib -6", 6, zlib_bound, zlib_compress, zlib_decompress},
	};
	double df11_bpw = 0;
	for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
		if ((!zlib6 && !strcmp(codecs[c].name, "zlib -6")) ||
		    (only && strncmp(codecs[c].name, only, strlen(only))))
			continue;
		int slow = !strncmp(codecs[c].name, "zlib", 4);
		int nr = slow && runs > 3 ? 3 : runs;
		for (int pass = 0; pass < 2; pass++) {
			int t = pass == 0 ? 1 : threads;
			if (pass == 1 && threads == 1)
				break;
			codec cc = codecs[c];
			int parts = t;
			if (!strcmp(cc.name, "df11")) {
				cc.level = t; /* df11 threads itself */
				parts = 1;
			}
			result r = run_codec(&cc, parts, nr, outs);
			double bpw = 8.0 * r.bytes_out / (r.bytes_in / 2.0);
			if (!strcmp(cc.name, "df11") && pass == 0)
				df11_bpw = bpw;
			printf("%-14s %7d %9.4f %7.2f%% %7.3f GB/s %7.3f GB/s\n",
			       cc.name, t, bpw, 100.0 * r.bytes_out / r.bytes_in,
			       r.bytes_in / r.enc_s / 1e9, r.bytes_in / r.dec_s / 1e9);
			fflush(stdout);
		}
	}
	printf("\ndf11 overhead: %.4f bits/weight over 8 + H (target <= 0.05), "
	       "%.4f over 8 + Huffman optimum\n", df11_bpw - 8 - h_bits / n_all,
	       df11_bpw - 8 - opt_bits / n_all);
	for (size_t k = 0; k < NT; k++) {
		free(tensors[k].data);
		free(outs[k]);
	}
	return 0;
}
