/*
 * Official DFloat11 checkpoints (made by the `dfloat11` package's own
 * compressor: tests/fixtures/make_dfloat11.py):
 *   - a folder reads as the BF16 checkpoint it was made from, bit for bit,
 *     with its names, shapes, config.json and other files;
 *   - range reads equal slices of full reads and decode only the blocks
 *     they need;
 *   - the block decoder, the front-to-back reference and a CPU model of
 *     the official kernel agree on every group;
 *   - df11-decode's and df11-encode's pipelines (df11_unpack, df11_pack);
 *   - hostile files: each malformed field is refused cleanly (at open, or
 *     on reading the weights it concerns), never read as other data;
 *   - config.json surgery, pattern_dict regexes, shapes per architecture.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "df11.h"
#include "df11/dfloat11.h"
#include "df11/dfloat11_format.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "tests/dfl_testutil.h"
#include "tests/model_testutil.h"

static uint8_t *read_all(df11_model *m, size_t i, df11_tensor_desc *d)
{
	assert_int_equal(df11_model_tensor(m, i, d), DF11_OK);
	uint8_t *p = malloc(d->nbytes + 1);
	assert_non_null(p);
	assert_int_equal(df11_model_read(m, i, p, d->nbytes), DF11_OK);
	return p;
}

/* Every tensor of a equals b's of that name: dtype, shape and bytes. */
static void assert_same_model(df11_model *a, df11_model *b)
{
	assert_int_equal(df11_model_num_tensors(a), df11_model_num_tensors(b));
	for (size_t i = 0; i < df11_model_num_tensors(a); i++) {
		df11_tensor_desc da, db;
		uint8_t *pa = read_all(a, i, &da);
		size_t j;
		assert_int_equal(df11_model_find(b, da.name, &j), DF11_OK);
		uint8_t *pb = read_all(b, j, &db);
		assert_int_equal(da.dtype, db.dtype);
		assert_int_equal(da.ndim, db.ndim);
		for (int k = 0; k < da.ndim; k++)
			assert_int_equal(da.shape[k], db.shape[k]);
		assert_int_equal(da.nbytes, db.nbytes);
		if (memcmp(pa, pb, da.nbytes))
			fail_msg("%s differs", da.name);
		free(pa);
		free(pb);
	}
}

static void test_llama_matches_original(void **state)
{
	(void)state;
	char *dp = fixture_path("llama/df11"), *op = fixture_path("llama/orig");
	df11_model *d, *o;
	assert_int_equal(df11_model_open(dp, &d), DF11_OK);
	assert_int_equal(df11_model_open(op, &o), DF11_OK);
	assert_int_equal(df11_dfl_group_count(d), 4);
	size_t n_comp = 0;
	for (size_t i = 0; i < df11_model_num_tensors(d); i++) {
		df11_tensor_desc t;
		df11_model_tensor(d, i, &t);
		n_comp += t.compressed != 0;
	}
	assert_int_equal(n_comp, 2 * 7 + 2);
	assert_same_model(d, o);
	for (int threads = 1; threads <= 3; threads += 2) {
		df11_model_set_threads(d, threads);
		assert_same_model(d, o);
	}
	/* config.json without dfloat11_config is the original's, byte for
	 * byte; the other files are carried. */
	const void *a, *b;
	size_t na, nb;
	assert_int_equal(df11_model_file(d, "config.json", &a, &na), DF11_OK);
	assert_int_equal(df11_model_file(o, "config.json", &b, &nb), DF11_OK);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	assert_int_equal(df11_model_file(d, "generation_config.json", &a, &na),
			 DF11_OK);
	assert_int_equal(df11_model_file(d, "model.safetensors.index.json", &a,
					 &na), DF11_NOT_FOUND);
	/* The encoded bytes are the official format's, not ours. */
	size_t qi;
	assert_int_equal(df11_model_find(d, "model.layers.0.self_attn.q_proj.weight",
					 &qi), DF11_OK);
	assert_int_equal(df11_model_encoded(d, qi, &a, &na), DF11_UNSUPPORTED);
	df11_model_close(d);
	df11_model_close(o);
	free(dp);
	free(op);
}

