/*
 * An official DFloat11 folder as a checkpoint: df11_model_open shows the
 * BF16 checkpoint it was made from.
 *
 * The model's files are that checkpoint's, made on the fly: one
 * model.safetensors (or model-0000i-of-0000N.safetensors shards and their
 * index past df11_dfl_shard_bytes) holding every tensor in name order,
 * compressed weights under their Hugging Face names and shapes, the other
 * tensors as stored; config.json without "dfloat11_config"; every other
 * top-level file as it is. A compressed weight is decoded when read, from
 * the blocks that hold it only.
 */
#include <dirent.h>
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
#include "df11/safetensors.h"

uint64_t df11_dfl_shard_bytes = 5000000000ull;
#define CONFIG_NAME "config.json"
#define INDEX_NAME "model.safetensors.index.json"

typedef struct dfl_piece {
	size_t group;
	uint64_t off; /* first element in the group */
} dfl_piece;

/* A tensor of the source files. */
typedef struct src_tensor {
	const char *name; /* owned by the parsed header */
	size_t file;
	const df11_st_tensor *st;
	const uint8_t *data;
	int used;         /* a group buffer */
} src_tensor;

/* A tensor of the checkpoint shown. */
typedef struct out_tensor {
	char *name;
	df11_dtype dtype;
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	uint64_t nbytes, n_elems;
	const uint8_t *data;  /* pass-through */
	size_t piece;         /* 1 + index, decoded weights */
	uint64_t share;       /* stored bytes (its share of the group) */
} out_tensor;

struct df11_dfl_model {
	df11_map *maps;
	df11_st_header *hdr;
	size_t n_src;
	df11_dfl_group *g;
	size_t ng;
	dfl_piece *pc;
	size_t npc;
	char **owned; /* header and config bytes of the files shown */
	size_t n_owned;
};

void df11_dfl_free(df11_dfl_model *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_src; i++) {
		df11_st_header_free(&d->hdr[i]);
		df11_unmap(&d->maps[i]);
	}
	for (size_t i = 0; i < d->ng; i++)
		df11_dfl_group_release(&d->g[i]);
	for (size_t i = 0; i < d->n_owned; i++)
		free(d->owned[i]);
	free(d->maps);
	free(d->hdr);
	free(d->g);
	free(d->pc);
	free(d->owned);
	free(d);
}

