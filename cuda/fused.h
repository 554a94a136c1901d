/*
 * The fused decode + matrix-vector kernel, written once for nvcc and the C
 * compiler like cuda/decode_kernel.h: libdf11_cuda runs these functions as
 * CUDA kernels (cuda/fused.cu), and the CPU test (tests/test_fused_emul.c)
 * runs the very same functions for every thread of every CTA, phase by
 * phase, with shared memory emulated.
 *
 * What it computes, for a batch of B <= DF11F_MAX_B rows of activations
 * (decode steps and small batches):
 *
 *   y[b][n] (+)= sum_k x[b][k] * W[n][k]     W (rows, cols) row-major,
 *                                            x BF16 (B, ldx), y f32 (B, ldy)
 *
 * with W df11-encoded (Huffman, single-exponent or raw) or plain BF16. The
 * decoded weights never reach device memory: each lane decodes its part of
 * W into registers and multiplies it at once. Encoded and BF16 weights go
 * through the same loop with different loaders, so both give the same
 * bits for the same weights.
 *
 * Decomposition:
 *
 *   W rows    |<- tile 0: 32 rows ->|<- tile 1 ->| ...     one CTA per tile
 *   W cols    |seg 0 |seg 1 |seg 2 | ... |seg S-1|         DF11F_SEG columns each
 *   warp w    segments w, w + nw, w + 2nw, ...             nw = min(S, 16) warps
 *   lane l    row 32*tile + l of each of its warp's segments
 *
 * So the 32 lanes of a warp stand at the same column at the same time and
 * read the same activations (one broadcast load for the warp), and each
 * lane decodes DF11F_SEG codes from its own entry point. A lane sums its
 * segments' products into one accumulator per batch row, k ascending; the
 * CTA then adds the warps' partial sums in warp order. Every sum has a
 * fixed order that depends only on cols, never on the data.
 *
 * The fused index (made on the GPU at df11_cuda_gemv_prepare, tested here):
 *
 *   tile_start  u64 per tile: stream bit where the tile's first code starts
 *   seg_bits    u16 per (row, segment), row-major: the bits of the
 *               segment's codes (< 2^16: DF11F_SEG codes of <= 15 bits)
 *
 * A lane's entry point is tile_start + the bits of the tile's rows before
 * its own (a CTA-wide sum in shared memory) + the bits of its row's
 * segments before its own. That is 16 bits per 1024 weights plus 64 bits
 * per 32 rows: 0.0166 bits per weight for 5120 columns.
 *
 * Safety: a lane stops at DF11F_SEG codes, reads the stream only inside
 * its section, and checks that its codes end exactly where the index says
 * the next segment begins; a mismatch, or a lookup that advances no bit,
 * sets DF11F_ERR_INDEX in the model's error word (df11_cuda_check).
 */
#ifndef DF11_CUDA_FUSED_H
#define DF11_CUDA_FUSED_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda/decode_kernel.h"
#include "cuda/decode_staged.h"

#define DF11F_SEG_LOG2 10
#define DF11F_SEG (1u << DF11F_SEG_LOG2) /* columns per segment */
#define DF11F_ROWS 32u                    /* rows per tile: a warp's lanes */
#define DF11F_MAX_WARPS 16u               /* warps per CTA */
#define DF11F_MAX_B 32u                   /* batch rows per launch */
#define DF11F_MAX_COLS (1u << 16)         /* segments per row <= 64 */
#define DF11F_MAX_JOBS 4u                 /* matrices per launch */
#define DF11F_ERR_INDEX DF11K_ERR_INDEX

#if defined(__CUDA_ARCH__) /* device code; the host pass is gcc */
#define DF11F_UNROLL _Pragma("unroll")
#else
#define DF11F_UNROLL
#endif

/* Loaders. */
enum {
	DF11F_BF16 = 0,    /* plain BF16 words (also the raw codec's plane) */
	DF11F_SINGLE = 1,  /* one exponent, sign|mantissa bytes */
	DF11F_HUFFMAN = 2  /* Huffman-coded exponents, sign|mantissa bytes */
};

