/* The safetensors reader and the checkpoint API on .safetensors files and
 * sharded folders: good files read back exactly, and every malformed
 * header is refused with its exact result code (never a crash, never a
 * huge allocation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "df11/safetensors.h"
#include "tests/model_testutil.h"

static void test_dtypes(void **state)
{
	(void)state;
	assert_string_equal(df11_dtype_name(DF11_DTYPE_BF16), "BF16");
	assert_string_equal(df11_dtype_name(DF11_DTYPE_F8_E5M2), "F8_E5M2");
	assert_null(df11_dtype_name(DF11_DTYPE_COUNT));
	assert_int_equal(df11_dtype_size(DF11_DTYPE_BF16), 2);
	assert_int_equal(df11_dtype_size(DF11_DTYPE_F64), 8);
	assert_int_equal(df11_dtype_size(DF11_DTYPE_BOOL), 1);
	assert_int_equal(df11_dtype_size(DF11_DTYPE_COUNT), 0);
	for (int i = 0; i < DF11_DTYPE_COUNT; i++)
		assert_int_equal(df11_dtype_from_name(df11_dtype_name((df11_dtype)i)), i);
	assert_int_equal(df11_dtype_from_name("bf16"), -1);
}

static void test_mixed_file(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *p = path_join(dir, "model.safetensors");
	write_st_mixed(p, 3, 50, 70, 1);
	size_t fsize;
	uint8_t *raw = read_bytes(p, &fsize);
	df11_model *m;
	assert_int_equal(df11_model_open(p, &m), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), 3 + 5 + 1);
	/* Tensors come in the order of their bytes in the file. */
	df11_tensor_desc d;
	assert_int_equal(df11_model_tensor(m, 0, &d), DF11_OK);
	assert_string_equal(d.name, "w.0");
	assert_int_equal(d.dtype, DF11_DTYPE_BF16);
	assert_int_equal(d.ndim, 2);
	assert_int_equal(d.shape[0], 50);
	assert_int_equal(d.shape[1], 70);
	assert_int_equal(d.nbytes, 7000);
	assert_int_equal(d.compressed, 0);
	size_t i;
	assert_int_equal(df11_model_find(m, "scalar", &i), DF11_OK);
	assert_int_equal(df11_model_tensor(m, i, &d), DF11_OK);
	assert_int_equal(d.ndim, 0);
	assert_int_equal(d.n_elems, 1);
	assert_int_equal(df11_model_find(m, "empty", &i), DF11_OK);
	assert_int_equal(df11_model_tensor(m, i, &d), DF11_OK);
	assert_int_equal(d.n_elems, 0);
	assert_int_equal(d.nbytes, 0);
	assert_int_equal(df11_model_read(m, i, NULL, 0), DF11_OK);
	assert_int_equal(df11_model_find(m, "nope", &i), DF11_NOT_FOUND);
	assert_int_equal(df11_model_tensor(m, 9, &d), DF11_INVALID_ARG);

	/* Every tensor's bytes are the file's bytes at its offsets. */
	uint64_t hlen = df11_rd64(raw);
	uint64_t at = 8 + hlen;
	for (size_t k = 0; k < df11_model_num_tensors(m); k++) {
		assert_int_equal(df11_model_tensor(m, k, &d), DF11_OK);
		uint8_t *buf = malloc(d.nbytes + 1);
		assert_int_equal(df11_model_read(m, k, buf, d.nbytes), DF11_OK);
		assert_memory_equal(buf, raw + at, d.nbytes);
		assert_int_equal(df11_model_read(m, k, buf, d.nbytes + 1),
				 DF11_INVALID_ARG);
		at += d.nbytes;
		free(buf);
	}
	assert_int_equal(at, fsize);

	/* Ranges of a BF16 tensor; other dtypes are refused. */
	uint16_t r[10];
	assert_int_equal(df11_model_find(m, "w.1", &i), DF11_OK);
	assert_int_equal(df11_model_read_range(m, i, 3490, 10, r), DF11_OK);
	assert_memory_equal(r, raw + 8 + hlen + 7000 + 2 * 3490, 20);
	assert_int_equal(df11_model_read_range(m, i, 3495, 10, r),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_model_find(m, "f32", &i), DF11_OK);
	assert_int_equal(df11_model_read_range(m, i, 0, 1, r), DF11_UNSUPPORTED);
	const void *fp;
	size_t fn;
	assert_int_equal(df11_model_encoded(m, 0, &fp, &fn), DF11_UNSUPPORTED);
	assert_int_equal(df11_model_file(m, "config.json", &fp, &fn),
			 DF11_NOT_FOUND);
	df11_model_close(m);
	df11_model_close(NULL);
	free(raw);
	free(p);
	rm_tree(dir);
	free(dir);
}

