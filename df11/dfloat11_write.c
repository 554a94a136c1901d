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
#include "df11/fsutil.h"
#include "df11/model_internal.h"
#include "common/parallel.h"
#include "huffman/huffman.h"

/* ------------------------------------------------------------ coding */

typedef struct wgroup {
	char *name;           /* module path */
	size_t *src;          /* model tensor (view index) of each weight */
	size_t nw;
	uint64_t n;
	int plain;            /* stored as BF16 weights */
	const char *why;      /* why plain */
	uint64_t stored;      /* bytes written for its weights */
} wgroup;

/* A coded group, as the six buffers. */
typedef struct coded {
	uint8_t *luts;
	unsigned n_luts;
	uint8_t *stream;
	uint64_t n_bytes;
	uint8_t *sm;
	uint8_t *op;
	uint64_t n_op;
	uint8_t *gaps;
	uint64_t gaps_size;
} coded;

static void coded_free(coded *c)
{
	free(c->luts);
	free(c->stream);
	free(c->sm);
	free(c->op);
	free(c->gaps);
	memset(c, 0, sizeof *c);
}

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

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Codes w[0..n) with the code; fills c (not luts). *max_block_ret: the
 * most elements any block holds. */
static df11_result encode_stream(const uint16_t *w, uint64_t n,
				 const uint64_t count[256], const uint8_t len[256],
				 const uint32_t code[256], coded *c,
				 uint64_t *max_block_ret)
{
	uint64_t bits = 0;
	for (unsigned e = 0; e < 256; e++)
		bits += count[e] * len[e];
	uint64_t nb = (bits + 7) / 8, blocks = (nb + DFL_BLOCK_BYTES - 1) /
					       DFL_BLOCK_BYTES;
	uint64_t chunks = blocks * DFL_THREADS_PER_BLOCK;
	c->n_bytes = nb;
	c->stream = malloc(nb + 8);
	c->sm = malloc(n);
	c->op = malloc(4 * (blocks + 2));
	uint8_t *gap = calloc(chunks + 1, 1);
	c->gaps_size = DFL_GAP_BYTES_PER_BLOCK * blocks;
	c->gaps = calloc(c->gaps_size + 1, 1);
	if (!c->stream || !c->sm || !c->op || !gap || !c->gaps) {
		free(gap);
		return df11_fail(DF11_NOMEM, "%llu-element group",
				 (unsigned long long)n);
	}
	uint64_t acc = 0, pos = 0, next_chunk = 0, next_block = 0, n_op = 0;
	unsigned nacc = 0;
	uint8_t *out = c->stream;
	uint64_t last_op = 0, max_block = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint16_t v = w[i];
		unsigned e = (v >> 7) & 255, l = len[e];
		c->sm[i] = (uint8_t)(((v >> 8) & 0x80) | (v & 0x7f));
		if (pos >> 6 == next_chunk) {
			gap[next_chunk++] = (uint8_t)(pos & 63);
			if (pos >> 15 == next_block) {
				df11_wr32(c->op + 4 * n_op++, (uint32_t)i);
				if (i - last_op > max_block)
					max_block = i - last_op;
				last_op = i;
				next_block++;
			}
		}
		acc = acc << l | code[e];
		nacc += l;
		pos += l;
		if (nacc >= 32) {
			nacc -= 32;
			put32(out, (uint32_t)(acc >> nacc));
			out += 4;
		}
	}
	/* The padding bits start a (never used) code, as the official
	 * writer's EOF does: its chunk and block are marked too. */
	if (pos % 8 && pos >> 6 == next_chunk) {
		gap[next_chunk++] = (uint8_t)(pos & 63);
		if (pos >> 15 == next_block) {
			df11_wr32(c->op + 4 * n_op++, (uint32_t)n);
			next_block++;
		}
	}
	if (n - last_op > max_block)
		max_block = n - last_op;
	df11_wr32(c->op + 4 * n_op++, (uint32_t)n);
	c->n_op = n_op;
	while (nacc >= 8) {
		nacc -= 8;
		*out++ = (uint8_t)(acc >> nacc);
	}
	if (nacc)
		*out++ = (uint8_t)(acc << (8 - nacc));
	/* 5 bits per chunk, MSB-first. */
	for (uint64_t t = 0; t < chunks; t++)
		for (unsigned b = 0; b < 5; b++)
			if (gap[t] >> (4 - b) & 1) {
				uint64_t bit = 5 * t + b;
				c->gaps[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
			}
	free(gap);
	*max_block_ret = max_block;
	return DF11_OK;
}