/* One weight matrix of a launch (device addresses; host ones in the CPU
 * run). */
typedef struct df11f_matrix {
	uint32_t kind;                /* DF11F_* loader */
	uint32_t single_exponent;
	uint32_t max_code_len;
	uint32_t reserved;
	const uint16_t *bf16;         /* BF16: (rows, cols) words, 2-aligned */
	const uint8_t *plane;         /* SINGLE, HUFFMAN: sm bytes, (rows, cols) */
	const uint32_t *stream;       /* HUFFMAN: exponent bitstream */
	uint64_t stream_words;        /* 32-bit words readable at stream */
	const uint32_t *multi;        /* [4096] df11k_multi_entry */
	const uint8_t *code_len;      /* [256] */
	const df11_huff_canon *canon; /* codes longer than 12 bits */
	const uint64_t *tile_start;   /* HUFFMAN: the fused index */
	const uint16_t *seg_bits;
	uint64_t rows;
	float *y;                     /* y[b * ldy + n] for n < rows */
	uint64_t ldy;
	uint32_t cta_base;            /* first CTA of this matrix */
	uint32_t n_ctas;              /* ceil(rows / DF11F_ROWS) */
} df11f_matrix;

/* A launch: every matrix has `cols` columns and multiplies the same x. */
typedef struct df11f_launch {
	const uint16_t *x;  /* (batch, ldx) BF16 */
	uint64_t ldx;
	uint32_t cols;
	uint32_t n_segs;    /* ceil(cols / DF11F_SEG) */
	uint32_t warps;     /* min(n_segs, DF11F_MAX_WARPS) */
	uint32_t batch;     /* B, 1..DF11F_MAX_B */
	uint32_t nb;        /* the kernel's batch width: B rounded up to a power of 2 */
	uint32_t accumulate;/* y += (1) or y = (0) */
	uint32_t n_jobs;
	uint32_t n_ctas;
	df11f_matrix job[DF11F_MAX_JOBS];
} df11f_launch;

#if defined(__cplusplus)
static_assert(sizeof(df11f_launch) <= 4000, "launch parameters too large");
#else
_Static_assert(sizeof(df11f_launch) <= 4000, "launch parameters too large");
#endif

/* Shared memory of a CTA. The warps' partial sums follow it (dynamic
 * shared memory: df11f_red_floats floats). */
#if defined(__cplusplus)
static_assert(sizeof(df11_huff_canon) % 16 == 0, "canon is copied in 16-byte pieces");
#else
_Static_assert(sizeof(df11_huff_canon) % 16 == 0, "canon is copied in 16-byte pieces");
#endif
typedef struct df11f_smem {
	DF11K_ALIGNAS16 uint32_t multi[DF11K_TABLE_ENTRIES];
	uint8_t len[256];
	df11_huff_canon canon;
	uint32_t row_bits[DF11F_ROWS]; /* bits of each of the tile's rows */
} df11f_smem;

DF11_HD uint32_t df11f_red_floats(uint32_t warps, uint32_t nb)
{
	return warps * nb * DF11F_ROWS;
}

DF11_HD uint32_t df11f_n_segs(uint64_t cols)
{
	return (uint32_t)((cols + DF11F_SEG - 1u) >> DF11F_SEG_LOG2);
}

/* Bytes of the fused index of a (rows, cols) matrix: tile starts, then
 * segment bits. */
DF11_HD uint64_t df11f_tiles(uint64_t rows)
{
	return (rows + DF11F_ROWS - 1u) / DF11F_ROWS;
}

DF11_HD uint64_t df11f_index_seg_offset(uint64_t rows)
{
	return 8u * df11f_tiles(rows);
}

DF11_HD uint64_t df11f_index_size(uint64_t rows, uint64_t cols)
{
	return df11f_index_seg_offset(rows) + 2u * rows * df11f_n_segs(cols);
}

/* The matrix of CTA `cta` (matrices are in cta_base order). */
DF11_HD uint32_t df11f_find_job(const df11f_launch *L, uint32_t cta)
{
	uint32_t j = 0;
	while (j + 1 < L->n_jobs && L->job[j + 1].cta_base <= cta)
		j++;
	return j;
}

