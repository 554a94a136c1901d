/*
 * The CUDA forward pass of a Llama / Mistral model with weights that stay
 * df11-compressed in GPU memory (interface: llm/forward_cuda.h).
 *
 * Per forward call (B sequences x n tokens, M = B * n rows):
 *
 *   embed      DF11: decode the tokens' rows (df11_cuda_decode_batch)
 *              BF16: gather them from the resident table
 *   stage 0..L-1        one transformer layer each
 *   stage L..L+S-1      lm_head, S slices of rows (one product when fused)
 *
 * M <= 32 (decode steps, small batches; unless gemm_only): every product
 * is the fused decode + matrix-vector kernel (df11_cuda_gemv), which reads
 * the compressed weights and multiplies them in registers, so no BF16
 * weight ever travels through device memory; BF16 mode runs the same
 * kernel with its BF16 loader. A decode step (n = 1) after the first is a
 * CUDA graph replay: the position comes from device memory (d_pos) and
 * the embedding rows are decoded before the graph.
 *
 * M > 32 (prefill), decode then cuBLASLt: stage k reads its weights from layer buffer k % 2. In DF11 mode a second
 * stream decodes stage k + 1 into the other buffer while stage k computes:
 *
 *   decode stream:  wait free[1] | decode 1 -> buf1 | rec ready[1] | wait free[0] | decode 2 -> buf0 ...
 *   compute stream: wait ready[0] | layer 0 (buf0) | rec free[0] | wait ready[1] | layer 1 (buf1) ...
 *
 * so decode scratch is two layers of BF16 weights, and lm_head slices are
 * sized to fit the same buffers.
 *
 * The layer buffer layout is df11_llm_layout (llm/forward.h): q|k|v as one
 * matrix, o, gate|up as one matrix, down, the two norms. BF16 mode keeps every layer resident in exactly this layout, lm_head
 * slices at the same offsets, so both modes issue the same GEMMs on equally
 * aligned pointers with the same (cached) cuBLASLt algorithms: their logits
 * are bit-identical.
 */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "df11_cuda.h"
extern "C" {
#include "common/bytes.h"
#include "common/error.h"
#include "cuda/cuda_fail.h"
}
#include "llm/forward_cuda.h"
#include "llm/forward_kernels.cuh"

#define GEMM_WORKSPACE (32u << 20)
#define MAX_GEMM_SHAPES 64

/* One GEMM shape with its chosen algorithm: chosen once, reused forever,
 * so that DF11 and BF16 runs multiply the same way. */
struct gemm_plan {
	int M, N, K, ldy, accumulate, align;
	cublasLtMatmulDesc_t op;
	cublasLtMatrixLayout_t a, b, c;
	cublasLtMatmulAlgo_t algo;
};

/* Indices of a layer's tensors in the uploaded df11_cuda_model. */
struct layer_tensors {
	size_t t[DF11_W_COUNT];
};

struct df11_cuda_llm {
	df11_llm_config c;
	df11_cuda_llm_options opt;
	int pos;
	int *d_pos;                       /* pos, for the kernels (device) */

	/* The decode step (fused, n = 1) as a CUDA graph: captured at the
	 * second step of a shape, replayed after. */
	cudaGraphExec_t step_exec;
	int step_runs;

	cudaStream_t s_comp, s_dec;
	cudaEvent_t ready[2], freed[2];
	cublasLtHandle_t lt;
	void *workspace;
	gemm_plan plans[MAX_GEMM_SHAPES];
	int n_plans;

	df11_llm_layout lay;              /* layer buffer layout (llm/forward.h) */

	/* DF11 mode */
	df11_cuda_model *enc;
	layer_tensors *lt_idx;            /* (L) */
	size_t t_embed, t_head, t_norm;
	bf16 *buf[2];                     /* two layer buffers */
	bf16 *norm_buf;                   /* (H) final norm, decoded at load */
	bf16 *norms;                      /* (L, 2, H) layer norms, decoded at
					     load for the fused path */

	/* BF16 mode */
	bf16 *resident;                   /* (L, layer_elems) | embed | lm_head | norm */
	bf16 *r_embed, *r_head, *r_norm;

	/* Activations; rows = B * max_tokens */
	float *x;                         /* (rows, H) */
	bf16 *xb;                         /* (rows, max(H, nh*hd, I)) GEMM input */
	float *qkv;                       /* (rows, nh*hd + 2*nkv*hd) */
	float *gu;                        /* (rows, 2I) */
	bf16 *emb;                        /* (rows, H) embedding rows */
	int32_t *d_tokens, *d_next;       /* (rows) */
	float *logits;                    /* (logit_rows, V) */
	int logit_rows;
	float *inv_freq;                  /* (hd/2) */
	size_t inv_freq_bytes;
	bf16 *k_cache, *v_cache;          /* (L, B, max_seq, nkv*hd) */
	size_t attn_smem;

	df11_cuda_llm_memory mem;
};

#define CU(call, what) do { cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) return df11_cuda_fail(e_, what); } while (0)
#define LT(call, what) do { cublasStatus_t s_ = (call); \
	if (s_ != CUBLAS_STATUS_SUCCESS) return df11_fail(DF11_CUDA, \
		"%s: cuBLASLt status %d", what, (int)s_); } while (0)
#define TRY(call) do { df11_result r_ = (call); if (r_) return r_; } while (0)

static void device_used(size_t *used)
{
	size_t fr = 0, tot = 0;
	if (cudaMemGetInfo(&fr, &tot) == cudaSuccess)
		*used = tot - fr;
}

