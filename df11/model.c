/*
 * The checkpoint API: one view over a .safetensors file, a checkpoint
 * folder or a .df11 container. Files are mapped, never read whole; a
 * tensor is read (decoded, checked) only when asked for.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "df11.h"
#include "common/error.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "df11/safetensors.h"
#include "df11/xxh.h"

#define MAX_DEPTH 16

uint64_t df11_xxh3(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

int df11_safe_relpath(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DF11_CT_MAX_NAME || s[0] == '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
			return 0;
	const char *p = s;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!e)
			return 1;
		p = e + 1;
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *df11_join_path(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *s = malloc(na + nb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, na);
	s[na] = '/';
	memcpy(s + na + 1, b, nb + 1);
	return s;
}

/* ---------------------------------------------------------- model bits */

df11_mfile *df11_model_add_file(df11_model *m, const char *name)
{
	df11_mfile *f = realloc(m->f, (m->nf + 1) * sizeof *f);
	if (!f)
		return NULL;
	m->f = f;
	f = &m->f[m->nf];
	memset(f, 0, sizeof *f);
	if (!(f->name = strdup(name)))
		return NULL;
	m->nf++;
	return f;
}

static df11_result grow_tensors(df11_model *m, size_t more)
{
	df11_mtensor *t = realloc(m->t, (m->nt + more + 1) * sizeof *t);
	if (!t)
		return df11_fail(DF11_NOMEM, "%zu tensors", m->nt + more);
	m->t = t;
	memset(&m->t[m->nt], 0, (more + 1) * sizeof *t);
	return DF11_OK;
}

/* The tensors of one safetensors header become m->t entries of file fi. */
static df11_result add_st_tensors(df11_model *m, size_t fi,
				  const df11_st_header *h, const uint8_t *data)
{
	df11_result r = grow_tensors(m, h->n);
	if (r)
		return r;
	m->f[fi].first = m->nt;
	m->f[fi].count = h->n;
	for (size_t i = 0; i < h->n; i++) {
		const df11_st_tensor *s = &h->t[i];
		df11_mtensor *t = &m->t[m->nt];
		if (!(t->name = strdup(s->name)))
			return df11_fail(DF11_NOMEM, "tensor name");
		m->nt++;
		t->file = fi;
		t->begin = s->begin;
		t->d.name = t->name;
		t->d.dtype = s->dtype;
		t->d.ndim = s->ndim;
		memcpy(t->d.shape, s->shape, sizeof s->shape);
		t->d.n_elems = s->n_elems;
		t->d.nbytes = s->end - s->begin;
		t->d.compressed = 0;
		t->d.stored_bytes = t->d.nbytes;
		t->stored = data ? data + s->begin : NULL;
	}
	return DF11_OK;
}

static df11_result open_st_file(df11_model *m, const char *path,
				const char *rel)
{
	df11_mfile *f = df11_model_add_file(m, rel);
	if (!f)
		return df11_fail(DF11_NOMEM, "%s", path);
	f->is_st = 1;
	f->exposed = 1;
	df11_result r = df11_map_file(path, &f->map);
	if (r)
		return r;
	df11_st_header h;
	r = df11_st_parse(f->map.p, f->map.size, f->map.size, path, &h);
	if (r)
		return r;
	f->orig_size = f->map.size;
	f->sect = f->map.p;
	f->sect_size = h.data_off;
	r = add_st_tensors(m, m->nf - 1, &h, f->map.p + h.data_off);
	df11_st_header_free(&h);
	return r;
}

/* ---------------------------------------------------------------- folder */

typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

static int list_push(name_list *l, const char *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(s)))
		return -1;
	l->n++;
	return 0;
}