/* ------------------------------------------------------- the CTA's phases */

/* Phase 1, thread tid of nthreads: the tables into shared memory
 * (Huffman matrices only), 16-byte pieces. */
DF11_HD void df11f_load_tables(const df11f_matrix *M, df11f_smem *sh,
			       uint32_t tid, uint32_t nthreads)
{
	const uint32_t n_multi = DF11K_TABLE_ENTRIES * 4u / 16u, n_len = 256u / 16u;
	for (uint32_t i = tid; i < n_multi + n_len; i += nthreads) {
		const uint8_t *src = i < n_multi ? (const uint8_t *)M->multi + 16u * i
						 : M->code_len + 16u * (i - n_multi);
		uint8_t *dst = i < n_multi ? (uint8_t *)sh->multi + 16u * i
					   : sh->len + 16u * (i - n_multi);
		df11k_copy16(dst, src);
	}
	const uint32_t n_canon = (uint32_t)sizeof(df11_huff_canon) / 16u;
	for (uint32_t i = tid; i < n_canon; i += nthreads)
		df11k_copy16((uint8_t *)&sh->canon + 16u * i,
			     (const uint8_t *)M->canon + 16u * i);
}

/* Phase 1, threads tid < DF11F_ROWS: the bits of row (tile row tid). */
DF11_HD void df11f_row_bits(const df11f_launch *L, const df11f_matrix *M,
			    df11f_smem *sh, uint64_t tile, uint32_t tid)
{
	if (tid >= DF11F_ROWS)
		return;
	const uint64_t n = tile * DF11F_ROWS + tid;
	uint32_t s = 0;
	if (n < M->rows) {
		const uint16_t *b = M->seg_bits + n * L->n_segs;
		for (uint32_t c = 0; c < L->n_segs; c++)
			s += b[c];
	}
	sh->row_bits[tid] = s;
}

/* 8 BF16 words from any 2-aligned address, as a 64-bit pair. */
DF11_HD void df11f_ld8_bf16(const uint16_t *p, uint64_t w[2])
{
	w[0] = df11k_ld64_any((const uint8_t *)p);
	w[1] = df11k_ld64_any((const uint8_t *)(p + 4));
}

/* The first `need` (< 8) BF16 words at p, the rest zero. Registers only:
 * no array indexed at run time. */
DF11_HD void df11f_tail_bf16(const uint16_t *p, uint32_t need, uint64_t w[2])
{
	uint64_t lo = 0, hi = 0;
	for (uint32_t i = 0; i < need; i++) {
		const uint64_t v = p[i];
		if (i < 4u)
			lo |= v << (16u * i);
		else
			hi |= v << (16u * (i - 4u));
	}
	w[0] = lo;
	w[1] = hi;
}

/* f32 of BF16 word i (0..7) of a pair. */
DF11_HD float df11f_bf16_f32(const uint64_t w[2], uint32_t i)
{
	return df11_bf16_to_f32((uint16_t)(w[i >> 2] >> (16u * (i & 3u))));
}

/* A lane's Huffman reader: bits [pos, pos + nb) of the stream in buf, LSB
 * first; words past the stream section read as zero. */
typedef struct df11f_reader {
	uint64_t buf;
	uint64_t w;     /* next stream word */
	uint64_t pos;   /* stream bit of buf's bit 0 */
	uint32_t nb;
	uint32_t bad;
} df11f_reader;

DF11_HD uint32_t df11f_word(const df11f_matrix *M, uint64_t w)
{
	return w < M->stream_words ? df11k_ld32(M->stream + w) : 0u;
}

DF11_HD void df11f_reader_init(const df11f_matrix *M, df11f_reader *R,
			       uint64_t bit)
{
	R->w = bit >> 5;
	R->buf = df11f_word(M, R->w) >> (bit & 31u);
	R->nb = 32u - (uint32_t)(bit & 31u);
	R->w++;
	R->pos = bit;
	R->bad = 0;
}