/* Device memory in use now, if more than the peak seen so far. */
static void note_peak(df11_cuda_llm *m)
{
	size_t used = 0;
	device_used(&used);
	if (used > m->mem.peak)
		m->mem.peak = used;
}

/* Largest power of two (<= 256) dividing a byte address or stride. */
static int alignment_of(uintptr_t x)
{
	int a = 256;
	while (a > 1 && (x % (uintptr_t)a))
		a /= 2;
	return a;
}

/* ------------------------------------------------------------------------
 * GEMM: Y (M, N) [+]= X (M, K) W^T, W (N, K) row-major BF16, X BF16 row-
 * major, Y float32 row-major with leading dimension ldy, FP32 accumulation.
 * In cuBLAS's column-major terms: Y^T (N x M) = op_T(W as K x N) * X^T.
 * ---------------------------------------------------------------------- */

static df11_result plan_for(df11_cuda_llm *m, int M, int N, int K, int ldy,
			    int accumulate, int align, gemm_plan **ret)
{
	for (int i = 0; i < m->n_plans; i++) {
		gemm_plan *p = &m->plans[i];
		if (p->M == M && p->N == N && p->K == K && p->ldy == ldy &&
		    p->accumulate == accumulate && p->align == align) {
			*ret = p;
			return DF11_OK;
		}
	}
	if (m->n_plans == MAX_GEMM_SHAPES)
		return df11_fail(DF11_LIMIT, "more than %d GEMM shapes", MAX_GEMM_SHAPES);
	gemm_plan *p = &m->plans[m->n_plans];
	memset(p, 0, sizeof *p);
	p->M = M; p->N = N; p->K = K; p->ldy = ldy;
	p->accumulate = accumulate; p->align = align;
	cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
	LT(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
	LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA), "transa");
	LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB), "transb");
	LT(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, K, N, K), "layout W");
	LT(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, K, M, K), "layout X");
	LT(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, N, M, ldy), "layout Y");

	cublasLtMatmulPreference_t pref;
	LT(cublasLtMatmulPreferenceCreate(&pref), "preference");
	uint64_t ws = GEMM_WORKSPACE;
	uint32_t al = (uint32_t)align;
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
	cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
	cublasLtMatmulHeuristicResult_t h;
	int found = 0;
	cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(m->lt, p->op, p->a, p->b, p->c,
							  p->c, pref, 1, &h, &found);
	cublasLtMatmulPreferenceDestroy(pref);
	if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
		cublasLtMatmulDescDestroy(p->op);
		cublasLtMatrixLayoutDestroy(p->a);
		cublasLtMatrixLayoutDestroy(p->b);
		cublasLtMatrixLayoutDestroy(p->c);
		return df11_fail(DF11_CUDA, "no cuBLASLt algorithm for a BF16 GEMM "
				 "M %d N %d K %d, %d-byte aligned (status %d)", M, N, K,
				 align, (int)s);
	}
	p->algo = h.algo;
	m->n_plans++;
	*ret = p;
	return DF11_OK;
}

static df11_result gemm(df11_cuda_llm *m, float *y, int ldy, const bf16 *x,
			const bf16 *w, int M, int N, int K, int accumulate)
{
	/* The alignment the algorithm may assume: the same in both modes,
	 * since the two lay weights and activations out alike. */
	uintptr_t bits = (uintptr_t)y | (uintptr_t)x | (uintptr_t)w |
			 ((uintptr_t)ldy * 4) | ((uintptr_t)K * 2);
	gemm_plan *p = NULL;
	TRY(plan_for(m, M, N, K, ldy, accumulate, alignment_of(bits), &p));
	float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
	LT(cublasLtMatmul(m->lt, p->op, &alpha, w, p->a, x, p->b, &beta, y, p->c,
			  y, p->c, &p->algo, m->workspace, GEMM_WORKSPACE, m->s_comp),
	   "cublasLtMatmul");
	return DF11_OK;
}

/* ------------------------------------------------------------------------
 * Loading.
 * ---------------------------------------------------------------------- */

static uint64_t tensor_elems(const df11_llm_config *c, int k)
{
	uint64_t rows, cols;
	df11_llm_layer_shape(c, k, &rows, &cols);
	return rows * (cols ? cols : 1);
}

/* Host staging of one encoded tensor: the provider's bytes, or ours if
 * the checkpoint holds plain BF16 and we encode it here. */
struct staged {
	const void *data;
	size_t size;
	void *owned;
};

static df11_result stage_encoded(const df11_weights *w, const char *name,
				 uint64_t n, staged *s)
{
	s->owned = NULL;
	if (w->encoded) {
		df11_result r = w->encoded(w->ctx, name, &s->data, &s->size);
		if (r == DF11_OK)
			return DF11_OK;
		if (r != DF11_UNSUPPORTED)
			return r;
	}
	uint16_t *tmp = (uint16_t *)malloc(n * 2 + 2);
	size_t cap = df11_encode_bound(n);
	s->owned = malloc(cap);
	if (!tmp || !s->owned) {
		free(tmp);
		free(s->owned);
		s->owned = NULL;
		return df11_fail(DF11_NOMEM, "%s: %llu elements", name, (unsigned long long)n);
	}
	df11_result r = w->read(w->ctx, name, 0, n, tmp);
	df11_encode_options eo;
	memset(&eo, 0, sizeof eo);
	eo.threads = 8;
	if (!r)
		r = df11_encode(tmp, n, &eo, s->owned, cap, &s->size);
	free(tmp);
	s->data = s->owned;
	return r;
}

