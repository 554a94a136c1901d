/*
 * The GPU decoder's per-thread work, written once for nvcc and the C
 * compiler. cuda/df11_cuda.cu runs these functions as a CUDA kernel; the
 * CPU test (tests/test_cuda_emul.c) runs the very same functions for every
 * (CTA, thread) in order, so the decomposition is checked on every commit
 * on machines without a GPU. Only the memory primitives at the top differ
 * between the two builds.
 *
 * Decomposition (huffman tensors; layout in codec/format.h):
 *
 *   stream  |win 0|win 1|win 2| ... |win 63|win 64| ...       W bits each
 *   blocks  |<------------ block 0 ------->|<-- block 1 ...   2^block_log2 wins
 *   items   |<------------ item 0 -------->|<-- item 1 ...    max(T, block) wins
 *   threads |t0   |t1   |t2   | ... |t63  |                   2^wpt_log2 wins each
 *                                     (T = DF11K_THREADS, 64 drawn here)
 *
 * One CTA of DF11K_THREADS threads takes one work item: a run of whole
 * blocks, so its first output element is a block start from the index.
 * Each thread owns a run of consecutive windows and decodes every code that
 * STARTS in them: from the first code of its first window (k*W + gap[k])
 * while the position is below the end of its last window.
 *
 * Count launch, once per tensor at upload:
 *   count   every thread counts the codes of each of its windows and checks
 *           that each window's codes end exactly where the next window's
 *           first code starts (the index says where);
 *   scan    an exclusive scan of the threads' counts; the sum must equal
 *           the item's element count, and every block's first code must
 *           land where block_starts says;
 *   finish  each window's offset from its item's first element is stored
 *           in the model (win_off, 4 bytes per window).
 * Decode launch of the window kernel (the staged kernel of
 * cuda/decode_staged.h, libdf11_cuda's default, shares the launch
 * parameters and the index helpers here; its lanes own finer runs):
 *   each thread looks up where its windows' codes go, skips windows wholly
 *   before the range, decodes once and writes BF16: exponents collect in a
 *   register 8 at a time, are joined with 8 sign|mantissa bytes and stored
 *   as one 16-byte vector (scalar at the two ends of its run, where a chunk
 *   is shared with the neighbouring thread, and at the range's ends).
 * Raw and single-exponent tensors need no index: each CTA converts
 * DF11K_PLAIN_ITEM elements with a coalesced strided loop.
 *
 * The decode loop looks 12 bits up in the multi-symbol table (up to three
 * codes per lookup, df11k_multi_entry), takes df11_huff_decode_slow for
 * codes longer than 12 bits, and at a window's end keeps only the codes of
 * a lookup that start before the end (their lengths from code_len[]).
 *
 * Safety: df11_cuda_upload runs df11_parse on every tensor (header,
 * table, block starts nondecreasing and <= n_elems, gaps), then the count
 * launch, which rejects a stream that disagrees with its index anywhere.
 * Stream reads are clamped to the tensor's stream section and writes to
 * the job's range, so even a corrupt stream or offset table never reads or
 * writes out of bounds.
 */
#ifndef DF11_DECODE_KERNEL_H
#define DF11_DECODE_KERNEL_H

#include <stdint.h>
#include <string.h>

#include "codec/format.h"
#include "huffman/huffman.h"

/* Threads per CTA, log2 (5..8): CMake's DF11_CUDA_CTA_LOG2. A work item
 * holds at least this many windows. */
#ifndef DF11K_THREADS_LOG2
#define DF11K_THREADS_LOG2 7
#endif
#if DF11K_THREADS_LOG2 < 5 || DF11K_THREADS_LOG2 > 8
#error "DF11K_THREADS_LOG2 must be 5..8"
#endif
#define DF11K_THREADS (1u << DF11K_THREADS_LOG2) /* threads per CTA */
#define DF11K_TABLE_ENTRIES (1u << DF11_TABLE_BITS)
#define DF11K_PLAIN_ITEM_LOG2 12 /* raw/single: elements per work item */
#define DF11K_PLAIN_ITEM (1u << DF11K_PLAIN_ITEM_LOG2)
#define DF11K_MAX_JOBS 16 /* = DF11_CUDA_MAX_BATCH */

/* ------------------------------------------------- memory primitives */

/* Loads from the model (read-only for the kernel's lifetime) go through the
 * read-only data cache on the GPU. */
