#include "tests/dfl_testutil.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "df11/dfloat11_format.h"
#include "codec/format.h"
#include "tests/model_testutil.h"

static size_t dtype_size(const char *d)
{
	if (!strcmp(d, "U8") || !strcmp(d, "I8") || !strcmp(d, "BOOL"))
		return 1;
	if (!strcmp(d, "BF16") || !strcmp(d, "F16") || !strcmp(d, "I16") ||
	    !strcmp(d, "U16"))
		return 2;
	if (!strcmp(d, "F32") || !strcmp(d, "I32") || !strcmp(d, "U32"))
		return 4;
	return 8;
}

void st_edit_load(st_edit *e, const char *path)
{
	size_t n;
	uint8_t *b = read_bytes(path, &n);
	assert_true(n >= 8);
	uint64_t hl = df11_rd64(b);
	assert_true(hl <= n - 8);
	json_t *h = json_loadb((const char *)b + 8, (size_t)hl, 0, NULL);
	assert_non_null(h);
	memset(e, 0, sizeof *e);
	e->t = calloc(json_object_size(h) + 1, sizeof *e->t);
	assert_non_null(e->t);
	const char *k;
	json_t *v;
	json_object_foreach(h, k, v) {
		if (!strcmp(k, "__metadata__"))
			continue;
		st_edit_tensor *t = &e->t[e->n++];
		t->name = strdup(k);
		snprintf(t->dtype, sizeof t->dtype, "%s",
			 json_string_value(json_object_get(v, "dtype")));
		json_t *sh = json_object_get(v, "shape");
		t->ndim = (int)json_array_size(sh);
		for (int i = 0; i < t->ndim; i++)
			t->shape[i] = (uint64_t)json_integer_value(
				json_array_get(sh, (size_t)i));
		json_t *off = json_object_get(v, "data_offsets");
		uint64_t a = (uint64_t)json_integer_value(json_array_get(off, 0));
		uint64_t z = (uint64_t)json_integer_value(json_array_get(off, 1));
		t->size = (size_t)(z - a);
		t->data = malloc(t->size + 1);
		assert_non_null(t->data);
		memcpy(t->data, b + 8 + hl + a, t->size);
	}
	json_decref(h);
	free(b);
}

void st_edit_save(const st_edit *e, const char *path)
{
	json_t *h = json_object();
	uint64_t off = 0;
	for (size_t i = 0; i < e->n; i++) {
		const st_edit_tensor *t = &e->t[i];
		json_t *sh = json_array();
		for (int k = 0; k < t->ndim; k++)
			json_array_append_new(sh, json_integer((json_int_t)t->shape[k]));
		json_object_set_new(h, t->name,
				    json_pack("{s:s,s:o,s:[I,I]}", "dtype", t->dtype,
					      "shape", sh, "data_offsets",
					      (json_int_t)off,
					      (json_int_t)(off + t->size)));
		off += t->size;
	}
	char *js = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	size_t jn = strlen(js), pad = (jn + 7) / 8 * 8;
	uint8_t *b = malloc(8 + pad + off + 1);
	assert_non_null(b);
	df11_wr64(b, pad);
	memcpy(b + 8, js, jn);
	memset(b + 8 + jn, ' ', pad - jn);
	uint8_t *p = b + 8 + pad;
	for (size_t i = 0; i < e->n; i++) {
		if (e->t[i].size)
			memcpy(p, e->t[i].data, e->t[i].size);
		p += e->t[i].size;
	}
	write_bytes(path, b, 8 + pad + (size_t)off);
	free(b);
	free(js);
}

void st_edit_free(st_edit *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->t[i].name);
		free(e->t[i].data);
	}
	free(e->t);
	memset(e, 0, sizeof *e);
}

st_edit_tensor *st_edit_find(st_edit *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->t[i].name, name))
			return &e->t[i];
	fail_msg("no tensor %s", name);
	return NULL;
}

void st_edit_set(st_edit_tensor *t, const void *p, size_t size)
{
	free(t->data);
	t->data = malloc(size + 1);
	assert_non_null(t->data);
	memcpy(t->data, p, size);
	t->size = size;
	t->shape[0] = size / dtype_size(t->dtype);
}

