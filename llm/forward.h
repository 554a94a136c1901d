/*
 * Internal: a minimal Llama / Mistral decoder-only forward pass.
 *
 * Three pieces, shared by the CPU reference (llm/forward_cpu.c), the CUDA
 * forward pass (llm/forward.cu) and df11-run:
 *   - df11_llm_config: the numbers of config.json that the math needs;
 *   - df11_weights: where BF16 weights come from (a checkpoint, a .df11
 *     container, or memory in tests). The forward passes ask it for a
 *     tensor (or a range of rows) just before they use it, so a model
 *     never has to be decoded as a whole;
 *   - df11_cpu_llm: the CPU reference forward pass, the oracle.
 *
 * Tensor names are Hugging Face's (model.layers.3.self_attn.q_proj.weight).
 * Weight matrices are row-major [out_features, in_features] as PyTorch
 * stores them, so y = x W^T.
 */
#ifndef DF11_FORWARD_H
#define DF11_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caps on config.json numbers: larger than any released Llama/Mistral,
 * small enough that every product below fits in 64 bits. */
#define DF11_LLM_MAX_DIM (1 << 20)      /* hidden, intermediate */
#define DF11_LLM_MAX_VOCAB (1 << 24)
#define DF11_LLM_MAX_LAYERS 1024
#define DF11_LLM_MAX_HEADS 1024
#define DF11_LLM_MAX_HEAD_DIM 1024

enum df11_llm_arch { DF11_ARCH_LLAMA = 1, DF11_ARCH_MISTRAL = 2 };

typedef struct df11_llm_config {
	int arch;               /* enum df11_llm_arch */
	int hidden;             /* hidden_size, H */
	int intermediate;       /* intermediate_size, I */
	int n_layers;           /* num_hidden_layers, L */
	int n_heads;            /* num_attention_heads */
	int n_kv_heads;         /* num_key_value_heads (GQA groups) */
	int head_dim;           /* head_dim, or hidden / n_heads */
	int vocab;              /* vocab_size, V */
	int max_pos;            /* max_position_embeddings */
	int sliding_window;     /* Mistral: keys within this many positions; 0 = none */
	int tied;               /* tie_word_embeddings: lm_head = embed_tokens */
	float rope_theta;
	float norm_eps;         /* rms_norm_eps */
} df11_llm_config;

/* Parses config.json (json_size bytes, need not be NUL-terminated) of a
 * MistralForCausalLM or LlamaForCausalLM. DF11_UNSUPPORTED for other
 * architectures and for features this forward pass lacks (rope_scaling,
 * biases, activations other than silu); DF11_BAD_DATA for missing or
 * out-of-range numbers. */
df11_result df11_llm_config_parse(const void *json, size_t json_size,
				  df11_llm_config *cfg_ret);

/* ------------------------------------------------------------------------
 * Weight providers.
 * ---------------------------------------------------------------------- */

typedef struct df11_weights {
	void *ctx;
	/* Shape of BF16 tensor `name`: DF11_NOT_FOUND if absent,
	 * DF11_UNSUPPORTED if it is not BF16. compressed_ret may be NULL. */
	df11_result (*shape)(void *ctx, const char *name, int *ndim_ret,
			     uint64_t shape_ret[DF11_MAX_DIMS],
			     int *compressed_ret);
	/* BF16 elements [first, first + count) of tensor `name` into dst;
	 * (0, n_elems) reads the whole tensor (checked against the
	 * container's checksum where there is one). */
	df11_result (*read)(void *ctx, const char *name, uint64_t first,
			    uint64_t count, uint16_t *dst);
	/* The df11-encoded bytes of `name` (valid while the provider lives),
	 * for uploading to a GPU. DF11_UNSUPPORTED if not stored encoded.
	 * May be NULL: then no tensor is available encoded. */
	df11_result (*encoded)(void *ctx, const char *name,
			       const void **data_ret, size_t *size_ret);
} df11_weights;

/* Weights of an opened checkpoint or container (df11_model_*). The model
 * must outlive the provider; reads are not thread-safe. */
void df11_weights_from_model(df11_model *m, df11_weights *w_ret);

/* Weights held in memory (tests, synthetic models). Each tensor is kept
 * either as given (BF16) or df11-encoded, so the same weights can be
 * served both ways and the two forward passes compared bit for bit. */
typedef struct df11_weights_mem df11_weights_mem;
df11_weights_mem *df11_weights_mem_new(void);
void df11_weights_mem_free(df11_weights_mem *mem);
/* Copies data (n = product of shape elements); if encode, stores it
 * df11-encoded instead and decodes on every read. */
df11_result df11_weights_mem_add(df11_weights_mem *mem, const char *name,
				 int ndim, const uint64_t *shape,
				 const uint16_t *data, int encode);
void df11_weights_mem_provider(df11_weights_mem *mem, df11_weights *w_ret);
/* Threads for encoding in df11_weights_mem_add and decoding on reads
 * (default 1). */
df11_result df11_weights_mem_set_threads(df11_weights_mem *mem, int threads);

/* Checks that every tensor the forward pass needs exists with the right
 * shape (names in the message on failure). */
df11_result df11_llm_check_weights(const df11_llm_config *cfg,
				   const df11_weights *w);