static void test_range_reads(void **state)
{
	(void)state;
	char *dp = fixture_path("llama/df11");
	df11_model *d;
	assert_int_equal(df11_model_open(dp, &d), DF11_OK);
	uint64_t seed = 7;
	for (size_t i = 0; i < df11_model_num_tensors(d); i++) {
		df11_tensor_desc t;
		uint16_t *full = (uint16_t *)(void *)read_all(d, i, &t);
		if (t.dtype != DF11_DTYPE_BF16) {
			free(full);
			continue;
		}
		uint16_t *part = malloc(t.nbytes);
		uint64_t n = t.n_elems;
		for (int k = 0; k < 24; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t first = (seed >> 20) % n, count;
			if (k == 0)
				first = 0, count = 1;
			else if (k == 1)
				first = n - 1, count = 1;
			else
				count = 1 + (seed >> 40) % (n - first);
			df11_model_set_threads(d, 1 + k % 3);
			assert_int_equal(df11_model_read_range(d, i, first, count, part),
					 DF11_OK);
			if (memcmp(part, full + first, 2 * count))
				fail_msg("%s [%llu, +%llu)", t.name,
					 (unsigned long long)first,
					 (unsigned long long)count);
		}
		assert_int_equal(df11_model_read_range(d, i, n, 1, part),
				 DF11_INVALID_ARG);
		free(part);
		free(full);
	}
	df11_model_close(d);
	free(dp);
}

/* The block decoder, the reference and the kernel model agree. */
static void test_three_decoders(void **state)
{
	(void)state;
	char *dp = fixture_path("llama/df11");
	df11_model *d;
	assert_int_equal(df11_model_open(dp, &d), DF11_OK);
	for (size_t gi = 0; gi < df11_dfl_group_count(d); gi++) {
		df11_dfl_group *g = df11_dfl_group_get(d, gi);
		uint16_t *a = malloc(2 * g->n), *b = malloc(2 * g->n),
			 *c = malloc(2 * g->n);
		assert_true(g->blocks >= 2); /* several blocks: positions used */
		assert_int_equal(df11_dfl_group_decode(g, 0, g->n, a, 3, "t"), DF11_OK);
		assert_int_equal(df11_dfl_decode_reference(g, b, "t"), DF11_OK);
		char why[256] = "";
		if (dfl_kernel_model(g, c, why, sizeof why))
			fail_msg("%s: %s", g->name, why);
		assert_memory_equal(a, b, 2 * g->n);
		assert_memory_equal(a, c, 2 * g->n);
		free(a);
		free(b);
		free(c);
	}
	df11_model_close(d);
	free(dp);
}

static void test_unpack_and_pack(void **state)
{
	(void)state;
	char *dp = fixture_path("llama/df11"), *op = fixture_path("llama/orig");
	char *tmp = make_tmpdir();
	char *out = path_join(tmp, "bf16"), *ct = path_join(tmp, "m.df11");
	df11_pack_options opt = {.threads = 2};
	df11_pack_stats st;
	assert_int_equal(df11_unpack(dp, out, &opt, &st), DF11_OK);
	assert_int_equal(st.n_files, 3);
	/* The same files as save_pretrained wrote, byte for byte. */
	static const char *const files[] = {"model.safetensors", "config.json",
					    "generation_config.json"};
	for (size_t i = 0; i < 3; i++) {
		char *a = path_join(out, files[i]), *b = path_join(op, files[i]);
		size_t na, nb;
		uint8_t *pa = read_bytes(a, &na), *pb = read_bytes(b, &nb);
		assert_int_equal(na, nb);
		assert_memory_equal(pa, pb, na);
		free(pa);
		free(pb);
		free(a);
		free(b);
	}
	assert_int_equal(df11_unpack(dp, out, &opt, &st), DF11_EXISTS);
	/* Transcoded to a container: the original checkpoint again. */
	assert_int_equal(df11_pack(dp, ct, &opt, &st), DF11_OK);
	df11_model *c, *o;
	assert_int_equal(df11_model_open(ct, &c), DF11_OK);
	assert_int_equal(df11_model_open(op, &o), DF11_OK);
	assert_same_model(c, o);
	df11_model_close(c);
	df11_model_close(o);
	assert_int_equal(df11_verify(ct, op, &opt, NULL, NULL, NULL), DF11_OK);
	rm_tree(tmp);
	free(tmp);
	free(out);
	free(ct);
	free(dp);
	free(op);
}

