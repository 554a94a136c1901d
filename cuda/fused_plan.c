/* Host side of the fused decode + matrix-vector kernel (fused_plan.h). */
#include "cuda/fused_plan.h"

#include <string.h>

#include "common/error.h"

df11_result df11f_matrix_from_tensor(df11f_matrix *M, const df11k_tensor *t,
				     const uint8_t *index, uint64_t rows,
				     uint64_t cols)
{
	memset(M, 0, sizeof *M);
	if (rows == 0 || cols == 0 || cols > DF11F_MAX_COLS ||
	    rows > t->n_elems / cols || rows * cols != t->n_elems)
		return df11_fail(DF11_INVALID_ARG, "a tensor of %llu elements "
				 "as a %llu x %llu matrix (at most %u columns)",
				 (unsigned long long)t->n_elems,
				 (unsigned long long)rows,
				 (unsigned long long)cols, DF11F_MAX_COLS);
	M->rows = rows;
	if (t->codec == DF11_CODEC_RAW) {
		M->kind = DF11F_BF16;
		M->bf16 = (const uint16_t *)(const void *)t->plane;
		return DF11_OK;
	}
	M->plane = t->plane;
	if (t->codec == DF11_CODEC_SINGLE) {
		M->kind = DF11F_SINGLE;
		M->single_exponent = t->single_exponent;
		return DF11_OK;
	}
	if (!index)
		return df11_fail(DF11_INVALID_ARG, "a huffman tensor without "
				 "its fused index");
	M->kind = DF11F_HUFFMAN;
	M->max_code_len = t->max_code_len;
	M->stream = t->stream;
	M->stream_words = t->stream_words;
	M->multi = t->multi;
	M->code_len = t->code_len;
	M->canon = t->canon;
	M->tile_start = (const uint64_t *)(const void *)index;
	M->seg_bits = (const uint16_t *)(const void *)(index +
						       df11f_index_seg_offset(rows));
	return DF11_OK;
}

void df11f_matrix_from_bf16(df11f_matrix *M, const uint16_t *w, uint64_t rows)
{
	memset(M, 0, sizeof *M);
	M->kind = DF11F_BF16;
	M->bf16 = w;
	M->rows = rows;
}

df11_result df11f_launch_init(df11f_launch *L, const uint16_t *x, uint64_t ldx,
			      uint64_t cols, int batch, int accumulate)
{
	memset(L, 0, sizeof *L);
	if (batch < 1 || batch > (int)DF11F_MAX_B)
		return df11_fail(DF11_INVALID_ARG, "fused GEMV: batch %d (1..%u)",
				 batch, DF11F_MAX_B);
	if (cols == 0 || cols > DF11F_MAX_COLS || ldx < cols)
		return df11_fail(DF11_INVALID_ARG, "fused GEMV: %llu columns, "
				 "ldx %llu (at most %u columns)",
				 (unsigned long long)cols,
				 (unsigned long long)ldx, DF11F_MAX_COLS);
	L->x = x;
	L->ldx = ldx;
	L->cols = (uint32_t)cols;
	L->n_segs = df11f_n_segs(cols);
	L->warps = L->n_segs < DF11F_MAX_WARPS ? L->n_segs : DF11F_MAX_WARPS;
	L->batch = (uint32_t)batch;
	L->nb = 1;
	while (L->nb < L->batch)
		L->nb *= 2;
	L->accumulate = accumulate != 0;
	return DF11_OK;
}

df11_result df11f_launch_add(df11f_launch *L, const df11f_matrix *M, float *y,
			     uint64_t ldy)
{
	if (L->n_jobs == DF11F_MAX_JOBS)
		return df11_fail(DF11_LIMIT, "fused GEMV: more than %u matrices "
				 "in one launch", DF11F_MAX_JOBS);
	if (L->batch > 1 && ldy < M->rows)
		return df11_fail(DF11_INVALID_ARG, "fused GEMV: ldy %llu below "
				 "%llu rows", (unsigned long long)ldy,
				 (unsigned long long)M->rows);
	const uint64_t tiles = df11f_tiles(M->rows);
	if (tiles > 0x7fffffffu - L->n_ctas)
		return df11_fail(DF11_LIMIT, "fused GEMV: too many rows");
	df11f_matrix *J = &L->job[L->n_jobs++];
	*J = *M;
	J->y = y;
	J->ldy = ldy;
	J->cta_base = L->n_ctas;
	J->n_ctas = (uint32_t)tiles;
	L->n_ctas += (uint32_t)tiles;
	return DF11_OK;
}

uint32_t df11f_launch_threads(const df11f_launch *L)
{
	return 32u * L->warps;
}

uint32_t df11f_launch_smem(const df11f_launch *L)
{
	return df11f_dyn_smem(L->warps, L->nb);
}
