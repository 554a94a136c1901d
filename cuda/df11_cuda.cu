/*
 * libdf11_cuda: upload encoded tensors, decode them on the GPU
 * (include/df11_cuda.h). The kernel is the per-thread work of
 * cuda/decode_kernel.h put in sequence with barriers and a CTA-wide scan;
 * tests/test_cuda_emul.c runs the same sequence on the CPU.
 *
 * Device image of a model (one allocation, or the caller's memory):
 *
 *   +0     u32 error flag (DF11K_ERR_*), then padding to DF11K_ALIGN
 *   then per tensor, each region DF11K_ALIGN-aligned:
 *          the encoded tensor, byte for byte as df11_encode wrote it
 *          huffman only: decode tables (cuda/plan.h, DF11K_TABLES_SIZE)
 *          huffman only: u32 per window, where its codes go (made at
 *          upload by the count kernel)
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The C headers, with C linkage for the functions libdf11 defines. */
extern "C" {
#include "codec/parse.h"
#include "common/error.h"
#include "cuda/cuda_fail.h"
#include "huffman/huffman.h"
}

#include "cuda/decode_kernel.h"
#include "cuda/decode_staged.h"
#include "cuda/kernels.h"
#include "cuda/model.h"
#include "cuda/plan.h"
#include "df11_cuda.h"

static_assert(DF11K_MAX_JOBS == DF11_CUDA_MAX_BATCH,
	      "kernel batch size differs from the public one");
static_assert(DF11K_THREADS % 32 == 0, "CTA must be whole warps");
static_assert(alignof(df11k_smem) == 16, "tables are copied as 16-byte vectors");
static_assert(alignof(df11k2_smem) == 16, "tables are copied as 16-byte vectors");

#define HEADER_SIZE DF11K_ALIGN /* the error flag's region */

/* ------------------------------------------------------------ kernel */

/* Every kernel says "at least 1 CTA per SM" in its launch bounds: with the
 * thread count alone, ptxas caps 128- and 256-thread builds at 40
 * registers and the count kernel spills (scripts/test-ptxas.sh). */

/* One CTA per work item (decode_kernel.h). The batch is a __grid_constant__
 * parameter, so &b.job[j] points into parameter space instead of forcing a
 * local copy of the 3 KB struct. */
__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11k_decode_kernel(const __grid_constant__ df11k_batch b, unsigned int *err)
{
	__shared__ __align__(16) df11k_smem sh;
	const uint32_t tid = threadIdx.x, cta = blockIdx.x;
	const df11k_job *J = &b.job[df11k_find_job(&b, cta)];
	const uint64_t item = J->item_lo + (cta - J->item_base);
	if (J->t.codec != DF11_CODEC_HUFFMAN) { /* CTA-uniform */
		df11k_plain(J, item, tid);
		return;
	}
	df11k_load_tables(&J->t, &sh, tid);
	__syncthreads();
	if (df11k_decode(J, &sh, item, tid))
		atomicOr(err, DF11K_ERR_INDEX);
}

/* The refill between steps (decode_staged.h): every lane short of stream
 * words asks for its next piece; the warp loads them, 8 per round. */
static __device__ __forceinline__ void df11k2_refill(const df11k_tensor *t,
						     df11k2_warp *ws,
						     df11k2_lane *L,
						     uint32_t lane)
{
	uint64_t piece = 0;
	const uint32_t need = df11k2_lane_want(L, &piece);
	if (need)
		ws->want[lane] = piece;
	uint32_t mask = __ballot_sync(DF11K2_FULL, need);
	__syncwarp();
	while (mask) { /* warp-uniform */
		df11k2_refill_part(t, ws, df11k2_refill_owner(mask, lane), lane);
		mask = df11k2_refill_next(mask);
	}
	if (need)
		df11k2_lane_refilled(t, L);
	__syncwarp();
}

/* The staged decode kernel (decode_staged.h): one CTA per work item, its
 * warps independent after the tables are in shared memory. */
