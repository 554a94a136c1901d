/*
 * df11_export_dfloat11: official DFloat11 folders written by df11.
 *   - the Llama fixture exported, read back bit for bit, laid out as the
 *     official compressor lays it out, every group decoded by the CPU model
 *     of the official kernel (thread chunks, gaps, output positions,
 *     shared-memory bound);
 *   - a non-transformers module with a pattern_dict;
 *   - what the kernel cannot decode is never written: exponents >= 240 and
 *     single-exponent groups are stored plain, skewed and wide histograms
 *     are coded within the block and sub-table limits, and the group coder
 *     run in memory (df11_dfl_encode_group) gives the file's bytes;
 *   - refusals, existing outputs, tied embeddings.
 */
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

#include "df11.h"
#include "df11/dfloat11.h"
#include "df11/dfloat11_format.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "tests/dfl_testutil.h"
#include "tests/model_testutil.h"

static uint8_t *read_tensor(df11_model *m, const char *name, df11_tensor_desc *d)
{
	size_t i;
	if (df11_model_find(m, name, &i))
		fail_msg("no tensor %s", name);
	df11_model_tensor(m, i, d);
	uint8_t *p = malloc(d->nbytes + 1);
	assert_int_equal(df11_model_read(m, i, p, d->nbytes), DF11_OK);
	return p;
}

/* Every group of an opened DFloat11 model through the kernel model. */
static void kernel_check_model(df11_model *m)
{
	for (size_t gi = 0; gi < df11_dfl_group_count(m); gi++) {
		df11_dfl_group *g = df11_dfl_group_get(m, gi);
		uint16_t *a = malloc(2 * g->n), *b = malloc(2 * g->n);
		assert_int_equal(df11_dfl_group_decode(g, 0, g->n, a, 2, "t"), DF11_OK);
		char why[256];
		if (dfl_kernel_model(g, b, why, sizeof why))
			fail_msg("%s: %s", g->name, why);
		assert_memory_equal(a, b, 2 * g->n);
		free(a);
		free(b);
	}
}

static int file_exists(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;
	int ok = stat(p, &st) == 0;
	free(p);
	return ok;
}

static void test_export_llama(void **state)
{
	(void)state;
	char *orig = fixture_path("llama/orig"), *off = fixture_path("llama/df11");
	char *tmp = make_tmpdir(), *out = path_join(tmp, "dfl");
	df11_dfloat11_options opt = {.threads = 3};
	df11_dfloat11_stats st;
	assert_int_equal(df11_export_dfloat11(orig, out, &opt, &st), DF11_OK);
	assert_int_equal(st.n_groups, 4);
	assert_int_equal(st.n_plain, 0);
	assert_int_equal(st.n_weights, 16);
	assert_true(st.stored_bytes < st.bf16_bytes * 3 / 4);
	/* The official layout: the same files, the same tensors in each. */
	DIR *d = opendir(off);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		files++;
		if (!file_exists(out, de->d_name))
			fail_msg("%s missing", de->d_name);
		size_t n = strlen(de->d_name);
		if (n < 12 || strcmp(de->d_name + n - 12, ".safetensors"))
			continue;
		char *a = path_join(off, de->d_name), *b = path_join(out, de->d_name);
		st_edit ea, eb;
		st_edit_load(&ea, a);
		st_edit_load(&eb, b);
		assert_int_equal(ea.n, eb.n);
		for (size_t i = 0; i < ea.n; i++) {
			st_edit_tensor *t = st_edit_find(&eb, ea.t[i].name);
			assert_string_equal(t->dtype, ea.t[i].dtype);
			assert_int_equal(t->ndim, ea.t[i].ndim);
		}
		st_edit_free(&ea);
		st_edit_free(&eb);
		free(a);
		free(b);
	}
	closedir(d);
	assert_int_equal(files, 7);
	/* Read back: the original, bit for bit; every group decodes on
	 * the kernel model. */
	df11_model *m, *o;
	assert_int_equal(df11_model_open(out, &m), DF11_OK);
	assert_int_equal(df11_model_open(orig, &o), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), df11_model_num_tensors(o));
	for (size_t i = 0; i < df11_model_num_tensors(o); i++) {
		df11_tensor_desc a, b;
		df11_model_tensor(o, i, &a);
		uint8_t *pa = read_tensor(o, a.name, &a), *pb = read_tensor(m, a.name, &b);
		assert_int_equal(a.nbytes, b.nbytes);
		assert_memory_equal(pa, pb, a.nbytes);
		free(pa);
		free(pb);
	}
	kernel_check_model(m);
	df11_model_close(m);
	df11_model_close(o);
	/* An existing output is kept unless forced. */
	assert_int_equal(df11_export_dfloat11(orig, out, &opt, NULL), DF11_EXISTS);
	opt.force = 1;
	assert_int_equal(df11_export_dfloat11(off, out, &opt, NULL), DF11_OK);
	/* From the official folder itself (read as BF16): the same data. */
	char *bf = path_join(tmp, "bf16");
	df11_pack_options po = {.threads = 1};
	assert_int_equal(df11_unpack(out, bf, &po, NULL), DF11_OK);
	char *p1 = path_join(bf, "model.safetensors"),
	     *p2 = path_join(orig, "model.safetensors");
	size_t n1, n2;
	uint8_t *b1 = read_bytes(p1, &n1), *b2 = read_bytes(p2, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	free(p1);
	free(p2);
	free(bf);
	rm_tree(tmp);
	free(tmp);
	free(out);
	free(orig);
	free(off);
}