static void list_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Every regular file under root (symlinks followed), relative paths. */
static df11_result scan(const char *root, const char *rel, int depth,
			name_list *out)
{
	if (depth > MAX_DEPTH)
		return df11_fail(DF11_LIMIT, "%s/%s: folders nested deeper than %d",
				 root, rel, MAX_DEPTH);
	char *dir = *rel ? df11_join_path(root, rel) : strdup(root);
	if (!dir)
		return df11_fail(DF11_NOMEM, "%s", root);
	DIR *d = opendir(dir);
	if (!d) {
		df11_result r = df11_fail_errno(DF11_IO, errno, "%s", dir);
		free(dir);
		return r;
	}
	df11_result r = DF11_OK;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *full = df11_join_path(dir, e->d_name);
		char *sub = *rel ? df11_join_path(rel, e->d_name) : strdup(e->d_name);
		struct stat st;
		if (!full || !sub) {
			r = df11_fail(DF11_NOMEM, "%s", dir);
		} else if (stat(full, &st) < 0) {
			r = df11_fail_errno(DF11_IO, errno, "%s", full);
		} else if (S_ISDIR(st.st_mode)) {
			r = scan(root, sub, depth + 1, out);
		} else if (S_ISREG(st.st_mode)) {
			if (!df11_safe_relpath(sub))
				r = df11_fail(DF11_UNSUPPORTED, "%s: file name not "
					      "supported", full);
			else if (out->n >= DF11_CT_MAX_FILES)
				r = df11_fail(DF11_LIMIT, "%s: more than %u files",
					      root, DF11_CT_MAX_FILES);
			else if (list_push(out, sub))
				r = df11_fail(DF11_NOMEM, "%s", full);
		} else {
			r = df11_fail(DF11_UNSUPPORTED, "%s: not a regular file or "
				      "folder", full);
		}
		free(full);
		free(sub);
		if (r)
			break;
	}
	closedir(d);
	free(dir);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define INDEX_NAME "model.safetensors.index.json"

static const df11_mfile *find_file(const df11_model *m, const char *name)
{
	for (size_t i = 0; i < m->nf; i++)
		if (!strcmp(m->f[i].name, name))
			return &m->f[i];
	return NULL;
}

static df11_mtensor *find_in_file(df11_model *m, const df11_mfile *f,
				  const char *name)
{
	for (size_t i = f->first; i < f->first + f->count; i++)
		if (!strcmp(m->t[i].name, name))
			return &m->t[i];
	return NULL;
}

/* With an index, the model's tensors are those of the shards it names, and
 * every entry of its weight_map must be where it says. */
static df11_result apply_index(df11_model *m, const char *label)
{
	const df11_mfile *idx = find_file(m, INDEX_NAME);
	if (!idx || idx->is_st)
		return DF11_OK;
	json_error_t err;
	json_t *root = json_loadb((const char *)idx->sect, (size_t)idx->sect_size,
				  JSON_REJECT_DUPLICATES, &err);
	df11_result r = DF11_OK;
	if (!root)
		return df11_fail(DF11_BAD_DATA, "%s/%s: line %d: %s", label,
				 INDEX_NAME, err.line, err.text);
	json_t *map = json_object_get(root, "weight_map");
	if (!json_is_object(map)) {
		r = df11_fail(DF11_BAD_DATA, "%s/%s: no \"weight_map\" object",
			      label, INDEX_NAME);
		goto out;
	}
	for (size_t i = 0; i < m->nf; i++)
		m->f[i].exposed = 0;
	const char *key;
	json_t *val;
	json_object_foreach(map, key, val) {
		const char *shard = json_string_value(val);
		df11_mfile *f = shard ? (df11_mfile *)find_file(m, shard) : NULL;
		if (!f || !f->is_st) {
			r = df11_fail(DF11_BAD_DATA, "%s/%s: tensor \"%s\" is in "
				      "shard \"%s\", which is not in the folder",
				      label, INDEX_NAME, key,
				      shard ? shard : "(not a string)");
			goto out;
		}
		if (!find_in_file(m, f, key)) {
			r = df11_fail(DF11_BAD_DATA, "%s/%s: tensor \"%s\" is not "
				      "in %s", label, INDEX_NAME, key, shard);
			goto out;
		}
		f->exposed = 1;
	}
out:
	json_decref(root);
	return r;
}

static df11_result open_folder(df11_model *m, const char *path)
{
	name_list files = {0};
	df11_result r = scan(path, "", 0, &files);
	if (r)
		goto out;
	qsort(files.v, files.n, sizeof *files.v, cmp_str);
	size_t n_st = 0;
	for (size_t i = 0; i < files.n && !r; i++) {
		char *full = df11_join_path(path, files.v[i]);
		if (!full) {
			r = df11_fail(DF11_NOMEM, "%s", path);
			break;
		}
		if (ends_with(files.v[i], ".safetensors")) {
			r = open_st_file(m, full, files.v[i]);
			n_st++;
		} else {
			df11_mfile *f = df11_model_add_file(m, files.v[i]);
			if (!f) {
				r = df11_fail(DF11_NOMEM, "%s", full);
			} else if (!(r = df11_map_file(full, &f->map))) {
				f->orig_size = f->map.size;
				f->sect = f->map.p;
				f->sect_size = f->map.size;
			}
		}
		free(full);
	}
	if (!r && n_st == 0)
		r = df11_fail(DF11_NOT_FOUND, "%s: no .safetensors file in the "
			      "folder", path);
	if (!r)
		r = apply_index(m, path);
out:
	list_free(&files);
	return r;
}

