/*
 * Writing official DFloat11 folders (df11_export_dfloat11), loadable by
 * the `dfloat11` package's DFloat11Model.from_pretrained.
 *
 * Groups are those of the official compressor: from pattern_dict, whose
 * default for the architectures of dfloat11_arch.c is one group per decoder
 * layer (its seven projections, in the official order), the embedding and
 * lm_head. A group's code is a canonical Huffman code limited to 32 bits;
 * its LUTs are built from it (dfloat11_format.h). What the official kernel
 * cannot decode is never written:
 *   - exponents 240..255 (they read as pointers) and groups with a single
 *     exponent (the kernel needs two codes) are stored as plain BF16
 *     weights, which the official loader takes as ordinary parameters;
 *   - more than 16 sub-tables: the code is rebuilt with a shorter length
 *     limit (fewer long codes), plain storage as the last resort;
 *   - a block of more than 23550 elements (over the 48 KiB of shared
 *     memory): every code is made one bit longer (at least 2 bits, so at
 *     most 16384 elements per block).
 * Each group is coded by one worker; workers run in parallel, each with
 * its own view of the input. The folder is written under a temporary name
 * and renamed into place when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "df11.h"
#include "df11/dfloat11.h"
#include "df11/dfloat11_format.h"
#include "common/error.h"
#include "codec/format.h"
#include "codec/codec_util.h"
#include "common/bf16.h"
#include "df11/fsutil.h"
#include "df11/model_internal.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

/* ------------------------------------------------------------ coding */

typedef struct wgroup {
	char *name;           /* module path */
	size_t *src;          /* model tensor (view index) of each weight */
	uint64_t *ne;         /* element count of each weight */
	size_t nw;
	uint64_t n;
	int plain;            /* stored as BF16 weights */
	const char *why;      /* why plain */
	uint64_t stored;      /* bytes written for its weights */
} wgroup;

/* Canonical codes, MSB-first values: shorter first, then by symbol. */
static void canon_codes(const uint8_t len[256], uint32_t code[256])
{
	uint32_t c = 0;
	for (unsigned l = 1; l <= DFL_MAX_CODE_LEN; l++) {
		for (unsigned s = 0; s < 256; s++)
			if (len[s] == l)
				code[s] = c++;
		c <<= 1;
	}
}

/* LUTs for the code; 0 if more than 16 sub-tables would be needed. */
static unsigned build_luts(const uint8_t len[256], const uint32_t code[256],
			   uint8_t *luts /* [DFL_MAX_LUTS][256] */)
{
	uint32_t prefix[DFL_MAX_SUBTABLES + 1];
	unsigned plevel[DFL_MAX_SUBTABLES + 1], np = 0;
	for (unsigned k = 1; k < DFL_MAX_LEVELS; k++)
		for (unsigned s = 0; s < 256; s++) {
			if (len[s] <= 8 * k)
				continue;
			uint32_t p = code[s] >> (len[s] - 8 * k);
			unsigned i = 0;
			while (i < np && !(plevel[i] == k && prefix[i] == p))
				i++;
			if (i < np)
				continue;
			if (np == DFL_MAX_SUBTABLES)
				return 0;
			prefix[np] = p;
			plevel[np++] = k;
		}
	unsigned n_luts = np + 2;
	uint8_t filled[DFL_MAX_LUTS * 256];
	memset(filled, 0, sizeof filled);
	memset(luts, 0, 256u * n_luts);
	unsigned first_sym = 256, first_len = 99;
	for (unsigned s = 0; s < 256; s++) {
		unsigned l = len[s];
		if (!l)
			continue;
		if (l < first_len) {
			first_len = l;
			first_sym = s;
		}
		unsigned d = (l - 1) / 8, row = 0;
		for (unsigned k = 0; k <= d; k++) {
			if (k < d) {
				uint32_t p = code[s] >> (l - 8 * (k + 1));
				unsigned i = 0;
				while (!(plevel[i] == k + 1 && prefix[i] == p))
					i++;
				unsigned x = p & 255;
				luts[256 * row + x] = (uint8_t)(256 - (i + 1));
				filled[256 * row + x] = 1;
				row = i + 1;
			} else {
				unsigned rem = l - 8 * d;
				unsigned base = (code[s] & ((1u << rem) - 1)) << (8 - rem);
				for (unsigned x = base; x < base + (1u << (8 - rem)); x++) {
					luts[256 * row + x] = (uint8_t)s;
					filled[256 * row + x] = 1;
				}
			}
		}
	}
	/* An incomplete code leaves entries that only padding bits reach:
	 * they must still decode (the kernel's last thread reads them). */
	for (unsigned i = 0; i < 256 * (n_luts - 1); i++)
		if (!filled[i])
			luts[i] = (uint8_t)first_sym;
	for (unsigned s = 0; s < 256; s++)
		luts[256 * (n_luts - 1) + s] = len[s];
	return n_luts;
}

/*
 * The stream coder. Elements go through in pieces of PIECE (read from the
 * model into per-worker buffers that stay in cache); each piece's
 * sign|mantissa bytes and finished stream bytes are written to the file
 * at once, so a group of any size needs no buffer of its size.
 *
 * Bits are appended MSB-first to a 64-bit accumulator whose top nacc (< 8)
 * bits are pending; after each append its complete bytes are stored
 * big-endian with one 8-byte store. Eight codes are taken per step from
 * four lookups in a table of exponent pairs:
 *
 *   pair[a | b << 8]  bits  0..31  code(a) << len(b) | code(b)
 *                         32..37  len(a) + len(b), or PAIR_SLOW when over
 *                                 32 bits
 *                         40..45  len(a)
 *
 * when the eight take at most 56 bits; else code by code.
 *
 * gaps and output_positions follow the code starts: chunk t (64 bits) is
 * marked by the first code that starts in it (codes are at most 32 bits,
 * so every chunk before the end has one, and a step of 56 bits reaches at
 * most one new chunk); the first chunk of each block also records that
 * code's element in output_positions.
 */
#define PIECE (1u << 16)
#define PAIR_SLOW 57u /* over 56 alone (and < 64): its step goes code by code */

/* Per-worker buffers, kept from group to group. */
typedef struct wscratch {
	uint16_t *src;  /* [PIECE] */
	uint8_t *sm;    /* [PIECE] (file sinks) */
	uint8_t *ex;    /* [PIECE + 8] */
	uint8_t *out;   /* [4 * PIECE + 16]: stream bytes of a piece (file
			   sinks) */
	uint64_t *pair; /* [65536] */
	uint8_t *gaps, *op;
	size_t gaps_cap, op_cap;
	uint16_t *whole;  /* the group, when its weights are stored encoded */
	size_t whole_cap;
	const uint16_t *in; /* the group in memory (whole), or NULL */
} wscratch;