static const char module_patterns[] =
	"{\"blocks\\\\.\\\\d+\": [\"qkv\", \"proj\"], \"head\": []}";

static void test_export_module(void **state)
{
	(void)state;
	char *orig = fixture_path("module/orig.safetensors");
	char *tmp = make_tmpdir(), *out = path_join(tmp, "dfl");
	df11_dfloat11_options opt = {.threads = 2, .pattern_dict = module_patterns};
	df11_dfloat11_stats st;
	assert_int_equal(df11_export_dfloat11(orig, out, &opt, &st), DF11_OK);
	assert_int_equal(st.n_groups, 3);
	assert_int_equal(st.n_weights, 5);
	/* config.json holds dfloat11_config only, as the official one. */
	char *cp = path_join(out, "config.json");
	json_t *c = json_load_file(cp, 0, NULL);
	assert_non_null(c);
	assert_int_equal(json_object_size(c), 1);
	json_t *pd = json_object_get(json_object_get(c, "dfloat11_config"),
				     "pattern_dict");
	json_t *want = json_loads(module_patterns, 0, NULL);
	assert_true(json_equal(pd, want));
	json_decref(want);
	json_decref(c);
	free(cp);
	st_edit o;
	st_edit_load(&o, orig);
	static const struct {
		const char *file, *group, *w[2], *other;
	} groups[] = {
		{"blocks_0.safetensors", "blocks.0",
		 {"blocks.0.qkv.weight", "blocks.0.proj.weight"}, "blocks.0.norm.bias"},
		{"blocks_1.safetensors", "blocks.1",
		 {"blocks.1.qkv.weight", "blocks.1.proj.weight"}, "blocks.1.qkv.bias"},
		{"head.safetensors", "head", {"head.weight", NULL}, "head.bias"},
	};
	for (size_t i = 0; i < 3; i++) {
		char *p = path_join(out, groups[i].file);
		st_edit e;
		st_edit_load(&e, p);
		df11_dfl_group g;
		dfl_group_from_edit(&e, groups[i].group, &g);
		if (df11_dfl_group_check(&g, "t"))
			fail_msg("%s", df11_last_error());
		uint16_t *a = malloc(2 * g.n), *b = malloc(2 * g.n);
		assert_int_equal(df11_dfl_group_decode(&g, 0, g.n, a, 1, "t"), DF11_OK);
		char why[256];
		if (dfl_kernel_model(&g, b, why, sizeof why))
			fail_msg("%s: %s", g.name, why);
		assert_memory_equal(a, b, 2 * g.n);
		size_t at = 0;
		for (int k = 0; k < 2 && groups[i].w[k]; k++) {
			st_edit_tensor *t = st_edit_find(&o, groups[i].w[k]);
			assert_memory_equal((uint8_t *)a + 2 * at, t->data, t->size);
			at += t->size / 2;
		}
		assert_int_equal(at, g.n);
		/* The module's other tensors travel with it. */
		st_edit_tensor *x = st_edit_find(&e, groups[i].other);
		assert_memory_equal(x->data, st_edit_find(&o, groups[i].other)->data,
				    x->size);
		df11_dfl_group_release(&g);
		free(a);
		free(b);
		st_edit_free(&e);
		free(p);
	}
	st_edit_free(&o);
	rm_tree(tmp);
	free(tmp);
	free(out);
	free(orig);
}

/* ------------------------------------------------- what cannot be coded */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

typedef struct note_log {
	int n;
	char text[8][160];
} note_log;

static void on_note(void *ctx, const char *group, const char *why)
{
	note_log *l = ctx;
	if (l->n < 8)
		snprintf(l->text[l->n++], sizeof l->text[0], "%s: %s", group, why);
}

#define N_HARD 60000