/* Each malformed header, with the exact code it must give. */
static const struct bad_case {
	const char *what, *json;
	size_t data_size;
	df11_result expect;
} bad_cases[] = {
	{"not JSON", "{\"a\":", 0, DF11_BAD_DATA},
	{"not an object", "[1,2]", 0, DF11_BAD_DATA},
	{"tensor not an object", "{\"a\":3}", 0, DF11_BAD_DATA},
	{"unknown dtype", "{\"a\":{\"dtype\":\"F4\",\"shape\":[2],"
	 "\"data_offsets\":[0,1]}}", 1, DF11_UNSUPPORTED},
	{"missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}",
	 1, DF11_BAD_DATA},
	{"extra field", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\""
	 ":[0,1],\"x\":1}}", 1, DF11_BAD_DATA},
	{"negative dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
	 "\"data_offsets\":[0,1]}}", 1, DF11_BAD_DATA},
	{"float dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.0],"
	 "\"data_offsets\":[0,1]}}", 1, DF11_BAD_DATA},
	{"too many dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
	 "\"data_offsets\":[0,1]}}", 1, DF11_UNSUPPORTED},
	{"shape x dtype != bytes", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],"
	 "\"data_offsets\":[0,4]}}", 4, DF11_BAD_DATA},
	{"shape overflows", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,"
	 "4294967296],\"data_offsets\":[0,0]}}", 0, DF11_BAD_DATA},
	{"bytes overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":"
	 "[4611686018427387904],\"data_offsets\":[0,0]}}", 0, DF11_BAD_DATA},
	{"huge offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
	 "\"data_offsets\":[18446744073709551615,0]}}", 1, DF11_BAD_DATA},
	{"end before begin", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
	 "\"data_offsets\":[1,0]}}", 1, DF11_BAD_DATA},
	{"offsets past the file", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
	 "\"data_offsets\":[0,4]}}", 2, DF11_BAD_DATA},
	{"overlap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":"
	 "[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
	 6, DF11_BAD_DATA},
	{"hole", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
	 "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}",
	 5, DF11_BAD_DATA},
	{"trailing bytes", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],"
	 "\"data_offsets\":[0,2]}}", 3, DF11_BAD_DATA},
	{"duplicate name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets"
	 "\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":"
	 "[1,2]}}", 2, DF11_BAD_DATA},
	{"offsets not a pair", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
	 "\"data_offsets\":[0]}}", 1, DF11_BAD_DATA},
	{"metadata not strings", "{\"__metadata__\":{\"a\":1}}", 0,
	 DF11_BAD_DATA},
	{"metadata not an object", "{\"__metadata__\":[]}", 0, DF11_BAD_DATA},
	{"dtype not a string", "{\"a\":{\"dtype\":7,\"shape\":[1],"
	 "\"data_offsets\":[0,1]}}", 1, DF11_BAD_DATA},
};

static void test_malformed_headers(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *p = path_join(dir, "bad.safetensors");
	uint8_t zeros[64] = {0};
	for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
		write_st(p, bad_cases[k].json, zeros, bad_cases[k].data_size);
		df11_model *m = (df11_model *)1;
		df11_result r = df11_model_open(p, &m);
		if (r != bad_cases[k].expect)
			fail_msg("%s: got %d (%s), expected %d", bad_cases[k].what,
				 r, df11_last_error(), bad_cases[k].expect);
		assert_null(m);
		/* The message names the file. */
		assert_non_null(strstr(df11_last_error(), "bad.safetensors"));
	}
	/* Length field problems. */
	uint8_t b[16] = {0};
	write_bytes(p, b, 7);
	df11_model *m;
	assert_int_equal(df11_model_open(p, &m), DF11_BAD_DATA);
	df11_wr64(b, 100);  /* header runs past the end */
	memcpy(b + 8, "{}", 2);
	write_bytes(p, b, 10);
	assert_int_equal(df11_model_open(p, &m), DF11_BAD_DATA);
	df11_wr64(b, (uint64_t)DF11_ST_MAX_HEADER + 1);
	write_bytes(p, b, 16);
	assert_int_equal(df11_model_open(p, &m), DF11_LIMIT);
	df11_wr64(b, UINT64_MAX);
	write_bytes(p, b, 16);
	assert_int_equal(df11_model_open(p, &m), DF11_LIMIT);
	df11_wr64(b, 0);
	write_bytes(p, b, 8);
	assert_int_equal(df11_model_open(p, &m), DF11_BAD_DATA);
	/* The empty header and padding with spaces are fine. */
	write_st(p, "{}", NULL, 0);
	assert_int_equal(df11_model_open(p, &m), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), 0);
	df11_model_close(m);
	write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":"
		 "[0,2]}}    ", zeros, 2);
	assert_int_equal(df11_model_open(p, &m), DF11_OK);
	df11_model_close(m);
	char *missing = path_join(dir, "missing.safetensors");
	assert_int_equal(df11_model_open(missing, &m), DF11_NOT_FOUND);
	free(missing);
	free(p);
	rm_tree(dir);
	free(dir);
}

/* Zero-size tensors may share an offset with each other and with the next
 * tensor; they do not overlap anything. */