/* Decodes the next `need` (1..8) codes into bytes 0..need-1 of the return
 * value, exactly: codes past them stay in the stream. */
DF11_HD uint64_t df11f_decode8(const df11f_matrix *M, const df11f_smem *sh,
			       df11f_reader *R, uint32_t need)
{
	uint64_t ex = 0;
	uint32_t fill = 0;
	while (fill < need) {
		if (R->nb < 32u) {
			R->buf |= (uint64_t)df11f_word(M, R->w) << R->nb;
			R->nb += 32u;
			R->w++;
		}
		/* Entry layout: df11k_multi_entry. */
		uint32_t e = sh->multi[R->buf & (DF11K_TABLE_ENTRIES - 1u)];
		uint32_t c = e >> 30, used = (e >> 24) & 63u, syms = e & 0xffffffu;
		if (c == 0) {
			uint32_t s = df11_huff_decode_slow(&sh->canon, R->buf,
							   M->max_code_len);
			syms = s & 0xffu;
			used = s >> 8;
			c = 1;
		}
		if (fill + c > need) {
			/* Keep only the codes this call needs. */
			uint32_t k = need - fill, l = 0;
			for (uint32_t i = 0; i < k; i++)
				l += sh->len[(syms >> (8u * i)) & 0xffu];
			syms &= 0xffffffu >> (8u * (3u - k));
			c = k;
			used = l;
		}
		if (used == 0 || used > R->nb) {
			/* A table overwritten in device memory: stop. */
			R->bad = 1;
			return ex;
		}
		ex |= (uint64_t)syms << (8u * fill);
		fill += c;
		R->buf >>= used;
		R->nb -= used;
		R->pos += used;
	}
	return ex;
}

/* 8 weights (fewer at a row's end: `need`, the rest zero) of row n,
 * columns [k, k + need), as BF16 words: the loaders. */
DF11_HD void df11f_load8(const df11f_launch *L, const df11f_matrix *M,
			 const df11f_smem *sh, df11f_reader *R, uint64_t n,
			 uint32_t k, uint32_t need, uint64_t w[2])
{
	const uint64_t at = n * L->cols + k;
	if (M->kind == DF11F_BF16) {
		if (need == 8u) {
			df11f_ld8_bf16(M->bf16 + at, w);
			return;
		}
		df11f_tail_bf16(M->bf16 + at, need, w);
		return;
	}
	uint64_t ex;
	if (M->kind == DF11F_SINGLE)
		ex = 0x0101010101010101ull * (M->single_exponent & 0xffu);
	else
		ex = df11f_decode8(M, sh, R, need);
	uint64_t s;
	if (need == 8u) {
		s = df11k_ld64_any(M->plane + at);
	} else {
		s = 0;
		for (uint32_t i = 0; i < need; i++)
			s |= (uint64_t)M->plane[at + i] << (8u * i);
	}
	w[0] = (uint64_t)df11k_join2(ex, s) | (uint64_t)df11k_join2(ex >> 16, s >> 16) << 32;
	w[1] = (uint64_t)df11k_join2(ex >> 32, s >> 32) |
	       (uint64_t)df11k_join2(ex >> 48, s >> 48) << 32;
	if (need < 8u) { /* zero weights past the row */
		uint32_t z = need * 16u;
		if (z < 64u) {
			w[0] &= (1ull << z) - 1u;
			w[1] = 0;
		} else if (z > 64u) {
			w[1] &= (1ull << (z - 64u)) - 1u;
		} else {
			w[1] = 0;
		}
	}
}

/* Where a lane stands in its row: the row it reads, and for Huffman
 * matrices the stream bit of its current segment. */
typedef struct df11f_cursor {
	df11f_reader R;
	uint64_t nr;          /* the row read */
	uint64_t bit;         /* start of segment `done` */
	const uint16_t *segb; /* the row's segment bits (Huffman) */
	uint32_t done;
	uint32_t live;        /* the row exists (else: stores nothing) */
	uint32_t bad;         /* codes disagreed with the index */
} df11f_cursor;