static df11_result load_df11(df11_cuda_llm *m, const df11_weights *w)
{
	const df11_llm_config *c = &m->c;
	size_t n_t = 3 + (size_t)c->n_layers * DF11_W_COUNT;
	staged *st = (staged *)calloc(n_t, sizeof *st);
	const void **ptrs = (const void **)calloc(n_t, sizeof *ptrs);
	size_t *sizes = (size_t *)calloc(n_t, sizeof *sizes);
	m->lt_idx = (layer_tensors *)calloc((size_t)c->n_layers, sizeof *m->lt_idx);
	df11_result r = DF11_OK;
	if (!st || !ptrs || !sizes || !m->lt_idx)
		r = df11_fail(DF11_NOMEM, "tensor list");
	size_t n = 0;
	uint64_t HV = (uint64_t)c->hidden * (uint64_t)c->vocab;
	/* Order: embed, lm_head (or embed again when tied), final norm, layers. */
	m->t_embed = n;
	if (!r)
		r = stage_encoded(w, "model.embed_tokens.weight", HV, &st[n++]);
	if (c->tied) {
		m->t_head = m->t_embed;
	} else {
		m->t_head = n;
		if (!r)
			r = stage_encoded(w, "lm_head.weight", HV, &st[n++]);
	}
	m->t_norm = n;
	if (!r)
		r = stage_encoded(w, "model.norm.weight", (uint64_t)c->hidden, &st[n++]);
	char name[DF11_LLM_NAME_MAX];
	for (int l = 0; l < c->n_layers && !r; l++)
		for (int k = 0; k < DF11_W_COUNT && !r; k++) {
			df11_llm_layer_name(name, l, df11_llm_layer_suffix[k]);
			m->lt_idx[l].t[k] = n;
			r = stage_encoded(w, name, tensor_elems(c, k), &st[n++]);
		}
	if (!r) {
		for (size_t i = 0; i < n; i++) {
			ptrs[i] = st[i].data;
			sizes[i] = st[i].size;
		}
		r = df11_cuda_upload(ptrs, sizes, n, NULL, 0, &m->enc);
		if (!r)
			m->mem.weights = df11_cuda_upload_size(ptrs, sizes, n);
	}
	/* Every matrix gets its fused index (device memory, counted with the
	 * weights). */
	for (int l = 0; l < c->n_layers && !r; l++)
		for (int k = 0; k < DF11_W_ATTN_NORM && !r; k++) {
			uint64_t rows, cols;
			df11_llm_layer_shape(c, k, &rows, &cols);
			r = df11_cuda_gemv_prepare(m->enc, m->lt_idx[l].t[k], rows, cols);
			m->mem.weights += df11_cuda_gemv_index_size(m->enc, m->lt_idx[l].t[k]);
		}
	if (!r) {
		r = df11_cuda_gemv_prepare(m->enc, m->t_head, (uint64_t)c->vocab,
					   (uint64_t)c->hidden);
		m->mem.weights += df11_cuda_gemv_index_size(m->enc, m->t_head);
	}
	for (size_t i = 0; st && i < n_t; i++)
		free(st[i].owned);
	free(st);
	free(ptrs);
	free(sizes);
	return r;
}

/* Reads BF16 tensor `name` (n elements) into device memory at dst. */
static df11_result upload_bf16(const df11_weights *w, const char *name,
			       uint64_t n, bf16 *dst, uint16_t *host)
{
	TRY(w->read(w->ctx, name, 0, n, host));
	CU(cudaMemcpy(dst, host, n * 2, cudaMemcpyHostToDevice), name);
	return DF11_OK;
}

static df11_result load_bf16(df11_cuda_llm *m, const df11_weights *w)
{
	const df11_llm_config *c = &m->c;
	size_t HV = (size_t)c->hidden * (size_t)c->vocab;
	size_t total = (size_t)c->n_layers * m->lay.layer_elems + df11_align_up(HV, DF11_LAYOUT_ALIGN) +
		       (c->tied ? 0 : df11_align_up(HV, DF11_LAYOUT_ALIGN)) + df11_align_up((size_t)c->hidden, DF11_LAYOUT_ALIGN);
	CU(cudaMalloc(&m->resident, total * 2), "BF16 weights");
	CU(cudaMemset(m->resident, 0, total * 2), "BF16 weights");
	m->mem.weights = total * 2;
	m->r_embed = m->resident + (size_t)c->n_layers * m->lay.layer_elems;
	m->r_head = c->tied ? m->r_embed : m->r_embed + df11_align_up(HV, DF11_LAYOUT_ALIGN);
	m->r_norm = m->r_embed + df11_align_up(HV, DF11_LAYOUT_ALIGN) + (c->tied ? 0 : df11_align_up(HV, DF11_LAYOUT_ALIGN));
	size_t biggest = HV > m->lay.layer_elems ? HV : m->lay.layer_elems;
	uint16_t *host = (uint16_t *)malloc(biggest * 2);
	if (!host)
		return df11_fail(DF11_NOMEM, "host staging");
	df11_result r = upload_bf16(w, "model.embed_tokens.weight", HV, m->r_embed, host);
	if (!r && !c->tied)
		r = upload_bf16(w, "lm_head.weight", HV, m->r_head, host);
	if (!r)
		r = upload_bf16(w, "model.norm.weight", (uint64_t)c->hidden, m->r_norm, host);
	char name[DF11_LLM_NAME_MAX];
	for (int l = 0; l < c->n_layers && !r; l++)
		for (int k = 0; k < DF11_W_COUNT && !r; k++) {
			df11_llm_layer_name(name, l, df11_llm_layer_suffix[k]);
			r = upload_bf16(w, name, tensor_elems(c, k),
					m->resident + (size_t)l * m->lay.layer_elems +
					m->lay.off[k], host);
		}
	free(host);
	return r;
}

