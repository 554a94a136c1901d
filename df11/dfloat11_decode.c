/*
 * Decoding official DFloat11 groups on the CPU.
 *
 * The stream is decoded with the kernel's own lookup (dfl_lookup), so a
 * group decodes here exactly as on the GPU. Up to four codes at a time
 * come from one 2^12-entry table (32 KiB, a level-1 data cache's size)
 * indexed by the next 12 stream bits:
 *
 *   bits  0..31 symbols 1..4 (8 bits each)
 *        32..47 where codes 1..4 end, in bits from the entry's start (4
 *               bits each, 1..12)
 *        48..50 codes in the entry: 0 = the first needs more than the 12
 *               bits (walk the LUTs), 1..4
 *        52..55 where the last code ends (the entry's length)
 *
 * A code is taken into an entry only when the kernel's lookup of it
 * depends on the entry's bits alone: every 8-bit field it reads is either
 * inside the 12 bits or, where it runs past them, gives the same symbol
 * whatever the missing bits are; and the code ends inside the 12 bits.
 * So an entry is what the kernel decodes from any bits that follow, even
 * from LUTs no writer would make.
 *
 * Each time a code start crosses into a new chunk (64 bits) its offset is
 * checked against the chunk's gap: the entry's code ends say which of its
 * codes is the first to start there. Codes are taken one at a time only
 * where a block ends, near the stream's end and for codes over 12 bits.
 *
 * Blocks (4096 stream bytes) decode independently: block b starts at bit
 * 32768 b + gap[512 b] with element output_positions[b]. While decoding,
 * each time a code start crosses into chunk t (64 bits), its offset must
 * equal gap[t]; a block must end exactly where the next one's first code
 * starts, with output_positions[b + 1] elements behind it; the last code
 * must end in the last stream byte. So gaps and output_positions are
 * checked for every block that is read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11/dfloat11.h"
#include "df11/dfloat11_format.h"
#include "common/error.h"
#include "codec/format.h"
#include "codec/codec_util.h" /* little-endian hosts only */
#include "common/parallel.h"

#define FAST_BITS 12
#define MAX_WORKERS 64

static uint64_t op_at(const df11_dfl_group *g, uint64_t b)
{
	return df11_rd32(g->op + 4 * b);
}

/* Element index where block b's elements end. */
static uint64_t block_end(const df11_dfl_group *g, uint64_t b)
{
	return b + 1 < g->blocks ? op_at(g, b + 1) : g->n;
}

static df11_result check_luts(const df11_dfl_group *g, const char *label)
{
	const uint8_t *lens = g->luts + 256u * (g->n_luts - 1);
	for (unsigned v = 0; v < 256; v++)
		if (lens[v] > DFL_MAX_CODE_LEN)
			return df11_fail(DF11_BAD_DATA, "%s: group %s: exponent %u "
					 "has a %u-bit code (at most %u)", label,
					 g->name, v, lens[v], DFL_MAX_CODE_LEN);
	/* Depth of each table below the root (-1: not reached), breadth
	 * first: the root is row 0, pointers name rows 1..n_luts-2. */
	int level[DFL_MAX_LUTS];
	unsigned queue[DFL_MAX_LUTS], qn = 0;
	for (unsigned r = 0; r < g->n_luts; r++)
		level[r] = -1;
	level[0] = 0;
	queue[qn++] = 0;
	for (unsigned qi = 0; qi < qn; qi++) {
		unsigned r = queue[qi];
		const uint8_t *row = g->luts + 256u * r;
		for (unsigned x = 0; x < 256; x++) {
			unsigned v = row[x];
			if (v < DFL_PTR_MIN) {
				if (!lens[v])
					return df11_fail(DF11_BAD_DATA, "%s: group %s: "
							 "table %u entry %u: exponent "
							 "%u has no code (zero length)",
							 label, g->name, r, x, v);
				continue;
			}
			unsigned to = 256 - v;
			if (to > g->n_luts - 2)
				return df11_fail(DF11_BAD_DATA, "%s: group %s: table "
						 "%u entry %u points to table %u, "
						 "past the %u tables", label,
						 g->name, r, x, to, g->n_luts - 2);
			if (level[r] + 1 >= (int)DFL_MAX_LEVELS)
				return df11_fail(DF11_BAD_DATA, "%s: group %s: table "
						 "%u entry %u: codes longer than "
						 "%u bits", label, g->name, r, x,
						 DFL_MAX_CODE_LEN);
			if (level[to] < 0) {
				level[to] = level[r] + 1;
				queue[qn++] = to;
			} else if (level[to] != level[r] + 1) {
				return df11_fail(DF11_BAD_DATA, "%s: group %s: table "
						 "%u is reached at two depths", label,
						 g->name, to);
			}
		}
	}
	return DF11_OK;
}

