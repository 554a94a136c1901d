/*
 * The staged GPU decoder: the default decode kernel of libdf11_cuda,
 * written once for nvcc and the C compiler like cuda/decode_kernel.h (whose
 * launch parameters, work items and window offsets it shares). The CPU test
 * (tests/test_cuda_emul.c) runs these functions for every lane of every
 * warp of every CTA, phase by phase, with the shared memory emulated.
 *
 * Work: runs of 2^run_log2 stream bits (DF11K2_RUN_LOG2, 512 by default;
 * a tensor's windows when those are shorter). CTA c takes runs
 * [c*DF11K_THREADS, (c+1)*DF11K_THREADS), one per thread (a lane), and the
 * lane decodes every code that starts in its run, from the entry points
 * the upload's entry launch recorded (run_off: where the run's first code
 * starts and where its output goes). How a warp moves bytes: its 32 lanes
 * decode side by side in STEPS of DF11K2_STEP table lookups, and between
 * steps the warp as a whole
 *
 *   flushes  every 8-element chunk of output that some lane completed:
 *            the exponents wait in shared memory (a ring of DF11K2_CHUNKS
 *            chunks per lane), and the warp's lanes take the chunks of all
 *            lanes in order, so that consecutive lanes load consecutive
 *            8-byte sign|mantissa words and store consecutive 16-byte BF16
 *            words (a lane's chunks are contiguous in the output);
 *   refills  the stream: each lane reads its bits from a ring of
 *            DF11K2_RING_WORDS 32-bit words in shared memory; a lane with
 *            fewer than DF11K2_HALF words ahead of its reader gets the next
 *            aligned piece of DF11K2_HALF words of its stream (64 bytes
 *            with the default step), loaded by DF11K2_PIECE_LANES lanes
 *            with 16-byte loads (every byte of every 32-byte sector used).
 *
 *   step:   lane 0 |lookup|lookup|...16...|   lane 1 |lookup|...   (no
 *           exchange; a lookup appends up to 3 exponents to a register and
 *           stores it to the lane's ring when it holds 8)
 *   flush:  warp   |chunk 0..31 of all lanes|chunk 32..63|...     (LDS.64,
 *           LDG.64 sm, STG.128)
 *   refill: warp   |8 pieces of 64 B|...                          (LDG.128,
 *           STS.128; default step of 16 lookups)
 *
 * The lookup table (2^DF11K2_LOOKUP_BITS u32 entries, df11k_multi_entry
 * layout: up to 3 codes per lookup), the code lengths and the canonical
 * table of the slow path (codes longer than the table) sit in shared memory
 * and are indexed as arrays of the CTA's shared struct, never through a
 * pointer loaded at run time. The inner loop has no lane-divergent branch
 * but the slow path (a code longer than DF11K2_LOOKUP_BITS, about one in
 * 2^11 lookups on trained weights).
 *
 * Guards: every lookup advances by at least one bit or the lane stops and
 * flags the tensor (a corrupt table in device memory cannot hang the
 * kernel); stream reads are clamped to the stream section; stores are
 * clamped to the job's range; a lane whose codes do not end where the index
 * says flags the tensor (DF11K_ERR_INDEX), like the window kernel.
 */
#ifndef DF11_DECODE_STAGED_H
#define DF11_DECODE_STAGED_H

#include "cuda/decode_kernel.h"

/* Bits per table lookup (9..12): the table is 4 << bits bytes of shared
 * memory. Codes longer than this take the slow path. */
#ifndef DF11K2_LOOKUP_BITS
#define DF11K2_LOOKUP_BITS 11
#endif
#if DF11K2_LOOKUP_BITS < 9 || DF11K2_LOOKUP_BITS > 12
#error "DF11K2_LOOKUP_BITS must be 9..12"
#endif
#define DF11K2_TABLE_ENTRIES (1u << DF11K2_LOOKUP_BITS)
/* Table lookups per lane per step (8, 16 or 32): longer steps spread the
 * warp's flush and refill over more work, shorter ones need less shared
 * memory per warp (rings of STEP and 2 * STEP words). CMake's
 * DF11_CUDA_STAGED_STEP. */