DF11_HD void df11f_cursor_init(const df11f_launch *L, const df11f_matrix *M,
			       const df11f_smem *sh, uint64_t tile,
			       uint32_t lane, df11f_cursor *C)
{
	memset(C, 0, sizeof *C);
	const uint64_t n = tile * DF11F_ROWS + lane;
	C->live = n < M->rows;
	/* Lanes past the matrix's last row compute on the tile's first row
	 * and store nothing: the warp stays in step. */
	C->nr = C->live ? n : tile * DF11F_ROWS;
	if (M->kind == DF11F_HUFFMAN) {
		C->bit = M->tile_start[tile];
		for (uint32_t r = 0; r < (C->live ? lane : 0u); r++)
			C->bit += sh->row_bits[r];
		C->segb = M->seg_bits + C->nr * L->n_segs;
	}
}

/* Positions the reader at segment c (c only grows). */
DF11_HD void df11f_cursor_seg(const df11f_matrix *M, df11f_cursor *C, uint32_t c)
{
	if (M->kind != DF11F_HUFFMAN)
		return;
	for (; C->done < c; C->done++)
		C->bit += C->segb[C->done];
	df11f_reader_init(M, &C->R, C->bit);
}

/* After segment c: its codes must end where the index says. */
DF11_HD void df11f_cursor_check(const df11f_matrix *M, df11f_cursor *C, uint32_t c)
{
	if (M->kind == DF11F_HUFFMAN && C->live &&
	    (C->R.bad || C->R.pos != C->bit + C->segb[c]))
		C->bad = 1;
}

/* Columns [*k0, *k1) of segment c. */
DF11_HD void df11f_seg_cols(const df11f_launch *L, uint32_t c, uint32_t *k0,
			    uint32_t *k1)
{
	*k0 = c << DF11F_SEG_LOG2;
	*k1 = *k0 + DF11F_SEG < L->cols ? *k0 + DF11F_SEG : L->cols;
}

/* Phase 2 for batch widths up to DF11F_MMA_NB / 2, FP32 FMAs: lane `lane`
 * of warp `warp` takes its segments of the tile, each decoded (or loaded)
 * 8 weights at a time and multiplied at once into acc (NB floats, one per
 * batch row, k ascending), then stored to red. NB is the batch width, a
 * compile-time constant in the GPU build so that acc lives in registers.
 * Returns 1 if the codes disagree with the index. */
DF11_HD uint32_t df11f_lane(const df11f_launch *L, const df11f_matrix *M,
			    const df11f_smem *sh, uint64_t tile, uint32_t warp,
			    uint32_t lane, float *red, const uint32_t NB)
{
	float acc[DF11F_MAX_B];
	DF11F_UNROLL
	for (uint32_t b = 0; b < NB; b++)
		acc[b] = 0.0f;
	df11f_cursor C;
	df11f_cursor_init(L, M, sh, tile, lane, &C);
	for (uint32_t c = warp; c < L->n_segs; c += L->warps) {
		df11f_cursor_seg(M, &C, c);
		uint32_t k0, k1;
		df11f_seg_cols(L, c, &k0, &k1);
		for (uint32_t k = k0; k < k1; k += 8u) {
			const uint32_t need = k1 - k < 8u ? k1 - k : 8u;
			uint64_t w[2];
			df11f_load8(L, M, sh, &C.R, C.nr, k, need, w);
			float wf[8];
			DF11F_UNROLL
			for (uint32_t i = 0; i < 8u; i++)
				wf[i] = df11f_bf16_f32(w, i);
			DF11F_UNROLL
			for (uint32_t b = 0; b < NB; b++) {
				const uint32_t xb = b < L->batch ? b : L->batch - 1u;
				uint64_t xv[2];
				const uint16_t *xp = L->x + xb * L->ldx + k;
				if (need == 8u)
					df11f_ld8_bf16(xp, xv);
				else
					df11f_tail_bf16(xp, need, xv);
				float a = acc[b];
				DF11F_UNROLL
				for (uint32_t i = 0; i < 8u; i++)
					a = fmaf(wf[i], df11f_bf16_f32(xv, i), a);
				acc[b] = a;
			}
		}
		df11f_cursor_check(M, &C, c);
	}
	DF11F_UNROLL
	for (uint32_t b = 0; b < NB; b++)
		red[(warp * NB + b) * DF11F_ROWS + lane] = acc[b];
	return C.bad;
}