df11_result df11_dfl_group_check(const df11_dfl_group *g, const char *label)
{
	const char *gn = g->name;
	if (g->n_luts < 2 || g->n_luts > DFL_MAX_LUTS)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: %u lookup tables "
				 "(2..%u: root, at most %u sub-tables, lengths)",
				 label, gn, g->n_luts, DFL_MAX_LUTS,
				 DFL_MAX_SUBTABLES);
	if (g->n == 0 || g->n > UINT32_MAX || g->n_bytes == 0 ||
	    g->n > 8 * g->n_bytes)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: %llu elements in "
				 "%llu stream bytes", label, gn,
				 (unsigned long long)g->n,
				 (unsigned long long)g->n_bytes);
	uint64_t blocks = (g->n_bytes + DFL_BLOCK_BYTES - 1) / DFL_BLOCK_BYTES;
	if (g->blocks != blocks || g->gaps_size != DFL_GAP_BYTES_PER_BLOCK * blocks)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: %llu bytes of gaps, "
				 "the %llu-byte stream needs %llu", label, gn,
				 (unsigned long long)g->gaps_size,
				 (unsigned long long)g->n_bytes,
				 (unsigned long long)(DFL_GAP_BYTES_PER_BLOCK *
						      blocks));
	if (g->n_op != blocks && g->n_op != blocks + 1)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: %llu output "
				 "positions for %llu blocks", label, gn,
				 (unsigned long long)g->n_op,
				 (unsigned long long)blocks);
	/* Strictly increasing while below n (every block before the end
	 * holds code starts: codes are at most 32 bits), then n; a block
	 * holds at most one code start per bit. */
	uint64_t prev = 0;
	for (uint64_t b = 0; b < g->n_op; b++) {
		uint64_t p = op_at(g, b);
		int ok = b == 0 ? p == 0
				: (prev < g->n ? p > prev : p == g->n) &&
					  p - prev <= DFL_BLOCK_BITS;
		if (!ok || p > g->n || (b == blocks && p != g->n))
			return df11_fail(DF11_BAD_DATA, "%s: group %s: output "
					 "position %llu is %llu (previous %llu, "
					 "%llu elements)", label, gn,
					 (unsigned long long)b,
					 (unsigned long long)p,
					 (unsigned long long)prev,
					 (unsigned long long)g->n);
		prev = p;
	}
	if (g->n - prev > DFL_BLOCK_BITS)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: the last block "
				 "would hold %llu elements", label, gn,
				 (unsigned long long)(g->n - prev));
	prev = 0;
	for (uint64_t k = 0; k < g->n_split; k++) {
		uint64_t s = df11_rd64(g->split + 8 * k);
		if (s <= prev || s >= g->n)
			return df11_fail(DF11_BAD_DATA, "%s: group %s: split "
					 "position %llu is %lld (after %llu, of %llu "
					 "elements)", label, gn,
					 (unsigned long long)k, (long long)s,
					 (unsigned long long)prev,
					 (unsigned long long)g->n);
		prev = s;
	}
	return check_luts(g, label);
}

/* The kernel's lookup of the code at bit o of the FAST_BITS-bit index x,
 * if it depends on x's bits alone (see the top). Returns the length, 0 if
 * not. */