#ifndef DF11K2_STEP
#define DF11K2_STEP 16
#endif
#if DF11K2_STEP != 8 && DF11K2_STEP != 16 && DF11K2_STEP != 32
#error "DF11K2_STEP must be 8, 16 or 32"
#endif
#define DF11K2_HALF DF11K2_STEP /* stream words per refill piece */
#define DF11K2_RING_WORDS (2 * DF11K2_HALF) /* stream ring: two pieces */
#define DF11K2_PIECE_LANES (DF11K2_HALF / 4) /* lanes loading one piece */
#define DF11K2_CHUNKS (DF11K2_STEP / 2) /* exponent ring, 8-byte chunks */
#define DF11K2_CHUNK_STRIDE (DF11K2_CHUNKS + 1) /* padded: other banks */
#define DF11K2_WARPS (DF11K_THREADS / 32)

/* Bits of stream per lane, log2 (6..16; a tensor's runs are its windows
 * when those are shorter): the upload's entry launch records where the
 * first code of every run starts and where its output goes (run_off), so
 * that a lane decodes about 190 codes instead of a 2048-bit window's 770
 * and a tensor offers 4x the lanes, at 4 bytes of device memory per run
 * (1.6% of the compressed size). CMake's DF11_CUDA_RUN_LOG2. */
#ifndef DF11K2_RUN_LOG2
#define DF11K2_RUN_LOG2 9
#endif
#if DF11K2_RUN_LOG2 < 6 || DF11K2_RUN_LOG2 > 16
#error "DF11K2_RUN_LOG2 must be 6..16"
#endif
/* Entry point of a run (u32): the number of codes of the run's block
 * before the run's first code (bits 0..26; a block holds at most 2^20
 * codes), and where that code starts in the run (bits 27..30: 0..14, or
 * DF11_GAP_NONE if no code starts in the run, which only the runs past
 * the last code start can be). */
#define DF11K2_RUN_COUNT_MASK 0x7ffffffu
#define DF11K2_RUN_GAP_SHIFT 27

/* A step consumes at most 15 bits per lookup (a code of the slow path;
 * table entries hold at most DF11K2_LOOKUP_BITS bits), so the reader moves
 * at most (15 * STEP + 63) / 32 + 1 words: refilled to DF11K2_HALF words
 * ahead before a step, a lane never reads past its ring. A step appends at
 * most 3 * STEP exponents to a partial chunk of at most 7: the chunks it
 * completes, plus a last partial one, fit the exponent ring. */
#if defined(__cplusplus)
#define DF11K2_ASSERT(c, m) static_assert(c, m)
#else
#define DF11K2_ASSERT(c, m) _Static_assert(c, m)
#endif
DF11K2_ASSERT((15 * DF11K2_STEP + 63) / 32 + 1 <= DF11K2_HALF,
	      "a step may read past the stream ring");
DF11K2_ASSERT((7 + 3 * DF11K2_STEP) / 8 + 1 <= DF11K2_CHUNKS,
	      "a step may complete more chunks than the exponent ring holds");
DF11K2_ASSERT((DF11K2_CHUNKS & (DF11K2_CHUNKS - 1)) == 0,
	      "exponent ring slots are chunk & (CHUNKS - 1)");

#define DF11K2_FULL 0xffffffffu /* all lanes of a warp */

/* ------------------------------------------------------ shared memory */

