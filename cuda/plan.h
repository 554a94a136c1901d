/*
 * Host side of the GPU decoder, plain C: the device image of a tensor and
 * the turning of decode requests into work items. Shared by libdf11_cuda
 * and the CPU run of the kernel (tests/test_cuda_emul.c), so that the test
 * exercises the same launch parameters the GPU gets.
 */
#ifndef DF11_CUDA_PLAN_H
#define DF11_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/decode_kernel.h"
#include "cuda/decode_staged.h"
#include "cuda/kernels.h"
#include "codec/parse.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DF11K_ALIGN 256u /* every region of the device image */

/* Decode tables of a huffman tensor, built on the host at upload:
 *   +0      u32 multi[4096]   12-bit lookup (decode_kernel.h, "multi")
 *   +16384  u8  code_len[256]
 *   +16640  df11_huff_canon   for codes longer than the lookups
 *   +17408  u32 multi2[2^DF11K2_LOOKUP_BITS]  the staged kernel's lookup
 *                             (same entry layout, decode_staged.h)
 */
#define DF11K_TABLES_MULTI 0u
#define DF11K_TABLES_LEN 16384u
#define DF11K_TABLES_CANON 16640u
#define DF11K_TABLES_MULTI2 17408u
#define DF11K_TABLES_SIZE                                                    \
	((DF11K_TABLES_MULTI2 + 4u * DF11K2_TABLE_ENTRIES + DF11K_ALIGN - 1u) & \
	 ~(DF11K_ALIGN - 1u))

static inline uint64_t df11k_align(uint64_t x)
{
	return (x + DF11K_ALIGN - 1u) & ~(uint64_t)(DF11K_ALIGN - 1u);
}

/* Device bytes of a parsed tensor: its encoded bytes, then (huffman) its
 * tables, its window offsets (u32 per window, made by the count launch)
 * and the staged kernel's run entry points (u32 per run, made by the entry
 * launch), each region rounded up to DF11K_ALIGN. */
uint64_t df11k_image_size(const df11_parsed *P);

/* Offsets of the tables, the window offsets and the run entry points
 * inside the image (huffman only). */
uint64_t df11k_tables_offset(const df11_parsed *P);
uint64_t df11k_win_off_offset(const df11_parsed *P);
uint64_t df11k_run_off_offset(const df11_parsed *P);

/* Runs of a huffman tensor (decode_staged.h): 2^run_log2-bit pieces of
 * every window, run_log2 = min(window_log2, DF11K2_RUN_LOG2). */
uint64_t df11k_n_runs(const df11_parsed *P);

/* Fills a DF11K_TABLES_SIZE host buffer with P's decode tables. */
void df11k_build_tables(const df11_parsed *P, uint8_t *tables);

/* The kernel's view of a tensor whose encoded bytes are at `bytes`, tables
 * at `tables`, window offsets at `win_off` and run entry points at
 * `run_off` (device addresses, or host ones for the CPU run; all 16-byte
 * aligned). */
void df11k_tensor_init(df11k_tensor *t, const df11_parsed *P,
		       const uint8_t *bytes, const uint8_t *tables,
		       uint32_t *win_off, uint32_t *run_off);

/* The count launch's job for huffman tensor t: every work item, writing
 * t's window offsets to win_off. */
df11_result df11k_count_job_init(df11k_job *J, const df11k_tensor *t,
				 uint32_t *win_off);

/* A job of `kernel` (DF11_CUDA_KERNEL_*, cuda/kernels.h) for elements
 * [first, first + count) of t (count > 0, range inside the tensor, checked
 * by the caller). block_starts is a HOST copy of the tensor's block starts
 * (u64 LE), used to find the items of the range: windows for the window
 * kernel, runs for the staged kernel. */
df11_result df11k_job_init(df11k_job *J, const df11k_tensor *t,
			   const uint8_t *block_starts, uint64_t first,
			   uint64_t count, uint16_t *dst, int kernel);

/* Appends J to the launch (assigns its item_base). */
df11_result df11k_batch_add(df11k_batch *b, const df11k_job *J);

#ifdef __cplusplus
}
#endif

#endif /* DF11_CUDA_PLAN_H */