DF11_HD uint32_t df11k_ld32(const uint32_t *p)
{
#if defined(__CUDA_ARCH__)
	return __ldg(p);
#else
	return *p;
#endif
}

/* p is 8-byte aligned. */
DF11_HD uint64_t df11k_ld64(const uint8_t *p)
{
#if defined(__CUDA_ARCH__)
	return (uint64_t)__ldg((const unsigned long long *)p);
#else
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
#endif
}

/* 8 bytes from any address, as two aligned loads: no byte loads, and never
 * outside the two 8-byte words that hold [p, p + 8). */
DF11_HD uint64_t df11k_ld64_any(const uint8_t *p)
{
	uintptr_t a = (uintptr_t)p;
	const uint8_t *base = p - (a & 7u);
	unsigned sh = (unsigned)(a & 7u) * 8u;
	uint64_t lo = df11k_ld64(base);
	if (sh == 0)
		return lo;
	return (lo >> sh) | (df11k_ld64(base + 8) << (64u - sh));
}

/* 16 bytes from src to dst, both 16-byte aligned (model to shared
 * memory). */
DF11_HD void df11k_copy16(void *dst, const void *src)
{
#if defined(__CUDA_ARCH__)
	*(uint4 *)dst = __ldg((const uint4 *)src);
#else
	memcpy(dst, src, 16);
#endif
}

/* Four words to a 16-byte aligned address. */
DF11_HD void df11k_st128(uint16_t *p, const uint32_t w[4])
{
#if defined(__CUDA_ARCH__)
	*(uint4 *)p = make_uint4(w[0], w[1], w[2], w[3]);
#else
#if defined(DF11K_HOST_STORE_HOOK)
	DF11K_HOST_STORE_HOOK(p, 8);
#endif
	memcpy(p, w, 16);
#endif
}

DF11_HD void df11k_st16(uint16_t *p, uint16_t v)
{
#if !defined(__CUDA_ARCH__) && defined(DF11K_HOST_STORE_HOOK)
	DF11K_HOST_STORE_HOOK(p, 1);
#endif
	*p = v;
}

/* --------------------------------------------- launch parameters */

/* One tensor in device memory (host memory in the CPU test). Passed by
 * value in the kernel's parameters: no metadata read before the decode. */
typedef struct df11k_tensor {
	const uint32_t *multi;        /* [4096] df11k_multi_entry */
	const uint8_t *code_len;      /* [256] code length per exponent */
	const df11_huff_canon *canon; /* slow path for codes over 12 bits */
	const uint32_t *multi2;       /* staged kernel's lookup table
					 (decode_staged.h) */
	const uint8_t *block_starts;  /* u64 LE per block, 8-aligned */
	const uint8_t *gaps;          /* nibble per window */
	const uint8_t *plane;         /* sm plane; raw: the u16 words */
	const uint32_t *stream;       /* exponent bitstream, 16-aligned */
	const uint32_t *win_off;      /* [n_windows] element of each window's
					 first code, from its item's first
					 (made at upload by the count launch) */
	const uint32_t *run_off;      /* [n_runs] staged kernel's entry points
					 (decode_staged.h, made at upload) */
	uint64_t n_runs;              /* runs of 2^run_log2 bits */
	uint64_t stream_words;        /* 32-bit words readable at stream */
	uint64_t n_elems, stream_bits, n_windows, n_blocks;
	uint32_t codec, window_log2, block_log2, max_code_len;
	uint32_t single_exponent;
	uint32_t item_log2; /* huffman: windows per work item, log2 */
	uint32_t wpt_log2;  /* huffman: windows per thread, log2 */
	uint32_t run_log2;  /* huffman: bits per staged lane's run, log2 */
} df11k_tensor;

/* Decode elements [first, first + count) of t into dst[0..count). */
typedef struct df11k_job {
	df11k_tensor t;
	uint16_t *dst;
	uint64_t first, count;
	uint64_t item_lo;   /* first work item of t that the range touches */
	uint32_t n_items;   /* work items (CTAs) of this job */
	uint32_t item_base; /* CTA index of the job's first item */
	uint32_t vec_ok;    /* dst is 16-byte aligned: 16-byte stores */
	uint32_t reserved;
	uint32_t *win_off_out; /* count launch: where t.win_off is made */
} df11k_job;