/* One warp's part of the CTA's shared memory. */
typedef struct df11k2_warp {
	/* Stream ring: word a of lane l's stream (absolute word index into the
	 * tensor's stream) is ring[l][phys], phys = a mod RING_WORDS with its
	 * 16-byte group XOR l mod (RING_WORDS / 4): 16-byte stores stay
	 * aligned, and lanes reading the same column spread over the banks. */
	DF11K_ALIGNAS16 uint32_t ring[32][DF11K2_RING_WORDS];
	/* Exponent ring: chunk c of lane l (dst index 8c) is exps[l][c & 7],
	 * byte i the exponent of element 8c + i. */
	uint64_t exps[32][DF11K2_CHUNK_STRIDE];
	/* Published by each lane before a flush or a refill. */
	int64_t fl[32];     /* dst index of the lane's first pending chunk */
	uint32_t info[32];  /* pending chunks | lo of the first << 16 |
			       hi of the last << 24 */
	uint32_t incl[32];  /* inclusive sum of the pending chunks */
	uint64_t want[32];  /* stream piece (absolute word / 16) to load */
} df11k2_warp;

typedef struct df11k2_smem {
	DF11K_ALIGNAS16 uint32_t multi[DF11K2_TABLE_ENTRIES];
	DF11K_ALIGNAS16 uint8_t len[256];
	DF11K_ALIGNAS16 df11_huff_canon canon;
	df11k2_warp warp[DF11K2_WARPS];
} df11k2_smem;

/* Static shared memory is limited to 48 KB per CTA: 256-thread CTAs need
 * steps of 8, 128-thread CTAs steps of at most 16. */
DF11K2_ASSERT(sizeof(df11k2_smem) <= 48 * 1024,
	      "staged kernel: shared memory over 48 KB; use fewer threads per "
	      "CTA or a shorter step");
DF11K2_ASSERT(sizeof(df11_huff_canon) % 16 == 0,
	      "the canonical table is copied as 16-byte vectors");

/* Thread tid's share of copying the tensor's tables into shared memory:
 * 16-byte pieces, coalesced. tables2 is the staged kernel's lookup table
 * (plan.h, DF11K_TABLES_MULTI2); code_len and canon are the tensor's. */
DF11_HD void df11k2_load_tables(const df11k_tensor *t, df11k2_smem *sh,
				uint32_t tid)
{
	const uint32_t n_multi = DF11K2_TABLE_ENTRIES * 4 / 16, n_len = 256 / 16;
	const uint32_t n_canon = (uint32_t)sizeof(df11_huff_canon) / 16;
	for (uint32_t i = tid; i < n_multi + n_len + n_canon; i += DF11K_THREADS) {
		const uint8_t *src;
		uint8_t *dst;
		if (i < n_multi) {
			src = (const uint8_t *)t->multi2 + 16 * i;
			dst = (uint8_t *)sh->multi + 16 * i;
		} else if (i < n_multi + n_len) {
			src = t->code_len + 16 * (i - n_multi);
			dst = sh->len + 16 * (i - n_multi);
		} else {
			src = (const uint8_t *)t->canon + 16 * (i - n_multi - n_len);
			dst = (uint8_t *)&sh->canon + 16 * (i - n_multi - n_len);
		}
		df11k_copy16(dst, src);
	}
}

/* A hint to bring the line holding p into L2 while the lane decodes (the
 * coming refill or flush then waits for L2, not DRAM); nothing on the
 * host. p must point into an allocation. */
DF11_HD void df11k2_prefetch(const void *p)
{
#if defined(__CUDA_ARCH__)
	asm volatile("prefetch.L2 [%0];" ::"l"(p)); /* generic address */
#else
	(void)p;
#endif
}

/* Column of word a in lane l's stream ring. */
DF11_HD uint32_t df11k2_col(uint32_t l, uint64_t a)
{
	return ((uint32_t)a & (DF11K2_RING_WORDS - 1u)) ^
	       ((l & (DF11K2_RING_WORDS / 4u - 1u)) << 2);
}

/* ------------------------------------------------------- lane state */

