/*
 * GPU decode throughput: BF16 bytes written per second by libdf11_cuda's
 * two decode kernels, side by side in the same run:
 *   window  the window kernel (one thread per run of windows, 16-byte
 *           stores from registers; cuda/decode_kernel.h),
 *   staged  the staged kernel, libdf11_cuda's default (warps staged through
 *           shared memory; cuda/decode_staged.h),
 *   copy    a device-to-device cudaMemcpyAsync of the same BF16 bytes, and
 *   bound   the output rate at which reading the compressed bytes and
 *           writing the BF16 bytes would take as long as that memcpy moves
 *           the same number of bytes (its measured read+write bandwidth).
 * Cases: single tensors of 8 MiB to 1 GiB of BF16 (8 and 64 MiB also with
 * 512-bit windows), the nine tensors of a
 * Mistral-Nemo-12B layer (q, k, v, o, gate, up, down and the two norms)
 * decoded as one batch and as nine launches, and one tensor of 2.2G
 * elements (4.4 GB of BF16, element indices past 2^31) checked bit for bit.
 * Every output is compared with the CPU reference decoder (with the
 * original words for the 2.2G tensor) before it is timed and once more
 * after. Times are CUDA events around each run; the median of the timed
 * runs (20 by default) after 5 warm-ups is reported. Tensors smaller than
 * DF11_ROTATE_BYTES are uploaded several times and the runs rotate among
 * the copies, so that no run finds its input in the 50 MB L2.
 *
 * usage: bench_cuda_decode [--quick] [--runs N] [--max-mib M] [--no-huge]
 */
#include <cuda_runtime.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

extern "C" {
#include "df11.h"
#include "common/parallel.h"
#include "synth/synth.h"
}
#include "cuda/kernels.h"
#include "df11_cuda.h"

#define DF11_ROTATE_BYTES (256ull << 20)

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_cuda_decode: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