/* ------------------------------------------------------------- container */

static df11_result ct_bad(const char *path, const char *what)
{
	return df11_fail(DF11_BAD_DATA, "%s: %s", path, what);
}

/* A section [off, off + len) must sit between the header and the
 * directory, start on the alignment, and not overflow. */
static int section_ok(uint64_t off, uint64_t len, uint64_t dir_off)
{
	return off >= DF11_CT_ALIGN && off % DF11_CT_ALIGN == 0 &&
	       off <= dir_off && len <= dir_off - off;
}

static df11_result ct_file_records(df11_model *m, const uint8_t *dir,
				   uint64_t dir_size, uint64_t dir_off,
				   uint64_t n_files, uint64_t n_tensors,
				   uint64_t *pos)
{
	const char *path = m->path;
	const uint8_t *base = m->cmap.p;
	for (uint64_t i = 0; i < n_files; i++) {
		if (dir_size - *pos < DF11_CT_FILE_REC)
			return ct_bad(path, "directory truncated in a file record");
		const uint8_t *p = dir + *pos;
		uint32_t type = p[DF11_CT_FR_TYPE],
			 name_len = df11_rd32(p + DF11_CT_FR_NAME_LEN);
		uint64_t size = df11_rd64(p + DF11_CT_FR_ORIG_SIZE),
			 off = df11_rd64(p + DF11_CT_FR_OFF),
			 len = df11_rd64(p + DF11_CT_FR_SIZE);
		uint32_t first = df11_rd32(p + DF11_CT_FR_FIRST),
			 count = df11_rd32(p + DF11_CT_FR_COUNT);
		if (type > 1 || p[1] || p[2] || p[3] || name_len == 0 ||
		    name_len > DF11_CT_MAX_NAME ||
		    dir_size - *pos - DF11_CT_FILE_REC < name_len)
			return ct_bad(path, "bad file record");
		char name[DF11_CT_MAX_NAME + 1];
		memcpy(name, p + DF11_CT_FILE_REC, name_len);
		name[name_len] = 0;
		if (strlen(name) != name_len || !df11_safe_relpath(name))
			return df11_fail(DF11_BAD_DATA, "%s: unsafe file name in "
					 "the directory", path);
		if (!section_ok(off, len, dir_off))
			return df11_fail(DF11_BAD_DATA, "%s: %s: section out of "
					 "range", path, name);
		if (type == 1 ? (len != size || first || count)
			      : (len > size || (uint64_t)first + count > n_tensors))
			return df11_fail(DF11_BAD_DATA, "%s: %s: inconsistent file "
					 "record", path, name);
		for (size_t k = 0; k < m->nf; k++)
			if (!strcmp(m->f[k].name, name))
				return df11_fail(DF11_BAD_DATA, "%s: file %s listed "
						 "twice", path, name);
		df11_mfile *f = df11_model_add_file(m, name);
		if (!f)
			return df11_fail(DF11_NOMEM, "%s", path);
		f->is_st = type == 0;
		f->exposed = f->is_st;
		f->orig_size = size;
		f->sect = base + off;
		f->sect_size = len;
		f->sect_sum = df11_rd64(p + DF11_CT_FR_SUM);
		f->first = first;
		f->count = count;
		*pos += DF11_CT_FILE_REC + name_len;
	}
	return DF11_OK;
}