static int own(df11_dfl_model *d, char *p)
{
	char **o = realloc(d->owned, (d->n_owned + 1) * sizeof *o);
	if (!o) {
		free(p);
		return -1;
	}
	d->owned = o;
	d->owned[d->n_owned++] = p;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

int df11_dfl_detect(const char *path)
{
	char *cfg = df11_join_path(path, CONFIG_NAME);
	if (!cfg)
		return 0;
	json_t *root = json_load_file(cfg, 0, NULL);
	free(cfg);
	int yes = json_is_object(root) &&
		  json_object_get(root, "dfloat11_config") != NULL;
	json_decref(root);
	return yes;
}

/* ------------------------------------------------------------ helpers */

static int cmp_src(const void *a, const void *b)
{
	return strcmp(((const src_tensor *)a)->name, ((const src_tensor *)b)->name);
}

static src_tensor *find_src(src_tensor *v, size_t n, const char *name)
{
	src_tensor key = {.name = name};
	return bsearch(&key, v, n, sizeof *v, cmp_src);
}

static int cmp_out(const void *a, const void *b)
{
	return strcmp(((const out_tensor *)a)->name, ((const out_tensor *)b)->name);
}

typedef struct open_state {
	df11_model *m;
	df11_dfl_model *d;
	const char *label;
	json_t *config;
	src_tensor *src;
	size_t nsrc;
	out_tensor *out;
	size_t nout, cap;
	char **plain;      /* carried files */
	size_t nplain;
} open_state;

static df11_result add_out(open_state *s, const out_tensor *t)
{
	if (s->nout == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		out_tensor *o = realloc(s->out, cap * sizeof *o);
		if (!o)
			return df11_fail(DF11_NOMEM, "%s", s->label);
		s->out = o;
		s->cap = cap;
	}
	s->out[s->nout++] = *t;
	return DF11_OK;
}

/* ---------------------------------------------------------- the config */

static df11_result read_dfl_config(open_state *s)
{
	const json_t *dc = json_object_get(s->config, "dfloat11_config");
	if (!json_is_object(dc))
		return df11_fail(DF11_BAD_DATA, "%s: config.json: dfloat11_config "
				 "is not an object", s->label);
	const json_t *bpt = json_object_get(dc, "bytes_per_thread");
	const json_t *tpb = json_object_get(dc, "threads_per_block");
	if (json_is_array(tpb))
		tpb = json_array_get(tpb, 0);
	if (!json_is_integer(bpt) ||
	    json_integer_value(bpt) != DFL_BYTES_PER_THREAD ||
	    !json_is_integer(tpb) ||
	    json_integer_value(tpb) != DFL_THREADS_PER_BLOCK)
		return df11_fail(DF11_UNSUPPORTED, "%s: config.json: DFloat11 "
				 "streams cut for other than %u threads of %u "
				 "bytes", s->label, DFL_THREADS_PER_BLOCK,
				 DFL_BYTES_PER_THREAD);
	const json_t *pd = json_object_get(dc, "pattern_dict");
	if (!json_is_object(pd))
		return df11_fail(DF11_BAD_DATA, "%s: config.json: no pattern_dict "
				 "object", s->label);
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)pd, k, v) {
		size_t i;
		const json_t *a;
		if (!json_is_array(v))
			return df11_fail(DF11_BAD_DATA, "%s: pattern_dict[\"%s\"] is "
					 "not a list", s->label, k);
		json_array_foreach(v, i, a)
			if (!json_is_string(a))
				return df11_fail(DF11_BAD_DATA, "%s: pattern_dict"
						 "[\"%s\"] holds a non-string",
						 s->label, k);
	}
	return DF11_OK;
}

/* ----------------------------------------------------- source files */