/* What one lane keeps in registers between steps. */
typedef struct df11k2_lane {
	uint64_t buf;     /* stream bits [pos, pos + nb), LSB first */
	uint64_t acc;     /* exponents of the chunk being filled */
	int64_t cb;       /* dst index of that chunk (a multiple of 8) */
	int64_t fl;       /* first chunk not yet flushed */
	uint64_t base;    /* stream bit of the lane's first window */
	uint64_t w;       /* next stream word (absolute) into buf */
	uint64_t filled;  /* the ring holds words [filled - 32, filled) */
	uint64_t expect;  /* where the lane's codes must end */
	int64_t qend;     /* dst index after the lane's last code */
	uint32_t pos, end; /* bits from base: reader, end of the lane's run */
	uint32_t nb, fill; /* bits in buf; exponents in acc (bytes [0, fill)) */
	uint32_t lof;     /* lo of the chunk at fl (the lane's first chunk
			     starts inside a chunk it shares) */
	uint32_t hil;     /* hi of the last pending chunk: 8, or the final
			     partial chunk's fill */
	uint32_t state;   /* DF11K2_* below */
	uint32_t bad;     /* the lane's codes disagree with the index */
	uint32_t check;   /* the lane's run ends inside the range: check it */
} df11k2_lane;

#define DF11K2_IDLE 0u   /* nothing (more) to decode */
#define DF11K2_RUN 1u    /* decoding */

/* Element of the first code of `run` (entry e), or where it would go. */
DF11_HD uint64_t df11k2_run_elem(const df11k_tensor *t, uint64_t run, uint32_t e)
{
	const unsigned rpb = t->block_log2 + t->window_log2 - t->run_log2;
	return df11k_block_start(t, run >> rpb) + (e & DF11K2_RUN_COUNT_MASK);
}

/* Lane `tid` of the CTA working on `item` of job J owns run
 * item * DF11K_THREADS + tid: where its codes start, end and go, and
 * nothing read from the ring yet. */
DF11_HD void df11k2_lane_init(const df11k_job *J, uint64_t item, uint32_t tid,
			      df11k2_lane *L)
{
	const df11k_tensor *t = &J->t;
	memset(L, 0, sizeof *L);
	L->state = DF11K2_IDLE;
	L->hil = 8;
	const uint64_t run = item * DF11K_THREADS + tid;
	if (run >= t->n_runs)
		return;
	const uint64_t want_lo = J->first, want_hi = J->first + J->count;
	const uint32_t e = df11k_ld32(t->run_off + run);
	const uint32_t gap = e >> DF11K2_RUN_GAP_SHIFT;
	const uint64_t a = df11k2_run_elem(t, run, e);
	uint64_t b = t->n_elems, expect = t->stream_bits;
	if (run + 1 < t->n_runs) {
		const uint32_t e1 = df11k_ld32(t->run_off + run + 1);
		const uint32_t g1 = e1 >> DF11K2_RUN_GAP_SHIFT;
		b = df11k2_run_elem(t, run + 1, e1);
		if (g1 != DF11_GAP_NONE)
			expect = ((run + 1) << t->run_log2) + g1;
	}
	if (a >= b || a >= want_hi || b <= want_lo)
		return; /* no codes, or none in the range */
	const uint64_t base = run << t->run_log2;
	uint64_t end64 = base + ((uint64_t)1 << t->run_log2);
	if (end64 > t->stream_bits)
		end64 = t->stream_bits;
	const uint64_t start64 = gap == DF11_GAP_NONE ? t->stream_bits : base + gap;
	L->base = base;
	L->expect = expect;
	L->end = end64 > base ? (uint32_t)(end64 - base) : 0u;
	L->pos = start64 < end64 ? (uint32_t)(start64 - base) : L->end;
	L->check = 1;
	const int64_t q0 = (int64_t)a - (int64_t)J->first;
	L->qend = (int64_t)b - (int64_t)J->first;
	L->cb = q0 >= 0 ? (q0 & ~(int64_t)7) : -((-q0 + 7) & ~(int64_t)7);
	L->fill = L->lof = (uint32_t)(q0 - L->cb);
	L->fl = L->cb;
	/* Reader: the first word is loaded by df11k2_lane_start, after the
	 * refills have brought the two pieces around it. */
	L->w = (base + L->pos) >> 5;
	L->filled = L->w / DF11K2_HALF * DF11K2_HALF; /* nothing loaded yet */
	if (L->pos < L->end)
		L->state = DF11K2_RUN;
	else /* codes assigned, none starts here */
		L->bad = 1;
}