static df11_result ct_tensor_records(df11_model *m, const uint8_t *dir,
				     uint64_t dir_size, uint64_t dir_off,
				     uint64_t n_tensors, uint64_t *pos)
{
	const char *path = m->path;
	df11_result r = grow_tensors(m, (size_t)n_tensors);
	if (r)
		return r;
	for (uint64_t i = 0; i < n_tensors; i++) {
		if (dir_size - *pos < DF11_CT_TENSOR_REC)
			return ct_bad(path, "directory truncated in a tensor record");
		const uint8_t *p = dir + *pos;
		uint32_t fi = df11_rd32(p + DF11_CT_TR_FILE),
			 name_len = df11_rd32(p + DF11_CT_TR_NAME_LEN);
		uint32_t dtype = p[DF11_CT_TR_DTYPE], codec = p[DF11_CT_TR_CODEC],
			 ndim = p[DF11_CT_TR_NDIM];
		uint64_t rec = DF11_CT_TR_SHAPE + 8ull * ndim;
		if (fi >= m->nf || !m->f[fi].is_st || dtype >= DF11_DTYPE_COUNT ||
		    codec > 1 || ndim > DF11_MAX_DIMS || p[DF11_CT_TR_NDIM + 1] ||
		    df11_rd32(p + DF11_CT_TR_NAME_LEN + 4) || name_len == 0 ||
		    name_len > DF11_CT_MAX_NAME ||
		    dir_size - *pos < rec + name_len)
			return ct_bad(path, "bad tensor record");
		df11_mtensor *t = &m->t[m->nt];
		if (!(t->name = malloc(name_len + 1)))
			return df11_fail(DF11_NOMEM, "%s", path);
		m->nt++;
		memcpy(t->name, p + rec, name_len);
		t->name[name_len] = 0;
		if (strlen(t->name) != name_len)
			return ct_bad(path, "NUL in a tensor name");
		t->file = fi;
		t->begin = df11_rd64(p + DF11_CT_TR_BEGIN);
		t->d.name = t->name;
		t->d.dtype = (df11_dtype)dtype;
		t->d.ndim = (int)ndim;
		uint64_t n = 1;
		int zero = 0, overflow = 0;
		for (uint32_t k = 0; k < ndim; k++) {
			uint64_t s = df11_rd64(p + DF11_CT_TR_SHAPE + 8 * k);
			t->d.shape[k] = s;
			if (s == 0)
				zero = 1;
			else if (n > UINT64_MAX / s)
				overflow = 1;
			else
				n *= s;
		}
		n = zero ? 0 : n;
		uint64_t es = df11_dtype_size(t->d.dtype);
		if ((overflow && !zero) || n > UINT64_MAX / es ||
		    df11_rd64(p + DF11_CT_TR_NBYTES) != n * es)
			return df11_fail(DF11_BAD_DATA, "%s: tensor %s: size does "
					 "not match its shape", path, t->name);
		t->d.n_elems = n;
		t->d.nbytes = n * es;
		t->d.compressed = codec == 1;
		uint64_t off = df11_rd64(p + DF11_CT_TR_OFF),
			 len = df11_rd64(p + DF11_CT_TR_SIZE);
		t->d.stored_bytes = len;
		/* Every encoded element takes at least one stored byte (its
		 * sign|mantissa byte): so a directory cannot make a reader
		 * size buffers beyond twice what the file holds. */
		if (!section_ok(off, len, dir_off) ||
		    (codec == 0 && len != t->d.nbytes) ||
		    (codec == 1 && (dtype != DF11_DTYPE_BF16 || n > len)) ||
		    len > SIZE_MAX)
			return df11_fail(DF11_BAD_DATA, "%s: tensor %s: bad payload "
					 "record", path, t->name);
		t->stored = m->cmap.p + off;
		t->sum_orig = df11_rd64(p + DF11_CT_TR_SUM_ORIG);
		t->sum_stored = df11_rd64(p + DF11_CT_TR_SUM_STORED);
		/* A stored tensor's payload is its original bytes: two sums
		 * that differ mean the record does not describe its payload
		 * (reads check only the stored sum for these). */
		if (codec == 0 && t->sum_orig != t->sum_stored)
			return df11_fail(DF11_BAD_DATA, "%s: tensor %s: stored "
					 "and original checksums differ", path,
					 t->name);
		t->has_sum = 1;
		*pos += rec + name_len;
	}
	return DF11_OK;
}

/* Each safetensors file's header bytes must describe exactly its tensor
 * records: then decoding rebuilds the file the header describes. */