template <typename T>
static df11_result dalloc(T **p, size_t n, size_t *acc, const char *what)
{
	CU(cudaMalloc((void **)p, n * sizeof(T) > 0 ? n * sizeof(T) : 1), what);
	*acc += n * sizeof(T);
	return DF11_OK;
}

/* The buffers that depend on batch, max_seq and max_tokens: activations,
 * logits and the KV cache. */
static void free_runtime(df11_cuda_llm *m)
{
	void *bufs[] = {m->x, m->xb, m->qkv, m->gu, m->emb, m->d_tokens, m->d_next,
			m->logits, m->k_cache, m->v_cache};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			cudaFree(bufs[i]);
	m->x = NULL;
	m->xb = NULL;
	m->qkv = m->gu = m->logits = NULL;
	m->emb = NULL;
	m->d_tokens = m->d_next = NULL;
	m->k_cache = m->v_cache = NULL;
	m->mem.activations = m->inv_freq_bytes;
	m->mem.kv_cache = 0;
}

static df11_result alloc_runtime(df11_cuda_llm *m)
{
	const df11_llm_config *c = &m->c;
	const df11_cuda_llm_options *o = &m->opt;
	size_t rows = (size_t)o->batch * (size_t)o->max_tokens;
	size_t H = (size_t)c->hidden, I = (size_t)c->intermediate;
	size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
	size_t widest = H > qd ? H : qd;
	widest = widest > I ? widest : I;
	size_t *act = &m->mem.activations;
	TRY(dalloc(&m->x, rows * H, act, "activations"));
	TRY(dalloc(&m->xb, rows * widest, act, "activations"));
	TRY(dalloc(&m->qkv, rows * (qd + 2 * kvd), act, "activations"));
	TRY(dalloc(&m->gu, rows * 2 * I, act, "activations"));
	TRY(dalloc(&m->emb, rows * H, act, "activations"));
	TRY(dalloc(&m->d_tokens, rows, act, "activations"));
	TRY(dalloc(&m->d_next, rows, act, "activations"));
	m->logit_rows = o->batch;
	TRY(dalloc(&m->logits, (size_t)m->logit_rows * c->vocab, act, "logits"));
	size_t kv = (size_t)c->n_layers * o->batch * (size_t)o->max_seq * kvd;
	size_t kvb = 0;
	TRY(dalloc(&m->k_cache, kv, &kvb, "KV cache"));
	TRY(dalloc(&m->v_cache, kv, &kvb, "KV cache"));
	m->mem.kv_cache = kvb;

	/* Attention keeps a row of scores in shared memory. */
	m->attn_smem = (size_t)o->max_seq * sizeof(float);
	int dev, max_smem;
	CU(cudaGetDevice(&dev), "device");
	CU(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "attr");
	if (m->attn_smem + FWD_THREADS * sizeof(float) > (size_t)max_smem)
		return df11_fail(DF11_LIMIT, "max_seq %d: attention scores need %zu "
				 "bytes of shared memory, the GPU has %d", o->max_seq,
				 m->attn_smem, max_smem);
	/* The attribute belongs to the kernel, for the whole process: only
	 * ever raise it, so that another model's smaller max_seq never lowers
	 * it under this one. */
	static int attn_smem_set;
	if ((int)m->attn_smem > attn_smem_set) {
		CU(cudaFuncSetAttribute(attention_kernel,
					cudaFuncAttributeMaxDynamicSharedMemorySize,
					(int)m->attn_smem), "attention smem");
		attn_smem_set = (int)m->attn_smem;
	}
	m->pos = 0;
	return DF11_OK;
}

/* DF11 mode: the layer norms and the final norm, decoded once (a few KB
 * per layer) so that fused steps decode nothing but matrices. */
static df11_result decode_norms(df11_cuda_llm *m)
{
	const df11_llm_config *c = &m->c;
	size_t H = (size_t)c->hidden;
	size_t acc = 0;
	TRY(dalloc(&m->norms, (size_t)c->n_layers * 2 * H, &acc, "norms"));
	m->mem.scratch += acc;
	df11_cuda_job jobs[DF11_CUDA_MAX_BATCH];
	size_t nj = 0;
	for (int l = 0; l <= c->n_layers; l++)
		for (int k = 0; k < 2; k++) {
			df11_cuda_job *j = &jobs[nj++];
			if (l == c->n_layers) {
				*j = {m->t_norm, 0, (uint64_t)H, (uint16_t *)m->norm_buf};
				k = 2;
			} else {
				*j = {m->lt_idx[l].t[DF11_W_ATTN_NORM + k], 0, (uint64_t)H,
				      (uint16_t *)(m->norms + (size_t)(2 * l + k) * H)};
			}
			if (nj == DF11_CUDA_MAX_BATCH || l == c->n_layers) {
				TRY(df11_cuda_decode_batch(m->enc, jobs, nj, m->s_comp));
				nj = 0;
			}
		}
	CU(cudaStreamSynchronize(m->s_comp), "norms");
	return df11_cuda_check(m->enc, m->s_comp);
}

static df11_result check_options(const df11_cuda_llm_options *opt)
{
	if (opt->batch < 1 || opt->max_seq < 1 || opt->max_tokens < 1 ||
	    opt->max_tokens > opt->max_seq || (size_t)opt->batch * opt->max_tokens > (1u << 24))
		return df11_fail(DF11_INVALID_ARG, "batch %d, max_seq %d, max_tokens %d",
				 opt->batch, opt->max_seq, opt->max_tokens);
	return DF11_OK;
}

