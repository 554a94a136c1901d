/*
 * libdf11_cuda's fused decode + matrix-vector products
 * (include/df11_cuda.h, df11_cuda_gemv*): the per-thread work of
 * cuda/fused.h put in sequence with barriers; tests/test_fused_emul.c runs
 * the same sequence on the CPU.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/error.h"
#include "cuda/cuda_fail.h"
}

#include "cuda/fused.h"
#include "cuda/fused_plan.h"
#include "cuda/model.h"
#include "df11_cuda.h"

static_assert(DF11F_MAX_B == DF11_CUDA_GEMV_MAX_BATCH, "batch limits differ");
static_assert(DF11F_MAX_JOBS == DF11_CUDA_GEMV_MAX_JOBS, "job limits differ");
static_assert(alignof(df11f_smem) == 16, "tables are copied as 16-byte vectors");

#define FUSED_MAX_THREADS (32 * DF11F_MAX_WARPS)

/* Programmatic dependent launch: the kernels are launched so that they may
 * start while the previous kernel on the stream finishes. Their prologue
 * reads only the model (tables, index), never what the previous kernel
 * writes; this waits for that kernel's completion and memory before x or y
 * is touched. Without the launch attribute it returns at once. */
static __device__ __forceinline__ void df11f_wait_inputs(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
	cudaGridDependencySynchronize();
#endif
}

/* Both kernels' start: the CTA's matrix and tile, its tables in shared
 * memory and its rows' bits summed, then the wait for the inputs. */
static __device__ __forceinline__ const df11f_matrix *
df11f_prologue(const df11f_launch *L, df11f_smem *sh, uint64_t *tile)
{
	const uint32_t tid = threadIdx.x;
	const df11f_matrix *M = &L->job[df11f_find_job(L, blockIdx.x)];
	*tile = blockIdx.x - M->cta_base;
	if (M->kind == DF11F_HUFFMAN) { /* CTA-uniform */
		df11f_load_tables(M, sh, tid, blockDim.x);
		df11f_row_bits(L, M, sh, *tile, tid);
	}
	df11f_wait_inputs();
	__syncthreads();
	return M;
}

/* One CTA per tile of 32 rows, batch widths below DF11F_MMA_NB (FP32
 * FMAs); NB is a template argument so that each lane's accumulators are
 * registers. */
template <int NB>
__global__ void __launch_bounds__(FUSED_MAX_THREADS, 1)
df11f_kernel(const __grid_constant__ df11f_launch L, unsigned int *err)
{
	__shared__ __align__(16) df11f_smem sh;
	extern __shared__ float red[]; /* (warps, NB, 32) */
	const uint32_t tid = threadIdx.x, nthreads = blockDim.x;
	uint64_t tile;
	const df11f_matrix *M = df11f_prologue(&L, &sh, &tile);
	const uint32_t bad = df11f_lane(&L, M, &sh, tile, tid >> 5, tid & 31u,
					red, NB);
	__syncthreads();
	df11f_store(&L, M, tile, tid, nthreads, red, NB);
	if (bad && err) /* err is NULL when every job is BF16 */
		atomicOr(err, DF11F_ERR_INDEX);
}

/* One mma.sync.m16n8k16 of the warp: c += A B, BF16 inputs, FP32
 * accumulators (fragment layout in cuda/fused.h). */
static __device__ __forceinline__ void df11f_mma(const uint32_t a[4],
						 const uint32_t b[2], float c[4])
{
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
		     "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
		     "{%0, %1, %2, %3};"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
		       "r"(b[1]));
}

/* Batch widths from DF11F_MMA_NB: the same CTA, tiles and sums, with the
 * products on the tensor cores, 16 columns per warp step. */
template <int NB>
__global__ void __launch_bounds__(FUSED_MAX_THREADS, 1)
df11f_mma_kernel(const __grid_constant__ df11f_launch L, unsigned int *err)
{
	static_assert(NB >= DF11F_MMA_NB && NB % 8 == 0, "tensor-core batch width");
	__shared__ __align__(16) df11f_smem sh;
	extern __shared__ float red[]; /* (warps, NB, 32), then the tiles */
	const uint32_t tid = threadIdx.x, nthreads = blockDim.x;
	const uint32_t warp = tid >> 5, lane = tid & 31u;
	uint64_t tile;
	const df11f_matrix *M = df11f_prologue(&L, &sh, &tile);
	uint16_t *wt = (uint16_t *)(red + df11f_red_floats(L.warps, NB)) +
		       warp * DF11F_TILE_HALVES;
	constexpr uint32_t NT = NB / 8;
	float acc[2 * NT * 4];
#pragma unroll
	for (uint32_t i = 0; i < 2 * NT * 4; i++)
		acc[i] = 0.0f;
	df11f_cursor C;
	df11f_cursor_init(&L, M, &sh, tile, lane, &C);
	for (uint32_t c = warp; c < L.n_segs; c += L.warps) { /* warp-uniform */
		df11f_cursor_seg(M, &C, c);
		uint32_t k0, k1;
		df11f_seg_cols(&L, c, &k0, &k1);
		for (uint32_t k = k0; k < k1; k += 16u) {
			df11f_mma_load(&L, M, &sh, &C, k, k1, wt, lane);
			__syncwarp();
			uint32_t a[2][4], b[NT][2];
			df11f_mma_frag_a(wt, lane, 0, a[0]);
			df11f_mma_frag_a(wt, lane, 1, a[1]);
#pragma unroll
			for (uint32_t nt = 0; nt < NT; nt++)
				df11f_mma_frag_b(&L, k, k1, nt, lane, b[nt]);
			__syncwarp(); /* the tile is free for the next load */
#pragma unroll
			for (uint32_t mt = 0; mt < 2; mt++)
#pragma unroll
				for (uint32_t nt = 0; nt < NT; nt++)
					df11f_mma(a[mt], b[nt], acc + (mt * NT + nt) * 4);
		}
		df11f_cursor_check(M, &C, c);
	}
	df11f_mma_store(acc, warp, lane, red, NB);
	__syncthreads();
	df11f_store(&L, M, tile, tid, nthreads, red, NB);
	if (C.bad && err)
		atomicOr(err, DF11F_ERR_INDEX);
}

