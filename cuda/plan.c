/* Host side of the GPU decoder: device images and work items (plan.h). */
#include "cuda/plan.h"

#include <string.h>

#include "common/error.h"
#include "huffman/huffman.h"

_Static_assert(DF11K_TABLES_CANON + sizeof(df11_huff_canon) <= DF11K_TABLES_MULTI2,
	       "decode tables overlap");

uint64_t df11k_tables_offset(const df11_parsed *P)
{
	return df11k_align(P->layout.total_size);
}

uint64_t df11k_win_off_offset(const df11_parsed *P)
{
	return df11k_tables_offset(P) + DF11K_TABLES_SIZE;
}

uint64_t df11k_run_off_offset(const df11_parsed *P)
{
	return df11k_win_off_offset(P) + df11k_align(4 * P->layout.n_windows);
}

static uint32_t run_log2(const df11_layout *L)
{
	return L->window_log2 < DF11K2_RUN_LOG2 ? L->window_log2
						: DF11K2_RUN_LOG2;
}

uint64_t df11k_n_runs(const df11_parsed *P)
{
	return P->layout.n_windows << (P->layout.window_log2 - run_log2(&P->layout));
}

uint64_t df11k_image_size(const df11_parsed *P)
{
	if (P->layout.codec != DF11_CODEC_HUFFMAN)
		return df11k_tables_offset(P);
	return df11k_run_off_offset(P) + df11k_align(4 * df11k_n_runs(P));
}

/* A kernel's multi-symbol table (layout in decode_kernel.h, "multi"): as
 * many whole codes as fit in `bits` bits, at most 3. */
static void fill_multi(const uint8_t *code_len, unsigned bits, uint32_t *multi)
{
	uint16_t single[DF11K_TABLE_ENTRIES];
	/* Always `bits` bits, also when every code is shorter: the kernels'
	 * shared-memory tables have one size. */
	df11_huff_fill_table(code_len, bits, single);
	for (uint32_t idx = 0; idx < (1u << bits); idx++) {
		uint32_t syms;
		unsigned used;
		unsigned count = df11_huff_multi_run(single, bits, idx, 3, &syms,
						     &used);
		multi[idx] = df11k_multi_entry(syms, used, count);
	}
}

void df11k_build_tables(const df11_parsed *P, uint8_t *tables)
{
	uint32_t multi[DF11K_TABLE_ENTRIES];
	df11_huff_canon canon;
	memset(tables, 0, DF11K_TABLES_SIZE);
	fill_multi(P->code_len, DF11_TABLE_BITS, multi);
	memcpy(tables + DF11K_TABLES_MULTI, multi, sizeof multi);
	fill_multi(P->code_len, DF11K2_LOOKUP_BITS, multi);
	memcpy(tables + DF11K_TABLES_MULTI2, multi, 4u * DF11K2_TABLE_ENTRIES);
	df11_huff_canon_init(P->code_len, &canon);
	memcpy(tables + DF11K_TABLES_LEN, P->code_len, 256);
	memcpy(tables + DF11K_TABLES_CANON, &canon, sizeof canon);
}

void df11k_tensor_init(df11k_tensor *t, const df11_parsed *P,
		       const uint8_t *bytes, const uint8_t *tables,
		       uint32_t *win_off, uint32_t *run_off)
{
	const df11_layout *L = &P->layout;
	memset(t, 0, sizeof *t);
	t->n_elems = L->n_elems;
	t->codec = L->codec;
	if (L->codec == DF11_CODEC_RAW) {
		t->plane = bytes + DF11_HEADER_SIZE;
		return;
	}
	t->plane = bytes + L->off_sm;
	t->single_exponent = L->single_exponent;
	if (L->codec != DF11_CODEC_HUFFMAN)
		return;
	t->multi = (const uint32_t *)(const void *)(tables + DF11K_TABLES_MULTI);
	t->code_len = tables + DF11K_TABLES_LEN;
	t->canon = (const df11_huff_canon *)(const void *)(tables + DF11K_TABLES_CANON);
	t->multi2 = (const uint32_t *)(const void *)(tables + DF11K_TABLES_MULTI2);
	t->win_off = win_off;
	t->run_off = run_off;
	t->run_log2 = run_log2(L);
	t->n_runs = df11k_n_runs(P);
	t->block_starts = bytes + L->off_block_starts;
	t->gaps = bytes + L->off_gaps;
	t->stream = (const uint32_t *)(const void *)(bytes + L->off_stream);
	/* The stream section with its padding is a multiple of 16 bytes. */
	t->stream_words = (L->total_size - L->off_stream) / 4;
	t->stream_bits = L->stream_bits;
	t->n_windows = L->n_windows;
	t->n_blocks = L->n_blocks;
	t->window_log2 = L->window_log2;
	t->block_log2 = L->block_log2;
	t->max_code_len = L->max_code_len;
	/* A work item is one block, or enough whole blocks to give every
	 * thread a window. */
	t->item_log2 = L->block_log2 > DF11K_THREADS_LOG2 ? L->block_log2
							  : DF11K_THREADS_LOG2;
	t->wpt_log2 = t->item_log2 - DF11K_THREADS_LOG2;
}