#define CK(call)                                                           \
	do {                                                               \
		cudaError_t e_ = (call);                                   \
		if (e_ != cudaSuccess)                                     \
			die("%s: %s", #call, cudaGetErrorString(e_));      \
	} while (0)

#define OK(call)                                                           \
	do {                                                               \
		df11_result r_ = (call);                                   \
		if (r_ != DF11_OK)                                         \
			die("%s: %s", #call, df11_last_error());           \
	} while (0)

/* ----------------------------------------------------------- host data */

struct synth_arg {
	uint16_t *w;
	uint64_t rows, cols, seed;
	int parts;
};

static void synth_part(void *p, int i)
{
	synth_arg *a = (synth_arg *)p;
	uint64_t r0 = a->rows * (uint64_t)i / (uint64_t)a->parts;
	uint64_t r1 = a->rows * (uint64_t)(i + 1) / (uint64_t)a->parts;
	df11_synth_matrix(a->seed * 1000 + (uint64_t)i, r1 - r0, a->cols, 0.02f,
			  a->w + r0 * a->cols);
}

/* A synthetic weight matrix, generated on 16 threads. */
static uint16_t *synth(uint64_t rows, uint64_t cols, uint64_t seed)
{
	uint16_t *w = (uint16_t *)malloc(rows * cols * 2);
	if (!w)
		die("out of host memory");
	synth_arg a = {w, rows, cols, seed, 16};
	df11_parallel_run(16, synth_part, &a);
	return w;
}

struct tensor {
	const char *name;
	uint64_t rows, cols, n;
	int window_log2;     /* encoder layout; 0 = default (2048-bit windows) */
	const uint16_t *src; /* original words (not owned) */
	uint8_t *enc;
	size_t size;
	uint16_t *ref;       /* reference decoder output */
};

static void encode(tensor *t)
{
	size_t cap = df11_encode_bound(t->n);
	t->enc = (uint8_t *)malloc(cap);
	if (!t->enc)
		die("out of host memory");
	df11_encode_options opt = {};
	opt.threads = 16;
	opt.window_log2 = t->window_log2;
	OK(df11_encode(t->src, t->n, &opt, t->enc, cap, &t->size));
}

static void ref_one(void *p, int i)
{
	tensor *t = &((tensor *)p)[i];
	t->ref = (uint16_t *)malloc(t->n * 2);
	if (!t->ref || df11_decode_reference(t->enc, t->size, t->ref, t->n) != DF11_OK ||
	    memcmp(t->ref, t->src, t->n * 2) != 0) {
		fprintf(stderr, "bench_cuda_decode: reference decode of %s failed\n",
			t->name);
		exit(1);
	}
}

/* --------------------------------------------------------------- timing */

template <class F> static double median_ms(cudaStream_t s, int warm, int runs,
					   F enqueue)
{
	/* All runs are queued back to back and waited for once, so the GPU
	 * never idles between them and no run's interval holds host time
	 * (argument checks, the launch itself). */
	std::vector<cudaEvent_t> a(runs), b(runs);
	for (int k = 0; k < runs; k++) {
		CK(cudaEventCreate(&a[k]));
		CK(cudaEventCreate(&b[k]));
	}
	for (int k = 0; k < warm; k++)
		enqueue(k);
	for (int k = 0; k < runs; k++) {
		CK(cudaEventRecord(a[k], s));
		enqueue(warm + k);
		CK(cudaEventRecord(b[k], s));
	}
	CK(cudaStreamSynchronize(s));
	CK(cudaGetLastError());
	std::vector<float> ms;
	for (int k = 0; k < runs; k++) {
		float t;
		CK(cudaEventElapsedTime(&t, a[k], b[k]));
		ms.push_back(t);
		CK(cudaEventDestroy(a[k]));
		CK(cudaEventDestroy(b[k]));
	}
	std::sort(ms.begin(), ms.end());
	size_t m = ms.size();
	return m % 2 ? ms[m / 2] : 0.5 * (ms[m / 2 - 1] + ms[m / 2]);
}

/* Poison, decode, compare with the reference. */
static void check_output(const uint16_t *dev, const uint16_t *ref, uint64_t n,
			 const char *what)
{
	std::vector<uint16_t> h(n);
	CK(cudaDeviceSynchronize());
	CK(cudaMemcpy(h.data(), dev, n * 2, cudaMemcpyDeviceToHost));
	if (memcmp(h.data(), ref, n * 2) != 0) {
		uint64_t i = 0;
		while (h[i] == ref[i])
			i++;
		die("%s: GPU output differs from the reference at element %llu "
		    "(0x%04x, expected 0x%04x)", what, (unsigned long long)i, h[i],
		    ref[i]);
	}
}

/* One table row: the two kernels' medians beside the copy's. */
static void row(const char *name, uint64_t out_bytes, uint64_t enc_bytes,
		double win_ms, double stg_ms, double cpy_ms)
{
	double win = (double)out_bytes / win_ms * 1e-6; /* GB/s */
	double stg = (double)out_bytes / stg_ms * 1e-6;
	double cpy = (double)out_bytes / cpy_ms * 1e-6;
	/* memcpy moved 2 * out_bytes; at that rate, reading enc_bytes and
	 * writing out_bytes takes (enc + out) / (2 * out / cpy_ms). */
	double bound_ms = (double)(enc_bytes + out_bytes) * cpy_ms /
			  (2.0 * (double)out_bytes);
	double bound = (double)out_bytes / bound_ms * 1e-6;
	printf("%-24s %8.1f %6.3f %8.3f %8.3f %8.3f %8.1f %8.1f %8.1f %8.1f "
	       "%7.2f %7.2f %7.2f\n", name, (double)out_bytes / 1048576.0,
	       (double)enc_bytes / (double)out_bytes, win_ms, stg_ms, cpy_ms, win,
	       stg, cpy, bound, stg / cpy, stg / bound, stg / win);
	fflush(stdout);
}

static void header(void)
{
	printf("%-24s %8s %6s %8s %8s %8s %8s %8s %8s %8s %7s %7s %7s\n",
	       "tensor", "BF16 MiB", "ratio", "win ms", "stg ms", "copy ms",
	       "win GB/s", "stg GB/s", "copyGB/s", "boundGB/s", "s/copy",
	       "s/bound", "s/win");
}

/* --------------------------------------------------------------- cases */

/* Tensor i of m decoded into out by `kernel` on s. */
static void decode_with(const df11_cuda_model *m, size_t i, uint64_t n,
			uint16_t *out, int kernel, cudaStream_t s)
{
	df11_cuda_job j = {i, 0, n, out};
	OK(df11_cuda_decode_batch_kernel(m, &j, 1, kernel, s));
}

/* One tensor, rotated among enough copies to miss L2. */
static void bench_tensor(tensor *t, cudaStream_t s, int warm, int runs)
{
	uint64_t bytes = t->n * 2;
	int copies = (int)std::max<uint64_t>(1, (DF11_ROTATE_BYTES + bytes - 1) / bytes);
	std::vector<const void *> encs(copies, t->enc);
	std::vector<size_t> sizes(copies, t->size);
	df11_cuda_model *m = NULL;
	OK(df11_cuda_upload(encs.data(), sizes.data(), copies, NULL, 0, &m));
	std::vector<uint16_t *> out(copies), cpy(copies);
	for (int c = 0; c < copies; c++) {
		CK(cudaMalloc((void **)&out[c], bytes));
		CK(cudaMalloc((void **)&cpy[c], bytes));
	}
	double ms[2];
	for (int kernel = 0; kernel < 2; kernel++) {
		for (int c = 0; c < copies; c++)
			CK(cudaMemsetAsync(out[c], 0xa5, bytes, s));
		for (int c = 0; c < copies; c++)
			decode_with(m, c, t->n, out[c], kernel, s);
		OK(df11_cuda_check(m, s));
		for (int c = 0; c < copies; c++)
			check_output(out[c], t->ref, t->n, t->name);
		ms[kernel] = median_ms(s, warm, runs, [&](int k) {
			decode_with(m, k % copies, t->n, out[k % copies], kernel, s);
		});
		OK(df11_cuda_check(m, s));
		check_output(out[0], t->ref, t->n, t->name);
	}
	double cp = median_ms(s, warm, runs, [&](int k) {
		CK(cudaMemcpyAsync(cpy[k % copies], out[k % copies], bytes,
				   cudaMemcpyDeviceToDevice, s));
	});
	row(t->name, bytes, t->size, ms[DF11_CUDA_KERNEL_WINDOW],
	    ms[DF11_CUDA_KERNEL_STAGED], cp);
	for (int c = 0; c < copies; c++) {
		CK(cudaFree(out[c]));
		CK(cudaFree(cpy[c]));
	}
	df11_cuda_model_free(m);
}

/* The nine tensors of one layer: one batch launch per kernel, and nine
 * launches of the staged kernel. */
#define LAYER_TENSORS 9
static void bench_layer(tensor *L, cudaStream_t s, int warm, int runs)
{
	const int n = LAYER_TENSORS;
	uint64_t total = 0, enc = 0, off[LAYER_TENSORS];
	const void *encs[LAYER_TENSORS];
	size_t sizes[LAYER_TENSORS];
	for (int i = 0; i < n; i++) {
		off[i] = total;
		total += (L[i].n + 7) & ~(uint64_t)7; /* 16-byte aligned outputs */
		enc += L[i].size;
		encs[i] = L[i].enc;
		sizes[i] = L[i].size;
	}
	df11_cuda_model *m = NULL;
	OK(df11_cuda_upload(encs, sizes, n, NULL, 0, &m));
	uint16_t *out, *cpy;
	CK(cudaMalloc((void **)&out, total * 2));
	CK(cudaMalloc((void **)&cpy, total * 2));
	df11_cuda_job jobs[LAYER_TENSORS];
	for (int i = 0; i < n; i++)
		jobs[i] = df11_cuda_job{(size_t)i, 0, L[i].n, out + off[i]};
	double batch[2];
	for (int kernel = 0; kernel < 2; kernel++) {
		CK(cudaMemsetAsync(out, 0xa5, total * 2, s));
		OK(df11_cuda_decode_batch_kernel(m, jobs, n, kernel, s));
		OK(df11_cuda_check(m, s));
		for (int i = 0; i < n; i++)
			check_output(out + off[i], L[i].ref, L[i].n, L[i].name);
		batch[kernel] = median_ms(s, warm, runs, [&](int) {
			OK(df11_cuda_decode_batch_kernel(m, jobs, n, kernel, s));
		});
		OK(df11_cuda_check(m, s));
		for (int i = 0; i < n; i++)
			check_output(out + off[i], L[i].ref, L[i].n, L[i].name);
	}
	double nine = median_ms(s, warm, runs, [&](int) {
		for (int i = 0; i < n; i++)
			OK(df11_cuda_decode(m, i, out + off[i], s));
	});
	double cp = median_ms(s, warm, runs, [&](int) {
		CK(cudaMemcpyAsync(cpy, out, total * 2, cudaMemcpyDeviceToDevice, s));
	});
	OK(df11_cuda_check(m, s));
	for (int i = 0; i < n; i++)
		check_output(out + off[i], L[i].ref, L[i].n, L[i].name);
	uint64_t elems = 0;
	for (int i = 0; i < n; i++)
		elems += L[i].n;
	row("nemo layer, 1 batch", elems * 2, enc, batch[DF11_CUDA_KERNEL_WINDOW],
	    batch[DF11_CUDA_KERNEL_STAGED], cp);
	/* The window column repeats the batch: nine launches are staged only. */
	row("nemo layer, 9 launches", elems * 2, enc,
	    batch[DF11_CUDA_KERNEL_WINDOW], nine, cp);
	CK(cudaFree(out));
	CK(cudaFree(cpy));
	df11_cuda_model_free(m);
}

/* A tensor of 2.2G elements (4.4 GB of BF16): both kernels' output equals
 * the original words, then the timing of each. */
static void bench_huge(cudaStream_t s, int warm, int runs)
{
	const uint64_t cols = 5120, rows = 429700; /* 2,200,064,000 elements */
	tensor t = {};
	t.name = "2.2G elements";
	t.rows = rows;
	t.cols = cols;
	t.n = rows * cols;
	uint16_t *src = synth(rows, cols, 77);
	t.src = src;
	encode(&t);
	const void *e = t.enc;
	size_t sz = t.size;
	df11_cuda_model *m = NULL;
	OK(df11_cuda_upload(&e, &sz, 1, NULL, 0, &m));
	uint16_t *out, *cpy;
	CK(cudaMalloc((void **)&out, t.n * 2));
	CK(cudaMalloc((void **)&cpy, t.n * 2));
	double ms[2];
	for (int kernel = 0; kernel < 2; kernel++) {
		CK(cudaMemsetAsync(out, 0xa5, t.n * 2, s));
		decode_with(m, 0, t.n, out, kernel, s);
		OK(df11_cuda_check(m, s));
		check_output(out, src, t.n, kernel ? "2.2G, staged" : "2.2G, window");
		printf("2.2G-element tensor (%llu elements), %s kernel: bit-exact\n",
		       (unsigned long long)t.n, kernel ? "staged" : "window");
		ms[kernel] = median_ms(s, warm, runs, [&](int) {
			decode_with(m, 0, t.n, out, kernel, s);
		});
		OK(df11_cuda_check(m, s));
		check_output(out, src, t.n, kernel ? "2.2G, staged" : "2.2G, window");
	}
	double cp = median_ms(s, warm, runs, [&](int) {
		CK(cudaMemcpyAsync(cpy, out, t.n * 2, cudaMemcpyDeviceToDevice, s));
	});
	row(t.name, t.n * 2, t.size, ms[0], ms[1], cp);
	CK(cudaFree(out));
	CK(cudaFree(cpy));
	df11_cuda_model_free(m);
	free(t.enc);
	free(src);
}

/* A norm's weights: values in [0.5, 2) with random mantissas. */
static uint16_t *norm_weights(uint64_t n, uint64_t seed)
{
	uint16_t *w = (uint16_t *)malloc(n * 2);
	if (!w)
		die("out of host memory");
	df11_rng r;
	df11_rng_seed(&r, seed);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = df11_rng_next(&r);
		w[i] = (uint16_t)(((126u + (x & 1u)) << 7) | ((x >> 1) & 0x7fu));
	}
	return w;
}

int main(int argc, char **argv)
{
	int runs = 20, warm = 5, quick = 0, huge = 1;
	uint64_t max_mib = 1024;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--no-huge"))
			huge = 0;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-mib") && i + 1 < argc)
			max_mib = strtoull(argv[++i], NULL, 10);
		else
			die("usage: bench_cuda_decode [--quick] [--runs N] [--max-mib M] "
			    "[--no-huge]");
	}
	if (quick) {
		max_mib = std::min<uint64_t>(max_mib, 64);
		runs = 5;
		warm = 2;
		huge = 0;
	}
	if (runs < 20 && !quick)
		die("--runs must be at least 20 for a median worth reporting");
	if (max_mib < 8)
		die("--max-mib must be at least 8");
	if (df11_cuda_available() != DF11_OK)
		die("%s", df11_last_error());

	int dev, rt, drv;
	cudaDeviceProp p;
	CK(cudaGetDevice(&dev));
	CK(cudaGetDeviceProperties(&p, dev));
	CK(cudaRuntimeGetVersion(&rt));
	CK(cudaDriverGetVersion(&drv));
	printf("device: %s, sm_%d%d, %d SMs, L2 %d MiB, %.1f GiB; CUDA runtime "
	       "%d, driver %d\n", p.name, p.major, p.minor, p.multiProcessorCount,
	       p.l2CacheSize >> 20, (double)p.totalGlobalMem / (1 << 30), rt, drv);
	printf("median of %d runs after %d warm-ups; GB/s = 1e9 BF16 bytes "
	       "written per second; win = window kernel, stg = staged kernel "
	       "(the default)\n", runs, warm);

	/* Single tensors: prefixes (whole rows) of one large matrix, in the
	 * default layout (2048-bit windows, one lane's run each), and the 8
	 * and 64 MiB ones also with 512-bit windows ("w512": 4x the lanes,
	 * about 0.02 bits per weight more index in the file). */
	static const uint64_t mibs[] = {8, 64, 256, 1024};
	const uint64_t cols = 4096;
	uint64_t max_n = 0;
	for (uint64_t mib : mibs)
		if (mib <= max_mib)
			max_n = mib << 19;
	uint16_t *big = synth(max_n / cols, cols, 1);
	std::vector<tensor> T;
	static char names[8][40];
	for (uint64_t mib : mibs) {
		if (mib > max_mib)
			break;
		for (int w = 0; w < (mib <= 64 ? 2 : 1); w++) {
			tensor t = {};
			t.window_log2 = w ? 9 : 0;
			snprintf(names[T.size()], sizeof names[0], "matrix %llu MiB%s",
				 (unsigned long long)mib, w ? " w512" : "");
			t.name = names[T.size()];
			t.n = mib << 19;
			t.rows = t.n / cols;
			t.cols = cols;
			t.src = big;
			encode(&t);
			T.push_back(t);
		}
	}
	df11_parallel_run((int)T.size(), ref_one, T.data());

	cudaStream_t s;
	CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	header();
	for (tensor &t : T)
		bench_tensor(&t, s, warm, runs);

	if (!quick) {
		static const struct { const char *name; uint64_t rows, cols; }
			nemo[LAYER_TENSORS] = {
			{"q_proj", 4096, 5120},      {"k_proj", 1024, 5120},
			{"v_proj", 1024, 5120},      {"o_proj", 5120, 4096},
			{"gate_proj", 14336, 5120},  {"up_proj", 14336, 5120},
			{"down_proj", 5120, 14336},  {"input_layernorm", 1, 5120},
			{"post_attention_layernorm", 1, 5120},
		};
		tensor L[LAYER_TENSORS];
		std::vector<uint16_t *> srcs;
		for (int i = 0; i < LAYER_TENSORS; i++) {
			L[i] = tensor{};
			L[i].name = nemo[i].name;
			L[i].rows = nemo[i].rows;
			L[i].cols = nemo[i].cols;
			L[i].n = nemo[i].rows * nemo[i].cols;
			srcs.push_back(nemo[i].rows == 1
					       ? norm_weights(L[i].n, 10 + (uint64_t)i)
					       : synth(nemo[i].rows, nemo[i].cols,
						       10 + (uint64_t)i));
			L[i].src = srcs.back();
			encode(&L[i]);
		}
		df11_parallel_run(LAYER_TENSORS, ref_one, L);
		bench_layer(L, s, warm, runs);
		for (int i = 0; i < LAYER_TENSORS; i++) {
			free(L[i].enc);
			free(L[i].ref);
			free(srcs[i]);
		}
	}
	for (tensor &t : T) {
		free(t.enc);
		free(t.ref);
	}
	free(big);
	if (huge)
		bench_huge(s, warm, runs);
	CK(cudaStreamDestroy(s));
	return 0;
}