/* Bytes of tensor data in m. */
static uint64_t tensor_bytes(df11_model *m)
{
	uint64_t total = 0;
	for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
		df11_tensor_desc t;
		df11_model_tensor(m, i, &t);
		total += t.nbytes;
	}
	return total;
}

/* A checkpoint past the shard size decodes to save_pretrained's layout:
 * model-0000i-of-0000N.safetensors shards, tensors in name order, and
 * model.safetensors.index.json naming each tensor's shard, which
 * df11_model_open reads back as the original checkpoint. */
static void test_unpack_sharded(void **state)
{
	(void)state;
	char *dp = fixture_path("llama/df11"), *op = fixture_path("llama/orig");
	char *tmp = make_tmpdir();
	char *out = path_join(tmp, "bf16");
	df11_model *o;
	assert_int_equal(df11_model_open(op, &o), DF11_OK);
	uint64_t total = tensor_bytes(o);
	uint64_t keep = df11_dfl_shard_bytes;
	df11_dfl_shard_bytes = total / 3;
	df11_pack_options opt = {.threads = 2};
	df11_result r = df11_unpack(dp, out, &opt, NULL);
	df11_dfl_shard_bytes = keep;
	assert_int_equal(r, DF11_OK);
	char *single = path_join(out, "model.safetensors");
	assert_int_not_equal(access(single, F_OK), 0);
	free(single);
	/* How many shards: count model-00001-of-0000N names. */
	size_t nshard = 0;
	for (size_t n = 2; n < 10 && !nshard; n++) {
		char name[64];
		snprintf(name, sizeof name, "model-00001-of-%05zu.safetensors", n);
		char *p = path_join(out, name);
		if (access(p, F_OK) == 0)
			nshard = n;
		free(p);
	}
	assert_true(nshard >= 3);
	/* Each shard within the size unless it holds one tensor only; every
	 * index entry names a shard that holds that tensor. */
	char *ip = path_join(out, "model.safetensors.index.json");
	json_error_t err;
	json_t *idx = json_load_file(ip, 0, &err);
	assert_non_null(idx);
	json_t *map = json_object_get(idx, "weight_map");
	assert_int_equal(json_object_size(map), df11_model_num_tensors(o));
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(idx, "metadata"), "total_size")),
			 total);
	for (size_t k = 1; k <= nshard; k++) {
		char name[64];
		snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors",
			 k, nshard);
		char *p = path_join(out, name);
		df11_model *sh;
		assert_int_equal(df11_model_open(p, &sh), DF11_OK);
		for (size_t i = 0; i < df11_model_num_tensors(sh); i++) {
			df11_tensor_desc t;
			df11_model_tensor(sh, i, &t);
			assert_string_equal(json_string_value(json_object_get(
						    map, t.name)), name);
		}
		assert_true(tensor_bytes(sh) <= total / 3 ||
			    df11_model_num_tensors(sh) == 1);
		df11_model_close(sh);
		free(p);
	}
	json_decref(idx);
	free(ip);
	df11_model *b;
	assert_int_equal(df11_model_open(out, &b), DF11_OK);
	assert_same_model(b, o);
	df11_model_close(b);
	df11_model_close(o);
	rm_tree(tmp);
	free(tmp);
	free(out);
	free(dp);
	free(op);
}

/* A non-transformers module: open refuses (no shapes), its groups decode
 * to the original weights. */