__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11k2_decode_kernel(const __grid_constant__ df11k_batch b, unsigned int *err)
{
	__shared__ __align__(16) df11k2_smem sh;
	const uint32_t tid = threadIdx.x, cta = blockIdx.x, lane = tid & 31u;
	const df11k_job *J = &b.job[df11k_find_job(&b, cta)];
	const uint64_t item = J->item_lo + (cta - J->item_base);
	if (J->t.codec != DF11_CODEC_HUFFMAN) { /* CTA-uniform */
		df11k2_plain(J, item, tid);
		return;
	}
	df11k2_load_tables(&J->t, &sh, tid);
	__syncthreads();
	df11k2_warp *ws = &sh.warp[tid >> 5];
	const df11k_sink sink = {J->dst, J->t.plane + J->first,
				 (int64_t)J->count, (int)J->vec_ok};
	df11k2_lane L;
	df11k2_lane_init(J, item, tid, &L);
	df11k2_refill(&J->t, ws, &L, lane); /* the two pieces around the */
	df11k2_refill(&J->t, ws, &L, lane); /* lane's first word */
	df11k2_lane_start(ws, lane, &L);
	while (__any_sync(DF11K2_FULL, L.state == DF11K2_RUN)) {
		df11k2_lane_step(&J->t, &sh, ws, lane, &sink, &L);
		/* Inclusive scan of the pending chunks over the warp. */
		uint32_t x = df11k2_lane_publish(ws, lane, &L);
#pragma unroll
		for (uint32_t d = 1; d < 32; d <<= 1) {
			uint32_t y = __shfl_up_sync(DF11K2_FULL, x, d);
			if (lane >= d)
				x += y;
		}
		ws->incl[lane] = x;
		__syncwarp();
		df11k2_flush(ws, &sink, lane);
		df11k2_lane_flushed(&L);
		__syncwarp(); /* ring slots flushed before they are refilled */
		df11k2_refill(&J->t, ws, &L, lane);
	}
	if (L.bad)
		atomicOr(err, DF11K_ERR_INDEX);
}

/* The upload's count launch: per-window code counts, checked against the
 * index, scanned into the tensor's window offsets. */
__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11k_count_kernel(const __grid_constant__ df11k_batch b, unsigned int *err)
{
	__shared__ __align__(16) df11k_smem sh;
	const uint32_t tid = threadIdx.x, cta = blockIdx.x;
	const df11k_job *J = &b.job[df11k_find_job(&b, cta)];
	const uint64_t item = J->item_lo + (cta - J->item_base);
	df11k_load_tables(&J->t, &sh, tid);
	__syncthreads();

	uint32_t bad = 0;
	const uint32_t n = df11k_count(&J->t, &sh, item, tid, J->win_off_out, &bad);

	/* Exclusive scan of n over the CTA: inclusive within each warp by
	 * shuffles, then the totals of the warps before. */
	const uint32_t lane = tid & 31u, warp = tid >> 5;
	uint32_t x = n;
#pragma unroll
	for (uint32_t d = 1; d < 32; d <<= 1) {
		uint32_t y = __shfl_up_sync(0xffffffffu, x, d);
		if (lane >= d)
			x += y;
	}
	if (lane == 31)
		sh.warp_sum[warp] = x;
	__syncthreads();
	uint32_t before = 0, total = 0;
#pragma unroll
	for (uint32_t w = 0; w < DF11K_THREADS / 32; w++) {
		uint32_t v = sh.warp_sum[w];
		before += w < warp ? v : 0u;
		total += v;
	}
	const uint32_t offset = before + x - n;
	bad |= df11k_check(&J->t, item, tid, offset, total);
	if (__syncthreads_or(bad)) {
		if (tid == 0)
			atomicOr(err, DF11K_ERR_INDEX);
		return;
	}
	df11k_count_finish(&J->t, item, tid, offset, J->win_off_out);
}

/* The upload's entry launch, after the count launch: the staged kernel's
 * run entry points, one thread per window. */
__global__ void __launch_bounds__(DF11K_THREADS, 1)
df11k2_entry_kernel(const df11k_tensor t, uint32_t *run_off, unsigned int *err)
{
	__shared__ __align__(16) df11k_smem sh;
	const uint32_t tid = threadIdx.x;
	df11k_load_tables(&t, &sh, tid);
	__syncthreads();
	uint32_t bad = 0;
	df11k2_window_entries(&t, &sh, (uint64_t)blockIdx.x * DF11K_THREADS + tid,
			      run_off, &bad);
	if (bad)
		atomicOr(err, DF11K_ERR_INDEX);
}

/* ------------------------------------------------------------ upload */

/* Parses every tensor (into parsed[] if not NULL) and sums the image. */
static df11_result plan_upload(const void *const *encoded, const size_t *sizes,
			       size_t n_tensors, df11_parsed *parsed,
			       size_t *size_ret)
{
	uint64_t total = HEADER_SIZE;
	*size_ret = 0;
	if ((!encoded || !sizes) && n_tensors)
		return df11_fail(DF11_INVALID_ARG, "GPU upload: NULL tensor list");
	for (size_t i = 0; i < n_tensors; i++) {
		df11_parsed P, *p = parsed ? &parsed[i] : &P;
		df11_result r = df11_parse(encoded[i], sizes[i], p);
		if (r != DF11_OK)
			return df11_fail(r, "GPU upload: tensor %zu: %s", i,
					 df11_last_error());
		uint64_t s = df11k_image_size(p);
		if (s > SIZE_MAX - total)
			return df11_fail(DF11_LIMIT, "GPU upload: images overflow");
		total += s;
	}
	*size_ret = (size_t)total;
	return DF11_OK;
}