static df11_result ct_cross_check(df11_model *m)
{
	for (size_t i = 0; i < m->nf; i++) {
		df11_mfile *f = &m->f[i];
		if (!f->is_st)
			continue;
		char label[DF11_CT_MAX_NAME + 512];
		snprintf(label, sizeof label, "%s: %s", m->path, f->name);
		if (df11_xxh3(f->sect, (size_t)f->sect_size) != f->sect_sum)
			return df11_fail(DF11_CHECKSUM, "%s: header bytes",
					 label);
		df11_st_header h;
		df11_result r = df11_st_parse(f->sect, f->sect_size, f->orig_size,
					      label, &h);
		if (r)
			return r;
		if (h.data_off != f->sect_size || h.n != f->count) {
			df11_st_header_free(&h);
			return df11_fail(DF11_BAD_DATA, "%s: header and directory "
					 "disagree", label);
		}
		for (size_t k = 0; k < h.n; k++) {
			const df11_st_tensor *s = &h.t[k];
			const df11_mtensor *t = &m->t[f->first + k];
			if (t->file != i || strcmp(s->name, t->name) ||
			    s->dtype != t->d.dtype || s->ndim != t->d.ndim ||
			    memcmp(s->shape, t->d.shape,
				   sizeof(uint64_t) * (size_t)s->ndim) ||
			    s->begin != t->begin ||
			    s->end - s->begin != t->d.nbytes) {
				df11_st_header_free(&h);
				return df11_fail(DF11_BAD_DATA, "%s: tensor %s: "
						 "header and directory disagree",
						 label, t->name);
			}
		}
		df11_st_header_free(&h);
	}
	return DF11_OK;
}

static int cmp_span(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* No two sections share a byte (as the writer lays them out): otherwise
 * one payload could stand for many tensors, and a small file unpack to
 * any size. Empty sections take no bytes. */
static df11_result ct_no_overlap(df11_model *m)
{
	uint64_t(*span)[2] = malloc((m->nf + m->nt + 1) * sizeof *span);
	if (!span)
		return df11_fail(DF11_NOMEM, "%s", m->path);
	size_t n = 0;
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].sect_size) {
			span[n][0] = (uint64_t)(m->f[i].sect - m->cmap.p);
			span[n++][1] = m->f[i].sect_size;
		}
	for (size_t i = 0; i < m->nt; i++)
		if (m->t[i].d.stored_bytes) {
			span[n][0] = (uint64_t)(m->t[i].stored - m->cmap.p);
			span[n++][1] = m->t[i].d.stored_bytes;
		}
	qsort(span, n, sizeof *span, cmp_span);
	for (size_t i = 1; i < n; i++) {
		if (span[i][0] < span[i - 1][0] + span[i - 1][1]) {
			free(span);
			return ct_bad(m->path, "two sections overlap");
		}
	}
	free(span);
	return DF11_OK;
}