static void test_custom_module(void **state)
{
	(void)state;
	char *dp = fixture_path("module/df11");
	df11_model *d = NULL;
	assert_int_equal(df11_model_open(dp, &d), DF11_UNSUPPORTED);
	assert_null(d);
	assert_non_null(strstr(df11_last_error(), "model_type"));
	char *sp = fixture_path("module/df11/model.safetensors");
	char *orig = fixture_path("module/orig.safetensors");
	st_edit e, o;
	st_edit_load(&e, sp);
	st_edit_load(&o, orig);
	static const struct {
		const char *group, *w[2];
	} groups[] = {
		{"blocks.0", {"blocks.0.qkv.weight", "blocks.0.proj.weight"}},
		{"blocks.1", {"blocks.1.qkv.weight", "blocks.1.proj.weight"}},
		{"head", {"head.weight", NULL}},
	};
	for (size_t i = 0; i < 3; i++) {
		df11_dfl_group g;
		dfl_group_from_edit(&e, groups[i].group, &g);
		if (df11_dfl_group_check(&g, "t"))
			fail_msg("%s", df11_last_error());
		uint16_t *a = malloc(2 * g.n), *c = malloc(2 * g.n);
		assert_int_equal(df11_dfl_group_decode(&g, 0, g.n, a, 2, "t"), DF11_OK);
		char why[256];
		if (dfl_kernel_model(&g, c, why, sizeof why))
			fail_msg("%s: %s", g.name, why);
		assert_memory_equal(a, c, 2 * g.n);
		size_t at = 0;
		for (int k = 0; k < 2 && groups[i].w[k]; k++) {
			st_edit_tensor *t = st_edit_find(&o, groups[i].w[k]);
			assert_true(at + t->size / 2 <= g.n);
			assert_memory_equal((uint8_t *)a + 2 * at, t->data, t->size);
			at += t->size / 2;
		}
		assert_int_equal(at, g.n);
		df11_dfl_group_release(&g);
		free(a);
		free(c);
	}
	/* The special values survived: -0.0, a subnormal, a huge value. */
	st_edit_tensor *pw = st_edit_find(&o, "blocks.0.proj.weight");
	assert_int_equal(df11_rd16(pw->data), 0x8000);
	st_edit_free(&e);
	st_edit_free(&o);
	free(sp);
	free(orig);
	free(dp);
}

/* ------------------------------------------------------------ hostile */

#define LAYER "model_layers_0.safetensors"
#define G "model.layers.0"

typedef void (*edit_fn)(st_edit *e);

/* A copy of the Llama fixture with LAYER edited by fn. */
static char *hostile_copy(edit_fn fn)
{
	char *src = fixture_path("llama/df11");
	char *dir = copy_fixture(src);
	char *p = path_join(dir, LAYER);
	st_edit e;
	st_edit_load(&e, p);
	fn(&e);
	st_edit_save(&e, p);
	st_edit_free(&e);
	free(p);
	free(src);
	return dir;
}

static void expect_open_fails(edit_fn fn, df11_result want, const char *msg)
{
	char *dir = hostile_copy(fn);
	df11_model *m = (df11_model *)1;
	df11_result r = df11_model_open(dir, &m);
	if (r != want)
		fail_msg("open gave %d (%s), want %d", r, df11_last_error(), want);
	assert_null(m);
	if (msg && !strstr(df11_last_error(), msg))
		fail_msg("message \"%s\" lacks \"%s\"", df11_last_error(), msg);
	rm_tree(dir);
	free(dir);
}

/* Opens; reading the group's weights fails at least once, and whatever
 * reads succeed (every other tensor too) equals the original. */
static void expect_reads_fail(edit_fn fn, const char *msg)
{
	char *dir = hostile_copy(fn), *op = fixture_path("llama/orig");
	df11_model *m, *o;
	assert_int_equal(df11_model_open(dir, &m), DF11_OK);
	assert_int_equal(df11_model_open(op, &o), DF11_OK);
	int failed = 0;
	for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
		df11_tensor_desc t, u;
		df11_model_tensor(m, i, &t);
		uint8_t *p = malloc(t.nbytes);
		df11_result r = df11_model_read(m, i, p, t.nbytes);
		if (r) {
			assert_int_equal(r, DF11_BAD_DATA);
			assert_non_null(strstr(t.name, G "."));
			if (msg && !strstr(df11_last_error(), msg))
				fail_msg("message \"%s\" lacks \"%s\"",
					 df11_last_error(), msg);
			failed++;
		} else {
			size_t j;
			assert_int_equal(df11_model_find(o, t.name, &j), DF11_OK);
			uint8_t *q = read_all(o, j, &u);
			assert_memory_equal(p, q, t.nbytes);
			free(q);
		}
		free(p);
	}
	assert_true(failed > 0);
	df11_model_close(m);
	df11_model_close(o);
	rm_tree(dir);
	free(dir);
	free(op);
}

static uint8_t *buf_of(st_edit *e, const char *suffix, size_t *n)
{
	char key[128];
	snprintf(key, sizeof key, G ".%s", suffix);
	st_edit_tensor *t = st_edit_find(e, key);
	*n = t->size;
	return t->data;
}

