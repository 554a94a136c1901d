/* Weight providers for the forward passes, and the tensor names and shapes
 * of a Llama / Mistral checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/error.h"
#include "llm/forward.h"

const char *const df11_llm_layer_suffix[DF11_W_COUNT] = {
	"self_attn.q_proj.weight", "self_attn.k_proj.weight",
	"self_attn.v_proj.weight", "self_attn.o_proj.weight",
	"mlp.gate_proj.weight",    "mlp.up_proj.weight",
	"mlp.down_proj.weight",    "input_layernorm.weight",
	"post_attention_layernorm.weight",
};

void df11_llm_layer_name(char out[DF11_LLM_NAME_MAX], int layer,
			 const char *suffix)
{
	snprintf(out, DF11_LLM_NAME_MAX, "model.layers.%d.%s", layer, suffix);
}

const char *df11_llm_lm_head_name(const df11_llm_config *cfg)
{
	return cfg->tied ? "model.embed_tokens.weight" : "lm_head.weight";
}

void df11_llm_layer_shape(const df11_llm_config *c, int which,
			  uint64_t *rows, uint64_t *cols)
{
	uint64_t H = (uint64_t)c->hidden, I = (uint64_t)c->intermediate;
	uint64_t q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
	uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
	switch (which) {
	case DF11_W_Q: *rows = q; *cols = H; break;
	case DF11_W_K:
	case DF11_W_V: *rows = kv; *cols = H; break;
	case DF11_W_O: *rows = H; *cols = q; break;
	case DF11_W_GATE:
	case DF11_W_UP: *rows = I; *cols = H; break;
	case DF11_W_DOWN: *rows = H; *cols = I; break;
	default: *rows = H; *cols = 0; break;  /* norms */
	}
}

static uint64_t elems_of(const df11_llm_config *c, int k)
{
	uint64_t rows, cols;
	df11_llm_layer_shape(c, k, &rows, &cols);
	return rows * (cols ? cols : 1);
}

void df11_llm_layout_plan(const df11_llm_config *c, df11_llm_layout *L)
{
	uint64_t *o = L->off;
	o[DF11_W_Q] = 0;
	o[DF11_W_K] = o[DF11_W_Q] + elems_of(c, DF11_W_Q);
	o[DF11_W_V] = o[DF11_W_K] + elems_of(c, DF11_W_K);
	o[DF11_W_O] = df11_align_up(o[DF11_W_V] + elems_of(c, DF11_W_V), DF11_LAYOUT_ALIGN);
	o[DF11_W_GATE] = df11_align_up(o[DF11_W_O] + elems_of(c, DF11_W_O), DF11_LAYOUT_ALIGN);
	o[DF11_W_UP] = o[DF11_W_GATE] + elems_of(c, DF11_W_GATE);
	o[DF11_W_DOWN] = df11_align_up(o[DF11_W_UP] + elems_of(c, DF11_W_UP), DF11_LAYOUT_ALIGN);
	o[DF11_W_ATTN_NORM] = df11_align_up(o[DF11_W_DOWN] + elems_of(c, DF11_W_DOWN), DF11_LAYOUT_ALIGN);
	o[DF11_W_MLP_NORM] = df11_align_up(o[DF11_W_ATTN_NORM] + (uint64_t)c->hidden, DF11_LAYOUT_ALIGN);
	L->layer_elems = df11_align_up(o[DF11_W_MLP_NORM] + (uint64_t)c->hidden, DF11_LAYOUT_ALIGN);
	uint64_t rows = L->layer_elems / (uint64_t)c->hidden;
	if (rows >= DF11_LAYOUT_ALIGN)
		rows = rows / DF11_LAYOUT_ALIGN * DF11_LAYOUT_ALIGN;
	if (rows > (uint64_t)c->vocab)
		rows = (uint64_t)c->vocab;
	L->slice_rows = (int)rows;
	L->n_slices = (int)(((uint64_t)c->vocab + rows - 1) / rows);
}

static df11_result check_one(const df11_weights *w, const char *name,
			     uint64_t rows, uint64_t cols)
{
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	df11_result r = w->shape(w->ctx, name, &ndim, shape, NULL);
	if (r == DF11_NOT_FOUND)
		return df11_fail(DF11_NOT_FOUND, "checkpoint has no tensor %s", name);
	if (r)
		return r;
	int want = cols ? 2 : 1;
	if (ndim != want || shape[0] != rows || (cols && shape[1] != cols))
		return df11_fail(DF11_BAD_DATA,
				 "%s: shape (%llu%s%llu) does not match config.json "
				 "(%llu%s%llu)", name,
				 (unsigned long long)(ndim > 0 ? shape[0] : 0),
				 ndim > 1 ? ", " : "",
				 (unsigned long long)(ndim > 1 ? shape[1] : 0),
				 (unsigned long long)rows, cols ? ", " : "",
				 (unsigned long long)cols);
	return DF11_OK;
}

df11_result df11_llm_check_weights(const df11_llm_config *c,
				   const df11_weights *w)
{
	df11_result r;
	uint64_t H = (uint64_t)c->hidden, V = (uint64_t)c->vocab;
	if ((r = check_one(w, "model.embed_tokens.weight", V, H)) ||
	    (r = check_one(w, "model.norm.weight", H, 0)))
		return r;
	if (!c->tied && (r = check_one(w, "lm_head.weight", V, H)))
		return r;
	char name[DF11_LLM_NAME_MAX];
	for (int l = 0; l < c->n_layers; l++)
		for (int k = 0; k < DF11_W_COUNT; k++) {
			uint64_t rows, cols;
			df11_llm_layer_shape(c, k, &rows, &cols);
			df11_llm_layer_name(name, l, df11_llm_layer_suffix[k]);
			if ((r = check_one(w, name, rows, cols)))
				return r;
		}
	return DF11_OK;
}

