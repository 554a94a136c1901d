/*
 * The CPU reference forward pass of a Llama / Mistral model, written to be
 * read: one function per operation, float32 everywhere, the math of
 * transformers' modeling_llama.py / modeling_mistral.py in float32 (their
 * eager attention, RMSNorm, rotate_half RoPE, SwiGLU MLP).
 *
 * Weights come from a df11_weights provider just in time: a layer's nine
 * tensors are fetched (decoded, for a .df11) into one BF16 layer buffer
 * right before the layer runs, embedding rows one token at a time, and
 * lm_head in slices of rows through the same buffer.
 *
 * Determinism: every dot product and every reduction runs on one thread in
 * a fixed order; threads only split independent outputs. So the logits
 * depend on nothing but the weights' bit patterns and the tokens, which is
 * what makes "DF11 logits == BF16 logits, bit for bit" a meaningful test.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/bf16.h"
#include "common/error.h"
#include "llm/forward.h"
#include "common/parallel.h"

/* Rows of lm_head multiplied at once cap at this many even when the layer
 * buffer could hold more; keeps slices cache-sized. */
#define LM_HEAD_SLICE_MAX 4096

struct df11_cpu_llm {
	df11_llm_config c;
	df11_weights w;
	int max_seq, threads, pos;
	int bf16_acts;               /* round where the CUDA pass rounds */

	uint16_t *layer_buf;         /* one layer's weights, BF16 */
	uint64_t layer_elems;
	uint16_t *lw[DF11_W_COUNT];  /* views into layer_buf */
	                             /* q (nh*hd, H), k/v (nkv*hd, H), o (H, nh*hd),
	                              * gate/up (I, H), down (H, I), norms (H) */
	float *k_cache, *v_cache;    /* (L, max_seq, nkv*hd) each */
	float *inv_freq;             /* (hd/2) RoPE frequencies */
	float *wrow;                 /* (threads, max(H, I, nh*hd)) widened weight rows */

	int cap;                     /* tokens the activations below hold */
	float *x;                    /* (cap, H) residual stream */
	float *xn;                   /* (cap, H) normed */
	float *q;                    /* (cap, nh*hd) */
	float *k, *v;                /* (cap, nkv*hd) */
	float *att;                  /* (cap, nh*hd) attention output */
	float *gate, *up;            /* (cap, I) */
	float *scores;               /* (max_seq) one row of attention */
	uint16_t *emb_row;           /* (H) */
	df11_cpu_matmul_fn mm;       /* replaces matmul() if not NULL */
	void *mm_ctx;
};

/* float -> nearest BF16 (ties to even) -> float, as __float2bfloat16. */
static float round_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return f;
	u += 0x7fffu + ((u >> 16) & 1u);
	u &= 0xffff0000u;
	memcpy(&f, &u, 4);
	return f;
}

/* In CUDA-emulation mode, what the CUDA pass stores as BF16 is rounded. */
static void maybe_round(const df11_cpu_llm *m, float *x, size_t n)
{
	if (!m->bf16_acts)
		return;
	for (size_t i = 0; i < n; i++)
		x[i] = round_bf16(x[i]);
}

int df11_argmax(const float *x, int n)
{
	int best = -1;
	for (int i = 0; i < n; i++)
		if (!isnan(x[i]) && (best < 0 || x[i] > x[best]))
			best = i;
	return best < 0 ? 0 : best;
}

/* ------------------------------------------------------------------------
 * The operations.
 * ---------------------------------------------------------------------- */

/* out = weight * (x / sqrt(mean(x^2) + eps)), as LlamaRMSNorm in float32. */
static void rmsnorm(float *out, const float *x, const uint16_t *weight, int n,
		    float eps)
{
	float ss = 0.0f;
	for (int i = 0; i < n; i++)
		ss += x[i] * x[i];
	float r = 1.0f / sqrtf(ss / (float)n + eps);
	for (int i = 0; i < n; i++)
		out[i] = df11_bf16_to_f32(weight[i]) * (x[i] * r);
}

/* A dot product in a fixed order: eight interleaved partial sums (which
 * the compiler can keep in one vector register), then added pairwise. */