/* Codes one group; *why set (and nothing coded) if it must stay plain. */
static df11_result code_group(const uint16_t *w, uint64_t n, coded *c,
			      const char **why)
{
	df11_exponent_stats st;
	df11_exponent_histogram(w, n, &st);
	*why = NULL;
	for (unsigned e = DFL_PTR_MIN; e < 256; e++)
		if (st.count[e]) {
			*why = "exponents of 2^113 and above (or inf/NaN)";
			return DF11_OK;
		}
	if (st.distinct < 2) {
		*why = "a single exponent";
		return DF11_OK;
	}
	if (n > UINT32_MAX) {
		*why = "more than 2^32 elements";
		return DF11_OK;
	}
	static const unsigned limits[] = {32, 24, 20, 16, 12, 10, 8};
	for (size_t li = 0; li < sizeof limits / sizeof *limits; li++) {
		for (int longer = 0; longer < 2; longer++) {
			uint8_t len[256];
			uint32_t code[256];
			unsigned lim = limits[li] - (unsigned)longer;
			if (df11_huff_lengths(st.count, lim, len) < 0)
				continue;
			for (unsigned s = 0; s < 256 && longer; s++)
				len[s] = len[s] ? (uint8_t)(len[s] + 1) : 0;
			canon_codes(len, code);
			uint8_t luts[DFL_MAX_LUTS * 256];
			unsigned n_luts = build_luts(len, code, luts);
			if (!n_luts)
				break; /* try a shorter limit */
			uint64_t max_block = 0;
			df11_result r = encode_stream(w, n, st.count, len, code, c,
						      &max_block);
			if (r)
				return r;
			if (max_block > DFL_MAX_BLOCK_ELEMS) {
				coded_free(c);
				continue; /* one bit longer */
			}
			c->luts = malloc(256u * n_luts);
			if (!c->luts)
				return df11_fail(DF11_NOMEM, "tables");
			memcpy(c->luts, luts, 256u * n_luts);
			c->n_luts = n_luts;
			return DF11_OK;
		}
	}
	*why = "no code fits the official kernel's 16 sub-tables";
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

static df11_result write_st(const char *path, const st_out *t, size_t n)
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
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	df11_result r = fd < 0 ? df11_fail_errno(DF11_IO, errno, "%s", path)
			       : DF11_OK;
	if (!r)
		r = df11_write_all(fd, head, 8, path);
	if (!r)
		r = df11_write_all(fd, js, jn, path);
	if (!r && pad > jn)
		r = df11_write_all(fd, "        ", pad - jn, path);
	for (size_t i = 0; i < n && !r; i++)
		r = df11_write_all(fd, t[i].data, t[i].size, path);
	if (fd >= 0 && close(fd) < 0 && !r)
		r = df11_fail_errno(DF11_IO, errno, "%s", path);
	free(js);
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

static df11_result export_group(export_state *s, df11_model *m, size_t gi)
{
	wgroup *g = &s->g[gi];
	uint16_t *w = malloc(2 * g->n + 2);
	if (!w)
		return df11_fail(DF11_NOMEM, "group %s: %llu elements", g->name,
				 (unsigned long long)g->n);
	uint64_t at = 0;
	df11_result r = DF11_OK;
	for (size_t k = 0; k < g->nw && !r; k++) {
		df11_tensor_desc d;
		df11_model_tensor(m, g->src[k], &d);
		r = df11_model_read(m, g->src[k], w + at, d.nbytes);
		at += d.n_elems;
	}
	coded c = {0};
	const char *why = NULL;
	if (!r)
		r = code_group(w, g->n, &c, &why);
	/* The group's file: its buffers (or plain weights), then the
	 * module's other tensors. */
	size_t cap = g->nw + 8 + df11_model_num_tensors(m);
	st_out *t = calloc(cap, sizeof *t);
	char **names = calloc(8, sizeof *names);
	uint8_t **extra = calloc(df11_model_num_tensors(m) + 1, sizeof *extra);
	uint8_t *split = malloc(8 * g->nw + 8);
	size_t nt = 0, nx = 0;
	if (!r && (!t || !names || !extra || !split))
		r = df11_fail(DF11_NOMEM, "group %s", g->name);
	if (!r && why) {
		g->plain = 1;
		g->why = why;
		at = 0;
		for (size_t k = 0; k < g->nw; k++) {
			df11_tensor_desc d;
			df11_model_tensor(m, g->src[k], &d);
			t[nt] = (st_out){.name = d.name, .dtype = DF11_DTYPE_BF16,
					 .ndim = d.ndim, .data = w + at,
					 .size = d.nbytes};
			memcpy(t[nt++].shape, d.shape, sizeof d.shape);
			at += d.n_elems;
		}
		g->stored = 2 * g->n;
	} else if (!r) {
		uint64_t cum = 0;
		for (size_t k = 0; k + 1 < g->nw; k++) {
			df11_tensor_desc d;
			df11_model_tensor(m, g->src[k], &d);
			cum += d.n_elems;
			df11_wr64(split + 8 * k, cum);
		}
		const void *data[DFL_N_BUFFERS] = {c.luts, c.stream, c.sm, c.op,
						   c.gaps, split};
		uint64_t size[DFL_N_BUFFERS] = {256u * c.n_luts, c.n_bytes, g->n,
						4 * c.n_op, c.gaps_size,
						8 * (g->nw - 1)};
		for (int b = 0; b < DFL_N_BUFFERS && !r; b++) {
			size_t ln = strlen(g->name) + 24;
			if (!(names[b] = malloc(ln))) {
				r = df11_fail(DF11_NOMEM, "group %s", g->name);
				break;
			}
			snprintf(names[b], ln, "%s.%s", g->name, dfl_suffix[b]);
			t[nt] = (st_out){.name = names[b],
					 .dtype = b == DFL_SPLIT ? DF11_DTYPE_I64
								 : DF11_DTYPE_U8,
					 .ndim = b == DFL_LUTS ? 2 : 1,
					 .data = data[b], .size = size[b]};
			t[nt].shape[0] = b == DFL_LUTS ? c.n_luts
				       : b == DFL_SPLIT ? g->nw - 1 : size[b];
			t[nt++].shape[1] = 256;
			g->stored += size[b];
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
	if (!r) {
		char *fn = file_name_of(g->name), *path = fn ? df11_join_path(s->tmp, fn)
							     : NULL;
		r = path ? write_st(path, t, nt) : df11_fail(DF11_NOMEM, "%s", g->name);
		free(fn);
		free(path);
	}
	for (size_t b = 0; names && b < 8; b++)
		free(names[b]);
	for (size_t i = 0; i < nx; i++)
		free(extra[i]);
	free(names);
	free(extra);
	free(split);
	free(t);
	coded_free(&c);
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
	for (;;) {
		if (__atomic_load_n(&s->err, __ATOMIC_SEQ_CST))
			break;
		int gi = __atomic_fetch_add(&s->next, 1, __ATOMIC_SEQ_CST);
		if (gi >= (int)s->ng)
			break;
		r = export_group(s, m, (size_t)gi);
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
	if (!g->name || !g->src) {
		free(g->name);
		free(g->src);
		return df11_fail(DF11_NOMEM, "groups");
	}
	s->ng++;
	memcpy(g->src, src, nw * sizeof *src);
	g->nw = nw;
	for (size_t k = 0; k < nw; k++) {
		df11_tensor_desc d;
		df11_model_tensor(s->m, src[k], &d);
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
	}
	free(s.g);
	free(s.owner);
	free(tmp);
	json_decref(pd);
	json_decref(cfg);
	df11_model_close(s.m);
	return r;
}