/* ------------------------------------------------------------------------
 * In memory.
 * ---------------------------------------------------------------------- */

typedef struct mem_tensor {
	char *name;
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	uint64_t n_elems;
	uint16_t *bf16;     /* either this ... */
	uint8_t *enc;       /* ... or this */
	size_t enc_size;
} mem_tensor;

struct df11_weights_mem {
	mem_tensor *t;
	size_t n, cap;
	int threads;        /* for encoding and decoding */
	df11_decoder *dec;
};

df11_weights_mem *df11_weights_mem_new(void)
{
	df11_weights_mem *m = calloc(1, sizeof *m);
	if (m && !(m->dec = df11_decoder_new(1))) {
		free(m);
		m = NULL;
	}
	if (m)
		m->threads = 1;
	return m;
}

df11_result df11_weights_mem_set_threads(df11_weights_mem *m, int threads)
{
	threads = threads > 0 ? threads : 1;
	df11_decoder *dec = df11_decoder_new(threads);
	if (!dec)
		return df11_fail(DF11_NOMEM, "weights_mem: decoder");
	df11_decoder_free(m->dec);
	m->dec = dec;
	m->threads = threads;
	return DF11_OK;
}

void df11_weights_mem_free(df11_weights_mem *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->t[i].name);
		free(m->t[i].bf16);
		free(m->t[i].enc);
	}
	free(m->t);
	df11_decoder_free(m->dec);
	free(m);
}

df11_result df11_weights_mem_add(df11_weights_mem *m, const char *name,
				 int ndim, const uint64_t *shape,
				 const uint16_t *data, int encode)
{
	if (ndim < 0 || ndim > DF11_MAX_DIMS)
		return df11_fail(DF11_INVALID_ARG, "%s: %d dimensions", name, ndim);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		mem_tensor *t = realloc(m->t, cap * sizeof *t);
		if (!t)
			return df11_fail(DF11_NOMEM, "weights_mem: %zu tensors", cap);
		m->t = t;
		m->cap = cap;
	}
	mem_tensor *t = &m->t[m->n];
	memset(t, 0, sizeof *t);
	t->ndim = ndim;
	t->n_elems = 1;
	for (int i = 0; i < ndim; i++) {
		t->shape[i] = shape[i];
		t->n_elems *= shape[i];
	}
	t->name = strdup(name);
	if (!t->name)
		return df11_fail(DF11_NOMEM, "weights_mem: name");
	df11_result r = DF11_OK;
	if (encode) {
		size_t cap = df11_encode_bound(t->n_elems);
		t->enc = malloc(cap);
		if (!t->enc)
			r = df11_fail(DF11_NOMEM, "weights_mem: %zu bytes", cap);
		else {
			df11_encode_options eo;
			memset(&eo, 0, sizeof eo);
			eo.threads = m->threads;
			r = df11_encode(data, t->n_elems, &eo, t->enc, cap,
					&t->enc_size);
			/* The bound is about twice the encoded size. */
			uint8_t *fit = r ? NULL : realloc(t->enc, t->enc_size);
			if (fit)
				t->enc = fit;
		}
	} else {
		t->bf16 = malloc(t->n_elems * 2 + 1);
		if (!t->bf16)
			r = df11_fail(DF11_NOMEM, "weights_mem: %s", name);
		else
			memcpy(t->bf16, data, t->n_elems * 2);
	}
	if (r) {
		free(t->name);
		free(t->bf16);
		free(t->enc);
		return r;
	}
	m->n++;
	return DF11_OK;
}

static mem_tensor *mem_find(df11_weights_mem *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->t[i].name, name))
			return &m->t[i];
	return NULL;
}

static df11_result mem_shape(void *ctx, const char *name, int *ndim,
			     uint64_t shape[DF11_MAX_DIMS], int *compressed)
{
	mem_tensor *t = mem_find(ctx, name);
	if (!t)
		return df11_fail(DF11_NOT_FOUND, "no tensor %s", name);
	*ndim = t->ndim;
	memcpy(shape, t->shape, sizeof t->shape);
	if (compressed)
		*compressed = t->enc != NULL;
	return DF11_OK;
}

static df11_result mem_read(void *ctx, const char *name, uint64_t first,
			    uint64_t count, uint16_t *dst)
{
	df11_weights_mem *m = ctx;
	mem_tensor *t = mem_find(m, name);
	if (!t)
		return df11_fail(DF11_NOT_FOUND, "no tensor %s", name);
	if (first > t->n_elems || count > t->n_elems - first)
		return df11_fail(DF11_INVALID_ARG, "%s: range past the end", name);
	if (t->bf16) {
		memcpy(dst, t->bf16 + first, count * 2);
		return DF11_OK;
	}
	if (first == 0 && count == t->n_elems)
		return df11_decode(m->dec, t->enc, t->enc_size, dst, count);
	return df11_decode_range(m->dec, t->enc, t->enc_size, first, count, dst);
}

static df11_result mem_encoded(void *ctx, const char *name, const void **data,
			       size_t *size)
{
	mem_tensor *t = mem_find(ctx, name);
	if (!t)
		return df11_fail(DF11_NOT_FOUND, "no tensor %s", name);
	if (!t->enc)
		return df11_fail(DF11_UNSUPPORTED, "%s is not stored encoded", name);
	*data = t->enc;
	*size = t->enc_size;
	return DF11_OK;
}

void df11_weights_mem_provider(df11_weights_mem *m, df11_weights *w)
{
	w->ctx = m;
	w->shape = mem_shape;
	w->read = mem_read;
	w->encoded = mem_encoded;
}