static df11_result init(df11_cuda_llm *m, const df11_weights *w)
{
	const df11_llm_config *c = &m->c;
	const df11_cuda_llm_options *o = &m->opt;
	TRY(df11_cuda_available());
	TRY(df11_llm_check_weights(c, w));
	/* Compute before any decode that competes with it. */
	int prio_low = 0, prio_high = 0;
	CU(cudaDeviceGetStreamPriorityRange(&prio_low, &prio_high), "stream priorities");
	CU(cudaStreamCreateWithPriority(&m->s_comp, cudaStreamNonBlocking, prio_high), "stream");
	CU(cudaStreamCreateWithPriority(&m->s_dec, cudaStreamNonBlocking, prio_low), "stream");
	for (int i = 0; i < 2; i++) {
		CU(cudaEventCreateWithFlags(&m->ready[i], cudaEventDisableTiming), "event");
		CU(cudaEventCreateWithFlags(&m->freed[i], cudaEventDisableTiming), "event");
	}
	LT(cublasLtCreate(&m->lt), "cublasLtCreate");
	CU(cudaMalloc(&m->workspace, GEMM_WORKSPACE), "GEMM workspace");
	df11_llm_layout_plan(c, &m->lay);

	if (o->mode == DF11_CUDA_LLM_BF16) {
		TRY(load_bf16(m, w));
	} else {
		TRY(load_df11(m, w));
		CU(cudaMalloc(&m->buf[0], m->lay.layer_elems * 2 * 2), "layer buffers");
		m->buf[1] = m->buf[0] + m->lay.layer_elems;
		m->mem.scratch = m->lay.layer_elems * 2 * 2;
		CU(cudaMalloc(&m->norm_buf, (size_t)c->hidden * 2), "norm");
		TRY(decode_norms(m));
	}
	TRY(dalloc(&m->d_pos, 1, &m->inv_freq_bytes, "activations"));

	/* inv_freq exactly as the CPU reference computes it. */
	TRY(dalloc(&m->inv_freq, (size_t)c->head_dim / 2, &m->inv_freq_bytes,
		   "activations"));
	m->mem.activations = m->inv_freq_bytes;
	float *f = (float *)malloc((size_t)c->head_dim / 2 * sizeof(float));
	if (!f)
		return df11_fail(DF11_NOMEM, "inv_freq");
	for (int i = 0; i < c->head_dim / 2; i++)
		f[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
	cudaError_t e = cudaMemcpy(m->inv_freq, f, (size_t)c->head_dim / 2 * sizeof(float),
				   cudaMemcpyHostToDevice);
	free(f);
	CU(e, "inv_freq");

	TRY(alloc_runtime(m));
	CU(cudaDeviceSynchronize(), "load");
	device_used(&m->mem.post_load);
	m->mem.peak = m->mem.post_load;
	return DF11_OK;
}

extern "C" df11_result df11_cuda_llm_new(const df11_llm_config *cfg,
					 const df11_weights *w,
					 const df11_cuda_llm_options *opt,
					 df11_cuda_llm **ret)
{
	*ret = NULL;
	TRY(check_options(opt));
	df11_cuda_llm *m = (df11_cuda_llm *)calloc(1, sizeof *m);
	if (!m)
		return df11_fail(DF11_NOMEM, "CUDA forward pass");
	m->c = *cfg;
	m->opt = *opt;
	df11_result r = init(m, w);
	if (r) {
		df11_cuda_llm_free(m);
		return r;
	}
	*ret = m;
	return DF11_OK;
}

extern "C" void df11_cuda_llm_free(df11_cuda_llm *m)
{
	if (!m)
		return;
	if (m->s_comp)
		cudaStreamSynchronize(m->s_comp);
	if (m->s_dec)
		cudaStreamSynchronize(m->s_dec);
	for (int i = 0; i < m->n_plans; i++) {
		cublasLtMatmulDescDestroy(m->plans[i].op);
		cublasLtMatrixLayoutDestroy(m->plans[i].a);
		cublasLtMatrixLayoutDestroy(m->plans[i].b);
		cublasLtMatrixLayoutDestroy(m->plans[i].c);
	}
	if (m->lt)
		cublasLtDestroy(m->lt);
	df11_cuda_model_free(m->enc);
	free_runtime(m);
	if (m->step_exec)
		cudaGraphExecDestroy(m->step_exec);
	void *bufs[] = {m->workspace, m->buf[0], m->norm_buf, m->norms, m->resident,
			m->inv_freq, m->d_pos};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			cudaFree(bufs[i]);
	for (int i = 0; i < 2; i++) {
		if (m->ready[i])
			cudaEventDestroy(m->ready[i]);
		if (m->freed[i])
			cudaEventDestroy(m->freed[i]);
	}
	if (m->s_comp)
		cudaStreamDestroy(m->s_comp);
	if (m->s_dec)
		cudaStreamDestroy(m->s_dec);
	free(m->lt_idx);
	free(m);
}

extern "C" void df11_cuda_llm_reset(df11_cuda_llm *m)
{
	m->pos = 0;
}

extern "C" df11_result df11_cuda_llm_reshape(df11_cuda_llm *m, int batch,
					     int max_seq, int max_tokens)
{
	df11_cuda_llm_options o = m->opt;
	o.batch = batch;
	o.max_seq = max_seq;
	o.max_tokens = max_tokens;
	TRY(check_options(&o));
	CU(cudaStreamSynchronize(m->s_comp), "reshape: sync");
	CU(cudaStreamSynchronize(m->s_dec), "reshape: sync");
	if (m->step_exec)
		cudaGraphExecDestroy(m->step_exec);
	m->step_exec = NULL;
	m->step_runs = 0;
	free_runtime(m);
	m->opt = o;
	df11_result r = alloc_runtime(m);
	if (r) {
		/* Leave no half-made buffers: forward refuses until a reshape
		 * succeeds. */
		free_runtime(m);
		m->opt.batch = 0;
		return r;
	}
	note_peak(m);
	return DF11_OK;
}

extern "C" void df11_cuda_llm_get_memory(const df11_cuda_llm *m, df11_cuda_llm_memory *ret)
{
	*ret = m->mem;
}

/* ------------------------------------------------------------------------
 * The forward pass.
 * ---------------------------------------------------------------------- */

/* Weights of stage k: a layer (k < L) or an lm_head slice. */
static df11_result decode_stage(df11_cuda_llm *m, int k, bf16 *dst)
{
	const df11_llm_config *c = &m->c;
	if (k < c->n_layers) {
		df11_cuda_job jobs[DF11_W_COUNT];
		for (int i = 0; i < DF11_W_COUNT; i++) {
			jobs[i].tensor = m->lt_idx[k].t[i];
			jobs[i].first = 0;
			jobs[i].count = tensor_elems(c, i);
			jobs[i].dst = (uint16_t *)(dst + m->lay.off[i]);
		}
		return df11_cuda_decode_batch(m->enc, jobs, DF11_W_COUNT, m->s_dec);
	}
	int s = k - c->n_layers;
	uint64_t r0 = (uint64_t)s * m->lay.slice_rows, H = (uint64_t)c->hidden;
	uint64_t nr = (uint64_t)c->vocab - r0 < (uint64_t)m->lay.slice_rows ?
		      (uint64_t)c->vocab - r0 : (uint64_t)m->lay.slice_rows;
	return df11_cuda_decode_range(m->enc, m->t_head, r0 * H, nr * H,
				      (uint16_t *)dst, m->s_dec);
}

/* y (+)= x W^T for the `count` matrices of layer l that start with
 * `first` (q|k|v, o, gate|up, down), K columns, rows token rows: one fused
 * launch (W compressed, or from the BF16 copy w), or one cuBLASLt GEMM over
 * the layer buffer w, where those matrices lie back to back. */
static df11_result product(df11_cuda_llm *m, int l, const bf16 *w, int first,
			   int count, float *y, int ldy, const bf16 *x, int K,
			   int rows, int accumulate, int fused)
{
	const df11_llm_config *c = &m->c;
	uint64_t N = 0;
	df11_cuda_gemv_job jobs[3];
	for (int i = 0; i < count; i++) {
		uint64_t r, k;
		df11_llm_layer_shape(c, first + i, &r, &k);
		jobs[i].tensor = m->enc ? m->lt_idx[l].t[first + i] : 0;
		jobs[i].bf16 = m->enc ? NULL : (const uint16_t *)(w + m->lay.off[first + i]);
		jobs[i].rows = r;
		jobs[i].y = y + N;
		jobs[i].ldy = (size_t)ldy;
		N += r;
	}
	if (fused)
		return df11_cuda_gemv(m->enc, jobs, (size_t)count, (const uint16_t *)x,
				      (size_t)K, (uint64_t)K, rows, accumulate, m->s_comp);
	return gemm(m, y, ldy, x, w + m->lay.off[first], rows, (int)N, K, accumulate);
}

/* One transformer layer on rows = B * n token rows. w: its layer buffer
 * (decoded, or the resident BF16 copy); NULL for fused DF11. */
static df11_result layer_forward(df11_cuda_llm *m, int l, const bf16 *w, int n,
				 int fused)
{
	const df11_llm_config *c = &m->c;
	int B = m->opt.batch, rows = B * n, H = c->hidden, I = c->intermediate;
	int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
	size_t cache_off = (size_t)l * B * m->opt.max_seq * kvd;
	cudaStream_t s = m->s_comp;
	const bf16 *attn_norm = w ? w + m->lay.off[DF11_W_ATTN_NORM]
				  : m->norms + (size_t)2 * l * H;
	const bf16 *mlp_norm = w ? w + m->lay.off[DF11_W_MLP_NORM] : attn_norm + H;

	rmsnorm_kernel<<<rows, FWD_THREADS, 0, s>>>(m->xb, m->x, attn_norm, H,
						    c->norm_eps, 1, 0);
	TRY(product(m, l, w, DF11_W_Q, 3, m->qkv, qd + 2 * kvd, m->xb, H, rows, 0, fused));
	rope_cache_kernel<<<rows, 128, 0, s>>>(m->qkv, m->k_cache + cache_off,
					       m->v_cache + cache_off, m->inv_freq, n,
					       m->d_pos, c->n_heads, c->n_kv_heads, hd,
					       m->opt.max_seq);
	dim3 grid((unsigned)rows, (unsigned)c->n_heads);
	attention_kernel<<<grid, FWD_THREADS, m->attn_smem, s>>>(
		m->xb, m->qkv, m->k_cache + cache_off, m->v_cache + cache_off, n,
		m->d_pos, c->n_heads, c->n_kv_heads, hd, m->opt.max_seq,
		c->sliding_window, (float)(1.0 / sqrt((double)hd)));
	TRY(product(m, l, w, DF11_W_O, 1, m->x, H, m->xb, qd, rows, 1, fused));

	rmsnorm_kernel<<<rows, FWD_THREADS, 0, s>>>(m->xb, m->x, mlp_norm, H,
						    c->norm_eps, 1, 0);
	TRY(product(m, l, w, DF11_W_GATE, 2, m->gu, 2 * I, m->xb, H, rows, 0, fused));
	size_t total = (size_t)rows * I;
	swiglu_kernel<<<(unsigned)((total + 255) / 256), 256, 0, s>>>(m->xb, m->gu, I, total);
	TRY(product(m, l, w, DF11_W_DOWN, 1, m->x, H, m->xb, I, rows, 1, fused));
	CU(cudaGetLastError(), "layer kernels");
	return DF11_OK;
}

static df11_result embed(df11_cuda_llm *m, const int32_t *tokens, int rows)
{
	const df11_llm_config *c = &m->c;
	uint64_t H = (uint64_t)c->hidden;
	if (m->opt.mode == DF11_CUDA_LLM_BF16) {
		gather_rows_kernel<<<rows, 256, 0, m->s_comp>>>(m->emb, m->r_embed,
								 m->d_tokens, (int)H);
	} else {
		/* Only the rows of these tokens are decoded. */
		df11_cuda_job jobs[DF11_CUDA_MAX_BATCH];
		for (int r0 = 0; r0 < rows; r0 += DF11_CUDA_MAX_BATCH) {
			int nj = rows - r0 < DF11_CUDA_MAX_BATCH ? rows - r0 : DF11_CUDA_MAX_BATCH;
			for (int j = 0; j < nj; j++) {
				jobs[j].tensor = m->t_embed;
				jobs[j].first = (uint64_t)tokens[r0 + j] * H;
				jobs[j].count = H;
				jobs[j].dst = (uint16_t *)(m->emb + (size_t)(r0 + j) * H);
			}
			TRY(df11_cuda_decode_batch(m->enc, jobs, (size_t)nj, m->s_comp));
		}
	}
	embed_kernel<<<rows, 256, 0, m->s_comp>>>(m->x, m->emb, (int)H);
	CU(cudaGetLastError(), "embedding");
	return DF11_OK;
}

/* The end of a forward call: results to the host, then the position. */
static df11_result finish(df11_cuda_llm *m, int n, int out_rows,
			  float *logits_host, int32_t *next_host)
{
	const int B = m->opt.batch, V = m->c.vocab;
	if (logits_host)
		CU(cudaMemcpyAsync(logits_host, m->logits, (size_t)out_rows * V * sizeof(float),
				   cudaMemcpyDeviceToHost, m->s_comp), "logits");
	if (next_host)
		CU(cudaMemcpyAsync(next_host, m->d_next, (size_t)B * sizeof(int32_t),
				   cudaMemcpyDeviceToHost, m->s_comp), "next");
	CU(cudaStreamSynchronize(m->s_comp), "forward");
	/* Weights corrupted in device memory since the upload: the kernels
	 * flagged them; the call fails rather than hand out their results. */
	if (m->enc)
		TRY(df11_cuda_check(m->enc, m->s_comp));
	m->pos += n;
	note_peak(m);
	return DF11_OK;
}

/* Layers, final norm, lm_head and argmax of a fused call (M <= 32 rows):
 * stream work only, so that a decode step can be captured as a graph. */
static df11_result fused_body(df11_cuda_llm *m, int n, int all_logits)
{
	const df11_llm_config *c = &m->c;
	int B = m->opt.batch, L = c->n_layers, V = c->vocab, H = c->hidden;
	int df11 = m->opt.mode == DF11_CUDA_LLM_DF11;
	int out_rows = all_logits ? B * n : B;
	for (int l = 0; l < L; l++)
		TRY(layer_forward(m, l, df11 ? NULL : m->resident + (size_t)l * m->lay.layer_elems,
				  n, 1));
	rmsnorm_kernel<<<out_rows, FWD_THREADS, 0, m->s_comp>>>(
		m->xb, m->x, df11 ? m->norm_buf : m->r_norm, H, c->norm_eps,
		all_logits ? 1 : n, all_logits ? 0 : n - 1);
	df11_cuda_gemv_job j = {df11 ? m->t_head : 0,
				df11 ? NULL : (const uint16_t *)m->r_head,
				(uint64_t)V, m->logits, (size_t)V};
	TRY(df11_cuda_gemv(df11 ? m->enc : NULL, &j, 1, (const uint16_t *)m->xb,
			   (size_t)H, (uint64_t)H, out_rows, 0, m->s_comp));
	argmax_kernel<<<B, FWD_THREADS, 0, m->s_comp>>>(m->d_next, m->logits, V,
							 all_logits ? n : 1,
							 all_logits ? n - 1 : 0);
	CU(cudaGetLastError(), "argmax");
	return DF11_OK;
}

/* A decode step's fused body: run directly the first time (it sets kernel
 * attributes), captured as a graph the second, replayed after. */
static df11_result fused_step(df11_cuda_llm *m)
{
	if (m->step_exec) {
		CU(cudaGraphLaunch(m->step_exec, m->s_comp), "decode step graph");
		return DF11_OK;
	}
	if (m->step_runs++ == 0)
		return fused_body(m, 1, 0);
	cudaGraph_t g = NULL;
	CU(cudaStreamBeginCapture(m->s_comp, cudaStreamCaptureModeThreadLocal),
	   "decode step capture");
	df11_result r = fused_body(m, 1, 0);
	cudaError_t e = cudaStreamEndCapture(m->s_comp, &g);
	if (r)
		return r;
	CU(e, "decode step capture");
	e = cudaGraphInstantiate(&m->step_exec, g, 0);
	cudaGraphDestroy(g);
	CU(e, "decode step graph");
	CU(cudaGraphLaunch(m->step_exec, m->s_comp), "decode step graph");
	return DF11_OK;
}

static df11_result forward(df11_cuda_llm *m, const int32_t *tokens, int n,
			   int all_logits, float *logits_host, int32_t *next_host)
{
	const df11_llm_config *c = &m->c;
	int B = m->opt.batch, rows = B * n, L = c->n_layers, V = c->vocab, H = c->hidden;
	int df11 = m->opt.mode == DF11_CUDA_LLM_DF11;
	int out_rows = all_logits ? rows : B;
	if (out_rows > m->logit_rows) {
		CU(cudaStreamSynchronize(m->s_comp), "sync");
		CU(cudaFree(m->logits), "logits");
		m->logits = NULL;
		m->mem.activations -= (size_t)m->logit_rows * V * sizeof(float);
		m->logit_rows = out_rows;
		TRY(dalloc(&m->logits, (size_t)out_rows * V, &m->mem.activations, "logits"));
		/* The decode step's graph wrote the old buffer. */
		if (m->step_exec)
			cudaGraphExecDestroy(m->step_exec);
		m->step_exec = NULL;
		m->step_runs = 0;
	}
	CU(cudaMemcpyAsync(m->d_tokens, tokens, (size_t)rows * sizeof(int32_t),
			   cudaMemcpyHostToDevice, m->s_comp), "tokens");
	CU(cudaMemcpyAsync(m->d_pos, &m->pos, sizeof(int), cudaMemcpyHostToDevice,
			   m->s_comp), "position");
	TRY(embed(m, tokens, rows));
	if (rows <= DF11_CUDA_GEMV_MAX_BATCH && !m->opt.gemm_only) {
		if (n == 1 && !all_logits)
			TRY(fused_step(m));
		else
			TRY(fused_body(m, n, all_logits));
		return finish(m, n, out_rows, logits_host, next_host);
	}

	int K = L + m->lay.n_slices;
	if (df11) {
		CU(cudaStreamWaitEvent(m->s_dec, m->freed[0], 0), "wait");
		TRY(decode_stage(m, 0, m->buf[0]));
		CU(cudaEventRecord(m->ready[0], m->s_dec), "record");
	}
	for (int k = 0; k < K; k++) {
		int b = k & 1;
		const bf16 *w;
		if (df11) {
			/* Decode stage k + 1 while stage k computes. */
			if (k + 1 < K) {
				CU(cudaStreamWaitEvent(m->s_dec, m->freed[b ^ 1], 0), "wait");
				TRY(decode_stage(m, k + 1, m->buf[b ^ 1]));
				CU(cudaEventRecord(m->ready[b ^ 1], m->s_dec), "record");
			}
			CU(cudaStreamWaitEvent(m->s_comp, m->ready[b], 0), "wait");
			w = m->buf[b];
		} else if (k < L) {
			w = m->resident + (size_t)k * m->lay.layer_elems;
		} else {
			w = m->r_head + (size_t)(k - L) * m->lay.slice_rows * H;
		}

		if (k < L) {
			TRY(layer_forward(m, k, w, n, 0));
		} else {
			if (k == L) {
				/* Final norm of the rows whose logits are wanted. */
				rmsnorm_kernel<<<out_rows, FWD_THREADS, 0, m->s_comp>>>(
					m->xb, m->x, df11 ? m->norm_buf : m->r_norm, H,
					c->norm_eps, all_logits ? 1 : n, all_logits ? 0 : n - 1);
			}
			int r0 = (k - L) * m->lay.slice_rows;
			int nr = V - r0 < m->lay.slice_rows ? V - r0 : m->lay.slice_rows;
			TRY(gemm(m, m->logits + r0, V, m->xb, w, out_rows, nr, H, 0));
		}
		if (df11)
			CU(cudaEventRecord(m->freed[b], m->s_comp), "record");
	}
	/* Next token of each sequence: its last row. */
	argmax_kernel<<<B, FWD_THREADS, 0, m->s_comp>>>(m->d_next, m->logits, V,
							 all_logits ? n : 1,
							 all_logits ? n - 1 : 0);
	CU(cudaGetLastError(), "argmax");
	return finish(m, n, out_rows, logits_host, next_host);
}

extern "C" df11_result df11_cuda_llm_forward(df11_cuda_llm *m, const int32_t *tokens,
					     int n, int all_logits, float *logits,
					     int32_t *next_ret)
{
	const df11_llm_config *c = &m->c;
	if (m->opt.batch < 1)
		return df11_fail(DF11_INVALID_ARG, "forward: no runtime buffers (a "
				 "reshape failed)");
	if (n < 1 || n > m->opt.max_tokens)
		return df11_fail(DF11_INVALID_ARG, "forward: %d tokens (at most %d)",
				 n, m->opt.max_tokens);
	if (n > m->opt.max_seq - m->pos)
		return df11_fail(DF11_LIMIT, "forward: %d tokens at position %d exceed "
				 "the KV cache of %d", n, m->pos, m->opt.max_seq);
	for (int i = 0; i < m->opt.batch * n; i++)
		if (tokens[i] < 0 || tokens[i] >= c->vocab)
			return df11_fail(DF11_INVALID_ARG, "token %d is outside the "
					 "vocabulary [0, %d)", tokens[i], c->vocab);
	return forward(m, tokens, n, all_logits, logits, next_ret);
}