static void e_pointer_past(st_edit *e)
{
	size_t n;
	uint8_t *l = buf_of(e, "luts", &n);
	assert_int_equal(n, 3 * 256); /* root, one sub-table, lengths */
	l[0] = 256 - 2;               /* "table 2": the lengths row */
}

static void e_seventeen_subtables(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".luts");
	uint8_t l[19 * 256];
	memcpy(l, t->data, 2 * 256);               /* root, table 1 */
	for (int r = 2; r < 18; r++)
		memcpy(l + 256 * r, t->data + 256, 256);
	memcpy(l + 18 * 256, t->data + 2 * 256, 256); /* lengths */
	st_edit_set(t, l, sizeof l);
	t->shape[0] = 19;
	t->shape[1] = 256;
}

static void e_zero_length(st_edit *e)
{
	size_t n;
	uint8_t *l = buf_of(e, "luts", &n);
	unsigned v = l[0];
	assert_true(v < 240);
	l[2 * 256 + v] = 0;
}

static void e_table_loop(st_edit *e)
{
	size_t n;
	uint8_t *l = buf_of(e, "luts", &n);
	/* Table 1 points to itself: reached at every depth. */
	l[256 + 255] = 255;
}

static void e_gap(st_edit *e)
{
	size_t n;
	uint8_t *g = buf_of(e, "gaps", &n);
	g[5 * 7 / 8] ^= 0x04; /* a bit of chunk 7's gap */
}

static void e_output_position(st_edit *e)
{
	size_t n;
	uint8_t *p = buf_of(e, "output_positions", &n);
	df11_wr32(p + 8, df11_rd32(p + 8) + 1);
}

static void e_output_position_shift(st_edit *e)
{
	/* Positions 1 and 2 both moved: each block alone is consistent
	 * with its neighbours' gaps but not with where block 0 ends. */
	size_t n;
	uint8_t *p = buf_of(e, "output_positions", &n);
	df11_wr32(p + 4, df11_rd32(p + 4) - 1);
}

static void e_split(st_edit *e)
{
	size_t n;
	uint8_t *s = buf_of(e, "split_positions", &n);
	df11_wr64(s, df11_rd64(s) + 1);
}

static void e_split_order(st_edit *e)
{
	size_t n;
	uint8_t *s = buf_of(e, "split_positions", &n);
	df11_wr64(s + 8, df11_rd64(s));
}

static void e_short_sm(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".sign_mantissa");
	t->size--;
	t->shape[0]--;
}

static void e_long_stream(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".encoded_exponent");
	uint8_t *p = malloc(t->size + 1);
	memcpy(p, t->data, t->size);
	p[t->size] = 0;
	st_edit_set(t, p, t->size + 1);
	free(p);
}

static void e_short_gaps(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".gaps");
	t->size--;
	t->shape[0]--;
}

static void e_odd_positions(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".output_positions");
	t->size--;
	t->shape[0]--;
}

static void e_few_positions(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".output_positions");
	t->size -= 8;
	t->shape[0] -= 8;
}

static void e_luts_dtype(st_edit *e)
{
	st_edit_tensor *t = st_edit_find(e, G ".luts");
	snprintf(t->dtype, sizeof t->dtype, "I8");
}

static void e_no_gaps(st_edit *e)
{
	st_edit_remove(e, G ".gaps");
}

static void e_name_clash(st_edit *e)
{
	uint64_t shape[1] = {1};
	uint16_t v = 0x3f80;
	st_edit_add(e, G ".self_attn.q_proj.weight", "BF16", 1, shape, &v, 2);
}

static void test_hostile_tables(void **state)
{
	(void)state;
	expect_open_fails(e_pointer_past, DF11_BAD_DATA, "past the");
	expect_open_fails(e_seventeen_subtables, DF11_BAD_DATA, "sub-tables");
	expect_open_fails(e_zero_length, DF11_BAD_DATA, "zero length");
	expect_open_fails(e_table_loop, DF11_BAD_DATA, "two depths");
	expect_open_fails(e_luts_dtype, DF11_BAD_DATA, "luts");
}

static void test_hostile_positions(void **state)
{
	(void)state;
	expect_reads_fail(e_gap, "gap");
	expect_reads_fail(e_output_position, NULL);
	expect_reads_fail(e_output_position_shift, NULL);
	expect_open_fails(e_few_positions, DF11_BAD_DATA, "output positions");
	expect_open_fails(e_odd_positions, DF11_BAD_DATA, "output_positions");
}

