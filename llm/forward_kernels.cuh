/*
 * Internal: the kernels of the CUDA forward pass (cuda/forward.cu), one per
 * operation, each the GPU twin of a function of df11/forward_cpu.c.
 *
 * Numerics: the residual stream, q/k/v, gate/up and every reduction are
 * float32; what goes into a GEMM (normed x, attention output, SwiGLU output)
 * is rounded to BF16, as cuBLAS BF16 GEMMs need, and so is the KV cache.
 * So the CUDA logits are close to the CPU reference's, not equal.
 *
 * Determinism: every reduction runs in a fixed order (per-thread strided
 * sums, then a fixed tree in shared memory or over warp shuffles) and no
 * kernel uses atomics, so a kernel's output depends only on its inputs'
 * bits. With the GEMM algorithms fixed as well (forward.cu), DF11 and BF16
 * weights give bit-identical logits.
 */
#ifndef DF11_FORWARD_KERNELS_CUH
#define DF11_FORWARD_KERNELS_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#define FWD_THREADS 256  /* threads of the row kernels (a power of two) */

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

/* Sum over the block (blockDim.x == FWD_THREADS) in a fixed tree; every
 * thread gets the result. red: FWD_THREADS floats of shared memory. */
static __device__ float block_sum(float v, float *red)
{
	red[threadIdx.x] = v;
	__syncthreads();
	for (int s = FWD_THREADS / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			red[threadIdx.x] += red[threadIdx.x + s];
		__syncthreads();
	}
	float r = red[0];
	__syncthreads();
	return r;
}

static __device__ float block_max(float v, float *red)
{
	red[threadIdx.x] = v;
	__syncthreads();
	for (int s = FWD_THREADS / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
		__syncthreads();
	}
	float r = red[0];
	__syncthreads();
	return r;
}

/* x (rows, H) float32 = BF16 rows staged by the embedding lookup. */
__global__ void embed_kernel(float *x, const bf16 *rows, int H)
{
	size_t r = blockIdx.x;
	for (int i = threadIdx.x; i < H; i += blockDim.x)
		x[r * H + i] = __bfloat162float(rows[r * H + i]);
}

/* BF16 mode: rows (n, H) = table[tokens[r]] (the resident embedding). */
__global__ void gather_rows_kernel(bf16 *rows, const bf16 *table,
				   const int32_t *tokens, int H)
{
	size_t r = blockIdx.x;
	const bf16 *src = table + (size_t)tokens[r] * H;
	for (int i = threadIdx.x; i < H; i += blockDim.x)
		rows[r * H + i] = src[i];
}

/* out row r (BF16, GEMM input) = weight * RMSNorm(x row r * step + off).
 * One block per output row. */
__global__ void rmsnorm_kernel(bf16 *out, const float *x, const bf16 *weight,
			       int H, float eps, int step, int off)
{
	__shared__ float red[FWD_THREADS];
	size_t r = blockIdx.x;
	const float *xr = x + ((size_t)r * step + off) * H;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < H; i += FWD_THREADS)
		ss += xr[i] * xr[i];
	ss = block_sum(ss, red);
	float inv = 1.0f / sqrtf(ss / (float)H + eps);
	for (int i = threadIdx.x; i < H; i += FWD_THREADS)
		out[r * H + i] = __float2bfloat16(__bfloat162float(weight[i]) * (xr[i] * inv));
}

/* RoPE (rotate_half pairing i <-> i + hd/2) on q and k of every token, and
 * k, v into the KV cache. One block per token row r = b * n + t, at
 * position pos0 + t.
 *   qkv: (rows, nh*hd + 2*nkv*hd) float32, q rotated in place
 *   k_cache, v_cache: this layer's (B, max_seq, nkv*hd) BF16 */
__global__ void rope_cache_kernel(float *qkv, bf16 *k_cache, bf16 *v_cache,
				  const float *inv_freq, int n, const int *pos0p,
				  int n_heads, int n_kv, int hd, int max_seq)
{
	const int pos0 = *pos0p; /* device memory: a graph replays any step */
	int r = blockIdx.x, b = r / n, t = r % n, pos = pos0 + t, half = hd / 2;
	int qd = n_heads * hd, kvd = n_kv * hd;
	float *q = qkv + (size_t)r * (qd + 2 * kvd);
	float *k = q + qd, *v = k + kvd;
	size_t cache_row = ((size_t)b * max_seq + pos) * kvd;
	for (int i = threadIdx.x; i < (n_heads + n_kv) * half; i += blockDim.x) {
		int h = i / half, d = i % half;
		float *vec = h < n_heads ? q + h * hd : k + (h - n_heads) * hd;
		float ang = (float)pos * inv_freq[d];
		float c = cosf(ang), s = sinf(ang);
		float a = vec[d], bb = vec[d + half];
		vec[d] = a * c - bb * s;
		vec[d + half] = bb * c + a * s;
	}
	__syncthreads();
	for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
		k_cache[cache_row + i] = __float2bfloat16(k[i]);
		v_cache[cache_row + i] = __float2bfloat16(v[i]);
	}
}