/* The upload's entry launch, thread k: the entry points of window k's
 * runs, written to run_off (t->run_off is not read). The window's codes
 * are decoded one by one from its first (after the count launch checked
 * the whole index, with win_off made). sh holds the window kernel's
 * tables (df11k_load_tables). Sets *bad if the codes do not end where the
 * next window's first code starts. */
DF11_HD void df11k2_window_entries(const df11k_tensor *t, const df11k_smem *sh,
				   uint64_t k, uint32_t *run_off, uint32_t *bad)
{
	if (k >= t->n_windows)
		return;
	const uint32_t S = 1u << (t->window_log2 - t->run_log2);
	const uint64_t k0 = k & ~(((uint64_t)1 << t->block_log2) - 1u);
	/* Codes of the block before window k (win_off counts from the start
	 * of an item, and an item is whole blocks). */
	uint32_t n = df11k_ld32(t->win_off + k) - df11k_ld32(t->win_off + k0);
	const uint64_t base = k << t->window_log2;
	uint64_t end64 = base + ((uint64_t)1 << t->window_log2);
	if (end64 > t->stream_bits)
		end64 = t->stream_bits;
	const uint64_t start64 = df11k_window_start(t, k);
	const uint32_t end = (uint32_t)(end64 - base);
	uint32_t pos = start64 < end64 ? (uint32_t)(start64 - base) : end;
	/* Bit reader as in df11k_decode_windows. */
	const uint64_t w0 = base >> 5;
	const uint32_t *words = t->stream + (w0 < t->stream_words ? w0 : 0);
	const uint64_t left = w0 < t->stream_words ? t->stream_words - w0 : 0;
	const uint32_t n_words = left < 0xffffffffu ? (uint32_t)left : 0xffffffffu;
	uint32_t w = pos >> 5, nb = 0, j = 0;
	uint64_t buf = 0;
	if (pos < end) {
		buf = (w < n_words ? df11k_ld32(words + w) : 0u) >> (pos & 31u);
		nb = 32u - (pos & 31u);
		w++;
	}
	while (pos < end) {
		/* Every run that starts at or before this code and after the
		 * previous one: this code is its first. */
		while (j < S && ((uint64_t)j << t->run_log2) <= pos) {
			run_off[(k << (t->window_log2 - t->run_log2)) + j] =
				n | ((pos - (j << t->run_log2)) << DF11K2_RUN_GAP_SHIFT);
			j++;
		}
		if (nb < 32) {
			uint32_t v = w < n_words ? df11k_ld32(words + w) : 0u;
			buf |= (uint64_t)v << nb;
			nb += 32;
			w++;
		}
		uint32_t e = sh->multi[buf & (DF11K_TABLE_ENTRIES - 1u)], l;
		if (e >> 30)
			l = sh->len[e & 0xffu];
		else
			l = df11_huff_decode_slow(t->canon, buf, t->max_code_len) >> 8;
		if (l == 0 || l > nb) { /* a table overwritten in device memory */
			*bad = 1;
			break;
		}
		buf >>= l;
		nb -= l;
		pos += l;
		n++;
	}
	for (; j < S; j++) /* runs in which no code starts (the stream's end) */
		run_off[(k << (t->window_log2 - t->run_log2)) + j] =
			n | ((uint32_t)DF11_GAP_NONE << DF11K2_RUN_GAP_SHIFT);
	if ((start64 < end64 ? base + pos : start64) != df11k_window_start(t, k + 1))
		*bad = 1;
}

/* Whether lane L needs a stream piece before the next step, and which
 * (absolute word / DF11K2_HALF). */