/* ----------------------------------------- tensor cores, batches >= 16
 *
 * For batch widths of DF11F_MMA_NB and more, the products go to the
 * tensor cores: mma.sync.m16n8k16 (BF16 in, FP32 accumulate). A warp's 32
 * rows are two 16-row A tiles, the batch rows NB/8 B tiles of 8, and the
 * warp walks its segments 16 columns per step:
 *
 *   load   each lane decodes the 16 weights of its row (two df11f_load8)
 *          into the warp's 32 x 16 tile in shared memory (rows of
 *          DF11F_TILE_STRIDE halves: 48 bytes, so that 8 rows fall in
 *          distinct banks);
 *   frags  each lane reads its A fragments (PTX's m16n8k16 layout, with
 *          g = lane / 4, t = lane % 4: a0 = A[g][2t..2t+1], a1 = A[g+8][..],
 *          a2 = A[g][2t+8..2t+9], a3 = A[g+8][2t+8..]) from the tile and its
 *          B fragments (b0 = x[g][k+2t..k+2t+1], b1 = x[g][k+2t+8..]) from
 *          the activations;
 *   mma    2 x NB/8 mma.sync per step; C fragments (c0, c1 = rows g,
 *          batch 2t, 2t+1; c2, c3 = row g+8) stay in registers.
 *
 * The CPU run emulates the warp's mma from the 32 lanes' fragments
 * (tests/test_fused_emul.c), so a fragment laid out wrong shows as a
 * wrong product. */

#define DF11F_MMA_NB 16u        /* smallest batch width on tensor cores */
#define DF11F_TILE_STRIDE 24u   /* halves per row of a warp's weight tile */
#define DF11F_TILE_HALVES (DF11F_ROWS * DF11F_TILE_STRIDE)

/* Dynamic shared memory of a launch of batch width nb with `warps` warps:
 * the partial sums, then (tensor cores) one weight tile per warp. */
DF11_HD uint32_t df11f_dyn_smem(uint32_t warps, uint32_t nb)
{
	uint32_t b = 4u * df11f_red_floats(warps, nb);
	if (nb >= DF11F_MMA_NB)
		b += 2u * DF11F_TILE_HALVES * warps;
	return b;
}

/* Load step: the lane's 16 weights at columns [k, k + 16) (zero at or past
 * k1) into row `lane` of the warp's tile wt. */
DF11_HD void df11f_mma_load(const df11f_launch *L, const df11f_matrix *M,
			    const df11f_smem *sh, df11f_cursor *C, uint32_t k,
			    uint32_t k1, uint16_t *wt, uint32_t lane)
{
	uint64_t w[4] = {0, 0, 0, 0};
	for (uint32_t h = 0; h < 2u; h++) {
		const uint32_t kk = k + 8u * h;
		if (kk >= k1)
			break;
		const uint32_t need = k1 - kk < 8u ? k1 - kk : 8u;
		df11f_load8(L, M, sh, &C->R, C->nr, kk, need, w + 2u * h);
	}
	uint64_t *row = (uint64_t *)(void *)(wt + lane * DF11F_TILE_STRIDE);
	row[0] = w[0];
	row[1] = w[1];
	row[2] = w[2];
	row[3] = w[3];
}

/* Frags step, A: the lane's four registers of 16-row tile mt (0, 1). */
DF11_HD void df11f_mma_frag_a(const uint16_t *wt, uint32_t lane, uint32_t mt,
			      uint32_t a[4])
{
	const uint32_t g = lane >> 2, t = lane & 3u, r = 16u * mt + g;
	const uint32_t *lo = (const uint32_t *)(const void *)(wt + r * DF11F_TILE_STRIDE);
	const uint32_t *hi = (const uint32_t *)(const void *)(wt + (r + 8u) * DF11F_TILE_STRIDE);
	a[0] = lo[t];
	a[1] = hi[t];
	a[2] = lo[t + 4u];
	a[3] = hi[t + 4u];
}