static void test_hostile_sizes(void **state)
{
	(void)state;
	expect_open_fails(e_split, DF11_BAD_DATA, "config.json gives it");
	expect_open_fails(e_split_order, DF11_BAD_DATA, "split position");
	expect_open_fails(e_short_sm, DF11_BAD_DATA, NULL);
	expect_reads_fail(e_long_stream, "stream");
	expect_open_fails(e_short_gaps, DF11_BAD_DATA, "gaps");
	expect_open_fails(e_no_gaps, DF11_BAD_DATA, G ".gaps");
	expect_open_fails(e_name_clash, DF11_BAD_DATA, "two tensors");
}

/* A stream read past the gap of block 0's chunk 7 must not need block 0:
 * a range in the last block reads while block 0 is broken. */
static void test_range_skips_blocks(void **state)
{
	(void)state;
	char *dir = hostile_copy(e_gap), *op = fixture_path("llama/orig");
	df11_model *m, *o;
	assert_int_equal(df11_model_open(dir, &m), DF11_OK);
	assert_int_equal(df11_model_open(op, &o), DF11_OK);
	size_t i, j;
	const char *name = G ".mlp.down_proj.weight";
	assert_int_equal(df11_model_find(m, name, &i), DF11_OK);
	assert_int_equal(df11_model_find(o, name, &j), DF11_OK);
	df11_tensor_desc t;
	uint16_t *want = (uint16_t *)(void *)read_all(o, j, &t), got[100];
	assert_int_equal(df11_model_read_range(m, i, t.n_elems - 100, 100, got),
			 DF11_OK);
	assert_memory_equal(got, want + t.n_elems - 100, sizeof got);
	assert_int_equal(df11_model_find(m, G ".self_attn.q_proj.weight", &i),
			 DF11_OK);
	assert_int_equal(df11_model_read_range(m, i, 0, 100, got), DF11_BAD_DATA);
	free(want);
	df11_model_close(m);
	df11_model_close(o);
	rm_tree(dir);
	free(dir);
	free(op);
}

/* Every 5th byte of a group file, flipped: never a crash; open refuses
 * cleanly or reads run (the format has no checksums: a flipped
 * sign|mantissa byte reads as other data, which only the original could
 * tell). */
static void test_byte_flips(void **state)
{
	(void)state;
	char *src = fixture_path("llama/df11");
	char *dir = copy_fixture(src);
	char *p = path_join(dir, "lm_head.safetensors");
	size_t n;
	uint8_t *orig = read_bytes(p, &n), *b = malloc(n);
	int opened = 0, refused = 0;
	for (size_t at = 0; at < n; at += 5) {
		memcpy(b, orig, n);
		b[at] ^= (uint8_t)(1u << (at % 8));
		write_bytes(p, b, n);
		df11_model *m;
		df11_result r = df11_model_open(dir, &m);
		if (r) {
			assert_true(r == DF11_BAD_DATA || r == DF11_UNSUPPORTED ||
				    r == DF11_LIMIT);
			refused++;
			continue;
		}
		opened++;
		size_t i;
		if (df11_model_find(m, "lm_head.weight", &i) == DF11_OK) {
			df11_tensor_desc t;
			df11_model_tensor(m, i, &t);
			uint8_t *w = malloc(t.nbytes);
			r = df11_model_read(m, i, w, t.nbytes);
			assert_true(r == DF11_OK || r == DF11_BAD_DATA);
			free(w);
		}
		df11_model_close(m);
	}
	assert_true(opened > 0 && refused > 0);
	free(orig);
	free(b);
	free(p);
	rm_tree(dir);
	free(dir);
	free(src);
}

/* ----------------------------------------------------- config, regexes */

static void config_edit(const char *dir, const char *key, json_t *val)
{
	char *p = path_join(dir, "config.json");
	json_t *c = json_load_file(p, 0, NULL);
	assert_non_null(c);
	if (!strcmp(key, "bytes_per_thread") || !strcmp(key, "pattern_dict"))
		json_object_set_new(json_object_get(c, "dfloat11_config"), key, val);
	else
		json_object_set_new(c, key, val);
	assert_int_equal(json_dump_file(c, p, JSON_INDENT(2)), 0);
	json_decref(c);
	free(p);
}

