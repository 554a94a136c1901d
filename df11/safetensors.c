/*
 * Reading safetensors headers: everything is validated before use (see
 * safetensors.h for the format and the rules).
 */
#include "df11/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "codec/format.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[DF11_DTYPE_COUNT] = {
	[DF11_DTYPE_BOOL] = {"BOOL", 1},       [DF11_DTYPE_U8] = {"U8", 1},
	[DF11_DTYPE_I8] = {"I8", 1},           [DF11_DTYPE_U16] = {"U16", 2},
	[DF11_DTYPE_I16] = {"I16", 2},         [DF11_DTYPE_F16] = {"F16", 2},
	[DF11_DTYPE_BF16] = {"BF16", 2},       [DF11_DTYPE_U32] = {"U32", 4},
	[DF11_DTYPE_I32] = {"I32", 4},         [DF11_DTYPE_F32] = {"F32", 4},
	[DF11_DTYPE_U64] = {"U64", 8},         [DF11_DTYPE_I64] = {"I64", 8},
	[DF11_DTYPE_F64] = {"F64", 8},         [DF11_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
	[DF11_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *df11_dtype_name(df11_dtype t)
{
	if ((unsigned)t >= DF11_DTYPE_COUNT)
		return NULL;
	return dtypes[t].name;
}

size_t df11_dtype_size(df11_dtype t)
{
	if ((unsigned)t >= DF11_DTYPE_COUNT)
		return 0;
	return dtypes[t].size;
}

int df11_dtype_from_name(const char *s)
{
	for (int i = 0; i < DF11_DTYPE_COUNT; i++)
		if (strcmp(s, dtypes[i].name) == 0)
			return i;
	return -1;
}

void df11_st_header_free(df11_st_header *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->t[i].name);
	free(h->t);
	memset(h, 0, sizeof *h);
}

/* A JSON integer that is a valid non-negative u64 (jansson gives int64). */
static int get_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static df11_result parse_tensor(const char *label, const char *name,
				json_t *obj, df11_st_tensor *t)
{
	if (!json_is_object(obj))
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\" is not a "
				 "JSON object", label, name);
	json_t *dt = json_object_get(obj, "dtype");
	json_t *shape = json_object_get(obj, "shape");
	json_t *offs = json_object_get(obj, "data_offsets");
	if (!json_is_string(dt) || !json_is_array(shape) ||
	    !json_is_array(offs) || json_object_size(obj) != 3)
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\" needs exactly "
				 "\"dtype\", \"shape\" and \"data_offsets\"",
				 label, name);
	int d = df11_dtype_from_name(json_string_value(dt));
	if (d < 0)
		return df11_fail(DF11_UNSUPPORTED, "%s: tensor \"%s\" has unknown "
				 "dtype \"%.32s\"", label, name,
				 json_string_value(dt));
	t->dtype = (df11_dtype)d;
	size_t nd = json_array_size(shape);
	if (nd > DF11_MAX_DIMS)
		return df11_fail(DF11_UNSUPPORTED, "%s: tensor \"%s\" has %zu "
				 "dimensions, at most %d supported", label, name,
				 nd, DF11_MAX_DIMS);
	t->ndim = (int)nd;
	uint64_t n = 1;
	int overflow = 0;
	for (size_t i = 0; i < nd; i++) {
		if (get_u64(json_array_get(shape, i), &t->shape[i]))
			return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\": shape "
					 "entry %zu is not a non-negative "
					 "integer", label, name, i);
		if (t->shape[i] && n > UINT64_MAX / t->shape[i])
			overflow = 1;
		else
			n *= t->shape[i];
	}
	/* A zero dimension makes the tensor empty whatever the others say. */
	for (size_t i = 0; i < nd; i++)
		if (t->shape[i] == 0)
			n = 0, overflow = 0;
	uint64_t es = dtypes[d].size;
	if (overflow || n > UINT64_MAX / es)
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\": shape overflows "
				 "64 bits", label, name);
	t->n_elems = n;
	if (json_array_size(offs) != 2 ||
	    get_u64(json_array_get(offs, 0), &t->begin) ||
	    get_u64(json_array_get(offs, 1), &t->end))
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\": data_offsets "
				 "must be two non-negative integers", label, name);
	if (t->end < t->begin)
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\": data_offsets "
				 "[%llu, %llu] end before they begin", label, name,
				 (unsigned long long)t->begin,
				 (unsigned long long)t->end);
	if (t->end - t->begin != n * es)
		return df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\": %llu bytes in "
				 "data_offsets, shape x dtype size gives %llu",
				 label, name,
				 (unsigned long long)(t->end - t->begin),
				 (unsigned long long)(n * es));
	return DF11_OK;
}