/* Causal grouped-query attention, one block (FWD_THREADS) per (token row,
 * head). Scores over the visible keys [first, pos] live in dynamic shared
 * memory (max_seq floats at most): a warp per key, lanes over head_dim.
 *   out: (rows, nh*hd) BF16, the o_proj input */
__global__ void attention_kernel(bf16 *out, const float *qkv,
				 const bf16 *k_cache, const bf16 *v_cache,
				 int n, const int *pos0p, int n_heads, int n_kv, int hd,
				 int max_seq, int window, float scale)
{
	const int pos0 = *pos0p;
	extern __shared__ float sc[];
	__shared__ float red[FWD_THREADS];
	int r = blockIdx.x, h = blockIdx.y, b = r / n, pos = pos0 + r % n;
	int qd = n_heads * hd, kvd = n_kv * hd, kvh = h / (n_heads / n_kv);
	int first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
	int ctx = pos - first + 1;
	const float *q = qkv + (size_t)r * (qd + 2 * kvd) + h * hd;
	const bf16 *kc = k_cache + (size_t)b * max_seq * kvd + kvh * hd;
	const bf16 *vc = v_cache + (size_t)b * max_seq * kvd + kvh * hd;
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = FWD_THREADS / 32;

	for (int j = warp; j < ctx; j += nwarps) {
		const bf16 *kj = kc + (size_t)(first + j) * kvd;
		float s = 0.0f;
		for (int d = lane; d < hd; d += 32)
			s += q[d] * __bfloat162float(kj[d]);
		s = warp_sum(s);
		if (lane == 0)
			sc[j] = s * scale;
	}
	__syncthreads();
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < ctx; j += FWD_THREADS)
		mx = fmaxf(mx, sc[j]);
	mx = block_max(mx, red);
	float sum = 0.0f;
	for (int j = threadIdx.x; j < ctx; j += FWD_THREADS) {
		float e = expf(sc[j] - mx);
		sc[j] = e;
		sum += e;
	}
	sum = block_sum(sum, red);  /* also orders the writes to sc[] */
	float inv = 1.0f / sum;
	for (int d = threadIdx.x; d < hd; d += FWD_THREADS) {
		float acc = 0.0f;
		for (int j = 0; j < ctx; j++)
			acc += sc[j] * __bfloat162float(vc[(size_t)(first + j) * kvd + d]);
		out[(size_t)r * qd + h * hd + d] = __float2bfloat16(acc * inv);
	}
}

/* out (rows, I) BF16 = silu(gate) * up, gu: (rows, 2I) float32 as the fused
 * gate|up GEMM wrote it. */
__global__ void swiglu_kernel(bf16 *out, const float *gu, int I, size_t total)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= total)
		return;
	size_t r = i / I, j = i % I;
	float g = gu[r * 2 * I + j], u = gu[r * 2 * I + I + j];
	out[i] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
}

/* out[r] = argmax of logits row (r * step + off), V wide: the first index
 * of the largest value, NaN never wins (df11_argmax's rule). */
__global__ void argmax_kernel(int32_t *out, const float *logits, int V,
			      int step, int off)
{
	__shared__ float best_v[FWD_THREADS];
	__shared__ int best_i[FWD_THREADS];
	const float *row = logits + ((size_t)blockIdx.x * step + off) * V;
	float bv = -INFINITY;
	int bi = -1;
	for (int i = threadIdx.x; i < V; i += FWD_THREADS) {
		float v = row[i];
		if (!isnan(v) && (bi < 0 || v > bv)) {
			bv = v;
			bi = i;
		}
	}
	best_v[threadIdx.x] = bv;
	best_i[threadIdx.x] = bi;
	__syncthreads();
	for (int s = FWD_THREADS / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s) {
			float ov = best_v[threadIdx.x + s];
			int oi = best_i[threadIdx.x + s];
			int mi = best_i[threadIdx.x];
			if (oi >= 0 && (mi < 0 || ov > best_v[threadIdx.x] ||
					(ov == best_v[threadIdx.x] && oi < mi))) {
				best_v[threadIdx.x] = ov;
				best_i[threadIdx.x] = oi;
			}
		}
		__syncthreads();
	}
	if (threadIdx.x == 0)
		out[blockIdx.x] = best_i[0] < 0 ? 0 : best_i[0];
}

#endif