static void wscratch_free(wscratch *w)
{
	free(w->src);
	free(w->sm);
	free(w->ex);
	free(w->out);
	free(w->pair);
	free(w->gaps);
	free(w->op);
	free(w->whole);
	memset(w, 0, sizeof *w);
}

static df11_result wscratch_init(wscratch *w)
{
	memset(w, 0, sizeof *w);
	w->src = malloc(2u * PIECE);
	w->sm = malloc(PIECE);
	w->ex = malloc(PIECE + 8);
	w->out = malloc(4u * PIECE + 16);
	w->pair = malloc(65536 * sizeof *w->pair);
	if (!w->src || !w->sm || !w->ex || !w->out || !w->pair) {
		wscratch_free(w);
		return df11_fail(DF11_NOMEM, "export buffers");
	}
	return DF11_OK;
}

DF11_HOT static void split_planes(const uint16_t *restrict src, uint64_t n,
				  uint8_t *restrict sm, uint8_t *restrict ex)
{
	for (uint64_t q = 0; q < n; q++) {
		sm[q] = df11_bf16_sm(src[q]);
		ex[q] = (uint8_t)df11_bf16_exponent(src[q]);
	}
}

/* Only the entries of present exponents are written, and only they are
 * read. */
static void pair_table(const uint8_t len[256], const uint32_t code[256],
		       uint64_t *pair)
{
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; len[a] && b < 256; b++) {
			if (!len[b])
				continue;
			unsigned t = len[a] + len[b];
			pair[a | b << 8] =
				t > 32 ? (uint64_t)PAIR_SLOW << 32
				       : ((uint64_t)code[a] << len[b] | code[b]) |
						 (uint64_t)t << 32 |
						 (uint64_t)len[a] << 40;
		}
}

typedef struct dfl_coder {
	const uint8_t *len;
	const uint32_t *code;
	const uint64_t *pair;
	uint64_t acc;        /* pending bits at the top */
	unsigned nacc;       /* < 8 between codes */
	uint64_t pos;        /* bits coded */
	uint64_t next_chunk; /* the first chunk not yet marked */
	uint8_t *gaps;       /* zeroed, one byte of slack */
	uint8_t *op;
	uint64_t n_op;
} dfl_coder;

/* Chunk C->next_chunk's first code starts at bit pos, element i. */
static inline void mark_chunk(dfl_coder *C, uint64_t pos, uint64_t i)
{
	uint64_t t = C->next_chunk++, bit = 5 * t;
	unsigned v = (unsigned)(pos & 63) << (11 - (bit & 7));
	C->gaps[bit >> 3] |= (uint8_t)(v >> 8);
	C->gaps[(bit >> 3) + 1] |= (uint8_t)v;
	if (t % DFL_THREADS_PER_BLOCK == 0)
		df11_wr32(C->op + 4 * C->n_op++, (uint32_t)i);
}

/* Codes ex[0..m), elements i0.. of the group, into p; returns the end of
 * the complete bytes (up to 8 bytes past it are scratch). */
DF11_HOT static uint8_t *code_piece(dfl_coder *C, const uint8_t *ex,
				    uint64_t m, uint64_t i0, uint8_t *p)
{
	const uint64_t *pair = C->pair;
	const uint8_t *len = C->len;
	const uint32_t *code = C->code;
	uint64_t acc = C->acc, pos = C->pos;
	uint64_t nextb = C->next_chunk << 6; /* the next chunk's first bit */
	unsigned nacc = C->nacc;
#define DFL_FLUSH()                                              \
	do {                                                     \
		df11_store64(p, __builtin_bswap64(acc));         \
		p += nacc >> 3;                                  \
		acc <<= nacc & ~7u;                              \
		nacc &= 7u;                                      \
	} while (0)
	/* One code, its chunk marked if it is the first to start there. */
#define DFL_ONE(e, i)                                            \
	do {                                                     \
		unsigned l_ = len[e];                            \
		if (pos >= nextb) {                              \
			mark_chunk(C, pos, (i));                 \
			nextb += 64;                             \
		}                                                \
		acc |= (uint64_t)code[e] << (64 - nacc - l_);    \
		nacc += l_;                                      \
		pos += l_;                                       \
		DFL_FLUSH();                                     \
	} while (0)
	uint64_t j = 0;
	for (; j + 8 <= m; j += 8) {
		const uint8_t *x = ex + j;
		uint64_t c0 = pair[df11_load16(x)], c1 = pair[df11_load16(x + 2)];
		uint64_t c2 = pair[df11_load16(x + 4)], c3 = pair[df11_load16(x + 6)];
		unsigned t0 = (unsigned)(c0 >> 32) & 63, t1 = (unsigned)(c1 >> 32) & 63;
		unsigned t2 = (unsigned)(c2 >> 32) & 63, t3 = (unsigned)(c3 >> 32) & 63;
		unsigned n = t0 + t1 + t2 + t3;
		if (__builtin_expect(n > 56, 0)) {
			for (unsigned q = 0; q < 8; q++)
				DFL_ONE(x[q], i0 + j + q);
			continue;
		}
		if (pos + n >= nextb) {
			/* The first of the eight code starts in the new chunk,
			 * if one is (else the next step's first): the count
			 * of starts before it, without branches. */
			unsigned s[9];
			s[0] = 0;
			s[1] = (unsigned)(c0 >> 40) & 63;
			s[2] = t0;
			s[3] = t0 + ((unsigned)(c1 >> 40) & 63);
			s[4] = t0 + t1;
			s[5] = s[4] + ((unsigned)(c2 >> 40) & 63);
			s[6] = s[4] + t2;
			s[7] = s[6] + ((unsigned)(c3 >> 40) & 63);
			s[8] = n;
			unsigned q = 0;
			if (pos < nextb) {
				unsigned d = (unsigned)(nextb - pos);
				q = (s[1] < d) + (s[2] < d) + (s[3] < d) + (s[4] < d) +
				    (s[5] < d) + (s[6] < d) + (s[7] < d) + 1u;
			}
			if (q < 8) {
				mark_chunk(C, pos + s[q], i0 + j + q);
				nextb += 64;
			}
		}
		uint64_t g01 = (uint64_t)(uint32_t)c0 << t1 | (uint32_t)c1;
		uint64_t g23 = (uint64_t)(uint32_t)c2 << t3 | (uint32_t)c3;
		acc |= (g01 << (t2 + t3) | g23) << (64 - nacc - n);
		nacc += n;
		pos += n;
		DFL_FLUSH();
	}
	for (; j < m; j++)
		DFL_ONE(ex[j], i0 + j);
#undef DFL_ONE
#undef DFL_FLUSH
	C->acc = acc;
	C->nacc = nacc;
	C->pos = pos;
	return p;
}

