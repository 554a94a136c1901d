/*
 * Decoding official DFloat11 groups on the CPU.
 *
 * The stream is decoded with the kernel's own lookup (dfl_lookup), so a
 * group decodes here exactly as on the GPU. Up to four lookups at a time
 * come from one 2^16-entry table built from the LUTs:
 *
 *   bits  0..31 symbols 1..4 (8 bits each)
 *        32..37 length of the first code (1..32)
 *        38..43 length of all the entry's codes
 *        44..46 codes in the entry: 0 = needs more than 16 bits (walk the
 *               LUTs), 1..4
 *
 * A further symbol is taken only while the codes before it are at most 8
 * bits in all, so that every lookup reads bits inside the 16-bit index, as
 * the kernel would. Whole entries are taken while no code of theirs ends
 * at a chunk boundary (where gaps are checked); otherwise codes are taken
 * one at a time.
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
#include "common/parallel.h"

#define FAST_BITS 16
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

static df11_result build_fast(df11_dfl_group *g)
{
	if (g->fast)
		return DF11_OK;
	uint64_t *t = malloc(sizeof *t << FAST_BITS);
	if (!t)
		return df11_fail(DF11_NOMEM, "decode table of %s", g->name);
	const uint8_t *lens = g->luts + 256u * (g->n_luts - 1);
	for (uint32_t i = 0; i < 1u << FAST_BITS; i++) {
		/* The index's bits, MSB first, as the top of a 16-bit word. */
		uint32_t x = i << (16 - FAST_BITS);
		unsigned v = g->luts[x >> 8];
		if (v >= DFL_PTR_MIN && FAST_BITS >= 16)
			v = g->luts[256u * (256u - v) + (x & 255)];
		if (v >= DFL_PTR_MIN) {
			t[i] = 0;
			continue;
		}
		unsigned l1 = lens[v], total = l1, cnt = 1;
		uint64_t e = v;
		while (cnt < 4 && total + 8 <= FAST_BITS) {
			unsigned v2 = g->luts[((x << total) & 0xffff) >> 8];
			if (v2 >= DFL_PTR_MIN || total + lens[v2] > 63)
				break;
			e |= (uint64_t)v2 << (8 * cnt);
			total += lens[v2];
			cnt++;
		}
		t[i] = e | (uint64_t)l1 << 32 | (uint64_t)total << 38 |
		       (uint64_t)cnt << 44;
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

/* Decodes block b, writing its elements that fall in [lo, hi) to
 * dst[e - lo]. */
static df11_result decode_block(const df11_dfl_group *g, uint64_t b,
				uint64_t lo, uint64_t hi, uint16_t *dst,
				block_err *err)
{
	uint64_t e = op_at(g, b), end = block_end(g, b), n = g->n;
	if (e == n)
		return DF11_OK; /* no code starts here; checked by the block
				   that reached n */
	if (e == end)
		return berr(err, g, b, "no element (of %llu) starts in it",
			    (unsigned long long)n);
	if (b == 0 && dfl_gap(g->gaps, g->gaps_size, 0) != 0)
		return berr(err, g, b, "the first gap is %u, not 0",
			    dfl_gap(g->gaps, g->gaps_size, 0));
	const uint8_t *s = g->stream, *sm = g->sm;
	const uint64_t *fast = g->fast;
	uint64_t nb = g->n_bytes, n_chunks = (nb + 7) / 8;
	uint64_t t = b * DFL_THREADS_PER_BLOCK;
	uint64_t last_t = t + DFL_THREADS_PER_BLOCK; /* first chunk of b + 1 */
	uint64_t pos = t * DFL_CHUNK_BITS + dfl_gap(g->gaps, g->gaps_size, t);
	uint64_t next = (t + 1) * DFL_CHUNK_BITS;
	t++;
	int crossed = 0;
	/* Elements e with e + 4 <= fast_end and inside [lo, hi) take the
	 * whole-entry path. */
	uint64_t fast_lo = lo > e ? lo : e, fast_hi = hi < end ? hi : end;
	while (e < end) {
		uint32_t w = peek32(s, nb, pos);
		uint64_t f = fast[w >> (32 - FAST_BITS)];
		unsigned cnt = (f >> 44) & 7, total = (f >> 38) & 63;
		if (cnt && pos + total < next && e >= fast_lo && e + 4 <= fast_hi) {
			uint16_t *o = dst + (e - lo);
			const uint8_t *m = sm + e;
			o[0] = dfl_join((unsigned)f & 255, m[0]);
			o[1] = dfl_join((unsigned)(f >> 8) & 255, m[1]);
			o[2] = dfl_join((unsigned)(f >> 16) & 255, m[2]);
			o[3] = dfl_join((unsigned)(f >> 24) & 255, m[3]);
			e += cnt;
			pos += total;
			continue;
		}
		unsigned sym, len;
		if (cnt) {
			sym = (unsigned)f & 255;
			len = (unsigned)(f >> 32) & 63;
		} else {
			sym = dfl_lookup(g->luts, g->n_luts, w, &len);
		}
		if (e - lo < hi - lo)
			dst[e - lo] = dfl_join(sym, sm[e]);
		e++;
		pos += len;
		if (pos < next)
			continue;
		/* A code starts at pos (unless the stream ended byte-aligned)
		 * in chunk t. */
		int starts = e < n || pos % 8;
		if (t == last_t) {
			if (e != end)
				return berr(err, g, b, "its element %llu starts "
					    "past the block (%llu expected)",
					    (unsigned long long)(e - 1),
					    (unsigned long long)end);
			crossed = 1;
		}
		if (starts && t >= n_chunks && e < n)
			return berr(err, g, b, "element %llu starts past the "
				    "%llu-byte stream", (unsigned long long)e,
				    (unsigned long long)nb);
		if (starts && t < n_chunks) {
			unsigned gap = dfl_gap(g->gaps, g->gaps_size, t);
			if (pos - next != gap)
				return berr(err, g, b, "a code starts at bit %llu "
					    "of chunk %llu, its gap says %u",
					    (unsigned long long)(pos - next),
					    (unsigned long long)t, gap);
		}
		t++;
		next += DFL_CHUNK_BITS;
	}
	if (end == n) {
		if ((pos + 7) / 8 != nb)
			return berr(err, g, b, "the last code ends at bit %llu of "
				    "a %llu-byte stream",
				    (unsigned long long)pos, (unsigned long long)nb);
	} else if (!crossed) {
		return berr(err, g, b, "its last element ends at bit %llu, "
			    "before element %llu starts",
			    (unsigned long long)pos, (unsigned long long)end);
	}
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
	for (uint64_t b = a; b < z; b++)
		if (decode_block(j->g, j->b0 + b, j->lo, j->hi, j->dst, &j->err[i]))
			return;
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
