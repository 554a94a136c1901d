/*
 * Internal: the CUDA forward pass of a Llama / Mistral model (llm/forward.cu),
 * a C interface for df11-run and the benchmarks.
 *
 * Weights stay df11-encoded in device memory (libdf11_cuda). Calls of up
 * to 32 rows (decode steps, small batches) multiply them with the fused
 * decode + matrix-vector kernel, which never writes BF16 weights to device
 * memory, and a decode step (one token per sequence) runs as a CUDA graph.
 * Larger calls (prefill) decode each layer into one of two layer buffers
 * just before its cuBLASLt matmuls, on a second, lower-priority stream, so
 * the decode of layer i+1 overlaps the compute of layer i; lm_head in
 * slices through the same two buffers. Embedding rows are decoded per
 * token. DF11_CUDA_LLM_BF16 keeps plain BF16 weights resident instead,
 * laid out exactly like the layer buffers, and runs the same kernels (the
 * fused kernel with its BF16 loader) and the same GEMM algorithms: its
 * logits are the bit-for-bit reference for the DF11 mode.
 */
#ifndef DF11_CUDA_FORWARD_H
#define DF11_CUDA_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "llm/forward.h"

#ifdef __cplusplus
extern "C" {
#endif

enum df11_cuda_llm_mode {
	DF11_CUDA_LLM_DF11 = 0,  /* compressed weights, decoded just in time */
	DF11_CUDA_LLM_BF16 = 1   /* plain BF16 weights resident */
};

typedef struct df11_cuda_llm_options {
	int mode;      /* enum df11_cuda_llm_mode */
	int batch;     /* sequences run together, B >= 1 */
	int max_seq;   /* KV cache positions per sequence */
	int max_tokens;/* most tokens per sequence in one forward call (prefill) */
	int gemm_only; /* 1: decode-then-cuBLASLt for every call; 0 (default):
			  calls of up to 32 rows (B x tokens) use the fused
			  decode + matrix-vector kernel (df11_cuda_gemv) */
} df11_cuda_llm_options;

/* Device memory, in bytes. */
typedef struct df11_cuda_llm_memory {
	size_t weights;    /* resident weights (encoded, or BF16) */
	size_t scratch;    /* the two layer buffers (DF11 mode; 0 in BF16 mode) */
	size_t kv_cache;
	size_t activations;
	size_t post_load;  /* device memory in use after loading (cudaMemGetInfo) */
	size_t peak;       /* most in use seen after any forward call or
			      reshape so far */
} df11_cuda_llm_memory;

typedef struct df11_cuda_llm df11_cuda_llm;

/* Uploads the weights (w->encoded where the provider has them; BF16 tensors
 * are encoded on the host otherwise; in BF16 mode everything is read as
 * BF16). DF11_NO_DEVICE without a GPU. */
df11_result df11_cuda_llm_new(const df11_llm_config *cfg, const df11_weights *w,
			      const df11_cuda_llm_options *opt,
			      df11_cuda_llm **model_ret);
void df11_cuda_llm_free(df11_cuda_llm *m);
void df11_cuda_llm_reset(df11_cuda_llm *m);
/* Re-plans the buffers that depend on the shape (activations, KV cache,
 * logits) for other batch, max_seq and max_tokens, keeping the uploaded
 * weights, and resets the sequences. The mode cannot change. If it fails,
 * forward calls are refused until a reshape succeeds. */
df11_result df11_cuda_llm_reshape(df11_cuda_llm *m, int batch, int max_seq,
				  int max_tokens);
void df11_cuda_llm_get_memory(const df11_cuda_llm *m, df11_cuda_llm_memory *ret);

/* Runs n tokens of each of the B sequences: tokens is [B x n]. If
 * all_logits, logits (host, may be NULL) gets [B x n x vocab]; otherwise
 * [B x vocab] for each sequence's last token. next_ret (host, may be NULL)
 * gets the argmax of each sequence's last token, [B]. Synchronous.
 * DF11_BAD_DATA if a kernel found weights that disagree with their index
 * (device memory overwritten since the upload): the outputs are then not
 * to be used. */
df11_result df11_cuda_llm_forward(df11_cuda_llm *m, const int32_t *tokens,
				  int n, int all_logits, float *logits,
				  int32_t *next_ret);

#ifdef __cplusplus
}
#endif

#endif