static float dot(const float *a, const float *b, int n)
{
	float s[8] = {0};
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			s[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s[i & 7] += a[i] * b[i];
	return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

typedef struct matmul_job {
	float *out;            /* (n, ld_out), columns [0, N) written */
	const float *in;       /* (n, K) */
	const uint16_t *w;     /* (N, K) BF16 */
	float *wrow;           /* (threads, >= K) */
	int n, N, K, ld_out, threads, accumulate;
} matmul_job;

static void matmul_worker(void *arg, int t)
{
	const matmul_job *J = arg;
	int lo = (int)((int64_t)J->N * t / J->threads);
	int hi = (int)((int64_t)J->N * (t + 1) / J->threads);
	float *row = J->wrow + (size_t)t * (size_t)J->K;
	for (int j = lo; j < hi; j++) {
		const uint16_t *w = J->w + (size_t)j * (size_t)J->K;
		for (int k = 0; k < J->K; k++)
			row[k] = df11_bf16_to_f32(w[k]);
		for (int i = 0; i < J->n; i++) {
			float y = dot(J->in + (size_t)i * (size_t)J->K, row, J->K);
			float *o = J->out + (size_t)i * (size_t)J->ld_out + j;
			*o = J->accumulate ? *o + y : y;
		}
	}
}

/* out[i][j] (+)= sum_k in[i][k] * w[j][k]: y = x W^T for n tokens. Threads
 * split the N outputs; each output is one dot(), so the result does not
 * depend on the thread count. */
static void matmul(df11_cpu_llm *m, float *out, int ld_out, const float *in,
		   const uint16_t *w, int n, int N, int K, int accumulate,
		   const char *name, uint64_t row0)
{
	if (m->mm) {
		m->mm(m->mm_ctx, name, row0, w, out, ld_out, in, n, N, K, accumulate);
		return;
	}
	int threads = m->threads;
	if (threads > N)
		threads = N;
	/* Small products are not worth waking threads for. */
	if ((int64_t)n * N * K < (1 << 18))
		threads = 1;
	matmul_job J = {out, in, w, m->wrow, n, N, K, ld_out, threads, accumulate};
	if (threads <= 1)
		matmul_worker(&J, 0);
	else
		df11_parallel_run(threads, matmul_worker, &J);
}

/* Rotary embedding of one head vector at position pos, Hugging Face's
 * rotate_half convention: dimension i pairs with i + hd/2 (not 2i, 2i+1
 * as in Meta's original code; HF checkpoints permute q/k to match). */
static void rope(float *v, int hd, int pos, const float *inv_freq)
{
	int half = hd / 2;
	for (int i = 0; i < half; i++) {
		/* freqs = position * inv_freq in float32, as transformers. */
		float ang = (float)pos * inv_freq[i];
		float c = cosf(ang), s = sinf(ang);
		float a = v[i], b = v[i + half];
		v[i] = a * c - b * s;
		v[i + half] = b * c + a * s;
	}
}

static float silu(float x)
{
	return x / (1.0f + expf(-x));
}

/* Causal grouped-query attention of token t (at position pos) over the
 * cached keys and values of positions [first, pos]. */
static void attention(df11_cpu_llm *m, int layer, const float *q, int pos,
		      float *out)
{
	const df11_llm_config *c = &m->c;
	int hd = c->head_dim, kv_dim = c->n_kv_heads * hd;
	int group = c->n_heads / c->n_kv_heads;
	float scale = (float)(1.0 / sqrt((double)hd));
	/* Mistral's sliding window: key j is visible from query i if
	 * i - j < window (transformers' sliding_window_overlay). */
	int first = 0;
	if (c->sliding_window > 0 && pos - c->sliding_window + 1 > 0)
		first = pos - c->sliding_window + 1;
	const float *kc = m->k_cache + (size_t)layer * (size_t)m->max_seq * (size_t)kv_dim;
	const float *vc = m->v_cache + (size_t)layer * (size_t)m->max_seq * (size_t)kv_dim;
	float *sc = m->scores;
	for (int h = 0; h < c->n_heads; h++) {
		const float *qh = q + (size_t)h * (size_t)hd;
		int kvh = h / group;
		float mx = -INFINITY;
		for (int j = first; j <= pos; j++) {
			const float *kj = kc + (size_t)j * (size_t)kv_dim + (size_t)kvh * (size_t)hd;
			sc[j] = dot(qh, kj, hd) * scale;
			if (sc[j] > mx)
				mx = sc[j];
		}
		float sum = 0.0f;
		for (int j = first; j <= pos; j++) {
			sc[j] = expf(sc[j] - mx);
			sum += sc[j];
		}
		float *oh = out + (size_t)h * (size_t)hd;
		for (int d = 0; d < hd; d++)
			oh[d] = 0.0f;
		for (int j = first; j <= pos; j++) {
			float p = sc[j] / sum;
			const float *vj = vc + (size_t)j * (size_t)kv_dim + (size_t)kvh * (size_t)hd;
			for (int d = 0; d < hd; d++)
				oh[d] += p * vj[d];
		}
	}
}

/* ------------------------------------------------------------------------
 * The model.
 * ---------------------------------------------------------------------- */

static int imax(int a, int b)
{
	return a > b ? a : b;
}

df11_result df11_cpu_llm_new(const df11_llm_config *cfg, const df11_weights *w,
			     int max_seq, int threads, df11_cpu_llm **ret)
{
	*ret = NULL;
	if (max_seq < 1 || max_seq > (1 << 24))
		return df11_fail(DF11_INVALID_ARG, "max_seq %d", max_seq);
	df11_result r = df11_llm_check_weights(cfg, w);
	if (r)
		return r;
	df11_cpu_llm *m = calloc(1, sizeof *m);
	if (!m)
		return df11_fail(DF11_NOMEM, "cpu forward pass");
	m->c = *cfg;
	m->w = *w;
	m->max_seq = max_seq;
	m->threads = threads < 1 ? 1 : threads;
	const df11_llm_config *c = cfg;

	uint64_t off[DF11_W_COUNT];
	m->layer_elems = 0;
	for (int k = 0; k < DF11_W_COUNT; k++) {
		uint64_t rows, cols;
		df11_llm_layer_shape(c, k, &rows, &cols);
		off[k] = m->layer_elems;
		m->layer_elems += rows * (cols ? cols : 1);
	}
	size_t kv = (size_t)c->n_layers * (size_t)max_seq *
		    (size_t)c->n_kv_heads * (size_t)c->head_dim;
	int widest = imax(imax(c->hidden, c->intermediate), c->n_heads * c->head_dim);
	m->layer_buf = malloc(m->layer_elems * 2);
	m->k_cache = malloc(kv * sizeof(float));
	m->v_cache = malloc(kv * sizeof(float));
	m->inv_freq = malloc((size_t)c->head_dim / 2 * sizeof(float));
	m->wrow = malloc((size_t)m->threads * (size_t)widest * sizeof(float));
	m->scores = malloc((size_t)max_seq * sizeof(float));
	m->emb_row = malloc((size_t)c->hidden * 2);
	if (!m->layer_buf || !m->k_cache || !m->v_cache || !m->inv_freq ||
	    !m->wrow || !m->scores || !m->emb_row) {
		df11_cpu_llm_free(m);
		return df11_fail(DF11_NOMEM, "cpu forward pass: layer buffer "
				 "(%llu elements) or KV cache (%zu floats)",
				 (unsigned long long)m->layer_elems, 2 * kv);
	}
	for (int k = 0; k < DF11_W_COUNT; k++)
		m->lw[k] = m->layer_buf + off[k];
	/* inv_freq = 1 / theta^(2i / hd), float32 like transformers. */
	for (int i = 0; i < c->head_dim / 2; i++)
		m->inv_freq[i] = 1.0f / powf(c->rope_theta,
					     (float)(2 * i) / (float)c->head_dim);
	*ret = m;
	return DF11_OK;
}

static void free_activations(df11_cpu_llm *m)
{
	free(m->x);
	free(m->xn);
	free(m->q);
	free(m->k);
	free(m->v);
	free(m->att);
	free(m->gate);
	free(m->up);
	m->x = m->xn = m->q = m->k = m->v = m->att = m->gate = m->up = NULL;
	m->cap = 0;
}

void df11_cpu_llm_free(df11_cpu_llm *m)
{
	if (!m)
		return;
	free_activations(m);
	free(m->layer_buf);
	free(m->k_cache);
	free(m->v_cache);
	free(m->inv_freq);
	free(m->wrow);
	free(m->scores);
	free(m->emb_row);
	free(m);
}

void df11_cpu_llm_reset(df11_cpu_llm *m)
{
	m->pos = 0;
}

int df11_cpu_llm_pos(const df11_cpu_llm *m)
{
	return m->pos;
}

void df11_cpu_llm_set_bf16_activations(df11_cpu_llm *m, int on)
{
	m->bf16_acts = on != 0;
}

static df11_result reserve(df11_cpu_llm *m, int n)
{
	if (n <= m->cap)
		return DF11_OK;
	free_activations(m);
	const df11_llm_config *c = &m->c;
	size_t N = (size_t)n, H = (size_t)c->hidden, I = (size_t)c->intermediate;
	size_t qd = (size_t)c->n_heads * (size_t)c->head_dim;
	size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
	m->x = malloc(N * H * sizeof(float));
	m->xn = malloc(N * H * sizeof(float));
	m->q = malloc(N * qd * sizeof(float));
	m->k = malloc(N * kvd * sizeof(float));
	m->v = malloc(N * kvd * sizeof(float));
	m->att = malloc(N * qd * sizeof(float));
	m->gate = malloc(N * I * sizeof(float));
	m->up = malloc(N * I * sizeof(float));
	if (!m->x || !m->xn || !m->q || !m->k || !m->v || !m->att || !m->gate || !m->up) {
		free_activations(m);
		return df11_fail(DF11_NOMEM, "activations for %d tokens", n);
	}
	m->cap = n;
	return DF11_OK;
}

/* The nine tensors of layer l into the layer buffer. */
static df11_result fetch_layer(df11_cpu_llm *m, int l)
{
	char name[DF11_LLM_NAME_MAX];
	for (int k = 0; k < DF11_W_COUNT; k++) {
		uint64_t rows, cols;
		df11_llm_layer_shape(&m->c, k, &rows, &cols);
		df11_llm_layer_name(name, l, df11_llm_layer_suffix[k]);
		df11_result r = m->w.read(m->w.ctx, name, 0,
					  rows * (cols ? cols : 1), m->lw[k]);
		if (r)
			return r;
	}
	return DF11_OK;
}

/* One transformer layer over n tokens at positions pos0 .. pos0 + n - 1:
 *   x += o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(..)), v_proj(..)))
 *   x += down_proj(silu(gate_proj(norm(x))) * up_proj(norm(x)))         */
static void layer_forward(df11_cpu_llm *m, int l, int n, int pos0)
{
	const df11_llm_config *c = &m->c;
	int H = c->hidden, I = c->intermediate, hd = c->head_dim;
	int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;

	for (int t = 0; t < n; t++)
		rmsnorm(m->xn + (size_t)t * H, m->x + (size_t)t * H,
			m->lw[DF11_W_ATTN_NORM], H, c->norm_eps);
	maybe_round(m, m->xn, (size_t)n * H);
	char nm[DF11_W_COUNT][DF11_LLM_NAME_MAX];
	for (int i = 0; i < DF11_W_COUNT; i++)
		df11_llm_layer_name(nm[i], l, df11_llm_layer_suffix[i]);
	matmul(m, m->q, qd, m->xn, m->lw[DF11_W_Q], n, qd, H, 0, nm[DF11_W_Q], 0);
	matmul(m, m->k, kvd, m->xn, m->lw[DF11_W_K], n, kvd, H, 0, nm[DF11_W_K], 0);
	matmul(m, m->v, kvd, m->xn, m->lw[DF11_W_V], n, kvd, H, 0, nm[DF11_W_V], 0);

	float *kc = m->k_cache + (size_t)l * (size_t)m->max_seq * (size_t)kvd;
	float *vc = m->v_cache + (size_t)l * (size_t)m->max_seq * (size_t)kvd;
	for (int t = 0; t < n; t++) {
		int pos = pos0 + t;
		for (int h = 0; h < c->n_heads; h++)
			rope(m->q + (size_t)t * qd + (size_t)h * hd, hd, pos, m->inv_freq);
		for (int h = 0; h < c->n_kv_heads; h++)
			rope(m->k + (size_t)t * kvd + (size_t)h * hd, hd, pos, m->inv_freq);
		memcpy(kc + (size_t)pos * kvd, m->k + (size_t)t * kvd, (size_t)kvd * sizeof(float));
		memcpy(vc + (size_t)pos * kvd, m->v + (size_t)t * kvd, (size_t)kvd * sizeof(float));
		maybe_round(m, kc + (size_t)pos * kvd, (size_t)kvd);
		maybe_round(m, vc + (size_t)pos * kvd, (size_t)kvd);
	}
	/* Token t sees the cache up to its own position: causal. */
	for (int t = 0; t < n; t++)
		attention(m, l, m->q + (size_t)t * qd, pos0 + t, m->att + (size_t)t * qd);
	maybe_round(m, m->att, (size_t)n * qd);
	matmul(m, m->x, H, m->att, m->lw[DF11_W_O], n, H, qd, 1, nm[DF11_W_O], 0);

	for (int t = 0; t < n; t++)
		rmsnorm(m->xn + (size_t)t * H, m->x + (size_t)t * H,
			m->lw[DF11_W_MLP_NORM], H, c->norm_eps);
	maybe_round(m, m->xn, (size_t)n * H);
	matmul(m, m->gate, I, m->xn, m->lw[DF11_W_GATE], n, I, H, 0, nm[DF11_W_GATE], 0);
	matmul(m, m->up, I, m->xn, m->lw[DF11_W_UP], n, I, H, 0, nm[DF11_W_UP], 0);
	for (size_t i = 0; i < (size_t)n * (size_t)I; i++)
		m->gate[i] = silu(m->gate[i]) * m->up[i];
	maybe_round(m, m->gate, (size_t)n * I);
	matmul(m, m->x, H, m->gate, m->lw[DF11_W_DOWN], n, H, I, 1, nm[DF11_W_DOWN], 0);
}

df11_result df11_cpu_llm_forward(df11_cpu_llm *m, const int32_t *tokens,
				 int n, int all_logits, float *logits)
{
	const df11_llm_config *c = &m->c;
	int H = c->hidden, V = c->vocab;
	if (n < 1)
		return df11_fail(DF11_INVALID_ARG, "forward: %d tokens", n);
	if (n > m->max_seq - m->pos)
		return df11_fail(DF11_LIMIT, "forward: %d tokens at position %d "
				 "exceed the KV cache of %d", n, m->pos, m->max_seq);
	for (int t = 0; t < n; t++)
		if (tokens[t] < 0 || tokens[t] >= V)
			return df11_fail(DF11_INVALID_ARG, "token %d is outside "
					 "the vocabulary [0, %d)", tokens[t], V);
	df11_result r = reserve(m, n);
	if (r)
		return r;

	/* Embedding rows, decoded one token at a time. */
	for (int t = 0; t < n; t++) {
		r = m->w.read(m->w.ctx, "model.embed_tokens.weight",
			      (uint64_t)tokens[t] * (uint64_t)H, (uint64_t)H, m->emb_row);
		if (r)
			return r;
		for (int i = 0; i < H; i++)
			m->x[(size_t)t * H + i] = df11_bf16_to_f32(m->emb_row[i]);
	}

	for (int l = 0; l < c->n_layers; l++) {
		if ((r = fetch_layer(m, l)))
			return r;
		layer_forward(m, l, n, m->pos);
	}

	/* Final norm of the rows whose logits are wanted. */
	int first = all_logits ? 0 : n - 1, rows = n - first;
	if ((r = m->w.read(m->w.ctx, "model.norm.weight", 0, (uint64_t)H, m->emb_row)))
		return r;
	for (int t = 0; t < rows; t++)
		rmsnorm(m->xn + (size_t)t * H, m->x + (size_t)(first + t) * H,
			m->emb_row, H, c->norm_eps);
	maybe_round(m, m->xn, (size_t)rows * H);

	/* lm_head (V, H) in slices of rows through the layer buffer. */
	const char *head = df11_llm_lm_head_name(c);
	uint64_t slice = m->layer_elems / (uint64_t)H;
	if (slice > LM_HEAD_SLICE_MAX)
		slice = LM_HEAD_SLICE_MAX;
	for (uint64_t v0 = 0; v0 < (uint64_t)V; v0 += slice) {
		uint64_t nv = (uint64_t)V - v0 < slice ? (uint64_t)V - v0 : slice;
		r = m->w.read(m->w.ctx, head, v0 * (uint64_t)H, nv * (uint64_t)H,
			      m->layer_buf);
		if (r)
			return r;
		matmul(m, logits + v0, V, m->xn, m->layer_buf, rows, (int)nv, H, 0,
		       head, v0);
	}
	m->pos += n;
	return DF11_OK;
}

void df11_cpu_llm_set_matmul(df11_cpu_llm *m, df11_cpu_matmul_fn fn, void *ctx)
{
	m->mm = fn;
	m->mm_ctx = ctx;
}