static void expect_config_refused(const char *key, json_t *val,
				  df11_result want, const char *msg)
{
	char *src = fixture_path("llama/df11");
	char *dir = copy_fixture(src);
	config_edit(dir, key, val);
	df11_model *m = NULL;
	assert_int_equal(df11_model_open(dir, &m), want);
	assert_null(m);
	if (!strstr(df11_last_error(), msg))
		fail_msg("message \"%s\" lacks \"%s\"", df11_last_error(), msg);
	rm_tree(dir);
	free(dir);
	free(src);
}

static void test_config_refusals(void **state)
{
	(void)state;
	expect_config_refused("bytes_per_thread", json_integer(4),
			      DF11_UNSUPPORTED, "threads");
	expect_config_refused("model_type", json_string("gpt2"), DF11_UNSUPPORTED,
			      "\"gpt2\"");
	expect_config_refused("pattern_dict",
			      json_pack("{s:[]}", "lm_head"), DF11_BAD_DATA,
			      "matches no pattern");
	expect_config_refused("pattern_dict",
			      json_pack("{s:[]}", "(?=x)lm_head"),
			      DF11_UNSUPPORTED, "regex");
	expect_config_refused("hidden_size", json_integer(32), DF11_BAD_DATA,
			      "config.json gives it");
}

static void check_strip(const char *in, const char *want)
{
	char *out;
	size_t n;
	assert_int_equal(df11_dfl_strip_config(in, strlen(in), &out, &n), DF11_OK);
	if (want && (n != strlen(want) || memcmp(out, want, n)))
		fail_msg("got \"%.*s\", want \"%s\"", (int)n, out, want);
	json_t *j = json_loadb(out, n, 0, NULL);
	assert_non_null(j);
	assert_null(json_object_get(j, "dfloat11_config"));
	json_decref(j);
	free(out);
}

static void test_strip_config(void **state)
{
	(void)state;
	check_strip("{\n  \"a\": 1,\n  \"dfloat11_config\": {\"x\": \"}\"},\n"
		    "  \"b\": [2, {\"c\": 3}]\n}\n",
		    "{\n  \"a\": 1,\n  \"b\": [2, {\"c\": 3}]\n}\n");
	check_strip("{\"dfloat11_config\": {}, \"b\": 1.5e-05}",
		    "{\"b\": 1.5e-05}");
	check_strip("{\"a\": \"x\\\"y\", \"dfloat11_config\": [1]}",
		    "{\"a\": \"x\\\"y\"}");
	check_strip("{\"dfloat11_config\": null}", "{}");
	char *out;
	size_t n;
	assert_int_equal(df11_dfl_strip_config("{\"a\": 1}", 8, &out, &n),
			 DF11_NOT_FOUND);
	assert_int_equal(df11_dfl_strip_config("[1]", 3, &out, &n), DF11_BAD_DATA);
}

static void test_fullmatch(void **state)
{
	(void)state;
	const char *L = "model\\.layers\\.\\d+";
	assert_int_equal(df11_dfl_fullmatch(L, "model.layers.12"), 1);
	assert_int_equal(df11_dfl_fullmatch(L, "model.layers.12.mlp"), 0);
	assert_int_equal(df11_dfl_fullmatch(L, "modelXlayers.1"), 0);
	assert_int_equal(df11_dfl_fullmatch(L, "xmodel.layers.1"), 0);
	assert_int_equal(df11_dfl_fullmatch("lm_head", "lm_head"), 1);
	assert_int_equal(df11_dfl_fullmatch("a|b", "b"), 1);
	assert_int_equal(df11_dfl_fullmatch("(?:a|b)\\w*", "b_9"), 1);
	assert_int_equal(df11_dfl_fullmatch("[\\d.]+", "1.2"), 1);
	assert_int_equal(df11_dfl_fullmatch("x.*?y", "xaay"), 1);
	assert_int_equal(df11_dfl_fullmatch("(?=x)", "x"), -1);
	assert_int_equal(df11_dfl_fullmatch("\\bx", "x"), -1);
	assert_int_equal(df11_dfl_fullmatch("[x", "x"), -1);
}

static void check_shape(const df11_dfl_arch *a, const char *name, uint64_t r,
			uint64_t c)
{
	uint64_t s[2];
	assert_int_equal(df11_dfl_arch_shape(a, name, s, "t"), DF11_OK);
	if (s[0] != r || s[1] != c)
		fail_msg("%s: [%llu, %llu], want [%llu, %llu]", name,
			 (unsigned long long)s[0], (unsigned long long)s[1],
			 (unsigned long long)r, (unsigned long long)c);
}