static df11_result pwrite_all(int fd, const void *p, uint64_t n, uint64_t off,
			      const char *path)
{
	const uint8_t *b = p;
	while (n) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t w = pwrite(fd, b, chunk, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return df11_fail_errno(DF11_IO, errno, "%s", path);
		}
		b += w;
		n -= (uint64_t)w;
		off += (uint64_t)w;
	}
	return DF11_OK;
}

/* --------------------------------------------------------- files out */

typedef struct st_out {
	const char *name;
	df11_dtype dtype;
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	const void *data;
	uint64_t size;
} st_out;

/* Writes a safetensors file's header and every tensor whose data is not
 * NULL to fd; off_ret[i]: where tensor i's bytes go in the file. */
static df11_result write_st_fd(int fd, const char *path, const st_out *t,
			       size_t n, uint64_t *off_ret)
{
	json_t *h = json_object();
	uint64_t off = 0;
	for (size_t i = 0; h && i < n; i++) {
		json_t *shape = json_array();
		for (int k = 0; shape && k < t[i].ndim; k++)
			json_array_append_new(shape,
					      json_integer((json_int_t)t[i].shape[k]));
		json_t *e = json_pack("{s:s,s:o,s:[I,I]}", "dtype",
				      df11_dtype_name(t[i].dtype), "shape", shape,
				      "data_offsets", (json_int_t)off,
				      (json_int_t)(off + t[i].size));
		if (!e || json_object_set_new(h, t[i].name, e)) {
			json_decref(h);
			h = NULL;
		}
		off += t[i].size;
	}
	char *js = h ? json_dumps(h, JSON_COMPACT) : NULL;
	json_decref(h);
	if (!js)
		return df11_fail(DF11_NOMEM, "%s", path);
	size_t jn = strlen(js), pad = (jn + 7) / 8 * 8;
	uint8_t head[8];
	df11_wr64(head, pad);
	df11_result r = df11_write_all(fd, head, 8, path);
	if (!r)
		r = df11_write_all(fd, js, jn, path);
	if (!r && pad > jn)
		r = df11_write_all(fd, "        ", pad - jn, path);
	off = 8 + pad;
	for (size_t i = 0; i < n && !r; i++) {
		if (off_ret)
			off_ret[i] = off;
		if (t[i].data)
			r = pwrite_all(fd, t[i].data, t[i].size, off, path);
		off += t[i].size;
	}
	free(js);
	return r;
}

static df11_result write_st(const char *path, const st_out *t, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return df11_fail_errno(DF11_IO, errno, "%s", path);
	df11_result r = write_st_fd(fd, path, t, n, NULL);
	if (close(fd) < 0 && !r)
		r = df11_fail_errno(DF11_IO, errno, "%s", path);
	return r;
}

/* ------------------------------------------------------------ export */

typedef struct export_state {
	const char *input, *tmp;
	const df11_dfloat11_options *opt;
	df11_model *m;         /* names, shapes, files */
	wgroup *g;
	size_t ng;
	int *owner;            /* per view tensor: 1 + group, or -1 weight */
	int next;              /* next group to code (atomic) */
	df11_result err;
	char msg[512];
	uint64_t done, total;  /* progress */
	int cancelled;
} export_state;

static char *file_name_of(const char *module)
{
	size_t n = strlen(module);
	char *s = malloc(n + 13);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = module[i] == '.' ? '_' : module[i];
	memcpy(s + n, ".safetensors", 13);
	return s;
}

static int under(const char *name, const char *module)
{
	size_t k = strlen(module);
	return !strncmp(name, module, k) && name[k] == '.';
}

/* Grows *buf to at least n bytes (contents not kept). */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
	if (*cap >= n)
		return 0;
	free(*buf);
	*cap = 0;
	if (!(*buf = malloc(n)))
		return -1;
	*cap = n;
	return 0;
}

/* Elements [f, f + cnt) of the group's weight k, which starts at element
 * at of the group: read from the model (a view of the file, copied piece
 * by piece), or from ws->in. */
static df11_result get_piece(df11_model *m, const wgroup *g, wscratch *ws,
			     size_t k, uint64_t at, uint64_t f, uint64_t cnt,
			     const uint16_t **p)
{
	if (ws->in) {
		*p = ws->in + at + f;
		return DF11_OK;
	}
	*p = ws->src;
	return df11_model_read_range(m, g->src[k], f, cnt, ws->src);
}

/* Where a group's stream and sign|mantissa bytes go: a file, at two
 * offsets, or memory. */
typedef struct sink {
	int fd;
	const char *path;
	uint64_t stream_off, sm_off;
	uint8_t *stream, *sm;  /* memory, when not NULL */
} sink;

static df11_result put(const sink *o, int sm, const void *p, uint64_t n,
		       uint64_t at)
{
	uint8_t *mem = sm ? o->sm : o->stream;
	if (mem) {
		memcpy(mem + at, p, n);
		return DF11_OK;
	}
	return pwrite_all(o->fd, p, n, at + (sm ? o->sm_off : o->stream_off),
			  o->path);
}

/* Exponent counts of the group and the exponent of its last element. */
static df11_result group_counts(df11_model *m, const wgroup *g, wscratch *ws,
				uint64_t count[256], unsigned *last_e_ret)
{
	uint64_t h[256], at = 0;
	df11_result r = DF11_OK;
	memset(count, 0, 256 * sizeof *count);
	for (size_t k = 0; k < g->nw && !r; k++) {
		/* In memory, a weight at once (long inputs count faster). */
		uint64_t piece = ws->in ? g->ne[k] : PIECE;
		for (uint64_t f = 0; f < g->ne[k] && !r; f += piece) {
			uint64_t cnt = g->ne[k] - f < piece ? g->ne[k] - f : piece;
			const uint16_t *src;
			if ((r = get_piece(m, g, ws, k, at, f, cnt, &src)))
				break;
			df11_count_exponents(src, cnt, h);
			for (unsigned e = 0; e < 256; e++)
				count[e] += h[e];
			*last_e_ret = df11_bf16_exponent(src[cnt - 1]);
		}
		at += g->ne[k];
	}
	return r;
}

/* The next code to try, from *step on (0 at first): limited to 32 bits,
 * else shorter while more than 16 sub-tables are needed; each limit also
 * with every code one bit longer, for when a block would hold more
 * elements than the kernel's shared memory. Returns 0 when none is
 * left. */