static df11_result open_container(df11_model *m)
{
	const char *path = m->path;
	const uint8_t *b = m->cmap.p;
	uint64_t size = m->cmap.size;
	if (size < DF11_CT_ALIGN + DF11_CT_TRAILER_SIZE)
		return ct_bad(path, "container truncated");
	if (df11_rd64(b + DF11_CT_HDR_SUM) != df11_xxh3(b, DF11_CT_SUMMED))
		return df11_fail(DF11_CHECKSUM, "%s: file header", path);
	uint32_t major = df11_rd16(b + DF11_CT_HDR_MAJOR),
		 src = df11_rd32(b + DF11_CT_HDR_SOURCE);
	if (major != DF11_CT_VERSION_MAJOR)
		return df11_fail(DF11_UNSUPPORTED, "%s: container version %u",
				 path, major);
	if (src > DF11_SRC_FOLDER)
		return ct_bad(path, "unknown source kind");
	m->src_kind = (int)src;
	const uint8_t *tr = b + size - DF11_CT_TRAILER_SIZE;
	if (memcmp(tr, DF11_CT_TRAILER_MAGIC, 8))
		return ct_bad(path, "no directory trailer (truncated file?)");
	if (df11_rd64(tr + DF11_CT_TRL_SUM) != df11_xxh3(tr, DF11_CT_SUMMED))
		return df11_fail(DF11_CHECKSUM, "%s: trailer", path);
	uint64_t dir_off = df11_rd64(tr + DF11_CT_TRL_DIR_OFF),
		 dir_size = df11_rd64(tr + DF11_CT_TRL_DIR_SIZE);
	uint64_t n_files = df11_rd64(tr + DF11_CT_TRL_N_FILES),
		 n_tensors = df11_rd64(tr + DF11_CT_TRL_N_TENSORS);
	if (dir_off < DF11_CT_ALIGN || dir_off > size - DF11_CT_TRAILER_SIZE ||
	    dir_size != size - DF11_CT_TRAILER_SIZE - dir_off)
		return ct_bad(path, "directory out of range");
	/* Every record has a fixed part: counts that cannot fit in the
	 * directory are refused before anything is allocated for them. */
	if (n_files == 0 || n_files > DF11_CT_MAX_FILES ||
	    n_tensors > DF11_CT_MAX_TENSORS ||
	    n_files > dir_size / DF11_CT_FILE_REC ||
	    n_tensors > (dir_size - n_files * DF11_CT_FILE_REC) /
				DF11_CT_TENSOR_REC ||
	    (src == DF11_SRC_FILE && n_files != 1))
		return df11_fail(DF11_BAD_DATA, "%s: %llu files, %llu tensors",
				 path, (unsigned long long)n_files,
				 (unsigned long long)n_tensors);
	/* Records have a minimum size: the counts cannot claim more than
	 * the directory holds (bounds the allocations below by the file). */
	if (n_files * (DF11_CT_FILE_REC + 1) > dir_size ||
	    n_tensors * (DF11_CT_TENSOR_REC + 1) >
		    dir_size - n_files * (DF11_CT_FILE_REC + 1))
		return df11_fail(DF11_BAD_DATA, "%s: %llu files and %llu tensors "
				 "do not fit a %llu-byte directory", path,
				 (unsigned long long)n_files,
				 (unsigned long long)n_tensors,
				 (unsigned long long)dir_size);
	const uint8_t *dir = b + dir_off;
	/* The directory in one read (the mapping reads no more than the
	 * faulting page here, model_open). */
	df11_advise(dir, dir_size, MADV_WILLNEED);
	if (df11_rd64(tr + DF11_CT_TRL_DIR_SUM) !=
	    df11_xxh3(dir, (size_t)dir_size))
		return df11_fail(DF11_CHECKSUM, "%s: directory", path);
	uint64_t pos = 0;
	df11_result r = ct_file_records(m, dir, dir_size, dir_off, n_files,
					n_tensors, &pos);
	if (!r)
		r = ct_tensor_records(m, dir, dir_size, dir_off, n_tensors, &pos);
	if (r)
		return r;
	if (pos != dir_size)
		return ct_bad(path, "bytes left over after the directory");
	/* The files' tensor ranges partition the records, in order. */
	size_t next = 0;
	for (size_t i = 0; i < m->nf; i++) {
		if (!m->f[i].is_st)
			continue;
		if (m->f[i].first != next)
			return ct_bad(path, "tensor ranges of the files overlap");
		next += m->f[i].count;
	}
	if (next != m->nt)
		return ct_bad(path, "tensor records belong to no file");
	if ((r = ct_no_overlap(m)))
		return r;
	if ((r = ct_cross_check(m)))
		return r;
	for (size_t i = 0; i < m->nf; i++)
		if (!m->f[i].is_st && m->f[i].orig_size > SIZE_MAX)
			return ct_bad(path, "file too large");
	return apply_index(m, path);
}

/* ----------------------------------------------------------------- open */

static int cmp_view_name(const void *a, const void *b, void *arg)
{
	const df11_model *m = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(m->t[m->view[x]].name, m->t[m->view[y]].name);
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

static df11_result build_view(df11_model *m)
{
	m->view = malloc((m->nt + 1) * sizeof *m->view);
	m->by_name = malloc((m->nt + 1) * sizeof *m->by_name);
	if (!m->view || !m->by_name)
		return df11_fail(DF11_NOMEM, "%s: tensor index", m->path);
	for (size_t i = 0; i < m->nt; i++)
		if (m->f[m->t[i].file].exposed)
			m->view[m->nview++] = i;
	for (size_t i = 0; i < m->nview; i++)
		m->by_name[i] = i;
	qsort_r(m->by_name, m->nview, sizeof *m->by_name, cmp_view_name, m);
	return DF11_OK;
}

df11_result df11_model_open(const char *path, df11_model **model_ret)
{
	if (!path || !model_ret)
		return df11_fail(DF11_INVALID_ARG, "model_open: NULL argument");
	*model_ret = NULL;
	df11_model *m = calloc(1, sizeof *m);
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return df11_fail(DF11_NOMEM, "%s", path);
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
	df11_result r;
	struct stat st;
	if (stat(path, &st) < 0) {
		r = df11_fail_errno(errno == ENOENT ? DF11_NOT_FOUND : DF11_IO,
				    errno, "%s", path);
	} else if (S_ISDIR(st.st_mode) && df11_dfl_detect(path)) {
		m->kind = DF11_KIND_DFLOAT11;
		r = df11_dfl_open(m);
	} else if (S_ISDIR(st.st_mode)) {
		m->kind = DF11_KIND_FOLDER;
		r = open_folder(m, path);
	} else if (!(r = df11_map_file(path, &m->cmap))) {
		/* Opening reads the header, the trailer and the directory
		 * only: no read-around on those faults, which would read
		 * megabytes of a cold container (read_ahead_kb) before the
		 * first tensor could be decoded. Reads after it get the
		 * ordinary read-ahead. */
		df11_advise(m->cmap.p, m->cmap.size, MADV_RANDOM);
		if (m->cmap.size >= 8 && !memcmp(m->cmap.p, DF11_CT_MAGIC, 8)) {
			m->kind = DF11_KIND_CONTAINER;
			r = open_container(m);
			df11_advise(m->cmap.p, m->cmap.size, MADV_NORMAL);
		} else {
			m->kind = DF11_KIND_SAFETENSORS;
			df11_unmap(&m->cmap);
			const char *base = strrchr(path, '/');
			r = open_st_file(m, path, base ? base + 1 : path);
		}
	}
	if (!r)
		r = build_view(m);
	if (r) {
		df11_model_close(m);
		return r;
	}
	*model_ret = m;
	return DF11_OK;
}

void df11_model_close(df11_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nf; i++) {
		free(m->f[i].name);
		df11_unmap(&m->f[i].map);
	}
	for (size_t i = 0; i < m->nt; i++)
		free(m->t[i].name);
	free(m->f);
	free(m->t);
	free(m->view);
	free(m->by_name);
	df11_unmap(&m->cmap);
	df11_decoder_free(m->dec);
	df11_dfl_free(m->dfl);
	free(m->path);
	free(m);
}