/* The prepare's launches, one thread per segment (cuda/fused.h). */
__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11f_seek_kernel(const df11k_tensor t, uint64_t rows, uint64_t cols,
		  uint64_t *start, unsigned int *err)
{
	__shared__ __align__(16) df11k_smem sh;
	df11k_load_tables(&t, &sh, threadIdx.x);
	__syncthreads();
	uint32_t bad = 0;
	df11f_index_seek(&t, sh.multi, sh.len, cols, rows,
			 (uint64_t)blockIdx.x * DF11K_THREADS + threadIdx.x,
			 start, &bad);
	if (bad)
		atomicOr(err, 1u);
}

__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11f_pack_kernel(uint64_t rows, uint64_t cols, const uint64_t *start,
		  uint8_t *index, unsigned int *err)
{
	uint32_t bad = 0;
	df11f_index_pack(cols, rows,
			 (uint64_t)blockIdx.x * DF11K_THREADS + threadIdx.x,
			 start, index, &bad);
	if (bad)
		atomicOr(err, 1u);
}

#define CU(call, what) do { cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) { r = df11_cuda_fail(e_, what); goto out; } } while (0)

extern "C" df11_result df11_cuda_gemv_prepare(df11_cuda_model *m, size_t i,
					      uint64_t rows, uint64_t cols)
{
	if (!m || i >= m->n)
		return df11_fail(DF11_INVALID_ARG, "GPU GEMV prepare: tensor %zu "
				 "of %zu", i, m ? m->n : 0);
	cuda_tensor *T = &m->tensors[i];
	df11f_matrix M;
	static const uint8_t dummy_index[8] = {0};
	df11_result r = df11f_matrix_from_tensor(&M, &T->t, dummy_index, rows, cols);
	if (r != DF11_OK)
		return r;
	if (T->rows == rows && T->cols == cols)
		return DF11_OK;
	if (T->fused)
		cudaFree(T->fused);
	T->fused = NULL;
	T->rows = T->cols = 0;
	if (T->t.codec != DF11_CODEC_HUFFMAN) {
		T->rows = rows;
		T->cols = cols;
		return DF11_OK;
	}
	const uint64_t n = rows * df11f_n_segs(cols) + 1; /* + the stream's end */
	const uint64_t ctas = (n + DF11K_THREADS - 1) / DF11K_THREADS;
	if (ctas > INT32_MAX)
		return df11_fail(DF11_LIMIT, "GPU GEMV prepare: %llu segments",
				 (unsigned long long)n);
	uint64_t *start = NULL;
	unsigned int *flag = NULL, h = 0;
	uint8_t *index = NULL;
	CU(cudaMalloc((void **)&index, df11f_index_size(rows, cols)), "GPU GEMV prepare: index");
	CU(cudaMalloc((void **)&start, 8 * n + 256), "GPU GEMV prepare: scratch");
	flag = (unsigned int *)(start + n);
	CU(cudaMemset(flag, 0, sizeof *flag), "GPU GEMV prepare");
	df11f_seek_kernel<<<(unsigned)ctas, DF11K_THREADS>>>(T->t, rows, cols, start, flag);
	CU(cudaGetLastError(), "GPU GEMV prepare: seek launch");
	df11f_pack_kernel<<<(unsigned)ctas, DF11K_THREADS>>>(rows, cols, start, index, flag);
	CU(cudaGetLastError(), "GPU GEMV prepare: pack launch");
	CU(cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost), "GPU GEMV prepare");
	if (h) {
		r = df11_fail(DF11_BAD_DATA, "GPU GEMV prepare: tensor %zu: the "
			      "exponent stream disagrees with its entry points", i);
		goto out;
	}
	T->fused = index;
	T->rows = rows;
	T->cols = cols;
	index = NULL;
	r = DF11_OK;