extern "C" size_t df11_cuda_upload_size(const void *const *encoded,
					const size_t *sizes, size_t n_tensors)
{
	size_t n;
	return plan_upload(encoded, sizes, n_tensors, NULL, &n) == DF11_OK ? n : 0;
}

/* The count launch for tensor i (synchronous): fills its window offsets
 * and rejects a stream that disagrees with its index. */
static df11_result count_windows(df11_cuda_model *m, const df11k_tensor *t,
				 uint32_t *win_off, size_t i)
{
	df11k_batch b;
	df11k_job J;
	unsigned int flag = 0;
	b.n_jobs = b.n_items = 0;
	df11_result r = df11k_count_job_init(&J, t, win_off);
	if (r == DF11_OK)
		r = df11k_batch_add(&b, &J);
	if (r != DF11_OK)
		return r;
	df11k_count_kernel<<<b.n_items, DF11K_THREADS>>>(b, m->err);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU upload: count kernel launch");
	e = cudaMemcpy(&flag, m->err, sizeof flag, cudaMemcpyDeviceToHost);
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU upload: count kernel");
	if (!flag) {
		const uint64_t n = (t->n_windows + DF11K_THREADS - 1) / DF11K_THREADS;
		if (n > INT32_MAX)
			return df11_fail(DF11_LIMIT, "GPU upload: %llu CTAs",
					 (unsigned long long)n);
		df11k2_entry_kernel<<<(unsigned)n, DF11K_THREADS>>>(
			*t, (uint32_t *)t->run_off, m->err);
		e = cudaGetLastError();
		if (e != cudaSuccess)
			return df11_cuda_fail(e, "GPU upload: entry kernel launch");
		e = cudaMemcpy(&flag, m->err, sizeof flag, cudaMemcpyDeviceToHost);
		if (e != cudaSuccess)
			return df11_cuda_fail(e, "GPU upload: entry kernel");
	}
	if (flag)
		return df11_fail(DF11_BAD_DATA, "GPU upload: tensor %zu: the "
				 "exponent stream disagrees with its index", i);
	return DF11_OK;
}

extern "C" void df11_cuda_model_free(df11_cuda_model *m)
{
	if (!m)
		return;
	if (m->owned)
		cudaFree(m->mem);
	if (m->tensors)
		for (size_t i = 0; i < m->n; i++) {
			free(m->tensors[i].block_starts);
			if (m->tensors[i].fused)
				cudaFree(m->tensors[i].fused);
		}
	free(m->tensors);
	free(m);
}