/* Frags step, B: the lane's two registers of batch tile nt: activations of
 * batch row 8 nt + g (the last one for rows past the batch), columns
 * k + 2t, k + 2t + 1 and those + 8 (zero at or past k1). */
DF11_HD void df11f_mma_frag_b(const df11f_launch *L, uint32_t k, uint32_t k1,
			      uint32_t nt, uint32_t lane, uint32_t b[2])
{
	const uint32_t g = lane >> 2, t = lane & 3u;
	const uint32_t row = 8u * nt + g < L->batch ? 8u * nt + g : L->batch - 1u;
	const uint16_t *x = L->x + row * L->ldx;
	for (uint32_t i = 0; i < 2u; i++) {
		const uint32_t kk = k + 2u * t + 8u * i;
		const uint32_t v0 = kk < k1 ? x[kk] : 0u;
		const uint32_t v1 = kk + 1u < k1 ? x[kk + 1u] : 0u;
		b[i] = v0 | v1 << 16;
	}
}

/* After the warp's last step: the lane's C fragments (acc[(mt * NB/8 +
 * nt) * 4 + i]) to red, as df11f_lane stores its sums. */
DF11_HD void df11f_mma_store(const float *acc, uint32_t warp, uint32_t lane,
			     float *red, const uint32_t NB)
{
	const uint32_t g = lane >> 2, t = lane & 3u;
	DF11F_UNROLL
	for (uint32_t mt = 0; mt < 2u; mt++)
		DF11F_UNROLL
		for (uint32_t nt = 0; nt < NB / 8u; nt++)
			DF11F_UNROLL
			for (uint32_t i = 0; i < 4u; i++) {
				const uint32_t row = 16u * mt + g + (i >> 1) * 8u;
				const uint32_t b = 8u * nt + 2u * t + (i & 1u);
				red[(warp * NB + b) * DF11F_ROWS + row] =
					acc[(mt * (NB / 8u) + nt) * 4u + i];
			}
}

/* Phase 3, thread tid of nthreads: each (row, batch row) of the tile adds
 * the warps' partial sums in warp order and stores y. */
DF11_HD void df11f_store(const df11f_launch *L, const df11f_matrix *M,
			 uint64_t tile, uint32_t tid, uint32_t nthreads,
			 const float *red, const uint32_t NB)
{
	for (uint32_t i = tid; i < DF11F_ROWS * L->batch; i += nthreads) {
		const uint32_t lane = i % DF11F_ROWS, b = i / DF11F_ROWS;
		const uint64_t n = tile * DF11F_ROWS + lane;
		if (n >= M->rows)
			continue;
		float s = red[b * DF11F_ROWS + lane];
		for (uint32_t w = 1; w < L->warps; w++)
			s += red[(w * NB + b) * DF11F_ROWS + lane];
		float *y = M->y + (uint64_t)b * M->ldy + n;
		*y = L->accumulate ? *y + s : s;
	}
}

/* ------------------------------------------------- the index, at prepare */

/* Stream bit where element e's code starts, for a Huffman tensor t with
 * its staged entry points (run_off) made: the last run of e's block whose
 * first code is at or before e, then code by code. multi, len: t's tables. */