static int next_code(const uint64_t count[256], int *step, uint8_t len[256],
		     uint32_t code[256], uint8_t *luts, unsigned *n_luts_ret)
{
	static const unsigned limits[] = {32, 24, 20, 16, 12, 10, 8};
	for (;;) {
		unsigned li = (unsigned)*step / 2, longer = (unsigned)*step % 2;
		if (li >= sizeof limits / sizeof *limits)
			return 0;
		(*step)++;
		if (df11_huff_lengths(count, limits[li] - longer, len) < 0)
			continue;
		for (unsigned e = 0; e < 256 && longer; e++)
			len[e] = len[e] ? (uint8_t)(len[e] + 1) : 0;
		canon_codes(len, code);
		if (!(*n_luts_ret = build_luts(len, code, luts)))
			*step = 2 * (int)li + 2; /* try a shorter limit */
		else
			return 1;
	}
}

/* Codes the group's elements with the code into o; gaps and
 * output_positions into ws. */
static df11_result code_group(df11_model *m, const wgroup *g, wscratch *ws,
			      const uint8_t len[256], const uint32_t code[256],
			      const sink *o, uint64_t gaps_size,
			      uint64_t *n_op_ret, uint64_t *n_bytes_ret)
{
	pair_table(len, code, ws->pair);
	memset(ws->gaps, 0, gaps_size + 1);
	dfl_coder C = {.len = len, .code = code, .pair = ws->pair,
		       .gaps = ws->gaps, .op = ws->op};
	uint64_t i = 0, written = 0;
	df11_result r = DF11_OK;
	for (size_t k = 0; k < g->nw && !r; k++) {
		uint64_t at = i;
		for (uint64_t f = 0; f < g->ne[k] && !r; f += PIECE) {
			uint64_t cnt = g->ne[k] - f < PIECE ? g->ne[k] - f : PIECE;
			const uint16_t *src;
			if ((r = get_piece(m, g, ws, k, at, f, cnt, &src)))
				break;
			/* A memory sink takes the bytes in place. */
			uint8_t *sm = o->sm ? o->sm + i : ws->sm;
			uint8_t *out = o->stream ? o->stream + written : ws->out;
			split_planes(src, cnt, sm, ws->ex);
			if (!o->sm && (r = put(o, 1, sm, cnt, i)))
				break;
			uint8_t *p = code_piece(&C, ws->ex, cnt, i, out);
			if (!o->stream)
				r = put(o, 0, out, (uint64_t)(p - out), written);
			written += (uint64_t)(p - out);
			i += cnt;
		}
	}
	if (r)
		return r;
	/* The padding bits start a (never used) code, as the official
	 * writer's EOF does: its chunk and block are marked too. */
	if (C.pos % 8 && C.pos >> 6 == C.next_chunk)
		mark_chunk(&C, C.pos, g->n);
	df11_wr32(C.op + 4 * C.n_op++, (uint32_t)g->n);
	if (C.nacc) {
		uint8_t last = (uint8_t)(C.acc >> 56);
		if ((r = put(o, 0, &last, 1, written)))
			return r;
		written++;
	}
	*n_op_ret = C.n_op;
	*n_bytes_ret = written;
	return DF11_OK;
}

/* Why a group with these counts must be stored plain; NULL if it can be
 * coded. */
static const char *plain_reason(const uint64_t count[256], uint64_t n)
{
	unsigned distinct = 0;
	for (unsigned e = 0; e < 256; e++)
		distinct += count[e] != 0;
	for (unsigned e = DFL_PTR_MIN; e < 256; e++)
		if (count[e])
			return "exponents of 2^113 and above (or inf/NaN)";
	if (distinct < 2)
		return "a single exponent";
	if (n > UINT32_MAX)
		return "more than 2^32 elements";
	return NULL;
}

/* The largest element count of a block, from output_positions. */
static uint64_t max_block_elems(const uint8_t *op, uint64_t n_op)
{
	uint64_t max = 0;
	for (uint64_t b = 0; b + 1 < n_op; b++) {
		uint64_t d = df11_rd32(op + 4 * (b + 1)) - df11_rd32(op + 4 * b);
		if (d > max)
			max = d;
	}
	return max;
}

df11_result df11_dfl_encode_group(const uint16_t *w, uint64_t n,
				  uint8_t *stream, uint8_t *sm,
				  uint64_t *n_bytes_ret)
{
	wscratch ws;
	df11_result r = wscratch_init(&ws);
	if (r)
		return r;
	ws.in = w;
	wgroup g = {.name = "group", .ne = &n, .nw = 1, .n = n};
	uint64_t count[256];
	unsigned last_e = 0;
	group_counts(NULL, &g, &ws, count, &last_e);
	const char *why = plain_reason(count, n);
	if (why)
		r = df11_fail(DF11_UNSUPPORTED, "%s: stored plain", why);
	int step = 0, done = 0;
	uint8_t len[256], luts[DFL_MAX_LUTS * 256];
	uint32_t code[256];
	unsigned n_luts;
	while (!r && !done && next_code(count, &step, len, code, luts, &n_luts)) {
		uint64_t bits = 0;
		for (unsigned e = 0; e < 256; e++)
			bits += count[e] * len[e];
		uint64_t blocks = ((bits + 7) / 8 + DFL_BLOCK_BYTES - 1) /
				  DFL_BLOCK_BYTES;
		uint64_t gaps_size = DFL_GAP_BYTES_PER_BLOCK * blocks, n_op;
		if (reserve(&ws.gaps, &ws.gaps_cap, gaps_size + 1) ||
		    reserve(&ws.op, &ws.op_cap, 4 * (blocks + 2))) {
			r = df11_fail(DF11_NOMEM, "%llu-element group",
				      (unsigned long long)n);
			break;
		}
		sink o = {.fd = -1, .path = "memory", .stream = stream, .sm = sm};
		r = code_group(NULL, &g, &ws, len, code, &o, gaps_size, &n_op,
			       n_bytes_ret);
		done = !r && max_block_elems(ws.op, n_op) <= DFL_MAX_BLOCK_ELEMS;
	}
	if (!r && !done)
		r = df11_fail(DF11_UNSUPPORTED, "no code fits: stored plain");
	wscratch_free(&ws);
	return r;
}

/* The group's weights as they are: read into *w_ret, described in
 * t[0 .. nw). */
static df11_result plain_weights(df11_model *m, const wgroup *g, st_out *t,
				 uint16_t **w_ret)
{
	uint16_t *w = *w_ret = malloc(2 * g->n + 2);
	if (!w)
		return df11_fail(DF11_NOMEM, "group %s: %llu elements", g->name,
				 (unsigned long long)g->n);
	uint64_t at = 0;
	df11_result r = DF11_OK;
	for (size_t k = 0; k < g->nw && !r; k++) {
		df11_tensor_desc d;
		df11_model_tensor(m, g->src[k], &d);
		r = df11_model_read(m, g->src[k], w + at, d.nbytes);
		t[k] = (st_out){.name = d.name, .dtype = DF11_DTYPE_BF16,
				.ndim = d.ndim, .data = w + at, .size = d.nbytes};
		memcpy(t[k].shape, d.shape, sizeof d.shape);
		at += d.n_elems;
	}
	return r;
}