/* A launch: CTA c works on job j's item (c - item_base) when
 * job[j].item_base <= c < job[j].item_base + job[j].n_items. */
typedef struct df11k_batch {
	uint32_t n_jobs, n_items;
	df11k_job job[DF11K_MAX_JOBS];
} df11k_batch;

/* Kernel parameters must stay under 4 KiB. */
#if defined(__cplusplus)
static_assert(sizeof(df11k_batch) <= 4000, "launch parameters too large");
#else
_Static_assert(sizeof(df11k_batch) <= 4000, "launch parameters too large");
#endif

/* Error bits the kernel ORs into the model's flag word. */
#define DF11K_ERR_INDEX 1u /* a stream disagrees with its index */

/* Entry of the kernel's multi-symbol table, looked up with the next 12
 * stream bits (built at upload by cuda/plan.c):
 *   31  30 29     24 23       16 15        8 7         0
 *   +-----+---------+-----------+-----------+-----------+
 *   |count|  bits   | symbol 3  | symbol 2  | symbol 1  |
 *   +-----+---------+-----------+-----------+-----------+
 * count (1..3) whole codes fit in the 12 bits; bits is their total length;
 * unused symbol bytes are zero. count 0: the first code is longer than 12
 * bits (df11_huff_decode_slow). */
DF11_HD uint32_t df11k_multi_entry(uint32_t syms, uint32_t bits, uint32_t count)
{
	return syms | (bits << 24) | (count << 30);
}

/* ----------------------------------------------------- index helpers */

DF11_HD uint64_t df11k_block_start(const df11k_tensor *t, uint64_t j)
{
	return j >= t->n_blocks ? t->n_elems : df11k_ld64(t->block_starts + 8 * j);
}

/* Bit position of the first code that starts in window k (stream_bits if
 * none does, or k is past the last window). */
DF11_HD uint64_t df11k_window_start(const df11k_tensor *t, uint64_t k)
{
	if (k >= t->n_windows)
		return t->stream_bits;
	uint32_t g = df11_gap(t->gaps, k);
	if (g == DF11_GAP_NONE)
		return t->stream_bits;
	return (k << t->window_log2) + g;
}

/* Elements [*lo, *hi) of huffman work item `item`. */
DF11_HD void df11k_item_elems(const df11k_tensor *t, uint64_t item,
			      uint64_t *lo, uint64_t *hi)
{
	unsigned bpi = t->item_log2 - t->block_log2; /* blocks per item, log2 */
	*lo = df11k_block_start(t, item << bpi);
	*hi = df11k_block_start(t, (item + 1) << bpi);
}

/* Windows [*ka, *kb) of thread tid in work item `item`. */
DF11_HD void df11k_thread_windows(const df11k_tensor *t, uint64_t item,
				  uint32_t tid, uint64_t *ka, uint64_t *kb)
{
	uint64_t a = (item << t->item_log2) + ((uint64_t)tid << t->wpt_log2);
	uint64_t b = a + ((uint64_t)1 << t->wpt_log2);
	*ka = a < t->n_windows ? a : t->n_windows;
	*kb = b < t->n_windows ? b : t->n_windows;
}

/* The job of CTA `cta` (jobs are in item_base order). */
DF11_HD uint32_t df11k_find_job(const df11k_batch *b, uint32_t cta)
{
	uint32_t j = 0;
	while (j + 1 < b->n_jobs && b->job[j + 1].item_base <= cta)
		j++;
	return j;
}

/* ----------------------------------------------------- output chunks */

/* Two BF16 words from two exponents (low 16 bits of e, a byte each) and two
 * sign|mantissa bytes (low 16 bits of s): df11_bf16_join on both halves. */
DF11_HD uint32_t df11k_join2(uint64_t e, uint64_t s)
{
	uint32_t e2 = (uint32_t)(e & 0xffu) | ((uint32_t)(e & 0xff00u) << 8);
	uint32_t s2 = (uint32_t)(s & 0xffu) | ((uint32_t)(s & 0xff00u) << 8);
	return ((s2 & 0x00800080u) << 8) | (e2 << 7) | (s2 & 0x007f007fu);
}

/* Where a decode writes: dst[i] receives element first + i, i in [0, count). */
typedef struct df11k_sink {
	uint16_t *dst;
	const uint8_t *sm; /* the sm plane advanced by first: sm[i] is dst[i]'s */
	int64_t count;
	int vec_ok;
} df11k_sink;