void st_edit_remove(st_edit *e, const char *name)
{
	st_edit_tensor *t = st_edit_find(e, name);
	free(t->name);
	free(t->data);
	size_t i = (size_t)(t - e->t);
	memmove(t, t + 1, (e->n - i - 1) * sizeof *t);
	e->n--;
}

void st_edit_add(st_edit *e, const char *name, const char *dtype, int ndim,
		 const uint64_t *shape, const void *p, size_t size)
{
	st_edit_tensor *t = realloc(e->t, (e->n + 2) * sizeof *t);
	assert_non_null(t);
	e->t = t;
	t = &e->t[e->n++];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
	t->ndim = ndim;
	memcpy(t->shape, shape, sizeof(uint64_t) * (size_t)ndim);
	t->data = malloc(size + 1);
	assert_non_null(t->data);
	if (size)
		memcpy(t->data, p, size);
	t->size = size;
}

char *fixture_path(const char *rel)
{
	const char *src = getenv("DF11_SOURCE_DIR");
	assert_non_null(src);
	size_t n = strlen(src) + strlen(rel) + 64;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/tests/fixtures/dfloat11/%s", src, rel);
	return p;
}

char *copy_fixture(const char *src)
{
	char *dst = make_tmpdir();
	DIR *d = opendir(src);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *a = path_join(src, de->d_name), *b = path_join(dst, de->d_name);
		size_t n;
		uint8_t *p = read_bytes(a, &n);
		write_bytes(b, p, n);
		free(p);
		free(a);
		free(b);
	}
	closedir(d);
	return dst;
}

void dfl_group_from_edit(st_edit *e, const char *name, df11_dfl_group *g)
{
	st_edit_tensor *b[DFL_N_BUFFERS];
	char key[512];
	for (int i = 0; i < DFL_N_BUFFERS; i++) {
		snprintf(key, sizeof key, "%s.%s", name, dfl_suffix[i]);
		b[i] = st_edit_find(e, key);
	}
	memset(g, 0, sizeof *g);
	g->name = strdup(name);
	g->luts = b[DFL_LUTS]->data;
	g->n_luts = (unsigned)(b[DFL_LUTS]->size / 256);
	g->stream = b[DFL_STREAM]->data;
	g->n_bytes = b[DFL_STREAM]->size;
	g->sm = b[DFL_SM]->data;
	g->n = b[DFL_SM]->size;
	g->op = b[DFL_OUTPUT_POS]->data;
	g->n_op = b[DFL_OUTPUT_POS]->size / 4;
	g->gaps = b[DFL_GAPS]->data;
	g->gaps_size = b[DFL_GAPS]->size;
	g->split = b[DFL_SPLIT]->data;
	g->n_split = b[DFL_SPLIT]->size / 8;
	g->blocks = (g->n_bytes + DFL_BLOCK_BYTES - 1) / DFL_BLOCK_BYTES;
}

/* ------------------------------------------------------- kernel model */

/* decode.cu's lookup, with the checks the GPU does not make. */
static int k_lookup(const df11_dfl_group *g, uint64_t win, unsigned off,
		    unsigned *sym, unsigned *len)
{
	/* win: the thread's 96-bit window's bits [off, off + 32) */
	(void)off;
	uint32_t w = (uint32_t)win;
	unsigned v = g->luts[w >> 24];
	for (int k = 1; k < 4 && v >= 240; k++) {
		unsigned row = 256 - v;
		if (row > g->n_luts - 1)
			return -1;
		v = g->luts[256u * row + ((w >> (24 - 8 * k)) & 255)];
	}
	if (v >= 240)
		return -1;
	*sym = v;
	*len = g->luts[256u * (g->n_luts - 1) + v];
	return *len ? 0 : -1;
}

/* 32 bits at bit offset o (0..95) of the 12-byte window. */
static uint64_t k_bits(const uint8_t win[12], unsigned o)
{
	uint64_t w = 0;
	for (unsigned k = 0; k < 32; k++) {
		unsigned bit = o + k;
		unsigned b = bit < 96 ? (win[bit / 8] >> (7 - bit % 8)) & 1 : 0;
		w = w << 1 | b;
	}
	return w;
}