/* The last block whose first element is <= elem (elem < n_elems). */
static uint64_t block_of(const uint8_t *bs, uint64_t n_blocks, uint64_t elem)
{
	uint64_t lo = 0, hi = n_blocks; /* the answer is in [lo, hi) */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (df11_rd64(bs + 8 * mid) <= elem)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

df11_result df11k_job_init(df11k_job *J, const df11k_tensor *t,
			   const uint8_t *block_starts, uint64_t first,
			   uint64_t count, uint16_t *dst, int kernel)
{
	uint64_t lo, n;
	memset(J, 0, sizeof *J);
	J->t = *t;
	J->dst = dst;
	J->first = first;
	J->count = count;
	J->vec_ok = ((uintptr_t)dst & 15u) == 0;
	if (t->codec == DF11_CODEC_HUFFMAN && kernel == DF11_CUDA_KERNEL_STAGED) {
		/* Items of DF11K_THREADS runs over the blocks of the range. */
		unsigned rpb = t->block_log2 + t->window_log2 - t->run_log2;
		uint64_t r0 = block_of(block_starts, t->n_blocks, first) << rpb;
		uint64_t r1 = (block_of(block_starts, t->n_blocks,
					first + count - 1) + 1) << rpb;
		if (r1 > t->n_runs)
			r1 = t->n_runs;
		lo = r0 >> DF11K_THREADS_LOG2;
		n = ((r1 + DF11K_THREADS - 1) >> DF11K_THREADS_LOG2) - lo;
	} else if (t->codec == DF11_CODEC_HUFFMAN) {
		unsigned bpi = t->item_log2 - t->block_log2;
		lo = block_of(block_starts, t->n_blocks, first) >> bpi;
		n = (block_of(block_starts, t->n_blocks, first + count - 1) >> bpi) -
		    lo + 1;
	} else {
		lo = 0;
		n = (count + DF11K_PLAIN_ITEM - 1) >> DF11K_PLAIN_ITEM_LOG2;
	}
	if (n > INT32_MAX)
		return df11_fail(DF11_LIMIT, "GPU decode: %llu work items, limit "
				 "2^31", (unsigned long long)n);
	J->item_lo = lo;
	J->n_items = (uint32_t)n;
	return DF11_OK;
}

df11_result df11k_count_job_init(df11k_job *J, const df11k_tensor *t,
				 uint32_t *win_off)
{
	uint64_t n = (t->n_windows + ((uint64_t)1 << t->item_log2) - 1) >>
		     t->item_log2;
	memset(J, 0, sizeof *J);
	J->t = *t;
	J->count = t->n_elems;
	J->win_off_out = win_off;
	if (n > INT32_MAX)
		return df11_fail(DF11_LIMIT, "GPU upload: %llu work items, limit "
				 "2^31", (unsigned long long)n);
	J->n_items = (uint32_t)n;
	return DF11_OK;
}

df11_result df11k_batch_add(df11k_batch *b, const df11k_job *J)
{
	if (b->n_jobs >= DF11K_MAX_JOBS)
		return df11_fail(DF11_INVALID_ARG, "GPU decode: more than %d jobs",
				 DF11K_MAX_JOBS);
	if ((uint64_t)b->n_items + J->n_items > INT32_MAX)
		return df11_fail(DF11_LIMIT, "GPU decode: over 2^31 work items "
				 "in one launch");
	b->job[b->n_jobs] = *J;
	b->job[b->n_jobs].item_base = b->n_items;
	b->n_items += J->n_items;
	b->n_jobs++;
	return DF11_OK;
}