out:
	if (index)
		cudaFree(index);
	if (start)
		cudaFree(start);
	return r;
}

#undef CU

extern "C" size_t df11_cuda_gemv_index_size(const df11_cuda_model *m, size_t i)
{
	if (!m || i >= m->n || !m->tensors[i].fused)
		return 0;
	return (size_t)df11f_index_size(m->tensors[i].rows, m->tensors[i].cols);
}

/* The kernel of batch width nb, with its dynamic shared memory allowed
 * (once per process: the attribute belongs to the kernel). */
template <int NB>
static cudaError_t launch_nb(const df11f_launch *L, unsigned int *err,
			     cudaStream_t stream)
{
	static int smem_set;
	const uint32_t smem = df11f_launch_smem(L);
	const uint32_t most = df11f_dyn_smem(DF11F_MAX_WARPS, NB);
	void (*kernel)(const df11f_launch, unsigned int *);
	if constexpr (NB >= DF11F_MMA_NB)
		kernel = df11f_mma_kernel<NB>;
	else
		kernel = df11f_kernel<NB>;
	if (!smem_set && most > 48u * 1024u - sizeof(df11f_smem)) {
		cudaError_t e = cudaFuncSetAttribute(
			kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)most);
		if (e != cudaSuccess)
			return e;
	}
	smem_set = 1;
	/* Overlap the prologue (tables into shared memory) with the end of
	 * the kernel before, which writes x (df11f_wait_inputs). */
	cudaLaunchAttribute attr[1];
	attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
	attr[0].val.programmaticStreamSerializationAllowed = 1;
	cudaLaunchConfig_t cfg = {};
	cfg.gridDim = dim3(L->n_ctas);
	cfg.blockDim = dim3(df11f_launch_threads(L));
	cfg.dynamicSmemBytes = smem;
	cfg.stream = stream;
	cfg.attrs = attr;
	cfg.numAttrs = 1;
	return cudaLaunchKernelEx(&cfg, kernel, *L, err);
}

extern "C" df11_result df11_cuda_gemv(const df11_cuda_model *m,
				      const df11_cuda_gemv_job *jobs,
				      size_t n_jobs, const uint16_t *x,
				      size_t ldx, uint64_t cols, int batch,
				      int accumulate, cudaStream_t stream)
{
	df11f_launch L;
	df11_result r = df11f_launch_init(&L, x, ldx, cols, batch, accumulate);
	if (r != DF11_OK)
		return r;
	if (!jobs || n_jobs == 0 || n_jobs > DF11F_MAX_JOBS || !x ||
	    ((uintptr_t)x & 1u))
		return df11_fail(DF11_INVALID_ARG, "GPU GEMV: %zu jobs (1..%u), x %p "
				 "(2-byte aligned)", n_jobs, DF11F_MAX_JOBS,
				 (const void *)x);
	unsigned int *err = NULL;
	for (size_t j = 0; j < n_jobs; j++) {
		const df11_cuda_gemv_job *J = &jobs[j];
		df11f_matrix M;
		if (!J->y || ((uintptr_t)J->y & 3u))
			return df11_fail(DF11_INVALID_ARG, "GPU GEMV: job %zu: y %p "
					 "(4-byte aligned)", j, (void *)J->y);
		if (J->bf16) {
			if (J->rows == 0 || ((uintptr_t)J->bf16 & 1u))
				return df11_fail(DF11_INVALID_ARG, "GPU GEMV: job %zu: "
						 "%llu rows at %p", j,
						 (unsigned long long)J->rows,
						 (const void *)J->bf16);
			df11f_matrix_from_bf16(&M, J->bf16, J->rows);
		} else {
			if (!m || J->tensor >= m->n)
				return df11_fail(DF11_INVALID_ARG, "GPU GEMV: job %zu: "
						 "tensor %zu of %zu", j, J->tensor,
						 m ? m->n : 0);
			const cuda_tensor *T = &m->tensors[J->tensor];
			if (T->cols != cols)
				return df11_fail(DF11_INVALID_ARG, "GPU GEMV: tensor %zu "
						 "is not prepared as a matrix of "
						 "%llu columns", J->tensor,
						 (unsigned long long)cols);
			r = df11f_matrix_from_tensor(&M, &T->t, T->fused, T->rows, cols);
			if (r != DF11_OK)
				return r;
			err = m->err;
		}
		r = df11f_launch_add(&L, &M, J->y, J->ldy);
		if (r != DF11_OK)
			return r;
	}
	cudaError_t e;
	switch (L.nb) {
	case 1: e = launch_nb<1>(&L, err, stream); break;
	case 2: e = launch_nb<2>(&L, err, stream); break;
	case 4: e = launch_nb<4>(&L, err, stream); break;
	case 8: e = launch_nb<8>(&L, err, stream); break;
	case 16: e = launch_nb<16>(&L, err, stream); break;
	default: e = launch_nb<32>(&L, err, stream); break;
	}
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU GEMV: kernel launch");
	return DF11_OK;
}