static df11_result export_group(export_state *s, df11_model *m, wscratch *ws,
				size_t gi)
{
	wgroup *g = &s->g[gi];
	df11_result r = DF11_OK;
	/* Exponent counts, piece by piece; the last element's exponent. */
	uint64_t count[256];
	unsigned last_e = 0;
	/* Weights stored encoded (a .df11 container, a DFloat11 folder) are
	 * decoded once, whole, rather than once per pass. */
	int whole = 0;
	ws->in = NULL;
	for (size_t k = 0; k < g->nw; k++) {
		df11_tensor_desc d;
		df11_model_tensor(m, g->src[k], &d);
		whole |= d.compressed != 0;
	}
	if (whole) {
		uint8_t *wb = (uint8_t *)ws->whole;
		if (reserve(&wb, &ws->whole_cap, 2 * g->n + 2)) {
			ws->whole = NULL;
			return df11_fail(DF11_NOMEM, "group %s: %llu elements",
					 g->name, (unsigned long long)g->n);
		}
		ws->whole = (uint16_t *)wb;
		uint64_t at = 0;
		for (size_t k = 0; k < g->nw && !r; k++) {
			df11_tensor_desc d;
			df11_model_tensor(m, g->src[k], &d);
			r = df11_model_read(m, g->src[k], ws->whole + at, d.nbytes);
			at += d.n_elems;
		}
		ws->in = ws->whole;
	}
	if (!r)
		r = group_counts(m, g, ws, count, &last_e);
	const char *why = plain_reason(count, g->n);
	/* The group's file: its buffers (or plain weights), then the
	 * module's other tensors. */
	size_t cap = g->nw + 8 + df11_model_num_tensors(m);
	st_out *t = calloc(cap, sizeof *t);
	uint64_t *toff = calloc(cap, sizeof *toff);
	char **names = calloc(8, sizeof *names);
	uint8_t **extra = calloc(df11_model_num_tensors(m) + 1, sizeof *extra);
	uint8_t *split = malloc(8 * g->nw + 8);
	uint16_t *w = NULL;
	char *fn = file_name_of(g->name), *path = fn ? df11_join_path(s->tmp, fn)
						     : NULL;
	size_t nt = 0, nx = 0;
	if (!r && (!t || !toff || !names || !extra || !split || !path))
		r = df11_fail(DF11_NOMEM, "group %s", g->name);
	/* The coded buffers come first; their sizes are known before
	 * coding, so the file is written as the coder goes. */
	size_t nb0 = why ? 0 : DFL_N_BUFFERS;
	if (!r && why) {
		g->plain = 1;
		g->why = why;
		g->stored = 2 * g->n;
		r = plain_weights(m, g, t, &w);
		nt = g->nw;
	} else if (!r) {
		uint64_t cum = 0;
		for (size_t k = 0; k + 1 < g->nw; k++) {
			df11_tensor_desc d;
			df11_model_tensor(m, g->src[k], &d);
			cum += d.n_elems;
			df11_wr64(split + 8 * k, cum);
		}
		for (int b = 0; b < DFL_N_BUFFERS && !r; b++) {
			size_t ln = strlen(g->name) + 24;
			if (!(names[b] = malloc(ln))) {
				r = df11_fail(DF11_NOMEM, "group %s", g->name);
				break;
			}
			snprintf(names[b], ln, "%s.%s", g->name, dfl_suffix[b]);
			t[nt++] = (st_out){.name = names[b],
					   .dtype = b == DFL_SPLIT ? DF11_DTYPE_I64
								   : DF11_DTYPE_U8,
					   .ndim = b == DFL_LUTS ? 2 : 1};
		}
	}
	for (size_t i = 0; !r && i < df11_model_num_tensors(m); i++) {
		if (s->owner[i] != (int)gi + 1)
			continue;
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		if (!(extra[nx] = malloc(d.nbytes + 1))) {
			r = df11_fail(DF11_NOMEM, "%s", d.name);
			break;
		}
		if ((r = df11_model_read(m, i, extra[nx], d.nbytes)))
			break;
		t[nt] = (st_out){.name = d.name, .dtype = d.dtype, .ndim = d.ndim,
				 .data = extra[nx++], .size = d.nbytes};
		memcpy(t[nt++].shape, d.shape, sizeof d.shape);
	}
	if (!r && why)
		r = write_st(path, t, nt);
	int done = why != NULL, step = 0;
	uint8_t len[256], luts[DFL_MAX_LUTS * 256];
	uint32_t code[256];
	unsigned n_luts;
	while (!r && !done && next_code(count, &step, len, code, luts, &n_luts)) {
		uint64_t bits = 0;
		for (unsigned e = 0; e < 256; e++)
			bits += count[e] * len[e];
		uint64_t nb = (bits + 7) / 8;
		uint64_t blocks = (nb + DFL_BLOCK_BYTES - 1) / DFL_BLOCK_BYTES;
		/* A position per block where a code starts, then n: the
		 * last block has none when the last element starts
		 * before it and no padding follows. */
		uint64_t n_op = blocks + (bits - len[last_e] >=
						  DFL_BLOCK_BITS * (blocks - 1) ||
					  bits % 8);
		uint64_t gaps_size = DFL_GAP_BYTES_PER_BLOCK * blocks;
		if (reserve(&ws->gaps, &ws->gaps_cap, gaps_size + 1) ||
		    reserve(&ws->op, &ws->op_cap, 4 * (blocks + 2))) {
			r = df11_fail(DF11_NOMEM, "group %s", g->name);
			break;
		}
		uint64_t size[DFL_N_BUFFERS] = {256u * n_luts, nb, g->n,
						4 * n_op, gaps_size,
						8 * (g->nw - 1)};
		const void *data[DFL_N_BUFFERS] = {luts, NULL, NULL, NULL,
						   NULL, split};
		for (int b = 0; b < DFL_N_BUFFERS; b++) {
			t[b].data = data[b];
			t[b].size = size[b];
			t[b].shape[0] = b == DFL_LUTS ? n_luts
				      : b == DFL_SPLIT ? g->nw - 1 : size[b];
			t[b].shape[1] = 256;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);
		if (fd < 0) {
			r = df11_fail_errno(DF11_IO, errno, "%s", path);
			break;
		}
		uint64_t got_op = 0, got_nb = 0;
		r = write_st_fd(fd, path, t, nt, toff);
		sink o = {.fd = fd, .path = path,
			  .stream_off = toff[DFL_STREAM],
			  .sm_off = toff[DFL_SM]};
		if (!r)
			r = code_group(m, g, ws, len, code, &o, gaps_size,
				       &got_op, &got_nb);
		if (!r && (got_op != n_op || got_nb != nb))
			r = df11_fail(DF11_BAD_DATA, "group %s: coded %llu "
				      "bytes and %llu positions, %llu and "
				      "%llu expected", g->name,
				      (unsigned long long)got_nb,
				      (unsigned long long)got_op,
				      (unsigned long long)nb,
				      (unsigned long long)n_op);
		done = !r && max_block_elems(ws->op, got_op) <=
				     DFL_MAX_BLOCK_ELEMS;
		if (done)
			r = pwrite_all(fd, ws->op, 4 * n_op,
				       toff[DFL_OUTPUT_POS], path);
		if (done && !r)
			r = pwrite_all(fd, ws->gaps, gaps_size,
				       toff[DFL_GAPS], path);
		if (close(fd) < 0 && !r)
			r = df11_fail_errno(DF11_IO, errno, "%s", path);
		if (done)
			for (int b = 0; b < DFL_N_BUFFERS; b++)
				g->stored += size[b];
	}
	if (!r && !done) {
		/* No code fits: the weights as they are. */
		why = "no code fits the official kernel's 16 sub-tables";
		g->plain = 1;
		g->why = why;
		g->stored = 2 * g->n;
		size_t nxt = nt - nb0;
		memmove(t + g->nw, t + nb0, nxt * sizeof *t);
		r = plain_weights(m, g, t, &w);
		nt = g->nw + nxt;
		if (!r)
			r = write_st(path, t, nt);
	}
	free(fn);
	free(path);
	for (size_t b = 0; names && b < 8; b++)
		free(names[b]);
	for (size_t i = 0; i < nx; i++)
		free(extra[i]);
	free(names);
	free(extra);
	free(split);
	free(t);
	free(toff);
	free(w);
	return r;
}

