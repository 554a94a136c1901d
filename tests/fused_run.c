/* The CPU run of the fused kernel and its prepare launches (fused_run.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cuda/fused.h"
#include "cuda/fused_plan.h"
#include "tests/fused_run.h"

/* The prepare's seek and pack launches: T's fused index as a (rows, cols)
 * matrix (malloc'd, exactly df11f_index_size bytes); their error bits. */
uint8_t *fused_index_make(const emul_tensor *T, uint64_t rows, uint64_t cols,
			   uint32_t *err)
{
	const uint64_t ns = df11f_n_segs(cols), n = rows * ns;
	uint64_t *start = malloc(8 * (n + 1));
	uint8_t *index = malloc(df11f_index_size(rows, cols));
	assert_true(start && index);
	uint32_t bad = 0;
	for (uint64_t s = n + 1; s-- > 0;)
		df11f_index_seek(&T->t, T->t.multi, T->t.code_len, cols, rows, s,
				 start, &bad);
	/* Each entry point is the sum of the lengths of the codes before it. */
	if (!bad) {
		uint64_t bit = 0, e = 0;
		for (uint64_t s = 0; s < n; s++) {
			uint64_t want = (s / ns) * cols + ((s % ns) << DF11F_SEG_LOG2);
			for (; e < want; e++)
				bit += T->P.code_len[df11_bf16_exponent(T->ref[e])];
			if (start[s] != bit)
				fail_msg("segment %llu starts at bit %llu, expected %llu",
					 (unsigned long long)s,
					 (unsigned long long)start[s],
					 (unsigned long long)bit);
		}
	}
	for (uint64_t s = n; s-- > 0;)
		df11f_index_pack(cols, rows, s, start, index, &bad);
	free(start);
	*err = bad ? DF11F_ERR_INDEX : 0;
	return index;
}

/* One mma.sync.m16n8k16 (BF16, FP32 accumulate) of a warp, from the 32
 * lanes' fragments in PTX's layout (cuda/fused.h): c[lane] += A B. The
 * products of BF16 are exact in float; they are added in k order. */
static void mma_warp(uint32_t a[32][4], uint32_t b[32][2],
		     float c[32][4])
{
	float A[16][16], B[16][8];
	for (uint32_t m = 0; m < 16; m++)
		for (uint32_t k = 0; k < 16; k++) {
			uint32_t lane = (m & 7u) * 4u + ((k & 7u) >> 1);
			uint32_t reg = (m >= 8 ? 1u : 0u) + (k >= 8 ? 2u : 0u);
			A[m][k] = df11_bf16_to_f32((uint16_t)(a[lane][reg] >> (16u * (k & 1u))));
		}
	for (uint32_t k = 0; k < 16; k++)
		for (uint32_t n = 0; n < 8; n++) {
			uint32_t lane = n * 4u + ((k & 7u) >> 1);
			uint32_t reg = k >= 8 ? 1u : 0u;
			B[k][n] = df11_bf16_to_f32((uint16_t)(b[lane][reg] >> (16u * (k & 1u))));
		}
	for (uint32_t m = 0; m < 16; m++)
		for (uint32_t n = 0; n < 8; n++) {
			uint32_t lane = (m & 7u) * 4u + (n >> 1);
			uint32_t reg = (m >= 8 ? 2u : 0u) + (n & 1u);
			float s = c[lane][reg];
			for (uint32_t k = 0; k < 16; k++)
				s = fmaf(A[m][k], B[k][n], s);
			c[lane][reg] = s;
		}
}

/* One warp of df11f_mma_kernel: lanes in reverse order within each phase,
 * __syncwarp() between phases. Returns the error bits. */