DF11_HD uint64_t df11f_seek(const df11k_tensor *t, const uint32_t *multi,
			    const uint8_t *len, uint64_t e, uint32_t *bad)
{
	/* Block: the last one whose start is <= e. */
	uint64_t lo = 0, hi = t->n_blocks;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (df11k_block_start(t, mid) <= e)
			lo = mid;
		else
			hi = mid;
	}
	const unsigned rpb = t->block_log2 + t->window_log2 - t->run_log2;
	const uint64_t r0 = lo << rpb;
	uint64_t r1 = (lo + 1) << rpb;
	if (r1 > t->n_runs)
		r1 = t->n_runs;
	/* Run: the last one of the block whose first code goes to an element
	 * <= e (the block's first run does; runs past the stream's last code,
	 * gap NONE, count the whole block, so never qualify). */
	uint64_t run = r0;
	while (r1 - run > 1) {
		uint64_t mid = run + (r1 - run) / 2;
		if (df11k2_run_elem(t, mid, df11k_ld32(t->run_off + mid)) <= e)
			run = mid;
		else
			r1 = mid;
	}
	const uint32_t entry = df11k_ld32(t->run_off + run);
	const uint32_t gap = entry >> DF11K2_RUN_GAP_SHIFT;
	const uint64_t first = df11k2_run_elem(t, run, entry);
	if (gap == DF11_GAP_NONE || first > e) {
		*bad = 1;
		return 0;
	}
	/* Skip e - first codes. */
	df11f_matrix M;
	memset(&M, 0, sizeof M);
	M.stream = t->stream;
	M.stream_words = t->stream_words;
	df11f_reader R;
	df11f_reader_init(&M, &R, (run << t->run_log2) + gap);
	uint64_t left = e - first;
	while (left) {
		if (R.nb < 32u) {
			R.buf |= (uint64_t)df11f_word(&M, R.w) << R.nb;
			R.nb += 32u;
			R.w++;
		}
		uint32_t x = multi[R.buf & (DF11K_TABLE_ENTRIES - 1u)];
		uint32_t c = x >> 30, used = (x >> 24) & 63u, syms = x & 0xffffffu;
		if (c == 0) {
			uint32_t s = df11_huff_decode_slow(t->canon, R.buf, t->max_code_len);
			used = s >> 8;
			c = 1;
		} else if (c > left) {
			used = 0;
			for (uint32_t i = 0; i < left; i++)
				used += len[(syms >> (8u * i)) & 0xffu];
			c = (uint32_t)left;
		}
		if (used == 0 || used > R.nb) {
			*bad = 1;
			return 0;
		}
		R.buf >>= used;
		R.nb -= used;
		R.pos += used;
		left -= c;
	}
	return R.pos;
}

/* Thread s of the prepare's seek launch: where segment s (row-major over
 * (rows, n_segs)) starts, into start[s]; thread rows * n_segs writes the
 * stream's end. */
DF11_HD void df11f_index_seek(const df11k_tensor *t, const uint32_t *multi,
			      const uint8_t *len, uint64_t cols, uint64_t rows,
			      uint64_t s, uint64_t *start, uint32_t *bad)
{
	const uint32_t ns = df11f_n_segs(cols);
	if (s > rows * ns)
		return;
	if (s == rows * ns) {
		start[s] = t->stream_bits;
		return;
	}
	const uint64_t e = (s / ns) * cols + ((s % ns) << DF11F_SEG_LOG2);
	start[s] = df11f_seek(t, multi, len, e, bad);
}

/* Thread s of the prepare's pack launch: segment s's bits and, for a tile's
 * first segment, the tile's start, into the index (df11f_index_size
 * bytes). A segment of m codes takes m..15m bits. */
DF11_HD void df11f_index_pack(uint64_t cols, uint64_t rows, uint64_t s,
			      const uint64_t *start, uint8_t *index, uint32_t *bad)
{
	const uint32_t ns = df11f_n_segs(cols);
	if (s >= rows * ns)
		return;
	const uint64_t c = s % ns, k0 = c << DF11F_SEG_LOG2;
	const uint64_t m = cols - k0 < DF11F_SEG ? cols - k0 : DF11F_SEG;
	const uint64_t a = start[s], b = start[s + 1];
	if (b < a + m || b - a > 15u * m)
		*bad = 1;
	uint16_t *seg = (uint16_t *)(index + df11f_index_seg_offset(rows));
	seg[s] = (uint16_t)(b - a);
	if (s % ((uint64_t)ns * DF11F_ROWS) == 0)
		((uint64_t *)index)[s / ((uint64_t)ns * DF11F_ROWS)] = a;
}

#endif /* DF11_CUDA_FUSED_H */