DF11_HD uint32_t df11k2_lane_want(const df11k2_lane *L, uint64_t *piece)
{
	if (L->state != DF11K2_RUN ||
	    (int64_t)(L->filled - L->w) >= (int64_t)DF11K2_HALF)
		return 0;
	*piece = L->filled / DF11K2_HALF;
	return 1;
}

/* The refill's owner of lane `lane` in a round over the requesting lanes
 * `mask`: PIECE_LANES consecutive lanes serve each requesting lane, the
 * i-th group the i-th; 32 if none. */
DF11_HD uint32_t df11k2_refill_owner(uint32_t mask, uint32_t lane)
{
	uint32_t n = lane / DF11K2_PIECE_LANES;
	for (uint32_t i = 0; i < n && mask; i++)
		mask &= mask - 1u;
	if (!mask)
		return 32u;
#if defined(__CUDA_ARCH__)
	return (uint32_t)__ffs((int)mask) - 1u;
#else
	return (uint32_t)__builtin_ctz(mask);
#endif
}

/* The requesting lanes left after a round (the lowest 32 / PIECE_LANES
 * served). */
DF11_HD uint32_t df11k2_refill_next(uint32_t mask)
{
	for (uint32_t i = 0; i < 32 / DF11K2_PIECE_LANES && mask; i++)
		mask &= mask - 1u;
	return mask;
}

/* Lane `lane`'s part of a refill round: 16 bytes of owner's piece. Words
 * past the stream section read as zero. */
DF11_HD void df11k2_refill_part(const df11k_tensor *t, df11k2_warp *ws,
				uint32_t owner, uint32_t lane)
{
	if (owner >= 32)
		return;
	const uint64_t a = ws->want[owner] * DF11K2_HALF +
			   4u * (lane % DF11K2_PIECE_LANES);
	uint32_t *dst = &ws->ring[owner][df11k2_col(owner, a)];
	if (a + 4 <= t->stream_words) {
		df11k_copy16(dst, t->stream + a);
	} else {
		for (uint32_t i = 0; i < 4; i++)
			dst[i] = a + i < t->stream_words ? df11k_ld32(t->stream + a + i)
							 : 0u;
	}
}

/* After a refill round that served lane L's request; the piece after it
 * is prefetched. */
DF11_HD void df11k2_lane_refilled(const df11k_tensor *t, df11k2_lane *L)
{
	L->filled += DF11K2_HALF;
	df11k2_prefetch(t->stream + (L->filled < t->stream_words
					     ? L->filled
					     : t->stream_words - 1));
}

/* Loads the lane's first word once its pieces are in the ring. */
DF11_HD void df11k2_lane_start(const df11k2_warp *ws, uint32_t lane,
			       df11k2_lane *L)
{
	if (L->state != DF11K2_RUN)
		return;
	const uint64_t a = L->w;
	L->buf = ws->ring[lane][df11k2_col(lane, a)] >> ((L->base + L->pos) & 31u);
	L->nb = 32u - (uint32_t)((L->base + L->pos) & 31u);
	L->w = a + 1;
}

/* Ends the lane's run: its last partial chunk becomes pending, and the
 * index check (codes end where the next window's first code starts). */
DF11_HD void df11k2_lane_finish(df11k2_warp *ws, uint32_t lane, df11k2_lane *L)
{
	/* The codes end where the next run's first code starts, and there
	 * were as many as the entry points say. */
	if (L->check && (L->base + L->pos != L->expect ||
			 L->cb + (int64_t)L->fill != L->qend))
		L->bad = 1;
	uint32_t lo = L->cb == L->fl ? L->lof : 0u;
	if (L->fill > lo) {
		ws->exps[lane][((uint64_t)L->cb >> 3) & (DF11K2_CHUNKS - 1u)] = L->acc;
		L->hil = L->fill;
		L->cb += 8;
	}
	L->state = DF11K2_IDLE;
}