int dfl_kernel_model(const df11_dfl_group *g, uint16_t *out, char *why,
		     size_t why_size)
{
	uint64_t blocks = (g->n_bytes + DFL_BLOCK_BYTES - 1) / DFL_BLOCK_BYTES;
	const unsigned T = DFL_THREADS_PER_BLOCK;
	uint32_t *count = calloc(T, sizeof *count), *start = calloc(T, sizeof *start);
	uint16_t *shared = calloc(65536, sizeof *shared);
	uint8_t *written = calloc(g->n + 1, 1);
	int rc = -1;
	assert_true(count && start && shared && written);
	if (g->gaps_size < DFL_GAP_BYTES_PER_BLOCK * blocks || g->n_op < blocks) {
		snprintf(why, why_size, "gaps or output_positions too short");
		goto out;
	}
	/* The loader's shared-memory size: the largest difference of
	 * consecutive output positions. */
	for (uint64_t b = 0; b + 1 < g->n_op; b++) {
		uint32_t d = df11_rd32(g->op + 4 * (b + 1)) - df11_rd32(g->op + 4 * b);
		if (4 * T + 4 + 2 * (uint64_t)d > DFL_SHARED_MEM_LIMIT) {
			snprintf(why, why_size, "block %llu: %u elements need more "
				 "than 48 KiB of shared memory",
				 (unsigned long long)b, d);
			goto out;
		}
	}
	for (uint64_t b = 0; b < blocks; b++) {
		uint32_t base = df11_rd32(g->op + 4 * b);
		/* The last block may read one entry past the end: harmless
		 * (it copies nothing); modelled as n. */
		uint64_t end = b + 1 < g->n_op ? df11_rd32(g->op + 4 * (b + 1)) : g->n;
		for (int phase = 0; phase < 2; phase++) {
			for (unsigned th = 0; th < T; th++) {
				uint64_t t = b * T + th;
				uint8_t win[12];
				for (unsigned k = 0; k < 12; k++) {
					uint64_t i = 8 * t + k;
					win[k] = i < g->n_bytes ? g->stream[i] : 0;
				}
				unsigned o = dfl_gap(g->gaps, g->gaps_size, t);
				uint32_t c = 0, idx = phase ? start[th] : 0;
				while (o < 64) {
					unsigned sym, len;
					if (k_lookup(g, k_bits(win, o), o, &sym, &len)) {
						snprintf(why, why_size, "thread %llu: "
							 "a lookup reaches no symbol "
							 "(pointer past the tables or "
							 "zero length: the kernel "
							 "fails or spins)",
							 (unsigned long long)t);
						goto out;
					}
					if (phase && idx < start[th] + count[th] &&
					    idx < g->n) {
						uint64_t at = (uint64_t)idx - base;
						if (at >= 65536) {
							snprintf(why, why_size, "block "
								 "%llu: output %u past "
								 "shared memory",
								 (unsigned long long)b,
								 idx);
							goto out;
						}
						shared[at] = dfl_join(sym, g->sm[idx]);
					}
					idx++;
					c++;
					o += len;
				}
				if (!phase)
					count[th] = c;
			}
			if (!phase) {
				/* Exclusive scan seeded with the block's
				 * first output position. */
				uint32_t acc = base;
				for (unsigned th = 0; th < T; th++) {
					start[th] = acc;
					acc += count[th];
				}
			}
		}
		uint64_t stop = end < g->n ? end : g->n;
		for (uint64_t i = base; i < stop; i++) {
			out[i] = shared[i - base];
			written[i] = 1;
		}
	}
	for (uint64_t i = 0; i < g->n; i++)
		if (!written[i]) {
			snprintf(why, why_size, "element %llu is never written",
				 (unsigned long long)i);
			goto out;
		}
	rc = 0;
out:
	free(count);
	free(start);
	free(shared);
	free(written);
	return rc;
}