/* Writes lanes [lo, hi) of the 8-element chunk at dst index cb (a multiple
 * of 8, possibly negative or past the end for partial ranges); lane l's
 * exponent is byte l of e. Only elements inside [0, count) are written. */
DF11_HD void df11k_store_chunk(const df11k_sink *s, int64_t cb, uint64_t e,
			       uint32_t lo, uint32_t hi)
{
	if (lo == 0 && hi == 8 && s->vec_ok && cb >= 0 && cb + 8 <= s->count) {
		uint64_t m = df11k_ld64_any(s->sm + cb);
		uint32_t w[4];
		w[0] = df11k_join2(e, m);
		w[1] = df11k_join2(e >> 16, m >> 16);
		w[2] = df11k_join2(e >> 32, m >> 32);
		w[3] = df11k_join2(e >> 48, m >> 48);
		df11k_st128(s->dst + cb, w);
		return;
	}
	int64_t a = cb + (int64_t)lo, b = cb + (int64_t)hi;
	if (a < 0)
		a = 0;
	if (b > s->count)
		b = s->count;
	for (int64_t i = a; i < b; i++)
		df11k_st16(s->dst + i,
			   df11_bf16_join((uint32_t)(e >> (8 * (i - cb))) & 0xffu,
					  s->sm[i]));
}

/* ----------------------------------------------------- the decode loop */

/* Decodes the codes that start in windows [ka, kb) of t and sets *bad
 * unless the last one ends exactly where window kb's first code starts.
 * Without a sink it only counts them. With a sink, the first code goes to
 * dst index q0 of the sink and each code's BF16 word follows; it returns
 * early (without the check) once past the sink's range. Returns the number
 * of codes. multi and len are the tensor's tables (in shared memory on the
 * GPU). */
DF11_HD uint32_t df11k_decode_windows(const df11k_tensor *t,
				      const uint32_t *multi, const uint8_t *len,
				      uint64_t ka, uint64_t kb,
				      const df11k_sink *sink, int64_t q0,
				      uint32_t *bad)
{
	/* Positions relative to the thread's first window fit 32 bits: a
	 * thread owns at most 2^(DF11_MAX_BLOCK_BITS_LOG2 - 6) bits, or one
	 * window of at most 2^16. base is a multiple of 64. */
	const uint64_t base = ka << t->window_log2;
	uint64_t end64 = kb << t->window_log2;
	if (end64 > t->stream_bits)
		end64 = t->stream_bits;
	const uint64_t start64 = df11k_window_start(t, ka);
	const uint64_t expect = df11k_window_start(t, kb);
	const uint32_t end = end64 > base ? (uint32_t)(end64 - base) : 0u;
	uint32_t pos = start64 < end64 ? (uint32_t)(start64 - base) : end;
	uint32_t n = 0;

	/* Bit reader: buf holds stream bits [pos, pos + nb), LSB first; the
	 * bits above nb are zero. Words past the stream section read as 0. */
	const uint64_t w0 = base >> 5;
	const uint32_t *words = t->stream + (w0 < t->stream_words ? w0 : 0);
	const uint64_t left = w0 < t->stream_words ? t->stream_words - w0 : 0;
	const uint32_t n_words = left < 0xffffffffu ? (uint32_t)left : 0xffffffffu;
	uint32_t w = pos >> 5;
	uint64_t buf = 0;
	uint32_t nb = 0;
	if (pos < end) {
		buf = (w < n_words ? df11k_ld32(words + w) : 0u) >> (pos & 31u);
		nb = 32u - (pos & 31u);
		w++;
	}

	/* Sink state: the current chunk starts at dst index cb; lanes
	 * [lo, fill) of acc hold exponents decoded into it so far. */
	int64_t cb = 0;
	uint32_t lo = 0, fill = 0;
	uint64_t acc = 0;
	if (sink) {
		cb = q0 >= 0 ? (q0 & ~(int64_t)7) : -((-q0 + 7) & ~(int64_t)7);
		lo = fill = (uint32_t)(q0 - cb);
	}

	while (pos < end) {
		if (nb < 32) {
			uint32_t v = w < n_words ? df11k_ld32(words + w) : 0u;
			buf |= (uint64_t)v << nb;
			nb += 32;
			w++;
		}
		/* Entry layout: df11k_multi_entry. */
		uint32_t e = multi[buf & (DF11K_TABLE_ENTRIES - 1u)];
		uint32_t c = e >> 30, used = (e >> 24) & 63u, syms = e & 0xffffffu;
		if (c == 0) {
			/* The first code is longer than the table. */
			uint32_t x = df11_huff_decode_slow(t->canon, buf,
							   t->max_code_len);
			syms = x & 0xffu;
			used = x >> 8;
			c = 1;
		} else if (pos + used > end) {
			/* Window end: keep the codes that start before it. */
			uint32_t l = len[syms & 0xffu], k = 1;
			if (c > 1 && pos + l < end) {
				l += len[(syms >> 8) & 0xffu];
				k = 2;
				if (c > 2 && pos + l < end) {
					l += len[syms >> 16];
					k = 3;
				}
			}
			syms &= 0xffffffu >> (8 * (3 - k));
			c = k;
			used = l;
		}
		if (used == 0 || used > nb) {
			/* No progress: a table overwritten in device memory
			 * (impossible for a validated one). Flag and stop. */
			*bad = 1;
			return n;
		}
		n += c;
		buf >>= used;
		nb -= used;
		pos += used;
		if (sink) {
			/* Append c exponents; flush when the chunk is full. The
			 * unused symbol bytes of a table entry are zero. */
			acc |= (uint64_t)syms << (8 * fill);
			uint32_t nf = fill + c;
			if (nf >= 8) {
				df11k_store_chunk(sink, cb, acc, lo, 8);
				/* fill >= 5 here, so the shift is 8..24 */
				acc = (uint64_t)syms >> (8 * (8 - fill));
				nf -= 8;
				lo = 0;
				cb += 8;
				if (cb >= sink->count)
					return n; /* past the range */
			}
			fill = nf;
		}
	}
	if (sink && fill > lo)
		df11k_store_chunk(sink, cb, acc, lo, fill);
	if ((start64 < end64 ? base + pos : start64) != expect)
		*bad = 1;
	return n;
}