extern "C" df11_result df11_cuda_upload(const void *const *encoded,
					const size_t *sizes, size_t n_tensors,
					void *device_mem, size_t device_mem_size,
					df11_cuda_model **model_ret)
{
	if (!model_ret)
		return df11_fail(DF11_INVALID_ARG, "GPU upload: NULL model_ret");
	*model_ret = NULL;
	df11_parsed *P = (df11_parsed *)calloc(n_tensors ? n_tensors : 1, sizeof *P);
	df11_cuda_model *m = (df11_cuda_model *)calloc(1, sizeof *m);
	uint8_t *tables = (uint8_t *)malloc(DF11K_TABLES_SIZE);
	df11_result r = DF11_OK;
	cudaError_t e;
	size_t need;
	uint64_t off;
	if (!P || !m || !tables) {
		r = df11_fail(DF11_NOMEM, "GPU upload: host metadata");
		goto fail;
	}
	m->tensors = (cuda_tensor *)calloc(n_tensors ? n_tensors : 1,
					   sizeof *m->tensors);
	if (!m->tensors) {
		r = df11_fail(DF11_NOMEM, "GPU upload: host metadata");
		goto fail;
	}
	m->n = n_tensors;
	r = plan_upload(encoded, sizes, n_tensors, P, &need);
	if (r != DF11_OK)
		goto fail;
	if (device_mem) {
		if (device_mem_size < need) {
			r = df11_fail(DF11_BUFFER_TOO_SMALL, "GPU upload: %zu device "
				      "bytes given, %zu needed", device_mem_size,
				      need);
			goto fail;
		}
		if ((uintptr_t)device_mem % DF11K_ALIGN) {
			r = df11_fail(DF11_INVALID_ARG, "GPU upload: device memory "
				      "not %u-byte aligned", DF11K_ALIGN);
			goto fail;
		}
		m->mem = (uint8_t *)device_mem;
	} else {
		e = cudaMalloc((void **)&m->mem, need);
		if (e != cudaSuccess) {
			m->mem = NULL;
			r = df11_cuda_fail(e, "GPU upload: cudaMalloc");
			goto fail;
		}
		m->owned = 1;
	}
	m->mem_size = need;
	m->err = (unsigned int *)(void *)m->mem;
	e = cudaMemset(m->mem, 0, HEADER_SIZE);
	if (e != cudaSuccess) {
		r = df11_cuda_fail(e, "GPU upload: cudaMemset");
		goto fail;
	}

	off = HEADER_SIZE;
	for (size_t i = 0; i < n_tensors; i++) {
		const df11_layout *L = &P[i].layout;
		uint8_t *bytes = m->mem + off;
		uint8_t *dtab = bytes + df11k_tables_offset(&P[i]);
		e = cudaMemcpy(bytes, encoded[i], sizes[i], cudaMemcpyHostToDevice);
		if (e != cudaSuccess) {
			r = df11_cuda_fail(e, "GPU upload: cudaMemcpy");
			goto fail;
		}
		if (L->codec == DF11_CODEC_HUFFMAN) {
			df11k_build_tables(&P[i], tables);
			e = cudaMemcpy(dtab, tables, DF11K_TABLES_SIZE,
				       cudaMemcpyHostToDevice);
			if (e != cudaSuccess) {
				r = df11_cuda_fail(e, "GPU upload: cudaMemcpy");
				goto fail;
			}
			size_t bs = (size_t)L->n_blocks * 8;
			m->tensors[i].block_starts = (uint8_t *)malloc(bs);
			if (!m->tensors[i].block_starts) {
				r = df11_fail(DF11_NOMEM, "GPU upload: block starts "
					      "of tensor %zu", i);
				goto fail;
			}
			memcpy(m->tensors[i].block_starts, P[i].block_starts, bs);
		}
		uint32_t *win_off = (uint32_t *)(void *)(bytes +
						df11k_win_off_offset(&P[i]));
		uint32_t *run_off = (uint32_t *)(void *)(bytes +
						df11k_run_off_offset(&P[i]));
		df11k_tensor_init(&m->tensors[i].t, &P[i], bytes, dtab, win_off,
				  run_off);
		if (L->codec == DF11_CODEC_HUFFMAN) {
			r = count_windows(m, &m->tensors[i].t, win_off, i);
			if (r != DF11_OK)
				goto fail;
		}
		off += df11k_image_size(&P[i]);
	}
	/* Copies from pageable memory and cudaMemset may still be in flight
	 * when they return; the upload promises a model ready for any
	 * stream. */
	e = cudaDeviceSynchronize();
	if (e != cudaSuccess) {
		r = df11_cuda_fail(e, "GPU upload");
		goto fail;
	}
	free(P);
	free(tables);
	*model_ret = m;
	return DF11_OK;
fail:
	free(P);
	free(tables);
	df11_cuda_model_free(m);
	return r;
}

extern "C" uint64_t df11_cuda_tensor_elems(const df11_cuda_model *m, size_t i)
{
	return m && i < m->n ? m->tensors[i].t.n_elems : 0;
}

/* ------------------------------------------------------------ decode */

static df11_result add_job(const df11_cuda_model *m, df11k_batch *b,
			   size_t i, uint64_t first, uint64_t count,
			   uint16_t *dst, int kernel)
{
	if (i >= m->n)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: tensor %zu of %zu",
				 i, m->n);
	const cuda_tensor *T = &m->tensors[i];
	if (first > T->t.n_elems || count > T->t.n_elems - first)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: range %llu+%llu "
				 "past %llu elements of tensor %zu",
				 (unsigned long long)first,
				 (unsigned long long)count,
				 (unsigned long long)T->t.n_elems, i);
	if (count == 0)
		return DF11_OK;
	if (!dst || ((uintptr_t)dst & 1u))
		return df11_fail(DF11_INVALID_ARG, "GPU decode: output %p is NULL "
				 "or not 2-byte aligned", (void *)dst);
	df11k_job J;
	df11_result r = df11k_job_init(&J, &T->t, T->block_starts, first, count,
				       dst, kernel);
	if (r != DF11_OK)
		return r;
	return df11k_batch_add(b, &J);
}