size_t df11_model_num_tensors(const df11_model *m)
{
	return m ? m->nview : 0;
}

df11_result df11_model_tensor(const df11_model *m, size_t i,
			      df11_tensor_desc *desc_ret)
{
	if (!m || !desc_ret || i >= m->nview)
		return df11_fail(DF11_INVALID_ARG, "model_tensor: index %zu of %zu",
				 i, m ? m->nview : 0);
	*desc_ret = m->t[m->view[i]].d;
	return DF11_OK;
}

df11_result df11_model_find(const df11_model *m, const char *name,
			    size_t *index_ret)
{
	if (!m || !name || !index_ret)
		return df11_fail(DF11_INVALID_ARG, "model_find: NULL argument");
	size_t lo = 0, hi = m->nview;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(m->t[m->view[m->by_name[mid]]].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->nview && !strcmp(m->t[m->view[m->by_name[lo]]].name, name)) {
		*index_ret = m->by_name[lo];
		return DF11_OK;
	}
	return df11_fail(DF11_NOT_FOUND, "%s: no tensor \"%s\"", m->path, name);
}

static df11_result get_decoder(df11_model *m)
{
	if (!m->dec && !(m->dec = df11_decoder_new(m->threads)))
		return df11_fail(DF11_NOMEM, "decoder");
	return DF11_OK;
}

df11_result df11_mtensor_payload_check(const df11_model *m,
				       const df11_mtensor *t)
{
	/* The size of the header is checked by the decoder. */
	if (t->d.compressed && t->d.stored_bytes >= DF11_HEADER_SIZE &&
	    df11_rd64(t->stored + 8) != t->d.n_elems)
		return df11_fail(DF11_BAD_DATA, "%s: tensor %s: its payload "
				 "holds %llu elements, its record %llu",
				 m->path, t->name,
				 (unsigned long long)df11_rd64(t->stored + 8),
				 (unsigned long long)t->d.n_elems);
	return DF11_OK;
}

df11_result df11_mtensor_read(df11_model *m, size_t ti, void *dst,
			      uint64_t size, int check)
{
	const df11_mtensor *t = &m->t[ti];
	if (!dst && size)
		return df11_fail(DF11_INVALID_ARG, "model_read: NULL buffer");
	if (size != t->d.nbytes)
		return df11_fail(DF11_INVALID_ARG, "model_read: %s: %llu bytes "
				 "given, the tensor has %llu", t->name,
				 (unsigned long long)size,
				 (unsigned long long)t->d.nbytes);
	if (t->dfl)
		return df11_dfl_read(m, t, 0, t->d.n_elems, dst);
	if (check && t->has_sum &&
	    df11_xxh3(t->stored, (size_t)t->d.stored_bytes) != t->sum_stored)
		return df11_fail(DF11_CHECKSUM, "%s: tensor %s: stored bytes "
				 "differ from their checksum", m->path, t->name);
	if (t->d.compressed) {
		df11_result r = df11_mtensor_payload_check(m, t);
		if (r || (r = get_decoder(m)))
			return r;
		r = df11_decode(m->dec, t->stored, (size_t)t->d.stored_bytes, dst,
				t->d.n_elems);
		if (r)
			return df11_fail(r, "%s: tensor %s: %s", m->path, t->name,
					 df11_last_error());
	} else if (size) {
		memcpy(dst, t->stored, (size_t)size);
	}
	if (check && t->has_sum && t->d.compressed &&
	    df11_xxh3(dst, (size_t)size) != t->sum_orig)
		return df11_fail(DF11_CHECKSUM, "%s: tensor %s: decoded bytes "
				 "differ from the original's checksum", m->path,
				 t->name);
	return DF11_OK;
}