/* One step of lane L: up to DF11K2_STEP lookups (fewer at its run's end).
 * sh is the CTA's shared memory; the lane stops once past the sink's
 * range. */
DF11_HD void df11k2_lane_step(const df11k_tensor *t, const df11k2_smem *sh,
			      df11k2_warp *ws, uint32_t lane,
			      const df11k_sink *sink, df11k2_lane *L)
{
	if (L->state != DF11K2_RUN)
		return;
	const int64_t count = sink->count;
	/* The sign|mantissa bytes of the chunks this step can complete (at
	 * most 56 elements from cb), for the flush after it. */
	for (int64_t a = L->cb; a < L->cb + 56; a += 48)
		df11k2_prefetch(sink->sm + (a < 0 ? 0 : a < count ? a : count - 1));
	uint64_t buf = L->buf, acc = L->acc;
	uint32_t pos = L->pos, nb = L->nb, fill = L->fill;
	const uint32_t end = L->end;
	uint64_t w = L->w;
	int64_t cb = L->cb;
	for (uint32_t it = 0; it < DF11K2_STEP && pos < end; it++) {
		if (nb < 32) {
#if !defined(__CUDA_ARCH__) && defined(DF11K2_HOST_RING_HOOK)
			DF11K2_HOST_RING_HOOK(L->filled, w);
#endif
			buf |= (uint64_t)ws->ring[lane][df11k2_col(lane, w)] << nb;
			nb += 32;
			w++;
		}
		uint32_t e = sh->multi[buf & (DF11K2_TABLE_ENTRIES - 1u)];
		uint32_t c = e >> 30, used = (e >> 24) & 63u, syms = e & 0xffffffu;
		if (c == 0) {
			/* The first code is longer than the table. */
			uint32_t x = df11_huff_decode_slow(&sh->canon, buf,
							   t->max_code_len);
			syms = x & 0xffu;
			used = x >> 8;
			c = 1;
		} else if (pos + used > end) {
			/* Run end: keep the codes that start before it. */
			uint32_t l = sh->len[syms & 0xffu], k = 1;
			if (c > 1 && pos + l < end) {
				l += sh->len[(syms >> 8) & 0xffu];
				k = 2;
				if (c > 2 && pos + l < end) {
					l += sh->len[syms >> 16];
					k = 3;
				}
			}
			syms &= 0xffffffu >> (8 * (3 - k));
			c = k;
			used = l;
		}
		if (used == 0 || used > nb) {
			/* Corrupt table (device memory overwritten): no
			 * progress. Stop the lane and flag the tensor. */
			L->bad = 1;
			L->check = 0;
			pos = end;
			break;
		}
		buf >>= used;
		nb -= used;
		pos += used;
		/* Append c exponents; a full chunk goes to the ring. The
		 * unused symbol bytes of an entry are zero. */
		acc |= (uint64_t)syms << (8 * fill);
		uint32_t nf = fill + c;
		if (nf >= 8) {
			ws->exps[lane][((uint64_t)cb >> 3) & (DF11K2_CHUNKS - 1u)] = acc;
			/* fill >= 5 here, so the shift is 8..24 */
			acc = (uint64_t)syms >> (8 * (8 - fill));
			nf -= 8;
			cb += 8;
			if (cb >= count) { /* past the range: no check */
				L->check = 0;
				pos = end;
				nf = 0;
			}
		}
		fill = nf;
	}
	L->buf = buf;
	L->acc = acc;
	L->pos = pos;
	L->nb = nb;
	L->fill = fill;
	L->w = w;
	L->cb = cb;
	if (pos >= end)
		df11k2_lane_finish(ws, lane, L);
}

/* Publishes the lane's pending chunks [fl, cb) for the flush; returns
 * their number. */
DF11_HD uint32_t df11k2_lane_publish(df11k2_warp *ws, uint32_t lane,
				     const df11k2_lane *L)
{
	uint32_t n = (uint32_t)((L->cb - L->fl) >> 3);
	uint32_t hi = L->state == DF11K2_IDLE ? L->hil : 8u;
	ws->fl[lane] = L->fl;
	ws->info[lane] = n | (L->lof << 16) | (hi << 24);
	return n;
}