static void test_zero_size_sharing(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *p = path_join(dir, "z.safetensors");
	uint8_t d[3] = {1, 2, 3};
	write_st(p, "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":"
		 "[0,0]},\"e2\":{\"dtype\":\"BF16\",\"shape\":[2,0,3],"
		 "\"data_offsets\":[0,0]},\"x\":{\"dtype\":\"U8\",\"shape\":[3],"
		 "\"data_offsets\":[0,3]},\"e3\":{\"dtype\":\"I8\",\"shape\":[0],"
		 "\"data_offsets\":[3,3]}}", d, 3);
	df11_model *m;
	assert_int_equal(df11_model_open(p, &m), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), 4);
	size_t i;
	uint8_t got[3];
	assert_int_equal(df11_model_find(m, "x", &i), DF11_OK);
	assert_int_equal(df11_model_read(m, i, got, 3), DF11_OK);
	assert_memory_equal(got, d, 3);
	df11_model_close(m);
	free(p);
	rm_tree(dir);
	free(dir);
}

static void write_index(const char *dir, const char *weight_map)
{
	char json[4096];
	snprintf(json, sizeof json, "{\"metadata\":{\"total_size\":1},"
		 "\"weight_map\":{%s}}", weight_map);
	char *p = path_join(dir, "model.safetensors.index.json");
	write_bytes(p, json, strlen(json));
	free(p);
}

static void test_sharded_folder(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *s1 = path_join(dir, "model-00001-of-00002.safetensors");
	char *s2 = path_join(dir, "model-00002-of-00002.safetensors");
	uint8_t a[4] = {1, 2, 3, 4}, b[6] = {9, 8, 7, 6, 5, 4};
	write_st(s1, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":"
		 "[0,4]}}", a, 4);
	write_st(s2, "{\"b\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":"
		 "[0,6]}}", b, 6);
	char *cfg = path_join(dir, "config.json");
	write_bytes(cfg, "{\"x\":1}", 7);
	write_index(dir, "\"a\":\"model-00001-of-00002.safetensors\","
		    "\"b\":\"model-00002-of-00002.safetensors\"");
	df11_model *m;
	assert_int_equal(df11_model_open(dir, &m), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), 2);
	size_t i;
	uint8_t got[6];
	assert_int_equal(df11_model_find(m, "b", &i), DF11_OK);
	assert_int_equal(df11_model_read(m, i, got, 6), DF11_OK);
	assert_memory_equal(got, b, 6);
	assert_int_equal(df11_model_find(m, "a", &i), DF11_OK);
	assert_int_equal(df11_model_read(m, i, got, 4), DF11_OK);
	assert_memory_equal(got, a, 4);
	const void *fp;
	size_t fn;
	assert_int_equal(df11_model_file(m, "config.json", &fp, &fn), DF11_OK);
	assert_int_equal(fn, 7);
	assert_memory_equal(fp, "{\"x\":1}", 7);
	df11_model_close(m);

	/* An index naming a tensor that is not in its shard. */
	write_index(dir, "\"a\":\"model-00002-of-00002.safetensors\"");
	assert_int_equal(df11_model_open(dir, &m), DF11_BAD_DATA);
	/* ... or a shard that does not exist, or a path outside the folder. */
	write_index(dir, "\"a\":\"model-00003-of-00002.safetensors\"");
	assert_int_equal(df11_model_open(dir, &m), DF11_BAD_DATA);
	write_index(dir, "\"a\":\"../x.safetensors\"");
	assert_int_equal(df11_model_open(dir, &m), DF11_BAD_DATA);
	/* Only the shards named by the index are in the view. */
	write_index(dir, "\"b\":\"model-00002-of-00002.safetensors\"");
	assert_int_equal(df11_model_open(dir, &m), DF11_OK);
	assert_int_equal(df11_model_num_tensors(m), 1);
	df11_model_close(m);
	/* A malformed shard fails the whole folder, naming the shard. */
	write_st(s2, "{\"b\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":"
		 "[0,7]}}", b, 6);
	assert_int_equal(df11_model_open(dir, &m), DF11_BAD_DATA);
	assert_non_null(strstr(df11_last_error(), "model-00002-of-00002"));
	free(s1);
	free(s2);
	free(cfg);
	rm_tree(dir);
	free(dir);
}

static void test_relpath(void **state)
{
	(void)state;
	assert_true(df11_safe_relpath("a/b.json"));
	assert_false(df11_safe_relpath("/etc/passwd"));
	assert_false(df11_safe_relpath("a/../b"));
	assert_false(df11_safe_relpath(".."));
	assert_false(df11_safe_relpath("a//b"));
	assert_false(df11_safe_relpath("a/"));
	assert_false(df11_safe_relpath("./a"));
	assert_false(df11_safe_relpath(""));
	assert_false(df11_safe_relpath("a\nb"));
	assert_true(df11_safe_relpath(".gitattributes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dtypes),
		cmocka_unit_test(test_mixed_file),
		cmocka_unit_test(test_malformed_headers),
		cmocka_unit_test(test_zero_size_sharing),
		cmocka_unit_test(test_sharded_folder),
		cmocka_unit_test(test_relpath),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