/* ------------------------------------------------- per-thread steps */

/* Shared memory of a CTA (huffman items). 16-byte aligned: the tables
 * arrive as 16-byte vectors. */
#if defined(__cplusplus)
#define DF11K_ALIGNAS16 alignas(16)
#else
#define DF11K_ALIGNAS16 _Alignas(16)
#endif
typedef struct df11k_smem {
	DF11K_ALIGNAS16 uint32_t multi[DF11K_TABLE_ENTRIES];
	uint8_t len[256];
	uint32_t warp_sum[DF11K_THREADS / 32]; /* the scan's warp totals */
} df11k_smem;

/* Thread tid's share of copying the tables into shared memory: 16-byte
 * pieces, coalesced. */
DF11_HD void df11k_load_tables(const df11k_tensor *t, df11k_smem *sh,
			       uint32_t tid)
{
	const uint32_t n_multi = DF11K_TABLE_ENTRIES * 4 / 16, n_len = 256 / 16;
	for (uint32_t i = tid; i < n_multi + n_len; i += DF11K_THREADS) {
		const uint8_t *src = i < n_multi ? (const uint8_t *)t->multi + 16 * i
						 : t->code_len + 16 * (i - n_multi);
		uint8_t *dst = i < n_multi ? (uint8_t *)sh->multi + 16 * i
					   : sh->len + 16 * (i - n_multi);
		df11k_copy16(dst, src);
	}
}

/* ---- The count launch, once per tensor at upload (df11_cuda_upload).
 * It validates the whole index against the stream and records where each
 * window's codes go, so that decodes need one pass and no scan. */

/* Thread tid counts the codes of each of its windows into out[k] (checking
 * the index at every window boundary) and returns their sum. */
DF11_HD uint32_t df11k_count(const df11k_tensor *t, const df11k_smem *sh,
			     uint64_t item, uint32_t tid, uint32_t *out,
			     uint32_t *bad)
{
	uint64_t ka, kb;
	uint32_t total = 0;
	df11k_thread_windows(t, item, tid, &ka, &kb);
	for (uint64_t k = ka; k < kb; k++) {
		uint32_t c = df11k_decode_windows(t, sh->multi, sh->len, k, k + 1,
						  NULL, 0, bad);
		out[k] = c;
		total += c;
	}
	return total;
}