/* After the flush: everything published is out. */
DF11_HD void df11k2_lane_flushed(df11k2_lane *L)
{
	if (L->cb != L->fl)
		L->lof = 0;
	L->fl = L->cb;
}

/* Lane `lane`'s part of a flush: chunks lane, lane + 32, ... of the warp's
 * pending chunks in lane order (ws->incl holds the inclusive sums of the
 * published counts). */
DF11_HD void df11k2_flush(const df11k2_warp *ws, const df11k_sink *sink,
			  uint32_t lane)
{
	const uint32_t total = ws->incl[31];
	for (uint32_t c = lane; c < total; c += 32) {
		/* The owner: the first lane whose inclusive sum passes c. */
		uint32_t o = 0;
		for (uint32_t step = 16; step; step >>= 1)
			if (ws->incl[o + step - 1] <= c)
				o += step;
		const uint32_t before = o ? ws->incl[o - 1] : 0u;
		const uint32_t info = ws->info[o], k = c - before;
		const int64_t cbk = ws->fl[o] + 8 * (int64_t)k;
		const uint32_t lo = k == 0 ? (info >> 16) & 0xffu : 0u;
		const uint32_t hi = k + 1 == (info & 0xffffu) ? info >> 24 : 8u;
		df11k_store_chunk(sink, cbk,
				  ws->exps[o][((uint64_t)cbk >> 3) &
					      (DF11K2_CHUNKS - 1u)],
				  lo, hi);
	}
}

/* Raw and single-exponent tensors, 8 elements per thread and pass: thread
 * tid's share of item's elements, with 16-byte stores where the output is
 * aligned. */
DF11_HD void df11k2_plain(const df11k_job *J, uint64_t item, uint32_t tid)
{
	const df11k_tensor *t = &J->t;
	const uint64_t a = item << DF11K_PLAIN_ITEM_LOG2;
	const uint64_t b = a + DF11K_PLAIN_ITEM < J->count ? a + DF11K_PLAIN_ITEM
							   : J->count;
	for (uint64_t i = a + 8u * tid; i < b; i += 8u * DF11K_THREADS) {
		const uint64_t x = J->first + i;
		if (J->vec_ok && i + 8 <= b && t->codec != DF11_CODEC_RAW) {
			uint64_t s = df11k_ld64_any(t->plane + x), e = 0;
			for (uint32_t k = 0; k < 8; k++)
				e |= (uint64_t)t->single_exponent << (8 * k);
			uint32_t v[4];
			v[0] = df11k_join2(e, s);
			v[1] = df11k_join2(e >> 16, s >> 16);
			v[2] = df11k_join2(e >> 32, s >> 32);
			v[3] = df11k_join2(e >> 48, s >> 48);
			df11k_st128(J->dst + i, v);
			continue;
		}
		if (J->vec_ok && i + 8 <= b && (x & 7u) == 0) {
			/* Raw words: 16 bytes at plane + 2x, 16-aligned. */
			uint64_t lo = df11k_ld64(t->plane + 2 * x);
			uint64_t hi = df11k_ld64(t->plane + 2 * x + 8);
			uint32_t v[4] = {(uint32_t)lo, (uint32_t)(lo >> 32),
					 (uint32_t)hi, (uint32_t)(hi >> 32)};
			df11k_st128(J->dst + i, v);
			continue;
		}
		const uint64_t m = b - i < 8 ? b - i : 8;
		for (uint64_t k = 0; k < m; k++) {
			uint16_t v = t->codec == DF11_CODEC_RAW
					     ? df11_rd16(t->plane + 2 * (x + k))
					     : df11_bf16_join(t->single_exponent,
							      t->plane[x + k]);
			df11k_st16(J->dst + i + k, v);
		}
	}
}

#endif /* DF11_DECODE_STAGED_H */