/* Name of a layer tensor: "model.layers.<layer>.<suffix>". */
#define DF11_LLM_NAME_MAX 128
void df11_llm_layer_name(char out[DF11_LLM_NAME_MAX], int layer,
			 const char *suffix);
/* "lm_head.weight", or "model.embed_tokens.weight" when tied. */
const char *df11_llm_lm_head_name(const df11_llm_config *cfg);

/* The seven matrices and two norms of a layer, in the order the forward
 * passes lay them out in one layer buffer. */
enum {
	DF11_W_Q, DF11_W_K, DF11_W_V, DF11_W_O, DF11_W_GATE, DF11_W_UP,
	DF11_W_DOWN, DF11_W_ATTN_NORM, DF11_W_MLP_NORM, DF11_W_COUNT
};
extern const char *const df11_llm_layer_suffix[DF11_W_COUNT];
/* Element counts and shapes [rows, cols] (cols = 0 for the 1-D norms). */
void df11_llm_layer_shape(const df11_llm_config *cfg, int which,
			  uint64_t *rows_ret, uint64_t *cols_ret);

/* The layer buffer of the CUDA forward pass (llm/forward.cu), planned here
 * so that the CPU tests check it. Elements of BF16:
 *   q_proj | k_proj | v_proj   back to back: one (nh*hd + 2*nkv*hd, H)
 *                              matrix, so one GEMM computes q|k|v
 *   o_proj                     (H, nh*hd)
 *   gate_proj | up_proj        back to back: one (2I, H) matrix
 *   down_proj                  (H, I)
 *   input_layernorm, post_attention_layernorm   (H) each
 * Each of those six blocks starts at a multiple of DF11_LAYOUT_ALIGN
 * elements (256 bytes), as does the next layer in a resident BF16 copy.
 * lm_head is multiplied in slices of slice_rows rows that fit one layer
 * buffer; slice_rows is a multiple of DF11_LAYOUT_ALIGN when the buffer
 * holds that many, so every slice starts 256-byte aligned too. */
#define DF11_LAYOUT_ALIGN 128
typedef struct df11_llm_layout {
	uint64_t off[DF11_W_COUNT];  /* element offset of each tensor */
	uint64_t layer_elems;        /* one layer buffer, padded */
	int slice_rows, n_slices;    /* lm_head */
} df11_llm_layout;
void df11_llm_layout_plan(const df11_llm_config *cfg, df11_llm_layout *ret);

/* ------------------------------------------------------------------------
 * The CPU reference forward pass: float32 activations and accumulation,
 * BF16 weights widened exactly to float32, one sequence, a KV cache of
 * max_seq positions. Deterministic: every sum runs in a fixed order on
 * one thread, whatever `threads` is, so its logits depend only on the
 * weights' bit patterns.
 * ---------------------------------------------------------------------- */

typedef struct df11_cpu_llm df11_cpu_llm;

/* w must outlive the model. Fetches each layer's weights just before it
 * runs (one layer buffer), embedding rows per token and lm_head in
 * slices, so memory stays near one layer plus the KV cache. */
df11_result df11_cpu_llm_new(const df11_llm_config *cfg, const df11_weights *w,
			     int max_seq, int threads, df11_cpu_llm **model_ret);
void df11_cpu_llm_free(df11_cpu_llm *m);

/* Forgets the sequence (position 0 again). */
void df11_cpu_llm_reset(df11_cpu_llm *m);
/* Tokens processed so far (the next token's position). */
int df11_cpu_llm_pos(const df11_cpu_llm *m);

/* Runs n tokens at the next n positions, extending the KV cache. If
 * all_logits, logits gets [n x vocab] (one row per token); otherwise
 * [vocab] for the last token only. DF11_LIMIT past max_seq. */
df11_result df11_cpu_llm_forward(df11_cpu_llm *m, const int32_t *tokens,
				 int n, int all_logits, float *logits);

/* CUDA emulation: round to BF16 wherever the CUDA forward pass stores BF16
 * (GEMM inputs: normed x, attention output, SwiGLU output; the KV cache),
 * so its logits can be compared with the GPU's at a tight tolerance. Off
 * by default; the reference is float32 throughout. */
void df11_cpu_llm_set_bf16_activations(df11_cpu_llm *m, int on);

/* Another kernel's arithmetic inside this forward pass (tests: the CPU run
 * of the fused GPU kernel). Called instead of each matrix product:
 * out[i * ld_out + j] (+)= sum_k in[i * K + k] * W[row0 + j][k] for i < n,
 * j < N, where W is tensor `name` (a layer matrix, or lm_head in slices of
 * rows from row0) and w its rows [row0, row0 + N) in BF16. */
typedef void (*df11_cpu_matmul_fn)(void *ctx, const char *name, uint64_t row0,
				   const uint16_t *w, float *out, int ld_out,
				   const float *in, int n, int N, int K,
				   int accumulate);
void df11_cpu_llm_set_matmul(df11_cpu_llm *m, df11_cpu_matmul_fn fn, void *ctx);

/* Index of the largest logit; the first one on ties, NaN never wins
 * (the CUDA argmax kernel follows the same rule). */
int df11_argmax(const float *x, int n);

#ifdef __cplusplus
}
#endif

#endif