df11_result df11_model_read(df11_model *m, size_t i, void *dst,
			    size_t dst_size)
{
	if (!m || i >= m->nview)
		return df11_fail(DF11_INVALID_ARG, "model_read: index %zu of %zu",
				 i, m ? m->nview : 0);
	return df11_mtensor_read(m, m->view[i], dst, dst_size, 1);
}

df11_result df11_model_read_range(df11_model *m, size_t i, uint64_t first,
				  uint64_t count, uint16_t *dst)
{
	if (!m || i >= m->nview || (!dst && count))
		return df11_fail(DF11_INVALID_ARG, "model_read_range: bad argument");
	const df11_mtensor *t = &m->t[m->view[i]];
	if (t->d.dtype != DF11_DTYPE_BF16)
		return df11_fail(DF11_UNSUPPORTED, "%s: tensor %s is %s, not BF16",
				 m->path, t->name, df11_dtype_name(t->d.dtype));
	if (first > t->d.n_elems || count > t->d.n_elems - first)
		return df11_fail(DF11_INVALID_ARG, "%s: tensor %s: elements [%llu,"
				 " +%llu) out of its %llu", m->path, t->name,
				 (unsigned long long)first,
				 (unsigned long long)count,
				 (unsigned long long)t->d.n_elems);
	if (count == 0)
		return DF11_OK;
	if (t->dfl)
		return df11_dfl_read(m, t, first, count, dst);
	if (!t->d.compressed) {
		memcpy(dst, t->stored + 2 * first, (size_t)(2 * count));
		return DF11_OK;
	}
	df11_result r = df11_mtensor_payload_check(m, t);
	if (r || (r = get_decoder(m)))
		return r;
	r = df11_decode_range(m->dec, t->stored, (size_t)t->d.stored_bytes,
			      first, count, dst);
	if (r)
		return df11_fail(r, "%s: tensor %s: %s", m->path, t->name,
				 df11_last_error());
	return DF11_OK;
}

df11_result df11_model_encoded(const df11_model *m, size_t i,
			       const void **data_ret, size_t *size_ret)
{
	if (!m || i >= m->nview || !data_ret || !size_ret)
		return df11_fail(DF11_INVALID_ARG, "model_encoded: bad argument");
	const df11_mtensor *t = &m->t[m->view[i]];
	if (!t->d.compressed || t->dfl)
		return df11_fail(DF11_UNSUPPORTED, "%s: tensor %s is not "
				 "df11-encoded", m->path, t->name);
	df11_result r = df11_mtensor_payload_check(m, t);
	if (r)
		return r;
	*data_ret = t->stored;
	*size_ret = (size_t)t->d.stored_bytes;
	return DF11_OK;
}

df11_result df11_model_file(const df11_model *m, const char *name,
			    const void **data_ret, size_t *size_ret)
{
	if (!m || !name || !data_ret || !size_ret)
		return df11_fail(DF11_INVALID_ARG, "model_file: NULL argument");
	const df11_mfile *f = find_file(m, name);
	if (!f || f->is_st)
		return df11_fail(DF11_NOT_FOUND, "%s: no file \"%s\"", m->path,
				 name);
	if (m->kind == DF11_KIND_CONTAINER &&
	    df11_xxh3(f->sect, (size_t)f->sect_size) != f->sect_sum)
		return df11_fail(DF11_CHECKSUM, "%s: file %s", m->path, name);
	*data_ret = f->sect;
	*size_ret = (size_t)f->sect_size;
	return DF11_OK;
}

df11_result df11_model_set_threads(df11_model *m, int threads)
{
	if (!m)
		return df11_fail(DF11_INVALID_ARG, "model_set_threads: NULL");
	m->threads = threads < 1 ? 1 : threads;
	df11_decoder_free(m->dec);
	m->dec = NULL;
	return DF11_OK;
}