static unsigned resolve(const df11_dfl_group *g, uint32_t x, unsigned o,
			unsigned *sym)
{
	const uint8_t *row = g->luts;
	for (unsigned k = 0; k < DFL_MAX_LEVELS; k++) {
		unsigned at = o + 8 * k;
		if (at >= FAST_BITS)
			return 0;
		unsigned known = FAST_BITS - at < 8 ? FAST_BITS - at : 8;
		unsigned field = ((x << at) & ((1u << FAST_BITS) - 1)) >>
				 (FAST_BITS - known) << (8 - known);
		unsigned v = row[field];
		for (unsigned c = 1; c < 1u << (8 - known); c++)
			if (row[field | c] != v)
				return 0;
		if (v < DFL_PTR_MIN) {
			*sym = v;
			return g->luts[256u * (g->n_luts - 1) + v];
		}
		if (known < 8)
			return 0;
		row = g->luts + 256u * (256u - v);
	}
	return 0;
}

static df11_result build_fast(df11_dfl_group *g)
{
	if (g->fast)
		return DF11_OK;
	uint64_t *t = malloc(sizeof *t << FAST_BITS);
	if (!t)
		return df11_fail(DF11_NOMEM, "decode table of %s", g->name);
	for (uint32_t x = 0; x < 1u << FAST_BITS; x++) {
		uint64_t e = 0;
		unsigned used = 0, cnt = 0, sym, len;
		while (cnt < 4 && (len = resolve(g, x, used, &sym)) &&
		       used + len <= FAST_BITS) {
			used += len;
			e |= (uint64_t)sym << (8 * cnt) |
			     (uint64_t)used << (32 + 4 * cnt);
			cnt++;
		}
		t[x] = e | (uint64_t)cnt << 48 | (uint64_t)used << 52;
	}
	g->fast = t;
	return DF11_OK;
}

/* The 32 stream bits from bit pos; bytes past the stream read as zero, as
 * in the kernel. */
static inline uint32_t peek32(const uint8_t *s, uint64_t nb, uint64_t pos)
{
	uint64_t i = pos >> 3, w = 0;
	if (i + 8 <= nb) {
		memcpy(&w, s + i, 8);
		w = __builtin_bswap64(w);
	} else {
		for (int k = 0; k < 8; k++)
			w = w << 8 | (i + (uint64_t)k < nb ? s[i + (uint64_t)k] : 0);
	}
	return (uint32_t)((w << (pos & 7)) >> 32);
}

typedef struct block_err {
	df11_result r;
	char msg[256];
} block_err;