static void worker(void *arg, int i)
{
	export_state *s = arg;
	(void)i;
	df11_model *m;
	df11_result r = df11_model_open(s->input, &m);
	if (r) {
		if (!__atomic_exchange_n(&s->err, r, __ATOMIC_SEQ_CST))
			snprintf(s->msg, sizeof s->msg, "%s", df11_last_error());
		return;
	}
	df11_model_set_threads(m, 1);
	wscratch ws;
	if ((r = wscratch_init(&ws))) {
		if (!__atomic_exchange_n(&s->err, r, __ATOMIC_SEQ_CST))
			snprintf(s->msg, sizeof s->msg, "%s", df11_last_error());
		df11_model_close(m);
		return;
	}
	for (;;) {
		if (__atomic_load_n(&s->err, __ATOMIC_SEQ_CST))
			break;
		int gi = __atomic_fetch_add(&s->next, 1, __ATOMIC_SEQ_CST);
		if (gi >= (int)s->ng)
			break;
		r = export_group(s, m, &ws, (size_t)gi);
		if (r) {
			if (!__atomic_exchange_n(&s->err, r, __ATOMIC_SEQ_CST))
				snprintf(s->msg, sizeof s->msg, "%s",
					 df11_last_error());
			break;
		}
		uint64_t done = __atomic_add_fetch(&s->done, 2 * s->g[gi].n,
						   __ATOMIC_SEQ_CST);
		if (s->opt->progress && i == 0 &&
		    s->opt->progress(s->opt->progress_ctx, done, s->total)) {
			if (!__atomic_exchange_n(&s->err, DF11_CANCELLED,
						 __ATOMIC_SEQ_CST))
				snprintf(s->msg, sizeof s->msg, "interrupted");
			break;
		}
	}
	wscratch_free(&ws);
	df11_model_close(m);
}

/* The default pattern_dict of an architecture df11 knows (JSON text). */
static const char default_patterns[] =
	"{\"lm_head\": [], \"model\\\\.embed_tokens\": [], "
	"\"model\\\\.layers\\\\.\\\\d+\": [\"self_attn.q_proj\", "
	"\"self_attn.k_proj\", \"self_attn.v_proj\", \"self_attn.o_proj\", "
	"\"mlp.gate_proj\", \"mlp.up_proj\", \"mlp.down_proj\"]}";

static df11_result add_group(export_state *s, const char *module,
			     const size_t *src, size_t nw)
{
	wgroup *g = realloc(s->g, (s->ng + 1) * sizeof *g);
	if (!g)
		return df11_fail(DF11_NOMEM, "groups");
	s->g = g;
	g = &s->g[s->ng];
	memset(g, 0, sizeof *g);
	g->name = strdup(module);
	g->src = malloc(nw * sizeof *g->src);
	g->ne = malloc(nw * sizeof *g->ne);
	if (!g->name || !g->src || !g->ne) {
		free(g->name);
		free(g->src);
		free(g->ne);
		return df11_fail(DF11_NOMEM, "groups");
	}
	s->ng++;
	memcpy(g->src, src, nw * sizeof *src);
	g->nw = nw;
	for (size_t k = 0; k < nw; k++) {
		df11_tensor_desc d;
		df11_model_tensor(s->m, src[k], &d);
		g->ne[k] = d.n_elems;
		g->n += d.n_elems;
	}
	return DF11_OK;
}