static df11_result list_folder(open_state *s, const char *path,
			       char ***st_ret, size_t *nst_ret)
{
	DIR *dir = opendir(path);
	if (!dir)
		return df11_fail_errno(DF11_IO, errno, "%s", path);
	char **st = NULL;
	size_t nst = 0;
	df11_result r = DF11_OK;
	struct dirent *e;
	while ((e = readdir(dir)) && !r) {
		if (e->d_name[0] == '.' && (!e->d_name[1] ||
		    (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		char *full = df11_join_path(path, e->d_name);
		struct stat sb;
		if (!full) {
			r = df11_fail(DF11_NOMEM, "%s", path);
			break;
		}
		int reg = stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
		free(full);
		if (!reg || !df11_safe_relpath(e->d_name))
			continue; /* the official loader reads top-level files */
		int is_st = ends_with(e->d_name, ".safetensors");
		if (!is_st && (!strcmp(e->d_name, CONFIG_NAME) ||
			       !strcmp(e->d_name, INDEX_NAME)))
			continue;
		char ***v = is_st ? &st : &s->plain;
		size_t *n = is_st ? &nst : &s->nplain;
		char **nv = realloc(*v, (*n + 1) * sizeof **v);
		if (!nv || !(nv[*n] = strdup(e->d_name))) {
			if (nv)
				*v = nv;
			r = df11_fail(DF11_NOMEM, "%s", path);
			break;
		}
		*v = nv;
		(*n)++;
	}
	closedir(dir);
	*st_ret = st;
	*nst_ret = nst;
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static df11_result open_sources(open_state *s, const char *path, char **st,
				size_t nst)
{
	df11_dfl_model *d = s->d;
	d->maps = calloc(nst + 1, sizeof *d->maps);
	d->hdr = calloc(nst + 1, sizeof *d->hdr);
	if (!d->maps || !d->hdr)
		return df11_fail(DF11_NOMEM, "%s", path);
	size_t total = 0;
	for (size_t i = 0; i < nst; i++) {
		char *full = df11_join_path(path, st[i]);
		if (!full)
			return df11_fail(DF11_NOMEM, "%s", path);
		df11_result r = df11_map_file(full, &d->maps[i]);
		d->n_src = i + 1;
		if (!r)
			r = df11_st_parse(d->maps[i].p, d->maps[i].size,
					  d->maps[i].size, full, &d->hdr[i]);
		free(full);
		if (r)
			return r;
		total += d->hdr[i].n;
	}
	s->src = calloc(total + 1, sizeof *s->src);
	if (!s->src)
		return df11_fail(DF11_NOMEM, "%s", path);
	for (size_t i = 0; i < nst; i++)
		for (size_t k = 0; k < d->hdr[i].n; k++) {
			const df11_st_tensor *t = &d->hdr[i].t[k];
			s->src[s->nsrc++] = (src_tensor){
				.name = t->name, .file = i, .st = t,
				.data = d->maps[i].p + d->hdr[i].data_off + t->begin};
		}
	qsort(s->src, s->nsrc, sizeof *s->src, cmp_src);
	for (size_t i = 1; i < s->nsrc; i++)
		if (!strcmp(s->src[i].name, s->src[i - 1].name))
			return df11_fail(DF11_BAD_DATA, "%s: tensor %s is in two "
					 "files", path, s->src[i].name);
	return DF11_OK;
}

/* ------------------------------------------------------------- groups */

static df11_result load_group(open_state *s, const char *prefix,
			      df11_dfl_group *g)
{
	const src_tensor *b[DFL_N_BUFFERS];
	size_t pl = strlen(prefix);
	char *key = malloc(pl + 32);
	if (!key)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	for (int i = 0; i < DFL_N_BUFFERS; i++) {
		snprintf(key, pl + 32, "%s.%s", prefix, dfl_suffix[i]);
		src_tensor *t = find_src(s->src, s->nsrc, key);
		if (!t) {
			df11_result r = df11_fail(DF11_BAD_DATA, "%s: group %s: no "
						  "tensor %s", s->label, prefix,
						  key);
			free(key);
			return r;
		}
		t->used = 1;
		b[i] = t;
	}
	free(key);
	if (!(g->name = strdup(prefix)))
		return df11_fail(DF11_NOMEM, "%s", s->label);
	for (int i = 0; i < DFL_N_BUFFERS; i++) {
		const df11_st_tensor *t = b[i]->st;
		int want_ndim = i == DFL_LUTS ? 2 : 1;
		df11_dtype want = i == DFL_SPLIT ? DF11_DTYPE_I64 : DF11_DTYPE_U8;
		if (t->dtype != want || t->ndim != want_ndim ||
		    (i == DFL_LUTS && t->shape[1] != 256) ||
		    (i == DFL_OUTPUT_POS && t->shape[0] % 4))
			return df11_fail(DF11_BAD_DATA, "%s: group %s: %s is %s "
					 "with %d dimensions, not as the format "
					 "says", s->label, prefix, dfl_suffix[i],
					 df11_dtype_name(t->dtype), t->ndim);
	}
	g->luts = b[DFL_LUTS]->data;
	g->n_luts = b[DFL_LUTS]->st->shape[0] > 65536
			    ? 65536
			    : (unsigned)b[DFL_LUTS]->st->shape[0];
	g->stream = b[DFL_STREAM]->data;
	g->n_bytes = b[DFL_STREAM]->st->shape[0];
	g->sm = b[DFL_SM]->data;
	g->n = b[DFL_SM]->st->shape[0];
	g->op = b[DFL_OUTPUT_POS]->data;
	g->n_op = b[DFL_OUTPUT_POS]->st->shape[0] / 4;
	g->gaps = b[DFL_GAPS]->data;
	g->gaps_size = b[DFL_GAPS]->st->shape[0];
	g->split = b[DFL_SPLIT]->data;
	g->n_split = b[DFL_SPLIT]->st->shape[0];
	g->blocks = (g->n_bytes + DFL_BLOCK_BYTES - 1) / DFL_BLOCK_BYTES;
	return df11_dfl_group_check(g, s->label);
}

/* The group's weights: names from pattern_dict, shapes from the config. */
static df11_result group_weights(open_state *s, size_t gi,
				 const df11_dfl_arch *arch)
{
	df11_dfl_group *g = &s->d->g[gi];
	const json_t *pd = json_object_get(
		json_object_get(s->config, "dfloat11_config"), "pattern_dict");
	const char *pat;
	const json_t *attrs = NULL, *v;
	json_object_foreach((json_t *)pd, pat, v) {
		int mr = df11_dfl_fullmatch(pat, g->name);
		if (mr < 0)
			return df11_fail(DF11_UNSUPPORTED, "%s: pattern_dict: "
					 "cannot read the regex \"%s\"", s->label,
					 pat);
		if (mr) {
			attrs = v;
			break;
		}
	}
	if (!attrs)
		return df11_fail(DF11_BAD_DATA, "%s: group %s matches no pattern "
				 "of pattern_dict", s->label, g->name);
	uint64_t k = g->n_split + 1, na = json_array_size(attrs);
	if (na != k && k != 1)
		return df11_fail(DF11_BAD_DATA, "%s: group %s holds %llu weights, "
				 "its pattern lists %llu", s->label, g->name,
				 (unsigned long long)k, (unsigned long long)na);
	for (uint64_t w = 0; w < k; w++) {
		uint64_t lo = w ? df11_rd64(g->split + 8 * (w - 1)) : 0;
		uint64_t hi = w + 1 < k ? df11_rd64(g->split + 8 * w) : g->n;
		out_tensor t = {.dtype = DF11_DTYPE_BF16, .ndim = 2,
				.n_elems = hi - lo, .nbytes = 2 * (hi - lo)};
		const char *attr = na == k ? json_string_value(
						     json_array_get(attrs, w))
					   : NULL;
		size_t len = strlen(g->name) + (attr ? strlen(attr) : 0) + 16;
		if (!(t.name = malloc(len)))
			return df11_fail(DF11_NOMEM, "%s", s->label);
		snprintf(t.name, len, attr ? "%s.%s.weight" : "%s.weight", g->name,
			 attr);
		df11_result r = df11_dfl_arch_shape(arch, t.name, t.shape, s->label);
		if (!r && t.shape[0] * t.shape[1] != t.n_elems)
			r = df11_fail(DF11_BAD_DATA, "%s: group %s: weight %s has "
				      "%llu elements, config.json gives it %llu "
				      "x %llu", s->label, g->name, t.name,
				      (unsigned long long)t.n_elems,
				      (unsigned long long)t.shape[0],
				      (unsigned long long)t.shape[1]);
		if (r) {
			free(t.name);
			return r;
		}
		dfl_piece *pc = realloc(s->d->pc, (s->d->npc + 1) * sizeof *pc);
		if (!pc) {
			free(t.name);
			return df11_fail(DF11_NOMEM, "%s", s->label);
		}
		s->d->pc = pc;
		pc[s->d->npc] = (dfl_piece){.group = gi, .off = lo};
		t.piece = ++s->d->npc;
		/* Its share of what the group stores. */
		uint64_t stored = 256ull * g->n_luts + g->n_bytes + g->n +
				  4 * g->n_op + g->gaps_size + 8 * g->n_split;
		t.share = (uint64_t)((double)stored * (double)t.n_elems /
				     (double)g->n);
		if ((r = add_out(s, &t))) {
			free(t.name);
			return r;
		}
	}
	return DF11_OK;
}

static df11_result find_groups(open_state *s)
{
	static const char suffix[] = ".encoded_exponent";
	size_t ng = 0;
	for (size_t i = 0; i < s->nsrc; i++)
		ng += ends_with(s->src[i].name, suffix);
	df11_dfl_model *d = s->d;
	d->g = calloc(ng + 1, sizeof *d->g);
	if (!d->g)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	df11_dfl_arch arch;
	df11_result r = ng ? df11_dfl_arch_from_config(s->config, &arch, s->label)
			   : DF11_OK;
	for (size_t i = 0; i < s->nsrc && !r; i++) {
		if (!ends_with(s->src[i].name, suffix))
			continue;
		size_t pl = strlen(s->src[i].name) - (sizeof suffix - 1);
		char *prefix = strndup(s->src[i].name, pl);
		if (!prefix)
			return df11_fail(DF11_NOMEM, "%s", s->label);
		r = load_group(s, prefix, &d->g[d->ng]);
		d->ng++;
		free(prefix);
		if (!r)
			r = group_weights(s, d->ng - 1, &arch);
	}
	if (r)
		return r;
	for (size_t i = 0; i < s->nsrc; i++) {
		const src_tensor *t = &s->src[i];
		if (t->used)
			continue;
		out_tensor o = {.dtype = t->st->dtype, .ndim = t->st->ndim,
				.n_elems = t->st->n_elems,
				.nbytes = t->st->end - t->st->begin,
				.data = t->data};
		memcpy(o.shape, t->st->shape, sizeof o.shape);
		o.share = o.nbytes;
		if (!(o.name = strdup(t->name)))
			return df11_fail(DF11_NOMEM, "%s", s->label);
		if ((r = add_out(s, &o))) {
			free(o.name);
			return r;
		}
	}
	if (s->nout)
		qsort(s->out, s->nout, sizeof *s->out, cmp_out);
	for (size_t i = 1; i < s->nout; i++)
		if (!strcmp(s->out[i].name, s->out[i - 1].name))
			return df11_fail(DF11_BAD_DATA, "%s: two tensors named %s",
					 s->label, s->out[i].name);
	return DF11_OK;
}

/* ------------------------------------------------------- files shown */

/* One safetensors file over out[a, z): its header built here. */
static df11_result add_shard(open_state *s, const char *name, size_t a,
			     size_t z)
{
	df11_model *m = s->m;
	json_t *h = json_object();
	json_t *meta = json_pack("{s:s}", "format", "pt");
	if (!h || !meta || json_object_set_new(h, "__metadata__", meta)) {
		json_decref(h);
		return df11_fail(DF11_NOMEM, "%s", s->label);
	}
	uint64_t off = 0;
	for (size_t i = a; i < z; i++) {
		const out_tensor *t = &s->out[i];
		json_t *shape = json_array();
		for (int k = 0; shape && k < t->ndim; k++)
			json_array_append_new(shape,
					      json_integer((json_int_t)t->shape[k]));
		json_t *e = json_pack("{s:s,s:o,s:[I,I]}", "dtype",
				      df11_dtype_name(t->dtype), "shape", shape,
				      "data_offsets", (json_int_t)off,
				      (json_int_t)(off + t->nbytes));
		if (!e || json_object_set_new(h, t->name, e)) {
			json_decref(h);
			return df11_fail(DF11_NOMEM, "%s", s->label);
		}
		off += t->nbytes;
	}
	char *js = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	if (!js)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	size_t jn = strlen(js), padded = (jn + 7) / 8 * 8;
	char *sect = malloc(8 + padded);
	if (!sect || own(s->d, sect)) {
		free(js);
		return df11_fail(DF11_NOMEM, "%s", s->label);
	}
	df11_wr64((uint8_t *)sect, padded);
	memcpy(sect + 8, js, jn);
	memset(sect + 8 + jn, ' ', padded - jn);
	free(js);
	df11_mfile *f = df11_model_add_file(m, name);
	if (!f)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	f->is_st = 1;
	f->exposed = 1;
	f->sect = (const uint8_t *)sect;
	f->sect_size = 8 + padded;
	f->orig_size = 8 + padded + off;
	/* Its own header, read back as any other. */
	df11_st_header hd;
	df11_result r = df11_st_parse(f->sect, f->sect_size, f->orig_size, name,
				      &hd);
	if (r)
		return r;
	if (hd.n != z - a) {
		df11_st_header_free(&hd);
		return df11_fail(DF11_BAD_DATA, "%s: %s: header of %zu tensors "
				 "for %zu", s->label, name, hd.n, z - a);
	}
	df11_mtensor *mt = realloc(m->t, (m->nt + hd.n + 1) * sizeof *mt);
	if (!mt) {
		df11_st_header_free(&hd);
		return df11_fail(DF11_NOMEM, "%s", s->label);
	}
	m->t = mt;
	f = &m->f[m->nf - 1];
	f->first = m->nt;
	f->count = hd.n;
	for (size_t i = 0; i < hd.n; i++) {
		const out_tensor *o = &s->out[a + i];
		df11_mtensor *t = &m->t[m->nt];
		memset(t, 0, sizeof *t);
		if (strcmp(hd.t[i].name, o->name) || !(t->name = strdup(o->name))) {
			df11_st_header_free(&hd);
			return df11_fail(DF11_NOMEM, "%s", s->label);
		}
		m->nt++;
		t->file = m->nf - 1;
		t->begin = hd.t[i].begin;
		t->d.name = t->name;
		t->d.dtype = o->dtype;
		t->d.ndim = o->ndim;
		memcpy(t->d.shape, o->shape, sizeof o->shape);
		t->d.n_elems = o->n_elems;
		t->d.nbytes = o->nbytes;
		t->d.compressed = o->piece != 0;
		t->d.stored_bytes = o->share;
		t->stored = o->data;
		t->dfl = o->piece;
	}
	df11_st_header_free(&hd);
	return DF11_OK;
}

static df11_result add_index(open_state *s, const size_t *cut, size_t nshard,
			     uint64_t total)
{
	json_t *root = json_object(), *map = json_object();
	json_t *meta = json_pack("{s:I}", "total_size", (json_int_t)total);
	if (!root || !map || !meta || json_object_set_new(root, "metadata", meta) ||
	    json_object_set_new(root, "weight_map", map)) {
		json_decref(root);
		return df11_fail(DF11_NOMEM, "%s", s->label);
	}
	for (size_t k = 0; k < nshard; k++) {
		char name[64];
		snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors",
			 k + 1, nshard);
		for (size_t i = cut[k]; i < cut[k + 1]; i++)
			if (json_object_set_new(map, s->out[i].name,
						json_string(name))) {
				json_decref(root);
				return df11_fail(DF11_NOMEM, "%s", s->label);
			}
	}
	char *js = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (!js || own(s->d, js))
		return df11_fail(DF11_NOMEM, "%s", s->label);
	df11_mfile *f = df11_model_add_file(s->m, INDEX_NAME);
	if (!f)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	f->sect = (const uint8_t *)js;
	f->sect_size = f->orig_size = strlen(js);
	return DF11_OK;
}

static df11_result add_files(open_state *s, const char *path,
			     const char *cfg_text, size_t cfg_size)
{
	uint64_t total = 0;
	for (size_t i = 0; i < s->nout; i++)
		total += s->out[i].nbytes;
	size_t *cut = malloc((s->nout + 2) * sizeof *cut);
	if (!cut)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	size_t nshard = 0;
	uint64_t in = 0;
	cut[0] = 0;
	for (size_t i = 0; i < s->nout; i++) {
		if (in && in + s->out[i].nbytes > df11_dfl_shard_bytes) {
			cut[++nshard] = i;
			in = 0;
		}
		in += s->out[i].nbytes;
	}
	cut[++nshard] = s->nout;
	df11_result r = DF11_OK;
	for (size_t k = 0; k < nshard && !r; k++) {
		char name[64];
		if (nshard == 1)
			snprintf(name, sizeof name, "model.safetensors");
		else
			snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors",
				 k + 1, nshard);
		r = add_shard(s, name, cut[k], cut[k + 1]);
	}
	if (!r && nshard > 1)
		r = add_index(s, cut, nshard, total);
	free(cut);
	if (r)
		return r;
	char *cfg;
	size_t cn;
	if ((r = df11_dfl_strip_config(cfg_text, cfg_size, &cfg, &cn)))
		return df11_fail(r, "%s: %s", s->label, df11_last_error());
	if (own(s->d, cfg))
		return df11_fail(DF11_NOMEM, "%s", s->label);
	df11_mfile *f = df11_model_add_file(s->m, CONFIG_NAME);
	if (!f)
		return df11_fail(DF11_NOMEM, "%s", s->label);
	f->sect = (const uint8_t *)cfg;
	f->sect_size = f->orig_size = cn;
	for (size_t i = 0; i < s->nplain; i++) {
		char *full = df11_join_path(path, s->plain[i]);
		if (!full || !(f = df11_model_add_file(s->m, s->plain[i]))) {
			free(full);
			return df11_fail(DF11_NOMEM, "%s", s->label);
		}
		r = df11_map_file(full, &f->map);
		free(full);
		if (r)
			return r;
		f->sect = f->map.p;
		f->sect_size = f->orig_size = f->map.size;
	}
	return DF11_OK;
}

df11_result df11_dfl_open(df11_model *m)
{
	const char *path = m->path;
	df11_dfl_model *d = calloc(1, sizeof *d);
	if (!d)
		return df11_fail(DF11_NOMEM, "%s", path);
	m->dfl = d;
	open_state s = {.m = m, .d = d, .label = path};
	char **st = NULL;
	size_t nst = 0;
	df11_map cfg = {0};
	char *cfg_path = df11_join_path(path, CONFIG_NAME);
	df11_result r = cfg_path ? df11_map_file(cfg_path, &cfg)
				 : df11_fail(DF11_NOMEM, "%s", path);
	free(cfg_path);
	if (!r) {
		json_error_t jerr;
		s.config = json_loadb((const char *)cfg.p, (size_t)cfg.size,
				      JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(s.config))
			r = df11_fail(DF11_BAD_DATA, "%s/config.json: line %d: %s",
				      path, jerr.line, jerr.text);
	}
	if (!r)
		r = read_dfl_config(&s);
	if (!r)
		r = list_folder(&s, path, &st, &nst);
	if (!r && nst == 0)
		r = df11_fail(DF11_NOT_FOUND, "%s: no .safetensors file in the "
			      "folder", path);
	if (!r) {
		qsort(st, nst, sizeof *st, cmp_str);
		if (s.nplain)
			qsort(s.plain, s.nplain, sizeof *s.plain, cmp_str);
		r = open_sources(&s, path, st, nst);
	}
	if (!r)
		r = find_groups(&s);
	if (!r)
		r = add_files(&s, path, (const char *)cfg.p, (size_t)cfg.size);
	for (size_t i = 0; i < nst; i++)
		free(st[i]);
	free(st);
	for (size_t i = 0; i < s.nplain; i++)
		free(s.plain[i]);
	free(s.plain);
	for (size_t i = 0; i < s.nout; i++)
		free(s.out[i].name);
	free(s.out);
	free(s.src);
	json_decref(s.config);
	df11_unmap(&cfg);
	return r;
}

df11_result df11_dfl_read(df11_model *m, const df11_mtensor *t, uint64_t first,
			  uint64_t count, uint16_t *dst)
{
	const dfl_piece *p = &m->dfl->pc[t->dfl - 1];
	df11_dfl_group *g = &m->dfl->g[p->group];
	return df11_dfl_group_decode(g, p->off + first, count, dst, m->threads,
				     m->path);
}

size_t df11_dfl_group_count(const df11_model *m)
{
	return m->dfl ? m->dfl->ng : 0;
}

df11_dfl_group *df11_dfl_group_get(df11_model *m, size_t i)
{
	return m->dfl && i < m->dfl->ng ? &m->dfl->g[i] : NULL;
}

/* ------------------------------------------------------------- export */

df11_result df11_dfl_unpack(df11_model *m, const char *output,
			    const df11_pack_options *opt,
			    df11_pack_stats *stats_ret)
{
	df11_model_set_threads(m, opt->threads > 0 ? opt->threads : 1);
	char *tmp = df11_temp_name(output);
	if (!tmp)
		return df11_fail(DF11_NOMEM, "%s", output);
	if (!mkdtemp(tmp)) {
		df11_result r = df11_fail_errno(DF11_IO, errno, "%s", output);
		free(tmp);
		return r;
	}
	chmod(tmp, 0755);
	df11_pack_stats st = {0};
	uint64_t total = 0, done = 0, maxb = 0;
	for (size_t i = 0; i < m->nf; i++)
		total += m->f[i].orig_size;
	for (size_t i = 0; i < m->nt; i++)
		if (m->t[i].d.nbytes > maxb)
			maxb = m->t[i].d.nbytes;
	uint8_t *buf = maxb ? malloc((size_t)maxb) : NULL;
	df11_result r = maxb && !buf ? df11_fail(DF11_NOMEM, "%llu-byte tensor",
						 (unsigned long long)maxb)
				     : DF11_OK;
	for (size_t i = 0; i < m->nf && !r; i++) {
		const df11_mfile *f = &m->f[i];
		char *path = df11_join_path(tmp, f->name);
		int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				     0644)
			      : -1;
		if (fd < 0) {
			r = path ? df11_fail_errno(DF11_IO, errno, "%s", path)
				 : df11_fail(DF11_NOMEM, "%s", output);
			free(path);
			break;
		}
		r = df11_write_all(fd, f->sect, f->sect_size, path);
		done += f->sect_size;
		for (size_t k = f->first; f->is_st && k < f->first + f->count && !r;
		     k++) {
			const df11_mtensor *t = &m->t[k];
			r = df11_mtensor_read(m, k, buf, t->d.nbytes, 1);
			if (!r)
				r = df11_write_all(fd, buf, t->d.nbytes, path);
			st.n_compressed += t->d.compressed != 0;
			st.bf16_stored += t->d.compressed ? t->d.stored_bytes : 0;
			st.bf16_elems += t->d.compressed ? t->d.n_elems : 0;
			done += t->d.nbytes;
			if (!r && opt->progress &&
			    opt->progress(opt->progress_ctx, done, total))
				r = df11_fail(DF11_CANCELLED, "interrupted");
		}
		if (close(fd) < 0 && !r)
			r = df11_fail_errno(DF11_IO, errno, "%s", path);
		free(path);
	}
	free(buf);
	if (!r)
		r = df11_commit_output(tmp, output);
	if (r) {
		df11_remove_tree(tmp);
	} else if (stats_ret) {
		st.n_files = m->nf;
		st.n_tensors = m->nt;
		st.orig_bytes = st.bytes_out = total;
		for (size_t i = 0; i < m->dfl->n_src; i++)
			st.container_bytes += m->dfl->maps[i].size;
		st.bytes_in = st.container_bytes;
		*stats_ret = st;
	}
	free(tmp);
	return r;
}