static uint32_t mma_warp_run(const df11f_launch *L, const df11f_matrix *M,
			     const df11f_smem *sh, uint64_t tile, uint32_t warp,
			     float *red, uint16_t *wt)
{
	const uint32_t NB = L->nb, NT = NB / 8u;
	static df11f_cursor C[32];
	static float acc[32][2 * (DF11F_MAX_B / 8) * 4];
	memset(acc, 0, sizeof acc);
	for (uint32_t lane = 32; lane-- > 0;)
		df11f_cursor_init(L, M, sh, tile, lane, &C[lane]);
	for (uint32_t c = warp; c < L->n_segs; c += L->warps) {
		for (uint32_t lane = 32; lane-- > 0;)
			df11f_cursor_seg(M, &C[lane], c);
		uint32_t k0, k1;
		df11f_seg_cols(L, c, &k0, &k1);
		for (uint32_t k = k0; k < k1; k += 16u) {
			memset(wt, 0xcd, 2 * DF11F_TILE_HALVES);
			for (uint32_t lane = 32; lane-- > 0;)
				df11f_mma_load(L, M, sh, &C[lane], k, k1, wt, lane);
			static uint32_t a[2][32][4], b[DF11F_MAX_B / 8][32][2];
			for (uint32_t lane = 32; lane-- > 0;) {
				for (uint32_t mt = 0; mt < 2; mt++)
					df11f_mma_frag_a(wt, lane, mt, a[mt][lane]);
				for (uint32_t nt = 0; nt < NT; nt++)
					df11f_mma_frag_b(L, k, k1, nt, lane, b[nt][lane]);
			}
			for (uint32_t mt = 0; mt < 2; mt++)
				for (uint32_t nt = 0; nt < NT; nt++) {
					float cf[32][4];
					for (uint32_t lane = 0; lane < 32; lane++)
						memcpy(cf[lane], &acc[lane][(mt * NT + nt) * 4], 16);
					mma_warp(a[mt], b[nt], cf);
					for (uint32_t lane = 0; lane < 32; lane++)
						memcpy(&acc[lane][(mt * NT + nt) * 4], cf[lane], 16);
				}
		}
		for (uint32_t lane = 32; lane-- > 0;)
			df11f_cursor_check(M, &C[lane], c);
	}
	uint32_t bad = 0;
	for (uint32_t lane = 32; lane-- > 0;) {
		df11f_mma_store(acc[lane], warp, lane, red, NB);
		bad |= C[lane].bad;
	}
	return bad;
}

/* One CTA of df11f_kernel or df11f_mma_kernel (cuda/fused.cu), thread by
 * thread per phase; __syncthreads() falls between phases. Threads run in
 * reverse order to show that none depends on another's stores within a
 * phase. */
static uint32_t run_cta(const df11f_launch *L, uint32_t cta)
{
	static df11f_smem sh;
	const df11f_matrix *M = &L->job[df11f_find_job(L, cta)];
	const uint64_t tile = cta - M->cta_base;
	const uint32_t nthreads = df11f_launch_threads(L);
	const uint32_t smem = df11f_launch_smem(L);
	float *red = malloc(smem);
	assert_non_null(red);
	memset(red, 0xff, smem); /* NaN: a partial sum never written shows */
	memset(&sh, 0xcd, sizeof sh);
	if (M->kind == DF11F_HUFFMAN) {
		for (uint32_t tid = nthreads; tid-- > 0;)
			df11f_load_tables(M, &sh, tid, nthreads);
		for (uint32_t tid = nthreads; tid-- > 0;)
			df11f_row_bits(L, M, &sh, tile, tid);
	}
	uint32_t bad = 0;
	if (L->nb >= DF11F_MMA_NB) {
		uint16_t *tiles = (uint16_t *)(void *)(red + df11f_red_floats(L->warps, L->nb));
		for (uint32_t w = L->warps; w-- > 0;)
			bad |= mma_warp_run(L, M, &sh, tile, w, red,
					    tiles + w * DF11F_TILE_HALVES);
	} else {
		for (uint32_t tid = nthreads; tid-- > 0;)
			bad |= df11f_lane(L, M, &sh, tile, tid >> 5, tid & 31u, red,
					  L->nb);
	}
	for (uint32_t tid = nthreads; tid-- > 0;)
		df11f_store(L, M, tile, tid, nthreads, red, L->nb);
	free(red);
	return bad ? DF11F_ERR_INDEX : 0;
}

uint32_t fused_run_launch(const df11f_launch *L)
{
	uint32_t err = 0;
	for (uint32_t cta = L->n_ctas; cta-- > 0;)
		err |= run_cta(L, cta);
	return err;
}