/* Groups from pattern_dict over the modules the tensor names imply. */
static df11_result find_groups(export_state *s, json_t *pd, int tied)
{
	df11_model *m = s->m;
	size_t nt = df11_model_num_tensors(m);
	/* Module paths: every dotted prefix of every tensor name. */
	char **mods = NULL;
	size_t nm = 0;
	df11_result r = DF11_OK;
	for (size_t i = 0; i < nt && !r; i++) {
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		for (const char *p = strchr(d.name, '.'); p && !r;
		     p = strchr(p + 1, '.')) {
			size_t k = (size_t)(p - d.name), j = 0;
			while (j < nm && (strlen(mods[j]) != k ||
					  strncmp(mods[j], d.name, k)))
				j++;
			if (j < nm)
				continue;
			char **v = realloc(mods, (nm + 1) * sizeof *v);
			if (!v || !(v[nm] = strndup(d.name, k))) {
				if (v)
					mods = v;
				r = df11_fail(DF11_NOMEM, "modules");
				break;
			}
			mods = v;
			nm++;
		}
	}
	size_t *src = calloc(nt + 1, sizeof *src);
	char *name = malloc(8192);
	if (!r && (!src || !name))
		r = df11_fail(DF11_NOMEM, "groups");
	const char *pat;
	json_t *attrs;
	json_object_foreach(pd, pat, attrs) {
		if (r)
			break;
		if (!json_is_array(attrs)) {
			r = df11_fail(DF11_INVALID_ARG, "pattern_dict[\"%s\"] is not "
				      "a list", pat);
			break;
		}
		int matched = 0;
		for (size_t j = 0; j <= nm && !r; j++) {
			/* The tied lm_head has no tensor of its own: it is a
			 * module still, coded from the embedding. */
			const char *mod = j < nm ? mods[j] : "lm_head";
			if (j == nm) {
				size_t e;
				if (!tied || df11_model_find(m, "lm_head.weight", &e) ==
						     DF11_OK ||
				    df11_model_find(m, "model.embed_tokens.weight",
						    &e) != DF11_OK)
					continue;
			}
			int fm = df11_dfl_fullmatch(pat, mod);
			if (fm < 0) {
				r = df11_fail(DF11_INVALID_ARG, "pattern_dict: cannot"
					      " read the regex \"%s\"", pat);
				break;
			}
			int taken = 0;
			for (size_t q = 0; q < s->ng; q++)
				taken |= !strcmp(s->g[q].name, mod);
			if (!fm || taken)
				continue;
			matched = 1;
			size_t nw = 0, e;
			snprintf(name, 8192, "%s.weight", mod);
			if (j == nm) {
				df11_model_find(m, "model.embed_tokens.weight", &e);
				src[nw++] = e;
			} else if (df11_model_find(m, name, &e) == DF11_OK) {
				src[nw++] = e; /* a Linear or Embedding */
			} else if (json_array_size(attrs) == 0) {
				r = df11_fail(DF11_INVALID_ARG, "module %s (pattern "
					      "\"%s\") has no weight and the pattern "
					      "lists no attributes", mod, pat);
				break;
			} else {
				size_t a;
				json_t *av;
				json_array_foreach(attrs, a, av) {
					const char *an = json_string_value(av);
					snprintf(name, 8192, "%s.%s.weight", mod,
						 an ? an : "");
					if (!an || df11_model_find(m, name, &e)) {
						r = df11_fail(DF11_INVALID_ARG,
							      "module %s: no tensor "
							      "%s", mod, name);
						break;
					}
					src[nw++] = e;
				}
			}
			for (size_t k = 0; k < nw && !r; k++) {
				df11_tensor_desc d;
				df11_model_tensor(m, src[k], &d);
				/* The official loader views a group's
				 * weights as Linear or Embedding matrices. */
				if (d.ndim != 2)
					r = df11_fail(DF11_INVALID_ARG, "%s: not a "
						      "matrix (%d dimensions): the "
						      "DFloat11 loader restores "
						      "Linear and Embedding weights "
						      "only", d.name, d.ndim);
				else if (d.dtype != DF11_DTYPE_BF16 || d.n_elems == 0)
					r = df11_fail(DF11_UNSUPPORTED, "%s: the "
						      "DFloat11 format compresses "
						      "BF16 weights only (it is %s)",
						      d.name,
						      df11_dtype_name(d.dtype));
				else if (s->owner[src[k]] < 0 && j < nm)
					r = df11_fail(DF11_INVALID_ARG, "%s is in "
						      "two groups", d.name);
				else if (j < nm)
					s->owner[src[k]] = -1;
			}
			if (!r)
				r = add_group(s, mod, src, nw);
		}
		(void)matched;
	}
	for (size_t j = 0; j < nm; j++)
		free(mods[j]);
	free(mods);
	free(src);
	free(name);
	if (r)
		return r;
	if (s->ng == 0)
		return df11_fail(DF11_INVALID_ARG, "%s: pattern_dict matches no "
				 "module", s->input);
	/* Every other tensor goes with the deepest group module above it,
	 * else to model.safetensors (owner 0). */
	for (size_t i = 0; i < nt; i++) {
		if (s->owner[i] < 0)
			continue;
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		size_t best = 0, bl = 0;
		for (size_t q = 0; q < s->ng; q++) {
			size_t l = strlen(s->g[q].name);
			if (l > bl && under(d.name, s->g[q].name)) {
				best = q + 1;
				bl = l;
			}
		}
		s->owner[i] = (int)best;
	}
	return DF11_OK;
}

/* config.json with "dfloat11_config" as its first member; the rest of the
 * original text unchanged (so the reader gives it back byte for byte). */
static df11_result make_config(const void *orig, size_t on, json_t *pd,
			       char **out, size_t *out_n)
{
	json_t *dc = json_pack("{s:s,s:[i],s:i,s:O}", "version", DFL_VERSION,
			       "threads_per_block", (int)DFL_THREADS_PER_BLOCK,
			       "bytes_per_thread", (int)DFL_BYTES_PER_THREAD,
			       "pattern_dict", pd);
	char *js = dc ? json_dumps(dc, JSON_INDENT(2)) : NULL;
	json_decref(dc);
	if (!js)
		return df11_fail(DF11_NOMEM, "config.json");
	/* Indent the nested object by two more spaces. */
	size_t jn = strlen(js), lines = 1;
	for (size_t i = 0; i < jn; i++)
		lines += js[i] == '\n';
	size_t cap = on + jn + 2 * lines + 64;
	char *s = malloc(cap);
	if (!s) {
		free(js);
		return df11_fail(DF11_NOMEM, "config.json");
	}
	const char *o = orig, *brace = orig ? memchr(o, '{', on) : NULL;
	size_t n = 0;
	n += (size_t)snprintf(s + n, cap - n, "{\n  \"dfloat11_config\": ");
	for (size_t i = 0; i < jn; i++) {
		s[n++] = js[i];
		if (js[i] == '\n') {
			s[n++] = ' ';
			s[n++] = ' ';
		}
	}
	free(js);
	if (brace) {
		const char *rest = brace + 1, *e = o + on, *q = rest;
		while (q < e && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
			q++;
		if (q < e && *q != '}')
			s[n++] = ',';
		memcpy(s + n, rest, (size_t)(e - rest));
		n += (size_t)(e - rest);
	} else {
		n += (size_t)snprintf(s + n, cap - n, "\n}\n");
	}
	/* The result must be the original object plus the member. */
	json_t *a = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(a) || !json_object_get(a, "dfloat11_config")) {
		json_decref(a);
		free(s);
		return df11_fail(DF11_BAD_DATA, "config.json: not a JSON object");
	}
	json_decref(a);
	*out = s;
	*out_n = n;
	return DF11_OK;
}