static void test_arch_shapes(void **state)
{
	(void)state;
	df11_dfl_arch a;
	/* Mistral-Nemo: head_dim 128 while hidden / heads = 160. */
	json_t *c = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i}", "model_type",
			      "mistral", "hidden_size", 5120, "intermediate_size",
			      14336, "vocab_size", 131072, "num_attention_heads",
			      32, "num_key_value_heads", 8, "head_dim", 128);
	assert_int_equal(df11_dfl_arch_from_config(c, &a, "t"), DF11_OK);
	check_shape(&a, "model.layers.39.self_attn.q_proj.weight", 4096, 5120);
	check_shape(&a, "model.layers.0.self_attn.k_proj.weight", 1024, 5120);
	check_shape(&a, "model.layers.0.self_attn.o_proj.weight", 5120, 4096);
	check_shape(&a, "model.layers.0.mlp.down_proj.weight", 5120, 14336);
	check_shape(&a, "model.embed_tokens.weight", 131072, 5120);
	check_shape(&a, "lm_head.weight", 131072, 5120);
	uint64_t s[2];
	assert_int_equal(df11_dfl_arch_shape(&a, "model.layers.0.mlp.w1.weight",
					     s, "t"), DF11_UNSUPPORTED);
	assert_int_equal(df11_dfl_arch_shape(&a, "model.layers.x.mlp.up_proj.weight",
					     s, "t"), DF11_UNSUPPORTED);
	json_decref(c);
	/* Llama without head_dim or num_key_value_heads. */
	c = json_pack("{s:s,s:i,s:i,s:i,s:i}", "model_type", "llama",
		      "hidden_size", 256, "intermediate_size", 512, "vocab_size",
		      1000, "num_attention_heads", 8);
	assert_int_equal(df11_dfl_arch_from_config(c, &a, "t"), DF11_OK);
	check_shape(&a, "model.layers.3.self_attn.v_proj.weight", 256, 256);
	json_decref(c);
	/* Gemma 3 with vision: the text model's numbers and prefixes; the
	 * vision tower is refused. */
	c = json_pack("{s:s,s:{s:s,s:i,s:i,s:i,s:i,s:i,s:i}}", "model_type",
		      "gemma3", "text_config", "model_type", "gemma3_text",
		      "hidden_size", 2560, "intermediate_size", 10240,
		      "vocab_size", 262208, "num_attention_heads", 8,
		      "num_key_value_heads", 4, "head_dim", 256);
	assert_int_equal(df11_dfl_arch_from_config(c, &a, "t"), DF11_OK);
	check_shape(&a, "language_model.model.layers.1.self_attn.q_proj.weight",
		    2048, 2560);
	check_shape(&a, "model.language_model.layers.1.mlp.gate_proj.weight",
		    10240, 2560);
	check_shape(&a, "language_model.model.embed_tokens.weight", 262208, 2560);
	assert_int_equal(df11_dfl_arch_shape(&a, "vision_tower.vision_model."
					     "encoder.layers.0.self_attn.q_proj.weight",
					     s, "t"), DF11_UNSUPPORTED);
	json_decref(c);
	c = json_pack("{s:s}", "model_type", "gemma3");
	assert_int_equal(df11_dfl_arch_from_config(c, &a, "t"), DF11_BAD_DATA);
	json_decref(c);
	c = json_pack("{s:s,s:i}", "model_type", "qwen3", "hidden_size", 64);
	assert_int_equal(df11_dfl_arch_from_config(c, &a, "t"), DF11_BAD_DATA);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llama_matches_original),
		cmocka_unit_test(test_range_reads),
		cmocka_unit_test(test_three_decoders),
		cmocka_unit_test(test_unpack_and_pack),
		cmocka_unit_test(test_unpack_sharded),
		cmocka_unit_test(test_custom_module),
		cmocka_unit_test(test_hostile_tables),
		cmocka_unit_test(test_hostile_positions),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_range_skips_blocks),
		cmocka_unit_test(test_byte_flips),
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_strip_config),
		cmocka_unit_test(test_fullmatch),
		cmocka_unit_test(test_arch_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