static int cmp_begin(const void *a, const void *b)
{
	const df11_st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

df11_result df11_st_parse(const uint8_t *buf, uint64_t avail,
			  uint64_t file_size, const char *label,
			  df11_st_header *h)
{
	df11_result r = DF11_OK;
	json_t *root = NULL;
	memset(h, 0, sizeof *h);
	if (avail > file_size)
		avail = file_size;
	if (file_size < 8)
		return df11_fail(DF11_BAD_DATA, "%s: %llu bytes, too short for a "
				 "safetensors file", label,
				 (unsigned long long)file_size);
	if (avail < 8) /* the length field itself is not in the buffer */
		return df11_fail(DF11_INVALID_ARG, "%s: header not in the buffer",
				 label);
	uint64_t n = df11_rd64(buf);
	if (n > DF11_ST_MAX_HEADER)
		return df11_fail(DF11_LIMIT, "%s: header of %llu bytes, limit %u",
				 label, (unsigned long long)n, DF11_ST_MAX_HEADER);
	if (n > file_size - 8)
		return df11_fail(DF11_BAD_DATA, "%s: header of %llu bytes runs past "
				 "the end of the file (%llu bytes)", label,
				 (unsigned long long)n,
				 (unsigned long long)file_size);
	if (n + 8 > avail)
		return df11_fail(DF11_INVALID_ARG, "%s: header not in the buffer",
				 label);
	if (n < 2 || buf[8] != '{')
		return df11_fail(DF11_BAD_DATA, "%s: header is not a JSON object",
				 label);
	json_error_t err;
	root = json_loadb((const char *)buf + 8, (size_t)n,
			  JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		r = df11_fail(DF11_BAD_DATA, "%s: header JSON, line %d column %d: "
			      "%s", label, err.line, err.column, err.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		r = df11_fail(DF11_BAD_DATA, "%s: header is not a JSON object",
			      label);
		goto fail;
	}
	h->header_len = n;
	h->data_off = 8 + n;
	h->data_size = file_size - h->data_off;
	size_t cap = json_object_size(root);
	h->t = calloc(cap ? cap : 1, sizeof *h->t);
	if (!h->t) {
		r = df11_fail(DF11_NOMEM, "%s: %zu tensors", label, cap);
		goto fail;
	}
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, "__metadata__") == 0) {
			/* The reference implementation: a map of strings. */
			const char *mk;
			json_t *mv;
			if (!json_is_object(val)) {
				r = df11_fail(DF11_BAD_DATA, "%s: __metadata__ is "
					      "not an object", label);
				goto fail;
			}
			json_object_foreach(val, mk, mv) {
				if (!json_is_string(mv)) {
					r = df11_fail(DF11_BAD_DATA, "%s: __metadata__"
						      " value \"%s\" is not a "
						      "string", label, mk);
					goto fail;
				}
			}
			continue;
		}
		df11_st_tensor *t = &h->t[h->n];
		if (!(t->name = strdup(key))) {
			r = df11_fail(DF11_NOMEM, "%s: tensor name", label);
			goto fail;
		}
		h->n++;
		if ((r = parse_tensor(label, key, val, t)))
			goto fail;
	}
	qsort(h->t, h->n, sizeof *h->t, cmp_begin);
	/* Tensors must tile the data area: no overlap, no hole, no tail. */
	uint64_t at = 0;
	for (size_t i = 0; i < h->n; i++) {
		const df11_st_tensor *t = &h->t[i];
		if (t->begin < at) {
			r = df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\" at [%llu, "
				      "%llu] overlaps the tensor before it", label,
				      t->name, (unsigned long long)t->begin,
				      (unsigned long long)t->end);
			goto fail;
		}
		if (t->begin > at) {
			r = df11_fail(DF11_BAD_DATA, "%s: data bytes [%llu, %llu) "
				      "belong to no tensor", label,
				      (unsigned long long)at,
				      (unsigned long long)t->begin);
			goto fail;
		}
		if (t->end > h->data_size) {
			r = df11_fail(DF11_BAD_DATA, "%s: tensor \"%s\" ends at %llu, "
				      "past the data area (%llu bytes)", label,
				      t->name, (unsigned long long)t->end,
				      (unsigned long long)h->data_size);
			goto fail;
		}
		at = t->end;
	}
	if (at != h->data_size) {
		r = df11_fail(DF11_BAD_DATA, "%s: %llu bytes after the last tensor "
			      "belong to no tensor", label,
			      (unsigned long long)(h->data_size - at));
		goto fail;
	}
	json_decref(root);
	return DF11_OK;
fail:
	json_decref(root);
	df11_st_header_free(h);
	return r;
}

void df11_advise(const void *p, uint64_t len, int advice)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~((uintptr_t)pg - 1);
	if (p && len)
		madvise((void *)a, (size_t)((uintptr_t)p + len - a), advice);
}

/* Pages probed: enough to tell "mostly", and a few microseconds where a
 * mincore over every page of 11 MB took a quarter of a millisecond. */
#define UNCACHED_PROBES 16
int df11_mostly_uncached(const uint8_t *p, uint64_t len)
{
	if (!p || !len)
		return 0;
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~((uintptr_t)pg - 1);
	uint64_t n = ((uintptr_t)p + len - a + (uintptr_t)pg - 1) / (uintptr_t)pg;
	uint64_t probes = n < UNCACHED_PROBES ? n : UNCACHED_PROBES, in = 0;
	for (uint64_t i = 0; i < probes; i++) {
		unsigned char v;
		/* Page i * n / probes: the first, then spread to the end. */
		uintptr_t at = a + (uintptr_t)(i * n / probes) * (uintptr_t)pg;
		if (mincore((void *)at, (size_t)pg, &v) != 0)
			return 0;
		in += v & 1;
	}
	return in < (probes + 1) / 2;
}

uint8_t *df11_huge_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_HUGEPAGE);
	return p;
}

df11_result df11_map_file(const char *path, df11_map *m)
{
	memset(m, 0, sizeof *m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return df11_fail_errno(DF11_IO, errno, "%s", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return df11_fail_errno(DF11_IO, e, "%s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return df11_fail(DF11_IO, "%s: not a regular file", path);
	}
	m->size = (uint64_t)st.st_size;
	if (m->size) {
		void *p = mmap(NULL, (size_t)m->size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			m->size = 0;
			return df11_fail_errno(DF11_IO, e, "%s: mmap", path);
		}
		m->p = p;
	}
	close(fd);
	return DF11_OK;
}

void df11_unmap(df11_map *m)
{
	if (m && m->p)
		munmap(m->p, (size_t)m->size);
	if (m)
		memset(m, 0, sizeof *m);
}