static df11_result write_rest(export_state *s, json_t *pd)
{
	df11_model *m = s->m;
	size_t nt = df11_model_num_tensors(m), n = 0;
	st_out *t = calloc(nt + 1, sizeof *t);
	uint8_t **bufs = calloc(nt + 1, sizeof *bufs);
	df11_result r = t && bufs ? DF11_OK : df11_fail(DF11_NOMEM, "tensors");
	for (size_t i = 0; i < nt && !r; i++) {
		if (s->owner[i] != 0)
			continue;
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		if (!(bufs[n] = malloc(d.nbytes + 1))) {
			r = df11_fail(DF11_NOMEM, "%s", d.name);
			break;
		}
		if ((r = df11_model_read(m, i, bufs[n], d.nbytes)))
			break;
		t[n] = (st_out){.name = d.name, .dtype = d.dtype, .ndim = d.ndim,
				.data = bufs[n], .size = d.nbytes};
		memcpy(t[n++].shape, d.shape, sizeof d.shape);
	}
	char *path = r ? NULL : df11_join_path(s->tmp, "model.safetensors");
	if (!r)
		r = path ? write_st(path, t, n) : df11_fail(DF11_NOMEM, "path");
	free(path);
	for (size_t i = 0; i < n + 1 && bufs; i++)
		free(bufs[i]);
	free(bufs);
	free(t);
	/* config.json, then the other files (tokenizer, generation
	 * config...); top-level ones, as the official loader reads. */
	const void *cp = NULL;
	size_t cn = 0;
	if (!r && df11_model_file(m, "config.json", &cp, &cn) != DF11_OK)
		cp = NULL;
	char *cfg = NULL;
	size_t cfn = 0;
	if (!r && !(r = make_config(cp, cn, pd, &cfg, &cfn))) {
		path = df11_join_path(s->tmp, "config.json");
		int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644)
			      : -1;
		r = fd < 0 ? df11_fail_errno(DF11_IO, errno, "config.json")
			   : df11_write_all(fd, cfg, cfn, path);
		if (fd >= 0)
			close(fd);
		free(path);
		free(cfg);
	}
	for (size_t i = 0; i < m->nf && !r; i++) {
		const df11_mfile *f = &m->f[i];
		if (f->is_st || strchr(f->name, '/') ||
		    !strcmp(f->name, "config.json") ||
		    !strcmp(f->name, "model.safetensors.index.json"))
			continue;
		const void *p;
		size_t pn;
		if ((r = df11_model_file(m, f->name, &p, &pn)))
			break;
		path = df11_join_path(s->tmp, f->name);
		int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644)
			      : -1;
		r = fd < 0 ? df11_fail_errno(DF11_IO, errno, "%s", f->name)
			   : df11_write_all(fd, p, pn, path);
		if (fd >= 0)
			close(fd);
		free(path);
	}
	return r;
}

df11_result df11_export_dfloat11(const char *input, const char *output,
				 const df11_dfloat11_options *opt_in,
				 df11_dfloat11_stats *stats_ret)
{
	static const df11_dfloat11_options defaults = {0};
	const df11_dfloat11_options *opt = opt_in ? opt_in : &defaults;
	if (!input || !output)
		return df11_fail(DF11_INVALID_ARG, "export: NULL path");
	df11_result r = df11_check_reserved(opt->reserved, 8, "DFloat11 options");
	if (!r)
		r = df11_check_output(output, opt->force);
	if (r)
		return r;
	export_state s = {.input = input, .opt = opt};
	if ((r = df11_model_open(input, &s.m)))
		return r;
	json_t *pd = NULL, *cfg = NULL;
	const void *cp;
	size_t cn;
	if (df11_model_file(s.m, "config.json", &cp, &cn) == DF11_OK)
		cfg = json_loadb(cp, cn, 0, NULL);
	int tied = 0;
	if (opt->pattern_dict) {
		json_error_t jerr;
		pd = json_loads(opt->pattern_dict, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(pd))
			r = df11_fail(DF11_INVALID_ARG, "pattern_dict: line %d: %s",
				      jerr.line, pd ? "not an object" : jerr.text);
	} else {
		df11_dfl_arch a;
		if (!cfg)
			r = df11_fail(DF11_UNSUPPORTED, "%s: no config.json: give a "
				      "pattern_dict", input);
		else if ((r = df11_dfl_arch_from_config(cfg, &a, input)))
			r = df11_fail(r, "%s (give a pattern_dict for other "
				      "models)", df11_last_error());
		else if (!strcmp(a.model_type, "gemma3"))
			r = df11_fail(DF11_UNSUPPORTED, "%s: Gemma 3 with vision: "
				      "give a pattern_dict", input);
		pd = r ? NULL : json_loads(default_patterns, 0, NULL);
		if (!r && !pd)
			r = df11_fail(DF11_NOMEM, "pattern_dict");
		const json_t *tw = json_object_get(cfg, "tie_word_embeddings");
		if (!r)
			tied = tw ? json_is_true(tw)
				  : !strncmp(a.model_type, "gemma", 5);
	}
	size_t nt = df11_model_num_tensors(s.m);
	s.owner = calloc(nt + 1, sizeof *s.owner);
	if (!r && !s.owner)
		r = df11_fail(DF11_NOMEM, "export");
	if (!r)
		r = find_groups(&s, pd, tied);
	char *tmp = NULL;
	int made = 0;
	if (!r && !(tmp = df11_temp_name(output)))
		r = df11_fail(DF11_NOMEM, "%s", output);
	if (!r && !(made = mkdtemp(tmp) != NULL))
		r = df11_fail_errno(DF11_IO, errno, "%s", output);
	if (!r) {
		chmod(tmp, 0755);
		s.tmp = tmp;
		for (size_t i = 0; i < s.ng; i++)
			s.total += 2 * s.g[i].n;
		int workers = opt->threads < 1 ? 1 : opt->threads;
		if ((size_t)workers > s.ng)
			workers = (int)s.ng;
		df11_parallel_run(workers, worker, &s);
		if (s.err)
			r = df11_fail(s.err, "%s", s.msg);
	}
	if (!r)
		r = write_rest(&s, pd);
	for (size_t i = 0; !r && opt->note && i < s.ng; i++)
		if (s.g[i].plain)
			opt->note(opt->note_ctx, s.g[i].name, s.g[i].why);
	if (!r)
		r = df11_commit_output(tmp, output);
	if (r && made)
		df11_remove_tree(tmp);
	if (!r && stats_ret) {
		df11_dfloat11_stats st = {0};
		st.n_groups = s.ng;
		for (size_t i = 0; i < s.ng; i++) {
			st.n_plain += (uint64_t)s.g[i].plain;
			st.n_weights += s.g[i].nw;
			st.bf16_bytes += 2 * s.g[i].n;
			st.stored_bytes += s.g[i].stored;
		}
		*stats_ret = st;
	}
	for (size_t i = 0; i < s.ng; i++) {
		free(s.g[i].name);
		free(s.g[i].src);
		free(s.g[i].ne);
	}
	free(s.g);
	free(s.owner);
	free(tmp);
	json_decref(pd);
	json_decref(cfg);
	df11_model_close(s.m);
	return r;
}