static void test_export_hard_groups(void **state)
{
	(void)state;
	/* big: finite values of 2^113 and more, and inf; zero: one exponent;
	 * skew: 99% one exponent (1-bit codes would put 32768 elements in a
	 * block); wide: 239 exponents, Fibonacci-like counts (long codes). */
	static uint16_t w[4][N_HARD];
	for (int i = 0; i < N_HARD; i++) {
		uint16_t sm = (uint16_t)(next_rand() & 0x807f);
		w[0][i] = (uint16_t)(sm | (120u + next_rand() % 4) << 7);
		w[1][i] = 0;
		unsigned e = next_rand() % 100 ? 121 : 100 + next_rand() % 40;
		w[2][i] = (uint16_t)(sm | e << 7);
		uint64_t r = next_rand();
		unsigned z = (unsigned)__builtin_ctzll(r | (1ull << 63));
		e = z < 40 ? 100 + z : (unsigned)(next_rand() % 239);
		w[3][i] = (uint16_t)(sm | e << 7);
	}
	w[0][5] = 0x7f00 | 0x7f;  /* 2^127-ish */
	w[0][6] = 0x7f80;         /* +inf */
	for (unsigned e = 0; e < 239; e++)
		w[3][e] = (uint16_t)(e << 7); /* every exponent below 240 */
	char *tmp = make_tmpdir(), *in = path_join(tmp, "in.safetensors");
	char json[1024];
	snprintf(json, sizeof json,
		 "{\"big.weight\":{\"dtype\":\"BF16\",\"shape\":[300,%d],"
		 "\"data_offsets\":[0,%d]},"
		 "\"zero.weight\":{\"dtype\":\"BF16\",\"shape\":[300,%d],"
		 "\"data_offsets\":[%d,%d]},"
		 "\"skew.weight\":{\"dtype\":\"BF16\",\"shape\":[300,%d],"
		 "\"data_offsets\":[%d,%d]},"
		 "\"wide.weight\":{\"dtype\":\"BF16\",\"shape\":[300,%d],"
		 "\"data_offsets\":[%d,%d]}}",
		 N_HARD / 300, 2 * N_HARD, N_HARD / 300, 2 * N_HARD, 4 * N_HARD,
		 N_HARD / 300, 4 * N_HARD, 6 * N_HARD, N_HARD / 300, 6 * N_HARD,
		 8 * N_HARD);
	write_st(in, json, w, sizeof w);
	char *out = path_join(tmp, "dfl");
	note_log notes = {0};
	df11_dfloat11_options opt = {
		.threads = 2, .note = on_note, .note_ctx = &notes,
		.pattern_dict = "{\"big\": [], \"zero\": [], \"skew\": [], "
				"\"wide\": []}"};
	df11_dfloat11_stats st;
	assert_int_equal(df11_export_dfloat11(in, out, &opt, &st), DF11_OK);
	assert_int_equal(st.n_groups, 4);
	assert_int_equal(st.n_plain, 2);
	assert_int_equal(notes.n, 2);
	assert_non_null(strstr(notes.text[0], "big: exponents of 2^113"));
	assert_non_null(strstr(notes.text[1], "zero: a single exponent"));
	/* Plain groups: the weights as they were, no DFloat11 buffers. */
	static const char *const plain[] = {"big", "zero"};
	for (int k = 0; k < 2; k++) {
		char f[64], t[64];
		snprintf(f, sizeof f, "%s.safetensors", plain[k]);
		snprintf(t, sizeof t, "%s.weight", plain[k]);
		char *p = path_join(out, f);
		st_edit e;
		st_edit_load(&e, p);
		assert_int_equal(e.n, 1);
		st_edit_tensor *x = st_edit_find(&e, t);
		assert_string_equal(x->dtype, "BF16");
		assert_memory_equal(x->data, w[k], sizeof w[k]);
		st_edit_free(&e);
		free(p);
	}
	/* Coded groups: within the kernel's limits, decoding to the data. */
	static const char *const coded[] = {"skew", "wide"};
	for (int k = 0; k < 2; k++) {
		char f[64];
		snprintf(f, sizeof f, "%s.safetensors", coded[k]);
		char *p = path_join(out, f);
		st_edit e;
		st_edit_load(&e, p);
		df11_dfl_group g;
		dfl_group_from_edit(&e, coded[k], &g);
		if (df11_dfl_group_check(&g, "t"))
			fail_msg("%s", df11_last_error());
		assert_true(g.n_luts <= DFL_MAX_LUTS);
		uint16_t *a = malloc(2 * g.n), *b = malloc(2 * g.n);
		assert_int_equal(df11_dfl_decode_reference(&g, a, "t"), DF11_OK);
		assert_memory_equal(a, w[2 + k], sizeof w[0]);
		char why[256];
		if (dfl_kernel_model(&g, b, why, sizeof why))
			fail_msg("%s: %s", g.name, why);
		assert_memory_equal(b, w[2 + k], sizeof w[0]);
		/* The coder in memory gives the file's bytes. */
		uint8_t *cs = malloc(4 * g.n + 8), *sm = malloc(g.n);
		uint64_t nb = 0;
		assert_int_equal(df11_dfl_encode_group(w[2 + k], g.n, cs, sm, &nb),
				 DF11_OK);
		assert_int_equal(nb, g.n_bytes);
		assert_memory_equal(cs, g.stream, nb);
		assert_memory_equal(sm, g.sm, g.n);
		free(cs);
		free(sm);
		df11_dfl_group_release(&g);
		free(a);
		free(b);
		st_edit_free(&e);
		free(p);
	}
	rm_tree(tmp);
	free(tmp);
	free(in);
	free(out);
}

