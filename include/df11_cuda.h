/*
 * libdf11_cuda: decode df11-encoded tensors on the GPU, just before use.
 *
 * Weights stay compressed in device memory (one allocation for a whole
 * model, or memory the caller provides). Decode calls write BF16 into
 * caller-owned device buffers on the caller's stream and never allocate,
 * synchronise with the host or copy between host and device, so they can
 * be captured in a CUDA graph. Failures return DF11_CUDA with the CUDA
 * message in df11_last_error().
 */
#ifndef DF11_CUDA_H
#define DF11_CUDA_H

#include <cuda_runtime_api.h>

#include "df11.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A set of encoded tensors resident in device memory. */
typedef struct df11_cuda_model df11_cuda_model;

/* Device bytes needed to upload these encoded tensors (df11_encode output,
 * e.g. from df11_model_encoded). 0 if one of them is malformed. */
DF11_API size_t df11_cuda_upload_size(const void *const *encoded, const size_t *sizes,
			     size_t n_tensors);

/* Validates and uploads n_tensors encoded tensors (DF11_BAD_DATA if one is
 * malformed or its stream disagrees with its index). If device_mem is NULL the
 * model makes one allocation of df11_cuda_upload_size(...) bytes; otherwise
 * it uses device_mem (capacity device_mem_size) and never frees it. The
 * upload itself is synchronous; decode calls are not. */
DF11_API df11_result df11_cuda_upload(const void *const *encoded, const size_t *sizes,
			     size_t n_tensors, void *device_mem,
			     size_t device_mem_size, df11_cuda_model **model_ret);
DF11_API void df11_cuda_model_free(df11_cuda_model *m);

/* Element count of tensor i (0 if out of range). */
DF11_API uint64_t df11_cuda_tensor_elems(const df11_cuda_model *m, size_t i);

/* Decodes tensor i into dst (device, n_elems BF16 words) on stream. */
DF11_API df11_result df11_cuda_decode(const df11_cuda_model *m, size_t i,
			     uint16_t *dst, cudaStream_t stream);

/* Decodes elements [first, first + count) of tensor i into dst (a range
 * of rows: embedding rows of the current tokens, a slice of lm_head). */
DF11_API df11_result df11_cuda_decode_range(const df11_cuda_model *m, size_t i,
				   uint64_t first, uint64_t count,
				   uint16_t *dst, cudaStream_t stream);

/* One decode of a batch: tensor i, elements [first, first + count) to dst. */
typedef struct df11_cuda_job {
	size_t tensor;
	uint64_t first, count;
	uint16_t *dst;
} df11_cuda_job;

/* Decodes several tensors (e.g. the seven matrices of a transformer layer)
 * in one launch. At most DF11_CUDA_MAX_BATCH jobs. */
#define DF11_CUDA_MAX_BATCH 16
DF11_API df11_result df11_cuda_decode_batch(const df11_cuda_model *m,
				   const df11_cuda_job *jobs, size_t n_jobs,
				   cudaStream_t stream);

/* df11_cuda_upload validates every tensor (df11_parse, then a GPU pass
 * that checks the exponent stream against its index) and returns
 * DF11_BAD_DATA for a corrupt one. Decode calls do not wait for the GPU, so
 * they cannot report data that changed on the device afterwards: such a
 * decode sets a flag in device memory instead. This synchronises with
 * stream, reads and clears the flag: DF11_BAD_DATA if any decode since the
 * last check found a stream that disagrees with its index. Not for the hot
 * path. */
DF11_API df11_result df11_cuda_check(df11_cuda_model *m, cudaStream_t stream);

/* ------------------------------------------------------------------------
 * Fused decode + matrix-vector products, for decode steps and small
 * batches: y (+)= x W^T with W decoded in registers, never written to
 * device memory as BF16. For up to DF11_CUDA_GEMV_MAX_BATCH rows of x;
 * larger batches are compute-bound and better served by decoding W
 * (df11_cuda_decode) into a BF16 GEMM.
 *
 * The products are deterministic: each output is one fixed-order sum that
 * depends only on the column count, so encoded weights and the same
 * weights in BF16 (a job's bf16 matrix) give identical bits.
 * ---------------------------------------------------------------------- */

/* Makes tensor i usable as a (rows, cols) matrix by df11_cuda_gemv:
 * rows * cols must be its element count, cols at most 65536. A Huffman
 * tensor gets an index of its row segments in device memory, 16 bits per
 * 1024 weights plus 64 bits per 32 rows (0.0166 bits per weight with 5120
 * columns), made on the GPU from the upload's entry points. Synchronous;
 * call it once, at load. Calling it again with another shape re-makes it. */
DF11_API df11_result df11_cuda_gemv_prepare(df11_cuda_model *m, size_t i,
					    uint64_t rows, uint64_t cols);

/* Device bytes of tensor i's fused index (0 if it has none). */
DF11_API size_t df11_cuda_gemv_index_size(const df11_cuda_model *m, size_t i);

#define DF11_CUDA_GEMV_MAX_BATCH 32
#define DF11_CUDA_GEMV_MAX_JOBS 4

/* One matrix of a fused launch: a prepared tensor of the model, or (if
 * bf16 is not NULL) a plain BF16 (rows, cols) row-major device matrix. Its
 * output row n of batch row b is y[b * ldy + n] (device, float). */
typedef struct df11_cuda_gemv_job {
	size_t tensor;
	const uint16_t *bf16;
	uint64_t rows;          /* bf16 only; a tensor's come from prepare */
	float *y;
	size_t ldy;
} df11_cuda_gemv_job;

/* For b < batch (1..32) and every row n of each job's matrix (all with
 * `cols` columns): y[b][n] = sum_k x[b * ldx + k] * W[n][k], or y += that
 * if accumulate. x: device BF16. One launch, up to DF11_CUDA_GEMV_MAX_JOBS
 * matrices (q, k and v of a layer, say). x and bf16 are 2-byte aligned,
 * y 4-byte aligned; loads may touch the rest of the 8-byte words that hold
 * x's and a bf16 matrix's elements (any cudaMalloc'd buffer allows it).
 * Host work and one kernel launch only: can be captured in a CUDA graph. m may be NULL if every job is
 * BF16. Corrupt data found on the device is reported by df11_cuda_check. */
DF11_API df11_result df11_cuda_gemv(const df11_cuda_model *m,
				    const df11_cuda_gemv_job *jobs,
				    size_t n_jobs, const uint16_t *x,
				    size_t ldx, uint64_t cols, int batch,
				    int accumulate, cudaStream_t stream);

/* Whether a usable GPU is present: DF11_OK, or DF11_NO_DEVICE with the
 * reason in df11_last_error(). */
DF11_API df11_result df11_cuda_available(void);

#ifdef __cplusplus
}
#endif

#endif /* DF11_CUDA_H */