static df11_result berr(block_err *err, const df11_dfl_group *g, uint64_t b,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static df11_result berr(block_err *err, const df11_dfl_group *g, uint64_t b,
			const char *fmt, ...)
{
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(err->msg, sizeof err->msg, "group %s: block %llu: %s", g->name,
		 (unsigned long long)b, what);
	return err->r = DF11_BAD_DATA;
}

/* A block being decoded. Its exponents go to x[e - e0], then joined with
 * their sign|mantissa bytes, those that fall in [lo, hi) to dst[e - lo]:
 * the decoding loop stores four exponents with one store and the join
 * is a loop the compiler vectorizes. */
#define BLOCK_X_SIZE (DFL_BLOCK_BITS + 8) /* a block holds at most a code
					     start per bit */
typedef struct bstate {
	uint8_t *x;            /* [BLOCK_X_SIZE] */
	uint64_t b, e0, e, end, pos;
	uint64_t t, next;      /* the chunk a code start may cross into next,
				  and its first bit */
	uint64_t last_t;       /* the next block's first chunk */
	uint64_t fast_hi;
	int crossed;
} bstate;

/* Sets S up for block b; *skip when no code starts in it (checked by the
 * block that reached n). */
static df11_result block_begin(const df11_dfl_group *g, uint64_t b,
			       uint8_t *x, bstate *S, int *skip, block_err *err)
{
	uint64_t e = op_at(g, b), end = block_end(g, b), n = g->n;
	*skip = e == n;
	if (*skip)
		return DF11_OK;
	if (e == end)
		return berr(err, g, b, "no element (of %llu) starts in it",
			    (unsigned long long)n);
	if (b == 0 && dfl_gap(g->gaps, g->gaps_size, 0) != 0)
		return berr(err, g, b, "the first gap is %u, not 0",
			    dfl_gap(g->gaps, g->gaps_size, 0));
	uint64_t t = b * DFL_THREADS_PER_BLOCK;
	/* The block's sign|mantissa bytes, wanted by the join once it is
	 * decoded: fetched meanwhile. */
	for (uint64_t k = 0; k < end - e; k += 64)
		__builtin_prefetch(g->sm + e + k);
	S->x = x;
	S->b = b;
	S->e0 = S->e = e;
	S->end = end;
	S->last_t = t + DFL_THREADS_PER_BLOCK;
	S->pos = t * DFL_CHUNK_BITS + dfl_gap(g->gaps, g->gaps_size, t);
	S->next = (t + 1) * DFL_CHUNK_BITS;
	S->t = t + 1;
	S->crossed = 0;
	/* Whole entries while sixteen more elements remain (four
	 * entries); the last element of the group never takes one (what
	 * follows it is padding, not a code start). */
	S->fast_hi = end == n ? end - 1 : end;
	return DF11_OK;
}

/* Whether block_fast may run (it then takes up to four entries). */
static inline int fast_ok(const df11_dfl_group *g, const bstate *S)
{
	return S->e + 16 <= S->fast_hi && (S->pos >> 3) + 8 <= g->n_bytes;
}

/* Up to four whole entries (at most 48 bits, one 8-byte load). Returns
 * 1 if it took all four, 0 if it stopped (at a code over 12 bits or a
 * block's end: block_slow goes on), -1 on bad data. */
static inline __attribute__((always_inline)) int
block_fast(const df11_dfl_group *g, bstate *S, block_err *err)
{
	const uint64_t *fast = g->fast;
	uint8_t *x = S->x - S->e0;
	uint64_t pos = S->pos, e = S->e;
	uint64_t w = __builtin_bswap64(df11_load64(g->stream + (pos >> 3)))
		     << (pos & 7);
	int done = 1;
	for (unsigned u = 0; u < 4; u++) {
		uint64_t f = fast[w >> (64 - FAST_BITS)];
		unsigned cnt = (unsigned)(f >> 48) & 7;
		unsigned total = (unsigned)(f >> 52);
		if (!cnt) {
			done = 0;
			break;
		}
		if (pos + total >= S->next) {
			/* A code start crosses into chunk t: the first of
			 * the entry's codes 2..cnt and the next entry's
			 * first to start there (code k + 1, k < cnt). */
			uint64_t t = S->t;
			if (t >= S->last_t || t >= (g->n_bytes + 7) / 8) {
				done = 0;
				break;
			}
			unsigned need = (unsigned)(S->next - pos), k = 0,
				 c = (unsigned)(f >> 32) & 15;
			while (c < need)
				c = (unsigned)(f >> (32 + 4 * ++k)) & 15;
			unsigned gap = dfl_gap(g->gaps, g->gaps_size, t);
			if (c - need != gap) {
				berr(err, g, S->b, "a code starts at bit %u of "
				     "chunk %llu, its gap says %u", c - need,
				     (unsigned long long)t, gap);
				return -1;
			}
			S->t = t + 1;
			S->next += DFL_CHUNK_BITS;
		}
		/* The four symbols (those past cnt are overwritten by the
		 * next entry). */
		uint32_t sym4 = (uint32_t)f;
		memcpy(x + e, &sym4, 4);
		e += cnt;
		pos += total;
		w <<= total;
	}
	S->pos = pos;
	S->e = e;
	return done;
}

/* One code, with every check. */
static df11_result block_slow(const df11_dfl_group *g, bstate *S,
			      block_err *err)
{
	uint64_t n = g->n, nb = g->n_bytes, n_chunks = (nb + 7) / 8;
	uint32_t w = peek32(g->stream, nb, S->pos);
	uint64_t f = g->fast[w >> (32 - FAST_BITS)];
	unsigned sym, len;
	if ((f >> 48) & 7) {
		sym = (unsigned)f & 255;
		len = (unsigned)(f >> 32) & 15;
	} else {
		sym = dfl_lookup(g->luts, g->n_luts, w, &len);
	}
	uint64_t e = S->e, b = S->b;
	S->x[e - S->e0] = (uint8_t)sym;
	S->e = ++e;
	S->pos += len;
	uint64_t pos = S->pos, next = S->next, t = S->t;
	if (pos < next)
		return DF11_OK;
	/* A code starts at pos (unless the stream ended byte-aligned) in
	 * chunk t. */
	int starts = e < n || pos % 8;
	if (t == S->last_t) {
		if (e != S->end)
			return berr(err, g, b, "its element %llu starts past the "
				    "block (%llu expected)",
				    (unsigned long long)(e - 1),
				    (unsigned long long)S->end);
		S->crossed = 1;
	}
	if (starts && t >= n_chunks && e < n)
		return berr(err, g, b, "element %llu starts past the %llu-byte "
			    "stream", (unsigned long long)e,
			    (unsigned long long)nb);
	if (starts && t < n_chunks) {
		unsigned gap = dfl_gap(g->gaps, g->gaps_size, t);
		if (pos - next != gap)
			return berr(err, g, b, "a code starts at bit %llu of "
				    "chunk %llu, its gap says %u",
				    (unsigned long long)(pos - next),
				    (unsigned long long)t, gap);
	}
	S->t = t + 1;
	S->next = next + DFL_CHUNK_BITS;
	return DF11_OK;
}

DF11_HOT static void join_planes(const uint8_t *restrict x,
				 const uint8_t *restrict sm, uint64_t n,
				 uint16_t *restrict dst)
{
	for (uint64_t i = 0; i < n; i++)
		dst[i] = dfl_join(x[i], sm[i]);
}

/* The rest of the block, then its end checks and the join. */
static df11_result block_finish(const df11_dfl_group *g, bstate *S,
				uint64_t lo, uint64_t hi, uint16_t *dst,
				block_err *err)
{
	while (S->e < S->end) {
		while (fast_ok(g, S)) {
			int k = block_fast(g, S, err);
			if (k < 0)
				return err->r;
			if (!k)
				break;
		}
		if (S->e < S->end && block_slow(g, S, err))
			return err->r;
	}
	if (S->end == g->n) {
		if ((S->pos + 7) / 8 != g->n_bytes)
			return berr(err, g, S->b, "the last code ends at bit %llu "
				    "of a %llu-byte stream",
				    (unsigned long long)S->pos,
				    (unsigned long long)g->n_bytes);
	} else if (!S->crossed) {
		return berr(err, g, S->b, "its last element ends at bit %llu, "
			    "before element %llu starts",
			    (unsigned long long)S->pos,
			    (unsigned long long)S->end);
	}
	uint64_t a = S->e0 > lo ? S->e0 : lo, z = S->end < hi ? S->end : hi;
	if (a < z)
		join_planes(S->x + (a - S->e0), g->sm + a, z - a, dst + (a - lo));
	return DF11_OK;
}

/* Blocks b and c side by side (two independent chains of table lookups
 * hide each other's latency), then each to its end. */
static df11_result decode_two(const df11_dfl_group *g, uint64_t b, uint64_t c,
			      uint64_t lo, uint64_t hi, uint16_t *dst,
			      block_err *err)
{
	uint8_t xa[BLOCK_X_SIZE], xb[BLOCK_X_SIZE];
	bstate A, B;
	int skip_a, skip_b;
	if (block_begin(g, b, xa, &A, &skip_a, err) ||
	    block_begin(g, c, xb, &B, &skip_b, err))
		return err->r;
	while (!skip_a && !skip_b && A.e + 16 <= A.fast_hi &&
	       B.e + 16 <= B.fast_hi) {
		int ka = fast_ok(g, &A) ? block_fast(g, &A, err) : 0;
		int kb = fast_ok(g, &B) ? block_fast(g, &B, err) : 0;
		if (ka < 0 || kb < 0)
			return err->r;
		if ((!ka && block_slow(g, &A, err)) ||
		    (!kb && block_slow(g, &B, err)))
			return err->r;
	}
	if (!skip_a && block_finish(g, &A, lo, hi, dst, err))
		return err->r;
	if (!skip_b && block_finish(g, &B, lo, hi, dst, err))
		return err->r;
	return DF11_OK;
}

typedef struct range_job {
	const df11_dfl_group *g;
	uint64_t b0, nblocks, lo, hi;
	uint16_t *dst;
	int workers;
	block_err *err;
} range_job;

static void range_worker(void *arg, int i)
{
	range_job *j = arg;
	uint64_t per = (j->nblocks + (uint64_t)j->workers - 1) / (uint64_t)j->workers;
	uint64_t a = (uint64_t)i * per, z = a + per;
	if (z > j->nblocks)
		z = j->nblocks;
	/* Two blocks at a time: a and the one half way to z, so that
	 * each pair's blocks are far apart in the stream. */
	uint64_t half = (z - a) / 2;
	for (uint64_t b = a; b < a + half; b++)
		if (decode_two(j->g, j->b0 + b, j->b0 + b + half, j->lo, j->hi,
			       j->dst, &j->err[i]))
			return;
	if ((z - a) % 2) {
		uint8_t x[BLOCK_X_SIZE];
		bstate S;
		int skip;
		uint64_t b = j->b0 + z - 1;
		if (block_begin(j->g, b, x, &S, &skip, &j->err[i]) ||
		    (!skip && block_finish(j->g, &S, j->lo, j->hi, j->dst,
					   &j->err[i])))
			return;
	}
}

/* The block that holds element x (x < n). */
static uint64_t block_of(const df11_dfl_group *g, uint64_t x)
{
	uint64_t lo = 0, hi = g->blocks; /* op[lo] <= x < op[hi] */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (op_at(g, mid) <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

df11_result df11_dfl_group_decode(df11_dfl_group *g, uint64_t first,
				  uint64_t count, uint16_t *dst, int threads,
				  const char *label)
{
	if (first > g->n || count > g->n - first)
		return df11_fail(DF11_INVALID_ARG, "%s: group %s: elements [%llu, "
				 "+%llu) of %llu", label, g->name,
				 (unsigned long long)first,
				 (unsigned long long)count,
				 (unsigned long long)g->n);
	if (count == 0)
		return DF11_OK;
	df11_result r = build_fast(g);
	if (r)
		return r;
	uint64_t b0 = block_of(g, first), b1 = block_of(g, first + count - 1);
	/* The block where the last element's code ends may hold the check
	 * of that end (the next block's first gap) only: decoding b1 covers
	 * it. */
	range_job j = {.g = g, .b0 = b0, .nblocks = b1 - b0 + 1, .lo = first,
		       .hi = first + count, .dst = dst};
	/* A worker per four blocks at least, at most MAX_WORKERS: the
	 * error slots live on the stack (decoding does not allocate once
	 * the table is built). */
	block_err err[MAX_WORKERS];
	uint64_t workers = j.nblocks / 4;
	if (workers > (uint64_t)threads)
		workers = (uint64_t)threads;
	if (workers > MAX_WORKERS)
		workers = MAX_WORKERS;
	j.workers = workers < 1 ? 1 : (int)workers;
	memset(err, 0, (size_t)j.workers * sizeof *err);
	j.err = err;
	df11_parallel_run(j.workers, range_worker, &j);
	for (int i = 0; i < j.workers; i++)
		if (err[i].r)
			return df11_fail(err[i].r, "%s: %s", label, err[i].msg);
	return DF11_OK;
}

df11_result df11_dfl_decode_reference(const df11_dfl_group *g, uint16_t *dst,
				      const char *label)
{
	uint64_t pos = 0;
	for (uint64_t i = 0; i < g->n; i++) {
		unsigned len;
		unsigned v = dfl_lookup(g->luts, g->n_luts,
					peek32(g->stream, g->n_bytes, pos), &len);
		if (len == 0)
			return df11_fail(DF11_BAD_DATA, "%s: group %s: element "
					 "%llu: no code at bit %llu", label,
					 g->name, (unsigned long long)i,
					 (unsigned long long)pos);
		dst[i] = dfl_join(v, g->sm[i]);
		pos += len;
	}
	if ((pos + 7) / 8 != g->n_bytes)
		return df11_fail(DF11_BAD_DATA, "%s: group %s: the codes take %llu "
				 "bits, the stream has %llu bytes", label,
				 g->name, (unsigned long long)pos,
				 (unsigned long long)g->n_bytes);
	return DF11_OK;
}

void df11_dfl_group_release(df11_dfl_group *g)
{
	free(g->fast);
	free(g->name);
	g->fast = NULL;
	g->name = NULL;
}