static void expect_refused(const char *input, const char *patterns,
			   df11_result want, const char *msg)
{
	char *tmp = make_tmpdir(), *out = path_join(tmp, "dfl");
	df11_dfloat11_options opt = {.threads = 1, .pattern_dict = patterns};
	df11_result r = df11_export_dfloat11(input, out, &opt, NULL);
	if (r != want || !strstr(df11_last_error(), msg))
		fail_msg("got %d \"%s\", want %d \"%s\"", r, df11_last_error(),
			 want, msg);
	/* Nothing left behind. */
	DIR *d = opendir(tmp);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 0);
	rm_tree(tmp);
	free(tmp);
	free(out);
}

static void test_export_refusals(void **state)
{
	(void)state;
	char *mod = fixture_path("module/orig.safetensors");
	expect_refused(mod, NULL, DF11_UNSUPPORTED, "pattern_dict");
	expect_refused(mod, "{\"nothing\": []}", DF11_INVALID_ARG, "matches no");
	expect_refused(mod, "{\"(?=x)blocks\": []}", DF11_INVALID_ARG, "regex");
	expect_refused(mod, "{\"blocks\\\\.0\": [\"qkv\", \"nope\"]}",
		       DF11_INVALID_ARG, "blocks.0.nope.weight");
	expect_refused(mod, "{\"blocks\\\\.0\": []}", DF11_INVALID_ARG,
		       "no weight");
	expect_refused(mod, "{\"blocks\\\\.0\": [\"qkv\"], \"blocks\\\\.0\\\\.qkv\": []}",
		       DF11_INVALID_ARG, "two groups");
	expect_refused(mod, "{\"blocks\\\\.0\\\\.norm\": []}", DF11_INVALID_ARG,
		       "not a matrix");
	expect_refused(mod, "[1]", DF11_INVALID_ARG, "pattern_dict");
	free(mod);
}

/* Tied embeddings: lm_head is a group of its own, coded from the
 * embedding, as the official compressor writes it. */
static void test_export_tied(void **state)
{
	(void)state;
	char *orig = fixture_path("llama/orig");
	char *in = copy_fixture(orig);
	char *p = path_join(in, "model.safetensors");
	st_edit e;
	st_edit_load(&e, p);
	st_edit_remove(&e, "lm_head.weight");
	st_edit_save(&e, p);
	st_edit_free(&e);
	char *cp = path_join(in, "config.json");
	json_t *c = json_load_file(cp, 0, NULL);
	json_object_set_new(c, "tie_word_embeddings", json_true());
	json_dump_file(c, cp, JSON_INDENT(2));
	json_decref(c);
	char *tmp = make_tmpdir(), *out = path_join(tmp, "dfl");
	df11_dfloat11_options opt = {.threads = 2};
	df11_dfloat11_stats st;
	assert_int_equal(df11_export_dfloat11(in, out, &opt, &st), DF11_OK);
	assert_int_equal(st.n_groups, 4);
	assert_true(file_exists(out, "lm_head.safetensors"));
	df11_model *m;
	assert_int_equal(df11_model_open(out, &m), DF11_OK);
	df11_tensor_desc a, b;
	uint8_t *pa = read_tensor(m, "lm_head.weight", &a),
		*pb = read_tensor(m, "model.embed_tokens.weight", &b);
	assert_int_equal(a.nbytes, b.nbytes);
	assert_memory_equal(pa, pb, a.nbytes);
	free(pa);
	free(pb);
	df11_model_close(m);
	rm_tree(tmp);
	rm_tree(in);
	free(tmp);
	free(out);
	free(in);
	free(p);
	free(cp);
	free(orig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_llama),
		cmocka_unit_test(test_export_module),
		cmocka_unit_test(test_export_hard_groups),
		cmocka_unit_test(test_export_refusals),
		cmocka_unit_test(test_export_tied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