/* After the scan, thread tid's check of the index: 1 if the item's code
 * count (total) disagrees with block_starts, or if the thread's first
 * window begins a block whose start is not where the thread's first code
 * goes (offset). Covers every block start, also inside items of several
 * blocks. */
DF11_HD uint32_t df11k_check(const df11k_tensor *t, uint64_t item, uint32_t tid,
			     uint32_t offset, uint32_t total)
{
	uint64_t lo, hi, ka, kb;
	df11k_item_elems(t, item, &lo, &hi);
	if (total != hi - lo)
		return 1;
	df11k_thread_windows(t, item, tid, &ka, &kb);
	uint64_t block_mask = ((uint64_t)1 << t->block_log2) - 1;
	if (ka < t->n_windows && (ka & block_mask) == 0 &&
	    df11k_block_start(t, ka >> t->block_log2) != lo + offset)
		return 1;
	return 0;
}

/* Then thread tid turns its windows' counts into offsets from the item's
 * first element; offset is its exclusive scan result. */
DF11_HD void df11k_count_finish(const df11k_tensor *t, uint64_t item,
				uint32_t tid, uint32_t offset, uint32_t *out)
{
	uint64_t ka, kb;
	df11k_thread_windows(t, item, tid, &ka, &kb);
	for (uint64_t k = ka; k < kb; k++) {
		uint32_t c = out[k];
		out[k] = offset;
		offset += c;
	}
}

/* ---- A decode launch. */

/* Element index of window k's first code, k in [first window of the item,
 * first window of the next item]. */
DF11_HD uint64_t df11k_window_elem(const df11k_tensor *t, uint64_t item,
				   uint64_t lo, uint64_t hi, uint64_t k)
{
	if (k >= t->n_windows || k >= ((item + 1) << t->item_log2))
		return hi;
	return lo + df11k_ld32(t->win_off + k);
}

/* Thread tid's part of a decode: the codes of its windows that fall in the
 * job's range, from the first window that reaches into it. Returns 1 if
 * the stream disagrees with its index (cannot happen after a successful
 * upload unless device memory was overwritten). */
DF11_HD uint32_t df11k_decode(const df11k_job *J, const df11k_smem *sh,
			      uint64_t item, uint32_t tid)
{
	const df11k_tensor *t = &J->t;
	uint64_t lo, hi, ka, kb;
	df11k_item_elems(t, item, &lo, &hi);
	df11k_thread_windows(t, item, tid, &ka, &kb);
	const uint64_t want_lo = J->first, want_hi = J->first + J->count;
	uint64_t a = df11k_window_elem(t, item, lo, hi, ka);
	uint64_t b = df11k_window_elem(t, item, lo, hi, kb);
	if (ka >= kb || a >= b || a >= want_hi || b <= want_lo)
		return 0; /* no codes, or none in the range */
	while (ka + 1 < kb) { /* skip windows wholly before the range */
		uint64_t s = df11k_window_elem(t, item, lo, hi, ka + 1);
		if (s > want_lo)
			break;
		ka++;
		a = s;
	}
	df11k_sink s = {J->dst, t->plane + J->first, (int64_t)J->count,
			(int)J->vec_ok};
	uint32_t bad = 0;
	df11k_decode_windows(t, sh->multi, sh->len, ka, kb, &s,
			     (int64_t)a - (int64_t)J->first, &bad);
	return bad;
}

/* Raw and single-exponent tensors: thread tid's share of item's elements,
 * strided so that each warp access is coalesced. */
DF11_HD void df11k_plain(const df11k_job *J, uint64_t item, uint32_t tid)
{
	const df11k_tensor *t = &J->t;
	uint64_t a = item << DF11K_PLAIN_ITEM_LOG2;
	uint64_t b = a + DF11K_PLAIN_ITEM;
	if (b > J->count)
		b = J->count;
	for (uint64_t i = a + tid; i < b; i += DF11K_THREADS) {
		uint64_t x = J->first + i;
		uint16_t v = t->codec == DF11_CODEC_RAW
				     ? df11_rd16(t->plane + 2 * x)
				     : df11_bf16_join(t->single_exponent, t->plane[x]);
		df11k_st16(J->dst + i, v);
	}
}

#endif /* DF11_DECODE_KERNEL_H */