static df11_result launch(const df11_cuda_model *m, const df11k_batch *b,
			  int kernel, cudaStream_t stream)
{
	if (b->n_items == 0)
		return DF11_OK;
	if (kernel == DF11_CUDA_KERNEL_WINDOW)
		df11k_decode_kernel<<<b->n_items, DF11K_THREADS, 0, stream>>>(
			*b, m->err);
	else
		df11k2_decode_kernel<<<b->n_items, DF11K_THREADS, 0, stream>>>(
			*b, m->err);
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU decode: kernel launch");
	return DF11_OK;
}

extern "C" df11_result df11_cuda_decode_range(const df11_cuda_model *m,
					      size_t i, uint64_t first,
					      uint64_t count, uint16_t *dst,
					      cudaStream_t stream)
{
	if (!m)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: NULL model");
	df11k_batch b;
	b.n_jobs = b.n_items = 0;
	df11_result r = add_job(m, &b, i, first, count, dst,
				DF11_CUDA_KERNEL_STAGED);
	if (r != DF11_OK)
		return r;
	return launch(m, &b, DF11_CUDA_KERNEL_STAGED, stream);
}

extern "C" df11_result df11_cuda_decode(const df11_cuda_model *m, size_t i,
					uint16_t *dst, cudaStream_t stream)
{
	if (!m)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: NULL model");
	return df11_cuda_decode_range(m, i, 0, df11_cuda_tensor_elems(m, i), dst,
				      stream);
}

extern "C" df11_result df11_cuda_decode_batch(const df11_cuda_model *m,
					      const df11_cuda_job *jobs,
					      size_t n_jobs, cudaStream_t stream)
{
	return df11_cuda_decode_batch_kernel(m, jobs, n_jobs,
					     DF11_CUDA_KERNEL_STAGED, stream);
}

extern "C" df11_result df11_cuda_decode_batch_kernel(const df11_cuda_model *m,
						     const df11_cuda_job *jobs,
						     size_t n_jobs, int kernel,
						     cudaStream_t stream)
{
	if (kernel != DF11_CUDA_KERNEL_WINDOW && kernel != DF11_CUDA_KERNEL_STAGED)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: kernel %d", kernel);
	if (!m || (!jobs && n_jobs))
		return df11_fail(DF11_INVALID_ARG, "GPU decode: NULL model or jobs");
	if (n_jobs > DF11_CUDA_MAX_BATCH)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: %zu jobs, at most "
				 "%d", n_jobs, DF11_CUDA_MAX_BATCH);
	df11k_batch b;
	b.n_jobs = b.n_items = 0;
	for (size_t k = 0; k < n_jobs; k++) {
		df11_result r = add_job(m, &b, jobs[k].tensor, jobs[k].first,
					jobs[k].count, jobs[k].dst, kernel);
		if (r != DF11_OK)
			return r;
	}
	return launch(m, &b, kernel, stream);
}

extern "C" df11_result df11_cuda_check(df11_cuda_model *m, cudaStream_t stream)
{
	if (!m)
		return df11_fail(DF11_INVALID_ARG, "GPU check: NULL model");
	unsigned int flag = 0;
	cudaError_t e = cudaStreamSynchronize(stream);
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU check: cudaStreamSynchronize");
	e = cudaMemcpy(&flag, m->err, sizeof flag, cudaMemcpyDeviceToHost);
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU check: cudaMemcpy");
	if (!flag)
		return DF11_OK;
	e = cudaMemset(m->err, 0, sizeof flag);
	if (e != cudaSuccess)
		return df11_cuda_fail(e, "GPU check: cudaMemset");
	return df11_fail(DF11_BAD_DATA, "GPU decode: a tensor's stream disagrees "
			 "with its index (corrupt data); the affected work items "
			 "wrote nothing");
}

extern "C" df11_result df11_cuda_available(void)
{
	int n = 0, dev = 0, major = 0, minor = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess) {
		cudaGetLastError(); /* clear it for the caller */
		return df11_fail(DF11_NO_DEVICE, "no CUDA device: %s",
				 cudaGetErrorString(e));
	}
	if (n == 0)
		return df11_fail(DF11_NO_DEVICE, "no CUDA device");
	e = cudaGetDevice(&dev);
	if (e == cudaSuccess)
		e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
					   dev);
	if (e == cudaSuccess)
		e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor,
					   dev);
	if (e != cudaSuccess)
		return df11_fail(DF11_NO_DEVICE, "CUDA device query: %s",
				 cudaGetErrorString(e));
	if (major < 9)
		return df11_fail(DF11_NO_DEVICE, "GPU %d is sm_%d%d; libdf11_cuda "
				 "is built for sm_90 and newer", dev, major, minor);
	return DF11_OK;
}
